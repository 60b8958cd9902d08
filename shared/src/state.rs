//! The lab's current picture: what is open now, and the counters since start. Sent in
//! `snapshot` on connect and as `state` once a second.

use serde::{Deserialize, Serialize};

use crate::pool::PoolStatus;

/// Everything that is open now, and the counters.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct LabState {
    /// When this picture was taken, microseconds since the Unix epoch.
    pub ts_us: u64,
    /// Open TCP connections (to the TCP service, and those opened from the page).
    pub tcp: Vec<TcpConnInfo>,
    /// UDP peers the lab has heard from (bounded; the oldest are evicted).
    pub udp: Vec<UdpPeerInfo>,
    /// Connected WebSocket clients.
    pub ws: Vec<WsClientInfo>,
    /// Clients of the WebSocket service (`--ws-service`).
    pub ws_service: Vec<WsServiceClientInfo>,
    /// Open connections to the HTTP service.
    pub http: Vec<HttpConnInfo>,
    /// The last (or current) connection-pool run.
    pub pool: Option<PoolStatus>,
    /// Relay mode's proxies, by name, with their open connections.
    pub proxies: Vec<crate::proxy::ProxyInfo>,
    pub counters: Counters,
}

/// One open TCP connection.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct TcpConnInfo {
    pub id: u64,
    pub peer: String,
    pub local: String,
    pub outbound: bool,
    pub since_us: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The peer has sent FIN.
    pub half_closed: bool,
    /// Kernel figures from TCP_INFO, where the OS has them.
    pub kernel: Option<TcpKernelInfo>,
    /// The names of the service's toxics (`@tcp`) that apply to it now, either way.
    pub faults: Vec<String>,
}

/// Kernel figures for one TCP connection (Linux `TCP_INFO`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(default)]
pub struct TcpKernelInfo {
    pub rtt_us: u32,
    pub rttvar_us: u32,
    /// Congestion window, in segments.
    pub cwnd: u32,
    pub retransmits: u32,
    pub bytes_acked: u64,
}

/// One UDP peer the lab has heard from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct UdpPeerInfo {
    pub peer: String,
    pub first_us: u64,
    pub last_us: u64,
    pub dgrams_in: u64,
    pub dgrams_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The names of the UDP service's toxics (`@udp`) that apply to it now, either way.
    pub faults: Vec<String>,
}

/// One WebSocket client of `/ws`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct WsClientInfo {
    pub id: u64,
    pub peer: String,
    pub user_agent: String,
    pub dashboard: bool,
    /// It agreed to permessage-deflate (whether a frame then goes compressed is the lab's
    /// `--ws-compress` choice; `bytes_out` counts what went on the wire).
    pub deflate: bool,
    pub since_us: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Events this client missed because it fell behind.
    pub missed: u64,
    /// Times this client was told `lagged`.
    pub lagged: u64,
}

/// One client of the WebSocket service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct WsServiceClientInfo {
    pub id: u64,
    pub peer: String,
    /// The path it asked for in the upgrade (any path is answered).
    pub path: String,
    pub user_agent: String,
    /// It agreed to permessage-deflate.
    pub deflate: bool,
    pub since_us: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    /// Payload bytes of those frames (as on the wire: compressed when they were).
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The closing handshake has begun.
    pub closing: bool,
}

/// One connection to the HTTP service and the requests it carried.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct HttpConnInfo {
    pub id: u64,
    pub peer: String,
    pub since_us: u64,
    pub requests: u64,
    /// The names of the HTTP service's toxics (`@http`) that apply to it now, either way.
    pub faults: Vec<String>,
}

/// Counters since the lab started. They count every byte and event, whatever was cut,
/// dropped or filtered.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(default)]
pub struct Counters {
    /// Events published by the services.
    pub events: u64,
    /// Events the hub had to drop because its intake was full.
    pub events_dropped: u64,
    pub tcp_conns: u64,
    pub tcp_refused: u64,
    pub tcp_bytes_in: u64,
    pub tcp_bytes_out: u64,
    /// Bytes the TCP relay (broadcast, `--bridge`) dropped for a connection whose
    /// outgoing queue was full because its peer was not reading; each receiver counts.
    pub tcp_bytes_dropped: u64,
    pub udp_dgrams_in: u64,
    pub udp_dgrams_out: u64,
    pub udp_bytes_in: u64,
    pub udp_bytes_out: u64,
    /// UDP peers evicted from the bounded peers table.
    pub udp_peers_evicted: u64,
    /// Sends the lab refused (unknown peer without `--allow-outbound`) or that failed.
    pub udp_send_errors: u64,
    pub http_requests: u64,
    pub http_conns: u64,
    /// HTTP connections turned away past `--max-http-conns` (answered 503).
    pub http_refused: u64,
    pub http_bytes_in: u64,
    pub http_bytes_out: u64,
    pub ws_clients: u64,
    pub ws_refused: u64,
    pub ws_frames_in: u64,
    pub ws_frames_out: u64,
    pub ws_bytes_in: u64,
    pub ws_bytes_out: u64,
    /// Events that WebSocket clients missed because they fell behind (all clients).
    pub ws_missed: u64,
    /// Clients closed for being too slow.
    pub ws_slow_closed: u64,
    /// Clients of the WebSocket service (`--ws-service`), and those turned away at its
    /// client limit.
    pub ws_service_clients: u64,
    pub ws_service_refused: u64,
    /// Messages the WebSocket service's broadcast dropped for a client whose queue was
    /// full (it was not reading); each receiver counts.
    pub ws_service_dropped: u64,
    /// Connections relayed by relay mode's proxies (UDP: sessions).
    pub relay_conns: u64,
    /// Clients of a proxy turned away (its limit, or its upstream unreachable).
    pub relay_refused: u64,
    /// Bytes `--bridge` dropped because its queue was full (the services heard more than
    /// it could pass on).
    pub bridge_dropped: u64,
    /// Datagrams dropped because the toxics holding them (a latency, a bandwidth) held
    /// their most: on `udp` proxies and the UDP service.
    pub fault_dropped: u64,
    /// Events written to the store; and writes that failed (disk full, read-only).
    pub stored: u64,
    pub store_errors: u64,
}
