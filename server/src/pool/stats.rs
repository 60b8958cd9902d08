//! A run's running totals: counters any worker bumps without a lock, and the latency
//! histogram (HdrHistogram, 3 significant digits) for p50 and p99.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::hub::lock;

/// Latencies above this (µs) are recorded as this.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// See the module docs.
pub struct Figures {
    /// Connections opened since the run began.
    pub opened: AtomicU64,
    /// Requests answered.
    pub done: AtomicU64,
    /// Requests that failed (no answer).
    pub errors: AtomicU64,
    /// Requests on their own connection right now (no-pool mode: its "in use").
    pub in_flight: AtomicU64,
    /// The first failure, to say why a run failed.
    pub first_error: OnceLock<String>,
    /// Time from asking for a connection to the end of the response, in µs.
    latency: Mutex<Histogram<u64>>,
}

impl Default for Figures {
    fn default() -> Self {
        Figures {
            opened: AtomicU64::new(0),
            done: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            first_error: OnceLock::new(),
            latency: Mutex::new(
                Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds"),
            ),
        }
    }
}

impl Figures {
    /// Counts an answered request that took `took`.
    pub fn answered(&self, took: Duration) {
        let us = (took.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        lock(&self.latency).saturating_record(us);
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed request.
    pub fn failed(&self, why: String) {
        let _ = self.first_error.set(why);
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Latency p50 and p99 in µs (0 before the first answer).
    pub fn percentiles(&self) -> (u64, u64) {
        let h = lock(&self.latency);
        if h.is_empty() {
            return (0, 0);
        }
        (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_what_was_recorded() {
        let f = Figures::default();
        assert_eq!(f.percentiles(), (0, 0));
        for ms in 1..=100 {
            f.answered(Duration::from_millis(ms));
        }
        let (p50, p99) = f.percentiles();
        assert!((49_900..=50_100).contains(&p50), "{p50}");
        assert!((98_900..=99_100).contains(&p99), "{p99}");
        assert_eq!(Figures::get(&f.done), 100);
        f.failed("first".into());
        f.failed("second".into());
        assert_eq!(
            (
                Figures::get(&f.errors),
                f.first_error.get().unwrap().as_str()
            ),
            (2, "first")
        );
    }
}
