//! The one writer: it takes every batch the hub flushes (through a bounded tap, so the
//! hub never waits for it), and commits what it has every [`WRITE_INTERVAL`] in one
//! transaction on tokio's blocking pool.
//!
//! - A `kill -9` loses at most what arrived since the last commit: 50 ms, half the
//!   promised 100 ms, so a slow commit still keeps the promise.
//! - If the writer falls so far behind that the tap overflows, the hub drops batches for
//!   it; the writer sees the hole in `seq`, counts the lost events in `store_errors` and
//!   says so in a notice (at most one every [`GAP_NOTICE_EVERY`]).
//! - If a commit fails (disk full, read-only, gone), the writer keeps the events and
//!   retries every [`RETRY_INTERVAL`]; it counts each failed commit in `store_errors`, logs
//!   an error and publishes one `notice` when recording stops and one when it works again.
//!   Past [`RETRY_MAX`] kept events the oldest are dropped, and counted too. The live view
//!   never notices.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, params};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use wirelab_shared::{Event, EventKind};

use super::row::Row;
use super::schema::LAST_SEQ;
use super::{Store, WriteConn};
use crate::hub::{Hub, counters::add};

/// Batches (of up to 256 events) the tap holds before the hub drops them for the writer.
pub const TAP_CAP: usize = 1024;
/// Time between commits at most while events come in.
pub const WRITE_INTERVAL: Duration = Duration::from_millis(50);
/// Time between attempts while commits fail.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Events kept for the next attempt while commits fail, at most.
pub const RETRY_MAX: usize = 200_000;
/// Time between two notices about events lost to a full tap, at least.
pub const GAP_NOTICE_EVERY: Duration = Duration::from_secs(10);

/// A batch from the hub.
pub type Batch = Arc<[Arc<Event>]>;

/// Commits `events` in one transaction, and remembers the highest `seq`. Returns how many
/// rows were new.
pub fn commit(conn: &mut Connection, events: &[Arc<Event>]) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    let mut added = 0;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO events \
             (seq, ts_us, protocol, kind, peer, dir, size, text, json) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for ev in events {
            let r = Row::of(ev);
            added += insert.execute(params![
                r.seq, r.ts_us, r.protocol, r.kind, r.peer, r.dir, r.size, r.text, r.json
            ])?;
        }
        if let Some(last) = events.iter().map(|e| e.seq).max() {
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

/// The writer's state between commits.
struct Writer {
    store: Arc<Store>,
    hub: Arc<Hub>,
    /// Events waiting for the next commit, oldest first.
    pending: Vec<Arc<Event>>,
    /// The `seq` the next event should have; a larger one means the tap overflowed.
    expected: u64,
    /// Lost events not yet told in a notice, and when the last such notice went out.
    lost_untold: u64,
    last_gap_notice: Option<Instant>,
    health: Health,
    /// No attempt before this (while failing).
    next_try: Instant,
    /// The connection, opened on the first commit and again after a failure.
    conn: Option<WriteConn>,
}

impl Writer {
    fn take(&mut self, batch: &Batch) {
        for ev in batch.iter() {
            if ev.seq < self.expected {
                continue; // already seen: never write a seq twice
            }
            if ev.seq > self.expected {
                let lost = ev.seq - self.expected;
                add(&self.hub.counters.store_errors, lost);
                self.lost_untold += lost;
            }
            self.expected = ev.seq + 1;
            self.pending.push(ev.clone());
        }
        if self.lost_untold > 0
            && self
                .last_gap_notice
                .is_none_or(|t| t.elapsed() >= GAP_NOTICE_EVERY)
        {
            let message = format!(
                "the recorder fell behind: {} events were not recorded (they were shown live)",
                self.lost_untold
            );
            tracing::warn!("{message}");
            self.notice("warn", message);
            self.lost_untold = 0;
            self.last_gap_notice = Some(Instant::now());
        }
    }

    fn notice(&self, level: &str, message: String) {
        self.hub.publish(EventKind::Notice {
            level: level.into(),
            message,
        });
    }

    /// Commits what is pending (unless a retry is not due yet).
    async fn write(&mut self) {
        if self.pending.is_empty() || Instant::now() < self.next_try {
            return;
        }
        let events = std::mem::take(&mut self.pending);
        let store = self.store.clone();
        let conn = self.conn.take();
        let job = tokio::task::spawn_blocking(move || {
            let mut conn = match conn {
                Some(c) => c,
                None => match store.connect_writer() {
                    Ok(c) => c,
                    Err(e) => return (None, events, Err(e)),
                },
            };
            let result = conn.with(|c| commit(c, &events));
            (Some(conn), events, result)
        });
        let (conn, events, result) = match job.await {
            Ok(done) => done,
            Err(e) => {
                tracing::error!("the store writer's commit panicked: {e}");
                add(&self.hub.counters.store_errors, 1);
                return;
            }
        };
        match result {
            Ok(_) => {
                self.conn = conn;
                add(&self.hub.counters.stored, events.len() as u64);
                if self.health == Health::Failing {
                    self.health = Health::Recording;
                    tracing::info!("recording works again");
                    self.notice("info", "recording works again".into());
                }
            }
            Err(e) => {
                // A fresh connection on the next attempt: the old one may be broken.
                add(&self.hub.counters.store_errors, 1);
                let mut events = events;
                events.append(&mut self.pending);
                if events.len() > RETRY_MAX {
                    let dropped = events.len() - RETRY_MAX;
                    events.drain(..dropped);
                    add(&self.hub.counters.store_errors, dropped as u64);
                }
                self.pending = events;
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
    let mut w = Writer {
        expected: store.last_seq + 1,
        store,
        hub,
        pending: Vec::new(),
        lost_untold: 0,
        last_gap_notice: None,
        health: Health::Recording,
        next_try: Instant::now(),
        conn: None,
    };
    let mut tick = tokio::time::interval(WRITE_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            batch = tap.recv() => match batch {
                Some(b) => w.take(&b),
                None => break,
            },
            _ = tick.tick() => w.write().await,
            _ = &mut stop => break,
        }
    }
    while let Ok(b) = tap.try_recv() {
        w.take(&b);
    }
    w.next_try = Instant::now();
    w.write().await;
    if !w.pending.is_empty() {
        tracing::error!(
            "{} events could not be recorded before the lab stopped",
            w.pending.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::lock;
    use crate::store::{Backend, Retention};
    use tokio::sync::oneshot;
    use wirelab_shared::Payload;

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
        // Batch 1 arrived; 2 and 3 were dropped. Seq 4 shows the hole.
        until("batch 1", || hub.counters.snapshot().stored == 1).await;
        hub.publish(chat("y"));
        hub.flush();
        until("the count", || hub.counters.snapshot().store_errors > 0).await;
        hub.flush(); // the notice
        until("the notice", || hub.counters.snapshot().stored >= 3).await;
        stop.send(()).unwrap();
        task.await.unwrap();
        assert_eq!(hub.counters.snapshot().store_errors, 2);
        let notice = store
            .read_blocking(|c| super::super::query::get(c, 5))
            .unwrap();
        let Some(Event {
            kind: EventKind::Notice { level, message },
            ..
        }) = notice.unwrap()
        else {
            panic!("seq 5 is not the notice")
        };
        assert_eq!(level, "warn");
        assert!(message.contains("2 events were not recorded"), "{message}");
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
