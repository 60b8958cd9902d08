//! The accept loop, and one hyper HTTP/1 server per accepted TCP connection.
//!
//! Serving each connection ourselves (rather than through `axum::serve`) is what lets
//! every exchange carry its connection id and its place on that connection, which is
//! the seed's point: TCP serves per connection, HTTP per request.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wirelab_shared::{EventKind, HttpExchange};

use super::{IDLE_TIMEOUT, body, inspect};
use crate::app::App;
use crate::backoff::Backoff;
use crate::hub::{counters::add, lock, now_us};

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
}

/// What every exchange on one connection shares.
pub struct ConnCtx {
    /// The lab, for the hub, the counters and the settings.
    pub app: Arc<App>,
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
}

/// Serves HTTP on `listener` until `shutdown`, then gives open connections [`GRACE`] to
/// finish the exchange they are in.
pub async fn run(listener: TcpListener, app: Arc<App>, shutdown: CancellationToken) {
    let conns = TaskTracker::new();
    let mut backoff = Backoff::default();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff.reset();
                conns.spawn(serve_conn(app.clone(), stream, peer, shutdown.clone()));
            }
            Err(e) => {
                let pause = backoff.next_pause();
                tracing::warn!("http accept failed: {e}; retrying in {pause:?}");
                tokio::time::sleep(pause).await;
            }
        }
    }
    conns.close();
    let _ = tokio::time::timeout(GRACE, conns.wait()).await;
}

/// Serves one connection until the client leaves, a request is malformed, or `shutdown`.
async fn serve_conn(
    app: Arc<App>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let http = &app.http;
    let id = http.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
    let replay_of = lock(&http.replays).remove(&peer);
    let requests = Arc::new(AtomicU64::new(0));
    let entry = ConnEntry {
        peer: peer.to_string(),
        since_us: now_us(),
        requests: requests.clone(),
    };
    let ctx = Arc::new(ConnCtx {
        app: app.clone(),
        id,
        peer: entry.peer.clone(),
        requests,
        finished: AtomicU64::new(0),
        replay_of,
    });
    lock(&http.conns).insert(id, entry);
    add(&app.hub.counters.http_conns, 1);

    let io = TokioIo::new(Counted {
        stream,
        app: app.clone(),
    });
    let svc = {
        let ctx = ctx.clone();
        service_fn(move |req| inspect::handle(ctx.clone(), req))
    };
    let conn = http.builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = watchdog(&ctx) => {
            tracing::debug!(conn = id, %peer, "http connection idle for {IDLE_TIMEOUT:?}: closed");
            Ok(())
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(GRACE, conn.as_mut()).await.unwrap_or(Ok(()))
        }
    };
    match result {
        Ok(()) => {}
        Err(e) if e.is_parse() => malformed(&ctx, &e),
        Err(e) => tracing::debug!(conn = id, %peer, "http connection ended: {e}"),
    }
    lock(&http.conns).remove(&id);
}

/// Returns once a whole [`IDLE_TIMEOUT`] went by with no exchange in progress on `ctx` and
/// none started (so 30 to 60 s after the last one ended, or after a head that never
/// completes began). One timer per connection, not per request.
async fn watchdog(ctx: &ConnCtx) {
    let start = tokio::time::Instant::now() + IDLE_TIMEOUT;
    let mut tick = tokio::time::interval_at(start, IDLE_TIMEOUT);
    let mut last = ctx.requests.load(Ordering::Relaxed);
    loop {
        tick.tick().await;
        let started = ctx.requests.load(Ordering::Relaxed);
        let finished = ctx.finished.load(Ordering::Relaxed);
        if started == last && finished >= started {
            return;
        }
        last = started;
    }
}

/// A request hyper could not parse: hyper has answered it (400, or 431/414 for a head
/// too large) and closed the connection. It is counted, shown as an exchange with that
/// status and empty request fields, and explained in a notice.
fn malformed(ctx: &ConnCtx, e: &hyper::Error) {
    let app = &ctx.app;
    app.http.malformed.fetch_add(1, Ordering::Relaxed);
    add(&app.hub.counters.http_requests, 1);
    let detail = e.to_string();
    // What hyper sends for each parse error (hyper's `Server::on_error`).
    let status = if e.is_parse_version_h2() {
        0 // an HTTP/2 preface: hyper closes without a word
    } else if e.is_parse_too_large() {
        if detail.contains("URI") { 414 } else { 431 }
    } else {
        400
    };
    let resp_headers = if status == 0 {
        Vec::new()
    } else {
        vec![
            ("connection".into(), "close".into()),
            ("content-length".into(), "0".into()),
            ("date".into(), body::http_date()),
        ]
    };
    let seq_on_conn = ctx.requests.fetch_add(1, Ordering::Relaxed) + 1;
    app.hub.publish(EventKind::Http(Box::new(HttpExchange {
        id: app.http.exchange_id(),
        conn: ctx.id,
        seq_on_conn,
        peer: ctx.peer.clone(),
        status,
        resp_headers,
        replay_of: ctx.replay_of,
        ..Default::default()
    })));
    let answer = match status {
        0 => "closed the connection without an answer".to_owned(),
        s => format!("answered {s} and closed the connection"),
    };
    app.hub.publish(EventKind::Notice {
        level: "warn".into(),
        message: format!(
            "http connection #{} from {}: malformed request ({detail}); {answer}",
            ctx.id, ctx.peer
        ),
    });
}

/// The connection's socket, counting the bytes that cross it into the lab's counters.
struct Counted {
    /// The accepted socket.
    stream: TcpStream,
    /// Whose counters to bump.
    app: Arc<App>,
}

impl Counted {
    fn count_in(&self, n: usize) {
        add(&self.app.hub.counters.http_bytes_in, n as u64);
    }

    fn count_out(&self, r: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = r {
            add(&self.app.hub.counters.http_bytes_out, *n as u64);
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.stream).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            self.count_in(buf.filled().len() - before);
        }
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.count_out(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.count_out(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
