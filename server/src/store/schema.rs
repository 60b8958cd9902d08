//! The database's shape, and how every connection is set up.
//!
//! One table of events, keyed by `seq`, with the columns the API filters on beside the
//! event's JSON (which is what the API returns, byte for byte), and a small `meta` table
//! that remembers the highest `seq` ever issued: retention may delete every event, but a
//! restarted lab must still never reuse a number.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

/// Bumped on any incompatible change to the tables below.
pub const VERSION: i64 = 1;

/// How long a connection waits for another one's write lock before giving up (the writer,
/// the pruner and the readers share the file).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY,
    ts_us    INTEGER NOT NULL,
    protocol TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    peer     TEXT,
    dir      TEXT,
    size     INTEGER NOT NULL,
    text     TEXT    NOT NULL,
    json     TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_ts ON events (ts_us);
CREATE INDEX IF NOT EXISTS events_by_protocol ON events (protocol, seq);
CREATE INDEX IF NOT EXISTS events_by_peer ON events (peer, seq);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

/// The `meta` key of the highest `seq` ever written.
pub const LAST_SEQ: &str = "last_seq";

/// Sets up a connection to the file: WAL, so readers never wait for the writer and a
/// killed process loses only what it had not committed; `synchronous=NORMAL`, which in
/// WAL mode still survives a killed process (only a power cut can lose the last commits).
pub fn configure_file(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!("the store could not switch to WAL (journal_mode is {mode})");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

/// Creates the tables if they are missing, or refuses a database from a newer wirelab.
pub fn create(conn: &Connection) -> anyhow::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > VERSION {
        anyhow::bail!(
            "the database was written by a newer wirelab (schema {version}, this one knows \
             {VERSION}): use another --data-dir"
        );
    }
    conn.execute_batch(TABLES)?;
    conn.pragma_update(None, "user_version", VERSION)?;
    Ok(())
}

/// The highest `seq` ever written: the larger of the events' and the one remembered in
/// `meta` (retention may have deleted the events themselves).
pub fn last_seq(conn: &Connection) -> rusqlite::Result<u64> {
    let in_events: Option<i64> = conn.query_row("SELECT max(seq) FROM events", [], |r| r.get(0))?;
    let in_meta: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [LAST_SEQ], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(in_events.unwrap_or(0).max(in_meta.unwrap_or(0)).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_is_idempotent_and_last_seq_remembers_deleted_events() {
        let conn = Connection::open_in_memory().unwrap();
        create(&conn).unwrap();
        create(&conn).unwrap();
        assert_eq!(last_seq(&conn).unwrap(), 0);
        conn.execute(
            "INSERT INTO events VALUES (7, 1, 'udp', 'udp_datagram', 'p', 'in', 1, 't', '{}')",
            [],
        )
        .unwrap();
        assert_eq!(last_seq(&conn).unwrap(), 7);
        conn.execute("INSERT INTO meta VALUES (?1, 9)", [LAST_SEQ])
            .unwrap();
        conn.execute("DELETE FROM events", []).unwrap();
        assert_eq!(last_seq(&conn).unwrap(), 9);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        let err = create(&conn).unwrap_err().to_string();
        assert!(err.contains("newer wirelab"), "{err}");
    }
}
