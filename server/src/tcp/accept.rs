//! The accept loop: each connection takes an owned permit of the connection limit (moved
//! into its task, as in mini-redis); past the limit a connection is accepted and closed
//! at once, counted and published, and the service goes on. A failing `accept` (out of
//! file descriptors, say) backs off instead of spinning.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::SockRef;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use wirelab_shared::EventKind;

use super::conn;
use crate::app::App;
use crate::hub::counters::add;

/// The first pause after a failed `accept`; it doubles on each failure in a row...
const BACKOFF_MIN: Duration = Duration::from_millis(5);
/// ...up to this.
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Connections the kernel may hold for `accept` (capped by `net.core.somaxconn`).
/// tokio's `bind` asks for 128, as std does; a storm of connections overflows that,
/// and a client whose handshake's last ACK was dropped then hangs until it sends.
const BACKLOG: i32 = 4096;

/// Accepts connections until `shutdown`, then waits for every connection to close.
pub async fn run(listener: TcpListener, app: Arc<App>, shutdown: CancellationToken) {
    // On a listening socket, listen() again only changes the backlog (Linux, BSDs).
    if let Err(e) = SockRef::from(&listener).listen(BACKLOG) {
        tracing::debug!("tcp: keeping the default accept backlog: {e}");
    }
    let mut backoff = Backoff::default();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff.reset();
                admit(&app, stream, peer);
            }
            Err(e) => {
                let pause = backoff.next_pause();
                tracing::warn!("tcp accept failed: {e}; trying again in {pause:?}");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
        }
    }
    drop(listener);
    // Every connection sees the same token and closes with reason `shutdown`.
    app.tcp.tasks.close();
    app.tcp.tasks.wait().await;
}

/// The pause after each failed `accept` in a row: mini-redis's doubling back-off, but
/// capped rather than giving up, since a lab should outlive a burst of `EMFILE`.
#[derive(Debug)]
struct Backoff {
    /// The next pause.
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The pause to take now; the next one is twice as long, up to [`BACKOFF_MAX`].
    fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        pause
    }

    /// After a successful `accept`: start again from [`BACKOFF_MIN`].
    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// Starts serving `stream`, or turns it away when the limit is reached.
fn admit(app: &Arc<App>, stream: TcpStream, peer: SocketAddr) {
    let Some(permit) = app.tcp.try_permit() else {
        refuse(app, stream, peer);
        return;
    };
    if let Err(e) = conn::open(app, stream, peer, permit, None) {
        // Reset between accept and here: there is no connection to show.
        tracing::debug!(%peer, "tcp connection gone before it started: {e}");
    }
}

/// Past the limit: one line for a person at `nc`, then FIN.
fn refuse(app: &App, stream: TcpStream, peer: SocketAddr) {
    let max = app.tcp.max_conns;
    add(&app.hub.counters.tcp_refused, 1);
    let line = format!("wirelab: too many connections (at most {max}); try again later\n");
    let _ = stream.try_write(line.as_bytes());
    drop(stream);
    app.hub.publish(EventKind::TcpRefused {
        peer: conn::show(peer),
        reason: format!("the lab holds {max} TCP connections at most (--max-tcp-conns)"),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_accepts_back_off_doubling_up_to_a_cap_and_success_resets() {
        let mut b = Backoff::default();
        let pauses: Vec<u64> = (0..10).map(|_| b.next_pause().as_millis() as u64).collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_pause(), BACKOFF_MIN);
    }
}
