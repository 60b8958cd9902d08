//! The tap of one direction of one stream: every byte read is counted (in as many
//! counters as the stream's owner keeps: its own, its proxy's, the lab's) and merged into
//! the open data-event window ([`super::merge`]).

use std::sync::atomic::AtomicU64;

use tokio::time::Instant;

use super::merge::{Merged, Merger};
use crate::hub::counters::add;

/// See the module docs.
#[derive(Debug)]
pub struct Tap {
    /// The open window of bytes read, for the next data event.
    merger: Merger,
}

impl Tap {
    /// A tap capturing at most `snaplen` bytes per data event.
    pub fn new(snaplen: usize) -> Tap {
        Tap {
            merger: Merger::new(snaplen),
        }
    }

    /// `bytes` were read at `now`: counts them in each of `counters` and merges them.
    pub fn read(&mut self, now: Instant, bytes: &[u8], counters: &[&AtomicU64]) {
        for c in counters {
            add(c, bytes.len() as u64);
        }
        self.merger.push(now, bytes);
    }

    /// `n` bytes were read at `now` without the lab seeing them (spliced, while
    /// [`Tap::full`]): counts them in each of `counters` and in the open window.
    pub fn count(&mut self, now: Instant, n: usize, counters: &[&AtomicU64]) {
        for c in counters {
            add(c, n as u64);
        }
        self.merger.count(now, n);
    }

    /// Whether the open window has captured all it keeps (bytes need not be seen).
    pub fn full(&self) -> bool {
        self.merger.full()
    }

    /// When the open window closes, if one is open (for the owner's timer).
    pub fn deadline(&self) -> Option<Instant> {
        self.merger.deadline()
    }

    /// Whether the open window should have closed by `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.merger.due(now)
    }

    /// Closes the open window: what its data event says, if one was open.
    pub fn take(&mut self) -> Option<Merged> {
        self.merger.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn every_counter_counts_every_byte_and_the_window_merges() {
        let (a, b) = (AtomicU64::new(0), AtomicU64::new(5));
        let mut tap = Tap::new(4);
        let now = Instant::now();
        tap.read(now, b"hello", &[&a, &b]);
        tap.read(now, b"!", &[&a, &b]);
        assert_eq!((a.load(Relaxed), b.load(Relaxed)), (6, 11));
        assert!(tap.deadline().is_some());
        let merged = tap.take().unwrap();
        assert_eq!((merged.size, merged.payload.cut), (6, 2));
        assert!(tap.take().is_none());
    }
}
