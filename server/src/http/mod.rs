//! The HTTP service: the seed's Node Hello World on 1337, with every exchange inspected
//! and pushed to the dashboard.
//!
//! ## Layout
//! - [`serve`]: the accept loop and one hyper HTTP/1 server per TCP connection, so each
//!   exchange knows the connection it came on and its place on it (`seq_on_conn`);
//!   malformed requests (hyper answers 400 and closes) become exchanges too.
//! - [`inspect`]: reads the request (body up to `--max-http-body`, 413 past it), answers,
//!   and builds the one [`HttpExchange`](wirelab_shared::HttpExchange) event per exchange.
//! - [`body`]: the response body, which publishes the exchange when hyper is done with it
//!   (so `total_us` covers the body), and the response headers (`Date` cached per second).
//! - [`helpers`]: `/_/status/{code}`, `/_/delay/{ms}`, `/_/echo`, `/_/bytes/{n}`,
//!   `/_/headers`; every other target gets the seed's `Hello World\n`.
//! - [`replay`]: sending an exchange's request again from the server, rebuilt from its
//!   event.
//!
//! ## What `curl -v` shows, next to the seed's transcript
//! Node answers `content-type: text/plain`, `Date`, `Connection: keep-alive` and
//! `Transfer-Encoding: chunked`. wirelab answers the same status, content type, date,
//! connection and body, but with `content-length: 12` instead of chunked: the body is known
//! in advance, so there is no reason to chunk it. hyper writes header names in lower case.
//!
//! ## Limits of the inspector
//! hyper parses headers into a `HeaderMap`: names arrive lower-cased, and repeats of one
//! name are kept in order but grouped together at the place of the first one (`a, b, a`
//! is shown as `a, a, b`). The original case and interleaving are not kept.

pub mod body;
pub mod helpers;
pub mod inspect;
pub mod replay;
pub mod serve;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use wirelab_shared::state::HttpConnInfo;

use crate::app::App;
use crate::config::Config;
use crate::hub::lock;

pub use replay::replay;
pub use serve::run;

/// A connection on which no exchange is in progress and none started for this long (one
/// to two periods of it) is closed: an idle keep-alive connection, or a client that never
/// finishes a request's head (slowloris). Checked by one timer per connection
/// (`serve::watchdog`), where hyper's `header_read_timeout` set a timer for every
/// request (an allocation, a clock read and a timer-wheel insert and removal each).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Handle on the HTTP service.
pub struct Http {
    /// The open connections, for `conns()`; touched once when a connection opens and once
    /// when it closes, never per request.
    conns: Mutex<HashMap<u64, serve::ConnEntry>>,
    /// The last connection id given out.
    next_conn: AtomicU64,
    /// The last exchange id given out.
    next_exchange: AtomicU64,
    /// Malformed requests seen (answered 400 by hyper, connection closed).
    malformed: AtomicU64,
    /// Bytes of each body captured in events (`--snaplen`).
    snaplen: usize,
    /// Largest request body accepted (`--max-http-body`); 413 past it.
    max_body: usize,
    /// Replays on their way: the replaying client's local address → the exchange it
    /// replays, taken when the connection is accepted.
    replays: Mutex<HashMap<SocketAddr, u64>>,
    /// hyper's HTTP/1 server settings, shared by every connection.
    builder: http1::Builder,
}

impl Http {
    /// A handle configured by `config`.
    pub fn new(config: &Config) -> Http {
        let mut builder = http1::Builder::new();
        builder
            .keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(None); // serve::watchdog does it per connection
        Http {
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            next_exchange: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            snaplen: config.snaplen,
            max_body: config.max_http_body,
            replays: Mutex::new(HashMap::new()),
            builder,
        }
    }

    /// The open connections and the requests each carried, oldest first.
    pub fn conns(&self) -> Vec<HttpConnInfo> {
        let mut conns: Vec<_> = lock(&self.conns)
            .iter()
            .map(|(id, c)| HttpConnInfo {
                id: *id,
                peer: c.peer.clone(),
                since_us: c.since_us,
                requests: c.requests.load(Ordering::Relaxed),
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

/// Where the lab's own HTTP service can be reached from the lab itself: its bound address,
/// with an unspecified IP (`0.0.0.0`, `::`) replaced by loopback.
pub fn own_addr(app: &App) -> Result<SocketAddr, String> {
    let addr: SocketAddr = app
        .services
        .iter()
        .find(|s| s.name == "http")
        .and_then(|s| s.addr.parse().ok())
        .ok_or("the HTTP service has no address")?;
    Ok(match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    })
}
