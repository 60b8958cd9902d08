//! A `tcp` proxy: the accept loop, and one client connection with its upstream leg.
//!
//! Each direction is a [`pump()`] (read, tap, stages, write, with a bounded window). A FIN
//! from either side is passed on to the other (half-close, per direction); the
//! connection is over when both have sent FIN, or at once when either leg fails, and
//! then the other leg is reset too, so that neither end waits for what cannot come.
//!
//! Nothing holds a connection (and one of `--max-proxy-conns`) for ever: both legs have
//! TCP keepalive, as the TCP service's half-closed connections do, so a peer that
//! vanished without FIN or RST fails its leg; and a half-closed pair (one side has sent
//! FIN) on which no byte moves either way for `--proxy-idle-secs` is closed by the lab
//! (`idle_timeout`), so a client gone in front of a silent upstream does not stay.
//!
//! ## Layout
//! - this file: the listening socket and the accept loop (the connection limit, a
//!   client turned away).
//! - [`connect`](mod@connect): the upstream's connect, each address in turn.
//! - [`serve`](mod@serve): one client connection, from its upstream connect to
//!   `RelayClose`.
//! - [`legs`]: both directions' pumps, until both legs have sent FIN or one fails, and
//!   how the connection ended.
//! - [`events`]: what the pumps tell, as events (and an `http` proxy's reading).

mod connect;
mod events;
mod legs;
mod serve;

// What this module and its children use (each child says `use super::*`).
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use wirelab_shared::{CloseReason, EventKind, Leg, ProxyProtocol};

use super::Relays;
use super::faults::fault_line;
use super::http::{self, HttpView};
use super::proxy::{Proxy, RelayConn};
use crate::backoff::Backoff;
use crate::hub::counters::add;
use crate::hub::{Hub, lock, now_us};
use crate::pipeline::merge::Merged;
use crate::pipeline::pump::{Events, Inject, Pump};
use crate::pipeline::{Flow, PumpEnd, Stages, Tap, pump};
use crate::tcp::show;
use connect::connect;
use events::{ConnEvents, leg_name, source};
use legs::{relay, stopped};
use serve::serve;

/// Connections the kernel may hold for `accept` (as the TCP service asks; tokio's bind
/// asks for 1,024, which a storm of clients overflows).
const BACKLOG: i32 = 4096;
/// How long a listen address's name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A proxy's listening socket, shared by its [`Proxy`] state and its accept loop. The
/// loop holds it only while it polls, so stopping the proxy takes it out and drops it:
/// the port is closed when the stop returns (toxiproxy's `stop` waits for its listener
/// to close too), and the same address can be bound again at once.
pub type ListenerSlot = Arc<Mutex<Option<TcpListener>>>;

/// Binds a proxy's `listen` address (`host:port`) at [`listen_addr`].
pub(super) async fn bind(listen: &str) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(listen_addr(listen).await?).await?;
    // Listening already: this only raises the backlog.
    let _ = SockRef::from(&listener).listen(BACKLOG);
    Ok(listener)
}

/// Where a `listen` address binds: a literal `ip:port` as it is; a name at its first IPv4
/// address, else its first, as Go's `net.Listen` (so toxiproxy) binds it: `localhost:P`
/// is `127.0.0.1:P`, which is where clients saying `localhost` reach it (they try each
/// address; one that says `127.0.0.1` reaches it too).
pub(super) async fn listen_addr(listen: &str) -> io::Result<SocketAddr> {
    if let Ok(addr) = listen.parse() {
        return Ok(addr);
    }
    let found: Vec<SocketAddr> = timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(listen))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "resolving took too long"))??
        .collect();
    let first = found.iter().find(|a| a.is_ipv4()).or(found.first());
    first
        .copied()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "resolves to no address"))
}

/// Whether the listen address `asked` is the one a proxy has (`bound`: the real address
/// once it ran, else as given): the same address once resolved as [`bind`] resolves it,
/// or the same host with port 0 (which was answered with the real port). So
/// `localhost:0` and `localhost:P` are the same as a bound `127.0.0.1:P`.
pub(super) async fn same_listen(bound: &str, asked: &str) -> bool {
    if bound == asked {
        return true;
    }
    match (listen_addr(bound).await, listen_addr(asked).await) {
        (Ok(bound), Ok(asked)) => {
            bound.ip().to_canonical() == asked.ip().to_canonical()
                && (asked.port() == 0 || asked.port() == bound.port())
        }
        _ => false,
    }
}

/// Accepts clients until `stop` (the proxy disabled or deleted, or the lab stopping).
pub(super) async fn run(
    relays: Arc<Relays>,
    proxy: Arc<Proxy>,
    listener: ListenerSlot,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::default();
    while let Some((client, peer)) = accept(&listener, &stop, &mut backoff).await {
        match proxy.limit.clone().try_acquire_owned() {
            Ok(permit) => {
                let conn = serve(
                    relays.clone(),
                    proxy.clone(),
                    client,
                    peer,
                    permit,
                    stop.clone(),
                );
                relays.tasks.spawn(conn);
            }
            Err(_) => {
                reset(&client);
                let max = relays.settings.max_conns;
                let why = format!(
                    "the proxy holds {max} connections at most (--max-proxy-conns); the \
                     client got a RST"
                );
                refuse(&relays.hub, &proxy, peer, why);
            }
        }
    }
}

/// The next client, or `None` once `stop` is cancelled or the socket was taken out. A
/// failed `accept` (out of file descriptors, say) is followed by the back-off's pause.
async fn accept(
    slot: &ListenerSlot,
    stop: &CancellationToken,
    backoff: &mut Backoff,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let polled = poll_fn(|cx| match lock(slot).as_ref() {
            Some(listener) => listener.poll_accept(cx).map(Some),
            None => Poll::Ready(None),
        });
        let accepted = tokio::select! {
            r = polled => r?,
            _ = stop.cancelled() => return None,
        };
        match accepted {
            Ok(conn) => {
                backoff.reset();
                return Some(conn);
            }
            Err(e) => {
                let pause = backoff.next_pause();
                tracing::warn!("relay accept failed: {e}; trying again in {pause:?}");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.cancelled() => return None,
                }
            }
        }
    }
}

/// Counts and publishes a client turned away.
pub(super) fn refuse(hub: &Hub, proxy: &Proxy, peer: SocketAddr, reason: String) {
    add(&proxy.refused, 1);
    add(&hub.counters.relay_refused, 1);
    hub.publish(EventKind::RelayRefused {
        proxy: proxy.name.clone(),
        peer: show(peer),
        reason,
    });
}

/// SO_LINGER 0: the close that follows sends RST.
pub(super) fn reset(stream: &TcpStream) {
    let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect::connect_any;

    #[tokio::test]
    async fn each_address_is_tried_in_turn() {
        // A service on 127.0.0.1 only, and the order `localhost` often resolves in.
        let service = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = service.local_addr().unwrap().port();
        let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
        let v4: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let stream = connect_any(&[v6, v4])
            .await
            .expect("the second address answers");
        assert_eq!(stream.peer_addr().unwrap(), v4);
        drop(service);
        let why = connect_any(&[v6, v4]).await.unwrap_err();
        assert!(
            why.contains(&v6.to_string()) && why.contains(&v4.to_string()),
            "{why}"
        );
    }

    /// Every relayed connection's task lives as long as the connection: its size is the
    /// relay's memory per idle connection (with the kernel's). An 8 KiB array held across
    /// an await in the 502 path once made it 9 KiB; it is under 4 KiB (debug build).
    #[tokio::test]
    async fn a_connections_task_stays_small() {
        let hub = Arc::new(Hub::new(1, 16, 16));
        let settings = super::super::Settings {
            snaplen: 64,
            max_conns: 4,
            allow_outbound: false,
            udp_idle: Duration::from_secs(1),
            idle: None,
        };
        let relays = Arc::new(Relays::new(hub, settings, CancellationToken::new()));
        let spec: super::super::spec::ProxySpec =
            "web=http://127.0.0.1:0->127.0.0.1:9".parse().unwrap();
        let proxy = relays
            .create(spec, false, super::super::Origin::Flag)
            .await
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let peer = client.local_addr().unwrap();
        let permit = proxy.limit.clone().try_acquire_owned().unwrap();
        let task = serve::serve(
            relays.clone(),
            proxy,
            client,
            peer,
            permit,
            CancellationToken::new(),
        );
        let size = std::mem::size_of_val(&task);
        assert!(size < 6 * 1024, "a connection's task is {size} bytes");
    }

    #[tokio::test]
    async fn localhost_listens_where_clients_reach_it_and_is_the_same_as_its_address() {
        let bound = listen_addr("localhost:0").await.unwrap();
        assert!(bound.ip().is_loopback(), "{bound}");
        assert_eq!(listen_addr("127.0.0.1:7").await.unwrap().port(), 7);
        let real = format!("{}:4321", bound.ip());
        assert!(same_listen(&real, "localhost:0").await);
        assert!(same_listen(&real, "localhost:4321").await);
        assert!(!same_listen(&real, "localhost:4322").await);
        assert!(same_listen("127.0.0.1:4321", "127.0.0.1:0").await);
        assert!(!same_listen("127.0.0.1:4321", "127.0.0.2:0").await);
    }
}
