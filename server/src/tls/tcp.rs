//! The TLS TCP service (`--tls-tcp`, 1340): the TCP service behind a TLS front, for
//! `openssl s_client -connect`. The front does the handshake (shown as a `tls` event),
//! then hands the TCP service a loopback connection of the lab's own that carries the
//! plaintext, registered under the client's address: so every relay mode, the page's
//! sends, closes and resets, the toxics of `@tcp` and the events are the TCP service's
//! own, on the one path a TCP byte takes. (Its kernel figures are the loopback leg's.)
//!
//! A reset from the page (or a toxic) resets the client's connection too; a close
//! closes it with `close_notify` and FIN.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncWriteExt, copy_bidirectional};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use wirelab_shared::EventKind;

use super::accept::{Who, handshake_event};
use super::{Tls, Wire};
use crate::backoff::Backoff;
use crate::tcp::Tcp;

/// Accepts TLS clients until `shutdown`.
pub async fn run(listener: TcpListener, tls: Arc<Tls>, tcp: Arc<Tcp>, shutdown: CancellationToken) {
    let front = match Front::new(&listener).await {
        Ok(front) => Arc::new(front),
        Err(e) => {
            tracing::error!("tls-tcp: cannot make its loopback legs: {e}");
            return;
        }
    };
    let mut backoff = Backoff::default();
    while let Some((stream, peer)) = backoff.accept(&listener, &shutdown, "tls-tcp").await {
        // The TCP service's limit holds while the handshake runs, so stuck handshakes
        // are bounded by --max-tcp-conns.
        let Some(permit) = tcp.try_permit() else {
            drop(stream);
            tcp_refused(&tcp, peer);
            continue;
        };
        let (tls, tcp2, front) = (tls.clone(), tcp.clone(), front.clone());
        tcp.tasks().spawn(async move {
            let peer_text = crate::tcp::show(peer);
            let who = Who {
                service: "tls_tcp",
                conn: 0,
                peer: &peer_text,
            };
            let (wire, mut event) = handshake_event(&tls.tcp, who, stream).await;
            let Some(mut wire) = wire else {
                tcp2.hub().publish(EventKind::Tls(Box::new(event)));
                return;
            };
            let (mine, theirs) = match front.pair().await {
                Ok(pair) => pair,
                Err(e) => {
                    event.error = Some(format!("the lab could not make its loopback leg: {e}"));
                    tcp2.hub().publish(EventKind::Tls(Box::new(event)));
                    return;
                }
            };
            match tcp2.adopt(theirs, peer, front.addr, permit) {
                Ok(id) => event.conn = id,
                Err(e) => event.error = Some(format!("the TCP service could not take it: {e}")),
            }
            tcp2.hub().publish(EventKind::Tls(Box::new(event)));
            pump(&mut wire, mine).await;
        });
    }
}

/// Moves bytes between the client's TLS and the lab's plaintext leg until either ends.
async fn pump(wire: &mut Wire, mut plain: TcpStream) {
    if let Err(e) = copy_bidirectional(wire, &mut plain).await {
        // The TCP service reset its side (the page's reset, a toxic): so is the client's.
        if e.kind() == std::io::ErrorKind::ConnectionReset {
            let _ = socket2::SockRef::from(wire.tcp()).set_linger(Some(std::time::Duration::ZERO));
        }
        return;
    }
    let _ = wire.shutdown().await;
}

/// Past the TCP service's limit: closed at once, and said.
fn tcp_refused(tcp: &Tcp, peer: SocketAddr) {
    tcp.hub().publish(EventKind::TcpRefused {
        peer: crate::tcp::show(peer),
        reason: "the lab holds --max-tcp-conns TCP connections at most (TLS front)".into(),
    });
}

/// Makes the loopback pairs: a listener of its own on 127.0.0.1, one pair at a time.
struct Front {
    /// Where the front accepts clients (the service's address, for `TcpOpen`'s `local`).
    addr: SocketAddr,
    legs: Mutex<TcpListener>,
}

impl Front {
    async fn new(listener: &TcpListener) -> std::io::Result<Front> {
        Ok(Front {
            addr: listener.local_addr()?,
            legs: Mutex::new(TcpListener::bind("127.0.0.1:0").await?),
        })
    }

    /// A connected pair: the front's end and the TCP service's end.
    async fn pair(&self) -> std::io::Result<(TcpStream, TcpStream)> {
        let legs = self.legs.lock().await;
        let mine = TcpStream::connect(legs.local_addr()?).await?;
        let want = mine.local_addr()?;
        loop {
            let (theirs, from) = legs.accept().await?;
            // Only the lab connects here, one at a time; anything else is dropped.
            if from == want {
                let _ = mine.set_nodelay(true);
                return Ok((mine, theirs));
            }
        }
    }
}
