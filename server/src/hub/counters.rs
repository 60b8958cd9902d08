//! The lab's counters as atomics, so any task can bump them without a lock; a snapshot
//! turns them into the wire type [`wirelab_shared::Counters`].

use std::sync::atomic::{AtomicU64, Ordering};

use wirelab_shared::Counters;

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        /// One atomic per field of [`Counters`].
        #[derive(Default, Debug)]
        pub struct AtomicCounters {
            $(pub $name: AtomicU64,)*
        }

        impl AtomicCounters {
            /// The current values.
            pub fn snapshot(&self) -> Counters {
                Counters {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }

            /// Starts from saved values (after a restart with a store).
            pub fn restore(&self, from: &Counters) {
                $(self.$name.store(from.$name, Ordering::Relaxed);)*
            }
        }
    };
}

counters!(
    events,
    events_dropped,
    tcp_conns,
    tcp_refused,
    tcp_bytes_in,
    tcp_bytes_out,
    tcp_bytes_dropped,
    udp_dgrams_in,
    udp_dgrams_out,
    udp_bytes_in,
    udp_bytes_out,
    udp_peers_evicted,
    udp_send_errors,
    http_requests,
    http_conns,
    http_refused,
    http_bytes_in,
    http_bytes_out,
    ws_clients,
    ws_refused,
    ws_frames_in,
    ws_frames_out,
    ws_bytes_in,
    ws_bytes_out,
    ws_missed,
    ws_slow_closed,
    ws_service_clients,
    ws_service_refused,
    ws_service_dropped,
    relay_conns,
    relay_refused,
    bridge_dropped,
    fault_dropped,
    stored,
    store_errors,
);

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reads_what_was_added() {
        let c = AtomicCounters::default();
        add(&c.udp_bytes_in, 5);
        add(&c.udp_bytes_in, 7);
        add(&c.events, 1);
        let s = c.snapshot();
        assert_eq!((s.udp_bytes_in, s.events, s.tcp_conns), (12, 1, 0));
        let d = AtomicCounters::default();
        d.restore(&s);
        assert_eq!(d.snapshot(), s);
    }
}
