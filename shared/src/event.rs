//! Events: one thing that happened on one of the lab's services.

use serde::{Deserialize, Serialize};

use crate::payload::Payload;
use crate::pool::{PoolSpec, PoolStatus};

/// One thing that happened, numbered by the hub.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Event {
    /// Monotonic sequence number, from 1; never reused, even across a restart when the
    /// lab records to disk.
    pub seq: u64,
    /// When it happened, in microseconds since the Unix epoch.
    pub ts_us: u64,
    /// What happened.
    pub kind: EventKind,
}

/// The service an event belongs to.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
    Http,
    Ws,
    Pool,
    System,
}

impl Protocol {
    /// Every protocol, in display order.
    pub const ALL: [Protocol; 6] = [
        Protocol::Tcp,
        Protocol::Udp,
        Protocol::Http,
        Protocol::Ws,
        Protocol::Pool,
        Protocol::System,
    ];

    /// The short lower-case name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Http => "http",
            Protocol::Ws => "ws",
            Protocol::Pool => "pool",
            Protocol::System => "system",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// A bit for masks of protocols.
    pub fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Which way bytes travelled, seen from the lab.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the peer to the lab.
    In,
    /// From the lab to the peer.
    Out,
}

/// One of the two legs of a relayed connection.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Leg {
    /// Between the client and the proxy's listen address.
    Client,
    /// Between the lab and the proxy's upstream.
    Upstream,
}

/// Why a TCP connection ended.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The peer closed (FIN) and the lab closed its side in turn.
    Fin,
    /// The peer reset the connection (RST).
    Reset,
    /// A socket error other than a reset.
    Error,
    /// Closed (FIN) from the dashboard.
    ClosedFromPage,
    /// Reset (RST) from the dashboard.
    ResetFromPage,
    /// Nothing travelled for longer than the idle timeout.
    IdleTimeout,
    /// The lab is shutting down.
    Shutdown,
    /// A fault (a toxic: timeout, limit_data) closed it.
    Fault,
    /// A fault (a toxic: reset_peer) reset it (RST).
    FaultReset,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What happened. (The dashboard reads it with [`crate::decode`], not serde.)
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A TCP connection was established (accepted, or opened from the page).
    TcpOpen {
        conn: u64,
        peer: String,
        local: String,
        /// Opened by the lab (connect out) rather than accepted.
        #[serde(default)]
        outbound: bool,
        /// For outbound connections: how long the three-way handshake took.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handshake_us: Option<u64>,
    },
    /// Bytes on a TCP connection. Consecutive reads may be merged into one event;
    /// `size` always counts every byte.
    TcpData {
        conn: u64,
        peer: String,
        dir: Direction,
        size: u64,
        payload: Payload,
    },
    /// The peer sent FIN: it will send no more, but may still read.
    TcpHalfClose { conn: u64, peer: String },
    /// A TCP connection ended.
    TcpClose {
        conn: u64,
        peer: String,
        reason: CloseReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        duration_us: u64,
        bytes_in: u64,
        bytes_out: u64,
    },
    /// A connection was turned away (the connection limit was reached).
    TcpRefused { peer: String, reason: String },
    /// One UDP datagram, received or sent.
    UdpDatagram {
        peer: String,
        dir: Direction,
        size: u64,
        payload: Payload,
    },
    /// One HTTP request and its response.
    Http(Box<HttpExchange>),
    /// A WebSocket client connected to `/ws`.
    WsOpen {
        client: u64,
        peer: String,
        #[serde(default)]
        user_agent: String,
        /// A dashboard (rather than a plain client such as websocat).
        #[serde(default)]
        dashboard: bool,
    },
    /// A WebSocket client left.
    WsClose {
        client: u64,
        peer: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u16>,
        #[serde(default)]
        reason: String,
        duration_us: u64,
    },
    /// A WebSocket message from a client that was not a command (plain text or binary).
    WsMessage {
        client: u64,
        peer: String,
        size: u64,
        payload: Payload,
    },
    /// A chat line, from a WebSocket client or (with `--bridge`) another service.
    Chat { from: String, text: String },
    /// A client connected to the WebSocket service (`--ws-service`), on any `path`.
    WsServiceOpen {
        client: u64,
        peer: String,
        path: String,
        #[serde(default)]
        user_agent: String,
        /// It agreed to permessage-deflate; the response's parameters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deflate: Option<String>,
    },
    /// One frame on the WebSocket service, either way, as it crossed the wire: `payload`
    /// is unmasked, and compressed when `rsv1` says so (the first frame of a compressed
    /// message).
    WsServiceFrame {
        client: u64,
        peer: String,
        dir: Direction,
        /// 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong.
        opcode: u8,
        fin: bool,
        rsv1: bool,
        /// The payload's length.
        size: u64,
        payload: Payload,
        /// A close frame's code and reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        close_code: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        close_reason: Option<String>,
        /// Frames of this client not shown since its previous frame event (past the
        /// service's event rate; every frame is counted in the client's figures).
        #[serde(default, skip_serializing_if = "is_zero")]
        skipped: u64,
    },
    /// A client of the WebSocket service left: `code` is the close code of the closing
    /// handshake (the client's, or the lab's when it closed first), `detail` says how.
    WsServiceClose {
        client: u64,
        peer: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u16>,
        #[serde(default)]
        reason: String,
        #[serde(default)]
        detail: String,
        duration_us: u64,
        bytes_in: u64,
        bytes_out: u64,
        /// Frames that were not shown as events (past the service's event rate).
        #[serde(default, skip_serializing_if = "is_zero")]
        frames_not_shown: u64,
    },
    /// A connection-pool run started.
    PoolStarted { run: u64, spec: PoolSpec },
    /// A connection-pool run ended (done, cancelled or failed), with its totals.
    PoolFinished { run: u64, status: PoolStatus },
    /// A client connected to a proxy and the lab connected to the proxy's upstream for it:
    /// both legs are open. `peer` is the client; `connect_us` the upstream's handshake.
    RelayOpen {
        proxy: String,
        conn: u64,
        peer: String,
        /// The proxy's listen address (the client leg's local end).
        listen: String,
        upstream: String,
        /// The lab's end of the upstream leg.
        upstream_local: String,
        connect_us: u64,
    },
    /// Bytes through a proxy, read from the leg `from` and written to the other.
    /// Consecutive reads may be merged into one event; `size` always counts every byte.
    RelayData {
        proxy: String,
        conn: u64,
        peer: String,
        from: Leg,
        size: u64,
        payload: Payload,
    },
    /// Bytes sent from the page toward the leg `to` of a relayed connection (queued
    /// between the relayed chunks, in order), once written.
    RelaySend {
        proxy: String,
        conn: u64,
        peer: String,
        to: Leg,
        size: u64,
        payload: Payload,
    },
    /// The leg `from` sent FIN; the lab passed it on to the other leg.
    RelayHalfClose {
        proxy: String,
        conn: u64,
        peer: String,
        from: Leg,
    },
    /// A relayed connection ended, both legs: why, and which leg it started from
    /// (`by`, none when the lab ended it).
    RelayClose {
        proxy: String,
        conn: u64,
        peer: String,
        reason: CloseReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<Leg>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        duration_us: u64,
        /// Bytes read from the client (and written to the upstream: `upstream_out`).
        client_in: u64,
        client_out: u64,
        upstream_in: u64,
        upstream_out: u64,
    },
    /// A client of a proxy was turned away with a RST: the proxy's connection limit, or
    /// its upstream refused or did not answer (`reason` says which).
    RelayRefused {
        proxy: String,
        peer: String,
        reason: String,
    },
    /// A UDP client of a proxy was heard from for the first time (or again after its
    /// session ended): it gets its own upstream socket, as `socat UDP-LISTEN,fork` does.
    RelayUdpOpen {
        proxy: String,
        session: u64,
        peer: String,
        /// The proxy's listen address (where the client's datagrams arrive).
        listen: String,
        upstream: String,
        /// The session's own socket toward the upstream.
        upstream_local: String,
    },
    /// One datagram through a `udp` proxy, read from the leg `from` and sent on the other.
    RelayDatagram {
        proxy: String,
        session: u64,
        peer: String,
        from: Leg,
        size: u64,
        payload: Payload,
    },
    /// A UDP session ended: `reason` says why (idle timeout, the upstream's port closed,
    /// the proxy disabled or deleted, the lab stopping).
    RelayUdpClose {
        proxy: String,
        session: u64,
        peer: String,
        reason: String,
        duration_us: u64,
        client_in: u64,
        client_out: u64,
        upstream_in: u64,
        upstream_out: u64,
    },
    /// One HTTP exchange through an `http` proxy, both heads exactly as sent: the
    /// request as the client sent it (and the lab passed it on), the response as the
    /// upstream sent it. `exchange.conn` is the relayed connection; its `ttfb_us` and
    /// `total_us` run from the request head's passing to the response head's first byte
    /// and to the response's end (the upstream's timing). `connect_us`, on a connection's
    /// first exchange, is the upstream's handshake; `note` says what was unusual
    /// (interim responses, a connection that ended mid-response).
    RelayHttp {
        proxy: String,
        exchange: Box<HttpExchange>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connect_us: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// One WebSocket frame through an `http` proxy after the upstream accepted an
    /// upgrade, read from the leg `from` and relayed untouched: `payload` unmasked (and
    /// compressed when `rsv1` says so). `skipped`: frames from that leg relayed but not
    /// shown since the previous one shown (past 200 a second).
    RelayWsFrame {
        proxy: String,
        conn: u64,
        peer: String,
        from: Leg,
        /// 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong.
        opcode: u8,
        fin: bool,
        rsv1: bool,
        size: u64,
        payload: Payload,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        close_code: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        close_reason: Option<String>,
        #[serde(default, skip_serializing_if = "is_zero")]
        skipped: u64,
    },
    /// What a proxy wants said about one of its connections: on an `http` proxy, bytes
    /// from the leg `from` that cannot be followed as HTTP (still relayed as they are).
    RelayNotice {
        proxy: String,
        conn: u64,
        peer: String,
        from: Leg,
        detail: String,
    },
    /// A toxic acted on a relayed connection, on the bytes coming `from` that leg: what
    /// it did ("held 100 ms: ...", "cut into 37 writes: ...", "reset by reset_peer ...",
    /// "closed after limit_data ...", "spared (toxicity 0.05)"). Said at most once a
    /// second per toxic, connection and direction, with what it did since.
    RelayFault {
        proxy: String,
        conn: u64,
        peer: String,
        from: Leg,
        toxic: String,
        what: String,
    },
    /// A proxy's toxic was added, changed or removed (`action`: `added`, `updated`,
    /// `removed`), from the API or the page; `detail` says what it does.
    ToxicChange {
        proxy: String,
        toxic: String,
        action: String,
        detail: String,
    },
    /// A TLS handshake on a lab service, finished or failed.
    Tls(Box<TlsHandshake>),
    /// Something the lab itself wants the user to know (a full disk, a refused client).
    Notice { level: String, message: String },
}

/// One TLS handshake: what the client offered in its ClientHello (in its order), what was
/// chosen, and how it ended.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct TlsHandshake {
    /// The service it came to (`https`, `tls_tcp`).
    pub service: String,
    /// The connection: its id on that service (its exchanges carry the same).
    pub conn: u64,
    pub peer: String,
    /// The server name asked for (SNI); empty when none.
    pub sni: String,
    /// ALPN protocols offered.
    pub alpn: Vec<String>,
    /// TLS versions offered (`TLSv1.3`).
    pub versions: Vec<String>,
    /// Cipher suites offered (`TLS13_AES_128_GCM_SHA256`, `GREASE`, `0x00ff`).
    pub ciphers: Vec<String>,
    /// Groups offered (`X25519`), and those it sent a key share for.
    pub groups: Vec<String>,
    pub key_shares: Vec<String>,
    /// Signature algorithms offered.
    pub sig_algs: Vec<String>,
    /// The client's JA4 fingerprint; empty when what came was no ClientHello.
    pub ja4: String,
    /// What was chosen; empty when the handshake failed first.
    pub version: String,
    pub cipher: String,
    pub alpn_chosen: String,
    /// The certificate served: the name it was picked by, and what is wrong with it.
    pub cert: String,
    /// From the connection's accept to the end of the handshake (or its failure).
    pub handshake_us: u64,
    /// Why it failed, in words ("the client rejected the certificate: unknown CA");
    /// none when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl EventKind {
    /// The service this event belongs to.
    pub fn protocol(&self) -> Protocol {
        match self {
            EventKind::TcpOpen { .. }
            | EventKind::TcpData { .. }
            | EventKind::TcpHalfClose { .. }
            | EventKind::TcpClose { .. }
            | EventKind::TcpRefused { .. }
            | EventKind::RelayOpen { .. }
            | EventKind::RelayData { .. }
            | EventKind::RelaySend { .. }
            | EventKind::RelayHalfClose { .. }
            | EventKind::RelayClose { .. }
            | EventKind::RelayRefused { .. }
            | EventKind::RelayFault { .. }
            | EventKind::ToxicChange { .. } => Protocol::Tcp,
            EventKind::UdpDatagram { .. }
            | EventKind::RelayUdpOpen { .. }
            | EventKind::RelayDatagram { .. }
            | EventKind::RelayUdpClose { .. } => Protocol::Udp,
            EventKind::Http(_) | EventKind::RelayHttp { .. } | EventKind::Tls(_) => Protocol::Http,
            EventKind::RelayNotice { .. } => Protocol::Tcp,
            EventKind::WsOpen { .. }
            | EventKind::WsClose { .. }
            | EventKind::WsMessage { .. }
            | EventKind::Chat { .. }
            | EventKind::WsServiceOpen { .. }
            | EventKind::WsServiceFrame { .. }
            | EventKind::WsServiceClose { .. }
            | EventKind::RelayWsFrame { .. } => Protocol::Ws,
            EventKind::PoolStarted { .. } | EventKind::PoolFinished { .. } => Protocol::Pool,
            EventKind::Notice { .. } => Protocol::System,
        }
    }

    /// The peer address this event is about, if it has one.
    pub fn peer(&self) -> Option<&str> {
        match self {
            EventKind::TcpOpen { peer, .. }
            | EventKind::TcpData { peer, .. }
            | EventKind::TcpHalfClose { peer, .. }
            | EventKind::TcpClose { peer, .. }
            | EventKind::TcpRefused { peer, .. }
            | EventKind::UdpDatagram { peer, .. }
            | EventKind::WsOpen { peer, .. }
            | EventKind::WsClose { peer, .. }
            | EventKind::WsMessage { peer, .. }
            | EventKind::WsServiceOpen { peer, .. }
            | EventKind::WsServiceFrame { peer, .. }
            | EventKind::WsServiceClose { peer, .. }
            | EventKind::RelayOpen { peer, .. }
            | EventKind::RelayData { peer, .. }
            | EventKind::RelaySend { peer, .. }
            | EventKind::RelayHalfClose { peer, .. }
            | EventKind::RelayClose { peer, .. }
            | EventKind::RelayRefused { peer, .. }
            | EventKind::RelayFault { peer, .. }
            | EventKind::RelayUdpOpen { peer, .. }
            | EventKind::RelayDatagram { peer, .. }
            | EventKind::RelayUdpClose { peer, .. }
            | EventKind::RelayWsFrame { peer, .. }
            | EventKind::RelayNotice { peer, .. } => Some(peer),
            EventKind::Http(x) => Some(&x.peer),
            EventKind::Tls(x) => Some(&x.peer),
            EventKind::RelayHttp { exchange, .. } => Some(&exchange.peer),
            _ => None,
        }
    }

    /// The direction of the bytes, for events that carry bytes.
    pub fn direction(&self) -> Option<Direction> {
        match self {
            EventKind::TcpData { dir, .. }
            | EventKind::UdpDatagram { dir, .. }
            | EventKind::WsServiceFrame { dir, .. } => Some(*dir),
            EventKind::RelaySend {
                to: Leg::Client, ..
            } => Some(Direction::Out),
            // Seen from the lab, as `peer` (the client) is: from the client is `in`.
            EventKind::RelayData { from, .. }
            | EventKind::RelayDatagram { from, .. }
            | EventKind::RelayWsFrame { from, .. } => Some(match from {
                Leg::Client => Direction::In,
                Leg::Upstream => Direction::Out,
            }),
            EventKind::WsMessage { .. } | EventKind::Http(_) | EventKind::RelayHttp { .. } => {
                Some(Direction::In)
            }
            _ => None,
        }
    }

    /// The captured payload, for events that carry one.
    pub fn payload(&self) -> Option<&Payload> {
        match self {
            EventKind::TcpData { payload, .. }
            | EventKind::UdpDatagram { payload, .. }
            | EventKind::WsMessage { payload, .. }
            | EventKind::WsServiceFrame { payload, .. }
            | EventKind::RelayData { payload, .. }
            | EventKind::RelaySend { payload, .. }
            | EventKind::RelayDatagram { payload, .. }
            | EventKind::RelayWsFrame { payload, .. } => Some(payload),
            EventKind::Http(x) => Some(&x.body),
            EventKind::RelayHttp { exchange, .. } => Some(&exchange.body),
            _ => None,
        }
    }

    /// Bytes the event stands for (on the wire, whatever was captured).
    pub fn size(&self) -> u64 {
        match self {
            EventKind::TcpData { size, .. }
            | EventKind::UdpDatagram { size, .. }
            | EventKind::WsMessage { size, .. }
            | EventKind::WsServiceFrame { size, .. }
            | EventKind::RelayData { size, .. }
            | EventKind::RelaySend { size, .. }
            | EventKind::RelayDatagram { size, .. }
            | EventKind::RelayWsFrame { size, .. } => *size,
            EventKind::Http(x) => x.body_size,
            EventKind::RelayHttp { exchange, .. } => exchange.body_size,
            EventKind::Chat { text, .. } => text.len() as u64,
            _ => 0,
        }
    }
}

/// One HTTP request and the response the lab gave, as `curl -v` would tell it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct HttpExchange {
    /// Exchange id, unique for the life of the server.
    pub id: u64,
    /// The TCP connection it came on: keep-alive requests share it.
    pub conn: u64,
    /// The how-many-th request on that connection, from 1.
    pub seq_on_conn: u64,
    pub peer: String,
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// `HTTP/1.1`, `HTTP/1.0`, ...
    pub version: String,
    /// Request headers in order, repeats kept.
    pub headers: Vec<(String, String)>,
    /// The request body, cut at the snaplen.
    pub body: Payload,
    /// Exact size of the request body.
    pub body_size: u64,
    /// The response's status code (0: the connection closed without an answer).
    pub status: u16,
    /// The response's HTTP version, as on its status line (`HTTP/1.1`; empty when no answer
    /// was sent). Recordings from before this field have no such key, and the lab then
    /// answered every request with `HTTP/1.1`, which is what they load as.
    #[serde(default = "http_1_1")]
    pub resp_version: String,
    /// The reason phrase on the response's status line, as sent (`Unprocessable Entity`).
    /// Recordings from before this field load with none.
    #[serde(default)]
    pub resp_reason: String,
    /// Response headers in order.
    pub resp_headers: Vec<(String, String)>,
    /// The response body, cut at the snaplen.
    pub resp_body: Payload,
    /// Exact size of the response body.
    pub resp_size: u64,
    /// Time from the request's arrival to the response head.
    pub ttfb_us: u64,
    /// Time from the request's arrival to the end of the response body.
    pub total_us: u64,
    /// Set when the lab sent this request itself, replaying exchange `replay_of`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<u64>,
    /// It came over TLS (the HTTPS service): its connection's handshake is the `tls` event
    /// with the same `conn`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn http_1_1() -> String {
    "HTTP/1.1".to_owned()
}

impl HttpExchange {
    /// The URL the request went to: its target when that is absolute, else `http://` (or
    /// `https://`), its
    /// `Host` header (or `fallback_host` when it sent none) and its target.
    pub fn url(&self, fallback_host: &str) -> String {
        if self.target.starts_with("http://") || self.target.starts_with("https://") {
            return self.target.clone();
        }
        let host = header(&self.headers, "host").unwrap_or(fallback_host);
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{host}{}", self.target)
    }
}

/// The value of the first header named `name` (case-insensitive) in `headers`.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::payload::Payload;

    pub(crate) fn samples() -> Vec<EventKind> {
        let p = Payload::capture(b"hi <script>", 64);
        vec![
            EventKind::TcpOpen {
                conn: 1,
                peer: "127.0.0.1:5000".into(),
                local: "127.0.0.1:1338".into(),
                outbound: false,
                handshake_us: None,
            },
            EventKind::TcpData {
                conn: 1,
                peer: "p".into(),
                dir: Direction::In,
                size: 11,
                payload: p.clone(),
            },
            EventKind::TcpHalfClose {
                conn: 1,
                peer: "p".into(),
            },
            EventKind::TcpClose {
                conn: 1,
                peer: "p".into(),
                reason: CloseReason::ResetFromPage,
                detail: Some("x".into()),
                duration_us: 5,
                bytes_in: 1,
                bytes_out: 2,
            },
            EventKind::TcpRefused {
                peer: "p".into(),
                reason: "limit".into(),
            },
            EventKind::UdpDatagram {
                peer: "p".into(),
                dir: Direction::Out,
                size: 1,
                payload: Payload::capture(&[0xff], 64),
            },
            EventKind::Http(Box::new(HttpExchange {
                id: 3,
                headers: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
                ..Default::default()
            })),
            EventKind::WsOpen {
                client: 1,
                peer: "p".into(),
                user_agent: "ua".into(),
                dashboard: true,
            },
            EventKind::WsClose {
                client: 1,
                peer: "p".into(),
                code: Some(1000),
                reason: "bye".into(),
                duration_us: 9,
            },
            EventKind::WsMessage {
                client: 1,
                peer: "p".into(),
                size: 2,
                payload: p,
            },
            EventKind::Chat {
                from: "ws#1".into(),
                text: "hello".into(),
            },
            EventKind::WsServiceOpen {
                client: 2,
                peer: "p".into(),
                path: "/any".into(),
                user_agent: "ua".into(),
                deflate: Some("permessage-deflate".into()),
            },
            EventKind::WsServiceFrame {
                client: 2,
                peer: "p".into(),
                dir: Direction::Out,
                opcode: 8,
                fin: true,
                rsv1: false,
                size: 5,
                payload: Payload::capture(&[3, 232, b'b', b'y', b'e'], 64),
                close_code: Some(1000),
                close_reason: Some("bye".into()),
                skipped: 7,
            },
            EventKind::WsServiceClose {
                client: 2,
                peer: "p".into(),
                code: Some(1009),
                reason: "too big".into(),
                detail: "closed by the lab".into(),
                duration_us: 3,
                bytes_in: 4,
                bytes_out: 5,
                frames_not_shown: 0,
            },
            EventKind::PoolStarted {
                run: 1,
                spec: PoolSpec::default(),
            },
            EventKind::PoolFinished {
                run: 1,
                status: PoolStatus::default(),
            },
            EventKind::RelayOpen {
                proxy: "redis".into(),
                conn: 1,
                peer: "p".into(),
                listen: "127.0.0.1:16379".into(),
                upstream: "127.0.0.1:6379".into(),
                upstream_local: "127.0.0.1:40000".into(),
                connect_us: 80,
            },
            EventKind::RelayData {
                proxy: "redis".into(),
                conn: 1,
                peer: "p".into(),
                from: Leg::Upstream,
                size: 5,
                payload: Payload::capture(b"+OK\r\n", 64),
            },
            EventKind::RelaySend {
                proxy: "redis".into(),
                conn: 1,
                peer: "p".into(),
                to: Leg::Upstream,
                size: 6,
                payload: Payload::capture(b"PING\r\n", 64),
            },
            EventKind::RelayHalfClose {
                proxy: "redis".into(),
                conn: 1,
                peer: "p".into(),
                from: Leg::Client,
            },
            EventKind::RelayClose {
                proxy: "redis".into(),
                conn: 1,
                peer: "p".into(),
                reason: CloseReason::Reset,
                by: Some(Leg::Upstream),
                detail: None,
                duration_us: 9,
                client_in: 1,
                client_out: 2,
                upstream_in: 2,
                upstream_out: 1,
            },
            EventKind::RelayRefused {
                proxy: "redis".into(),
                peer: "p".into(),
                reason: "refused".into(),
            },
            EventKind::RelayFault {
                proxy: "redis".into(),
                conn: 1,
                peer: "p".into(),
                from: Leg::Upstream,
                toxic: "latency_downstream".into(),
                what: "held 100 ms".into(),
            },
            EventKind::ToxicChange {
                proxy: "redis".into(),
                toxic: "latency_downstream".into(),
                action: "added".into(),
                detail: "latency 100 ms".into(),
            },
            EventKind::RelayUdpOpen {
                proxy: "dns".into(),
                session: 2,
                peer: "p".into(),
                listen: "127.0.0.1:5353".into(),
                upstream: "127.0.0.1:53".into(),
                upstream_local: "0.0.0.0:40000".into(),
            },
            EventKind::RelayDatagram {
                proxy: "dns".into(),
                session: 2,
                peer: "p".into(),
                from: Leg::Client,
                size: 1,
                payload: Payload::capture(&[0], 64),
            },
            EventKind::RelayUdpClose {
                proxy: "dns".into(),
                session: 2,
                peer: "p".into(),
                reason: "idle".into(),
                duration_us: 1,
                client_in: 1,
                client_out: 2,
                upstream_in: 2,
                upstream_out: 1,
            },
            EventKind::RelayHttp {
                proxy: "api".into(),
                exchange: Box::new(HttpExchange {
                    id: 4,
                    conn: 3,
                    seq_on_conn: 1,
                    peer: "p".into(),
                    method: "GET".into(),
                    target: "/".into(),
                    version: "HTTP/1.1".into(),
                    headers: vec![("Host".into(), "x".into())],
                    status: 200,
                    resp_version: "HTTP/1.1".into(),
                    resp_reason: "OK".into(),
                    ..HttpExchange::default()
                }),
                connect_us: Some(120),
                note: Some("interim responses first: 100".into()),
            },
            EventKind::RelayWsFrame {
                proxy: "api".into(),
                conn: 3,
                peer: "p".into(),
                from: Leg::Upstream,
                opcode: 8,
                fin: true,
                rsv1: false,
                size: 4,
                payload: Payload::capture(b"\x03\xe8ok", 64),
                close_code: Some(1000),
                close_reason: Some("ok".into()),
                skipped: 2,
            },
            EventKind::RelayNotice {
                proxy: "api".into(),
                conn: 3,
                peer: "p".into(),
                from: Leg::Client,
                detail: "not HTTP".into(),
            },
            EventKind::Tls(Box::new(TlsHandshake {
                service: "https".into(),
                conn: 4,
                peer: "127.0.0.1:5".into(),
                sni: "expired.localhost".into(),
                alpn: vec!["h2".into(), "http/1.1".into()],
                versions: vec!["TLSv1.3".into()],
                ciphers: vec!["GREASE".into(), "TLS13_AES_128_GCM_SHA256".into()],
                groups: vec!["X25519".into()],
                key_shares: vec!["X25519".into()],
                sig_algs: vec!["ECDSA_NISTP256_SHA256".into()],
                ja4: "t13d0101h2_000000000000_000000000000".into(),
                cert: "expired.localhost (expired)".into(),
                handshake_us: 900,
                error: Some("the client rejected the certificate: certificate expired".into()),
                ..TlsHandshake::default()
            })),
            EventKind::Notice {
                level: "warn".into(),
                message: "disk full".into(),
            },
        ]
    }

    #[test]
    fn every_event_kind_round_trips_through_json() {
        for (i, kind) in samples().into_iter().enumerate() {
            let ev = Event {
                seq: i as u64 + 1,
                ts_us: 1_700_000_000_000_000,
                kind,
            };
            let json = serde_json::to_string(&ev).unwrap();
            let back: Event = serde_json::from_str(&json).unwrap();
            assert_eq!(back, ev, "{json}");
        }
    }

    #[test]
    fn http_events_recorded_before_the_status_line_fields_still_load() {
        let mut ev = serde_json::to_value(Event {
            seq: 1,
            ts_us: 2,
            kind: EventKind::Http(Box::default()),
        })
        .unwrap();
        let kind = ev["kind"].as_object_mut().unwrap();
        assert!(kind.remove("resp_version").is_some() && kind.remove("resp_reason").is_some());
        let old: Event = serde_json::from_value(ev).unwrap();
        let EventKind::Http(x) = old.kind else {
            panic!("not http: {old:?}")
        };
        // Until then the lab answered every request with HTTP/1.1 (and its reason unknown).
        assert_eq!(
            (x.resp_version.as_str(), x.resp_reason.as_str()),
            ("HTTP/1.1", "")
        );
    }

    #[test]
    fn the_url_is_the_host_header_and_target_unless_the_target_is_absolute() {
        let mut x = HttpExchange {
            target: "/a?b".into(),
            headers: vec![("HOST".into(), "lab:1".into())],
            ..Default::default()
        };
        assert_eq!(x.url("fallback"), "http://lab:1/a?b");
        x.headers.clear();
        assert_eq!(x.url("fallback"), "http://fallback/a?b");
        x.target = "http://elsewhere/x".into();
        assert_eq!(x.url("fallback"), "http://elsewhere/x");
        assert_eq!(header(&[("a".into(), "1".into())], "A"), Some("1"));
    }

    #[test]
    fn protocol_names_parse_back_and_bits_are_distinct() {
        let mut mask = 0u8;
        for p in Protocol::ALL {
            assert_eq!(Protocol::parse(p.as_str()), Some(p));
            assert_eq!(mask & p.bit(), 0);
            mask |= p.bit();
        }
        assert_eq!(Protocol::parse("smtp"), None);
    }

    #[test]
    fn events_know_their_protocol_and_peer() {
        let kinds = samples();
        assert_eq!(kinds[0].protocol(), Protocol::Tcp);
        assert_eq!(kinds[5].protocol(), Protocol::Udp);
        assert_eq!(kinds[5].peer(), Some("p"));
        assert_eq!(kinds[10].peer(), None);
        assert_eq!(kinds[1].size(), 11);
    }
}
