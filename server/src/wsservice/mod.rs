//! The WebSocket service: the TCP service's WebSocket twin, on a port of its own
//! (`--ws-service`, 127.0.0.1:1341 by default), for testing one's own WebSocket clients.
//!
//! ## Layout
//! - this file: [`WsService`], the handle the rest of the lab holds: its clients, and
//!   the page's actions on them (send, close, drop) and the broadcast relay.
//! - [`accept`]: [`run`], the accept loop and the upgrade, by hand on the raw socket:
//!   any path, the RFC 6455 checks of `/ws` ([`check_upgrade`](crate::ws::upgrade::check_upgrade)),
//!   permessage-deflate by [`deflate::negotiate`](crate::ws::deflate::negotiate).
//! - [`session`]: one client's loop, until `ws_service_close`.
//!
//! ## Rules
//! - One engine with `/ws`: the same frame reader, socket, deflate and closing handshake
//!   (after the lab's close frame: half-close, then read and drop what the client still
//!   sends, for up to 2 s). The socket's tap publishes every frame, either way, as a
//!   `ws_service_frame` event (opcode, FIN, RSV1, length, payload up to `--snaplen`,
//!   a close frame's code and reason).
//! - Frame events are bounded per client: 1,000 a second capturing 4 MiB at most; past
//!   that a frame is counted in the client's figures but not published, and the next frame
//!   event says how many were `skipped` (a close frame is always shown). A client sending
//!   a message in 65,536 frames (Autobahn 9.4) would otherwise put 65,536 events on the
//!   timeline and the recorder.
//! - Modes (`--ws-mode`): `echo` (default) sends each message back as it came, text or
//!   binary, compressed when it came compressed; `broadcast` sends it to every other
//!   client (compressed for those that agreed, when it came compressed); `sink` keeps it.
//! - permessage-deflate: any offer the engine can honour, with no context kept on either
//!   side (`server_no_context_takeover; client_no_context_takeover`, as `/ws` answers),
//!   and a smaller server window when the client asks for one (9 to 15 bits).
//! - Limits: a message over `--max-ws-service-message` (16 MiB) closes with 1009; past
//!   `--max-ws-service-clients` an upgrade gets 503. Each client's outgoing queue holds
//!   [`QUEUE_MESSAGES`] messages and [`QUEUE_BYTES`] bytes: a broadcast copy that does not
//!   fit is dropped for that client and counted (`ws_service_dropped`); a send from the
//!   page that does not fit is refused. In echo mode the echo is written before the next
//!   message is read: a client that does not read its echoes is slowed down, not dropped.
//! - No Origin or token check: like the TCP service it is a target for one's own clients
//!   (on loopback by default), and it runs no command.

pub mod accept;
mod session;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use axum::extract::ws::Message;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wirelab_shared::WsServiceClientInfo;

use crate::config::{Config, RelayMode};
use crate::hub::{Hub, counters::add, lock};
use crate::ws::deflate::Agreed;

pub use accept::run;

/// Messages waiting per client at most...
pub const QUEUE_MESSAGES: usize = 64;
/// ...and bytes (a larger message takes the whole budget).
pub const QUEUE_BYTES: usize = 32 << 20;

/// Handle on the WebSocket service.
pub struct WsService {
    /// The connected clients, by id.
    clients: Mutex<BTreeMap<u64, Arc<Client>>>,
    /// The last client id given out.
    last_id: AtomicU64,
    /// One permit per connected client (`--max-ws-service-clients`).
    limit: Arc<Semaphore>,
    /// `--max-ws-service-clients`, for messages.
    max_clients: usize,
    /// `--ws-mode`.
    mode: RelayMode,
    /// `--max-ws-service-message`.
    max_message: usize,
    /// `--snaplen`: payload bytes captured per frame event.
    snaplen: usize,
    /// Every client's task: `run` waits for them when the lab stops.
    tasks: TaskTracker,
    /// Where its events and counters go.
    hub: Arc<Hub>,
    /// The lab's shutdown: every client gets a close frame (1001).
    shutdown: CancellationToken,
}

/// What the page asked of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    /// A close frame with this code and reason, then the closing handshake.
    Close(u16, String),
    /// A reset (RST), without a close frame.
    Drop,
}

/// A message waiting to be written to one client.
struct Out {
    /// Text or binary.
    msg: Message,
    /// It came compressed: compressed again for a client that agreed.
    compressed: bool,
    /// Its share of the client's byte budget, given back when it is written.
    _budget: OwnedSemaphorePermit,
}

/// One connected client as the rest of the lab sees it.
struct Client {
    /// The service-wide id, from 1, shown as `#id`.
    id: u64,
    /// The client's address, as events show it.
    peer: String,
    /// The path of its upgrade request.
    path: String,
    /// Its `User-Agent`, cut at 256 characters.
    user_agent: String,
    /// permessage-deflate, when agreed.
    deflate: Option<Agreed>,
    /// When it upgraded, microseconds since the Unix epoch.
    since_us: u64,
    /// Frames and their payload bytes each way (every frame, shown or not).
    frames_in: AtomicU64,
    /// Frames counted but not published (past [`session::FRAME_EVENTS_PER_SEC`]).
    frames_not_shown: AtomicU64,
    frames_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// The closing handshake has begun: no more sends are taken.
    closing: AtomicBool,
    /// Messages to write (broadcast copies, sends from the page), bounded in count...
    queue: mpsc::Sender<Out>,
    /// ...and in bytes.
    budget: Arc<Semaphore>,
    /// What the page asked for (the strongest: a drop wins over a close).
    request: Mutex<Option<Request>>,
    /// Wakes the session when `request` is set.
    wake: Notify,
    /// For counting dropped broadcast copies.
    hub: Arc<Hub>,
}

/// Why a message was not queued.
#[derive(Debug, PartialEq, Eq)]
enum PushError {
    Full,
    Closed,
}

impl Client {
    /// Queues a message without waiting.
    fn push(&self, msg: Message, compressed: bool) -> Result<(), PushError> {
        if self.closing.load(Relaxed) {
            return Err(PushError::Closed);
        }
        let len = match &msg {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            _ => 0,
        };
        let need = len.clamp(1, QUEUE_BYTES) as u32;
        let permit = self
            .budget
            .clone()
            .try_acquire_many_owned(need)
            .map_err(|_| PushError::Full)?;
        let out = Out {
            msg,
            compressed,
            _budget: permit,
        };
        self.queue.try_send(out).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => PushError::Full,
            mpsc::error::TrySendError::Closed(_) => PushError::Closed,
        })
    }

    /// Asks the session to close or drop; false if as much was asked already.
    fn ask(&self, request: Request) -> bool {
        let mut current = lock(&self.request);
        if current.as_ref() == Some(&Request::Drop)
            || (current.is_some() && request != Request::Drop)
        {
            return false;
        }
        *current = Some(request);
        self.wake.notify_one();
        true
    }

    fn info(&self) -> WsServiceClientInfo {
        WsServiceClientInfo {
            id: self.id,
            peer: self.peer.clone(),
            path: self.path.clone(),
            user_agent: self.user_agent.clone(),
            deflate: self.deflate.is_some(),
            since_us: self.since_us,
            frames_in: self.frames_in.load(Relaxed),
            frames_out: self.frames_out.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            closing: self.closing.load(Relaxed),
        }
    }
}

impl WsService {
    /// A handle configured by `config`.
    /// A handle configured by `config`, publishing to `hub`, ending at `shutdown`.
    pub fn new(config: &Config, hub: Arc<Hub>, shutdown: CancellationToken) -> WsService {
        let max = config.max_ws_service_clients.min(Semaphore::MAX_PERMITS);
        WsService {
            clients: Mutex::new(BTreeMap::new()),
            last_id: AtomicU64::new(0),
            limit: Arc::new(Semaphore::new(max)),
            max_clients: max,
            mode: config.ws_mode,
            max_message: config.max_ws_service_message,
            snaplen: config.snaplen,
            tasks: TaskTracker::new(),
            hub,
            shutdown,
        }
    }

    /// The connected clients, by id.
    pub fn infos(&self) -> Vec<WsServiceClientInfo> {
        lock(&self.clients).values().map(|c| c.info()).collect()
    }

    /// Sends a message from the page to client `client`, or to every one when `None`.
    pub fn send(&self, client: Option<u64>, msg: Message) -> Result<String, String> {
        let len = match &msg {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            _ => 0,
        };
        let targets = match client {
            Some(id) => vec![self.get(id)?],
            None => lock(&self.clients).values().cloned().collect(),
        };
        if targets.is_empty() {
            return Err("no WebSocket service clients yet: connect one first \
                        (websocat ws://HOST:PORT/)"
                .into());
        }
        let (mut queued, mut not) = (Vec::new(), Vec::new());
        for c in &targets {
            match c.push(msg.clone(), false) {
                Ok(()) => queued.push(format!("#{}", c.id)),
                Err(PushError::Full) => {
                    not.push(format!("#{} has a full queue (it is not reading)", c.id))
                }
                Err(PushError::Closed) => not.push(format!("#{} is closing", c.id)),
            }
        }
        let kind = if matches!(msg, Message::Text(_)) {
            "text"
        } else {
            "binary"
        };
        match (queued.is_empty(), not.is_empty()) {
            (true, _) => Err(format!("nothing sent: {}", not.join("; "))),
            (false, true) => Ok(format!(
                "sending a {len}-byte {kind} message to {}",
                queued.join(", ")
            )),
            (false, false) => Ok(format!(
                "sending a {len}-byte {kind} message to {}; not to {}",
                queued.join(", "),
                not.join("; ")
            )),
        }
    }

    /// Closes client `client` from the page: a close frame with `code` (1000 when
    /// `None`) and `reason`, or, when `drop`, a reset without one.
    pub fn close(
        &self,
        client: u64,
        code: Option<u16>,
        reason: String,
        drop: bool,
    ) -> Result<String, String> {
        let c = self.get(client)?;
        let code = code.unwrap_or(1000);
        if !drop && !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
            return Err(format!(
                "{code} is not a close code an endpoint may send: use 1000, 1001-1003, \
                 1007-1014 or 3000-4999"
            ));
        }
        let request = if drop {
            Request::Drop
        } else {
            Request::Close(code, reason)
        };
        if !c.ask(request) {
            return Err(format!("#{client} is already closing"));
        }
        Ok(match drop {
            true => format!("dropping #{client} (RST, no close frame)"),
            false => format!("closing #{client} with {code}"),
        })
    }

    /// Sends a copy of a client's message to every other client (broadcast mode). Never
    /// waits: a client whose queue is full misses it, counted in `ws_service_dropped`.
    fn relay(&self, except: u64, msg: &Message, compressed: bool) {
        for c in lock(&self.clients).values() {
            if c.id != except && c.push(msg.clone(), compressed) == Err(PushError::Full) {
                add(&c.hub.counters.ws_service_dropped, 1);
            }
        }
    }

    fn next_id(&self) -> u64 {
        self.last_id.fetch_add(1, Relaxed) + 1
    }

    fn try_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.limit.clone().try_acquire_owned().ok()
    }

    fn insert(&self, client: Arc<Client>) {
        lock(&self.clients).insert(client.id, client);
    }

    fn forget(&self, id: u64) {
        lock(&self.clients).remove(&id);
    }

    /// Client `id`, or an error that lists the connected ones.
    fn get(&self, id: u64) -> Result<Arc<Client>, String> {
        let clients = lock(&self.clients);
        if let Some(c) = clients.get(&id) {
            return Ok(c.clone());
        }
        let open: Vec<String> = clients.keys().take(10).map(|id| format!("#{id}")).collect();
        Err(match open.len() {
            0 => format!("there is no WebSocket service client #{id} (none is connected)"),
            _ => format!(
                "there is no WebSocket service client #{id} (connected: {})",
                open.join(", ")
            ),
        })
    }
}
