//! A WebSocket message from the page, made into the frame one leg expects: toward the
//! upstream masked, as a client's frames must be (RFC 6455 section 5.3), toward the client
//! not, as a server's must not be. One frame with FIN, text or binary.

use std::hash::{BuildHasher, RandomState};

use bytes::Bytes;
use wirelab_shared::Leg;

use crate::ws::frame::header;

/// The frame carrying `payload` toward `toward`.
pub fn frame(toward: Leg, binary: bool, payload: &[u8]) -> Bytes {
    let opcode = if binary { 2 } else { 1 };
    let (head, n) = header(opcode, payload.len());
    let mut out = Vec::with_capacity(usize::from(n) + 4 + payload.len());
    out.extend_from_slice(&head[..usize::from(n)]);
    match toward {
        Leg::Client => out.extend_from_slice(payload),
        Leg::Upstream => {
            out[1] |= 0x80;
            let mask = mask_key();
            out.extend_from_slice(&mask);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        }
    }
    out.into()
}

/// A masking key nobody can predict from the frames before it: std's per-instance random
/// hash keys (the lab has no other use for a random number generator).
fn mask_key() -> [u8; 4] {
    let bits = RandomState::new().hash_one(std::process::id());
    let b = bits.to_le_bytes();
    [b[0], b[1], b[2], b[3]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::http::frames::Frames;
    use tokio::time::Instant;

    #[test]
    fn frames_toward_each_leg_read_back_as_the_message() {
        for (toward, masked) in [(Leg::Client, false), (Leg::Upstream, true)] {
            let text = "x".repeat(300);
            let bytes = frame(toward, false, text.as_bytes());
            assert_eq!(bytes[1] & 0x80 != 0, masked, "{toward:?}");
            let mut frames = Frames::new(1000);
            let mut out = Vec::new();
            frames.feed(&bytes, Instant::now(), &mut out);
            assert_eq!(out.len(), 1);
            assert_eq!((out[0].opcode, out[0].fin, out[0].size), (1, true, 300));
            assert_eq!(out[0].payload.data, text);
        }
        assert_eq!(frame(Leg::Client, true, &[0, 1])[..], [0x82, 2, 0, 1]);
    }
}
