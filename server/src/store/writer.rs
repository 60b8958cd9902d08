//! The one writer: it takes every batch the hub flushes (through a bounded tap, so the
//! hub never waits for it), and commits what it has every [`WRITE_INTERVAL`] in one
//! transaction on its own thread, the recorder.
//!
//! - Each row stores the JSON the hub already wrote into the batch's frame for the
//!   dashboards ([`Frame::event_json`]): an event is serialized once, not twice.
//! - The recorder thread runs at a low priority ([`RECORDER_NICE`]): on a core that other
//!   work keeps busy it still gets about a tenth of it, enough to keep up with a person or
//!   a test client (so the `kill -9` promise below holds on a busy machine), while a load
//!   test that saturates the core outruns it and the overflow rule below applies.
//! - A `kill -9` loses at most what arrived since the last commit: 50 ms, half the
//!   promised 100 ms, so a slow commit still keeps the promise.
//! - If the writer falls so far behind that the tap overflows, the hub drops batches for
//!   it and counts the lost events in `store_errors` at once; the writer says so in a
//!   notice (at most one every [`GAP_NOTICE_EVERY`]).
//! - If a commit fails (disk full, read-only, gone), the writer keeps the events and
//!   retries every [`RETRY_INTERVAL`]; it counts each failed commit in `store_errors`, logs
//!   an error and publishes one `notice` when recording stops and one when it works again.
//!   Past [`RETRY_MAX`] kept events the oldest are dropped, and counted too. The live view
//!   never notices.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::{Connection, params};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use wirelab_shared::EventKind;
use wirelab_shared::encode::Word;

use super::row::search_text_into;
use super::schema::LAST_SEQ;
use super::{Store, WriteConn};
use crate::hub::{Frame, Hub, counters::add, lock};

/// Batches (of up to 256 events) the tap holds before the hub drops them for the writer:
/// 4k events, with as many again waiting in the writer ([`PENDING_MAX`]): at least 8k
/// events, a tenth of a second of the HTTP service at full speed, more at lower rates
/// (batches are smaller). Kept small on purpose: the events held are freed in bulk after
/// each commit, and with 32k batches of slack that churn cost the HTTP service's worker
/// 6% of its time in fresh pages from the kernel (measured with perf).
pub const TAP_CAP: usize = 16;
/// Time between commits at most while events come in.
pub const WRITE_INTERVAL: Duration = Duration::from_millis(50);
/// Time between attempts while commits fail.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Events kept for the next attempt while commits fail, at most.
pub const RETRY_MAX: usize = 200_000;
/// Events taken from the tap and waiting for the next commit, at most: past it the tap
/// holds the rest (and overflows).
pub const PENDING_MAX: usize = TAP_CAP * 256;
/// How long the writer waits for its last commits once the lab stops.
const STOP_WAIT: Duration = Duration::from_secs(3);
/// Time between two notices about events lost to a full tap, at least.
pub const GAP_NOTICE_EVERY: Duration = Duration::from_secs(10);

/// A batch from the hub: an `events` frame, whose text holds each event's JSON.
pub type Batch = Frame;

/// Events waiting to be recorded: the events of `frame` from index `from` on.
#[derive(Clone)]
pub struct Part {
    pub frame: Frame,
    pub from: usize,
}

impl Part {
    /// Events in this part.
    fn len(&self) -> usize {
        self.frame
            .batch
            .as_ref()
            .map_or(0, |b| b.events.len().saturating_sub(self.from))
    }
}

/// Rows inserted between two `yield_now`s in a commit (about 0.3 ms of work).
const YIELD_EVERY: usize = 256;

/// Commits the events of `parts` in one transaction, storing the JSON the hub wrote for
/// each, and remembers the highest `seq`. Returns how many rows were new.
pub fn commit(conn: &mut Connection, parts: &[Part]) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    let mut added = 0;
    let mut last = None;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO events \
             (seq, ts_us, protocol, kind, peer, dir, size, text, json) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut text = String::new();
        let mut rows = 0usize;
        for part in parts {
            let Some(batch) = &part.frame.batch else {
                continue;
            };
            for (i, ev) in batch.events.iter().enumerate().skip(part.from) {
                let Some(json) = part.frame.event_json(i) else {
                    continue;
                };
                let kind = &ev.kind;
                text.clear();
                search_text_into(&mut text, kind);
                let dir = kind.direction().map(Word::word);
                added += insert.execute(params![
                    ev.seq as i64,
                    ev.ts_us as i64,
                    kind.protocol().as_str(),
                    kind.tag(),
                    kind.peer(),
                    dir,
                    kind.size() as i64,
                    text.as_str(),
                    json
                ])?;
                last = last.max(Some(ev.seq));
                rows += 1;
                if rows.is_multiple_of(YIELD_EVERY) {
                    // On a core the services keep busy, a long commit would hold it for
                    // the scheduler's whole slice (ms of latency for every request).
                    std::thread::yield_now();
                }
            }
        }
        if let Some(last) = last {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                params![LAST_SEQ, last as i64],
            )?;
        }
    }
    tx.commit()?;
    Ok(added)
}

/// Whether commits work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Recording,
    Failing,
}

/// What a commit hands back: the connection (when it still works), the parts it was
/// given when they were not recorded (to try again), and how it went.
type Done = (Option<WriteConn>, Vec<Part>, rusqlite::Result<usize>);
/// A commit for the recorder thread.
type Job = Box<dyn FnOnce() -> Done + Send>;

/// The thread that runs the commits. It is the writer's own (not tokio's blocking pool),
/// so it can run at a low priority: see [`lower_priority`].
///
/// No worker ever waits for it: a low-priority thread that holds a lock a worker wants
/// (priority inversion) would stall that worker for as long as the busy core denies it
/// CPU, which measured up to a second. So the worker never blocks on a lock the recorder
/// takes (`Writer::start_commit` and [`Recorder::collect`] only `try_lock`), and the
/// recorder never wakes a task: the writer looks for the result on its next tick.
struct Recorder {
    shared: Arc<Shared>,
}

/// The hand-off between the writer and the recorder thread.
struct Shared {
    slot: Mutex<Slot>,
    /// Signalled when a job (or the stop) is put in `slot`.
    ready: Condvar,
}

#[derive(Default)]
struct Slot {
    job: Option<Job>,
    /// The last job's result; `Some(None)` when it panicked.
    done: Option<Option<Done>>,
    stop: bool,
}

impl Recorder {
    fn start() -> std::io::Result<Recorder> {
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot::default()),
            ready: Condvar::new(),
        });
        let theirs = shared.clone();
        std::thread::Builder::new()
            .name("wirelab-recorder".into())
            .spawn(move || {
                lower_priority();
                while let Some(job) = theirs.next_job() {
                    let done = catch_unwind(AssertUnwindSafe(job)).ok();
                    lock(&theirs.slot).done = Some(done);
                }
            })?;
        Ok(Recorder { shared })
    }

    /// The result of the job submitted last, once it is there (`Some(None)`: it panicked).
    fn collect(&self) -> Option<Option<Done>> {
        self.shared.slot.try_lock().ok()?.done.take()
    }
}

impl Shared {
    /// Waits for the next job; `None` once the writer is gone.
    fn next_job(&self) -> Option<Job> {
        let mut slot = lock(&self.slot);
        loop {
            if let Some(job) = slot.job.take() {
                return Some(job);
            }
            if slot.stop {
                return None;
            }
            slot = self.ready.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        lock(&self.shared.slot).stop = true;
        self.shared.ready.notify_one();
    }
}

/// The recorder thread's nice value. Against one busy nice-0 thread on its core, a nice-10
/// thread gets about 10% of it (CFS weights 110 vs 1024): a saturating load test loses about
/// that much throughput to recording and outruns it (the tap overflows; the losses are
/// counted and told, see the module docs), while at the rates a person or a test client
/// makes, recording keeps up even on a machine busy compiling. Nice 19 (1.5%) let a busy
/// machine starve it, and a `kill -9` then lost seconds of events instead of 50 ms.
pub const RECORDER_NICE: i32 = 10;

/// Sets the calling thread's nice value to [`RECORDER_NICE`] (Linux sets it per thread).
/// A lab started under a real-time policy (the benchmark's `--rt` runs it under
/// SCHED_FIFO) passes that policy to this thread too, where the nice value means nothing
/// and a commit would hold the core until it ends: the thread first moves itself back to
/// the normal policy with `chrt` (no safe system call wrapper exists for it).
fn lower_priority() {
    let tid = rustix::thread::gettid();
    if real_time() {
        let moved = std::process::Command::new("chrt")
            .args(["--other", "--pid", "0", &tid.as_raw_nonzero().to_string()])
            .status();
        if !moved.as_ref().is_ok_and(|s| s.success()) {
            tracing::warn!(
                "the recorder thread runs under a real-time policy and could not leave it \
                 (chrt: {moved:?}): its commits may delay the services"
            );
        }
    }
    if let Err(e) = rustix::process::setpriority_process(Some(tid), RECORDER_NICE) {
        tracing::warn!("the recorder thread keeps its priority: setpriority failed: {e}");
    }
}

/// Whether the calling thread runs under SCHED_FIFO or SCHED_RR (field 41 of its
/// `/proc` stat line).
fn real_time() -> bool {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return false;
    };
    // The name (field 2) is in parentheses and may hold spaces: count after it.
    let policy = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(41 - 3));
    matches!(policy, Some("1" | "2"))
}

/// The writer's state between commits.
struct Writer {
    store: Arc<Store>,
    hub: Arc<Hub>,
    /// Events waiting for the next commit, oldest first, and how many.
    pending: Vec<Part>,
    pending_events: usize,
    /// The `seq` the next event should have; a larger one means the tap overflowed.
    expected: u64,
    /// Events lost to the tap that notices have told, and when the last one went out.
    lost_told: u64,
    last_gap_notice: Option<Instant>,
    health: Health,
    /// No attempt before this (while failing).
    next_try: Instant,
    /// The connection, opened on the first commit and again after a failure.
    conn: Option<WriteConn>,
    /// Where commits run.
    recorder: Recorder,
    /// Events in the commit the recorder is running, if one is.
    in_flight: Option<usize>,
}

impl Writer {
    fn take(&mut self, frame: Batch) {
        let Some(batch) = &frame.batch else {
            return;
        };
        let mut from = None;
        for (i, ev) in batch.events.iter().enumerate() {
            if ev.seq < self.expected {
                continue; // already seen: never write a seq twice
            }
            // A later seq than expected: the hub dropped batches for the tap, and has
            // counted them (see `tell_losses`).
            self.expected = ev.seq + 1;
            from.get_or_insert(i);
        }
        if let Some(from) = from {
            let part = Part { frame, from };
            self.pending_events += part.len();
            self.pending.push(part);
        }
    }

    /// Tells the user (at most once every [`GAP_NOTICE_EVERY`]) about events the hub had
    /// to drop for the recorder since the last time.
    fn tell_losses(&mut self) {
        let lost = self.hub.tap_lost();
        if lost > self.lost_told
            && self
                .last_gap_notice
                .is_none_or(|t| t.elapsed() >= GAP_NOTICE_EVERY)
        {
            let message = format!(
                "the recorder fell behind: {} events were not recorded (they were shown live)",
                lost - self.lost_told
            );
            tracing::warn!("{message}");
            self.notice("warn", message);
            self.lost_told = lost;
            self.last_gap_notice = Some(Instant::now());
        }
    }

    fn notice(&self, level: &str, message: String) {
        self.hub.publish(EventKind::Notice {
            level: level.into(),
            message,
        });
    }

    /// Starts a commit of what is pending, unless one is running or a retry is not due.
    fn start_commit(&mut self) {
        if self.in_flight.is_some() || self.pending.is_empty() || Instant::now() < self.next_try {
            return;
        }
        // Never wait for the recorder: if it holds the slot right now, try on the next tick.
        let Ok(mut slot) = self.recorder.shared.slot.try_lock() else {
            return;
        };
        let parts = std::mem::take(&mut self.pending);
        let count = std::mem::take(&mut self.pending_events);
        let store = self.store.clone();
        let conn = self.conn.take();
        let job: Job = Box::new(move || {
            let mut conn = match conn {
                Some(c) => c,
                None => match store.connect_writer() {
                    Ok(c) => c,
                    Err(e) => return (None, parts, Err(e)),
                },
            };
            let result = conn.with(|c| commit(c, &parts));
            // Recorded events are freed here, not in one go on a worker (thousands of
            // frees there paused every request for milliseconds).
            let parts = if result.is_ok() { Vec::new() } else { parts };
            (Some(conn), parts, result)
        });
        slot.job = Some(job);
        drop(slot);
        self.recorder.shared.ready.notify_one();
        self.in_flight = Some(count);
    }

    /// Takes the running commit's result, if it is there.
    fn finish_commit(&mut self) {
        let Some(count) = self.in_flight else {
            return;
        };
        let Some(done) = self.recorder.collect() else {
            return;
        };
        self.in_flight = None;
        let Some((conn, parts, result)) = done else {
            tracing::error!("the store writer's commit panicked");
            add(&self.hub.counters.store_errors, count as u64);
            return;
        };
        match result {
            Ok(_) => {
                self.conn = conn;
                add(&self.hub.counters.stored, count as u64);
                if self.health == Health::Failing {
                    self.health = Health::Recording;
                    tracing::info!("recording works again");
                    self.notice("info", "recording works again".into());
                }
            }
            Err(e) => {
                // A fresh connection on the next attempt: the old one may be broken.
                add(&self.hub.counters.store_errors, 1);
                let mut parts = parts;
                parts.append(&mut self.pending);
                let mut count = count + self.pending_events;
                // Past RETRY_MAX, the oldest go.
                let mut dropped = 0;
                let mut first = 0;
                while count > RETRY_MAX {
                    let part = &mut parts[first];
                    let n = part.len().min(count - RETRY_MAX);
                    part.from += n;
                    count -= n;
                    dropped += n;
                    if part.len() == 0 {
                        first += 1;
                    }
                }
                parts.drain(..first);
                if dropped > 0 {
                    add(&self.hub.counters.store_errors, dropped as u64);
                }
                self.pending = parts;
                self.pending_events = count;
                self.next_try = Instant::now() + RETRY_INTERVAL;
                if self.health == Health::Recording {
                    self.health = Health::Failing;
                    let message = format!(
                        "recording to {} failed: {e}. The live view goes on; wirelab keeps \
                         the events and retries every second",
                        self.store.location()
                    );
                    tracing::error!("{message}");
                    self.notice("error", message);
                } else {
                    tracing::debug!("recording still fails: {e}");
                }
            }
        }
    }
}

/// Records every batch from `tap` until `stop` completes (pass the hub's own task, so
/// its last flush is recorded too); then commits what is left and returns.
pub async fn run(
    store: Arc<Store>,
    hub: Arc<Hub>,
    mut tap: mpsc::Receiver<Batch>,
    stop: impl Future<Output = ()>,
) {
    let recorder = match Recorder::start() {
        Ok(r) => r,
        Err(e) => {
            let message = format!("recording is off: the recorder thread did not start: {e}");
            tracing::error!("{message}");
            hub.publish(EventKind::Notice {
                level: "error".into(),
                message,
            });
            return;
        }
    };
    let mut w = Writer {
        expected: store.last_seq + 1,
        lost_told: 0,
        store,
        hub,
        pending: Vec::new(),
        pending_events: 0,
        last_gap_notice: None,
        health: Health::Recording,
        next_try: Instant::now(),
        conn: None,
        recorder,
        in_flight: None,
    };
    let mut tick = tokio::time::interval(WRITE_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            // While the recorder is behind, the tap (bounded) holds the rest.
            batch = tap.recv(), if w.pending_events < PENDING_MAX => match batch {
                Some(b) => w.take(b),
                None => break,
            },
            _ = tick.tick() => {
                w.finish_commit();
                w.start_commit();
                w.tell_losses();
            }
            _ = &mut stop => break,
        }
    }
    while let Ok(b) = tap.try_recv() {
        w.take(b);
    }
    // The last commits: the services have stopped, so the recorder gets the CPU.
    w.next_try = Instant::now();
    let deadline = Instant::now() + STOP_WAIT;
    while (w.in_flight.is_some() || w.pending_events > 0) && Instant::now() < deadline {
        w.finish_commit();
        w.start_commit();
        if w.health == Health::Failing && w.in_flight.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let left = w.pending_events + w.in_flight.unwrap_or(0);
    if left > 0 {
        tracing::error!("{left} events could not be recorded before the lab stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{BATCH_MAX, lock};
    use crate::store::{Backend, Retention};
    use tokio::sync::oneshot;
    use wirelab_shared::{Event, Payload};

    fn chat(text: &str) -> EventKind {
        EventKind::Chat {
            from: "t".into(),
            text: text.into(),
        }
    }

    fn count(store: &Store) -> i64 {
        store
            .read_blocking(|c| c.query_row("SELECT count(*) FROM events", [], |r| r.get(0)))
            .unwrap()
            .unwrap()
    }

    /// Waits (briefly yielding) until `cond` holds; panics after 10 s.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    struct Rig {
        store: Arc<Store>,
        hub: Arc<Hub>,
        stop: oneshot::Sender<()>,
        task: tokio::task::JoinHandle<()>,
    }

    fn rig(tap_cap: usize) -> Rig {
        let store = Arc::new(Store::memory(Retention::default()).unwrap());
        let hub = Arc::new(Hub::new(1, 0, 4));
        let tap = hub.tap(tap_cap);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(store.clone(), hub.clone(), tap, async {
            let _ = stopped.await;
        }));
        Rig {
            store,
            hub,
            stop,
            task,
        }
    }

    #[tokio::test]
    async fn batches_are_committed_and_what_is_left_at_stop_too() {
        let r = rig(16);
        for i in 0..300 {
            r.hub.publish(chat(&i.to_string()));
        }
        r.hub.flush();
        // The counter moves after the commit (the database may show the rows first).
        until("300 stored", || r.hub.counters.snapshot().stored >= 300).await;
        assert_eq!(count(&r.store), 300);
        // Published and flushed right before the stop: still recorded.
        r.hub.publish(chat("last"));
        r.hub.flush();
        r.stop.send(()).unwrap();
        r.task.await.unwrap();
        assert_eq!(count(&r.store), 301);
        let last = r
            .store
            .read_blocking(|c| super::super::query::get(c, 301))
            .unwrap();
        assert_eq!(last.unwrap().unwrap().kind, chat("last"));
    }

    #[tokio::test]
    async fn a_full_tap_is_counted_and_told() {
        // Nothing drains the tap while we flush 3 batches into room for 1.
        let store = Arc::new(Store::memory(Retention::default()).unwrap());
        let hub = Arc::new(Hub::new(1, 0, 4));
        let tap = hub.tap(1);
        for _ in 0..3 {
            hub.publish(chat("x"));
            hub.flush();
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(store.clone(), hub.clone(), tap, async {
            let _ = stopped.await;
        }));
        // Batch 1 arrived; 2 and 3 were dropped, and counted as they were.
        assert_eq!(hub.counters.snapshot().store_errors, 2);
        until("batch 1 and the notice", || {
            hub.flush(); // the notice, once the writer has published it
            hub.counters.snapshot().stored >= 2
        })
        .await;
        stop.send(()).unwrap();
        task.await.unwrap();
        assert_eq!(hub.counters.snapshot().store_errors, 2);
        let notice = store
            .read_blocking(|c| super::super::query::get(c, 4))
            .unwrap();
        let Some(Event {
            kind: EventKind::Notice { level, message },
            ..
        }) = notice.unwrap()
        else {
            panic!("seq 4 is not the notice")
        };
        assert_eq!(level, "warn");
        assert!(message.contains("2 events were not recorded"), "{message}");
    }

    #[tokio::test]
    // Holding the database across awaits is the point: it stalls the recorder thread (the
    // only other user of the lock), never this test's tasks.
    #[allow(clippy::await_holding_lock)]
    async fn a_stalled_recorder_never_holds_up_the_hub_and_its_losses_are_counted() {
        // A hub whose backlog keeps every event, to find the notices in.
        let store = Arc::new(Store::memory(Retention::default()).unwrap());
        let hub = Arc::new(Hub::new(1, 100_000, 4));
        let tap = hub.tap(2);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(store.clone(), hub.clone(), tap, async {
            let _ = stopped.await;
        }));
        let Backend::Memory(conn) = &store.backend else {
            unreachable!()
        };
        // The recorder's commit waits on the database for as long as the test holds it,
        // like a recorder starved of CPU.
        let held = lock(conn);
        let batches = (PENDING_MAX / BATCH_MAX + 8) as u64;
        for _ in 0..batches {
            for i in 0..BATCH_MAX {
                hub.publish(chat(&i.to_string()));
            }
            hub.flush(); // never waits for the writer
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let published = batches * BATCH_MAX as u64;
        let c = hub.counters.snapshot();
        assert!(c.events >= published, "{c:?}"); // and maybe the writer's notice
        assert_eq!(c.stored, 0);
        assert!(
            c.store_errors > 0,
            "losses are counted as they happen: {c:?}"
        );
        drop(held);
        until("every event recorded or counted lost", || {
            hub.flush(); // the writer's notice, when it comes
            let c = hub.counters.snapshot();
            c.stored + c.store_errors == c.events
        })
        .await;
        stop.send(()).unwrap();
        task.await.unwrap();
        let c = hub.counters.snapshot();
        assert!(c.store_errors > 0 && c.stored > 0, "{c:?}");
        assert_eq!(c.stored, count(&store) as u64);
        // Told live in a notice (the first as soon as losses began, the next after 10 s;
        // the notice itself may be among what the recorder loses).
        let told: Vec<u64> = hub
            .subscribe(None)
            .backlog
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Notice { message, .. } => message
                    .strip_prefix("the recorder fell behind: ")?
                    .split(' ')
                    .next()?
                    .parse()
                    .ok(),
                _ => None,
            })
            .collect();
        let sum: u64 = told.iter().sum();
        assert!(!told.is_empty() && sum <= c.store_errors, "{told:?} {c:?}");
    }

    #[tokio::test]
    async fn a_full_disk_is_reported_then_recovered_without_losing_events() {
        let r = rig(64);
        let Backend::Memory(conn) = &r.store.backend else {
            unreachable!()
        };
        let pages: i64 = lock(conn)
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .unwrap();
        // SQLite's own "database or disk is full", without filling a disk.
        lock(conn)
            .pragma_update(None, "max_page_count", pages)
            .unwrap();
        let big = "z".repeat(64 * 1024);
        for _ in 0..5 {
            r.hub.publish(EventKind::UdpDatagram {
                peer: "127.0.0.1:9".into(),
                dir: wirelab_shared::Direction::In,
                size: big.len() as u64,
                payload: Payload::capture(big.as_bytes(), big.len()),
            });
        }
        r.hub.flush();
        until("a failed commit", || {
            r.hub.counters.snapshot().store_errors > 0
        })
        .await;
        assert_eq!(count(&r.store), 0);
        // The notice is published live (and kept for the next attempt).
        let mut sub = r.hub.subscribe(None);
        r.hub.flush();
        let frame = sub.rx.try_recv().expect("the notice was published");
        assert!(frame.text.contains("full"), "{}", frame.text);
        assert!(frame.text.contains(r#""level":"error""#), "{}", frame.text);

        lock(conn)
            .pragma_update(None, "max_page_count", 1_000_000)
            .unwrap();
        until("the retry", || r.hub.counters.snapshot().stored >= 6).await;
        assert_eq!(count(&r.store), 6);
        r.hub.flush();
        until("the recovery notice", || {
            r.hub.counters.snapshot().stored >= 7
        })
        .await;
        r.stop.send(()).unwrap();
        r.task.await.unwrap();
        let c = r.hub.counters.snapshot();
        assert_eq!(c.stored, 7);
        let last = r
            .store
            .read_blocking(|c| super::super::query::get(c, 7))
            .unwrap();
        let Some(Event {
            kind: EventKind::Notice { level, .. },
            ..
        }) = last.unwrap()
        else {
            panic!("seq 7 is not the recovery notice")
        };
        assert_eq!(level, "info");
    }
}
