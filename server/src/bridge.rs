//! `--bridge`: TCP clients, UDP peers and the WebSocket chat hear each other.
//!
//! A service that hears bytes hands them to its [`Bridge`], the sending end of one bounded
//! queue ([`QUEUE`] chunks; past it a chunk is dropped and counted in `bridge_dropped`).
//! One task, [`run`], passes each chunk on to the other services. So no service knows the
//! others: each holds a `Bridge`, and only that task holds the services it feeds.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wirelab_shared::EventKind;

use crate::hub::Hub;
use crate::hub::counters::add;

/// Chunks waiting to be bridged, at most.
pub const QUEUE: usize = 1024;

/// Where bridged bytes came from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    Tcp(u64),
    Udp(SocketAddr),
    Chat,
}

/// The sending end, which every service holds (a no-op without `--bridge`).
#[derive(Clone)]
pub struct Bridge {
    tx: Option<mpsc::Sender<(Source, Bytes)>>,
    hub: Arc<Hub>,
}

impl Bridge {
    /// With `on` (`--bridge`), a bridge and the receiving end its task reads.
    pub fn new(on: bool, hub: Arc<Hub>) -> (Bridge, Option<mpsc::Receiver<(Source, Bytes)>>) {
        match on {
            true => {
                let (tx, rx) = mpsc::channel(QUEUE);
                (Bridge { tx: Some(tx), hub }, Some(rx))
            }
            false => (Bridge { tx: None, hub }, None),
        }
    }

    /// Hands `bytes`, heard from `from`, to the other services.
    pub fn send(&self, from: Source, bytes: &[u8]) {
        let Some(tx) = &self.tx else { return };
        if bytes.is_empty() {
            return;
        }
        if tx.try_send((from, Bytes::copy_from_slice(bytes))).is_err() {
            add(&self.hub.counters.bridge_dropped, bytes.len() as u64);
        }
    }
}

/// Delivers bytes to every receiver of a service but one (`None`: to all).
pub type Deliver<K> = Box<dyn Fn(Option<K>, &[u8]) + Send + Sync>;

/// Where the bridge's task delivers.
pub struct Peers {
    /// Bytes toward every TCP client (by connection id).
    pub tcp: Deliver<u64>,
    /// A datagram toward every recent UDP peer (by address).
    pub udp: Deliver<SocketAddr>,
    pub hub: Arc<Hub>,
}

/// Delivers what the services hand over until `shutdown`.
pub async fn run(
    mut rx: mpsc::Receiver<(Source, Bytes)>,
    peers: Peers,
    shutdown: CancellationToken,
) {
    loop {
        let (from, bytes) = tokio::select! {
            got = rx.recv() => match got {
                Some(x) => x,
                None => return,
            },
            _ = shutdown.cancelled() => return,
        };
        if !matches!(from, Source::Tcp(_)) {
            (peers.tcp)(None, &bytes);
        }
        if !matches!(from, Source::Udp(_)) {
            (peers.udp)(None, &bytes);
        }
        let who = match from {
            Source::Tcp(conn) => format!("tcp#{conn}"),
            Source::Udp(peer) => format!("udp {peer}"),
            Source::Chat => continue,
        };
        peers.hub.publish(EventKind::Chat {
            from: who,
            text: String::from_utf8_lossy(&bytes).trim_end().to_owned(),
        });
    }
}
