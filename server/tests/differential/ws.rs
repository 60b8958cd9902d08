//! The WebSocket half: client frame streams, and what our reader and tungstenite (in the
//! server role) read from them.

use std::io::{self, Read, Write};

use axum::extract::ws::Message as Ours;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message as Theirs};
use wirelab::ws::frame::Reader;

use crate::rng::Rng;

/// A message as both sides can show it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Msg {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

/// What a reader made of a stream: its messages up to the first close, and whether it
/// failed the connection.
#[derive(Debug, Default)]
pub(crate) struct WsRun {
    pub(crate) messages: Vec<Msg>,
    /// Why it failed (the wording differs between the two; only failing is compared).
    pub(crate) error: Option<String>,
}

impl PartialEq for WsRun {
    fn eq(&self, other: &WsRun) -> bool {
        self.messages == other.messages && self.error.is_some() == other.error.is_some()
    }
}

/// What tungstenite does with a close code that may not be sent: it hands the close on
/// with this code and reason instead of failing (it then closes with 1002, as we do).
/// The generator never sends this reason itself.
const REPLACED: (u16, &str) = (1002, "Protocol violation");

/// The named differences (see docs/conformance.md): a disagreement that is one of them,
/// in the documented direction, or None.
pub(crate) fn ws_rule(ours: &WsRun, theirs: &WsRun) -> Option<&'static str> {
    // A control frame whose length is written in 16 or 64 bits: RFC 6455 wants the
    // shortest form (5.2) and a control frame's length within 125 (5.5), so we refuse it
    // at its first two bytes; tungstenite reads the length and takes the frame.
    let error = ours.error.as_deref().unwrap_or("");
    if error.contains("a control frame over 125 bytes")
        && theirs.messages.starts_with(&ours.messages)
    {
        return Some("control frame length not in 7 bits");
    }
    // 1014 (Bad Gateway) is in IANA's registry of close codes, and we accept it;
    // tungstenite's list of codes a peer may send stops at 1013.
    let (last, before) = ours.messages.split_last()?;
    let ours_1014 = ours.error.is_none() && matches!(last, Msg::Close(Some((1014, _))));
    (ours_1014 && theirs.error.is_some() && theirs.messages == before).then_some("close code 1014")
}

/// A stream of one to six client frames: half of them all well formed, the others with
/// frames that break rules and (a third of the time) byte mutations; completed to end at
/// a frame's end (see [`complete`]).
pub(crate) fn ws_case(rng: &mut Rng, max: usize) -> Vec<u8> {
    let valid = rng.chance(50);
    let mut out = Vec::new();
    let mut open = false;
    for _ in 0..=rng.below(6) {
        frame(rng, &mut out, max, &mut open, valid);
    }
    if !valid && rng.chance(33) {
        rng.mutate(&mut out);
    }
    complete(out, max)
}

fn frame(rng: &mut Rng, out: &mut Vec<u8>, max: usize, open: &mut bool, valid: bool) {
    let opcode: u8 = if *open && rng.chance(60) {
        0x0
    } else {
        match rng.below(100) {
            0..35 => 0x1,
            35..50 => 0x2,
            50..62 => 0x9,
            62..68 => 0xa,
            68..80 => 0x8,
            _ if valid => 0x1,
            80..90 => 0x0,
            _ => [0x3, 0x7, 0xb, 0xf][rng.below(4)],
        }
    };
    let opcode = if valid && *open && (opcode == 0x1 || opcode == 0x2) {
        0x0
    } else {
        opcode
    };
    let control = opcode >= 0x8;
    let fin = if control {
        valid || rng.chance(97)
    } else {
        rng.chance(65)
    };
    if !control && opcode != 0x0 && !fin {
        *open = true;
    } else if opcode == 0x0 && fin {
        *open = false;
    }
    let payload = match opcode {
        0x8 => close_payload(rng, valid),
        0x1 | 0x0 if valid || rng.chance(75) => text(rng, max, valid),
        _ if !valid && rng.chance(5) => {
            vec![
                b'a';
                if control {
                    125 + rng.below(3)
                } else {
                    max + rng.below(2)
                }
            ]
        }
        _ => (0..rng.below(12)).map(|_| rng.byte()).collect(),
    };
    let payload = match opcode {
        0x2 | 0x0 if valid => &payload[..payload.len().min(max / 4)],
        _ => &payload[..],
    };
    let rsv = if !valid && rng.chance(4) {
        rng.byte() & 0x70
    } else {
        0
    };
    out.push(u8::from(fin) << 7 | rsv | opcode);
    let masked = if valid || rng.chance(97) { 0x80 } else { 0 };
    let len = payload.len();
    let long_form = !valid && rng.chance(6);
    match rng.below(2) {
        _ if len > 0xffff => unreachable!("payloads stay small"),
        0 if long_form => {
            out.push(masked | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        _ if len >= 126 || long_form => {
            out.push(masked | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => out.push(masked | len as u8),
    }
    let mask = [rng.byte(), rng.byte(), rng.byte(), rng.byte()];
    if masked != 0 {
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
}

/// Text, now and then cut inside a character or holding bytes that are not UTF-8.
fn text(rng: &mut Rng, max: usize, valid: bool) -> Vec<u8> {
    let mut t = Vec::new();
    for _ in 0..rng.below(6) {
        let piece = rng
            .pick(&["a", "hi ", "é", "€", "😀", "{\"type\":\"ping\"}"])
            .as_bytes();
        if valid && t.len() + piece.len() > max / 4 {
            break;
        }
        t.extend_from_slice(piece);
    }
    if valid {
        return t;
    }
    if rng.chance(15) && !t.is_empty() {
        t.truncate(rng.below(t.len()));
    }
    if rng.chance(8) {
        let bad: &[u8] = rng.pick(&[&b"\xff"[..], b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]);
        t.extend_from_slice(bad);
    }
    t.truncate(max + 1);
    t
}

fn close_payload(rng: &mut Rng, valid: bool) -> Vec<u8> {
    match rng.below(20) {
        0 => return Vec::new(),
        1 if !valid => return vec![rng.byte()],
        _ => {}
    }
    if valid {
        let mut p = [1000u16, 1001, 3000, 4999][rng.below(4)]
            .to_be_bytes()
            .to_vec();
        p.extend_from_slice(rng.pick(&["", "bye", "é"]).as_bytes());
        return p;
    }
    let codes = [
        1000u16, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1011, 1012, 1013, 1014, 1015,
        1016, 999, 0, 2999, 3000, 4999, 5000, 65535,
    ];
    let mut p = codes[rng.below(codes.len())].to_be_bytes().to_vec();
    let reason: &[u8] = rng.pick(&[&b""[..], b"bye", "é".as_bytes(), b"\xff", b"\xe2\x82"]);
    p.extend_from_slice(reason);
    p
}

/// Pads `raw` so that it ends where a frame ends: a frame cut short gets the rest of its
/// header and payload. Both readers then see whole frames, so a reader that checks a
/// header at once and one that reads the whole frame first reach the same verdict. A
/// frame longer than both limits is left alone: both refuse it at its header.
fn complete(mut raw: Vec<u8>, max: usize) -> Vec<u8> {
    let cap = max.max(125) as u64;
    let mut at = 0;
    while at < raw.len() {
        if raw.len() < at + 2 {
            raw.push(0x80);
        }
        let b1 = raw[at + 1];
        let ext = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let head = 2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 };
        if raw.len() < at + head {
            raw.resize(at + head, 0);
        }
        let len = match ext {
            2 => u64::from(u16::from_be_bytes([raw[at + 2], raw[at + 3]])),
            8 => u64::from_be_bytes(raw[at + 2..at + 10].try_into().unwrap()),
            _ => u64::from(b1 & 0x7f),
        };
        if len > cap {
            break;
        }
        at += head + len as usize;
        if raw.len() < at {
            raw.resize(at, 0);
        }
    }
    raw
}

/// Our reader, as the socket drives it: until the first close or error.
pub(crate) fn ours_ws(raw: &[u8], max: usize) -> WsRun {
    let mut reader = Reader::new(max, false);
    let mut input = raw;
    let mut run = WsRun::default();
    while !input.is_empty() {
        match reader.feed(input) {
            Err(e) => {
                run.error = Some(e.to_string());
                break;
            }
            Ok((used, msg)) => {
                input = &input[used..];
                let Some(msg) = msg else { break };
                let msg = match msg {
                    Ours::Text(t) => Msg::Text(t.as_str().to_owned()),
                    Ours::Binary(b) => Msg::Binary(b.to_vec()),
                    Ours::Ping(p) => Msg::Ping(p.to_vec()),
                    Ours::Pong(p) => Msg::Pong(p.to_vec()),
                    Ours::Close(f) => Msg::Close(f.map(|f| (f.code, f.reason.as_str().to_owned()))),
                };
                let close = matches!(msg, Msg::Close(_));
                run.messages.push(msg);
                if close {
                    break;
                }
            }
        }
    }
    run
}

/// The stream as tungstenite's socket: its bytes, then "would block"; what it writes
/// (pongs, the close reply) is dropped.
struct Input<'a>(&'a [u8]);

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

impl Write for Input<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// tungstenite in the server role, with the same message limit (and frames over it, or
/// over 125 bytes, refused at their header as ours are).
pub(crate) fn tungstenite_ws(raw: &[u8], max: usize) -> WsRun {
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max.max(125)));
    let mut ws = WebSocket::from_raw_socket(Input(raw), Role::Server, Some(config));
    let mut run = WsRun::default();
    loop {
        let msg = match ws.read() {
            Ok(Theirs::Close(Some(f))) if (u16::from(f.code), f.reason.as_str()) == REPLACED => {
                run.error = Some(format!("a close code that may not be sent ({:?})", f.code));
                break;
            }
            Ok(Theirs::Text(t)) => Msg::Text(t.as_str().to_owned()),
            Ok(Theirs::Binary(b)) => Msg::Binary(b.to_vec()),
            Ok(Theirs::Ping(p)) => Msg::Ping(p.to_vec()),
            Ok(Theirs::Pong(p)) => Msg::Pong(p.to_vec()),
            Ok(Theirs::Close(f)) => {
                Msg::Close(f.map(|f| (u16::from(f.code), f.reason.as_str().to_owned())))
            }
            Ok(Theirs::Frame(_)) => unreachable!("read() yields no raw frames"),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => {
                run.error = Some(e.to_string());
                break;
            }
        };
        let close = matches!(msg, Msg::Close(_));
        run.messages.push(msg);
        if close {
            break;
        }
    }
    run
}
