//! One run: C workers share N requests and send them through a deadpool pool of at most
//! K hyper HTTP/1 client connections (or, with `no_pool`, each over a connection of its
//! own), while a ticker pushes the figures ten times a second.
//!
//! The pool is the seed's `http.Agent`: deadpool's own status gives the Agent's
//! `sockets` (in use), its free sockets (idle) and its `requests` (waiting). With
//! keep-alive off a connection is taken out of the pool after its one request instead of
//! going back, so the pool still caps how many are open at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use deadpool::managed::{self, Metrics, Object, RecycleError, RecycleResult};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONNECTION, HOST, HeaderValue, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use wirelab_shared::{EventKind, PoolSpec, PoolState, PoolStatus, ServerMsg};

use super::Pool;
use super::stats::Figures;
use super::target::Target;
use crate::hub::Frame;

/// How often the figures are pushed while a run goes on (the issue asks for 5/s at least).
pub const TICK: Duration = Duration::from_millis(100);
/// A connection attempt gives up after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client connection: hyper's handle for sending requests on it.
pub type Conn = SendRequest<Empty<Bytes>>;

/// A run in progress.
pub struct Run {
    /// The run's number, from 1.
    pub id: u64,
    /// What it was asked to do (with the URL filled in).
    pub spec: PoolSpec,
    /// Where it sends.
    pub target: Target,
    /// `pool_cancel` (or the lab stopping) cancels it.
    pub cancel: CancellationToken,
    /// When it started.
    started: Instant,
    /// Requests handed to workers so far.
    issued: AtomicU32,
    /// Totals, shared with the pool's connector.
    figures: Arc<Figures>,
    /// The pool, once the target is resolved (never in no-pool mode).
    pool: OnceLock<managed::Pool<Connector>>,
    /// The request target and headers every request carries.
    request: RequestTemplate,
}

/// What every request of a run looks like.
struct RequestTemplate {
    /// Path and query.
    uri: Uri,
    /// The `Host` header.
    host: HeaderValue,
    /// Ask the server to close after the answer (keep-alive off, or no pool).
    close: bool,
}

impl Run {
    /// A run of `spec` against `target`; `cancel` stops it.
    pub fn new(
        id: u64,
        spec: PoolSpec,
        target: Target,
        cancel: CancellationToken,
    ) -> Result<Run, String> {
        let request = RequestTemplate {
            uri: target
                .path
                .parse()
                .map_err(|_| format!("bad path {:?}", target.path))?,
            host: HeaderValue::from_str(&target.host)
                .map_err(|_| format!("bad host {:?}", target.host))?,
            close: spec.no_pool || !spec.keep_alive,
        };
        Ok(Run {
            id,
            spec,
            target,
            cancel,
            started: Instant::now(),
            issued: AtomicU32::new(0),
            figures: Arc::new(Figures::default()),
            pool: OnceLock::new(),
            request,
        })
    }

    /// The first failure, if any request failed.
    pub fn first_error(&self) -> Option<String> {
        self.figures.first_error.get().cloned()
    }

    /// The figures now, as `state`.
    pub fn status(&self, state: PoolState) -> PoolStatus {
        let f = &self.figures;
        let (in_use, idle, waiting) = match self.pool.get() {
            Some(pool) => {
                let s = pool.status();
                (s.size - s.available, s.available, s.waiting)
            }
            None => (Figures::get(&f.in_flight) as usize, 0, 0),
        };
        let (p50_us, p99_us) = f.percentiles();
        PoolStatus {
            run: self.id,
            state,
            spec: self.spec.clone(),
            in_use: in_use as u32,
            idle: idle as u32,
            waiting: waiting as u32,
            opened: Figures::get(&f.opened),
            done: Figures::get(&f.done),
            errors: Figures::get(&f.errors),
            p50_us,
            p99_us,
            elapsed_us: self.started.elapsed().as_micros() as u64,
            error: None,
        }
    }
}

/// Runs `run` to its end (done, cancelled or failed) and reports it.
pub async fn drive(pool: Arc<Pool>, run: Arc<Run>) {
    pool.hub.publish(EventKind::PoolStarted {
        run: run.id,
        spec: run.spec.clone(),
    });
    let addr = tokio::select! {
        r = run.target.resolve() => r,
        _ = run.cancel.cancelled() => Err("cancelled".into()),
    };
    let addr = match addr {
        Ok(a) => a,
        Err(e) => {
            run.figures.failed(e);
            return super::finish(&pool, &run, PoolState::Failed);
        }
    };
    if !run.spec.no_pool {
        let connector = Connector {
            addr,
            figures: run.figures.clone(),
        };
        let conns = managed::Pool::builder(connector)
            .max_size(run.spec.max_conns as usize)
            .build()
            .expect("a pool without timeouts needs no runtime");
        let _ = run.pool.set(conns);
    }
    let mut workers = JoinSet::new();
    for _ in 0..run.spec.concurrency.min(run.spec.requests) {
        workers.spawn(worker(run.clone(), addr));
    }
    let mut tick = tokio::time::interval(TICK);
    let state = loop {
        tokio::select! {
            _ = tick.tick() => push(&pool, &run),
            joined = workers.join_next() => if joined.is_none() { break PoolState::Done },
            _ = run.cancel.cancelled() => break PoolState::Cancelled,
        }
    };
    // Cancelled: drop every request in flight now. Either way no worker is left.
    workers.shutdown().await;
    let f = &run.figures;
    let state = match state {
        PoolState::Done if Figures::get(&f.done) == 0 => PoolState::Failed,
        s => s,
    };
    super::finish(&pool, &run, state);
    if let Some(conns) = run.pool.get() {
        conns.close(); // the idle connections close now, not when the last handle goes
    }
}

/// Pushes the live figures to every dashboard.
fn push(pool: &Pool, run: &Run) {
    let msg = ServerMsg::Pool(run.status(PoolState::Running));
    pool.hub.broadcast(Frame::message(&msg));
}

/// Sends requests until the run's N are handed out.
async fn worker(run: Arc<Run>, addr: SocketAddr) {
    while run.issued.fetch_add(1, Ordering::Relaxed) < run.spec.requests {
        let t0 = Instant::now();
        let sent = match run.pool.get() {
            Some(pool) => pooled(&run, pool).await,
            None => alone(&run, addr).await,
        };
        match sent {
            Ok(()) => run.figures.answered(t0.elapsed()),
            Err(e) => run.figures.failed(e),
        }
    }
}

/// One request through the pool: wait for a connection, use it, and give it back (or,
/// with keep-alive off or after a failure, close it).
async fn pooled(run: &Run, pool: &managed::Pool<Connector>) -> Result<(), String> {
    let mut conn = pool.get().await.map_err(|e| match e {
        managed::PoolError::Backend(e) => e,
        other => other.to_string(),
    })?;
    let sent = send(run, &mut conn).await;
    if sent.is_err() || !run.spec.keep_alive {
        drop(Object::take(conn));
    }
    sent
}

/// One request on a connection of its own (`agent: false`).
async fn alone(run: &Run, addr: SocketAddr) -> Result<(), String> {
    let f = &run.figures;
    f.in_flight.fetch_add(1, Ordering::Relaxed);
    let sent = async {
        let mut conn = connect(addr, f).await?;
        send(run, &mut conn).await
    }
    .await;
    f.in_flight.fetch_sub(1, Ordering::Relaxed);
    sent
}

/// Sends one GET on `conn` and reads the whole answer.
async fn send(run: &Run, conn: &mut Conn) -> Result<(), String> {
    let t = &run.request;
    let mut req = Request::new(Empty::new());
    *req.uri_mut() = t.uri.clone();
    let h = req.headers_mut();
    h.insert(HOST, t.host.clone());
    h.insert(USER_AGENT, HeaderValue::from_static("wirelab-pool"));
    if t.close {
        h.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    conn.ready().await.map_err(|e| e.to_string())?;
    let resp = conn.send_request(req).await.map_err(|e| e.to_string())?;
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        frame.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Opens a client connection to `addr` and counts it.
async fn connect(addr: SocketAddr, figures: &Figures) -> Result<Conn, String> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    figures.opened.fetch_add(1, Ordering::Relaxed);
    // Ends when the server closes, or when `sender` is dropped and the connection is idle.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// deadpool's manager: creates connections and checks them before reuse.
pub struct Connector {
    /// Where to connect.
    addr: SocketAddr,
    /// `opened` is bumped for every connection made.
    figures: Arc<Figures>,
}

impl managed::Manager for Connector {
    type Type = Conn;
    type Error = String;

    async fn create(&self) -> Result<Conn, String> {
        connect(self.addr, &self.figures).await
    }

    async fn recycle(&self, conn: &mut Conn, _: &Metrics) -> RecycleResult<String> {
        if conn.is_closed() {
            return Err(RecycleError::message("the server closed the connection"));
        }
        // Waits until the previous exchange is fully over on this connection.
        conn.ready()
            .await
            .map_err(|e| RecycleError::message(e.to_string()))
    }
}
