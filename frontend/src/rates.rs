//! [`RateWindow`]: events and bytes per second for each protocol over the last minute,
//! in one-second buckets keyed by the server's clock (event times, and the `state`
//! frame's time when nothing happens), so the charts agree with the timeline.

use wirelab_shared::Protocol;

/// Complete seconds charted.
pub const WINDOW: usize = 60;
/// Buckets: the charted seconds and the one being filled.
const SLOTS: usize = WINDOW + 1;
const PROTOS: usize = Protocol::ALL.len();

/// One second of one protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bucket {
    events: u32,
    bytes: u64,
}

/// Per-second counts for the last [`WINDOW`] seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateWindow {
    /// The newest second seen (Unix seconds); it is still being filled.
    newest: u64,
    /// Buckets indexed by `second % SLOTS`, then by protocol.
    buckets: [[Bucket; PROTOS]; SLOTS],
}

impl Default for RateWindow {
    fn default() -> Self {
        RateWindow {
            newest: 0,
            buckets: [[Bucket::default(); PROTOS]; SLOTS],
        }
    }
}

/// What to chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    Events,
    Bytes,
}

impl RateWindow {
    /// Moves the window so that `ts_us` is its newest second; older buckets fall out.
    pub fn advance(&mut self, ts_us: u64) {
        let sec = ts_us / 1_000_000;
        if sec <= self.newest {
            return;
        }
        let gap = (sec - self.newest).min(SLOTS as u64);
        for s in (sec + 1 - gap)..=sec {
            self.buckets[(s % SLOTS as u64) as usize] = [Bucket::default(); PROTOS];
        }
        self.newest = sec;
    }

    /// Counts one event of `bytes` bytes at `ts_us`. Events older than the window are
    /// not charted (the counters elsewhere still count them).
    pub fn add(&mut self, ts_us: u64, proto: Protocol, bytes: u64) {
        self.advance(ts_us);
        let sec = ts_us / 1_000_000;
        if sec + SLOTS as u64 <= self.newest {
            return;
        }
        let b = &mut self.buckets[(sec % SLOTS as u64) as usize][proto as usize];
        b.events = b.events.saturating_add(1);
        b.bytes += bytes;
    }

    /// The last [`WINDOW`] complete seconds, oldest first, for one protocol or all
    /// (`None`). The newest second is left out until it is over.
    pub fn series(&self, proto: Option<Protocol>, measure: Measure) -> Vec<u64> {
        (1..=WINDOW as u64)
            .rev()
            .map(|ago| self.at(self.newest.saturating_sub(ago), ago, proto, measure))
            .collect()
    }

    fn at(&self, sec: u64, ago: u64, proto: Option<Protocol>, measure: Measure) -> u64 {
        if ago > self.newest {
            return 0;
        }
        let row = &self.buckets[(sec % SLOTS as u64) as usize];
        let pick = |b: &Bucket| match measure {
            Measure::Events => u64::from(b.events),
            Measure::Bytes => b.bytes,
        };
        match proto {
            Some(p) => pick(&row[p as usize]),
            None => row.iter().map(pick).sum(),
        }
    }

    /// The last complete second, for every protocol.
    pub fn last_second(&self, measure: Measure) -> u64 {
        self.at(self.newest.saturating_sub(1), 1, None, measure)
    }

    /// The newest second seen (Unix seconds): the charts change only when it does.
    pub fn newest(&self) -> u64 {
        self.newest
    }

    /// Whether anything at all is in the window.
    pub fn is_quiet(&self) -> bool {
        self.buckets.iter().flatten().all(|b| b.events == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    #[test]
    fn counts_land_in_their_second_and_age_out() {
        let mut w = RateWindow::default();
        w.add(100 * S, Protocol::Udp, 10);
        w.add(100 * S + 5, Protocol::Udp, 20);
        w.add(100 * S + 9, Protocol::Tcp, 1);
        // Second 100 is still being filled: not charted yet.
        assert_eq!(w.last_second(Measure::Events), 0);
        w.advance(101 * S);
        assert_eq!(w.last_second(Measure::Events), 3);
        assert_eq!(w.last_second(Measure::Bytes), 31);
        let udp = w.series(Some(Protocol::Udp), Measure::Bytes);
        assert_eq!(udp.len(), WINDOW);
        assert_eq!(udp[WINDOW - 1], 30);
        assert_eq!(udp.iter().sum::<u64>(), 30);
        // Half a minute later it has moved left; a minute later it is gone.
        w.advance(131 * S);
        let all = w.series(None, Measure::Events);
        assert_eq!(all[WINDOW - 31], 3);
        w.advance(161 * S);
        assert_eq!(w.series(None, Measure::Events).iter().sum::<u64>(), 0);
        assert!(w.is_quiet());
    }

    #[test]
    fn the_second_being_filled_is_never_charted() {
        let mut w = RateWindow::default();
        w.advance(1000 * S);
        w.add(1000 * S + 1, Protocol::Ws, 1);
        assert_eq!(
            w.series(Some(Protocol::Ws), Measure::Events),
            vec![0; WINDOW]
        );
        w.advance(1001 * S);
        let s = w.series(Some(Protocol::Ws), Measure::Events);
        assert_eq!((s[0], s[WINDOW - 1]), (0, 1));
        w.advance(1060 * S);
        let s = w.series(Some(Protocol::Ws), Measure::Events);
        assert_eq!((s[0], s.iter().sum::<u64>()), (1, 1));
        w.advance(1061 * S);
        assert_eq!(
            w.series(Some(Protocol::Ws), Measure::Events)
                .iter()
                .sum::<u64>(),
            0
        );
    }

    #[test]
    fn late_and_ancient_events() {
        let mut w = RateWindow::default();
        w.advance(500 * S);
        w.add(499 * S, Protocol::Http, 5); // a little late: still counted
        w.add(10 * S, Protocol::Http, 5); // out of the window: ignored
        assert_eq!(w.last_second(Measure::Events), 1);
        // A jump of more than a window clears everything.
        w.advance(10_000 * S);
        assert!(w.is_quiet());
    }

    #[test]
    fn a_fresh_window_charts_zeros_near_the_epoch() {
        let mut w = RateWindow::default();
        w.add(3 * S, Protocol::Ws, 1);
        w.advance(4 * S);
        let s = w.series(None, Measure::Events);
        assert_eq!(s.iter().sum::<u64>(), 1);
        assert_eq!(s[WINDOW - 1], 1);
    }
}
