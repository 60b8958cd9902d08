//! `GET /ws`: the checks before a client is let in, the upgrade, then the hand-over to
//! its pump.
//!
//! - The upgrade itself (RFC 6455 4.2): `GET` with `Upgrade: websocket`,
//!   `Connection: upgrade`, `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key`, else
//!   400 (426 for another version) saying which is missing; then 101 and the connection
//!   becomes a [`socket`](super::socket).
//! - Origin: a browser page may connect only from the lab's own origin or one given with
//!   `--allow-origin` (against cross-site WebSocket hijacking). Clients that send no
//!   Origin (websocat, scripts) are not browsers and pass.
//! - Token: when the lab has one (exposed, or `--token`), `?token=` or
//!   `Authorization: Bearer` must match.
//! - The client limit: past it, 503 with a message.
//! - permessage-deflate: agreed when the client offers it in a form we can honour and
//!   `--ws-compress` is not `off` ([`deflate`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use sha1::{Digest, Sha1};

use crate::app::App;
use crate::hub::{counters::add, now_us};
use crate::web::auth;
use crate::ws::deflate::{self, Policy};
use crate::ws::{ClientStats, socket};

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
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<WsQuery>,
    mut req: Request,
) -> Response {
    let accept = match check_upgrade(req.method(), req.headers()) {
        Ok(accept) => accept,
        Err((status, why)) => return refuse(status, why),
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<OnUpgrade>() else {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded to a WebSocket (HTTP/1.1 is needed)",
        );
    };
    let headers = req.headers();
    if let Err(refusal) = auth::check_origin(&app, headers) {
        return refusal;
    }
    if let Err(refusal) = auth::check_token(&app, headers, query.token.as_deref()) {
        return refusal;
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(256)
        .collect();
    let agreed = (app.config.ws_compress != Policy::Off)
        .then(|| deflate::negotiate(offers(headers), false))
        .flatten();
    let deflate = agreed.is_some();
    let stats = ClientStats {
        peer: peer.to_string(),
        user_agent,
        dashboard: headers.contains_key(header::ORIGIN),
        deflate,
        loopback: peer.ip().to_canonical().is_loopback(),
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
    let since = query.since;
    tokio::spawn(async move {
        let id = stats.id;
        match on_upgrade.await {
            Ok(upgraded) => {
                // axum's server hands over its own wrapper of the TcpStream (private to
                // hyper-util), so the upgraded connection is used as it is.
                let (sink, stream) = socket::split(TokioIo::new(upgraded), max, deflate);
                crate::ws::pump::run(app.clone(), stats, sink, stream, since).await;
            }
            Err(e) => tracing::debug!("websocket upgrade failed: {e}"),
        }
        app.ws.leave(id);
    });
    let mut switching = (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (header::SEC_WEBSOCKET_ACCEPT, accept),
        ],
    )
        .into_response();
    if let Some(agreed) = agreed
        && let Ok(value) = HeaderValue::from_str(&agreed.response())
    {
        switching
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
    }
    switching
}

/// The request's extension offers (`Sec-WebSocket-Extensions`, every line).
pub fn offers(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
}

/// A plain-text refusal; a 426 also names the protocol and version to upgrade to.
fn refuse(status: StatusCode, why: &str) -> Response {
    let mut refusal = (status, format!("{why}\n")).into_response();
    if status == StatusCode::UPGRADE_REQUIRED {
        let h = refusal.headers_mut();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
    }
    refusal
}

/// Whether the request asks for a WebSocket as RFC 6455 says: its `Sec-WebSocket-Accept`
/// if so, else the status and why. The WebSocket service checks its requests with it
/// too.
pub fn check_upgrade(
    method: &Method,
    headers: &HeaderMap,
) -> Result<HeaderValue, (StatusCode, &'static str)> {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if method != Method::GET {
        return Err((
            StatusCode::METHOD_NOT_ALLOWED,
            "a WebSocket upgrade must be a GET",
        ));
    }
    if !has(header::UPGRADE, "websocket") {
        return Err((
            StatusCode::BAD_REQUEST,
            "this is the WebSocket endpoint: the request needs `Upgrade: websocket`",
        ));
    }
    if !has(header::CONNECTION, "upgrade") {
        return Err((
            StatusCode::BAD_REQUEST,
            "a WebSocket upgrade needs `Connection: upgrade`",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 is spoken: the request needs `Sec-WebSocket-Version: 13`",
        ));
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "a WebSocket upgrade needs a `Sec-WebSocket-Key`",
        ));
    };
    Ok(accept_key(key.as_bytes()))
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 4.2.2).
fn accept_key(key: &[u8]) -> HeaderValue {
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    let b64 = base64::engine::general_purpose::STANDARD.encode(sha1.finalize());
    HeaderValue::from_str(&b64).expect("base64 is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_the_one_of_rfc_6455() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn a_request_that_is_not_an_upgrade_says_what_it_lacks() {
        let mut h = HeaderMap::new();
        let status = |m: &Method, h: &HeaderMap| check_upgrade(m, h).unwrap_err().0;
        assert_eq!(status(&Method::GET, &h), StatusCode::BAD_REQUEST);
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert_eq!(status(&Method::GET, &h), StatusCode::UPGRADE_REQUIRED);
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        assert_eq!(status(&Method::GET, &h), StatusCode::BAD_REQUEST);
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        assert_eq!(status(&Method::POST, &h), StatusCode::METHOD_NOT_ALLOWED);
        assert!(check_upgrade(&Method::GET, &h).is_ok());
    }
}
