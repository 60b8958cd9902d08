//! The accept loop, and each accepted connection's life around its exchanges
//! ([`conn`](super::conn)): the connection limit, its entry in `Http::conns`, the idle
//! watchdog, the grace given at shutdown, and the event and notice for a request that
//! cannot be served.
//!
//! The limit works as the TCP service's: each connection takes an owned permit of
//! `--max-http-conns` (moved into its task); past it a connection is accepted, answered
//! `503 Service Unavailable` with `Connection: close`, closed, counted in `http_refused`
//! and told in a notice, and the service goes on.
//!
//! Serving each connection ourselves (rather than through `axum::serve`) is what lets
//! every exchange carry its connection id and its place on that connection, which is
//! the seed's point: TCP serves per connection, HTTP per request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wirelab_shared::{EventKind, HttpExchange, Payload};

use super::Http;
use super::conn::Conn;
use super::head::Malformed;
use super::response::Sent;
use crate::backoff::Backoff;
use crate::faults::line::Shown;
use crate::hub::{counters::add, lock, now_us};
use crate::tls::{Tls, Wire};

/// How long open connections get to finish their exchange once the lab stops.
const GRACE: Duration = Duration::from_secs(2);

/// One open connection in the table behind `Http::conns`.
pub struct ConnEntry {
    /// The client's address.
    pub peer: String,
    /// When the connection was accepted.
    pub since_us: u64,
    /// Requests carried so far; shared with the connection's [`ConnCtx`].
    pub requests: Arc<AtomicU64>,
    /// The service's toxics that apply to it now, read and written; shared with its
    /// fault lines.
    pub faults: [Shown; 2],
    /// Tells the connection the lab is stopping. A channel of its own, rather than each
    /// connection polling the lab's `CancellationToken` (whose every check locks one
    /// mutex all connections share) each time its socket wakes it.
    stop: Option<oneshot::Sender<()>>,
}

/// What every exchange on one connection shares.
pub struct ConnCtx {
    /// The service: its hub, counters and settings.
    pub http: Arc<Http>,
    /// The connection id, unique for the life of the server.
    pub id: u64,
    /// The client's address, formatted once.
    pub peer: String,
    /// Requests so far on this connection: the next exchange's `seq_on_conn` - 1.
    pub requests: Arc<AtomicU64>,
    /// Exchanges whose response has been sent (or dropped): fewer than `requests` while
    /// one is in progress.
    pub finished: AtomicU64,
    /// Set when the lab itself opened this connection to replay that exchange.
    pub replay_of: Option<u64>,
    /// It came over TLS (the HTTPS service).
    pub tls: bool,
    /// The lab is stopping: the exchange in progress is the last.
    pub stopping: AtomicBool,
    /// Bumped by every read and write that moved bytes (only this connection's task
    /// touches it), for the watchdog to see a connection stuck mid-exchange.
    pub progress: AtomicU64,
    /// A body is being read under its own deadline (`conn::BodyClock`), which answers
    /// 408 when it passes: the watchdog leaves a body that stopped coming to it.
    pub body_timed: AtomicBool,
    /// What its fault lines show (its row's faults).
    pub faults: [Shown; 2],
    /// Its toxics hold bytes it waits for: the watchdog leaves it be (a latency longer
    /// than `--http-idle-secs` is the user's choice, not a stuck client).
    pub fault_wait: AtomicBool,
}

impl ConnCtx {
    /// Notes that bytes moved.
    pub fn progressed(&self) {
        // One task writes it: a load and a store, no read-modify-write.
        let p = self.progress.load(Ordering::Relaxed);
        self.progress.store(p.wrapping_add(1), Ordering::Relaxed);
    }
}

/// Serves HTTP on `listener` until `shutdown`, then gives open connections [`GRACE`] to
/// finish the exchange they are in.
/// With `tls`, each connection's handshake comes first (the HTTPS service).
pub async fn run(
    listener: TcpListener,
    http: Arc<Http>,
    tls: Option<Arc<Tls>>,
    shutdown: CancellationToken,
) {
    let conns = TaskTracker::new();
    let mut backoff = Backoff::default();
    let what = if tls.is_some() { "https" } else { "http" };
    while let Some((stream, peer)) = backoff.accept(&listener, &shutdown, what).await {
        match http.limit.clone().try_acquire_owned() {
            Ok(permit) => {
                let conn = serve_conn(http.clone(), stream, peer, tls.clone(), shutdown.clone());
                conns.spawn(async move {
                    conn.await;
                    drop(permit);
                });
            }
            Err(_) => refuse(&http, stream, peer, tls.is_some()),
        }
    }
    for entry in lock(&http.conns).values_mut() {
        if let Some(stop) = entry.stop.take() {
            let _ = stop.send(());
        }
    }
    conns.close();
    let _ = tokio::time::timeout(GRACE, conns.wait()).await;
}

/// Past the limit: a `503` saying why, then the close. What the client already sent is
/// read first (without waiting), so that the close is a FIN, not a reset that could
/// destroy the answer before the client reads it. On the HTTPS service (`tls`) a client
/// waits for a ServerHello, not HTTP: it is closed without a word (the notice says why).
fn refuse(http: &Http, stream: TcpStream, peer: SocketAddr, tls: bool) {
    use std::io::{Read, Write};
    let max = http.max_conns;
    add(&http.hub.counters.http_refused, 1);
    let body = format!(
        "wirelab: too many HTTP connections (at most {max}, --max-http-conns); try again later\n"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nConnection: close\r\n\
         Retry-After: 1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // A plain non-blocking socket: no readiness to wait for, nothing registered.
    if let Ok(mut stream) = stream.into_std() {
        if !tls {
            let _ = stream.write(answer.as_bytes());
        }
        let _ = stream.read(&mut [0; 4096]);
    }
    let (service, how) = match tls {
        true => ("https", "closed before its handshake"),
        false => ("http", "answered 503 and closed"),
    };
    http.hub.publish(EventKind::Notice {
        level: "warn".into(),
        message: format!(
            "{service} connection from {peer} refused: the lab holds {max} HTTP and HTTPS \
             connections at most (--max-http-conns); {how}"
        ),
    });
}

/// Serves one connection until the client leaves, a request is malformed, or `shutdown`.
async fn serve_conn(
    http: Arc<Http>,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<Tls>>,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let id = http.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
    let stream = match tls {
        None => Wire::Plain(stream),
        Some(tls) => {
            let who = crate::tls::accept::Who {
                service: "https",
                conn: id,
                peer: &peer.to_string(),
            };
            match crate::tls::accept(&tls.https, &http.hub, who, stream).await {
                Some(wire) => wire,
                None => return,
            }
        }
    };
    let replay_of = lock(&http.replays).remove(&peer);
    let requests = Arc::new(AtomicU64::new(0));
    let (stop, mut stopped) = oneshot::channel();
    let entry = ConnEntry {
        peer: peer.to_string(),
        since_us: now_us(),
        requests: requests.clone(),
        faults: Default::default(),
        stop: Some(stop),
    };
    let ctx = ConnCtx {
        http: http.clone(),
        id,
        peer: entry.peer.clone(),
        requests,
        finished: AtomicU64::new(0),
        replay_of,
        tls: stream.is_tls(),
        stopping: AtomicBool::new(false),
        progress: AtomicU64::new(0),
        body_timed: AtomicBool::new(false),
        faults: entry.faults.clone(),
        fault_wait: AtomicBool::new(false),
    };
    lock(&http.conns).insert(id, entry);
    add(&http.hub.counters.http_conns, 1);
    if shutdown.is_cancelled() {
        // Accepted as the lab stopped, maybe after `run` told the open connections.
        lock(&http.conns).remove(&id);
        return;
    }

    let conn = Conn::new(&ctx, stream, peer).serve();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        why = watchdog(&ctx) => {
            tracing::debug!(conn = id, %peer, "http connection {why} for {:?}: closed", http.idle);
            Ok(())
        }
        _ = &mut stopped => {
            // An exchange in progress gets to finish (its answer says `close`); an idle
            // connection, or one halfway through a head, is closed now.
            ctx.stopping.store(true, Ordering::Relaxed);
            if in_progress(&ctx) {
                tokio::time::timeout(GRACE, conn.as_mut()).await.unwrap_or(Ok(()))
            } else {
                Ok(())
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(conn = id, %peer, "http connection ended: {e}");
    }
    lock(&http.conns).remove(&id);
}

/// Whether an exchange is in progress on `ctx`: its head read, its events not yet out.
fn in_progress(ctx: &ConnCtx) -> bool {
    ctx.finished.load(Ordering::Relaxed) < ctx.requests.load(Ordering::Relaxed)
}

/// Returns (saying why) once a whole `--http-idle-secs` period went by with no exchange in
/// progress on `ctx` and none started (so 30 to 60 s after the last one ended, or after a
/// head that never completes began, however slowly its bytes come), or with an exchange
/// in progress but not a byte read or written (a body that never comes, a client that
/// does not read its answers). One timer per connection, not per request.
async fn watchdog(ctx: &ConnCtx) -> &'static str {
    let period = ctx.http.idle;
    let start = tokio::time::Instant::now() + period;
    let mut tick = tokio::time::interval_at(start, period);
    let mut last = ctx.requests.load(Ordering::Relaxed);
    let mut last_progress = ctx.progress.load(Ordering::Relaxed);
    loop {
        tick.tick().await;
        if ctx.fault_wait.load(Ordering::Relaxed) {
            continue;
        }
        let started = ctx.requests.load(Ordering::Relaxed);
        let finished = ctx.finished.load(Ordering::Relaxed);
        if started == last && finished >= started {
            return "idle";
        }
        let progress = ctx.progress.load(Ordering::Relaxed);
        if progress == last_progress && !ctx.body_timed.load(Ordering::Relaxed) {
            return "stuck mid-exchange";
        }
        (last, last_progress) = (started, progress);
    }
}

/// A request that cannot be served: it has been answered as `m` says (400, 414, 431, 501)
/// with `answer`, the head as sent and the body, or not at all (an HTTP/2 preface), and
/// the connection closes. It is counted, shown as an exchange with that status (and the
/// request line and headers when they parsed, as for a refused framing), and explained in
/// a notice.
pub fn malformed(ctx: &ConnCtx, m: Malformed, answer: Option<(Sent, String)>) {
    let http = &ctx.http;
    http.malformed.fetch_add(1, Ordering::Relaxed);
    add(&http.hub.counters.http_requests, 1);
    let seq_on_conn = ctx.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let mut exchange = HttpExchange {
        id: http.exchange_id(),
        conn: ctx.id,
        seq_on_conn,
        peer: ctx.peer.clone(),
        status: m.status,
        replay_of: ctx.replay_of,
        tls: ctx.tls,
        ..Default::default()
    };
    if let Some((sent, body)) = answer {
        exchange.resp_version = sent.version.to_owned();
        exchange.resp_reason = sent.reason.to_owned();
        exchange.resp_headers = sent.headers;
        exchange.resp_body = Payload::capture(body.as_bytes(), http.snaplen);
        exchange.resp_size = body.len() as u64;
    }
    if let Some(head) = m.head {
        let head = *head;
        exchange.version = head.version().to_owned();
        exchange.method = head.method;
        exchange.target = head.target;
        exchange.headers = head.headers;
    }
    http.hub.publish(EventKind::Http(Box::new(exchange)));
    ctx.finished.fetch_add(1, Ordering::Relaxed);
    let answer = match m.status {
        0 => "closed the connection without an answer".to_owned(),
        s => format!("answered {s} and closed the connection"),
    };
    http.hub.publish(EventKind::Notice {
        level: "warn".into(),
        message: format!(
            "http connection #{} from {}: malformed request ({}); {answer}",
            ctx.id, ctx.peer, m.detail
        ),
    });
}
