//! The shared state of a running lab: configuration, the hub, and a handle on each
//! service. Every task holds an `Arc<App>`.

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
    pub tcp: tcp::Tcp,
    pub udp: udp::Udp,
    pub http: http::Http,
    pub pool: pool::Pool,
    pub ws: ws::Clients,
    /// The WebSocket service (`--ws-service`); idle when it is `off`.
    pub ws_service: wsservice::WsService,
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

    /// What a peer sends to the lab's chat-like surfaces, with `--bridge`, goes to the
    /// other services too. `from` names the source so it is not sent back to itself.
    pub fn bridge(&self, from: bridge::Source, bytes: &[u8]) {
        if self.config.bridge {
            bridge::relay(self, from, bytes);
        }
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

pub mod bridge {
    //! `--bridge`: TCP clients, UDP peers and the WebSocket chat hear each other.

    use wirelab_shared::EventKind;

    use super::App;

    /// Where bridged bytes came from.
    #[derive(Debug, Clone, Copy)]
    pub enum Source {
        Tcp(u64),
        Udp(std::net::SocketAddr),
        Chat,
    }

    /// Sends `bytes` from `from` to the other two services.
    pub fn relay(app: &App, from: Source, bytes: &[u8]) {
        if !matches!(from, Source::Tcp(_)) {
            let except = None;
            app.tcp.relay(except, bytes);
        }
        if !matches!(from, Source::Udp(_)) {
            app.udp.relay(None, bytes);
        }
        if !matches!(from, Source::Chat) {
            let who = match from {
                Source::Tcp(conn) => format!("tcp#{conn}"),
                Source::Udp(peer) => format!("udp {peer}"),
                Source::Chat => unreachable!("chat is not bridged to itself"),
            };
            app.hub.publish(EventKind::Chat {
                from: who,
                text: String::from_utf8_lossy(bytes).trim_end().to_owned(),
            });
        }
    }
}
