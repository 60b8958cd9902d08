//! A chunked request body, decoded as the HTTP service decodes it
//! (`wirelab::http::chunked::Chunked`), from bytes that arrive in pieces.
//!
//! The first input byte chooses how the rest is cut into reads. Checked beyond "no
//! panic":
//! - the verdict (ended, error, still waiting), the body and what is left for the next
//!   request are the same however the bytes arrive: all at once, or in pieces;
//! - the decoder never makes more body than it was given, and what it consumes plus
//!   what it leaves is what it was given;
//! - a body it decoded, chunked again as one chunk, decodes to itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wirelab::http::chunked::Chunked;

#[derive(Debug, PartialEq)]
enum Verdict {
    /// The body ended; what followed it stays in the buffer.
    Ended {
        body: Vec<u8>,
        rest: Vec<u8>,
    },
    Error(String),
    /// All input read, the body not ended.
    Waiting {
        body: Vec<u8>,
    },
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, raw)) = data.split_first() else {
        return;
    };
    let whole = decode(raw, raw.len().max(1));
    let step = usize::from(cut % 16) + 1;
    let pieces = decode(raw, step);
    // An error may be seen earlier in pieces (a line over the limit is noticed before
    // it ends), but never a different outcome.
    match (&whole, &pieces) {
        (Verdict::Error(_), Verdict::Error(_)) => {}
        _ => assert_eq!(whole, pieces, "step {step}"),
    }
    match whole {
        Verdict::Ended { body, rest } => {
            assert!(body.len() + rest.len() <= raw.len());
            assert!(raw.ends_with(&rest), "what is left is the input's tail");
            let mut again = format!("{:x}\r\n", body.len()).into_bytes();
            if !body.is_empty() {
                again.extend_from_slice(&body);
                again.extend_from_slice(b"\r\n0\r\n");
            }
            again.extend_from_slice(b"\r\n");
            let rechunked = decode(&again, again.len());
            assert_eq!(
                rechunked,
                Verdict::Ended {
                    body,
                    rest: Vec::new()
                }
            );
        }
        Verdict::Waiting { body } => assert!(body.len() <= raw.len()),
        Verdict::Error(why) => assert!(!why.is_empty()),
    }
});

/// Feeds `raw` in reads of `step` bytes, as a connection's read buffer fills.
fn decode(raw: &[u8], step: usize) -> Verdict {
    let mut d = Chunked::default();
    let (mut buf, mut out) = (BytesMut::new(), BytesMut::new());
    let mut fed = 0;
    for piece in raw.chunks(step) {
        buf.extend_from_slice(piece);
        fed += piece.len();
        let before = buf.len() + out.len();
        match d.decode(&mut buf, &mut out) {
            Ok(true) => {
                // What is not decoded yet stays at the end of the input fed so far.
                assert!(raw[..fed].ends_with(&buf));
                buf.extend_from_slice(&raw[fed..]);
                return Verdict::Ended {
                    body: out.to_vec(),
                    rest: buf.to_vec(),
                };
            }
            Ok(false) => assert!(buf.len() + out.len() <= before),
            Err(why) => return Verdict::Error(why),
        }
    }
    Verdict::Waiting { body: out.to_vec() }
}
