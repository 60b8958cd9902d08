//! Relay mode: proxies that put the lab between a client and the client's own service.
//!
//! A proxy is a name, a listen address, an upstream address, a protocol and enabled or
//! not. Each client connection gets its own upstream connection; both legs are events
//! (open with the upstream's connect time, data each way merged as the TCP service merges
//! it, half-close per direction, close or reset with who and why, and an upstream that
//! cannot be reached: the client gets a RST and the event says why).
//!
//! ## Layout
//! - this file: [`Relays`], every proxy of the lab and what can be done to them (make,
//!   change, enable, disable, delete), from the flag, the API or the page alike.
//! - [`spec`]: [`ProxySpec`], `--proxy NAME=PROTO://LISTEN->UPSTREAM`.
//! - [`proxy`]: [`Proxy`], one proxy's settings, figures and open connections.
//! - [`tcp`](mod@tcp): a `tcp` proxy's accept loop and one connection's two legs, on the
//!   [`crate::pipeline`]'s pumps (bounded window per direction: back-pressure).
//! - [`http`](mod@http): what an `http` proxy adds to a `tcp` one: its bytes read as
//!   HTTP/1.1 exchanges and WebSocket frames as they pass, and a 502 when the upstream
//!   cannot be reached.
//! - [`udp`](mod@udp): a `udp` proxy: a session per client address, each with its own
//!   upstream socket, ended when idle.
//! - [`faults`](mod@faults): a proxy's toxics, or a lab service's ([`Services`]: `@tcp`,
//!   `@http`, `@udp`), added, changed and removed (the API and the page alike), each change
//!   a timeline event; the toxics themselves are [`crate::faults`].
//! - [`toxiproxy`]: toxiproxy's HTTP API on its own listener (`--toxiproxy-api`).
//!
//! Nothing here holds the [`crate::App`]: the relay gets the hub, its settings and the
//! shutdown token, which is all it uses.

pub mod faults;
pub mod http;
pub mod proxy;
pub mod spec;
pub mod tcp;
pub mod toxiproxy;
pub mod udp;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wirelab_shared::{ProxyInfo, ProxyProtocol};

use crate::config::Config;
use crate::faults::Toxics;
use crate::hub::{Hub, lock};
use crate::pipeline::pump::InjectError;
pub use proxy::Proxy;
pub use spec::ProxySpec;

/// Kernel figures are read again at most this often.
const KERNEL_EVERY: Duration = Duration::from_secs(1);

/// What the relay needs from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `--snaplen`: payload bytes captured per event.
    pub snaplen: usize,
    /// `--max-proxy-conns`: open connections per proxy at most.
    pub max_conns: usize,
    /// `--allow-outbound`: proxies made from the API or the page may have an upstream
    /// off loopback.
    pub allow_outbound: bool,
    /// `--proxy-udp-idle-secs`: a UDP session without a datagram this long ends.
    pub udp_idle: Duration,
    /// `--proxy-idle-secs`: how long a half-closed connection may stay silent; `None`
    /// for ever.
    pub idle: Option<Duration>,
}

impl Settings {
    /// The settings `config` gives.
    pub fn of(config: &Config) -> Settings {
        Settings {
            snaplen: config.snaplen,
            max_conns: config.max_proxy_conns,
            allow_outbound: config.allow_outbound,
            udp_idle: Duration::from_secs(config.proxy_udp_idle_secs.max(1)),
            idle: (config.proxy_idle_secs > 0).then(|| Duration::from_secs(config.proxy_idle_secs)),
        }
    }
}

/// Who is making or changing a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--proxy`: whoever starts the lab may name any upstream (that one only: a later
    /// change from the API or the page is checked as theirs are).
    Flag,
    /// toxiproxy's API or the page: an upstream off loopback needs `--allow-outbound`.
    Remote,
}

/// Why an operation on proxies failed (the API maps each to toxiproxy's status).
#[derive(Debug, PartialEq, Eq)]
pub enum RelayError {
    /// No proxy has that name.
    NotFound,
    /// A proxy already has that name.
    Exists,
    /// The settings cannot work (a bad name or address, a protocol not relayed yet).
    Invalid(String),
    /// The upstream is off loopback and the lab runs without `--allow-outbound`.
    Forbidden(String),
    /// The listen address could not be bound.
    Bind(String),
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayError::NotFound => f.write_str("proxy not found"),
            RelayError::Exists => f.write_str("proxy already exists"),
            RelayError::Invalid(why) | RelayError::Forbidden(why) | RelayError::Bind(why) => {
                f.write_str(why)
            }
        }
    }
}

/// See the module docs.
pub struct Relays {
    /// Where events go.
    hub: Arc<Hub>,
    /// The lab's shutdown: every proxy's own token is a child of it.
    shutdown: CancellationToken,
    /// What the configuration says.
    settings: Settings,
    /// The proxies, by name.
    proxies: Mutex<BTreeMap<String, Arc<Proxy>>>,
    /// The last connection (or UDP session) id given out, lab-wide.
    last_id: AtomicU64,
    /// Every listener's and connection's task, waited for when the lab stops.
    pub tasks: TaskTracker,
    /// When kernel figures were last asked for.
    kernel_at: Mutex<Option<Instant>>,
    /// The toxics of the lab's own services.
    pub services: Services,
    /// Held by each change of toxics until its event is published.
    toxic_order: Mutex<()>,
}

/// The names the toxics API and the page give the lab's own TCP, HTTP and UDP services
/// (no proxy can have them: `@` is not allowed in a proxy's name).
pub const TCP_SERVICE: &str = "@tcp";
pub const HTTP_SERVICE: &str = "@http";
pub const UDP_SERVICE: &str = "@udp";

/// The toxics of the lab's own services: each service runs its connections (the UDP
/// service: its peers) through its set, as a proxy does.
pub struct Services {
    /// The TCP service's, [`TCP_SERVICE`].
    pub tcp: Arc<Toxics>,
    /// The HTTP service's, [`HTTP_SERVICE`].
    pub http: Arc<Toxics>,
    /// The UDP service's, [`UDP_SERVICE`]: those that act on datagrams.
    pub udp: Arc<Toxics>,
}

impl Default for Services {
    fn default() -> Services {
        Services {
            tcp: Arc::default(),
            http: Arc::default(),
            udp: Arc::new(Toxics::new(true)),
        }
    }
}

impl Services {
    /// Each set with its name.
    pub fn named(&self) -> [(&'static str, &Arc<Toxics>); 3] {
        [
            (TCP_SERVICE, &self.tcp),
            (HTTP_SERVICE, &self.http),
            (UDP_SERVICE, &self.udp),
        ]
    }
}

impl Relays {
    /// No proxies yet.
    pub fn new(hub: Arc<Hub>, settings: Settings, shutdown: CancellationToken) -> Relays {
        Relays {
            hub,
            shutdown,
            settings,
            proxies: Mutex::new(BTreeMap::new()),
            last_id: AtomicU64::new(0),
            tasks: TaskTracker::new(),
            kernel_at: Mutex::new(None),
            services: Services::default(),
            toxic_order: Mutex::new(()),
        }
    }

    /// Makes a proxy, listening at once when `enabled`. Nothing is kept when it fails.
    pub async fn create(
        self: &Arc<Self>,
        spec: ProxySpec,
        enabled: bool,
        origin: Origin,
    ) -> Result<Arc<Proxy>, RelayError> {
        spec.check().map_err(RelayError::Invalid)?;
        if origin == Origin::Remote {
            self.check_upstream(&spec.upstream).await?;
        }
        if lock(&self.proxies).contains_key(&spec.name) {
            return Err(RelayError::Exists);
        }
        let proxy = Arc::new(Proxy::new(
            &spec,
            origin == Origin::Flag,
            self.settings.max_conns,
        ));
        // Bound outside the proxies' lock: a name may take a while to resolve.
        let listener = match enabled {
            true => Some(self.bind(&proxy).await?),
            false => None,
        };
        let mut proxies = lock(&self.proxies);
        if proxies.contains_key(&spec.name) {
            return Err(RelayError::Exists);
        }
        if let Some(listener) = listener {
            self.launch(&proxy, listener);
        }
        proxies.insert(spec.name, proxy.clone());
        Ok(proxy)
    }

    /// What making `spec` from the API or the page (or changing the proxy of that name to
    /// it) would refuse, found without changing anything: a bad name or address, a
    /// protocol not relayed yet, a new upstream off loopback without `--allow-outbound`.
    /// For `/populate`, which checks every proxy before it applies any.
    pub async fn check_remote(&self, spec: &ProxySpec) -> Result<(), RelayError> {
        spec.check().map_err(RelayError::Invalid)?;
        let kept = self
            .get(&spec.name)
            .is_ok_and(|p| p.protocol == spec.protocol && p.spec().upstream == spec.upstream);
        if !kept {
            self.check_upstream(&spec.upstream).await?;
        }
        Ok(())
    }

    /// The proxy `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Proxy>, RelayError> {
        lock(&self.proxies)
            .get(name)
            .cloned()
            .ok_or(RelayError::NotFound)
    }

    /// Every proxy, by name.
    pub fn all(&self) -> Vec<Arc<Proxy>> {
        lock(&self.proxies).values().cloned().collect()
    }

    /// Changes a proxy as toxiproxy does: a new listen address stops it (its connections
    /// end; the old port is closed before the new one is bound), a new upstream ends its
    /// connections but keeps the listener, then it runs if `enabled` says so (unchanged
    /// when `None`).
    pub async fn update(
        self: &Arc<Self>,
        name: &str,
        listen: Option<String>,
        upstream: Option<String>,
        enabled: Option<bool>,
    ) -> Result<Arc<Proxy>, RelayError> {
        let proxy = self.get(name)?;
        let mut spec = proxy.spec();
        let listen = match listen {
            Some(l) if !tcp::same_listen(&spec.listen, &l).await => Some(l),
            _ => None,
        };
        let upstream = upstream.filter(|u| *u != spec.upstream);
        if let Some(l) = &listen {
            spec.listen.clone_from(l);
        }
        if let Some(u) = &upstream {
            spec.upstream.clone_from(u);
        }
        spec.check().map_err(RelayError::Invalid)?;
        // Every upstream from the API or the page is checked, even on a `--proxy` proxy:
        // the flag's permission is for its own upstream only.
        if upstream.is_some() {
            self.check_upstream(&spec.upstream).await?;
        }
        let run = enabled.unwrap_or_else(|| proxy.enabled());
        if listen.is_some() {
            stop(&proxy);
            lock(&proxy.state).listen = spec.listen;
        }
        if upstream.is_some() {
            proxy.set_upstream(spec.upstream);
        }
        match run {
            true => self.start(&proxy).await?,
            false => stop(&proxy),
        }
        Ok(proxy)
    }

    /// Deletes a proxy: it stops listening and its connections end.
    pub fn remove(&self, name: &str) -> Result<(), RelayError> {
        let proxy = lock(&self.proxies)
            .remove(name)
            .ok_or(RelayError::NotFound)?;
        stop(&proxy);
        Ok(())
    }

    /// toxiproxy's `/reset`: every toxic removed, every proxy enabled again.
    pub async fn reset(self: &Arc<Self>) -> Result<(), RelayError> {
        self.toxics_clear();
        for proxy in self.all() {
            match self.start(&proxy).await {
                Err(RelayError::NotFound) => {} // deleted meanwhile
                other => other?,
            }
        }
        Ok(())
    }

    /// The page acts on one leg of relayed TCP connection `conn`: RST, or FIN toward it.
    pub fn act(&self, conn: u64, leg: wirelab_shared::Leg, reset: bool) -> Result<String, String> {
        let c = self.tcp_conn(conn)?;
        *lock(&c.request) = Some(proxy::LegRequest { leg, reset });
        c.wake.notify_one();
        let side = match leg {
            wirelab_shared::Leg::Client => "client",
            wirelab_shared::Leg::Upstream => "upstream",
        };
        Ok(match reset {
            true => format!("resetting #{conn}'s {side} leg (RST)"),
            false => format!("sending FIN toward #{conn}'s {side}"),
        })
    }

    /// The page sends `bytes` toward one leg of relayed TCP connection `conn`: queued
    /// behind what is being relayed to it; refused when its queue is full.
    pub fn send(
        &self,
        conn: u64,
        leg: wirelab_shared::Leg,
        bytes: bytes::Bytes,
    ) -> Result<String, String> {
        let c = self.tcp_conn(conn)?;
        let Some(queues) = &c.inject else {
            return Err(format!("#{conn} takes no bytes from the page"));
        };
        let (queue, side) = match leg {
            wirelab_shared::Leg::Client => (&queues[0], "client"),
            wirelab_shared::Leg::Upstream => (&queues[1], "upstream"),
        };
        let n = bytes.len();
        match queue.push(bytes) {
            Ok(()) => Ok(format!("sending {n} bytes toward #{conn}'s {side}")),
            Err(InjectError::Full) => Err(format!(
                "#{conn}'s {side} is not reading: its queue from the page is full"
            )),
            Err(InjectError::Closed) => Err(format!("#{conn} is closing")),
        }
    }

    /// The page sends one WebSocket message toward one leg of `http` connection `conn`,
    /// once its upstream has accepted an upgrade (see [`http::inject`]).
    pub fn send_ws(
        &self,
        conn: u64,
        leg: wirelab_shared::Leg,
        payload: &[u8],
        binary: bool,
    ) -> Result<String, String> {
        let c = self.tcp_conn(conn)?;
        if !c.websocket.load(Relaxed) {
            return Err(format!(
                "#{conn} takes no WebSocket message now: it is not an http proxy's \
                 connection whose upstream accepted an upgrade, or a close frame has passed"
            ));
        }
        let kind = if binary { "binary" } else { "text" };
        self.send(conn, leg, http::inject::frame(leg, binary, payload))
            .map(|_| {
                format!(
                    "sending a {kind} message of {} bytes toward #{conn}'s {}",
                    payload.len(),
                    match leg {
                        wirelab_shared::Leg::Client => "client",
                        wirelab_shared::Leg::Upstream => "upstream",
                    }
                )
            })
    }

    /// Where `http` proxy `name` can be reached from the lab itself (its listen address,
    /// an unspecified IP made loopback), to send a relayed request through it again.
    pub fn http_addr(&self, name: &str) -> Result<std::net::SocketAddr, String> {
        let proxy = self
            .get(name)
            .map_err(|_| format!("there is no proxy {name:?} any more"))?;
        if proxy.protocol != ProxyProtocol::Http || !proxy.enabled() {
            return Err(format!("{name} is not an enabled http proxy now"));
        }
        let listen = proxy.info().listen;
        let addr: std::net::SocketAddr = listen
            .parse()
            .map_err(|_| format!("{name} listens on {listen}, not an address"))?;
        Ok(crate::tcp::reachable(addr))
    }

    /// Whether relayed TCP connection `conn` is open, from client `peer`.
    pub fn is_open_to(&self, conn: u64, peer: &str) -> bool {
        self.tcp_conn(conn).is_ok_and(|c| c.peer_text == peer)
    }

    fn tcp_conn(&self, conn: u64) -> Result<Arc<proxy::RelayConn>, String> {
        self.all()
            .into_iter()
            .filter(|p| p.protocol != ProxyProtocol::Udp)
            .find_map(|p| lock(&p.open).get(&conn).cloned())
            .ok_or_else(|| format!("there is no open relayed TCP connection #{conn}"))
    }

    /// Every proxy as `state` lists it. Kernel figures come from a cache refreshed (in
    /// the background) at most once a second, when this is called.
    pub fn infos(&self) -> Vec<ProxyInfo> {
        let all = self.all();
        self.refresh_kernel(&all);
        let mut infos: Vec<ProxyInfo> = all.iter().map(|p| p.info()).collect();
        // Each of the lab's services, while it has toxics: listed with them (named `@tcp`,
        // `@http` or `@udp`, so the page lists it with the faults only). toxiproxy's API
        // never lists them.
        for (name, toxics) in self.services.named() {
            let toxics = toxics.list();
            if !toxics.is_empty() {
                infos.push(ProxyInfo {
                    name: name.to_owned(),
                    upstream: "the lab's own service".to_owned(),
                    enabled: true,
                    toxics: toxics.iter().map(|e| e.info()).collect(),
                    ..ProxyInfo::default()
                });
            }
        }
        infos
    }

    /// Starts listening, unless it already does. `NotFound` if it was deleted meanwhile.
    async fn start(self: &Arc<Self>, proxy: &Arc<Proxy>) -> Result<(), RelayError> {
        if proxy.enabled() {
            return Ok(());
        }
        let listener = self.bind(proxy).await?;
        // Under the proxies' lock, so that a `remove` comes before (then it is not
        // started) or after (then it stops it).
        let proxies = lock(&self.proxies);
        if !proxies
            .get(&proxy.name)
            .is_some_and(|p| Arc::ptr_eq(p, proxy))
        {
            return Err(RelayError::NotFound);
        }
        self.launch(proxy, listener);
        Ok(())
    }

    /// Binds `proxy`'s listen address, outside every lock.
    async fn bind(&self, proxy: &Proxy) -> Result<Bound, RelayError> {
        let listen = proxy.spec().listen;
        let bound = match proxy.protocol {
            ProxyProtocol::Tcp | ProxyProtocol::Http => tcp::bind(&listen).await.map(Bound::Tcp),
            ProxyProtocol::Udp => udp::bind(&listen).await.map(Bound::Udp),
        };
        bound.map_err(|e| {
            RelayError::Bind(format!("listen {} {listen}: {e}", proxy.protocol.as_str()))
        })
    }

    /// Runs `proxy`'s accept loop (TCP) or datagram loop (UDP) on what was bound, unless
    /// it runs already (then that socket is closed).
    fn launch(self: &Arc<Self>, proxy: &Arc<Proxy>, bound: Bound) {
        let mut state = lock(&proxy.state);
        if state.running.is_some() {
            return;
        }
        if let Ok(addr) = bound.local_addr() {
            state.listen = crate::tcp::show(addr);
        }
        let token = self.shutdown.child_token();
        match bound {
            Bound::Tcp(listener) => {
                let slot: tcp::ListenerSlot = Arc::new(Mutex::new(Some(listener)));
                let run = tcp::run(self.clone(), proxy.clone(), slot.clone(), token.clone());
                self.tasks.spawn(run);
                state.listener = Some(slot);
            }
            Bound::Udp(socket) => {
                let run = udp::run(self.clone(), proxy.clone(), socket, token.clone());
                self.tasks.spawn(run);
            }
        }
        state.conns = token.child_token();
        state.running = Some(token);
    }

    /// From the API or the page: an upstream that resolves off loopback needs
    /// `--allow-outbound`. One that does not resolve yet is taken (toxiproxy takes it
    /// too); it is checked again at each connection.
    async fn check_upstream(&self, upstream: &str) -> Result<(), RelayError> {
        if self.settings.allow_outbound {
            return Ok(());
        }
        match crate::tcp::resolve(upstream, false).await {
            Err(why) if why.contains("--allow-outbound") => Err(RelayError::Forbidden(format!(
                "upstream {upstream} is not on this machine: a proxy made from the API or the \
                 page may only relay to loopback unless wirelab runs with --allow-outbound"
            ))),
            _ => Ok(()),
        }
    }

    /// The next lab-wide connection id.
    fn next_id(&self) -> u64 {
        self.last_id.fetch_add(1, Relaxed) + 1
    }

    /// Starts a background read of both legs' kernel figures if the last is a second old.
    fn refresh_kernel(&self, proxies: &[Arc<Proxy>]) {
        let conns: Vec<_> = proxies
            .iter()
            .filter(|p| p.protocol != ProxyProtocol::Udp)
            .flat_map(|p| lock(&p.open).values().cloned().collect::<Vec<_>>())
            .collect();
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
        let job = move || {
            let slots: Vec<_> = conns
                .iter()
                .flat_map(|c| {
                    [
                        (c.listen, c.peer, &c.client_kernel),
                        (c.upstream_local, c.upstream, &c.upstream_kernel),
                    ]
                })
                .collect();
            crate::tcp::kernel::refresh_slots(&slots);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(job)),
            Err(_) => job(),
        }
    }
}

/// Stops listening and ends every connection, unless it is stopped already. The listening
/// socket is closed before this returns: nothing accepts there any more, and the address
/// can be bound again at once.
fn stop(proxy: &Proxy) {
    let mut state = lock(&proxy.state);
    if let Some(token) = state.running.take() {
        token.cancel();
    }
    if let Some(slot) = state.listener.take() {
        drop(lock(&slot).take());
    }
}

/// A proxy's bound socket, before its loop runs.
enum Bound {
    Tcp(tokio::net::TcpListener),
    Udp(tokio::net::UdpSocket),
}

impl Bound {
    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        match self {
            Bound::Tcp(l) => l.local_addr(),
            Bound::Udp(s) => s.local_addr(),
        }
    }
}
