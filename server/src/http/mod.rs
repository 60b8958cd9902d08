//! The HTTP service: the seed's Node Hello World on 1337, with every exchange inspected
//! and pushed to the dashboard.
//!
//! ## Layout
//! - [`serve`]: the accept loop; each connection's entry in `Http::conns`, its idle
//!   watchdog and its grace at shutdown; requests that cannot be served (answered 400,
//!   414 or 431 and closed) become exchanges too.
//! - [`conn`]: one connection's exchanges in order, with our own HTTP/1.1 engine on
//!   tokio: the read buffer, pipelined requests, bodies, `100 Continue`, keep-alive, and
//!   answers batched into one write; it builds the one
//!   [`HttpExchange`](wirelab_shared::HttpExchange) event per exchange.
//! - [`head`]: parsing a request head (`httparse`), with the headers as sent, and the
//!   framing rules (smuggling shapes refused).
//! - [`chunked`]: decoding a chunked request body as it arrives.
//! - [`response`]: the response head as written, and as the event shows it (`Date`
//!   cached per second); what a response carries.
//! - [`helpers`]: `/_/status/{code}`, `/_/delay/{ms}`, `/_/echo`, `/_/bytes/{n}`,
//!   `/_/headers`; every other target gets the seed's `Hello World\n`.
//! - [`replay`]: sending an exchange's request again from the server (a hyper client),
//!   rebuilt from its event.
//!
//! ## What `curl -v` shows, next to the seed's transcript
//! Node answers `content-type: text/plain` (the seed's code names it in lower case),
//! `Date`, `Connection: keep-alive` and `Transfer-Encoding: chunked`. wirelab answers the
//! same status, headers in the same case and order, and body, but with
//! `Content-Length: 12` instead of chunked: the body is known in advance, so there is no
//! reason to chunk it. To an HTTP/1.0 request it answers `HTTP/1.1` too, as Node does, and
//! closes the connection unless the request asked for `keep-alive`.
//!
//! ## What the inspector shows
//! The request exactly as sent, but for the body's framing: the request line, and every
//! header with its name in the client's case, in the client's order, repeats where they
//! were (`X-Trace: a`, `Accept: */*`, `X-Trace: b` stays so). A chunked body is shown
//! decoded (its chunk extensions and trailer fields are read and dropped). Header values
//! that are not UTF-8 are shown with U+FFFD in place of the bytes that are not.
//!
//! ## What is refused
//! A head larger than 64 KiB (431, or 414 when the request line alone is), more than 100
//! headers (431), a head `httparse` rejects (400), a line of the head ending in a bare LF
//! (400: CRLF only, as in chunked bodies), a request target with bytes outside ASCII
//! (400), the `Host` rule of RFC 9112 section 3.2 (400 for an HTTP/1.1 request without
//! one, and for any with several or one that is not `host[:port]`), and framing that
//! could smuggle a request (400): `Content-Length` with
//! `Transfer-Encoding`, `Content-Length` values that differ or are not a number, a
//! `Transfer-Encoding` not ending in one `chunked`, or one in HTTP/1.0; a transfer coding
//! besides `chunked` gets 501 (it is not decoded). Each is answered with its reason as a
//! line of text, counted in `Http::malformed`, shown as an exchange and explained in a
//! notice, and the connection is closed. (docs/conformance.md: how this compares with
//! llhttp, the parser inside Node.js.) An HTTP/2 preface is closed without an answer
//! (status 0 in the event). A bad chunked body gets 400 with the reason, and a body past
//! `--max-http-body` 413, both closing the connection. `CONNECT` gets 501: the service
//! is no proxy.
//!
//! ## Slow and too many clients
//! A body must keep coming: `--http-idle-secs` (30 s by default) after its head, plus a
//! second for every `--http-body-min-rate` bytes received (500 by default), and never
//! `--http-idle-secs` without a byte; else 408 with the reason, and a close. So a body
//! trickled a byte at a time is cut off after about 30 s. A connection stuck elsewhere (a
//! head never finished, however slowly its bytes come; a client that does not read its
//! answers; an idle keep-alive connection) is closed without a word by the watchdog, after
//! one to two `--http-idle-secs` periods in which no byte moved, or no exchange started.
//! At most `--max-http-conns` connections (1024) are open at once; past it a connection
//! gets 503 with the reason and is closed, counted and told in a notice.

pub mod chunked;
pub mod conn;
pub mod head;
pub mod helpers;
pub mod replay;
pub mod response;
pub mod serve;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use wirelab_shared::state::HttpConnInfo;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::faults::Toxics;
use crate::hub::{Hub, lock};

pub use replay::replay;
pub use serve::run;

/// Handle on the HTTP service.
pub struct Http {
    /// The open connections, for `conns()`; touched once when a connection opens and once
    /// when it closes, never per request.
    conns: Mutex<HashMap<u64, serve::ConnEntry>>,
    /// The last connection id given out.
    next_conn: AtomicU64,
    /// The lab's exchange numbering, shared with the relay's `http` proxies (the hub's).
    next_exchange: Arc<AtomicU64>,
    /// Malformed requests seen (answered 400, 414 or 431, or not at all; connection
    /// closed).
    malformed: AtomicU64,
    /// One owned permit per open connection, moved into its task (`--max-http-conns`).
    limit: Arc<Semaphore>,
    /// `--max-http-conns`, for messages.
    max_conns: usize,
    /// Bytes of each body captured in events (`--snaplen`).
    snaplen: usize,
    /// Largest request body accepted (`--max-http-body`); 413 past it.
    max_body: usize,
    /// A connection on which nothing moved for this long (one to two periods of it) is
    /// closed (`--http-idle-secs`): an idle keep-alive connection, a client that never
    /// finishes a request's head (slowloris) or body, or one that stops reading its
    /// answers. Checked by one timer per connection (`serve::watchdog`), not per request.
    pub idle: Duration,
    /// A request body must come at this many bytes a second on average, after a grace of
    /// `idle` (`--http-body-min-rate`; 0: no minimum): see `conn::BodyClock`.
    body_min_rate: u64,
    /// Replays on their way: the replaying client's local address → the exchange it
    /// replays, taken when the connection is accepted.
    replays: Mutex<HashMap<SocketAddr, u64>>,
    /// Where its events and counters go.
    hub: Arc<Hub>,
    /// The lab's shutdown: a request's helpers (`/delay`) stop waiting at it.
    shutdown: CancellationToken,
    /// `--backlog`: events the hub keeps (a replay looks for its exchange among them).
    backlog: usize,
    /// Its toxics (`@http` in the toxics API): each connection's reads and writes go
    /// through a fault line per direction, as a proxy's connections do.
    pub(crate) toxics: Arc<Toxics>,
}

impl Http {
    /// A handle configured by `config`.
    /// A handle configured by `config`, publishing to `hub`, ending at `shutdown`.
    pub fn new(
        config: &Config,
        hub: Arc<Hub>,
        shutdown: CancellationToken,
        toxics: Arc<Toxics>,
    ) -> Http {
        let max_conns = config.max_http_conns.min(Semaphore::MAX_PERMITS);
        Http {
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            next_exchange: hub.exchange_ids(),
            malformed: AtomicU64::new(0),
            limit: Arc::new(Semaphore::new(max_conns)),
            max_conns,
            snaplen: config.snaplen,
            max_body: config.max_http_body,
            idle: Duration::from_secs(config.http_idle_secs.max(1)),
            body_min_rate: config.http_body_min_rate,
            replays: Mutex::new(HashMap::new()),
            hub,
            shutdown,
            backlog: config.backlog,
            toxics,
        }
    }

    /// The open connections and the requests each carried, oldest first.
    /// Connections that may still open before `--max-http-conns` (HTTP and HTTPS, and
    /// HTTPS handshakes in progress, share it).
    pub fn free_slots(&self) -> usize {
        self.limit.available_permits()
    }

    pub fn conns(&self) -> Vec<HttpConnInfo> {
        let mut conns: Vec<_> = lock(&self.conns)
            .iter()
            .map(|(id, c)| HttpConnInfo {
                id: *id,
                peer: c.peer.clone(),
                since_us: c.since_us,
                requests: c.requests.load(Ordering::Relaxed),
                faults: crate::faults::line::names(&c.faults),
            })
            .collect();
        conns.sort_by_key(|c| c.id);
        conns
    }

    /// Malformed requests seen since the lab started (each also counted as a request).
    pub fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }

    /// A new exchange id.
    fn exchange_id(&self) -> u64 {
        self.next_exchange.fetch_add(1, Ordering::Relaxed) + 1
    }
}
