//! A `udp` proxy: a session per client address, each with its own upstream socket (as
//! `socat UDP-LISTEN,fork` does), ended after `--proxy-udp-idle-secs` without a datagram
//! either way. Sessions are bounded by `--max-proxy-conns`: a new client past it has its
//! datagrams dropped, counted (`dropped`, `refused`) and shown (at most one event a
//! second). Every datagram either way is an event, as on the UDP service.
//!
//! The proxy's toxics ([`crate::faults`], those that act on datagrams) run in a fault
//! line per direction, owned by the session's task: datagrams toward the upstream reach
//! it through a bounded queue (only while some toxic covers that way; past
//! [`UP_QUEUE`] they are dropped and counted), those from the upstream directly. With no
//! toxic, a datagram is sent on as soon as it is read.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::{Duration, Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use wirelab_shared::{EventKind, Leg, Payload};

use super::Relays;
use super::faults::fault_line;
use super::proxy::{Proxy, RelayConn};
use crate::faults::{Due, Line};
use crate::hub::counters::add;
use crate::hub::{lock, now_us};
use crate::pipeline::Flow;
use crate::tcp::show;
use crate::udp::MAX_DATAGRAM;

/// At most one refusal event a second per proxy.
const SECOND: Duration = Duration::from_secs(1);
/// Datagrams toward the upstream waiting for the session's toxics, at most.
pub const UP_QUEUE: usize = 1024;

/// One client's session, as the receive loop holds it.
struct Session {
    /// Its record (figures, addresses), also in the proxy's table.
    conn: Arc<RelayConn>,
    /// Its own socket, connected to the upstream.
    upstream: Arc<UdpSocket>,
    /// When a datagram last moved either way, microseconds since the Unix epoch.
    last_us: Arc<AtomicU64>,
    /// Set by its task when it ends: a new datagram from the client opens a new session.
    ended: Arc<AtomicBool>,
    /// To its task, datagrams toward the upstream while toxics cover that way.
    faulted: mpsc::Sender<Bytes>,
    /// Set by its task while its toxics hold datagrams toward the upstream: new ones go
    /// the same way, behind them, even once no toxic covers it.
    holding: Arc<AtomicBool>,
}

/// Binds a `udp` proxy's `listen` address, resolved as a `tcp` proxy's is, with the
/// receive buffer the UDP service asks for ([`crate::udp::RCVBUF_WANTED`]: the default
/// holds some 25 ms of small datagrams at 10,000 a second). A stopped proxy's socket
/// closes when its loop and its sessions have ended, a moment after the stop: when the
/// address is still taken, the bind is tried again for up to a second.
pub(super) async fn bind(listen: &str) -> io::Result<UdpSocket> {
    let addr = super::tcp::listen_addr(listen).await?;
    let mut tries = 0;
    loop {
        match crate::udp::bind(addr) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && tries < 20 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// Receives datagrams from clients until `stop`.
pub(super) async fn run(
    relays: Arc<Relays>,
    proxy: Arc<Proxy>,
    socket: UdpSocket,
    stop: CancellationToken,
) {
    let socket = Arc::new(socket);
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    // Ended sessions say so (one message each, at most `--max-proxy-conns` alive).
    let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<(SocketAddr, u64)>();
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut last_refusal: Option<Instant> = None;
    loop {
        // Under a flood the next datagram is there already: taken without a select (whose
        // futures cost a registration each), the stop still seen; ended sessions are
        // forgotten once it pauses (a datagram from one opens a new one meanwhile).
        if stop.is_cancelled() {
            break;
        }
        let ready = match socket.try_recv_from(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => tokio::select! {
                r = socket.recv_from(&mut buf) => r,
                Some((addr, id)) = ended_rx.recv() => {
                    if sessions.get(&addr).is_some_and(|s| s.conn.id == id) {
                        sessions.remove(&addr);
                    }
                    continue;
                }
                _ = stop.cancelled() => break,
            },
            r => r,
        };
        let (n, client) = match ready {
            Ok(got) => got,
            // An ICMP error for an earlier send to a client: nothing to do here.
            Err(_) => continue,
        };
        let data = &buf[..n];
        if sessions.get(&client).is_some_and(|s| s.ended.load(Relaxed)) {
            sessions.remove(&client);
        }
        let s = match sessions.entry(client) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let Some(permit) = proxy.limit.clone().try_acquire_owned().ok() else {
                    let why = format!(
                        "the proxy holds {} UDP sessions at most (--max-proxy-conns): \
                         datagrams from new clients are dropped and counted",
                        relays.settings.max_conns
                    );
                    // One event a second at most: a flood of new clients stays readable.
                    let show_it = last_refusal.is_none_or(|t| t.elapsed() >= SECOND);
                    if show_it {
                        last_refusal = Some(Instant::now());
                    }
                    refuse(&relays, &proxy, client, why, show_it);
                    continue;
                };
                match open(&relays, &proxy, &socket, client, permit, &ended_tx).await {
                    Ok(session) => v.insert(session),
                    Err(why) => {
                        refuse(&relays, &proxy, client, why, true);
                        continue;
                    }
                }
            }
        };
        s.last_us.store(now_us(), Relaxed);
        let f = &s.conn.figures;
        add(&f.client_in, n as u64);
        add(&proxy.figures.client_in, n as u64);
        relays.hub.publish(EventKind::RelayDatagram {
            proxy: proxy.name.clone(),
            session: s.conn.id,
            peer: s.conn.peer_text.clone(),
            from: Leg::Client,
            size: n as u64,
            payload: Payload::capture(data, relays.settings.snaplen),
        });
        let queued = s.faulted.capacity() < UP_QUEUE || s.holding.load(Relaxed);
        if queued || proxy.toxics.covers(Flow::Up) {
            // The session's task runs them (and sends what they let through).
            match s.faulted.try_send(Bytes::copy_from_slice(data)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    add(&proxy.dropped, 1);
                    add(&relays.hub.counters.fault_dropped, 1);
                }
                // Its task has just ended: the next datagram opens a new session.
                Err(TrySendError::Closed(_)) => add(&proxy.dropped, 1),
            }
            continue;
        }
        // `send` waits only while the kernel's send buffer is full (it rarely is for UDP):
        // that is back-pressure on this proxy's receive loop, bounded by the socket.
        match s.upstream.send(data).await {
            Ok(m) => {
                add(&f.upstream_out, m as u64);
                add(&proxy.figures.upstream_out, m as u64);
            }
            // The upstream's port closed (ICMP), say: dropped and counted; the session's own
            // loop ends it when it reads that error.
            Err(_) => add(&proxy.dropped, 1),
        }
    }
}

/// A datagram from a new client that gets no session: dropped, counted, and shown when
/// `show_it`.
fn refuse(relays: &Relays, proxy: &Proxy, client: SocketAddr, reason: String, show_it: bool) {
    add(&proxy.dropped, 1);
    add(&proxy.refused, 1);
    add(&relays.hub.counters.relay_refused, 1);
    if show_it {
        relays.hub.publish(EventKind::RelayRefused {
            proxy: proxy.name.clone(),
            peer: show(client),
            reason,
        });
    }
}

/// Opens a session for `client`: its own socket, connected to the upstream.
async fn open(
    relays: &Arc<Relays>,
    proxy: &Arc<Proxy>,
    listen: &Arc<UdpSocket>,
    client: SocketAddr,
    permit: OwnedSemaphorePermit,
    ended_tx: &mpsc::UnboundedSender<(SocketAddr, u64)>,
) -> Result<Session, String> {
    // `ended`: the proxy stopped, or its upstream changed (the session's upstream is gone).
    let (upstream_text, from_flag, ended) = proxy.target();
    let allow = relays.settings.allow_outbound || from_flag;
    let target = crate::tcp::resolve(&upstream_text, allow).await?;
    let any: SocketAddr = match target {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("an address"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("an address"),
    };
    let fail = |e: io::Error| format!("a socket toward the upstream {target}: {e}");
    // The same receive buffer as the proxy's own socket: the upstream's answers can come
    // as fast as the client's datagrams.
    let upstream = crate::udp::bind(any).map_err(fail)?;
    upstream.connect(target).await.map_err(fail)?;
    let (listen_addr, upstream_local) = (
        listen.local_addr().map_err(fail)?,
        upstream.local_addr().map_err(fail)?,
    );
    let conn = Arc::new(RelayConn::new(
        relays.next_id(),
        client,
        listen_addr,
        upstream_local,
        target,
        None,
    ));
    lock(&proxy.open).insert(conn.id, conn.clone());
    add(&proxy.conns, 1);
    add(&relays.hub.counters.relay_conns, 1);
    relays.hub.publish(EventKind::RelayUdpOpen {
        proxy: proxy.name.clone(),
        session: conn.id,
        peer: conn.peer_text.clone(),
        listen: show(listen_addr),
        upstream: show(target),
        upstream_local: show(upstream_local),
    });
    let (faulted, faulted_rx) = mpsc::channel(UP_QUEUE);
    let session = Session {
        conn: conn.clone(),
        upstream: Arc::new(upstream),
        last_us: Arc::new(AtomicU64::new(now_us())),
        ended: Arc::new(AtomicBool::new(false)),
        faulted,
        holding: Arc::new(AtomicBool::new(false)),
    };
    let seed = conn.id ^ now_us().rotate_left(17);
    let line = |flow| fault_line(relays, proxy, &conn, flow, seed).for_datagrams();
    let back = Back {
        relays: relays.clone(),
        proxy: proxy.clone(),
        upstream: session.upstream.clone(),
        listen: listen.clone(),
        last_us: session.last_us.clone(),
        ended: session.ended.clone(),
        up: line(Flow::Up),
        down: line(Flow::Down),
        faulted: faulted_rx,
        holding: session.holding.clone(),
        conn,
    };
    let ended_tx = ended_tx.clone();
    relays.tasks.spawn(async move {
        let _permit = permit;
        let id = back.conn.id;
        let client = back.conn.peer;
        back.run(ended).await;
        let _ = ended_tx.send((client, id));
    });
    Ok(session)
}

/// A session's task: the upstream's datagrams back to the client, the toxics both ways,
/// and the idle timeout.
struct Back {
    /// The relay.
    relays: Arc<Relays>,
    /// The proxy.
    proxy: Arc<Proxy>,
    /// The session's record.
    conn: Arc<RelayConn>,
    /// Its socket toward the upstream.
    upstream: Arc<UdpSocket>,
    /// The proxy's socket, to send to the client.
    listen: Arc<UdpSocket>,
    /// When a datagram last moved either way.
    last_us: Arc<AtomicU64>,
    /// Set when this ends.
    ended: Arc<AtomicBool>,
    /// The toxics datagrams toward the upstream go through.
    up: Line,
    /// The toxics datagrams toward the client go through.
    down: Line,
    /// Datagrams toward the upstream, from the receive loop, while toxics cover that way.
    faulted: mpsc::Receiver<Bytes>,
    /// Whether `up` holds datagrams (the receive loop then queues new ones behind them).
    holding: Arc<AtomicBool>,
}

impl Back {
    async fn run(mut self, stop: CancellationToken) {
        let idle = self.relays.settings.udp_idle;
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let reason = loop {
            let since = now_us().saturating_sub(self.last_us.load(Relaxed));
            let left = idle.saturating_sub(Duration::from_micros(since));
            if left.is_zero() {
                break format!(
                    "no datagram either way for {} s (--proxy-udp-idle-secs)",
                    idle.as_secs()
                );
            }
            if stop.is_cancelled() {
                break self.stopped();
            }
            if let Ok(datagram) = self.faulted.try_recv() {
                self.fault_up(datagram).await;
                continue;
            }
            // As the receive loop: a datagram there already is taken without a select
            // (nor a timer registered per datagram).
            let ready = match self.upstream.try_recv(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => tokio::select! {
                    r = self.upstream.recv(&mut buf) => r,
                    Some(datagram) = self.faulted.recv() => {
                        self.fault_up(datagram).await;
                        continue;
                    }
                    // Something a toxic held is due, or the toxics changed.
                    _ = self.up.wait() => {
                        self.release().await;
                        continue;
                    }
                    _ = self.down.wait() => {
                        self.release().await;
                        continue;
                    }
                    _ = sleep_until(Instant::now() + left) => continue,
                    _ = stop.cancelled() => break self.stopped(),
                },
                r => r,
            };
            match ready {
                Ok(n) => self.relay_back(&buf[..n]).await,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    break format!(
                        "the upstream {} answered that nothing listens on its port \
                         (ICMP port unreachable)",
                        show(self.conn.upstream)
                    );
                }
                Err(e) => break format!("reading from the upstream: {e}"),
            }
        };
        self.ended.store(true, Relaxed);
        // What its toxics still held, or was queued for them, goes nowhere: counted.
        let lost = self.up.held_pieces() + self.down.held_pieces() + self.faulted.len();
        if lost > 0 {
            add(&self.proxy.dropped, lost as u64);
            add(&self.relays.hub.counters.fault_dropped, lost as u64);
        }
        lock(&self.proxy.open).remove(&self.conn.id);
        let f = &self.conn.figures;
        self.relays.hub.publish(EventKind::RelayUdpClose {
            proxy: self.proxy.name.clone(),
            session: self.conn.id,
            peer: self.conn.peer_text.clone(),
            reason,
            duration_us: now_us().saturating_sub(self.conn.since_us),
            client_in: f.client_in.load(Relaxed),
            client_out: f.client_out.load(Relaxed),
            upstream_in: f.upstream_in.load(Relaxed),
            upstream_out: f.upstream_out.load(Relaxed),
        });
    }

    /// Why the session ends when its token is cancelled.
    fn stopped(&self) -> String {
        match (self.relays.shutdown.is_cancelled(), self.proxy.enabled()) {
            (true, _) => "the lab is stopping".to_owned(),
            (false, false) => "the proxy was disabled or deleted".to_owned(),
            (false, true) => "the proxy's upstream changed".to_owned(),
        }
    }

    /// One datagram from the upstream, to the client.
    async fn relay_back(&mut self, data: &[u8]) {
        let n = data.len() as u64;
        self.last_us.store(now_us(), Relaxed);
        let (f, p) = (&self.conn.figures, &self.proxy.figures);
        add(&f.upstream_in, n);
        add(&p.upstream_in, n);
        self.relays.hub.publish(EventKind::RelayDatagram {
            proxy: self.proxy.name.clone(),
            session: self.conn.id,
            peer: self.conn.peer_text.clone(),
            from: Leg::Upstream,
            size: n,
            payload: Payload::capture(data, self.relays.settings.snaplen),
        });
        if self.down.quiet() {
            self.to_client(data).await;
            return;
        }
        match self.down.has_room() {
            true => self.down.push(Instant::now(), Bytes::copy_from_slice(data)),
            false => self.overflow(),
        }
        self.release().await;
    }

    /// A datagram toward the upstream, into the toxics (dropped while they hold their
    /// most), and what is due sent.
    async fn fault_up(&mut self, datagram: Bytes) {
        match self.up.has_room() {
            true => self.up.push(Instant::now(), datagram),
            false => self.overflow(),
        }
        self.release().await;
    }

    /// A datagram dropped because the toxics held their most: counted on the proxy and
    /// the lab.
    fn overflow(&self) {
        add(&self.proxy.dropped, 1);
        add(&self.relays.hub.counters.fault_dropped, 1);
    }

    /// Sends what the toxics let through and is due now, both ways.
    async fn release(&mut self) {
        let now = Instant::now();
        while let Due::Write(datagram) = self.up.next(now, true) {
            let (f, p) = (&self.conn.figures, &self.proxy.figures);
            match self.upstream.send(&datagram).await {
                Ok(m) => {
                    add(&f.upstream_out, m as u64);
                    add(&p.upstream_out, m as u64);
                }
                Err(_) => add(&self.proxy.dropped, 1),
            }
        }
        while let Due::Write(datagram) = self.down.next(now, true) {
            self.to_client(&datagram).await;
        }
        self.holding.store(self.up.held_pieces() > 0, Relaxed);
    }

    /// One datagram to the client, counted.
    async fn to_client(&self, data: &[u8]) {
        let (f, p) = (&self.conn.figures, &self.proxy.figures);
        match self.listen.send_to(data, self.conn.peer).await {
            Ok(m) => {
                add(&f.client_out, m as u64);
                add(&p.client_out, m as u64);
            }
            Err(_) => add(&self.proxy.dropped, 1),
        }
    }
}
