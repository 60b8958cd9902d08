//! WebSocket frames read as they pass an `http` proxy, one direction's, once the upstream
//! answered an upgrade with `101 Switching Protocols`. The bytes are relayed untouched;
//! this only tells them apart: each frame's opcode, FIN, RSV1, length, its first
//! `--snaplen` bytes unmasked, a close frame's code and reason. Nothing is checked (a
//! proxy shows what passed, valid or not), and nothing is held but the frame being read.
//!
//! Under a flood of small frames, at most [`EVENTS_PER_SEC`] frames a second become events
//! in each direction; the next one shown says how many were not. Close frames are always
//! shown.

use std::time::Duration;

use tokio::time::Instant;
use wirelab_shared::Payload;

/// Frame events per second per direction at most (past it, frames are counted only).
pub const EVENTS_PER_SEC: u32 = 200;

/// A frame that passed.
#[derive(Debug, PartialEq)]
pub struct Frame {
    pub opcode: u8,
    pub fin: bool,
    pub rsv1: bool,
    /// The payload's length.
    pub size: u64,
    /// Its first bytes, unmasked.
    pub payload: Payload,
    pub close_code: Option<u16>,
    pub close_reason: Option<String>,
    /// Frames before this one that were not shown (past [`EVENTS_PER_SEC`]).
    pub skipped: u64,
}

/// The frame being read.
#[derive(Debug)]
struct Current {
    opcode: u8,
    fin: bool,
    rsv1: bool,
    size: u64,
    mask: Option<[u8; 4]>,
    /// Payload bytes read so far.
    done: u64,
    /// The first of them, unmasked.
    kept: Vec<u8>,
    /// Whether it becomes an event.
    shown: bool,
}

/// One direction's frames. See the module docs.
#[derive(Debug)]
pub struct Frames {
    snaplen: usize,
    /// A header being read, and how many of its bytes are in.
    head: [u8; 14],
    have: usize,
    current: Option<Current>,
    /// The rate window: when it started and how many frames it showed.
    window: Option<Instant>,
    shown: u32,
    /// Frames not shown since the last one shown.
    skipped: u64,
}

impl Frames {
    /// Frames keeping at most `snaplen` payload bytes each (125 for control frames).
    pub fn new(snaplen: usize) -> Frames {
        Frames {
            snaplen,
            head: [0; 14],
            have: 0,
            current: None,
            window: None,
            shown: 0,
            skipped: 0,
        }
    }

    /// Whether the next byte starts a frame (where the page may put one of its own).
    pub fn at_boundary(&self) -> bool {
        self.have == 0 && self.current.is_none()
    }

    /// Frames not shown and not yet reported by a shown one.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Reads `bytes` read at `now`; each frame that ends in them and is shown goes into
    /// `out`.
    pub fn feed(&mut self, mut bytes: &[u8], now: Instant, out: &mut Vec<Frame>) {
        while !bytes.is_empty() {
            let Some(current) = &mut self.current else {
                let take = (self.need() - self.have).min(bytes.len());
                self.head[self.have..self.have + take].copy_from_slice(&bytes[..take]);
                self.have += take;
                bytes = &bytes[take..];
                if self.have >= 2 && self.have == self.need() {
                    self.start(now);
                    self.end_if_done(out);
                }
                continue;
            };
            let left = current.size - current.done;
            let take = left.min(bytes.len() as u64) as usize;
            let limit = if current.opcode >= 8 {
                125
            } else {
                self.snaplen + 4
            };
            let room = limit.saturating_sub(current.kept.len()).min(take);
            let at = current.kept.len();
            current.kept.extend_from_slice(&bytes[..room]);
            if let Some(mask) = current.mask {
                let offset = current.done as usize;
                for (i, b) in current.kept[at..].iter_mut().enumerate() {
                    *b ^= mask[(offset + i) % 4];
                }
            }
            current.done += take as u64;
            bytes = &bytes[take..];
            self.end_if_done(out);
        }
    }

    /// The header's length, as far as its first two bytes tell.
    fn need(&self) -> usize {
        if self.have < 2 {
            return 2;
        }
        let ext = match self.head[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + if self.head[1] & 0x80 != 0 { 4 } else { 0 }
    }

    /// The header is in: the frame's payload comes next.
    fn start(&mut self, now: Instant) {
        let h = self.head;
        let (size, mut at) = match h[1] & 0x7f {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => (
                u64::from_be_bytes(h[2..10].try_into().unwrap_or_default()),
                10,
            ),
            n => (u64::from(n), 2),
        };
        let mask = (h[1] & 0x80 != 0).then(|| {
            let m = [h[at], h[at + 1], h[at + 2], h[at + 3]];
            at += 4;
            m
        });
        debug_assert_eq!(at, self.have);
        let opcode = h[0] & 0x0f;
        let shown = opcode == 8 || self.admit(now);
        self.current = Some(Current {
            opcode,
            fin: h[0] & 0x80 != 0,
            rsv1: h[0] & 0x40 != 0,
            size,
            mask,
            done: 0,
            kept: Vec::new(),
            shown,
        });
        self.have = 0;
    }

    /// Whether a frame starting at `now` may be an event (the rate window).
    fn admit(&mut self, now: Instant) -> bool {
        match self.window {
            Some(start) if now.duration_since(start) < Duration::from_secs(1) => {}
            _ => {
                self.window = Some(now);
                self.shown = 0;
            }
        }
        self.shown += 1;
        self.shown <= EVENTS_PER_SEC
    }

    /// Ends the current frame if all its payload is in.
    fn end_if_done(&mut self, out: &mut Vec<Frame>) {
        let Some(c) = self.current.take_if(|c| c.done == c.size) else {
            return;
        };
        if !c.shown {
            self.skipped += 1;
            return;
        }
        let (close_code, close_reason) = match (c.opcode, c.kept.as_slice()) {
            (8, [a, b, reason @ ..]) => (
                Some(u16::from_be_bytes([*a, *b])),
                Some(String::from_utf8_lossy(reason).into_owned()),
            ),
            _ => (None, None),
        };
        let mut payload = Payload::capture(&c.kept, self.snaplen);
        payload.cut = c.size - (c.kept.len() as u64 - payload.cut);
        out.push(Frame {
            opcode: c.opcode,
            fin: c.fin,
            rsv1: c.rsv1,
            size: c.size,
            payload,
            close_code,
            close_reason,
            skipped: std::mem::take(&mut self.skipped),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked text frame, as a client sends it.
    fn masked(text: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut f = vec![0x81, 0x80 | text.len() as u8];
        f.extend_from_slice(&mask);
        f.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    #[test]
    fn frames_are_read_across_any_cut_and_unmasked() {
        let mut wire = masked(b"hello");
        wire.extend_from_slice(&[0x88, 0x04, 0x03, 0xe8, b'o', b'k']);
        let long = vec![b'x'; 300];
        wire.extend_from_slice(&[0x02, 126, 0x01, 0x2c]);
        wire.extend_from_slice(&long);
        for cut in [1, 2, 3, 7, wire.len()] {
            let mut frames = Frames::new(8);
            let mut out = Vec::new();
            let now = Instant::now();
            for piece in wire.chunks(cut) {
                frames.feed(piece, now, &mut out);
            }
            assert!(frames.at_boundary());
            assert_eq!(out.len(), 3, "cut {cut}");
            assert_eq!((out[0].opcode, out[0].size), (1, 5));
            assert_eq!(out[0].payload.data, "hello");
            assert_eq!(out[1].close_code, Some(1000));
            assert_eq!(out[1].close_reason.as_deref(), Some("ok"));
            assert_eq!((out[2].opcode, out[2].fin, out[2].size), (2, false, 300));
            assert_eq!((out[2].payload.data.len(), out[2].payload.cut), (8, 292));
        }
    }

    #[test]
    fn a_flood_is_counted_and_the_next_frame_shown_says_how_many_were_not() {
        let mut frames = Frames::new(8);
        let mut out = Vec::new();
        let now = Instant::now();
        let wire: Vec<u8> = (0..EVENTS_PER_SEC + 50)
            .flat_map(|_| masked(b"x"))
            .collect();
        frames.feed(&wire, now, &mut out);
        assert_eq!(out.len(), EVENTS_PER_SEC as usize);
        assert_eq!(frames.skipped(), 50);
        frames.feed(&masked(b"y"), now + Duration::from_secs(2), &mut out);
        assert_eq!(out.last().map(|f| f.skipped), Some(50));
    }
}
