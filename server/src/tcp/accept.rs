//! The accept loop: each connection takes an owned permit of the connection limit (moved
//! into its task, as in mini-redis); past the limit a connection is accepted and closed
//! at once, counted and published, and the service goes on. A failing `accept` (out of
//! file descriptors, say) backs off instead of spinning.

use std::net::SocketAddr;
use std::sync::Arc;

use socket2::SockRef;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use wirelab_shared::EventKind;

use super::{Tcp, conn};
use crate::backoff::Backoff;
use crate::hub::counters::add;

/// Connections the kernel may hold for `accept` (capped by `net.core.somaxconn`).
/// tokio's `bind` asks for 128, as std does; a storm of connections overflows that,
/// and a client whose handshake's last ACK was dropped then hangs until it sends.
const BACKLOG: i32 = 4096;

/// Accepts connections until `shutdown`, then waits for every connection to close.
pub async fn run(listener: TcpListener, tcp: Arc<Tcp>, shutdown: CancellationToken) {
    // On a listening socket, listen() again only changes the backlog (Linux, BSDs).
    if let Err(e) = SockRef::from(&listener).listen(BACKLOG) {
        tracing::debug!("tcp: keeping the default accept backlog: {e}");
    }
    let mut backoff = Backoff::default();
    while let Some((stream, peer)) = backoff.accept(&listener, &shutdown, "tcp").await {
        admit(&tcp, stream, peer);
    }
    drop(listener);
    // Every connection sees the same token and closes with reason `shutdown`.
    tcp.tasks.close();
    tcp.tasks.wait().await;
}

/// Starts serving `stream`, or turns it away when the limit is reached.
fn admit(tcp: &Arc<Tcp>, stream: TcpStream, peer: SocketAddr) {
    let Some(permit) = tcp.try_permit() else {
        refuse(tcp, stream, peer);
        return;
    };
    if let Err(e) = conn::open(tcp, stream, peer, permit, None, None) {
        // Reset between accept and here: there is no connection to show.
        tracing::debug!(%peer, "tcp connection gone before it started: {e}");
    }
}

/// Past the limit: one line for a person at `nc`, then FIN.
fn refuse(tcp: &Tcp, stream: TcpStream, peer: SocketAddr) {
    let max = tcp.max_conns;
    add(&tcp.hub.counters.tcp_refused, 1);
    let line = format!("wirelab: too many connections (at most {max}); try again later\n");
    let _ = stream.try_write(line.as_bytes());
    drop(stream);
    tcp.hub.publish(EventKind::TcpRefused {
        peer: conn::show(peer),
        reason: format!("the lab holds {max} TCP connections at most (--max-tcp-conns)"),
    });
}
