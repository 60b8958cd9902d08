//! The shared state of a running lab: configuration, the hub, and a handle on each
//! service, for what acts on all of them: the page's commands, the API, the once-a-second
//! `state`. The services themselves do not hold it: each holds what it uses (the hub, its
//! settings, the shutdown token, the bridge).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use wirelab_shared::{LabState, ServiceInfo};

use crate::config::Config;
use crate::hub::{Hub, now_us};
use crate::{http, pool, store, tcp, udp, ws, wsservice};

/// See the module docs.
pub struct App {
    pub config: Config,
    pub hub: Arc<Hub>,
    pub tcp: Arc<tcp::Tcp>,
    pub udp: Arc<udp::Udp>,
    pub http: Arc<http::Http>,
    pub pool: Arc<pool::Pool>,
    pub ws: ws::Clients,
    /// `--bridge`: what the chat says goes to the TCP clients and UDP peers too.
    pub bridge: crate::bridge::Bridge,
    /// The WebSocket service (`--ws-service`); idle when it is `off`.
    pub ws_service: Arc<wsservice::WsService>,
    /// The lab's CA and the names its TLS services answer to.
    pub tls: Arc<crate::tls::Tls>,
    /// Relay mode's proxies.
    pub relays: Arc<crate::relay::Relays>,
    /// The recorded history (on disk, or in memory with `--ephemeral`).
    pub store: Arc<store::Store>,
    /// The services and their real addresses (after binding port 0), for `hello`.
    pub services: Vec<ServiceInfo>,
    /// The token `/ws` and `/api` ask for, when the lab is exposed or one was given.
    pub token: Option<String>,
    /// The Prometheus recorder behind `/metrics`.
    pub metrics: crate::web::metrics::Metrics,
    /// Cancelled when the lab stops; long-lived tasks watch it.
    pub shutdown: CancellationToken,
}

impl App {
    /// The current picture, for `snapshot` and the once-a-second `state`.
    pub fn lab_state(&self) -> LabState {
        LabState {
            ts_us: now_us(),
            tcp: self.tcp.infos(),
            udp: self.udp.peers(),
            ws: state_ws(self.ws.infos()),
            ws_service: self.ws_service.infos(),
            http: self.http.conns(),
            pool: self.pool.status(),
            proxies: self.relays.infos(),
            counters: self.hub.counters.snapshot(),
        }
    }

    /// Where the lab's own HTTP service can be reached from the lab itself: its bound
    /// address, with an unspecified IP (`0.0.0.0`, `::`) replaced by loopback.
    pub fn http_addr(&self) -> Result<SocketAddr, String> {
        let addr: SocketAddr = self
            .services
            .iter()
            .find(|s| s.name == "http")
            .and_then(|s| s.addr.parse().ok())
            .ok_or("the HTTP service has no address")?;
        Ok(crate::tcp::reachable(addr))
    }
}

/// WebSocket clients listed in `state` (and the snapshot's state) at most: the frame goes to
/// every client once a second, so listing them all made it O(clients²) bytes a second (1 MB
/// a frame, to each of 5,000 clients). Dashboards come first, then the newest; `/metrics`
/// still counts them all.
pub const STATE_WS_MAX: usize = 100;

fn state_ws(mut ws: Vec<wirelab_shared::WsClientInfo>) -> Vec<wirelab_shared::WsClientInfo> {
    if ws.len() > STATE_WS_MAX {
        ws.sort_by_key(|c| {
            (
                std::cmp::Reverse(c.dashboard),
                std::cmp::Reverse(c.since_us),
            )
        });
        ws.truncate(STATE_WS_MAX);
        ws.sort_by_key(|c| c.id);
    }
    ws
}
