//! Retention: the oldest events go once there are more than `--retain-events` or they are
//! older than `--retain-days`. A background task prunes every few seconds, in small
//! deletes, so the writer never waits long behind it.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokio_util::sync::CancellationToken;

use super::{Store, WriteConn};
use crate::config::Config;
use crate::hub::now_us;

/// Rows deleted per statement: each is its own short transaction.
const BATCH: i64 = 2000;

/// How much history to keep; 0 turns a limit off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Events kept at most (by `seq`: gaps from lost events make it keep a few fewer).
    pub max_events: u64,
    /// Age kept at most, in microseconds.
    pub max_age_us: u64,
    /// Time between prunes.
    pub every: Duration,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            max_events: 1_000_000,
            max_age_us: 7 * DAY_US,
            every: Duration::from_secs(10),
        }
    }
}

const DAY_US: u64 = 86_400 * 1_000_000;

impl Retention {
    /// The limits from `--retain-events`, `--retain-days` and `--prune-secs`.
    pub fn from_config(config: &Config) -> Retention {
        Retention {
            max_events: config.retain_events,
            max_age_us: config.retain_days.saturating_mul(DAY_US),
            every: Duration::from_secs(config.prune_secs.max(1)),
        }
    }
}

/// Deletes at most one batch of what `keep` no longer keeps; returns how many went.
fn prune_batch(conn: &Connection, keep: &Retention, now_us: u64) -> rusqlite::Result<usize> {
    let mut gone = 0;
    if keep.max_events > 0 {
        let max: Option<i64> = conn.query_row("SELECT max(seq) FROM events", [], |r| r.get(0))?;
        let cutoff = max.unwrap_or(0).saturating_sub(keep.max_events as i64);
        if cutoff > 0 {
            gone += conn.execute(
                "DELETE FROM events WHERE seq IN \
                 (SELECT seq FROM events WHERE seq <= ?1 ORDER BY seq LIMIT ?2)",
                [cutoff, BATCH],
            )?;
        }
    }
    if keep.max_age_us > 0 && gone < BATCH as usize {
        let cutoff = now_us.saturating_sub(keep.max_age_us) as i64;
        gone += conn.execute(
            "DELETE FROM events WHERE seq IN \
             (SELECT seq FROM events WHERE ts_us < ?1 ORDER BY ts_us LIMIT ?2)",
            [cutoff, BATCH],
        )?;
    }
    Ok(gone)
}

/// Prunes everything `keep` no longer keeps, one batch at a time (letting go of the
/// connection in between, so the writer gets its turn); returns how many went.
pub fn prune(conn: &mut WriteConn, keep: &Retention, now_us: u64) -> rusqlite::Result<u64> {
    let mut total = 0;
    loop {
        let gone = conn.with(|c| prune_batch(c, keep, now_us))?;
        total += gone as u64;
        if gone == 0 {
            return Ok(total);
        }
        std::thread::yield_now();
    }
}

/// Prunes every `store.retention.every` until `shutdown`.
pub async fn run(store: Arc<Store>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(store.retention.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn: Option<WriteConn> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        let store2 = store.clone();
        let mut held = conn.take();
        let job = tokio::task::spawn_blocking(move || {
            let result = match held.take() {
                Some(c) => Ok(c),
                None => store2.connect_writer(),
            }
            .and_then(|mut c| {
                let n = prune(&mut c, &store2.retention, now_us());
                held = Some(c);
                n
            });
            (held, result)
        });
        match job.await {
            Ok((held, Ok(n))) => {
                conn = held;
                if n > 0 {
                    tracing::debug!("retention pruned {n} events");
                }
            }
            Ok((_, Err(e))) => tracing::warn!("pruning old events failed: {e}"),
            Err(e) => tracing::warn!("pruning old events failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema;
    use std::sync::Mutex;

    fn db(n: i64, ts: impl Fn(i64) -> i64) -> WriteConn {
        let conn = Connection::open_in_memory().unwrap();
        schema::create(&conn).unwrap();
        for seq in 1..=n {
            conn.execute(
                "INSERT INTO events VALUES (?1, ?2, 'ws', 'chat', NULL, NULL, 0, '', '{}')",
                [seq, ts(seq)],
            )
            .unwrap();
        }
        WriteConn::Shared(Arc::new(Mutex::new(conn)))
    }

    fn left(conn: &mut WriteConn) -> (i64, i64, i64) {
        conn.with(|c| {
            c.query_row("SELECT count(*), min(seq), max(seq) FROM events", [], |r| {
                Ok((
                    r.get(0)?,
                    r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                    r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                ))
            })
            .unwrap()
        })
    }

    #[test]
    fn by_count_keeps_the_newest_in_several_batches() {
        let mut conn = db(5000, |s| s);
        let keep = Retention {
            max_events: 100,
            max_age_us: 0,
            every: Duration::from_secs(1),
        };
        assert_eq!(prune(&mut conn, &keep, 10_000).unwrap(), 4900);
        assert_eq!(left(&mut conn), (100, 4901, 5000));
        assert_eq!(prune(&mut conn, &keep, 10_000).unwrap(), 0);
    }

    #[test]
    fn by_age_drops_what_is_older() {
        // Event n happened n days ago.
        let now = 100 * DAY_US as i64;
        let mut conn = db(10, |s| now - s * DAY_US as i64);
        let keep = Retention {
            max_events: 0,
            max_age_us: 3 * DAY_US + 1,
            every: Duration::from_secs(1),
        };
        assert_eq!(prune(&mut conn, &keep, now as u64).unwrap(), 7);
        assert_eq!(left(&mut conn), (3, 1, 3));
    }

    #[test]
    fn zero_keeps_everything() {
        let mut conn = db(50, |_| 0);
        let keep = Retention {
            max_events: 0,
            max_age_us: 0,
            every: Duration::from_secs(1),
        };
        assert_eq!(prune(&mut conn, &keep, u64::MAX).unwrap(), 0);
        assert_eq!(left(&mut conn).0, 50);
    }
}
