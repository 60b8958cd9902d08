//! A `tcp` proxy: the accept loop, and one client connection with its upstream leg.
//!
//! Each direction is a [`pump()`] (read, tap, stages, write, with a bounded window). A FIN
//! from either side is passed on to the other (half-close, per direction); the
//! connection is over when both have sent FIN, or at once when either leg fails, and
//! then the other leg is reset too, so that neither end waits for what cannot come.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use socket2::SockRef;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use wirelab_shared::{CloseReason, EventKind, Leg};

use super::Relays;
use super::proxy::{Figures, Proxy, RelayConn};
use crate::backoff::Backoff;
use crate::hub::counters::add;
use crate::hub::{Hub, lock, now_us};
use crate::pipeline::merge::Merged;
use crate::pipeline::pump::{Events, Pump};
use crate::pipeline::{Flow, PumpEnd, Stages, Tap, pump};
use crate::tcp::show;

/// Connections the kernel may hold for `accept` (as the TCP service asks).
pub(super) const BACKLOG: i32 = 4096;
/// Chunks from the page waiting per leg at most (each at most a `/ws` message).
const INJECT_CHUNKS: usize = 16;
/// How long the upstream's handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts clients until `stop` (the proxy disabled or deleted, or the lab stopping).
pub(super) async fn run(
    relays: Arc<Relays>,
    proxy: Arc<Proxy>,
    listener: TcpListener,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::default();
    while let Some((client, peer)) = backoff.accept(&listener, &stop, "relay").await {
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

/// Connects to `upstream` (loopback only unless `allow_outbound`), or says why not.
async fn connect(upstream: &str, allow_outbound: bool) -> Result<TcpStream, String> {
    let target = crate::tcp::resolve(upstream, allow_outbound).await?;
    match timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
        Err(_) => Err(format!(
            "the upstream {target} did not answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => Err(format!(
            "the upstream {target} refused the connection: nothing listens there"
        )),
        Ok(Err(e)) => Err(format!("connecting to the upstream {target} failed: {e}")),
        Ok(Ok(stream)) => Ok(stream),
    }
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
    let upstream_text = proxy.upstream();
    let allow = relays.settings.allow_outbound || proxy.from_flag;
    let started = Instant::now();
    let connected = tokio::select! {
        r = connect(&upstream_text, allow) => r,
        _ = stop.cancelled() => return,
    };
    let upstream = match connected {
        Ok(s) => s,
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
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (to_client_tx, to_client_rx) = mpsc::channel(INJECT_CHUNKS);
    let (to_upstream_tx, to_upstream_rx) = mpsc::channel(INJECT_CHUNKS);
    let conn = Arc::new(RelayConn {
        id: relays.next_id(),
        peer,
        peer_text: show(peer),
        listen,
        upstream_local,
        upstream: upstream_addr,
        since_us: now_us(),
        figures: Figures::default(),
        client_half_closed: Default::default(),
        upstream_half_closed: Default::default(),
        client_kernel: Default::default(),
        upstream_kernel: Default::default(),
        request: Default::default(),
        wake: Default::default(),
        inject: Some([to_client_tx, to_upstream_tx]),
    });
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
    let inject = [to_client_rx, to_upstream_rx];
    let end = relay(&relays, &proxy, &conn, &client, &upstream, &stop, inject).await;
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

    fn sent(&self, flow: Flow, bytes: &[u8]) {
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

/// Runs both directions until both legs have sent FIN, either fails, or `stop`.
async fn relay(
    relays: &Relays,
    proxy: &Proxy,
    conn: &RelayConn,
    client: &TcpStream,
    upstream: &TcpStream,
    stop: &CancellationToken,
    inject: [mpsc::Receiver<bytes::Bytes>; 2],
) -> End {
    let [to_client, to_upstream] = inject;
    let events = ConnEvents {
        hub: &relays.hub,
        proxy: &proxy.name,
        conn,
        snaplen: relays.settings.snaplen,
    };
    let (c, p) = (&conn.figures, &proxy.figures);
    let up_read = [&c.client_in, &p.client_in];
    let up_written = [&c.upstream_out, &p.upstream_out];
    let down_read = [&c.upstream_in, &p.upstream_in];
    let down_written = [&c.client_out, &p.client_out];
    let snaplen = relays.settings.snaplen;
    let mut up = Pump {
        flow: Flow::Up,
        tap: Tap::new(snaplen),
        stages: Stages::default(),
        read_counters: &up_read,
        write_counters: &up_written,
        events: &events,
        inject: Some(to_upstream),
    };
    let mut down = Pump {
        flow: Flow::Down,
        tap: Tap::new(snaplen),
        stages: Stages::default(),
        read_counters: &down_read,
        write_counters: &down_written,
        events: &events,
        inject: Some(to_client),
    };
    let up_run = pump(&mut up, client, upstream);
    let down_run = pump(&mut down, upstream, client);
    tokio::pin!(up_run, down_run);
    let (mut up_done, mut down_done) = (false, false);
    let mut first_fin = None;
    // The leg the page sent a FIN toward, for the close's detail.
    let mut page_fin = None;
    loop {
        let (flow, ended) = tokio::select! {
            e = &mut up_run, if !up_done => (Flow::Up, e),
            e = &mut down_run, if !down_done => (Flow::Down, e),
            _ = conn.wake.notified() => {
                let Some(req) = lock(&conn.request).take() else { continue };
                let socket = match req.leg {
                    Leg::Client => client,
                    Leg::Upstream => upstream,
                };
                if req.reset {
                    return End {
                        reason: CloseReason::ResetFromPage,
                        by: Some(req.leg),
                        detail: Some(format!(
                            "the page reset the {} leg (RST); the lab closed the other",
                            leg_name(req.leg)
                        )),
                        reset_client: req.leg == Leg::Client,
                        reset_upstream: req.leg == Leg::Upstream,
                    };
                }
                // FIN toward that leg: nothing more is relayed to it.
                let _ = SockRef::from(socket).shutdown(std::net::Shutdown::Write);
                page_fin = Some(req.leg);
                let flow = match req.leg {
                    Leg::Client => Flow::Down,
                    Leg::Upstream => Flow::Up,
                };
                (flow, PumpEnd::Fin)
            }
            _ = stop.cancelled() => return stopped(relays),
        };
        match flow {
            Flow::Up => up_done = true,
            Flow::Down => down_done = true,
        }
        match ended {
            PumpEnd::Fin => {
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

/// Ended by the lab: its shutdown, or the proxy disabled or deleted.
fn stopped(relays: &Relays) -> End {
    let detail = match relays.shutdown.is_cancelled() {
        true => "the lab is stopping",
        false => "the proxy was disabled or deleted",
    };
    End {
        reason: CloseReason::Shutdown,
        by: None,
        detail: Some(detail.to_owned()),
        reset_client: false,
        reset_upstream: false,
    }
}
