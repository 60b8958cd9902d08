//! One proxy as the rest of the lab sees it: its settings, whether it runs, its figures
//! and its open connections.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use wirelab_shared::{Leg, ProxyInfo, ProxyProtocol, RelayConnInfo, TcpKernelInfo};

use super::spec::ProxySpec;
use super::tcp::ListenerSlot;
use crate::faults::Toxics;
use crate::faults::line::Shown;
use crate::hub::lock;
use crate::pipeline::pump::Inject;

/// Open connections listed per proxy at most (`open` counts them all).
pub const LEGS_LISTED: usize = 100;

/// Byte and connection counts, for a proxy (since it was made) or one connection.
#[derive(Debug, Default)]
pub struct Figures {
    /// Bytes read from the client(s).
    pub client_in: AtomicU64,
    /// Bytes written to the client(s).
    pub client_out: AtomicU64,
    /// Bytes read from the upstream.
    pub upstream_in: AtomicU64,
    /// Bytes written to the upstream.
    pub upstream_out: AtomicU64,
}

/// See the module docs.
pub struct Proxy {
    /// Unique among the lab's proxies; never changes.
    pub name: String,
    /// What it relays; never changes.
    pub protocol: ProxyProtocol,
    /// Listen and upstream addresses, and the running listener's stop token.
    pub state: Mutex<State>,
    /// Connections (UDP: sessions) relayed since it was made.
    pub conns: AtomicU64,
    /// Clients turned away.
    pub refused: AtomicU64,
    /// Datagrams that could not be relayed.
    pub dropped: AtomicU64,
    /// Bytes moved, since it was made.
    pub figures: Figures,
    /// The open connections, by lab-wide id.
    pub open: Mutex<BTreeMap<u64, Arc<RelayConn>>>,
    /// One permit per open connection (`--max-proxy-conns`).
    pub limit: Arc<Semaphore>,
    /// Its toxics (`tcp` proxies), applied to every connection, the live ones too.
    pub toxics: Arc<Toxics>,
}

/// What may change after a proxy is made.
pub struct State {
    /// As given, or with the real port once bound (toxiproxy answers the same).
    pub listen: String,
    /// `host:port`, resolved at each connection.
    pub upstream: String,
    /// `upstream` is the one `--proxy` gave, so it may be any host (whoever starts the lab
    /// chose it). False from its first change: an upstream from the API or the page is
    /// loopback only unless `--allow-outbound`, whoever made the proxy.
    pub upstream_from_flag: bool,
    /// Cancelled to stop the listener and every connection; `None` while disabled.
    pub running: Option<CancellationToken>,
    /// The listening socket while it runs, shared with the accept loop; stopping takes it
    /// out and closes it, so the port is closed once the stop returns.
    pub listener: Option<ListenerSlot>,
    /// Cancelled to end the live connections while the listener keeps running (a child of
    /// `running`): a new upstream ends the connections to the old one, as in toxiproxy.
    pub conns: CancellationToken,
}

impl Proxy {
    /// A disabled proxy of `spec`.
    pub fn new(spec: &ProxySpec, from_flag: bool, max_conns: usize) -> Proxy {
        Proxy {
            name: spec.name.clone(),
            protocol: spec.protocol,
            state: Mutex::new(State {
                listen: spec.listen.clone(),
                upstream: spec.upstream.clone(),
                upstream_from_flag: from_flag,
                running: None,
                listener: None,
                conns: CancellationToken::new(),
            }),
            conns: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            figures: Figures::default(),
            open: Mutex::new(BTreeMap::new()),
            limit: Arc::new(Semaphore::new(max_conns.clamp(1, Semaphore::MAX_PERMITS))),
            toxics: Arc::new(Toxics::new(spec.protocol == ProxyProtocol::Udp)),
        }
    }

    /// The upstream to connect to now.
    pub fn upstream(&self) -> String {
        lock(&self.state).upstream.clone()
    }

    /// What a new connection needs, read together: the upstream to connect to, whether
    /// it may be off loopback without `--allow-outbound` (the flag's own), and the token
    /// that ends the connection when the proxy stops or its upstream changes.
    pub fn target(&self) -> (String, bool, CancellationToken) {
        let state = lock(&self.state);
        let upstream = state.upstream.clone();
        (upstream, state.upstream_from_flag, state.conns.clone())
    }

    /// Points new connections at `upstream` and ends the live ones (toxiproxy ends them
    /// too when the upstream changes); the listener keeps running.
    pub fn set_upstream(&self, upstream: String) {
        let mut state = lock(&self.state);
        state.upstream = upstream;
        state.upstream_from_flag = false;
        state.conns.cancel();
        if let Some(running) = &state.running {
            state.conns = running.child_token();
        }
    }

    /// Whether it listens.
    pub fn enabled(&self) -> bool {
        lock(&self.state).running.is_some()
    }

    /// Its settings, as the API and `state` show them.
    pub fn spec(&self) -> ProxySpec {
        let state = lock(&self.state);
        ProxySpec {
            name: self.name.clone(),
            protocol: self.protocol,
            listen: state.listen.clone(),
            upstream: state.upstream.clone(),
        }
    }

    /// The row `state` lists.
    pub fn info(&self) -> ProxyInfo {
        let spec = self.spec();
        let open = lock(&self.open);
        let f = &self.figures;
        ProxyInfo {
            name: spec.name,
            listen: spec.listen,
            upstream: spec.upstream,
            protocol: self.protocol,
            enabled: self.enabled(),
            open: open.len() as u64,
            conns: self.conns.load(Relaxed),
            refused: self.refused.load(Relaxed),
            client_in: f.client_in.load(Relaxed),
            client_out: f.client_out.load(Relaxed),
            upstream_in: f.upstream_in.load(Relaxed),
            upstream_out: f.upstream_out.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            legs: open.values().take(LEGS_LISTED).map(|c| c.info()).collect(),
            toxics: self.toxics.list().iter().map(|e| e.info()).collect(),
        }
    }
}

/// One open relayed connection (TCP), or one UDP session.
pub struct RelayConn {
    /// The lab-wide id, from 1.
    pub id: u64,
    /// The client.
    pub peer: SocketAddr,
    /// `peer` as events show it.
    pub peer_text: String,
    /// The proxy's end of the client leg.
    pub listen: SocketAddr,
    /// The lab's end of the upstream leg.
    pub upstream_local: SocketAddr,
    /// The upstream's address.
    pub upstream: SocketAddr,
    /// When both legs were open, microseconds since the Unix epoch.
    pub since_us: u64,
    /// Its bytes.
    pub figures: Figures,
    /// The client has sent FIN.
    pub client_half_closed: AtomicBool,
    /// The upstream has sent FIN.
    pub upstream_half_closed: AtomicBool,
    /// TCP_INFO of the client leg, refreshed at most once a second.
    pub client_kernel: Mutex<Option<TcpKernelInfo>>,
    /// TCP_INFO of the upstream leg.
    pub upstream_kernel: Mutex<Option<TcpKernelInfo>>,
    /// What the page asked of a leg and not yet done: FIN toward it, or RST.
    pub request: Mutex<Option<LegRequest>>,
    /// Wakes the connection's task when `request` is set.
    pub wake: tokio::sync::Notify,
    /// Bytes from the page toward the client leg and toward the upstream leg (TCP only),
    /// each queue bounded in chunks.
    pub inject: Option<[Inject; 2]>,
    /// An `http` proxy's connection whose upstream accepted a WebSocket upgrade, and no
    /// close frame has passed: the page may send messages.
    pub websocket: AtomicBool,
    /// The toxics that apply to it now, client → upstream and back (TCP only).
    pub faults: [Shown; 2],
}

/// An action of the page on one leg of a relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegRequest {
    /// The leg acted on.
    pub leg: Leg,
    /// RST (the connection ends) rather than FIN toward that leg (a half-close by the lab).
    pub reset: bool,
}

impl RelayConn {
    /// A connection (UDP: a session) just opened: counters at zero, since now. `inject`:
    /// the page's send queues toward the client and the upstream (TCP only).
    pub fn new(
        id: u64,
        peer: SocketAddr,
        listen: SocketAddr,
        upstream_local: SocketAddr,
        upstream: SocketAddr,
        inject: Option<[Inject; 2]>,
    ) -> RelayConn {
        RelayConn {
            id,
            peer,
            peer_text: crate::tcp::show(peer),
            listen,
            upstream_local,
            upstream,
            since_us: crate::hub::now_us(),
            figures: Figures::default(),
            client_half_closed: Default::default(),
            upstream_half_closed: Default::default(),
            client_kernel: Default::default(),
            upstream_kernel: Default::default(),
            request: Default::default(),
            wake: Default::default(),
            inject,
            websocket: AtomicBool::new(false),
            faults: Default::default(),
        }
    }

    /// The row a proxy lists.
    pub fn info(&self) -> RelayConnInfo {
        let f = &self.figures;
        RelayConnInfo {
            conn: self.id,
            peer: self.peer_text.clone(),
            upstream_local: crate::tcp::show(self.upstream_local),
            since_us: self.since_us,
            client_in: f.client_in.load(Relaxed),
            client_out: f.client_out.load(Relaxed),
            upstream_in: f.upstream_in.load(Relaxed),
            upstream_out: f.upstream_out.load(Relaxed),
            client_half_closed: self.client_half_closed.load(Relaxed),
            upstream_half_closed: self.upstream_half_closed.load(Relaxed),
            websocket: self.websocket.load(Relaxed),
            faults: crate::faults::line::names(&self.faults),
            client_kernel: *lock(&self.client_kernel),
            upstream_kernel: *lock(&self.upstream_kernel),
        }
    }
}
