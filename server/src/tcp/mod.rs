//! The TCP service: the seed's connection-oriented service, run for real and shown live.
//!
//! ## Layout
//! - this file: [`Tcp`], the handle the rest of the lab holds: the open connections,
//!   and the page's actions on them (send, close, reset) and `--bridge`'s relay.
//! - [`accept`]: [`run`], the accept loop: the connection limit and the back-off.
//! - [`connect`](mod@connect): [`connect()`], a connection opened from the page.
//! - `session`: one connection's loop, until `TcpClose`.
//! - `conn`: one connection as the others see it (figures, queue, close requests),
//!   and `open`, which registers it and publishes `TcpOpen`.
//! - `queue`: the outgoing queue, bounded in bytes. Reads are tapped and merged into
//!   events by [`crate::pipeline`], as every stream's are.
//! - `kernel`: TCP_INFO figures (rtt, cwnd, ...) for the TCP panel.
//!
//! ## Rules
//! - Relay by `--tcp-mode`: `broadcast` (to every other connection, like
//!   `ncat --broker`), `echo`, `sink`. Relayed copies are counted, never published as
//!   events (the same rule as UDP); sends from the page are published (`dir: out`).
//! - No slow reader can stall anyone: each connection's outgoing queue holds 256 KiB;
//!   a relayed copy that does not fit is dropped for that receiver and counted in
//!   `tcp_bytes_dropped`. In echo mode the sender *is* the receiver, so there the loop
//!   stops reading until its own queue has room: TCP's own back-pressure, and nothing
//!   is dropped. A send from the page that does not fit is refused with an error.
//! - Reads are merged into data events (at most one per connection per 16 ms, `size`
//!   counting every byte, the payload the first `--snaplen` of them); `--bridge` gets
//!   each event's captured bytes, so a flood reaches UDP and the chat bounded too.
//! - Kernel figures: `infos()` refreshes them in the background at most once a second.
//! - When the peer half-closes (FIN) the lab publishes `TcpHalfClose`, then:
//!   - `broadcast` and `echo`: it writes out what it still owes the peer, then closes
//!     its side too (reason `fin`). That is what `ncat --broker` does; it lets
//!     `cat file | nc -N` finish; and an `nc` stopped with Ctrl-C (which looks the same
//!     on the wire) does not linger as a half-open connection holding a slot.
//!   - `sink`: it keeps its side open, so the page can still send to a peer that only
//!     listens now (the half-close to experiment with), until the page closes it, the
//!     idle timeout, or the peer is found gone: a write answered by RST, or TCP
//!     keepalive (turned on at the half-close) failing. Either ends it with `fin`.

pub mod accept;
mod conn;
pub mod connect;
pub(crate) mod kernel;
mod queue;
mod session;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wirelab_shared::TcpConnInfo;

use crate::bridge::Bridge;
use crate::config::{Config, RelayMode};
use crate::faults::Toxics;
use crate::hub::{Hub, lock};
use conn::Conn;
use queue::PushError;

pub use accept::run;
pub(crate) use conn::{reachable, show};
pub use connect::connect;
pub(crate) use connect::resolve;

/// Kernel figures are read again at most this often.
const KERNEL_EVERY: Duration = Duration::from_secs(1);

/// Handle on the TCP service.
pub struct Tcp {
    /// The open connections (accepted and opened from the page), by id.
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
    /// The last connection id given out.
    last_id: AtomicU64,
    /// One owned permit per open connection, moved into its task (`--max-tcp-conns`).
    limit: Arc<Semaphore>,
    /// `--max-tcp-conns`, for messages.
    max_conns: usize,
    /// `--tcp-mode`.
    mode: RelayMode,
    /// `--snaplen`: payload bytes captured per event.
    snaplen: usize,
    /// `--tcp-idle-secs`; `None` for never.
    idle: Option<Duration>,
    /// `--allow-outbound`: connecting out beyond loopback.
    allow_outbound: bool,
    /// Every connection's task: `run` waits for them when the lab stops.
    tasks: TaskTracker,
    /// When kernel figures were last asked for.
    kernel_at: Mutex<Option<Instant>>,
    /// Where its events and counters go.
    hub: Arc<Hub>,
    /// `--bridge`.
    bridge: Bridge,
    /// The lab's shutdown: every connection closes with reason `shutdown`.
    shutdown: CancellationToken,
    /// Its toxics (`@tcp` in the toxics API): each connection runs a fault line per
    /// direction through them, as a proxy's connections do.
    toxics: Arc<Toxics>,
}

impl Tcp {
    /// A handle configured by `config`, publishing to `hub`, ending at `shutdown`.
    pub fn new(
        config: &Config,
        hub: Arc<Hub>,
        bridge: Bridge,
        shutdown: CancellationToken,
        toxics: Arc<Toxics>,
    ) -> Tcp {
        let max = config.max_tcp_conns.min(Semaphore::MAX_PERMITS);
        Tcp {
            conns: Mutex::new(BTreeMap::new()),
            last_id: AtomicU64::new(0),
            limit: Arc::new(Semaphore::new(max)),
            max_conns: max,
            mode: config.tcp_mode,
            snaplen: config.snaplen,
            idle: (config.tcp_idle_secs > 0).then(|| Duration::from_secs(config.tcp_idle_secs)),
            allow_outbound: config.allow_outbound,
            tasks: TaskTracker::new(),
            kernel_at: Mutex::new(None),
            hub,
            bridge,
            shutdown,
            toxics,
        }
    }

    /// The open connections, by id. Kernel figures come from a cache refreshed (in the
    /// background) at most once a second, when this is called.
    pub fn infos(&self) -> Vec<TcpConnInfo> {
        let conns = self.all();
        self.refresh_kernel(&conns);
        conns.iter().map(|c| c.info()).collect()
    }

    /// How many connections are open (cheaper than `infos().len()`).
    pub fn open_count(&self) -> usize {
        lock(&self.conns).len()
    }

    /// Sends bytes from the page to connection `conn`, or to every one when `None`.
    /// They are queued behind what the connection already owes and published as a
    /// `TcpData` event (`dir: out`) once written.
    pub async fn send(&self, conn: Option<u64>, bytes: &[u8]) -> Result<String, String> {
        if bytes.is_empty() {
            return Err("nothing to send: the data is empty".into());
        }
        let targets = match conn {
            Some(id) => vec![self.get(id)?],
            None => self.all(),
        };
        if targets.is_empty() {
            return Err(
                "no TCP connections yet: connect one first (nc HOST PORT, or connect out)".into(),
            );
        }
        let data = Bytes::copy_from_slice(bytes);
        let (mut queued, mut full, mut closing) = (Vec::new(), Vec::new(), Vec::new());
        for c in &targets {
            match c.send(data.clone()) {
                Ok(()) => queued.push(c.id),
                Err(PushError::Full) => full.push(c.id),
                Err(PushError::Closed) => closing.push(c.id),
            }
        }
        let mut not = Vec::new();
        if !full.is_empty() {
            not.push(format!(
                "{} has a full outgoing queue (its peer is not reading)",
                ids(&full)
            ));
        }
        if !closing.is_empty() {
            not.push(format!("{} is closing", ids(&closing)));
        }
        let why = not.join("; ");
        match (queued.is_empty(), why.is_empty()) {
            (true, _) => Err(format!("nothing sent: {why}")),
            (false, true) => Ok(format!("sending {} bytes to {}", bytes.len(), ids(&queued))),
            (false, false) => Ok(format!(
                "sending {} bytes to {}; not to {why}",
                bytes.len(),
                ids(&queued)
            )),
        }
    }

    /// Closes connection `conn` from the page: FIN once what it owes is written (within
    /// 2 s), or RST at once (`SO_LINGER` 0) when `reset`.
    pub fn close(&self, conn: u64, reset: bool) -> Result<String, String> {
        let c = self.get(conn)?;
        if !c.request_close(reset) {
            return Err(format!("#{conn} is already closing"));
        }
        Ok(match reset {
            true => format!("resetting #{conn} (RST)"),
            false => format!("closing #{conn} (FIN)"),
        })
    }

    /// Sends a relayed copy to every connection but `except` (broadcast mode and
    /// `--bridge`). Never waits: a connection whose queue is full misses it, counted in
    /// `tcp_bytes_dropped`. Not published as events.
    pub fn relay(&self, except: Option<u64>, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let data = Bytes::copy_from_slice(bytes);
        for c in lock(&self.conns).values() {
            if Some(c.id) != except {
                let _ = c.relay(data.clone());
            }
        }
    }

    /// A permit for one more connection, if the limit allows it.
    pub(crate) fn try_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.limit.clone().try_acquire_owned().ok()
    }

    /// Serves a connection the TLS front ([`crate::tls::tcp`]) accepted on `accepted_on`
    /// from `peer`: `plain` is the lab's own loopback leg carrying its plaintext. Its id.
    pub(crate) fn adopt(
        self: &Arc<Self>,
        plain: TcpStream,
        peer: SocketAddr,
        accepted_on: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) -> std::io::Result<u64> {
        conn::open(self, plain, peer, permit, None, Some(accepted_on))
    }

    /// Where its events go.
    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The task tracker the lab waits on for this service's connections.
    pub(crate) fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    fn next_id(&self) -> u64 {
        self.last_id.fetch_add(1, Relaxed) + 1
    }

    fn insert(&self, conn: Arc<Conn>) {
        lock(&self.conns).insert(conn.id, conn);
    }

    fn forget(&self, id: u64) {
        lock(&self.conns).remove(&id);
    }

    fn all(&self) -> Vec<Arc<Conn>> {
        lock(&self.conns).values().cloned().collect()
    }

    /// Connection `id`, or an error that lists the open ones.
    fn get(&self, id: u64) -> Result<Arc<Conn>, String> {
        let conns = lock(&self.conns);
        if let Some(c) = conns.get(&id) {
            return Ok(c.clone());
        }
        let open: Vec<u64> = conns.keys().take(10).copied().collect();
        Err(match open.len() {
            0 => format!("there is no TCP connection #{id} (none is open)"),
            _ => format!(
                "there is no TCP connection #{id} (open: {}{})",
                ids(&open),
                if conns.len() > open.len() {
                    ", ..."
                } else {
                    ""
                }
            ),
        })
    }

    /// Starts a background read of the kernel figures if the last is a second old.
    fn refresh_kernel(&self, conns: &[Arc<Conn>]) {
        if conns.is_empty() {
            return;
        }
        {
            let mut at = lock(&self.kernel_at);
            if at.is_some_and(|t| t.elapsed() < KERNEL_EVERY) {
                return;
            }
            *at = Some(Instant::now());
        }
        let conns = conns.to_vec();
        let job = move || kernel::refresh(&conns);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(job)),
            Err(_) => job(),
        }
    }
}

/// `#1, #2, #5`.
fn ids(ids: &[u64]) -> String {
    let text: Vec<String> = ids.iter().map(|id| format!("#{id}")).collect();
    text.join(", ")
}
