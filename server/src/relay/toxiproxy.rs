//! toxiproxy's HTTP API (its paths, JSON fields, status codes and error bodies, as in
//! Shopify/toxiproxy's `api.go`), on its own listener (`--toxiproxy-api`, default
//! `127.0.0.1:8474`, toxiproxy's port), so that the clients people already use
//! (toxiproxy-python, toxiproxy-node-client, toxiproxy-cli) drive relay mode unchanged.
//!
//! - `GET /proxies`, `POST /proxies`, `POST /populate`, `GET|POST|PATCH|DELETE
//!   /proxies/{name}`, `GET|POST /proxies/{name}/toxics`, `GET|POST|PATCH|DELETE
//!   /proxies/{name}/toxics/{toxic}`, `POST /reset` (every toxic removed, every proxy
//!   enabled), `GET /version`.
//! - A proxy is `{"name","listen","upstream","enabled","toxics":[]}` plus wirelab's
//!   `protocol` (`tcp` when left out). `listen` with port 0 is answered with the real
//!   port; an empty `listen` means `127.0.0.1:0` (toxiproxy would listen on every
//!   address).
//! - Errors are toxiproxy's: `{"error":"proxy not found","status":404}`; an upstream off
//!   loopback without `--allow-outbound` is 403.
//! - A toxic is toxiproxy's `{"attributes","name","type","stream","toxicity"}`
//!   ([`crate::faults::toxic`]); creating one answers 200, as toxiproxy does. Its errors:
//!   400 `bad request body: ...`, `invalid toxic type`, `stream was invalid, ...`; 409
//!   `toxic already exists`; 404 `toxic not found`. `stream` also takes `both`.
//! - As toxiproxy, a request whose `User-Agent` starts with `Mozilla/` (a browser) is
//!   refused with 403: a web page must not be able to make proxies on this machine.
//! - No token (toxiproxy's clients cannot send one), so by default it binds loopback
//!   only. On another address it asks for the lab's token (`?token=` or `Authorization:
//!   Bearer`) and says so.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wirelab_shared::ProxyProtocol;

use super::faults::ToxicOpError;
use super::{Origin, Proxy, ProxySpec, RelayError, Relays};
use crate::faults::Entry;
use crate::faults::toxic::ToxicJson;

/// The toxiproxy version whose API this follows, as `/version` reports it.
pub const API_VERSION: &str = "2.12.0";

/// What the handlers share.
#[derive(Clone)]
struct Api {
    /// The proxies.
    relays: Arc<Relays>,
    /// Needed on every request when the listener is off loopback.
    token: Option<Arc<str>>,
}

/// Serves the API on `listener` until `shutdown`. `token` is asked for on every request
/// (pass it when the listener is off loopback).
pub async fn run(
    listener: TcpListener,
    relays: Arc<Relays>,
    token: Option<String>,
    shutdown: CancellationToken,
) {
    let api = Api {
        relays,
        token: token.map(Into::into),
    };
    if let Err(e) = axum::serve(listener, router(api))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::error!("toxiproxy API failed: {e}");
    }
}

fn router(api: Api) -> Router {
    Router::new()
        .route("/reset", post(reset))
        .route("/proxies", get(index).post(create))
        .route("/populate", post(populate))
        .route(
            "/proxies/{proxy}",
            get(show).post(update).patch(update).delete(delete),
        )
        .route("/proxies/{proxy}/toxics", get(toxics).post(toxic_create))
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(toxic_show)
                .post(toxic_update)
                .patch(toxic_update)
                .delete(toxic_delete),
        )
        .route("/version", get(version))
        .layer(middleware::from_fn_with_state(api.clone(), guard))
        .with_state(api)
}

/// toxiproxy's browser check, then the token when one is needed.
async fn guard(State(api): State<Api>, req: Request, next: Next) -> Response {
    let ua = req.headers().get(header::USER_AGENT);
    if ua.is_some_and(|v| v.as_bytes().starts_with(b"Mozilla/")) {
        return (StatusCode::FORBIDDEN, "User agent not allowed\n").into_response();
    }
    if let Some(want) = &api.token {
        let given = given_token(req.headers(), req.uri().query());
        if !crate::web::auth::constant_time_eq(given.as_bytes(), want.as_bytes()) {
            return error(
                StatusCode::UNAUTHORIZED,
                "this toxiproxy API listens off loopback, so it needs the lab's token: \
                 ?token=... or Authorization: Bearer ..."
                    .into(),
            );
        }
    }
    next.run(req).await
}

fn given_token<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> &'a str {
    let from_query = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    from_query.or(bearer).unwrap_or("")
}

/// toxiproxy's error body: `{"error": ..., "status": ...}`.
fn error(status: StatusCode, message: String) -> Response {
    #[derive(Serialize)]
    struct Body {
        error: String,
        status: u16,
    }
    let body = Body {
        error: message,
        status: status.as_u16(),
    };
    json(status, &body)
}

fn json(status: StatusCode, body: &impl Serialize) -> Response {
    let text = serde_json::to_string(body).expect("API bodies serialize");
    (status, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

fn relay_error(e: RelayError) -> Response {
    error(status_of(&e), e.to_string())
}

/// toxiproxy's status for `e`.
fn status_of(e: &RelayError) -> StatusCode {
    match e {
        RelayError::NotFound => StatusCode::NOT_FOUND,
        RelayError::Exists => StatusCode::CONFLICT,
        RelayError::Invalid(_) => StatusCode::BAD_REQUEST,
        RelayError::Forbidden(_) => StatusCode::FORBIDDEN,
        RelayError::Bind(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn bad_body(e: serde_json::Error) -> Response {
    error(StatusCode::BAD_REQUEST, format!("bad request body: {e}"))
}

fn missing(field: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        format!("missing required field: {field}"),
    )
}

/// A proxy as toxiproxy shows it, plus `protocol`.
#[derive(Serialize)]
struct ProxyJson {
    name: String,
    listen: String,
    upstream: String,
    enabled: bool,
    /// As toxiproxy lists them: upstream, then downstream (then wirelab's `both`).
    toxics: Vec<ToxicJson>,
    protocol: ProxyProtocol,
}

impl ProxyJson {
    fn of(p: &Proxy) -> ProxyJson {
        let spec = p.spec();
        ProxyJson {
            name: spec.name,
            listen: spec.listen,
            upstream: spec.upstream,
            enabled: p.enabled(),
            toxics: toxics_json(&p.toxics.list()),
            protocol: p.protocol,
        }
    }
}

/// A proxy as a client sends it; every field may be left out.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ProxyInput {
    name: String,
    listen: Option<String>,
    upstream: Option<String>,
    enabled: Option<bool>,
    protocol: Option<ProxyProtocol>,
}

impl ProxyInput {
    fn spec(&self) -> ProxySpec {
        ProxySpec {
            name: self.name.clone(),
            protocol: self.protocol.unwrap_or_default(),
            listen: match self.listen.as_deref() {
                None | Some("") => "127.0.0.1:0".into(),
                Some(l) => l.into(),
            },
            upstream: self.upstream.clone().unwrap_or_default(),
        }
    }
}

async fn index(State(api): State<Api>) -> Response {
    let all: BTreeMap<String, ProxyJson> = api
        .relays
        .all()
        .iter()
        .map(|p| (p.name.clone(), ProxyJson::of(p)))
        .collect();
    json(StatusCode::OK, &all)
}

async fn create(State(api): State<Api>, body: Bytes) -> Response {
    let input: ProxyInput = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => return bad_body(e),
    };
    if input.name.is_empty() {
        return missing("name");
    }
    if input.upstream.as_deref().unwrap_or("").is_empty() {
        return missing("upstream");
    }
    let enabled = input.enabled.unwrap_or(true);
    match api
        .relays
        .create(input.spec(), enabled, Origin::Remote)
        .await
    {
        Ok(p) => json(StatusCode::CREATED, &ProxyJson::of(&p)),
        Err(e) => relay_error(e),
    }
}

/// toxiproxy's `/populate`: every proxy is checked before any is applied (names, fields,
/// addresses, protocol, an upstream off loopback), and every error, even one met while
/// applying (a listen address that cannot be bound), has toxiproxy's populate body:
/// `{"error": ..., "status": ..., "proxies": null}`.
async fn populate(State(api): State<Api>, body: Bytes) -> Response {
    #[derive(Serialize)]
    struct Answer {
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        proxies: Option<Vec<ProxyJson>>,
    }
    let failed = |status: StatusCode, message: String| {
        let answer = Answer {
            error: Some(message),
            status: Some(status.as_u16()),
            proxies: None,
        };
        json(status, &answer)
    };
    let inputs: Vec<ProxyInput> = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => return failed(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
    };
    // Everything is checked before anything changes, as toxiproxy does.
    let mut names = std::collections::HashSet::new();
    for (i, input) in inputs.iter().enumerate() {
        if input.name.is_empty() {
            let why = format!("missing required field: name at proxy {}", i + 1);
            return failed(StatusCode::BAD_REQUEST, why);
        }
        if input.upstream.as_deref().unwrap_or("").is_empty() {
            let why = format!("missing required field: upstream at proxy {}", i + 1);
            return failed(StatusCode::BAD_REQUEST, why);
        }
        if !names.insert(input.name.as_str()) {
            let why = format!("duplicate proxy name {:?}", input.name);
            return failed(StatusCode::INTERNAL_SERVER_ERROR, why);
        }
        if let Err(e) = api.relays.check_remote(&input.spec()).await {
            return failed(status_of(&e), e.to_string());
        }
    }
    let mut done = Vec::new();
    for input in inputs {
        let spec = input.spec();
        let enabled = input.enabled.unwrap_or(true);
        // An existing proxy with the same addresses is kept; with others, changed in place
        // (a new listen address is bound once the old one is closed); with another
        // protocol, replaced.
        let result = match api.relays.get(&spec.name) {
            Ok(old) if old.protocol == spec.protocol => {
                let (listen, upstream) = (Some(spec.listen), Some(spec.upstream));
                api.relays
                    .update(&spec.name, listen, upstream, Some(enabled))
                    .await
            }
            Ok(_) => {
                let _ = api.relays.remove(&spec.name);
                api.relays.create(spec, enabled, Origin::Remote).await
            }
            Err(_) => api.relays.create(spec, enabled, Origin::Remote).await,
        };
        match result {
            Ok(p) => done.push(ProxyJson::of(&p)),
            Err(e) => return failed(status_of(&e), e.to_string()),
        }
    }
    let answer = Answer {
        error: None,
        status: None,
        proxies: Some(done),
    };
    json(StatusCode::CREATED, &answer)
}

async fn show(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match api.relays.get(&name) {
        Ok(p) => json(StatusCode::OK, &ProxyJson::of(&p)),
        Err(e) => relay_error(e),
    }
}

async fn update(State(api): State<Api>, Path(name): Path<String>, body: Bytes) -> Response {
    if let Err(e) = api.relays.get(&name) {
        return relay_error(e);
    }
    let input: ProxyInput = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => return bad_body(e),
    };
    let listen = input.listen.filter(|l| !l.is_empty());
    let upstream = input.upstream.filter(|u| !u.is_empty());
    match api
        .relays
        .update(&name, listen, upstream, input.enabled)
        .await
    {
        Ok(p) => json(StatusCode::OK, &ProxyJson::of(&p)),
        Err(e) => relay_error(e),
    }
}

async fn delete(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match api.relays.remove(&name) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => relay_error(e),
    }
}

async fn reset(State(api): State<Api>) -> Response {
    match api.relays.reset().await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => relay_error(e),
    }
}

async fn version() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        format!("{{\"version\": \"{API_VERSION}\"}}\n"),
    )
        .into_response()
}

async fn toxics(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match api.relays.toxics(&name) {
        Ok(list) => json(StatusCode::OK, &toxics_json(&list)),
        Err(e) => toxic_error(e),
    }
}

/// toxiproxy answers a new toxic with 200 (not 201) and the toxic.
async fn toxic_create(State(api): State<Api>, Path(name): Path<String>, body: Bytes) -> Response {
    match api.relays.toxic_add(&name, &body) {
        Ok(entry) => json(StatusCode::OK, &entry.toxic.json()),
        Err(e) => toxic_error(e),
    }
}

async fn toxic_show(
    State(api): State<Api>,
    Path((name, toxic)): Path<(String, String)>,
) -> Response {
    match api.relays.toxic(&name, &toxic) {
        Ok(entry) => json(StatusCode::OK, &entry.toxic.json()),
        Err(e) => toxic_error(e),
    }
}

/// PATCH (and toxiproxy's deprecated POST): `attributes` and `toxicity` only.
async fn toxic_update(
    State(api): State<Api>,
    Path((name, toxic)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    match api.relays.toxic_update(&name, &toxic, &body) {
        Ok(entry) => json(StatusCode::OK, &entry.toxic.json()),
        Err(e) => toxic_error(e),
    }
}

async fn toxic_delete(
    State(api): State<Api>,
    Path((name, toxic)): Path<(String, String)>,
) -> Response {
    match api.relays.toxic_remove(&name, &toxic) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => toxic_error(e),
    }
}

fn toxic_error(e: ToxicOpError) -> Response {
    match e {
        ToxicOpError::Proxy(e) => relay_error(e),
        ToxicOpError::Toxic(e) => {
            let status = StatusCode::from_u16(e.status()).expect("toxiproxy's statuses");
            error(status, e.to_string())
        }
    }
}

fn toxics_json(list: &[Arc<Entry>]) -> Vec<ToxicJson> {
    list.iter().map(|e| e.toxic.json()).collect()
}
