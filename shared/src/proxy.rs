//! Relay mode: the proxies (a listen address relayed to an upstream) and their open
//! connections, as `state` and `snapshot` list them.

use serde::{Deserialize, Serialize};

use crate::state::TcpKernelInfo;

/// What a proxy relays.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProxyProtocol {
    /// Raw bytes, both ways.
    #[default]
    Tcp,
    /// Raw bytes too, each HTTP/1.1 exchange and WebSocket frame also read and shown.
    Http,
    /// Datagrams, a session per client address.
    Udp,
}

impl ProxyProtocol {
    /// The name as in `--proxy NAME=PROTO://...` and the API's `protocol`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyProtocol::Tcp => "tcp",
            ProxyProtocol::Http => "http",
            ProxyProtocol::Udp => "udp",
        }
    }

    /// Parses the name.
    pub fn parse(s: &str) -> Option<ProxyProtocol> {
        [ProxyProtocol::Tcp, ProxyProtocol::Http, ProxyProtocol::Udp]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// One proxy and its figures.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct ProxyInfo {
    /// Unique among the lab's proxies.
    pub name: String,
    /// The address clients connect to (the real port once bound).
    pub listen: String,
    /// Where each client's traffic is relayed (`host:port`).
    pub upstream: String,
    pub protocol: ProxyProtocol,
    /// Listening; a disabled proxy keeps its settings and figures, and no connection.
    pub enabled: bool,
    /// Connections (UDP: sessions) open now.
    pub open: u64,
    /// Connections (UDP: sessions) relayed since the proxy was made.
    pub conns: u64,
    /// Clients turned away: the connection limit, or an upstream that could not be
    /// reached.
    pub refused: u64,
    /// Bytes read from clients (each one written to the upstream: `upstream_out`).
    pub client_in: u64,
    /// Bytes written to clients.
    pub client_out: u64,
    /// Bytes read from the upstream.
    pub upstream_in: u64,
    /// Bytes written to the upstream.
    pub upstream_out: u64,
    /// Datagrams (UDP) that could not be relayed, counted.
    pub dropped: u64,
    /// The open connections, oldest first (at most 100 listed; `open` counts them all).
    pub legs: Vec<RelayConnInfo>,
    /// Its toxics (faults), as toxiproxy lists them, with what each did.
    pub toxics: Vec<ToxicInfo>,
}

/// One toxic of a proxy and what it did since it was added.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct ToxicInfo {
    /// Unique among the proxy's toxics.
    pub name: String,
    /// toxiproxy's type: `latency`, `bandwidth`, `slow_close`, `timeout`, `reset_peer`,
    /// `slicer`, `limit_data`, `packet_loss`, `corrupt`; wirelab's for datagrams: `loss`,
    /// `duplicate`, `reorder`, `truncate`.
    pub kind: String,
    /// `upstream` (client → upstream), `downstream` or `both`.
    pub stream: String,
    /// What it does, in words: "latency 300 ms, toxicity 0.5".
    pub detail: String,
    /// Connections (per direction) that got it.
    pub conns: u64,
    /// Connections (per direction) its toxicity spared.
    pub spared: u64,
    /// Bytes it handled.
    pub bytes: u64,
    /// Bytes it dropped.
    pub dropped: u64,
    /// Connections it ended.
    pub cuts: u64,
    /// Chunks or datagrams it dropped (packet_loss, loss), duplicated, held back
    /// (reorder) or cut (truncate); bits it flipped (corrupt).
    pub acted: u64,
}

/// One open relayed connection: its client leg and its upstream leg.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct RelayConnInfo {
    pub conn: u64,
    /// The client.
    pub peer: String,
    /// The lab's end of the upstream leg.
    pub upstream_local: String,
    pub since_us: u64,
    pub client_in: u64,
    pub client_out: u64,
    pub upstream_in: u64,
    pub upstream_out: u64,
    /// The client has sent FIN.
    pub client_half_closed: bool,
    /// The upstream has sent FIN.
    pub upstream_half_closed: bool,
    /// TCP_INFO of the client leg, where the OS has it.
    pub client_kernel: Option<TcpKernelInfo>,
    /// TCP_INFO of the upstream leg.
    pub upstream_kernel: Option<TcpKernelInfo>,
    /// An `http` proxy's connection whose upstream accepted a WebSocket upgrade: the page
    /// may send it messages (`relay_ws_send`).
    pub websocket: bool,
    /// The names of the toxics (faults) that apply to it now, either way.
    pub faults: Vec<String>,
}
