//! # wirelab: a network lab in the browser
//!
//! One process runs its services and a dashboard that shows, live, everything that
//! happens on them: the seed article's TCP service, its UDP service, its HTTP Hello World,
//! the WebSocket push channel that feeds the dashboard, and a WebSocket service of its own
//! (the TCP service's WebSocket twin).
//!
//! ## Layout
//! - [`config`]: the flags (each also a `WIRELAB_*` variable).
//! - [`app`]: [`App`], the lab's shared state, for what acts on every service (the page's
//!   commands, the API, `state`); the services do not hold it.
//! - [`bridge`]: `--bridge`: one bounded queue and a task that passes what a TCP client, a
//!   UDP peer or the chat says to the others.
//! - [`backoff`]: the pause after failed `accept` calls, for the services' accept loops.
//! - [`hub`]: numbers events, keeps the backlog, batches and fans out frames.
//! - [`ws`]: `/ws`: the upgrade checks, each client's pump, the commands.
//! - [`pipeline`]: the path every byte stream takes (read, tap, stages, write), and the
//!   bounded pump that relays one direction of a stream.
//! - [`tcp`], [`udp`], [`http`]: the services; [`pool`]: the connection-pool lab.
//! - [`tls`]: the lab's CA, the HTTPS and TLS TCP services' handshakes and certificates (some
//!   broken on purpose), and the dashboard over TLS.
//! - [`relay`]: relay mode's proxies (`--proxy`), each client with its own upstream leg.
//! - [`faults`]: toxiproxy's toxics on a proxy's connections (latency, bandwidth, ...).
//! - [`wsservice`]: the WebSocket service (`--ws-service`): echo, broadcast or sink, every
//!   frame an event; on [`ws`]'s engine (frames, socket, deflate, upgrade checks).
//! - [`replay`]: sending a captured payload again (from the backlog, or the store).
//! - [`store`]: the recorder: every event in SQLite, its writer, queries and retention.
//! - [`export`]: recorded events as pcapng (Wireshark) and HAR.
//! - [`web`]: the dashboard's routes, `/api`, its embedded files, auth.
//! - [`start`]: binds everything and spawns the tasks; `main.rs` only parses flags and
//!   waits for Ctrl-C or SIGTERM.
//!
//! Every listener is `run(listener, service, shutdown)`, where the service holds what it
//! uses (the hub, its settings, the shutdown token, the bridge) and nothing of the others:
//! tests bind port 0 and cancel their own token.
//!
//! ## The path of a byte
//! ```text
//! peer ─▶ socket ─▶ read ─▶ tap ─────────▶ stages ─▶ write ─▶ socket ─▶ peer
//!                            │ counters     (faults; breakpoints, TLS: later issues)
//!                            │ data events (merged per 16 ms, --snaplen captured)
//!                            ▼
//!                           hub ─▶ batches ─▶ /ws clients (dashboards)
//!                                        └──▶ store (SQLite) ─▶ /api, JSONL, HAR, pcapng
//! ```
//! A TCP client's bytes go read ▶ tap ▶ stages ▶ the `--tcp-mode` relay (other
//! connections' queues) ▶ each receiver's down stages ▶ write; see [`pipeline`].

pub mod app;
pub mod backoff;
pub mod bridge;
pub mod config;
pub mod export;
pub mod faults;
pub mod http;
pub mod hub;
pub mod pipeline;
pub mod pool;
pub mod relay;
pub mod replay;
pub mod store;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod web;
pub mod ws;
pub mod wsservice;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wirelab_shared::{EventKind, ServerMsg, ServiceInfo};

pub use app::App;
pub use config::Config;

/// A running lab: its real addresses, and its tasks to wait for.
pub struct Lab {
    pub app: Arc<App>,
    pub dashboard: SocketAddr,
    pub http: SocketAddr,
    pub tcp: SocketAddr,
    pub udp: SocketAddr,
    /// The WebSocket service, unless it is `off`.
    pub ws_service: Option<SocketAddr>,
    /// The HTTPS service, unless it is `off`.
    pub https: Option<SocketAddr>,
    /// The dashboard speaks HTTPS and WSS (`--dashboard-tls`).
    pub dashboard_tls: bool,
    /// The TLS TCP service, unless it is `off`.
    pub tls_tcp: Option<SocketAddr>,
    /// toxiproxy's API, unless it is `off`.
    pub toxiproxy_api: Option<SocketAddr>,
    tasks: TaskTracker,
}

impl Lab {
    /// The URL to open, with the token when there is one.
    pub fn url(&self) -> String {
        let scheme = if self.dashboard_tls { "https" } else { "http" };
        match &self.app.token {
            Some(t) => format!("{scheme}://{}/?token={t}", self.dashboard),
            None => format!("{scheme}://{}/", self.dashboard),
        }
    }

    /// Waits until every task has ended (after the shutdown token is cancelled).
    pub async fn wait(self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// Binds a TCP listener, or says in one line which flag to change.
async fn bind_tcp(addr: SocketAddr, what: &str, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| bind_error(e, addr, what, flag))
}

fn bind_error(e: std::io::Error, addr: SocketAddr, what: &str, flag: &str) -> anyhow::Error {
    // The environment variable clap reads for `flag`: `--toxiproxy-api` is
    // `WIRELAB_TOXIPROXY_API`.
    let name = flag.trim_start_matches("--").replace('-', "_");
    let env = format!("WIRELAB_{}", name.to_uppercase());
    match e.kind() {
        std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
            "{addr} ({what}) is already in use: choose another address with {flag} or {env}"
        ),
        _ => anyhow::anyhow!("cannot bind {addr} ({what}): {e}; change it with {flag} or {env}"),
    }
}

/// Binds every service and starts the lab; it runs until `shutdown` is cancelled.
pub async fn start(config: Config, shutdown: CancellationToken) -> anyhow::Result<Lab> {
    let dashboard = bind_tcp(config.dashboard, "the dashboard", "--dashboard").await?;
    let http = bind_tcp(config.http, "the HTTP service", "--http").await?;
    let tcp = bind_tcp(config.tcp, "the TCP service", "--tcp").await?;
    let udp =
        udp::bind(config.udp).map_err(|e| bind_error(e, config.udp, "the UDP service", "--udp"))?;
    let ws_service = match config.ws_service.0 {
        Some(addr) => Some(bind_tcp(addr, "the WebSocket service", "--ws-service").await?),
        None => None,
    };
    let ws_service_addr = ws_service.as_ref().map(|l| l.local_addr()).transpose()?;
    let https = match config.https.0 {
        Some(addr) => Some(bind_tcp(addr, "the HTTPS service", "--https").await?),
        None => None,
    };
    let https_addr = https.as_ref().map(|l| l.local_addr()).transpose()?;
    let tls_tcp = match config.tls_tcp.0 {
        Some(addr) => Some(bind_tcp(addr, "the TLS TCP service", "--tls-tcp").await?),
        None => None,
    };
    let tls_tcp_addr = tls_tcp.as_ref().map(|l| l.local_addr()).transpose()?;
    let tls = Arc::new(tls::Tls::new(&config)?);
    let https = https.map(|listener| (listener, tls.clone()));
    if let Some(path) = &tls.ca_file {
        tracing::info!(ca = %path.display(), fingerprint = %tls.ca.fingerprint(), "the lab's CA");
    }
    if let Some(why) = &tls.trouble {
        tracing::error!("{why}");
    }
    let toxiproxy_api = match config.toxiproxy_api.0 {
        Some(addr) => Some(bind_tcp(addr, "toxiproxy's API", "--toxiproxy-api").await?),
        None => None,
    };
    let toxiproxy_api_addr = toxiproxy_api.as_ref().map(|l| l.local_addr()).transpose()?;
    let addrs = (
        dashboard.local_addr()?,
        http.local_addr()?,
        tcp.local_addr()?,
        udp.local_addr()?,
    );

    let token = match (&config.token, config.exposed() || config.api_exposed()) {
        (Some(t), _) => Some(t.clone()),
        (None, true) => Some(web::auth::generate_token().context("making a token")?),
        (None, false) => None,
    };
    let service = |name: &str, addr: SocketAddr, mode: Option<&str>| ServiceInfo {
        name: name.into(),
        addr: addr.to_string(),
        mode: mode.map(Into::into),
    };
    let mut services = vec![
        service("http", addrs.1, None),
        service("tcp", addrs.2, Some(config.tcp_mode.as_str())),
        service("udp", addrs.3, Some(config.udp_mode.as_str())),
        service("ws", addrs.0, None),
    ];
    if let Some(addr) = ws_service_addr {
        services.push(service("ws_service", addr, Some(config.ws_mode.as_str())));
    }
    if let Some(addr) = https_addr {
        services.push(service("https", addr, None));
    }
    if let Some(addr) = tls_tcp_addr {
        services.push(service("tls_tcp", addr, Some(config.tcp_mode.as_str())));
    }
    // The store first: the hub numbers on from the last recorded seq.
    let (store, store_trouble) = store::Store::open(&config).context("opening the store")?;
    let store = Arc::new(store);
    match &store_trouble {
        Some(why) => tracing::error!("{why}"),
        None => tracing::info!(at = %store.location(), last_seq = store.last_seq, "recording"),
    }
    let hub = Arc::new(hub::Hub::new(
        store.last_seq + 1,
        config.backlog,
        config.ws_queue,
    ));
    hub.preload(recent_history(&store, config.backlog));
    let tap = hub.tap(store::writer::TAP_CAP);
    for why in [store_trouble, tls.trouble.clone()].into_iter().flatten() {
        hub.publish(EventKind::Notice {
            level: "error".into(),
            message: why,
        });
    }
    let relays = Arc::new(relay::Relays::new(
        hub.clone(),
        relay::Settings::of(&config),
        shutdown.clone(),
    ));
    for spec in &config.proxies {
        relays
            .create(spec.clone(), true, relay::Origin::Flag)
            .await
            .map_err(|e| anyhow::anyhow!("--proxy {}: {e}", spec.name))?;
    }
    // Each service gets what it uses: the hub, its settings, the shutdown, the bridge.
    let (bridge, bridged) = bridge::Bridge::new(config.bridge, hub.clone());
    let tcp_service = Arc::new(tcp::Tcp::new(
        &config,
        hub.clone(),
        bridge.clone(),
        shutdown.clone(),
        relays.services.tcp.clone(),
    ));
    let udp_service = Arc::new(udp::Udp::new(
        udp,
        &config,
        hub.clone(),
        bridge.clone(),
        relays.services.udp.clone(),
    ));
    let http_service = Arc::new(http::Http::new(
        &config,
        hub.clone(),
        shutdown.clone(),
        relays.services.http.clone(),
    ));
    let ws_service_handle = Arc::new(wsservice::WsService::new(
        &config,
        hub.clone(),
        shutdown.clone(),
    ));
    let pool = Arc::new(pool::Pool::new(
        hub.clone(),
        config.allow_outbound,
        shutdown.clone(),
    ));
    let app = Arc::new(App {
        tcp: tcp_service.clone(),
        udp: udp_service.clone(),
        http: http_service.clone(),
        pool,
        ws: ws::Clients::default(),
        ws_service: ws_service_handle.clone(),
        bridge,
        relays: relays.clone(),
        tls: tls.clone(),
        hub: hub.clone(),
        store: store.clone(),
        services,
        token,
        metrics: web::metrics::Metrics::default(),
        shutdown: shutdown.clone(),
        config,
    });

    match app.udp.rcvbuf() {
        n if n < udp::RCVBUF_WANTED => tracing::warn!(
            "udp: the kernel granted a {n}-byte receive buffer, not the {} asked for; raise \
             net.core.rmem_max or bursts may be dropped",
            udp::RCVBUF_WANTED
        ),
        n => tracing::info!("udp: {n}-byte receive buffer"),
    }

    let tasks = TaskTracker::new();
    let hub_task = tasks.spawn(hub.clone().run(shutdown.clone()));
    // The writer stops after the hub's last flush, so that is recorded too.
    let hub_done = async move {
        let _ = hub_task.await;
    };
    tasks.spawn(store::writer::run(
        store.clone(),
        hub.clone(),
        tap,
        hub_done,
    ));
    tasks.spawn(store::retention::run(store.clone(), shutdown.clone()));
    tasks.spawn(state_ticker(app.clone(), shutdown.clone()));
    if let Some(rx) = bridged {
        let (to_tcp, to_udp) = (tcp_service.clone(), udp_service.clone());
        let peers = bridge::Peers {
            tcp: Box::new(move |except, bytes| to_tcp.relay(except, bytes)),
            udp: Box::new(move |except, bytes| to_udp.relay(except, bytes)),
            hub: hub.clone(),
        };
        tasks.spawn(bridge::run(rx, peers, shutdown.clone()));
    }
    tasks.spawn(udp::run(udp_service, shutdown.clone()));
    if let Some(listener) = tls_tcp {
        let front = tls::tcp::run(listener, tls.clone(), tcp_service.clone(), shutdown.clone());
        tasks.spawn(front);
    }
    tasks.spawn(tcp::run(tcp, tcp_service, shutdown.clone()));
    tasks.spawn(http::run(
        http,
        http_service.clone(),
        None,
        shutdown.clone(),
    ));
    if let Some((listener, tls)) = https {
        tasks.spawn(http::run(
            listener,
            http_service,
            Some(tls),
            shutdown.clone(),
        ));
    }
    if let Some(listener) = ws_service {
        tasks.spawn(wsservice::run(
            listener,
            ws_service_handle,
            shutdown.clone(),
        ));
    }
    if let Some(listener) = toxiproxy_api {
        let token = app
            .config
            .api_exposed()
            .then(|| app.token.clone())
            .flatten();
        let api = relay::toxiproxy::run(listener, relays.clone(), token, shutdown.clone());
        tasks.spawn(api);
    }
    let stop = shutdown.clone();
    tasks.spawn(async move {
        stop.cancelled().await;
        relays.tasks.close();
        relays.tasks.wait().await;
    });
    let router = web::router(app.clone());
    let stop = shutdown.clone();
    let dashboard_tls = app.config.dashboard_tls();
    let (dashboard, dashboard_tls_listener) = if dashboard_tls {
        let listener = tls::listener::TlsListener::new(dashboard, tls.clone(), shutdown.clone())?;
        (None, Some(listener))
    } else {
        (Some(dashboard), None)
    };
    tasks.spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let served = match (dashboard, dashboard_tls_listener) {
            // No Nagle on the push channel: a frame written while the previous one is
            // still unacknowledged would otherwise wait for the client's delayed ACK (40 ms
            // on Linux), which was the fan-out's p99 at every rate.
            (Some(plain), _) => {
                let plain = plain.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(plain, service)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
            }
            // Its connections come with no Nagle and their handshake done; `tap_io` is
            // what gives axum the client's address.
            (None, Some(tls)) => {
                axum::serve(tls.tap_io(|_| {}), service)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
            }
            (None, None) => Ok(()),
        };
        if let Err(e) = served {
            tracing::error!("dashboard server failed: {e}");
        }
    });
    Ok(Lab {
        app,
        dashboard: addrs.0,
        http: addrs.1,
        tcp: addrs.2,
        udp: addrs.3,
        ws_service: ws_service_addr,
        https: https_addr,
        tls_tcp: tls_tcp_addr,
        dashboard_tls,
        toxiproxy_api: toxiproxy_api_addr,
        tasks,
    })
}

/// The newest `n` recorded events, newest first (nothing when the store can't be read).
fn recent_history(store: &store::Store, n: usize) -> Vec<wirelab_shared::Event> {
    let newest = store::query::Filter::default();
    let page =
        store.read_blocking(|c| store::query::page(c, &newest, store::query::Order::Desc, n));
    match page {
        Ok(Ok(page)) => page
            .events
            .iter()
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect(),
        _ => Vec::new(),
    }
}

/// Pushes the current state to every client once a second (when any is connected), and
/// lets go of a shared snapshot no client can take any more. Only
/// dashboards get the WebSocket client list: the frame goes to every client, so with 1,000
/// clients the list (100 entries, ~20 KB) made 20 MB a second that only dashboards show.
async fn state_ticker(app: Arc<App>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        app.ws.forget_stale_snapshot();
        if app.hub.subscribers() > 0 {
            let mut state = Box::new(app.lab_state());
            let full = ServerMsg::State(state.clone());
            state.ws = Vec::new();
            let others = ServerMsg::State(state);
            app.hub
                .broadcast(hub::Frame::for_dashboards(&full, &others));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bind_error_names_the_flag_and_its_environment_variable() {
        let addr: SocketAddr = "127.0.0.1:8474".parse().unwrap();
        let in_use = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let said = bind_error(in_use, addr, "toxiproxy's API", "--toxiproxy-api").to_string();
        assert!(
            said.contains("--toxiproxy-api or WIRELAB_TOXIPROXY_API"),
            "{said}"
        );
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let said = bind_error(denied, addr, "the WebSocket service", "--ws-service").to_string();
        assert!(said.contains("WIRELAB_WS_SERVICE"), "{said}");
    }
}
