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
use super::http::{self, HttpView};
use super::proxy::{Proxy, RelayConn};
use crate::backoff::Backoff;
use crate::faults::{Line, line::Reporter};
use crate::hub::counters::add;
use crate::hub::{Hub, lock, now_us};
use crate::pipeline::merge::Merged;
use crate::pipeline::pump::{Events, Inject, Pump};
use crate::pipeline::{Flow, PumpEnd, Stages, Tap, pump};
use crate::tcp::show;

/// Connections the kernel may hold for `accept` (as the TCP service asks; tokio's bind
/// asks for 1,024, which a storm of clients overflows).
const BACKLOG: i32 = 4096;
/// Chunks from the page waiting per leg at most (each at most a `/ws` message).
const INJECT_CHUNKS: usize = 16;
/// How long the upstream's handshake may take (every address it resolves to, together).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The least time one of several addresses gets (Go's `Dial` gives each at least 2 s).
const CONNECT_SHARE_MIN: Duration = Duration::from_secs(2);
/// Keepalive on both legs: the first probe after this long without a byte...
const KEEPALIVE_TIME: Duration = Duration::from_secs(30);
/// ...then one every this long (the TCP service's figures).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
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
fn refuse(hub: &Hub, proxy: &Proxy, peer: SocketAddr, reason: String) {
    add(&proxy.refused, 1);
    add(&hub.counters.relay_refused, 1);
    hub.publish(EventKind::RelayRefused {
        proxy: proxy.name.clone(),
        peer: show(peer),
        reason,
    });
}

/// SO_LINGER 0: the close that follows sends RST.
fn reset(stream: &TcpStream) {
    let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// Connects to `upstream` (loopback only unless `allow_outbound`), trying each address it
/// resolves to in turn, or says why not.
async fn connect(upstream: &str, allow_outbound: bool) -> Result<TcpStream, String> {
    let targets = crate::tcp::connect::resolve_all(upstream, allow_outbound).await?;
    connect_any(&targets).await
}

/// The first of `targets` that accepts, in order, all within [`CONNECT_TIMEOUT`], as Go's
/// `Dial` (so toxiproxy) does: each gets an even share of the time left (at least
/// [`CONNECT_SHARE_MIN`]), so one that never answers leaves time for the next. Otherwise
/// why each failed.
async fn connect_any(targets: &[SocketAddr]) -> Result<TcpStream, String> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut failed = Vec::new();
    for (i, &target) in targets.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        let share = (left / (targets.len() - i) as u32)
            .max(CONNECT_SHARE_MIN)
            .min(left);
        failed.push(match timeout(share, TcpStream::connect(target)).await {
            Err(_) => format!(
                "the upstream {target} did not answer within {:.1} s",
                share.as_secs_f64()
            ),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                format!("the upstream {target} refused the connection: nothing listens there")
            }
            Ok(Err(e)) => format!("connecting to the upstream {target} failed: {e}"),
            Ok(Ok(stream)) => return Ok(stream),
        });
    }
    Err(failed.join("; "))
}

/// Removes the connection from its proxy's table when its task ends, even by a panic.
struct Registered<'a> {
    /// The proxy.
    proxy: &'a Proxy,
    /// The connection.
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock(&self.proxy.open).remove(&self.id);
    }
}

/// One client connection, from its upstream connect to `RelayClose`.
async fn serve(
    relays: Arc<Relays>,
    proxy: Arc<Proxy>,
    client: TcpStream,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
    stop: CancellationToken,
) {
    let hub = &relays.hub;
    // `ended` ends this connection: the proxy stopped, or its upstream changed.
    let (upstream_text, from_flag, ended) = proxy.target();
    let allow = relays.settings.allow_outbound || from_flag;
    let started = Instant::now();
    let connected = tokio::select! {
        r = connect(&upstream_text, allow) => r,
        _ = ended.cancelled() => {
            let why = stopped(&relays, &stop).detail.unwrap_or_default();
            Err(format!("{why}, while the upstream connect was running"))
        }
    };
    let upstream = match connected {
        Ok(s) => s,
        Err(why) if proxy.protocol == ProxyProtocol::Http => {
            let told = format!("{why}; the client got 502 Bad Gateway");
            refuse(hub, &proxy, peer, told);
            let _ = http::bad_gateway::answer(&client, &proxy.name, &why, &ended).await;
            return;
        }
        Err(why) => {
            reset(&client);
            refuse(hub, &proxy, peer, format!("{why}; the client got a RST"));
            return;
        }
    };
    let connect_us = started.elapsed().as_micros() as u64;
    let (Ok(listen), Ok(upstream_local), Ok(upstream_addr)) = (
        client.local_addr(),
        upstream.local_addr(),
        upstream.peer_addr(),
    ) else {
        return; // a leg was reset before it could be shown
    };
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_TIME)
        .with_interval(KEEPALIVE_INTERVAL);
    for leg in [&client, &upstream] {
        let _ = leg.set_nodelay(true);
        let _ = SockRef::from(leg).set_tcp_keepalive(&keepalive);
    }
    let conn = Arc::new(RelayConn::new(
        relays.next_id(),
        peer,
        listen,
        upstream_local,
        upstream_addr,
        Some([Inject::new(INJECT_CHUNKS), Inject::new(INJECT_CHUNKS)]),
    ));
    lock(&proxy.open).insert(conn.id, conn.clone());
    let registered = Registered {
        proxy: &proxy,
        id: conn.id,
    };
    add(&proxy.conns, 1);
    add(&hub.counters.relay_conns, 1);
    hub.publish(EventKind::RelayOpen {
        proxy: proxy.name.clone(),
        conn: conn.id,
        peer: conn.peer_text.clone(),
        listen: show(listen),
        upstream: show(upstream_addr),
        upstream_local: show(upstream_local),
        connect_us,
    });
    let view = (proxy.protocol == ProxyProtocol::Http).then(|| {
        let ids = relays.exchange_ids.clone();
        let snaplen = relays.settings.snaplen;
        HttpView::new(
            &proxy.name,
            conn.id,
            &conn.peer_text,
            snaplen,
            ids,
            connect_us,
        )
    });
    let events = ConnEvents {
        hub,
        proxy: &proxy.name,
        conn: &conn,
        snaplen: relays.settings.snaplen,
        http: view.map(Mutex::new),
    };
    let legs = [&client, &upstream];
    let end = relay(&relays, &proxy, &events, legs, &ended, &stop).await;
    for queue in conn.inject.iter().flatten() {
        queue.close();
    }
    if end.reset_client {
        reset(&client);
    }
    if end.reset_upstream {
        reset(&upstream);
    }
    drop((client, upstream));
    drop(registered);
    let f = &conn.figures;
    hub.publish(EventKind::RelayClose {
        proxy: proxy.name.clone(),
        conn: conn.id,
        peer: conn.peer_text.clone(),
        reason: end.reason,
        by: end.by,
        detail: end.detail,
        duration_us: now_us().saturating_sub(conn.since_us),
        client_in: f.client_in.load(Relaxed),
        client_out: f.client_out.load(Relaxed),
        upstream_in: f.upstream_in.load(Relaxed),
        upstream_out: f.upstream_out.load(Relaxed),
    });
}

/// How a relayed connection ended.
struct End {
    /// Why, for `RelayClose`.
    reason: CloseReason,
    /// The leg it started from.
    by: Option<Leg>,
    /// More words on why.
    detail: Option<String>,
    /// Close the client leg with RST.
    reset_client: bool,
    /// Close the upstream leg with RST.
    reset_upstream: bool,
}

/// The leg bytes travelling `flow` are read from.
fn source(flow: Flow) -> Leg {
    match flow {
        Flow::Up => Leg::Client,
        Flow::Down => Leg::Upstream,
    }
}

fn leg_name(leg: Leg) -> &'static str {
    match leg {
        Leg::Client => "client",
        Leg::Upstream => "upstream",
    }
}

/// A connection's events, as its pumps report them.
struct ConnEvents<'a> {
    /// Where they go.
    hub: &'a Hub,
    /// The proxy's name.
    proxy: &'a str,
    /// The connection.
    conn: &'a RelayConn,
    /// `--snaplen`, for what the page sends.
    snaplen: usize,
    /// An `http` proxy's reading of the stream.
    http: Option<Mutex<HttpView>>,
}

impl ConnEvents<'_> {
    /// Feeds an `http` proxy's reading (`from_page`: bytes the page sent); publishes what
    /// it completes.
    fn observe(&self, flow: Flow, bytes: &[u8], now: Instant, from_page: bool) {
        if let Some(view) = &self.http {
            let mut out = Vec::new();
            let mut view = lock(view);
            match from_page {
                false => view.feed(flow, bytes, now, &mut out),
                true => view.feed_page(flow, bytes, now, &mut out),
            }
            self.conn.websocket.store(view.takes_messages(), Relaxed);
            drop(view);
            for e in out {
                self.hub.publish(e);
            }
        }
    }

    /// The connection ended: what the reading still holds is published.
    fn finish(&self) {
        if let Some(view) = &self.http {
            let mut out = Vec::new();
            lock(view).finish(Instant::now(), &mut out);
            for e in out {
                self.hub.publish(e);
            }
        }
    }
}

impl Events for ConnEvents<'_> {
    fn data(&self, flow: Flow, merged: Merged) {
        self.hub.publish(EventKind::RelayData {
            proxy: self.proxy.to_owned(),
            conn: self.conn.id,
            peer: self.conn.peer_text.clone(),
            from: source(flow),
            size: merged.size,
            payload: merged.payload,
        });
    }

    fn reads(&self) -> bool {
        self.http.is_some()
    }

    fn read(&self, flow: Flow, bytes: &[u8], now: Instant) {
        self.observe(flow, bytes, now, false);
    }

    fn at_boundary(&self, flow: Flow) -> bool {
        self.http.as_ref().is_none_or(|v| lock(v).at_boundary(flow))
    }

    fn unsent(&self, flow: Flow, bytes: &[u8]) {
        let toward = leg_name(match flow {
            Flow::Up => Leg::Upstream,
            Flow::Down => Leg::Client,
        });
        self.hub.publish(EventKind::RelayNotice {
            proxy: self.proxy.to_owned(),
            conn: self.conn.id,
            peer: self.conn.peer_text.clone(),
            from: source(flow),
            detail: format!(
                "{} bytes the page sent toward the {toward} were not written: the stream \
                 ended inside one of its messages, where they would have cut it in two",
                bytes.len()
            ),
        });
    }

    fn sent(&self, flow: Flow, bytes: &[u8]) {
        self.observe(flow, bytes, Instant::now(), true);
        self.hub.publish(EventKind::RelaySend {
            proxy: self.proxy.to_owned(),
            conn: self.conn.id,
            peer: self.conn.peer_text.clone(),
            to: match flow {
                Flow::Up => Leg::Upstream,
                Flow::Down => Leg::Client,
            },
            size: bytes.len() as u64,
            payload: wirelab_shared::Payload::capture(bytes, self.snaplen),
        });
    }

    fn half_close(&self, flow: Flow) {
        if let Some(view) = &self.http {
            let mut out = Vec::new();
            lock(view).fin(flow, Instant::now(), &mut out);
            for e in out {
                self.hub.publish(e);
            }
        }
        let flag = match flow {
            Flow::Up => &self.conn.client_half_closed,
            Flow::Down => &self.conn.upstream_half_closed,
        };
        flag.store(true, Relaxed);
        self.hub.publish(EventKind::RelayHalfClose {
            proxy: self.proxy.to_owned(),
            conn: self.conn.id,
            peer: self.conn.peer_text.clone(),
            from: source(flow),
        });
    }
}

/// Runs both directions until both legs have sent FIN, either fails, or `ended` (`stop`
/// says whether the proxy stopped or only its upstream changed).
async fn relay(
    relays: &Relays,
    proxy: &Proxy,
    events: &ConnEvents<'_>,
    [client, upstream]: [&TcpStream; 2],
    ended: &CancellationToken,
    stop: &CancellationToken,
) -> End {
    let conn = events.conn;
    let (to_client, to_upstream) = match &conn.inject {
        Some([c, u]) => (Some(c), Some(u)),
        None => (None, None),
    };
    let (c, p) = (&conn.figures, &proxy.figures);
    let up_read = [&c.client_in, &p.client_in];
    let up_written = [&c.upstream_out, &p.upstream_out];
    let down_read = [&c.upstream_in, &p.upstream_in];
    let down_written = [&c.client_out, &p.client_out];
    let snaplen = relays.settings.snaplen;
    let started_us = now_us();
    let line = |flow| {
        let seed = conn.id ^ started_us.rotate_left(17);
        let (hub, proxy_name) = (relays.hub.clone(), proxy.name.clone());
        let (id, peer) = (conn.id, conn.peer_text.clone());
        let report: Reporter = Box::new(move |toxic: &str, what: String| {
            hub.publish(EventKind::RelayFault {
                proxy: proxy_name.clone(),
                conn: id,
                peer: peer.clone(),
                from: source(flow),
                toxic: toxic.to_owned(),
                what,
            });
        });
        let shown = conn.faults[flow as usize].clone();
        Stages::faults(Line::new(flow, proxy.toxics.clone(), seed, report, shown))
    };
    let mut up = Pump {
        flow: Flow::Up,
        tap: Tap::new(snaplen),
        stages: line(Flow::Up),
        read_counters: &up_read,
        write_counters: &up_written,
        events,
        inject: to_upstream,
        held: None,
    };
    let mut down = Pump {
        flow: Flow::Down,
        tap: Tap::new(snaplen),
        stages: line(Flow::Down),
        read_counters: &down_read,
        write_counters: &down_written,
        events,
        inject: to_client,
        held: None,
    };
    // `return` in here ends the block: the pumps are dropped after it.
    let end = async {
        let up_run = pump(&mut up, client, upstream);
        let down_run = pump(&mut down, upstream, client);
        tokio::pin!(up_run, down_run);
        let (mut up_done, mut down_done) = (false, false);
        let mut first_fin = None;
        // The leg the page sent a FIN toward, for the close's detail.
        let mut page_fin = None;
        // Bytes read either way so far, for the idle check.
        let moved = || c.client_in.load(Relaxed) + c.upstream_in.load(Relaxed);
        // Once half-closed: when to look again, and what `moved` was at the last look.
        let mut idle_check: Option<(Instant, u64)> = None;
        loop {
            let idle_at = idle_check.map(|(at, _)| at);
            let (flow, ended) = tokio::select! {
                e = &mut up_run, if !up_done => (Flow::Up, e),
                e = &mut down_run, if !down_done => (Flow::Down, e),
                _ = conn.wake.notified() => {
                    let Some(req) = lock(&conn.request).take() else { continue };
                    if req.reset {
                        return reset_from_page(req.leg);
                    }
                    // FIN toward that leg: nothing more is relayed to it.
                    let socket = match req.leg {
                        Leg::Client => client,
                        Leg::Upstream => upstream,
                    };
                    let _ = SockRef::from(socket).shutdown(std::net::Shutdown::Write);
                    page_fin = Some(req.leg);
                    let flow = match req.leg {
                        Leg::Client => Flow::Down,
                        Leg::Upstream => Flow::Up,
                    };
                    (flow, PumpEnd::Fin)
                }
                _ = ended.cancelled() => return stopped(relays, stop),
                _ = sleep_until(idle_at.unwrap_or_else(Instant::now)), if idle_at.is_some() => {
                    let (idle, before) = (relays.settings.idle, idle_check.map(|(_, b)| b));
                    match (idle, before) {
                        (Some(idle), Some(b)) if moved() == b => return idle_timeout(idle),
                        (Some(idle), _) => idle_check = Some((Instant::now() + idle, moved())),
                        (None, _) => idle_check = None,
                    }
                    continue;
                }
            };
            match flow {
                Flow::Up => up_done = true,
                Flow::Down => down_done = true,
            }
            match ended {
                PumpEnd::Fin => {
                    if let (None, Some(idle)) = (first_fin, relays.settings.idle) {
                        idle_check = Some((Instant::now() + idle, moved()));
                    }
                    let first = *first_fin.get_or_insert(source(flow));
                    if up_done && down_done {
                        let second = match first {
                            Leg::Client => Leg::Upstream,
                            Leg::Upstream => Leg::Client,
                        };
                        return End {
                            reason: match page_fin {
                                Some(_) => CloseReason::ClosedFromPage,
                                None => CloseReason::Fin,
                            },
                            by: page_fin.or(Some(first)),
                            detail: Some(match page_fin {
                                Some(leg) => format!(
                                    "the page sent FIN toward the {}; both directions then ended",
                                    leg_name(leg)
                                ),
                                None => format!(
                                    "the {} sent FIN first, then the {}",
                                    leg_name(first),
                                    leg_name(second)
                                ),
                            }),
                            reset_client: false,
                            reset_upstream: false,
                        };
                    }
                }
                PumpEnd::ReadFailed(e) => return failed(source(flow), &e, "reading from"),
                PumpEnd::Cut { reset, why } => return cut(reset, why),
                PumpEnd::WriteFailed(e) => {
                    let to = match flow {
                        Flow::Up => Leg::Upstream,
                        Flow::Down => Leg::Client,
                    };
                    return failed(to, &e, "writing to");
                }
            }
        }
    }
    .await;
    // A pump closes its merge window when it returns itself; the one that did not (the
    // other leg failed, or the lab ended it) may still hold one: its data event comes
    // before the close, so that the data events add up to the close's byte counts.
    up.flush();
    down.flush();
    up.unsent();
    down.unsent();
    events.finish();
    end
}

/// The page reset `leg` (RST); the lab closes the other.
fn reset_from_page(leg: Leg) -> End {
    End {
        reason: CloseReason::ResetFromPage,
        by: Some(leg),
        detail: Some(format!(
            "the page reset the {} leg (RST); the lab closed the other",
            leg_name(leg)
        )),
        reset_client: leg == Leg::Client,
        reset_upstream: leg == Leg::Upstream,
    }
}

/// The leg `leg` failed with `e`: the other leg is reset in turn.
fn failed(leg: Leg, e: &io::Error, doing: &str) -> End {
    let reset = matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    );
    let other = match leg {
        Leg::Client => Leg::Upstream,
        Leg::Upstream => Leg::Client,
    };
    End {
        reason: if reset {
            CloseReason::Reset
        } else {
            CloseReason::Error
        },
        by: Some(leg),
        detail: Some(format!(
            "{doing} the {} failed ({e}); the lab reset the {} in turn",
            leg_name(leg),
            leg_name(other)
        )),
        reset_client: leg == Leg::Upstream,
        reset_upstream: leg == Leg::Client,
    }
}

/// A toxic ended the connection: both legs closed, or reset.
fn cut(reset: bool, why: String) -> End {
    End {
        reason: match reset {
            true => CloseReason::FaultReset,
            false => CloseReason::Fault,
        },
        by: None,
        detail: Some(format!(
            "{why}; the lab {} both legs",
            if reset { "reset (RST)" } else { "closed" }
        )),
        reset_client: reset,
        reset_upstream: reset,
    }
}

/// Half-closed, and no byte moved either way for `idle`: the lab closes both legs.
fn idle_timeout(idle: Duration) -> End {
    End {
        reason: CloseReason::IdleTimeout,
        by: None,
        detail: Some(format!(
            "half-closed, and nothing travelled either way for {} s (--proxy-idle-secs)",
            idle.as_secs()
        )),
        reset_client: false,
        reset_upstream: false,
    }
}

/// Ended by the lab: its shutdown, the proxy disabled or deleted (`stop` cancelled), or
/// its upstream changed.
fn stopped(relays: &Relays, stop: &CancellationToken) -> End {
    let detail = match (relays.shutdown.is_cancelled(), stop.is_cancelled()) {
        (true, _) => "the lab is stopping",
        (false, true) => "the proxy was disabled or deleted",
        (false, false) => "the proxy's upstream changed: connections to the old one end",
    };
    End {
        reason: CloseReason::Shutdown,
        by: None,
        detail: Some(detail.to_owned()),
        reset_client: false,
        reset_upstream: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
