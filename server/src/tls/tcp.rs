//! The TLS TCP service (`--tls-tcp`, 1340): the TCP service behind a TLS front, for
//! `openssl s_client -connect`. The front does the handshake (shown as a `tls` event),
//! then hands the TCP service a loopback connection of the lab's own that carries the
//! plaintext, registered under the client's address: so every relay mode, the page's
//! sends, closes and resets, the toxics of `@tcp` and the events are the TCP service's
//! own, on the one path a TCP byte takes. (Its kernel figures are the loopback leg's.)
//!
//! A reset on either side resets the other (the page's reset reaches the client; a
//! client's RST is the TCP service's `reset`); a FIN either way is passed on (toward the
//! client with `close_notify`), and once one way has ended the other gets
//! [`LINGER`] to finish. When the lab stops, the front lets go of its connections at once.
//! The loopback pairs come from a listener of the front's own on 127.0.0.1 that takes
//! only the connection the front itself opened (anything else is accepted and dropped).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use wirelab_shared::EventKind;

use super::accept::{Who, handshake_event};
use super::{Tls, Wire};
use crate::backoff::Backoff;
use crate::tcp::Tcp;

/// How long the other way may go on once one way has ended (FIN, or an error).
const LINGER: Duration = Duration::from_secs(5);

/// How long making one loopback pair may take.
const PAIR_TIMEOUT: Duration = Duration::from_secs(2);

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
        let stop = shutdown.clone();
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
                Err(e) => {
                    event.error = Some(format!("the TCP service could not take it: {e}"));
                    tcp2.hub().publish(EventKind::Tls(Box::new(event)));
                    return;
                }
            }
            tcp2.hub().publish(EventKind::Tls(Box::new(event)));
            tokio::select! {
                () = pump(&mut wire, mine) => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

/// Moves bytes between the client's TLS and the lab's plaintext leg, each way on its
/// own, until both ways have ended (or one failed and the other had [`LINGER`]).
async fn pump(wire: &mut Wire, plain: TcpStream) {
    // Handles on both sockets (the same sockets, a second descriptor each) to reset
    // them once the streams are split; dropped with the streams.
    let client = socket2::SockRef::from(wire.tcp()).try_clone().ok();
    let lab = socket2::SockRef::from(&plain).try_clone().ok();
    let (mut wire_in, mut wire_out) = tokio::io::split(wire);
    let (mut plain_in, mut plain_out) = plain.into_split();
    let up = one_way(&mut wire_in, &mut plain_out);
    let down = one_way(&mut plain_in, &mut wire_out);
    tokio::pin!(up, down);
    // A reset (or any failure) on one side is a reset of both: RST to the other.
    let reset = || {
        for socket in [&client, &lab].into_iter().flatten() {
            let _ = socket.set_linger(Some(Duration::ZERO));
        }
    };
    let up_first = tokio::select! {
        r = &mut up => match r {
            Ok(()) => true,
            Err(_) => return reset(),
        },
        r = &mut down => match r {
            Ok(()) => false,
            Err(_) => return reset(),
        },
    };
    let other = if up_first {
        tokio::time::timeout(LINGER, &mut down).await
    } else {
        tokio::time::timeout(LINGER, &mut up).await
    };
    if let Ok(Err(_)) = other {
        reset();
    }
}

/// Copies `from` to `to` until `from` ends, then passes the FIN on. `Err` when either
/// side failed (a reset, most often).
async fn one_way<R, W>(from: &mut R, to: &mut W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
    }
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

    /// A connected pair: the front's end and the TCP service's end. The front's end is
    /// bound before it connects, so the listener knows which connection is its own, and
    /// accepts (dropping any other) while it connects: a backlog filled by someone else
    /// is drained, not waited on.
    async fn pair(&self) -> std::io::Result<(TcpStream, TcpStream)> {
        let legs = self.legs.lock().await;
        let to = legs.local_addr()?;
        let socket = TcpSocket::new_v4()?;
        socket.bind("127.0.0.1:0".parse().expect("an address"))?;
        let want = socket.local_addr()?;
        let connect = socket.connect(to);
        let accept = async {
            loop {
                let (theirs, from) = legs.accept().await?;
                if from == want {
                    return Ok::<_, std::io::Error>(theirs);
                }
            }
        };
        let (mine, theirs) =
            tokio::time::timeout(PAIR_TIMEOUT, async { tokio::try_join!(connect, accept) })
                .await
                .map_err(|_| std::io::Error::other("no loopback pair within 2 s"))??;
        let _ = mine.set_nodelay(true);
        Ok((mine, theirs))
    }
}
