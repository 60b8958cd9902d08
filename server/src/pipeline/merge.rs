//! Merging consecutive reads into one data event, so a flood stays readable and bounded.
//!
//! A window opens with the first byte that arrives and closes [`WINDOW`] later (or when
//! the connection half-closes or ends). Everything read in between becomes one data
//! event: `size` counts every byte, the payload keeps the first `snaplen` of them and
//! says how many were cut. A sender at 1 GB/s thus makes at most one event per window
//! per connection, whatever its rate, while the counters still count every byte.
//!
//! Plain Rust without sockets or timers of its own: the caller (a TCP session, a relay
//! pump) passes `now`.

use std::time::Duration;

use tokio::time::Instant;
use wirelab_shared::Payload;

/// How long a window stays open after its first byte: the hub's own batching interval,
/// so merging adds no delay a dashboard could see.
pub const WINDOW: Duration = Duration::from_millis(16);

/// Bytes kept past the snaplen, so a UTF-8 character cut by it is recognised as cut text
/// rather than mistaken for binary.
const UTF8_SLACK: usize = 3;

/// One closed window: what the data event says.
#[derive(Debug, PartialEq)]
pub struct Merged {
    /// Every byte read in the window.
    pub size: u64,
    /// The first `snaplen` bytes, with `cut` counting the rest.
    pub payload: Payload,
    /// The captured bytes themselves (at most `snaplen`), for `--bridge`.
    pub head: Vec<u8>,
}

/// The open window of one connection's incoming bytes.
#[derive(Debug)]
pub struct Merger {
    /// Bytes captured per event at most (`--snaplen`).
    snaplen: usize,
    /// The window's first bytes: the snaplen and [`UTF8_SLACK`] more.
    captured: Vec<u8>,
    /// Every byte of the window, captured or not.
    size: u64,
    /// When the window closes; `None` while no window is open.
    deadline: Option<Instant>,
}

impl Merger {
    /// A merger capturing at most `snaplen` bytes per event.
    pub fn new(snaplen: usize) -> Merger {
        Merger {
            snaplen,
            captured: Vec::new(),
            size: 0,
            deadline: None,
        }
    }

    /// Adds bytes read at `now`, opening a window if none is open. Empty reads add
    /// nothing and open nothing.
    pub fn push(&mut self, now: Instant, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.deadline.is_none() {
            self.deadline = Some(now + WINDOW);
        }
        let room = self
            .snaplen
            .saturating_add(UTF8_SLACK)
            .saturating_sub(self.captured.len());
        self.captured
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.size += bytes.len() as u64;
    }

    /// Whether the open window has captured all it keeps: what is read before it closes
    /// is only counted ([`Merger::count`]), so its bytes need not pass through the lab.
    pub fn full(&self) -> bool {
        self.deadline.is_some() && self.captured.len() >= self.snaplen.saturating_add(UTF8_SLACK)
    }

    /// Adds `n` bytes read at `now` that were not seen (moved by the kernel while the
    /// window is [`Merger::full`]): counted, not captured, as [`Merger::push`] would.
    pub fn count(&mut self, now: Instant, n: usize) {
        if n == 0 {
            return;
        }
        debug_assert!(self.full(), "uncaptured bytes in a window that captures");
        if self.deadline.is_none() {
            self.deadline = Some(now + WINDOW);
        }
        self.size += n as u64;
    }

    /// When the open window closes, if one is open.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the open window should have closed by `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }

    /// Closes the open window and returns what it held; `None` when none was open.
    pub fn take(&mut self) -> Option<Merged> {
        self.deadline.take()?;
        let captured = std::mem::take(&mut self.captured);
        let size = std::mem::take(&mut self.size);
        let mut payload = Payload::capture(&captured, self.snaplen);
        // `capture` counted what it cut from `captured`; add what never got that far.
        payload.cut += size - captured.len() as u64;
        let mut head = captured;
        head.truncate(self.snaplen);
        Some(Merged {
            size,
            payload,
            head,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelab_shared::payload::Encoding;

    #[test]
    fn reads_within_a_window_become_one_event() {
        let t0 = Instant::now();
        let mut m = Merger::new(64);
        assert_eq!(m.deadline(), None);
        m.push(t0, b"hel");
        m.push(t0 + Duration::from_millis(5), b"lo");
        assert_eq!(m.deadline(), Some(t0 + WINDOW));
        assert!(!m.due(t0 + Duration::from_millis(15)));
        assert!(m.due(t0 + WINDOW));
        let got = m.take().unwrap();
        assert_eq!(got.size, 5);
        assert_eq!((got.payload.data.as_str(), got.payload.cut), ("hello", 0));
        assert_eq!(got.head, b"hello");
        // Closed: nothing left, and the next byte opens a new window from its own time.
        assert_eq!(m.take(), None);
        let t1 = t0 + Duration::from_secs(1);
        m.push(t1, b"!");
        assert_eq!(m.deadline(), Some(t1 + WINDOW));
        assert_eq!(m.take().unwrap().size, 1);
    }

    #[test]
    fn a_flood_counts_every_byte_but_captures_only_the_snaplen() {
        let t0 = Instant::now();
        let mut m = Merger::new(10);
        let chunk = [b'x'; 4096];
        for _ in 0..1000 {
            m.push(t0, &chunk);
        }
        let got = m.take().unwrap();
        assert_eq!(got.size, 4_096_000);
        assert_eq!(got.payload.enc, Encoding::Text);
        assert_eq!(got.payload.data, "x".repeat(10));
        assert_eq!(got.payload.cut, 4_096_000 - 10);
        assert_eq!(got.head.len(), 10);
    }

    #[test]
    fn a_full_window_counts_what_it_does_not_see() {
        let t0 = Instant::now();
        let mut m = Merger::new(4);
        assert!(!m.full(), "no window open");
        m.push(t0, b"abcdef");
        assert!(!m.full(), "the slack past the snaplen is not captured yet");
        m.push(t0, b"ghij");
        assert!(m.full());
        m.count(t0, 1000);
        m.count(t0, 0);
        let got = m.take().unwrap();
        assert_eq!((got.size, got.payload.cut), (1010, 1006));
        assert_eq!(got.payload.data, "abcd");
        assert!(!m.full(), "a new window captures again");
    }

    #[test]
    fn empty_reads_open_no_window() {
        let mut m = Merger::new(10);
        m.push(Instant::now(), b"");
        assert_eq!(m.deadline(), None);
        assert_eq!(m.take(), None);
    }

    #[test]
    fn binary_is_captured_as_base64_and_text_cut_mid_character_stays_text() {
        let now = Instant::now();
        let mut m = Merger::new(3);
        m.push(now, &[0xff, 0x00, 0x01, 0x02, 0x03]);
        let got = m.take().unwrap();
        assert_eq!(got.payload.enc, Encoding::Base64);
        assert_eq!(got.payload.bytes(), vec![0xff, 0x00, 0x01]);
        assert_eq!((got.size, got.payload.cut), (5, 2));

        // "aé" then more: the snaplen (2) falls inside 'é' (bytes 1..3).
        let mut m = Merger::new(2);
        m.push(now, "aé".as_bytes());
        m.push(now, b"zzzz");
        let got = m.take().unwrap();
        assert_eq!(got.payload.enc, Encoding::Text);
        assert_eq!((got.payload.data.as_str(), got.payload.cut), ("a", 6));
        assert_eq!(got.size, 7);
    }

    #[test]
    fn a_zero_snaplen_captures_nothing_and_counts_everything() {
        let mut m = Merger::new(0);
        m.push(Instant::now(), b"abc");
        let got = m.take().unwrap();
        assert_eq!(
            (got.size, got.payload.data.as_str(), got.payload.cut),
            (3, "", 3)
        );
        assert!(got.head.is_empty());
    }
}
