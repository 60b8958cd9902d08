//! The dashboard over TLS (`--dashboard-tls`): an axum [`Listener`] whose connections
//! arrive with their handshake done, so the page, `/ws` (as WSS) and `/api` are served
//! over HTTPS with the lab's certificate, and the token never crosses the network in
//! clear.
//!
//! Handshakes run in their own tasks (a slow client holds up no one), at most
//! [`MAX_HANDSHAKES`] at once (more are closed at once), each within the handshake's
//! 10 s. They are not events: the dashboard's own connections are not the user's
//! traffic. A failed one is logged.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::Listener;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::accept::{Who, handshake_event};
use super::{Tls, Wire};
use crate::backoff::Backoff;

/// Handshakes in progress at most.
pub const MAX_HANDSHAKES: usize = 256;

/// Connections with their handshake done, waiting for axum to take them.
const READY: usize = 64;

/// See the module docs.
pub struct TlsListener {
    ready: mpsc::Receiver<(Wire, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener` with the lab's certificate (also for the dashboard's
    /// address), until `shutdown`.
    pub fn new(
        listener: TcpListener,
        tls: Arc<Tls>,
        shutdown: CancellationToken,
    ) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(READY);
        tokio::spawn(accept_loop(listener, tls, tx, shutdown));
        Ok(TlsListener { ready, local })
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<Tls>,
    tx: mpsc::Sender<(Wire, SocketAddr)>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let mut backoff = Backoff::default();
    while let Some((stream, peer)) = backoff.accept(&listener, &shutdown, "dashboard").await {
        let _ = stream.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "dashboard: {MAX_HANDSHAKES} TLS handshakes in progress; closed");
            continue;
        };
        let (tls, tx) = (tls.clone(), tx.clone());
        tokio::spawn(async move {
            let peer_text = peer.to_string();
            let who = Who {
                service: "dashboard",
                conn: 0,
                peer: &peer_text,
            };
            let (wire, event) = handshake_event(&tls.dashboard, who, stream).await;
            drop(slot);
            match wire {
                Some(wire) => {
                    let _ = tx.send((wire, peer)).await;
                }
                None => tracing::info!(
                    %peer,
                    sni = event.sni,
                    "dashboard: TLS handshake failed: {}",
                    event.error.unwrap_or_default()
                ),
            }
        });
    }
}

impl Listener for TlsListener {
    type Io = Wire;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Wire, SocketAddr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop ended (the lab is stopping): nothing more comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
