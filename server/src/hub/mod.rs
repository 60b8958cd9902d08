//! The event hub: every service publishes here; the hub numbers the events, keeps a
//! backlog, and every 16 ms (or 256 events, whichever comes first) serializes one
//! batch once and hands the same bytes to every WebSocket client.
//!
//! Publishing is a short lock and a push: no service ever waits on a client, the disk or
//! the serializer. Intake is bounded; past it events are dropped and counted.

pub mod counters;
pub mod frame;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, broadcast, mpsc};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use wirelab_shared::{Event, EventKind};

pub use counters::AtomicCounters;
pub use frame::{Batch, Frame};

/// Events per frame at most.
pub const BATCH_MAX: usize = 256;
/// Time between frames at most while events are coming in.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(16);
/// Events waiting for the next flush at most; past that they are dropped and counted.
const PENDING_CAP: usize = BATCH_MAX * 64;

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Locks a mutex, ignoring poisoning: the data behind our mutexes stays consistent
/// between statements, so a panicked holder leaves nothing half-done.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a tap gets: one `events` frame, with its events and each one's JSON
/// ([`Frame::event_json`]).
pub type EventBatch = Frame;

/// What a new client gets: the live stream from now on, and what came before it.
pub struct Subscription {
    /// Frames from now on.
    pub rx: broadcast::Receiver<Frame>,
    /// Events before the stream starts, oldest first.
    pub backlog: Vec<Arc<Event>>,
    /// Set when the client's `since` was honoured: `backlog` holds every event after it.
    pub resumed_from: Option<u64>,
    /// The highest `seq` issued before the stream starts.
    pub last_seq: u64,
}

/// See the module docs.
pub struct Hub {
    /// Events published since the last flush, and the next `seq` to give out.
    pending: Mutex<Pending>,
    /// Wakes the flusher early when a full batch is waiting.
    wake: Notify,
    /// Every frame for every client; a client that falls `ws_queue` frames behind is
    /// told it lagged.
    tx: broadcast::Sender<Frame>,
    /// The latest events, for new clients and for resuming; its lock also orders frames.
    backlog: Mutex<Backlog>,
    /// How many events `backlog` keeps.
    backlog_cap: usize,
    /// The first `seq` of this run (the backlog may start with events of an earlier one).
    first_seq: u64,
    /// Consumers of every batch besides the clients (the recorder), each bounded.
    taps: Mutex<Vec<mpsc::Sender<EventBatch>>>,
    /// Events in batches a tap could not take (also counted in `store_errors`: the one tap
    /// is the recorder's).
    tap_lost: AtomicU64,
    /// The lab's counters.
    pub counters: AtomicCounters,
    /// The last HTTP exchange id given out: one numbering for the HTTP service's own
    /// exchanges and every `http` proxy's, so an id names one exchange on the page.
    exchange_ids: Arc<AtomicU64>,
}

struct Backlog {
    events: VecDeque<Arc<Event>>,
    /// The highest `seq` sent out so far.
    last_seq: u64,
}

struct Pending {
    next_seq: u64,
    events: Vec<Arc<Event>>,
}

impl Hub {
    /// A hub whose first event gets `first_seq`, keeping `backlog` events for new clients
    /// and letting clients fall `queue` frames behind.
    pub fn new(first_seq: u64, backlog: usize, queue: usize) -> Hub {
        Hub {
            pending: Mutex::new(Pending {
                next_seq: first_seq.max(1),
                events: Vec::with_capacity(BATCH_MAX),
            }),
            wake: Notify::new(),
            tx: broadcast::channel(queue.max(1)).0,
            backlog: Mutex::new(Backlog {
                events: VecDeque::with_capacity(backlog),
                last_seq: first_seq.max(1) - 1,
            }),
            backlog_cap: backlog,
            first_seq: first_seq.max(1),
            taps: Mutex::new(Vec::new()),
            tap_lost: AtomicU64::new(0),
            counters: AtomicCounters::default(),
            exchange_ids: Arc::default(),
        }
    }

    /// The lab's HTTP exchange numbering (each id is `fetch_add(1) + 1`).
    pub fn exchange_ids(&self) -> Arc<AtomicU64> {
        self.exchange_ids.clone()
    }

    /// Publishes an event; returns its `seq`, or `None` when the intake was full and the
    /// event was dropped (and counted).
    pub fn publish(&self, kind: EventKind) -> Option<u64> {
        let mut pending = lock(&self.pending);
        if pending.events.len() >= PENDING_CAP {
            drop(pending);
            counters::add(&self.counters.events_dropped, 1);
            return None;
        }
        let seq = pending.next_seq;
        pending.next_seq += 1;
        pending.events.push(Arc::new(Event {
            seq,
            ts_us: now_us(),
            kind,
        }));
        let full = pending.events.len() >= BATCH_MAX;
        drop(pending);
        counters::add(&self.counters.events, 1);
        if full {
            self.wake.notify_one();
        }
        Some(seq)
    }

    /// Sends a non-event frame (state, pool figures) to every client.
    pub fn broadcast(&self, frame: Frame) {
        let _held = lock(&self.backlog); // keeps frames in order with event batches
        let _ = self.tx.send(frame);
    }

    /// Events lost to taps so far (batches a full tap could not take).
    pub fn tap_lost(&self) -> u64 {
        self.tap_lost.load(Ordering::Relaxed)
    }

    /// Number of connected subscribers.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Adds a consumer of every batch (bounded by `cap` batches; what it can't take is
    /// dropped, and counted in [`Hub::tap_lost`] and `store_errors`).
    pub fn tap(&self, cap: usize) -> mpsc::Receiver<EventBatch> {
        let (tx, rx) = mpsc::channel(cap);
        lock(&self.taps).push(tx);
        rx
    }

    /// Subscribes a client; with `since`, resumes after that `seq` if the backlog still
    /// holds everything after it.
    pub fn subscribe(&self, since: Option<u64>) -> Subscription {
        let held = lock(&self.backlog);
        let rx = self.tx.subscribe();
        let (backlog, last_seq) = (&held.events, held.last_seq);
        let first = backlog.front().map_or(last_seq + 1, |e| e.seq);
        match since {
            Some(s) if s <= last_seq && s + 1 >= first => Subscription {
                rx,
                backlog: backlog.range((s + 1 - first) as usize..).cloned().collect(),
                resumed_from: Some(s),
                last_seq,
            },
            _ => Subscription {
                rx,
                backlog: backlog.iter().cloned().collect(),
                resumed_from: None,
                last_seq,
            },
        }
    }

    /// Fills the backlog with events recorded before a restart, so the first dashboards
    /// see recent history and can resume. Only the newest run of consecutive `seq`s ending
    /// right before this hub's first one is taken: the backlog's `seq`s have no holes.
    pub fn preload(&self, newest_first: impl IntoIterator<Item = Event>) {
        let mut backlog = lock(&self.backlog);
        if !backlog.events.is_empty() {
            return;
        }
        let mut expect = backlog.last_seq;
        for ev in newest_first {
            if ev.seq != expect || backlog.events.len() == self.backlog_cap || expect == 0 {
                break;
            }
            expect -= 1;
            backlog.events.push_front(Arc::new(ev));
        }
    }

    /// The event `seq`, if the backlog still holds it.
    pub fn find(&self, seq: u64) -> Option<Arc<Event>> {
        let backlog = lock(&self.backlog);
        let first = backlog.events.front()?.seq;
        backlog
            .events
            .get(seq.checked_sub(first)? as usize)
            .cloned()
    }

    /// The newest event of this run (not one preloaded from before a restart) still in
    /// the backlog for which `pred` holds.
    pub fn find_latest(&self, pred: impl Fn(&Event) -> bool) -> Option<Arc<Event>> {
        let backlog = lock(&self.backlog);
        backlog
            .events
            .iter()
            .rev()
            .take_while(|e| e.seq >= self.first_seq)
            .find(|e| pred(e))
            .cloned()
    }

    /// Takes what is pending and sends it out as frames of at most [`BATCH_MAX`] events.
    pub fn flush(&self) {
        let events = std::mem::take(&mut lock(&self.pending).events);
        for chunk in events.chunks(BATCH_MAX) {
            let frame = Frame::events(chunk.to_vec());
            let for_taps = frame.clone();
            {
                let mut backlog = lock(&self.backlog);
                for ev in chunk {
                    if backlog.events.len() == self.backlog_cap {
                        backlog.events.pop_front();
                    }
                    if self.backlog_cap > 0 {
                        backlog.events.push_back(ev.clone());
                    }
                    backlog.last_seq = ev.seq;
                }
                let _ = self.tx.send(frame);
            }
            for tap in lock(&self.taps).iter() {
                // Never wait for a tap: what it can't take is lost to it, and counted now
                // (not when a later batch shows the gap, which may never come).
                if tap.try_send(for_taps.clone()).is_err() {
                    let n = chunk.len() as u64;
                    counters::add(&self.counters.store_errors, n);
                    self.tap_lost.fetch_add(n, Ordering::Relaxed);
                }
            }
        }
    }

    /// Flushes every [`BATCH_INTERVAL`], or at once when a batch fills, until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(BATCH_INTERVAL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.wake.notified() => {}
                _ = shutdown.cancelled() => break,
            }
            self.flush();
        }
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelab_shared::ServerMsg;

    fn chat(text: &str) -> EventKind {
        EventKind::Chat {
            from: "t".into(),
            text: text.into(),
        }
    }

    #[test]
    fn events_are_numbered_and_batched_in_order() {
        let hub = Hub::new(1, 10, 16);
        let mut sub = hub.subscribe(None);
        for i in 0..300 {
            assert_eq!(hub.publish(chat(&i.to_string())), Some(i + 1));
        }
        hub.flush();
        let first = sub.rx.try_recv().unwrap();
        let second = sub.rx.try_recv().unwrap();
        let (a, b) = (first.batch.unwrap(), second.batch.unwrap());
        assert_eq!((a.first_seq, a.last_seq), (1, 256));
        assert_eq!((b.first_seq, b.last_seq), (257, 300));
        let ServerMsg::Events { events } = serde_json::from_str(second.text.as_str()).unwrap()
        else {
            panic!("not events")
        };
        assert_eq!(events.len(), 44);
    }

    #[test]
    fn backlog_keeps_the_latest_and_resume_honours_since() {
        let hub = Hub::new(1, 5, 16);
        for i in 0..8 {
            hub.publish(chat(&i.to_string()));
        }
        hub.flush();
        let all = hub.subscribe(None);
        assert_eq!(
            all.backlog.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [4, 5, 6, 7, 8]
        );
        assert_eq!((all.resumed_from, all.last_seq), (None, 8));
        let resumed = hub.subscribe(Some(6));
        assert_eq!(resumed.resumed_from, Some(6));
        assert_eq!(
            resumed.backlog.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [7, 8]
        );
        let caught_up = hub.subscribe(Some(8));
        assert_eq!(
            (caught_up.resumed_from, caught_up.backlog.len()),
            (Some(8), 0)
        );
        // 2 has left the backlog: resuming after it would leave a hole.
        assert_eq!(hub.subscribe(Some(2)).resumed_from, None);
        // A seq from the future (the server restarted): start afresh.
        assert_eq!(hub.subscribe(Some(99)).resumed_from, None);
        assert_eq!(hub.subscribe(Some(3)).resumed_from, Some(3));
    }

    #[test]
    fn intake_is_bounded_and_drops_are_counted() {
        let hub = Hub::new(1, 0, 4);
        for _ in 0..PENDING_CAP + 10 {
            hub.publish(chat("x"));
        }
        let c = hub.counters.snapshot();
        assert_eq!(c.events, PENDING_CAP as u64);
        assert_eq!(c.events_dropped, 10);
    }

    #[test]
    fn a_client_that_falls_behind_sees_lagged() {
        let hub = Hub::new(1, 0, 2);
        let mut sub = hub.subscribe(None);
        for _ in 0..5 {
            hub.publish(chat("x"));
            hub.flush();
        }
        assert!(matches!(
            sub.rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(3))
        ));
        assert_eq!(sub.rx.try_recv().unwrap().batch.unwrap().first_seq, 4);
    }

    #[test]
    fn preload_takes_only_the_consecutive_run_before_the_first_seq() {
        let chat_ev = |seq| Event {
            seq,
            ts_us: 1,
            kind: chat("old"),
        };
        let hub = Hub::new(11, 3, 4);
        hub.preload([10, 9, 8, 7].map(chat_ev));
        let sub = hub.subscribe(Some(8));
        assert_eq!(sub.resumed_from, Some(8));
        assert_eq!(
            sub.backlog.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [9, 10]
        );
        assert_eq!(hub.find(8).map(|e| e.seq), Some(8));
        assert!(
            hub.find_latest(|_| true).is_none(),
            "preloaded: not this run's"
        );
        hub.publish(chat("new"));
        hub.publish(chat("newer"));
        hub.flush();
        let is_new =
            |e: &Event| matches!(&e.kind, EventKind::Chat { text, .. } if text.starts_with("new"));
        assert_eq!(hub.find_latest(is_new).map(|e| e.seq), Some(12));

        let gappy = Hub::new(11, 5, 4);
        gappy.preload([10, 8, 7].map(chat_ev));
        assert_eq!(gappy.subscribe(None).backlog.len(), 1, "stops at the hole");
        let lost_tail = Hub::new(11, 5, 4);
        lost_tail.preload([9, 8].map(chat_ev));
        assert!(lost_tail.subscribe(None).backlog.is_empty());
    }

    #[test]
    fn taps_get_every_batch() {
        let hub = Hub::new(10, 0, 2);
        let mut tap = hub.tap(4);
        hub.publish(chat("a"));
        hub.publish(chat("b"));
        hub.flush();
        let frame = tap.try_recv().unwrap();
        let batch = frame.batch.as_ref().unwrap();
        assert_eq!(
            batch.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [10, 11]
        );
        assert!(frame.event_json(1).unwrap().contains(r#""text":"b""#));
    }
}
