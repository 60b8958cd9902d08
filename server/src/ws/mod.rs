//! The WebSocket push channel, `GET /ws`: the dashboard's feed and a service of its own
//! (chat, commands) for any WebSocket client.
//!
//! - [`upgrade`]: the checks before the upgrade (client limit, Origin, token), and the
//!   upgrade itself.
//! - [`socket`]: the upgraded connection as a Sink and a Stream of messages, holding no
//!   buffer while idle.
//! - [`frame`]: RFC 6455 framing: the reader of the client's frames, the server's
//!   headers, the close codes of violations.
//! - [`pump`]: one client's loop, generic over Sink/Stream so tests drive it without
//!   sockets.
//! - [`commands`]: what each command does.

pub mod commands;
pub mod frame;
pub mod pump;
pub mod socket;
pub mod upgrade;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use wirelab_shared::WsClientInfo;

use crate::hub::lock;

/// The connected clients, for the WebSocket panel and the limit.
#[derive(Default)]
pub struct Clients {
    clients: Mutex<HashMap<u64, Arc<ClientStats>>>,
    next_id: AtomicU64,
}

/// One client's identity and figures, updated by its pump.
#[derive(Debug, Default)]
pub struct ClientStats {
    pub id: u64,
    pub peer: String,
    pub user_agent: String,
    pub dashboard: bool,
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
        Some(stats)
    }

    /// Forgets a client.
    pub fn leave(&self, id: u64) {
        lock(&self.clients).remove(&id);
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
}
