//! The WebSocket push channel, `GET /ws`: the dashboard's feed and a service of its own
//! (chat, commands) for any WebSocket client.
//!
//! - [`upgrade`]: the checks before the upgrade (client limit, Origin, token), and the
//!   upgrade itself.
//! - [`socket`]: the upgraded connection as a Sink and a Stream of messages, holding no
//!   buffer while idle.
//! - [`deflate`]: permessage-deflate (RFC 7692), and when the lab compresses.
//! - [`frame`]: RFC 6455 framing: the reader of the client's frames, the server's
//!   headers, the close codes of violations.
//! - [`pump`]: one client's loop, generic over Sink/Stream so tests drive it without
//!   sockets.
//! - [`commands`]: what each command does.

pub mod commands;
pub mod deflate;
pub mod frame;
pub mod pump;
pub mod socket;
pub mod upgrade;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use wirelab_shared::WsClientInfo;

use crate::hub::lock;

/// How long a `snapshot` frame is handed to new clients that start at the same `seq`:
/// its `state` is at most this old (the live `state` frames follow once a second).
pub const SNAPSHOT_REUSE: Duration = Duration::from_millis(50);

/// The connected clients, for the WebSocket panel and the limit.
#[derive(Default)]
pub struct Clients {
    clients: Mutex<HashMap<u64, Arc<ClientStats>>>,
    next_id: AtomicU64,
    /// Clients connected that agreed to permessage-deflate.
    deflating: AtomicUsize,
    /// The last fresh snapshot: its `last_seq`, when it was made, its text.
    snapshot: Mutex<Option<(u64, Instant, Utf8Bytes)>>,
}

/// One client's identity and figures, updated by its pump.
#[derive(Debug, Default)]
pub struct ClientStats {
    pub id: u64,
    pub peer: String,
    pub user_agent: String,
    pub dashboard: bool,
    /// It agreed to permessage-deflate.
    pub deflate: bool,
    /// It connected over loopback (where bytes are cheaper than compressing them).
    pub loopback: bool,
    pub since_us: u64,
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub missed: AtomicU64,
    pub lagged: AtomicU64,
}

impl Clients {
    /// Registers a client if fewer than `max` are connected; `None` past the limit.
    pub fn join(&self, max: usize, mut stats: ClientStats) -> Option<Arc<ClientStats>> {
        let mut clients = lock(&self.clients);
        if clients.len() >= max {
            return None;
        }
        stats.id = self.next_id.fetch_add(1, Relaxed) + 1;
        let stats = Arc::new(stats);
        clients.insert(stats.id, stats.clone());
        if stats.deflate {
            self.deflating.fetch_add(1, Relaxed);
        }
        Some(stats)
    }

    /// The `snapshot` frame for a client starting after `last_seq` (not resuming): the
    /// one made for an earlier client when it starts at the same `seq` and is younger than
    /// [`SNAPSHOT_REUSE`], else `make()`'s. A burst of connections shares one text (the
    /// backlog as JSON, up to 8 MiB) instead of each holding its own copy.
    pub fn snapshot(&self, last_seq: u64, make: impl FnOnce() -> Utf8Bytes) -> Utf8Bytes {
        let mut cached = lock(&self.snapshot);
        if let Some((seq, at, text)) = &*cached
            && *seq == last_seq
            && at.elapsed() < SNAPSHOT_REUSE
        {
            return text.clone();
        }
        // Made under the lock: clients arriving meanwhile wait and take this one.
        let text = make();
        *cached = Some((last_seq, Instant::now(), text.clone()));
        text
    }

    /// Drops the shared snapshot once it is too old to be handed out (up to 8 MiB that
    /// would otherwise stay until the next client connects).
    pub fn forget_stale_snapshot(&self) {
        let mut cached = lock(&self.snapshot);
        if cached
            .as_ref()
            .is_some_and(|(_, at, _)| at.elapsed() >= SNAPSHOT_REUSE)
        {
            *cached = None;
        }
    }

    /// Forgets a client.
    pub fn leave(&self, id: u64) {
        if lock(&self.clients).remove(&id).is_some_and(|c| c.deflate) {
            self.deflating.fetch_sub(1, Relaxed);
        }
    }

    /// How many connected clients agreed to permessage-deflate.
    pub fn deflating(&self) -> usize {
        self.deflating.load(Relaxed)
    }

    /// How many are connected.
    pub fn len(&self) -> usize {
        lock(&self.clients).len()
    }

    /// Whether none is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The clients, oldest first.
    pub fn infos(&self) -> Vec<WsClientInfo> {
        let mut infos: Vec<_> = lock(&self.clients)
            .values()
            .map(|c| WsClientInfo {
                id: c.id,
                peer: c.peer.clone(),
                user_agent: c.user_agent.clone(),
                dashboard: c.dashboard,
                deflate: c.deflate,
                since_us: c.since_us,
                frames_in: c.frames_in.load(Relaxed),
                frames_out: c.frames_out.load(Relaxed),
                bytes_in: c.bytes_in.load(Relaxed),
                bytes_out: c.bytes_out.load(Relaxed),
                missed: c.missed.load(Relaxed),
                lagged: c.lagged.load(Relaxed),
            })
            .collect();
        infos.sort_by_key(|c| c.id);
        infos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_limit_holds_and_leaving_frees_a_place() {
        let clients = Clients::default();
        let a = clients.join(2, ClientStats::default()).unwrap();
        let b = clients.join(2, ClientStats::default()).unwrap();
        assert_ne!(a.id, b.id);
        assert!(clients.join(2, ClientStats::default()).is_none());
        clients.leave(a.id);
        assert!(clients.join(2, ClientStats::default()).is_some());
        assert_eq!(clients.infos().len(), 2);
    }

    #[test]
    fn a_snapshot_is_shared_only_at_the_same_seq() {
        let clients = Clients::default();
        let a = clients.snapshot(5, || "five".into());
        assert_eq!(a, "five");
        assert_eq!(clients.snapshot(5, || "again".into()), "five", "reused");
        assert_eq!(clients.snapshot(6, || "six".into()), "six", "a later seq");
        assert_eq!(clients.snapshot(5, || "five'".into()), "five'", "not kept");
        clients.forget_stale_snapshot();
        assert!(lock(&clients.snapshot).is_some(), "still fresh: kept");
        std::thread::sleep(SNAPSHOT_REUSE);
        clients.forget_stale_snapshot();
        assert!(
            lock(&clients.snapshot).is_none(),
            "too old to share: dropped"
        );
    }
}
