//! A client's WebSocket bytes, read as the `/ws` socket reads them
//! (`wirelab::ws::frame::Reader`): frame headers, masking, fragment reassembly with
//! control frames between fragments, incremental UTF-8 checks, the message size limit,
//! and (when the first byte says permessage-deflate was agreed) inflating.
//!
//! The first input byte chooses the limit, whether deflate was agreed, and how the rest
//! is cut into reads. Checked beyond "no panic":
//! - the messages and the final verdict are the same however the bytes arrive;
//! - a message within the limit (control frames within 125 bytes), text valid UTF-8, a
//!   close code one that may be sent;
//! - a reader used all its input unless it returned a message or an error;
//! - each message, framed again as a client would send it, reads back to itself.
#![no_main]

use axum::extract::ws::Message;
use libfuzzer_sys::fuzz_target;
use wirelab::ws::frame::{self, MAX_CONTROL, Reader};

#[derive(Debug, PartialEq)]
struct Run {
    messages: Vec<Message>,
    /// The error's close code and text, if the connection failed.
    error: Option<(Option<u16>, String)>,
    idle: bool,
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, raw)) = data.split_first() else {
        return;
    };
    let deflate = knobs & 0x80 != 0;
    let max = [0, 1, 125, 126, 1024, 65_536][usize::from(knobs >> 4 & 0x7) % 6];
    let step = usize::from(knobs & 0x0f) + 1;

    let whole = read(raw, raw.len().max(1), max, deflate);
    let pieces = read(raw, step, max, deflate);
    assert_eq!(whole, pieces, "step {step}");

    for msg in &whole.messages {
        match msg {
            Message::Text(t) => {
                assert!(t.len() <= max);
                assert!(std::str::from_utf8(t.as_bytes()).is_ok());
            }
            Message::Binary(b) => assert!(b.len() <= max),
            Message::Ping(p) | Message::Pong(p) => assert!(p.len() <= MAX_CONTROL),
            Message::Close(Some(f)) => assert!(matches!(
                f.code,
                1000..=1003 | 1007..=1014 | 3000..=4999
            )),
            Message::Close(None) => {}
        }
        // Framed again (uncompressed), it reads back to itself.
        let again = client_frame(msg.clone());
        let back = read(&again, again.len(), max, false);
        assert_eq!(back.error, None, "{msg:?}");
        assert_eq!(back.messages, [msg.clone()]);
    }
});

/// Feeds `raw` to a fresh reader in reads of `step` bytes, until its end or an error.
fn read(raw: &[u8], step: usize, max: usize, deflate: bool) -> Run {
    let mut r = Reader::new(max, deflate);
    let mut messages = Vec::new();
    for mut piece in raw.chunks(step) {
        loop {
            match r.feed(piece) {
                Err(e) => {
                    return Run {
                        messages,
                        error: Some((e.close_code(), e.to_string())),
                        idle: false,
                    };
                }
                Ok((used, msg)) => {
                    assert!(used <= piece.len());
                    piece = &piece[used..];
                    match msg {
                        Some(m) => messages.push(m),
                        None => {
                            assert!(piece.is_empty(), "no message, so all input was used");
                            break;
                        }
                    }
                }
            }
        }
    }
    Run {
        messages,
        error: None,
        idle: r.is_idle(),
    }
}

/// `msg` as one final, masked client frame.
fn client_frame(msg: Message) -> Vec<u8> {
    let (opcode, payload) = frame::encode(msg).expect("a message read is one that can be sent");
    let (head, n) = frame::header(opcode, payload.len());
    let mut out = head[..usize::from(n)].to_vec();
    out[1] |= 0x80;
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}
