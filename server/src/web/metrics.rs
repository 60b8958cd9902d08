//! `GET /metrics`: the counters in Prometheus text format, through the `metrics` crates.
//!
//! Each lab has its own recorder (no global one), so several labs in one process — the
//! tests — don't mix their figures. Values are read from the lab's atomics at scrape time,
//! every series at every scrape; a series not written for [`IDLE`] (a removed toxic's) is
//! dropped, so the recorder holds what exists, not everything that ever did.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge, with_local_recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use metrics_util::MetricKindMask;

use crate::app::App;
use crate::web::auth;

/// The lab's Prometheus recorder.
pub struct Metrics {
    recorder: PrometheusRecorder,
}

/// A series not written for this long is dropped at the next scrape. Each scrape writes
/// every live series just before it renders them, so only gone ones are that old.
const IDLE: Duration = Duration::from_secs(1);

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            recorder: PrometheusBuilder::new()
                .idle_timeout(MetricKindMask::ALL, Some(IDLE))
                .build_recorder(),
        }
    }
}

impl Metrics {
    /// Renders the lab's figures now.
    pub fn render(&self, app: &App) -> String {
        let c = app.hub.counters.snapshot();
        let clients = app.ws.infos();
        with_local_recorder(&self.recorder, || {
            let totals = [
                ("wirelab_events_total", "", c.events),
                ("wirelab_events_dropped_total", "", c.events_dropped),
                ("wirelab_connections_total", "tcp", c.tcp_conns),
                ("wirelab_connections_total", "http", c.http_conns),
                ("wirelab_connections_total", "ws", c.ws_clients),
                (
                    "wirelab_connections_total",
                    "ws_service",
                    c.ws_service_clients,
                ),
                ("wirelab_refused_total", "tcp", c.tcp_refused),
                ("wirelab_refused_total", "http", c.http_refused),
                ("wirelab_refused_total", "ws", c.ws_refused),
                ("wirelab_refused_total", "ws_service", c.ws_service_refused),
                ("wirelab_dropped_total", "ws_service", c.ws_service_dropped),
                ("wirelab_dropped_bytes_total", "tcp", c.tcp_bytes_dropped),
                ("wirelab_dropped_bytes_total", "bridge", c.bridge_dropped),
                ("wirelab_dropped_total", "faults", c.fault_dropped),
                ("wirelab_connections_total", "relay", c.relay_conns),
                ("wirelab_refused_total", "relay", c.relay_refused),
                ("wirelab_bytes_in_total", "tcp", c.tcp_bytes_in),
                ("wirelab_bytes_in_total", "udp", c.udp_bytes_in),
                ("wirelab_bytes_in_total", "http", c.http_bytes_in),
                ("wirelab_bytes_in_total", "ws", c.ws_bytes_in),
                ("wirelab_bytes_out_total", "tcp", c.tcp_bytes_out),
                ("wirelab_bytes_out_total", "udp", c.udp_bytes_out),
                ("wirelab_bytes_out_total", "http", c.http_bytes_out),
                ("wirelab_bytes_out_total", "ws", c.ws_bytes_out),
                ("wirelab_datagrams_in_total", "udp", c.udp_dgrams_in),
                ("wirelab_datagrams_out_total", "udp", c.udp_dgrams_out),
                ("wirelab_send_errors_total", "udp", c.udp_send_errors),
                ("wirelab_peers_evicted_total", "udp", c.udp_peers_evicted),
                ("wirelab_requests_total", "http", c.http_requests),
                ("wirelab_frames_in_total", "ws", c.ws_frames_in),
                ("wirelab_frames_out_total", "ws", c.ws_frames_out),
                ("wirelab_slow_closed_total", "ws", c.ws_slow_closed),
                ("wirelab_missed_events_total", "ws", c.ws_missed),
                ("wirelab_stored_total", "", c.stored),
                ("wirelab_store_errors_total", "", c.store_errors),
            ];
            for (name, service, value) in totals {
                if service.is_empty() {
                    counter!(name).absolute(value);
                } else {
                    counter!(name, "service" => service).absolute(value);
                }
            }
            gauge!("wirelab_open_connections", "service" => "tcp").set(app.tcp.open_count() as f64);
            gauge!("wirelab_udp_peers").set(app.udp.peers().len() as f64);
            for class in ["dashboard", "plain"] {
                let of_class = || {
                    clients
                        .iter()
                        .filter(|x| x.dashboard == (class == "dashboard"))
                };
                gauge!("wirelab_ws_clients", "class" => class).set(of_class().count() as f64);
                let missed: u64 = of_class().map(|x| x.missed).sum();
                let lagged: u64 = of_class().map(|x| x.lagged).sum();
                gauge!("wirelab_ws_missed_events", "class" => class).set(missed as f64);
                gauge!("wirelab_ws_lagged", "class" => class).set(lagged as f64);
            }
            toxics(app);
        });
        self.recorder.handle().render()
    }
}

/// Each toxic's figures, labelled by proxy and toxic (a removed toxic's series go at the
/// first scrape a second after it).
fn toxics(app: &App) {
    let services = app
        .relays
        .services
        .named()
        .map(|(n, t)| (n.to_owned(), t.clone()));
    let proxies = app
        .relays
        .all()
        .into_iter()
        .map(|p| (p.name.clone(), p.toxics.clone()));
    for (proxy, toxics) in services.into_iter().chain(proxies) {
        for entry in toxics.list() {
            let t = entry.info();
            let figures = [
                ("wirelab_toxic_connections_total", t.conns),
                ("wirelab_toxic_spared_total", t.spared),
                ("wirelab_toxic_bytes_total", t.bytes),
                ("wirelab_toxic_dropped_bytes_total", t.dropped),
                ("wirelab_toxic_ended_total", t.cuts),
                ("wirelab_toxic_acted_total", t.acted),
            ];
            for (name, value) in figures {
                let labels = [("proxy", proxy.clone()), ("toxic", t.name.clone())];
                counter!(name, &labels).absolute(value);
            }
        }
    }
}

/// The handler; needs the token when the lab has one.
pub async fn handler(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(refusal) = auth::check_token(&app, &headers, None) {
        return refusal;
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(&app),
    )
        .into_response()
}
