//! The recorder: every event the hub flushes is kept in an embedded SQLite database, so
//! history survives a restart, the API can search all of it, and any recorded event can
//! be replayed.
//!
//! - [`schema`]: the tables and how each connection is set up (WAL, `synchronous=NORMAL`).
//! - [`row`]: one event as a row, with the text that `q` searches.
//! - [`writer`]: the one writer: it drains the hub's tap and commits every 50 ms on its
//!   own low-priority thread, off the hot path; it reports (and rides out) a full or
//!   read-only disk, and a recorder that fell behind.
//! - [`query`]: the filter of `/api/events` and the exports, with keyset paging.
//! - [`retention`]: the background pruning by count and by age.
//!
//! On disk (`--data-dir`, file `wirelab.db`) the writer, the pruner and each reader have
//! their own connection; WAL lets readers read while the writer writes, and idle reader
//! connections are kept in a small pool. With `--ephemeral` (or when the data directory
//! can't be used) the database is a `:memory:` one, which is private to its connection: the
//! writer, the pruner and the readers then share that one connection behind a mutex. That
//! is plenty for a lab (each holds it for one transaction or one page at a time), and keeps
//! one code path for both.
//!
//! Every call that touches the database runs off the workers: the writer's commits on its
//! recorder thread, everything else on tokio's blocking pool.

pub mod query;
pub mod retention;
pub mod row;
pub mod schema;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use wirelab_shared::Event;

use crate::config::Config;
use crate::hub::lock;

pub use query::{Filter, Order, Page};
pub use retention::Retention;

/// The database file's name inside the data directory.
pub const FILE_NAME: &str = "wirelab.db";
/// A file in the data directory that one running lab holds a lock on, so two labs never
/// record to the same database (the kernel lets go of it when the process dies, even by
/// `kill -9`).
pub const LOCK_NAME: &str = "wirelab.lock";

/// Reader connections kept open between requests, at most.
const IDLE_READERS: usize = 4;

/// See the module docs.
pub struct Store {
    /// The file, or the one in-memory connection.
    backend: Backend,
    /// Reader connections to the file between requests (always empty in memory).
    idle: Mutex<Vec<Connection>>,
    /// How much history to keep.
    pub retention: Retention,
    /// The highest `seq` ever recorded when the store opened: the hub goes on after it.
    pub last_seq: u64,
    /// The data directory's lock, held while the store lives (none in memory).
    _lock: Option<std::fs::File>,
}

enum Backend {
    File(PathBuf),
    Memory(Arc<Mutex<Connection>>),
}

/// A connection that may write: the writer's and the pruner's.
pub enum WriteConn {
    /// Its own connection to the file.
    Own(Connection),
    /// The in-memory database's one connection.
    Shared(Arc<Mutex<Connection>>),
}

impl WriteConn {
    /// Runs `f` on the connection (holding the lock, in memory).
    pub fn with<R>(&mut self, f: impl FnOnce(&mut Connection) -> R) -> R {
        match self {
            WriteConn::Own(c) => f(c),
            WriteConn::Shared(m) => f(&mut lock(m)),
        }
    }
}

impl Store {
    /// Opens the store `config` asks for. A data directory that can't be used is not
    /// fatal: the store is kept in memory instead, and the second value says why, for the
    /// log and the page.
    pub fn open(config: &Config) -> anyhow::Result<(Store, Option<String>)> {
        let retention = Retention::from_config(config);
        if config.ephemeral {
            return Ok((Store::memory(retention)?, None));
        }
        match Store::file(&config.data_dir, retention.clone()) {
            Ok(store) => Ok((store, None)),
            Err(e) => {
                let why = format!(
                    "cannot record to {}: {e:#}. Recording in memory only: history will not \
                     survive a restart (fix the directory or choose another with --data-dir)",
                    config.data_dir.display()
                );
                Ok((Store::memory(retention)?, Some(why)))
            }
        }
    }

    /// A store in memory.
    pub fn memory(retention: Retention) -> anyhow::Result<Store> {
        let conn = Connection::open_in_memory()?;
        schema::create(&conn)?;
        Ok(Store {
            backend: Backend::Memory(Arc::new(Mutex::new(conn))),
            idle: Mutex::new(Vec::new()),
            retention,
            last_seq: 0,
            _lock: None,
        })
    }

    /// A store in `dir` (created if missing).
    pub fn file(dir: &Path, retention: Retention) -> anyhow::Result<Store> {
        use anyhow::Context;
        std::fs::create_dir_all(dir).context("creating the directory")?;
        let lock = std::fs::File::create(dir.join(LOCK_NAME)).context("creating the lock file")?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                anyhow::bail!("another wirelab is recording there")
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).context("locking the directory");
            }
        }
        let path = dir.join(FILE_NAME);
        let conn = Connection::open(&path).context("opening the database")?;
        schema::configure_file(&conn).context("setting up the database")?;
        schema::create(&conn).context("creating the tables")?;
        let last_seq = schema::last_seq(&conn).context("reading the last seq")?;
        Ok(Store {
            backend: Backend::File(path),
            idle: Mutex::new(vec![]),
            retention,
            last_seq,
            _lock: Some(lock),
        })
    }

    /// Where the events are kept, for the log.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::File(p) => p.display().to_string(),
            Backend::Memory(_) => "memory".into(),
        }
    }

    /// Whether the store is in memory (nothing survives a restart).
    pub fn in_memory(&self) -> bool {
        matches!(self.backend, Backend::Memory(_))
    }

    /// A connection for the writer or the pruner.
    pub fn connect_writer(&self) -> rusqlite::Result<WriteConn> {
        match &self.backend {
            Backend::File(path) => {
                let conn = Connection::open(path)?;
                schema::configure_file(&conn)?;
                Ok(WriteConn::Own(conn))
            }
            Backend::Memory(m) => Ok(WriteConn::Shared(m.clone())),
        }
    }

    /// Runs `f` with a reader connection, on the calling thread (a blocking one).
    pub fn read_blocking<R>(&self, f: impl FnOnce(&Connection) -> R) -> rusqlite::Result<R> {
        match &self.backend {
            Backend::Memory(m) => Ok(f(&lock(m))),
            Backend::File(path) => {
                let conn = match lock(&self.idle).pop() {
                    Some(c) => c,
                    None => {
                        let flags =
                            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                        let c = Connection::open_with_flags(path, flags)?;
                        c.busy_timeout(Duration::from_secs(5))?;
                        c
                    }
                };
                let out = f(&conn);
                let mut idle = lock(&self.idle);
                if idle.len() < IDLE_READERS {
                    idle.push(conn);
                }
                Ok(out)
            }
        }
    }

    /// Runs `f` with a reader connection on tokio's blocking pool.
    pub async fn read<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> R + Send + 'static,
    ) -> Result<R, String> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(f))
            .await
            .map_err(|e| format!("reading the store failed: {e}"))?
            .map_err(|e| format!("reading the store failed: {e}"))
    }

    /// One page of events matching `filter`.
    pub async fn page(
        self: &Arc<Self>,
        filter: Filter,
        order: Order,
        limit: usize,
    ) -> Result<Page, String> {
        self.read(move |c| query::page(c, &filter, order, limit))
            .await?
    }

    /// The event `seq`, if the store has it.
    pub async fn get(self: &Arc<Self>, seq: u64) -> Result<Option<Event>, String> {
        self.read(move |c| query::get(c, seq))
            .await?
            .map_err(|e| format!("reading the store failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temp directory, removed on drop.
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new(name: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let path =
                std::env::temp_dir().join(format!("wirelab-{name}-{}-{nanos}", std::process::id()));
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn an_unusable_data_dir_falls_back_to_memory_and_says_why() {
        // A directory whose parent is a regular file can't be created, even by root.
        let tmp = TempDir::new("unusable");
        std::fs::create_dir_all(&tmp.0).unwrap();
        let file = tmp.0.join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let mut config = Config::for_tests();
        config.ephemeral = false;
        config.data_dir = file.join("data");
        let (store, why) = Store::open(&config).unwrap();
        assert!(store.in_memory());
        let why = why.expect("a reason");
        assert!(
            why.contains("cannot record to") && why.contains("a-file"),
            "{why}"
        );
    }

    #[test]
    fn a_file_store_reopens_with_its_last_seq_and_readers_see_writes() {
        let tmp = TempDir::new("reopen");
        let store = Store::file(&tmp.0, Retention::default()).unwrap();
        assert_eq!((store.last_seq, store.in_memory()), (0, false));
        let mut w = store.connect_writer().unwrap();
        w.with(|c| {
            c.execute(
                "INSERT INTO events VALUES (41, 1, 'ws', 'chat', NULL, NULL, 0, 'x', '{}')",
                [],
            )
        })
        .unwrap();
        let n: i64 = store
            .read_blocking(|c| c.query_row("SELECT count(*) FROM events", [], |r| r.get(0)))
            .unwrap()
            .unwrap();
        assert_eq!(n, 1);
        // One lab per directory.
        let err = Store::file(&tmp.0, Retention::default()).err().unwrap();
        assert!(format!("{err:#}").contains("another wirelab"), "{err:#}");
        drop((w, store));
        let again = Store::file(&tmp.0, Retention::default()).unwrap();
        assert_eq!(again.last_seq, 41);
    }
}
