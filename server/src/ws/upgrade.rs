//! `GET /ws`: the checks before a client is let in, then the hand-over to its pump.
//!
//! - Origin: a browser page may connect only from the lab's own origin or one given with
//!   `--allow-origin` (against cross-site WebSocket hijacking). Clients that send no
//!   Origin (websocat, scripts) are not browsers and pass.
//! - Token: when the lab has one (exposed, or `--token`), `?token=` or
//!   `Authorization: Bearer` must match.
//! - The client limit: past it, 503 with a message.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::app::App;
use crate::hub::{counters::add, now_us};
use crate::web::auth;
use crate::ws::ClientStats;

/// The query string of `/ws`.
#[derive(Deserialize, Default)]
pub struct WsQuery {
    /// Resume after this `seq` (the last one the client saw).
    pub since: Option<u64>,
    /// The lab's token, when it has one.
    pub token: Option<String>,
}

/// The upgrade handler.
pub async fn handler(
    ws: WebSocketUpgrade,
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = auth::check_origin(&app, &headers) {
        return refusal;
    }
    if let Err(refusal) = auth::check_token(&app, &headers, query.token.as_deref()) {
        return refusal;
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(256)
        .collect();
    let stats = ClientStats {
        peer: peer.to_string(),
        user_agent,
        dashboard: headers.contains_key(header::ORIGIN),
        since_us: now_us(),
        ..Default::default()
    };
    let Some(stats) = app.ws.join(app.config.max_ws_clients, stats) else {
        add(&app.hub.counters.ws_refused, 1);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many WebSocket clients: the limit is {} (--max-ws-clients)\n",
                app.config.max_ws_clients
            ),
        )
            .into_response();
    };
    let max = app.config.max_ws_message;
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(max.max(1 << 20) * 4)
        .max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade({
            let (app, id) = (app.clone(), stats.id);
            move |e| {
                tracing::debug!("websocket upgrade failed: {e}");
                app.ws.leave(id);
            }
        })
        .on_upgrade(move |socket| async move {
            let id = stats.id;
            let (sink, stream) = futures_util::StreamExt::split(socket);
            crate::ws::pump::run(app.clone(), stats, sink, stream, query.since).await;
            app.ws.leave(id);
        })
}
