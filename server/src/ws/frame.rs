//! RFC 6455 framing, the server's side: a [`Reader`] that turns the client's bytes into
//! messages, and the header of each frame the server writes.
//!
//! The reader holds no buffer while idle: a frame's header is kept inline until complete,
//! and a `Vec` exists only while a message (or a control frame's payload) is being
//! assembled, never larger than `--max-ws-message`. Every violation maps to the close
//! code RFC 6455 gives it: [`WsError::close_code`].
//!
//! With permessage-deflate agreed ([`deflate`](super::deflate)), a data message whose
//! first frame has RSV1 set is compressed: it is inflated once whole, within the same
//! limit.
//!
//! Text is checked as it arrives, not only when a frame ends: a byte that can never be
//! UTF-8 fails the connection at once, even in the middle of a long frame (Autobahn's
//! "fail fast" cases, 6.4.*). A service that shows every frame (the WebSocket service)
//! reads with [`Reader::feed_tapped`], which tells it each frame as it completes.

use std::fmt;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use bytes::Bytes;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;
/// The first header bit an extension may use: permessage-deflate's "compressed".
pub const RSV1: u8 = 0x40;

/// The largest payload of a control frame (RFC 6455 5.5).
pub const MAX_CONTROL: usize = 125;

/// Why a WebSocket connection failed.
#[derive(Debug)]
pub enum WsError {
    /// The client broke the framing rules (close 1002).
    Protocol(&'static str),
    /// A message over `--max-ws-message` (close 1009).
    TooBig { limit: usize },
    /// Text (or a close reason) that is not UTF-8 (close 1007).
    Utf8,
    /// A message sent after the close frame.
    Closed,
    /// The socket failed.
    Io(std::io::Error),
}

impl WsError {
    /// The close code this failure deserves, if the connection is still worth a close
    /// frame.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            WsError::Protocol(_) => Some(1002),
            WsError::TooBig { .. } => Some(1009),
            WsError::Utf8 => Some(1007),
            WsError::Closed | WsError::Io(_) => None,
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Protocol(what) => write!(f, "protocol error: {what}"),
            WsError::TooBig { limit } => {
                write!(f, "message too big: the limit is {limit} bytes")
            }
            WsError::Utf8 => f.write_str("text is not valid UTF-8"),
            WsError::Closed => f.write_str("the WebSocket is closed"),
            WsError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for WsError {}

impl From<std::io::Error> for WsError {
    fn from(e: std::io::Error) -> Self {
        WsError::Io(e)
    }
}

/// One frame as it crossed the wire, as a tap sees it: `payload` is unmasked (and still
/// compressed when the message was: `rsv1` on its first frame).
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub opcode: u8,
    pub fin: bool,
    pub rsv1: bool,
    pub payload: &'a [u8],
}

/// The frame whose payload is being read.
#[derive(Debug, Clone, Copy)]
struct FrameState {
    opcode: u8,
    fin: bool,
    rsv1: bool,
    /// Where its payload starts in the message's `data`.
    start: usize,
    mask: [u8; 4],
    /// Payload bytes still to come.
    left: u64,
    /// Payload bytes read so far (the mask's position).
    done: u64,
}

/// A data message being assembled from its fragments.
#[derive(Debug)]
struct Partial {
    text: bool,
    data: Vec<u8>,
    /// How much of `data` is known to be valid UTF-8 (text only).
    checked: usize,
    /// Sent compressed (RSV1): `data` is deflate until the message is whole.
    compressed: bool,
}

/// Turns the client's bytes into messages, one [`Reader::feed`] at a time.
#[derive(Debug)]
pub struct Reader {
    max: usize,
    /// permessage-deflate was agreed: RSV1 marks a compressed message.
    deflate: bool,
    head: [u8; 14],
    head_len: u8,
    frame: Option<FrameState>,
    msg: Option<Partial>,
    ctrl: Vec<u8>,
    /// The last message returned came compressed.
    last_compressed: bool,
}

impl Reader {
    /// A reader that refuses messages over `max` bytes (inflated, when `deflate`: whether
    /// permessage-deflate was agreed).
    pub fn new(max: usize, deflate: bool) -> Reader {
        Reader {
            max,
            deflate,
            head: [0; 14],
            head_len: 0,
            frame: None,
            msg: None,
            ctrl: Vec::new(),
            last_compressed: false,
        }
    }

    /// Whether the last message returned came compressed (RSV1), for a service that
    /// answers in kind.
    pub fn last_compressed(&self) -> bool {
        self.last_compressed
    }

    /// Whether it holds nothing: no partial header, frame or message.
    pub fn is_idle(&self) -> bool {
        self.head_len == 0 && self.frame.is_none() && self.msg.is_none()
    }

    /// Bytes the header needs in all, as far as its first two bytes tell.
    fn head_need(&self) -> usize {
        if self.head_len < 2 {
            return 2;
        }
        let ext = match self.head[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + 4
    }

    /// Consumes `input` until it ends or a message is complete; returns how many bytes
    /// it used and the message, if one is complete. Without a message, all of `input`
    /// was used.
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, Option<Message>), WsError> {
        self.feed_tapped(input, &mut |_| {})
    }

    /// [`Reader::feed`], telling `tap` each frame as it completes (control frames
    /// included, in the order they came).
    pub fn feed_tapped(
        &mut self,
        mut input: &[u8],
        tap: &mut dyn FnMut(Seen<'_>),
    ) -> Result<(usize, Option<Message>), WsError> {
        let total = input.len();
        loop {
            let mut frame = match self.frame {
                Some(f) => f,
                None => {
                    // The header: its first two bytes (checked at once), then the rest.
                    loop {
                        let need = self.head_need();
                        let have = self.head_len as usize;
                        let n = (need - have).min(input.len());
                        self.head[have..have + n].copy_from_slice(&input[..n]);
                        self.head_len += n as u8;
                        input = &input[n..];
                        if (self.head_len as usize) < need {
                            return Ok((total, None));
                        }
                        if need == 2 {
                            self.check_first_two()?;
                            continue;
                        }
                        break;
                    }
                    self.start_frame()?
                }
            };
            let n = frame.left.min(input.len() as u64) as usize;
            let target = if frame.opcode >= OP_CLOSE {
                &mut self.ctrl
            } else {
                &mut self
                    .msg
                    .as_mut()
                    .expect("a data frame has its message")
                    .data
            };
            let start = target.len();
            target.extend_from_slice(&input[..n]);
            unmask(&mut target[start..], frame.mask, frame.done as usize);
            input = &input[n..];
            frame.left -= n as u64;
            frame.done += n as u64;
            if frame.left > 0 {
                self.frame = Some(frame);
                self.check_text(false)?;
                return Ok((total, None));
            }
            self.frame = None;
            if let Some(msg) = self.end_frame(frame, tap)? {
                return Ok((total - input.len(), Some(msg)));
            }
            if input.is_empty() {
                return Ok((total, None));
            }
        }
    }

    /// The checks the first two bytes allow.
    fn check_first_two(&self) -> Result<(), WsError> {
        let (b0, b1) = (self.head[0], self.head[1]);
        let opcode = b0 & 0x0f;
        if b0 & 0x70 != 0 {
            if !self.deflate || b0 & 0x70 != RSV1 {
                return Err(WsError::Protocol(
                    "reserved bits set (no extension was agreed)",
                ));
            }
            if !matches!(opcode, OP_TEXT | OP_BINARY) {
                return Err(WsError::Protocol(
                    "RSV1 (compressed) on a frame that does not start a message",
                ));
            }
        }
        if b1 & 0x80 == 0 {
            return Err(WsError::Protocol("a client's frames must be masked"));
        }
        let fin = b0 & 0x80 != 0;
        let len7 = b1 & 0x7f;
        match opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin {
                    return Err(WsError::Protocol("a fragmented control frame"));
                }
                if len7 as usize > MAX_CONTROL {
                    return Err(WsError::Protocol("a control frame over 125 bytes"));
                }
            }
            OP_CONTINUATION => {
                if self.msg.is_none() {
                    return Err(WsError::Protocol(
                        "a continuation frame with no message to continue",
                    ));
                }
            }
            OP_TEXT | OP_BINARY => {
                if self.msg.is_some() {
                    return Err(WsError::Protocol(
                        "a new message before the last one's final fragment",
                    ));
                }
            }
            _ => return Err(WsError::Protocol("an unknown opcode")),
        }
        Ok(())
    }

    /// The header is complete: checks its length and prepares where the payload goes.
    fn start_frame(&mut self) -> Result<FrameState, WsError> {
        let h = self.head;
        let len7 = h[1] & 0x7f;
        let (len, mask_at) = match len7 {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => {
                let len = u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]);
                if len >> 63 != 0 {
                    return Err(WsError::Protocol("a 64-bit length with its top bit set"));
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        self.head_len = 0;
        let mut frame = FrameState {
            opcode: h[0] & 0x0f,
            fin: h[0] & 0x80 != 0,
            rsv1: h[0] & RSV1 != 0,
            start: 0,
            mask: [h[mask_at], h[mask_at + 1], h[mask_at + 2], h[mask_at + 3]],
            left: len,
            done: 0,
        };
        if frame.opcode >= OP_CLOSE {
            self.ctrl = Vec::with_capacity(len as usize);
        } else {
            let so_far = self.msg.as_ref().map_or(0, |m| m.data.len() as u64);
            if so_far + len > self.max as u64 {
                self.msg = None;
                return Err(WsError::TooBig { limit: self.max });
            }
            frame.start = so_far as usize;
            match &mut self.msg {
                Some(m) => m.data.reserve(len as usize),
                None => {
                    self.msg = Some(Partial {
                        text: frame.opcode == OP_TEXT,
                        data: Vec::with_capacity(len as usize),
                        checked: 0,
                        compressed: h[0] & RSV1 != 0,
                    })
                }
            }
        }
        self.frame = Some(frame);
        Ok(frame)
    }

    /// Checks the text received so far; `whole`: the message is complete, so an
    /// unfinished character at its end is an error too.
    fn check_text(&mut self, whole: bool) -> Result<(), WsError> {
        let Some(msg) = self.msg.as_mut() else {
            return Ok(());
        };
        if !msg.text || msg.compressed {
            return Ok(());
        }
        match std::str::from_utf8(&msg.data[msg.checked..]) {
            Ok(_) => msg.checked = msg.data.len(),
            Err(e) if e.error_len().is_none() && !whole => msg.checked += e.valid_up_to(),
            Err(_) => {
                self.msg = None;
                return Err(WsError::Utf8);
            }
        }
        Ok(())
    }

    /// A frame's payload is complete: a message, or a fragment of one.
    fn end_frame(
        &mut self,
        frame: FrameState,
        tap: &mut dyn FnMut(Seen<'_>),
    ) -> Result<Option<Message>, WsError> {
        if frame.opcode >= OP_CLOSE {
            let payload = std::mem::take(&mut self.ctrl);
            tap(Seen {
                opcode: frame.opcode,
                fin: true,
                rsv1: false,
                payload: &payload,
            });
            return match frame.opcode {
                OP_PING => Ok(Some(Message::Ping(Bytes::from(payload)))),
                OP_PONG => Ok(Some(Message::Pong(Bytes::from(payload)))),
                _ => close_message(payload).map(Some),
            };
        }
        let msg = self.msg.as_ref().expect("a data frame has its message");
        tap(Seen {
            opcode: frame.opcode,
            fin: frame.fin,
            rsv1: frame.rsv1,
            payload: &msg.data[frame.start..],
        });
        self.check_text(frame.fin)?;
        if !frame.fin {
            return Ok(None);
        }
        let mut msg = self.msg.take().expect("checked above");
        self.last_compressed = msg.compressed;
        if msg.compressed {
            msg.data = super::deflate::decompress(&msg.data, self.max)?;
        }
        if msg.text {
            let text = String::from_utf8(msg.data).map_err(|_| WsError::Utf8)?;
            Ok(Some(Message::Text(Utf8Bytes::from(text))))
        } else {
            Ok(Some(Message::Binary(Bytes::from(msg.data))))
        }
    }
}

/// XORs `data` with a frame's `mask`, `data` starting at byte `offset` of the payload.
/// Eight bytes at a time: a byte-by-byte loop was the debug build's hottest spot under
/// Autobahn's large messages (and release builds vectorize this one).
fn unmask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut key = [0u8; 8];
    for (i, k) in key.iter_mut().enumerate() {
        *k = mask[(offset + i) % 4];
    }
    let wide = u64::from_ne_bytes(key);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes(chunk.try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(key) {
        *b ^= k;
    }
}

/// A close frame's payload: nothing, or a valid code and a UTF-8 reason.
fn close_message(payload: Vec<u8>) -> Result<Message, WsError> {
    if payload.is_empty() {
        return Ok(Message::Close(None));
    }
    if payload.len() < 2 {
        return Err(WsError::Protocol("a close frame of one byte"));
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
    if !valid {
        return Err(WsError::Protocol("a close code that may not be sent"));
    }
    let reason = String::from_utf8(payload[2..].to_vec()).map_err(|_| WsError::Utf8)?;
    Ok(Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    })))
}

/// A frame's header as the server writes it (final, unmasked): the bytes and how many.
pub fn header(opcode: u8, len: usize) -> ([u8; 10], u8) {
    let mut h = [0u8; 10];
    h[0] = 0x80 | opcode;
    let n = if len < 126 {
        h[1] = len as u8;
        2
    } else if len <= 0xffff {
        h[1] = 126;
        h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (h, n)
}

/// What the pump hands the socket: a message, or a text (or binary) message already
/// compressed for permessage-deflate (sent with RSV1).
#[derive(Debug)]
pub enum Outgoing {
    Plain(Message),
    Deflated(Bytes),
    /// A binary message already compressed.
    DeflatedBinary(Bytes),
}

impl From<Message> for Outgoing {
    fn from(msg: Message) -> Self {
        Outgoing::Plain(msg)
    }
}

/// A message's opcode and payload, as the server sends it. The payload of text and
/// binary messages is shared, not copied.
pub fn encode(msg: Message) -> Result<(u8, Bytes), WsError> {
    Ok(match msg {
        Message::Text(t) => (OP_TEXT, Bytes::from(t)),
        Message::Binary(b) => (OP_BINARY, b),
        Message::Ping(p) | Message::Pong(p) if p.len() > MAX_CONTROL => {
            return Err(WsError::Protocol("a control frame over 125 bytes"));
        }
        Message::Ping(p) => (OP_PING, p),
        Message::Pong(p) => (OP_PONG, p),
        Message::Close(None) => (OP_CLOSE, Bytes::new()),
        Message::Close(Some(f)) => {
            let mut reason = f.reason.as_str();
            while reason.len() > MAX_CONTROL - 2 {
                let mut cut = MAX_CONTROL - 2;
                while !reason.is_char_boundary(cut) {
                    cut -= 1;
                }
                reason = &reason[..cut];
            }
            let mut payload = Vec::with_capacity(2 + reason.len());
            payload.extend_from_slice(&f.code.to_be_bytes());
            payload.extend_from_slice(reason.as_bytes());
            (OP_CLOSE, Bytes::from(payload))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's frame: masked, with the given first byte (FIN, RSV, opcode).
    fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0xa1, 0xb2, 0xc3, 0xd4];
        let mut f = vec![b0];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    /// Feeds `bytes` in chunks of `chunk`, collecting every message (or the first error).
    fn read_all(max: usize, bytes: &[u8], chunk: usize) -> Result<Vec<Message>, WsError> {
        read_all_with(Reader::new(max, false), bytes, chunk)
    }

    fn read_all_with(mut r: Reader, bytes: &[u8], chunk: usize) -> Result<Vec<Message>, WsError> {
        let mut out = Vec::new();
        for mut piece in bytes.chunks(chunk) {
            loop {
                let (used, msg) = r.feed(piece)?;
                piece = &piece[used..];
                match msg {
                    Some(m) => out.push(m),
                    None => {
                        assert!(piece.is_empty(), "no message: all input used");
                        break;
                    }
                }
            }
        }
        assert!(r.is_idle(), "nothing left half-read");
        Ok(out)
    }

    fn text(m: &Message) -> &str {
        match m {
            Message::Text(t) => t.as_str(),
            other => panic!("not text: {other:?}"),
        }
    }

    #[test]
    fn a_compressed_message_is_inflated_even_when_fragmented() {
        let json = r#"{"type":"chat","text":"hello hello hello hello"}"#;
        let packed = crate::ws::deflate::compress(json.as_bytes());
        let (a, b) = packed.split_at(packed.len() / 2);
        let mut bytes = client_frame(RSV1 | OP_TEXT, a);
        bytes.extend(client_frame(0x80 | OP_PING, b"p"));
        bytes.extend(client_frame(0x80 | OP_CONTINUATION, b));
        bytes.extend(client_frame(0x80 | OP_TEXT, b"plain"));
        for chunk in [1, 5, bytes.len()] {
            let msgs = read_all_with(Reader::new(1 << 16, true), &bytes, chunk).unwrap();
            assert_eq!(msgs.len(), 3);
            assert_eq!(text(&msgs[1]), json);
            assert_eq!(text(&msgs[2]), "plain");
        }
        // Inflated past the limit: 1009, though the compressed bytes were small.
        let big = crate::ws::deflate::compress(&vec![b'a'; 100_000]);
        let err = read_all_with(Reader::new(1 << 16, true), &client_frame(0xc1, &big), 64);
        assert_eq!(err.unwrap_err().close_code(), Some(1009));
        // Compressed text that inflates to invalid UTF-8: 1007.
        let bad = crate::ws::deflate::compress(&[0xff, 0xfe]);
        let err = read_all_with(Reader::new(1 << 16, true), &client_frame(0xc1, &bad), 64);
        assert_eq!(err.unwrap_err().close_code(), Some(1007));
    }

    #[test]
    fn rsv1_is_refused_without_the_extension_and_on_control_frames() {
        let packed = crate::ws::deflate::compress(b"hi");
        let err = read_all(1 << 16, &client_frame(0xc1, &packed), 64).unwrap_err();
        assert_eq!(err.close_code(), Some(1002));
        let err = read_all_with(Reader::new(1 << 16, true), &client_frame(0xc9, b""), 64);
        assert_eq!(err.unwrap_err().close_code(), Some(1002));
        let mut bytes = client_frame(OP_TEXT, b"a");
        bytes.extend(client_frame(0x80 | RSV1 | OP_CONTINUATION, b"b"));
        let err = read_all_with(Reader::new(1 << 16, true), &bytes, 64);
        assert_eq!(err.unwrap_err().close_code(), Some(1002));
    }

    #[test]
    fn a_fragmented_message_with_a_ping_between_fragments_is_one_message() {
        let mut bytes = client_frame(OP_TEXT, b"hel");
        bytes.extend(client_frame(0x80 | OP_PING, b"are you there"));
        bytes.extend(client_frame(OP_CONTINUATION, b"lo "));
        bytes.extend(client_frame(0x80 | OP_CONTINUATION, "wörld".as_bytes()));
        bytes.extend(client_frame(0x80 | OP_BINARY, &[0, 1, 2]));
        for chunk in [1, 2, 3, 7, 4096] {
            let msgs = read_all(1024, &bytes, chunk).unwrap();
            assert_eq!(msgs.len(), 3, "chunk {chunk}: {msgs:?}");
            assert!(matches!(&msgs[0], Message::Ping(p) if &p[..] == b"are you there"));
            assert_eq!(text(&msgs[1]), "hello wörld");
            assert!(matches!(&msgs[2], Message::Binary(b) if b[..] == [0, 1, 2]));
        }
    }

    #[test]
    fn sixteen_and_sixty_four_bit_lengths_are_read() {
        let medium = "m".repeat(300);
        let large = "L".repeat(70_000);
        let mut bytes = client_frame(0x80 | OP_TEXT, medium.as_bytes());
        bytes.extend(client_frame(0x80 | OP_TEXT, large.as_bytes()));
        assert_eq!(bytes[1] & 0x7f, 126);
        for chunk in [5, 1000, 100_000] {
            let msgs = read_all(100_000, &bytes, chunk).unwrap();
            assert_eq!(text(&msgs[0]), medium);
            assert_eq!(text(&msgs[1]), large);
        }
    }

    #[test]
    fn a_message_over_the_limit_is_1009_even_across_fragments() {
        let e = read_all(100, &client_frame(0x80 | OP_BINARY, &[7; 101]), 4096).unwrap_err();
        assert_eq!(e.close_code(), Some(1009), "{e}");
        assert!(e.to_string().contains("too big"), "{e}");
        let mut bytes = client_frame(OP_BINARY, &[7; 60]);
        bytes.extend(client_frame(0x80 | OP_CONTINUATION, &[7; 60]));
        let e = read_all(100, &bytes, 4096).unwrap_err();
        assert_eq!(e.close_code(), Some(1009), "{e}");
        assert_eq!(read_all(120, &bytes, 4096).unwrap().len(), 1);
    }

    #[test]
    fn invalid_utf8_is_1007_also_when_split_across_fragments() {
        // "é" is C3 A9: split between two fragments it is valid...
        let mut ok = client_frame(OP_TEXT, b"caf\xc3");
        ok.extend(client_frame(0x80 | OP_CONTINUATION, b"\xa9!"));
        assert_eq!(text(&read_all(100, &ok, 3).unwrap()[0]), "café!");
        // ...but a lead byte that is never continued is not, nor a stray continuation.
        let mut bad = client_frame(OP_TEXT, b"caf\xc3");
        bad.extend(client_frame(0x80 | OP_CONTINUATION, b"!"));
        let e = read_all(100, &bad, 3).unwrap_err();
        assert_eq!(e.close_code(), Some(1007), "{e}");
        assert!(e.to_string().contains("UTF-8"), "{e}");
        let mut cut = client_frame(OP_TEXT, b"ok");
        cut.extend(client_frame(0x80 | OP_CONTINUATION, b"\xe2\x82"));
        assert_eq!(
            read_all(100, &cut, 100).unwrap_err().close_code(),
            Some(1007)
        );
        let single = client_frame(0x80 | OP_TEXT, &[0x68, 0xff, 0xfe]);
        assert_eq!(
            read_all(100, &single, 100).unwrap_err().close_code(),
            Some(1007)
        );
        // Binary is not checked.
        assert_eq!(
            read_all(100, &client_frame(0x82, &[0xff]), 1)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn framing_violations_are_1002() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("rsv1", client_frame(0x80 | 0x40 | OP_TEXT, b"x")),
            ("rsv3", client_frame(0x80 | 0x10 | OP_BINARY, b"x")),
            ("opcode 3", client_frame(0x80 | 0x3, b"x")),
            ("opcode 0xb", client_frame(0x80 | 0xb, b"x")),
            ("fragmented ping", client_frame(OP_PING, b"x")),
            ("long ping", client_frame(0x80 | OP_PING, &[0; 126])),
            (
                "lone continuation",
                client_frame(0x80 | OP_CONTINUATION, b"x"),
            ),
            ("one-byte close", client_frame(0x80 | OP_CLOSE, &[3])),
            (
                "close code 1005",
                client_frame(0x80 | OP_CLOSE, &1005u16.to_be_bytes()),
            ),
            ("unmasked", vec![0x81, 0x01, b'x']),
            ("text inside a text", {
                let mut b = client_frame(OP_TEXT, b"a");
                b.extend(client_frame(0x80 | OP_TEXT, b"b"));
                b
            }),
        ];
        for (name, bytes) in cases {
            let e = read_all(1024, &bytes, 1).unwrap_err();
            assert_eq!(e.close_code(), Some(1002), "{name}: {e}");
            assert!(e.to_string().starts_with("protocol error"), "{name}: {e}");
        }
    }

    #[test]
    fn a_close_frame_carries_its_code_and_reason() {
        let mut payload = 4321u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"bye now");
        let msgs = read_all(100, &client_frame(0x80 | OP_CLOSE, &payload), 2).unwrap();
        let Message::Close(Some(f)) = &msgs[0] else {
            panic!("{msgs:?}")
        };
        assert_eq!((f.code, f.reason.as_str()), (4321, "bye now"));
        let empty = read_all(100, &client_frame(0x80 | OP_CLOSE, &[]), 2).unwrap();
        assert!(matches!(empty[0], Message::Close(None)));
    }

    #[test]
    fn an_idle_reader_holds_no_heap_buffer() {
        let mut r = Reader::new(1 << 16, false);
        let bytes = client_frame(0x80 | OP_TEXT, &[b'a'; 5000]);
        let (used, msg) = r.feed(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert!(msg.is_some());
        assert!(r.is_idle());
        assert_eq!(r.ctrl.capacity(), 0);
        assert!(r.msg.is_none());
    }

    #[test]
    fn text_that_can_never_be_utf8_fails_before_its_frame_ends() {
        // A frame of 100 bytes whose third byte is invalid: the first 10 bytes of it are
        // enough to fail (the rest never has to come).
        let mut payload = b"ok\xff".to_vec();
        payload.resize(100, b'a');
        let bytes = client_frame(0x80 | OP_TEXT, &payload);
        let mut r = Reader::new(1024, false);
        let e = r.feed(&bytes[..6 + 10]).unwrap_err();
        assert_eq!(e.close_code(), Some(1007), "{e}");
        // A character split across chunks of one frame is not an error.
        let ok = client_frame(0x80 | OP_TEXT, "añb".as_bytes());
        let msgs = read_all(100, &ok, 7).unwrap();
        assert_eq!(text(&msgs[0]), "añb");
    }

    #[test]
    fn a_tap_sees_every_frame_as_it_was_on_the_wire() {
        let mut bytes = client_frame(OP_TEXT, b"hel");
        bytes.extend(client_frame(0x80 | OP_PING, b"p"));
        bytes.extend(client_frame(0x80 | OP_CONTINUATION, b"lo"));
        let mut r = Reader::new(1024, false);
        let mut seen = Vec::new();
        let mut tap = |f: Seen<'_>| seen.push((f.opcode, f.fin, f.rsv1, f.payload.to_vec()));
        let mut input = &bytes[..];
        let mut msgs = Vec::new();
        while !input.is_empty() {
            let (used, msg) = r.feed_tapped(input, &mut tap).unwrap();
            input = &input[used..];
            msgs.extend(msg);
        }
        assert_eq!(
            seen,
            vec![
                (OP_TEXT, false, false, b"hel".to_vec()),
                (OP_PING, true, false, b"p".to_vec()),
                (OP_CONTINUATION, true, false, b"lo".to_vec()),
            ]
        );
        assert_eq!(text(&msgs[1]), "hello");
        assert!(!r.last_compressed());
    }

    #[test]
    fn unmasking_eight_at_a_time_matches_byte_by_byte_at_any_offset() {
        let mask = [0x01, 0x22, 0x43, 0x84];
        let data: Vec<u8> = (0..=255).collect();
        for offset in 0..9 {
            for len in [0, 1, 7, 8, 9, 100] {
                let mut fast = data[..len].to_vec();
                unmask(&mut fast, mask, offset);
                let slow: Vec<u8> = data[..len]
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ mask[(offset + i) % 4])
                    .collect();
                assert_eq!(fast, slow, "offset {offset}, len {len}");
            }
        }
    }

    #[test]
    fn headers_are_written_in_the_shortest_form() {
        assert_eq!(header(OP_TEXT, 5), ([0x81, 5, 0, 0, 0, 0, 0, 0, 0, 0], 2));
        let (h, n) = header(OP_BINARY, 300);
        assert_eq!((&h[..n as usize], n), (&[0x82, 126, 1, 44][..], 4));
        let (h, n) = header(OP_TEXT, 70_000);
        assert_eq!(n, 10);
        assert_eq!(h[1], 127);
        assert_eq!(u64::from_be_bytes(h[2..10].try_into().unwrap()), 70_000);
    }

    #[test]
    fn a_long_close_reason_is_cut_at_a_character_boundary() {
        let reason = "é".repeat(100);
        let (op, payload) = encode(Message::Close(Some(CloseFrame {
            code: 4008,
            reason: reason.into(),
        })))
        .unwrap();
        assert_eq!(op, OP_CLOSE);
        assert!(payload.len() <= MAX_CONTROL);
        assert_eq!(&payload[..2], &4008u16.to_be_bytes());
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
    }
}
