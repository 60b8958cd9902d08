//! `/api`: the recorded history, read-only. Every route asks for the lab's token when it
//! has one (`?token=` or `Authorization: Bearer`), like `/ws`.
//!
//! - `GET /api/events`: one page of events as JSON,
//!   `{"events":[...],"next_since_seq":N|null,"next_before_seq":N|null}`. Filters:
//!   `since_seq` (after), `until_seq` (up to and including), `before_seq` (before),
//!   `protocol` (comma-separated), `peer` (`ip:port`, or a host for all its ports), `q`
//!   (text, ignoring case); `limit` (default 500, at most 5000); `order=asc` (oldest
//!   first: go on with `since_seq=next_since_seq`) or `order=desc` (newest first, for
//!   loading older history: go on with `before_seq=next_before_seq`). Without `order`, a
//!   query bounded only from above (`until_seq` or `before_seq`, no `since_seq`) is `desc`
//!   (the page next to the bound, as "load older" wants), any other is `asc`.
//! - `GET /api/events.jsonl`: every matching event, one JSON object a line, streamed.
//! - `GET /api/http.har`: the matching HTTP exchanges as HAR 1.2, streamed.
//! - `GET /api/capture.pcapng`: the matching TCP and UDP traffic as a pcapng capture,
//!   streamed (see [`crate::export::pcapng`]).
//! - `GET /api/ca.pem`: the lab's CA certificate, for clients to trust (its SHA-256
//!   fingerprint in the `X-Fingerprint` header, as `openssl x509 -fingerprint -sha256`
//!   prints it).
//!
//! The exports take the same filters, and an optional `limit` on the number of events.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::sync::mpsc;
use wirelab_shared::Event;

use crate::app::App;
use crate::export::har::{self, Har};
use crate::export::pcapng::{LabAddrs, PcapNg};
use crate::store::{Filter, Order, query};
use crate::web::auth;

/// Events read per page while streaming an export.
const EXPORT_PAGE: usize = 1000;
/// Pieces of an export waiting for a slow client, at most.
const EXPORT_QUEUE: usize = 4;

/// The `/api` routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/events", get(events))
        .route("/api/events.jsonl", get(jsonl))
        .route("/api/http.har", get(har))
        .route("/api/capture.pcapng", get(pcapng))
        .route("/api/ca.pem", get(ca_pem))
        .route("/api/{*rest}", get(not_found))
}

/// The query string of every `/api` route, as given: each value is checked by
/// [`ApiQuery::parse`], so a bad one gets a message saying which.
#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct ApiQuery {
    pub since_seq: Option<String>,
    pub until_seq: Option<String>,
    pub before_seq: Option<String>,
    pub protocol: Option<String>,
    pub peer: Option<String>,
    pub q: Option<String>,
    pub limit: Option<String>,
    pub order: Option<String>,
    pub token: Option<String>,
}

/// What a query asks for.
#[derive(Debug, PartialEq)]
pub struct Parsed {
    pub filter: Filter,
    pub limit: Option<usize>,
    pub order: Order,
}

impl ApiQuery {
    /// Checks every value.
    pub fn parse(&self) -> Result<Parsed, ApiError> {
        let num = |name: &str, v: &Option<String>| -> Result<Option<u64>, ApiError> {
            match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => s.parse().map(Some).map_err(|_| {
                    ApiError::bad(format!("{name} must be a whole number, not {s:?}"))
                }),
            }
        };
        let text = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let filter = Filter {
            since_seq: num("since_seq", &self.since_seq)?,
            until_seq: num("until_seq", &self.until_seq)?,
            before_seq: num("before_seq", &self.before_seq)?,
            protocol: text(&self.protocol),
            peer: text(&self.peer),
            q: text(&self.q),
        };
        filter.protocols().map_err(ApiError::bad)?;
        let limit = num("limit", &self.limit)?.map(|n| n as usize);
        if limit == Some(0) {
            return Err(ApiError::bad("limit must be at least 1".into()));
        }
        // Without `order`, a page bounded only from above (loading older history) is the
        // newest events under the bound; any other page, the oldest after `since_seq`.
        let upper_only = (filter.until_seq.is_some() || filter.before_seq.is_some())
            && filter.since_seq.is_none();
        let order = match self.order.as_deref().map(str::trim) {
            None | Some("") if upper_only => Order::Desc,
            None | Some("") | Some("asc") => Order::Asc,
            Some("desc") => Order::Desc,
            Some(o) => return Err(ApiError::bad(format!("order is asc or desc, not {o:?}"))),
        };
        Ok(Parsed {
            filter,
            limit,
            order,
        })
    }
}

/// An error for an API client: its status and a message for a person, as JSON.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn bad(message: String) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

/// The token and Origin checks, then the query.
#[allow(clippy::result_large_err)]
fn admit(app: &App, headers: &HeaderMap, q: &ApiQuery) -> Result<Parsed, Response> {
    auth::check_origin(app, headers)?;
    auth::check_token(app, headers, q.token.as_deref())?;
    q.parse().map_err(IntoResponse::into_response)
}

async fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: "no such API: see /api/events, /api/events.jsonl, /api/http.har, \
                  /api/capture.pcapng, /api/ca.pem"
            .into(),
    }
}

/// `GET /api/ca.pem`.
async fn ca_pem(
    State(app): State<Arc<App>>,
    Query(q): Query<ApiQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = admit(&app, &headers, &q) {
        return refusal;
    }
    let mut response = app.tls.ca.pem.clone().into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-pem-file"),
    );
    if let Ok(v) = HeaderValue::from_str(&app.tls.ca.fingerprint()) {
        h.insert("x-fingerprint", v);
    }
    response
}

/// `GET /api/events`.
async fn events(
    State(app): State<Arc<App>>,
    Query(q): Query<ApiQuery>,
    headers: HeaderMap,
) -> Response {
    let p = match admit(&app, &headers, &q) {
        Ok(p) => p,
        Err(refusal) => return refusal,
    };
    let limit = p
        .limit
        .unwrap_or(query::DEFAULT_LIMIT)
        .min(query::MAX_LIMIT);
    let page = match app.store.page(p.filter, p.order, limit).await {
        Ok(page) => page,
        Err(message) => {
            let status = StatusCode::INTERNAL_SERVER_ERROR;
            return ApiError { status, message }.into_response();
        }
    };
    let size: usize = page.events.iter().map(|e| e.len() + 1).sum();
    let mut body = String::with_capacity(size + 80);
    body.push_str(r#"{"events":["#);
    for (i, ev) in page.events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(ev);
    }
    let cursor = |n: Option<u64>| n.map_or_else(|| "null".to_owned(), |n| n.to_string());
    let (since, before) = match p.order {
        Order::Asc => (page.next, None),
        Order::Desc => (None, page.next),
    };
    body.push_str(&format!(
        r#"],"next_since_seq":{},"next_before_seq":{}}}"#,
        cursor(since),
        cursor(before)
    ));
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Turns pages of stored events into the bytes of an export.
trait Encoder: Send + 'static {
    fn head(&mut self) -> Vec<u8>;
    fn page(&mut self, events: &[String]) -> Vec<u8>;
    fn tail(&mut self) -> Vec<u8>;
}

struct Jsonl;

impl Encoder for Jsonl {
    fn head(&mut self) -> Vec<u8> {
        Vec::new()
    }
    fn page(&mut self, events: &[String]) -> Vec<u8> {
        let mut out = Vec::with_capacity(events.iter().map(|e| e.len() + 1).sum());
        for e in events {
            out.extend_from_slice(e.as_bytes());
            out.push(b'\n');
        }
        out
    }
    fn tail(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

impl Encoder for Har {
    fn head(&mut self) -> Vec<u8> {
        har::head().into_bytes()
    }
    fn page(&mut self, events: &[String]) -> Vec<u8> {
        let mut out = String::new();
        for ev in parse(events) {
            if let Some(entry) = self.entry(&ev) {
                out.push_str(&entry);
            }
        }
        out.into_bytes()
    }
    fn tail(&mut self) -> Vec<u8> {
        har::TAIL.as_bytes().to_vec()
    }
}

impl Encoder for PcapNg {
    fn head(&mut self) -> Vec<u8> {
        self.take()
    }
    fn page(&mut self, events: &[String]) -> Vec<u8> {
        for ev in parse(events) {
            self.add(&ev);
        }
        self.take()
    }
    fn tail(&mut self) -> Vec<u8> {
        self.take()
    }
}

fn parse(events: &[String]) -> impl Iterator<Item = Event> + '_ {
    events.iter().filter_map(|j| serde_json::from_str(j).ok())
}

/// Streams every event matching `p` through `enc`, a page at a time: the query and the
/// encoding run on the blocking pool, and a slow client holds back the reading (the queue
/// between them is short). Stops early when the client goes away or the lab stops.
fn stream(app: Arc<App>, p: Parsed, mut enc: impl Encoder) -> Body {
    let (tx, mut rx) = mpsc::channel::<std::io::Result<Vec<u8>>>(EXPORT_QUEUE);
    tokio::spawn(async move {
        let head = enc.head();
        if !head.is_empty() && tx.send(Ok(head)).await.is_err() {
            return;
        }
        let mut filter = p.filter;
        let mut left = p.limit.unwrap_or(usize::MAX);
        let mut enc = Some(enc);
        while left > 0 {
            let n = left.min(EXPORT_PAGE);
            let (f, mut e) = (filter.clone(), enc.take().expect("the encoder is back"));
            let read = app.store.read(move |c| {
                let page = query::page(c, &f, Order::Asc, n);
                let out = page.map(|page| (e.page(&page.events), page.events.len(), page.next));
                (e, out)
            });
            let page = tokio::select! {
                r = read => r,
                _ = app.shutdown.cancelled() => return,
            };
            let (e, page) = match page {
                Ok(done) => done,
                Err(msg) => {
                    let _ = tx.send(Err(std::io::Error::other(msg))).await;
                    return;
                }
            };
            enc = Some(e);
            let (bytes, count, next) = match page {
                Ok(p) => p,
                Err(msg) => {
                    tracing::warn!("an export failed: {msg}");
                    let _ = tx.send(Err(std::io::Error::other(msg))).await;
                    return;
                }
            };
            if !bytes.is_empty() && tx.send(Ok(bytes)).await.is_err() {
                return; // the client went away
            }
            left = left.saturating_sub(count);
            match next {
                Some(seq) => filter.since_seq = Some(seq),
                None => break,
            }
        }
        if let Some(mut e) = enc {
            let tail = e.tail();
            if !tail.is_empty() {
                let _ = tx.send(Ok(tail)).await;
            }
        }
    });
    Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// A streamed download.
fn download(body: Body, content_type: &'static str, file: Option<&'static str>) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(file) = file {
        let value = format!("attachment; filename=\"{file}\"");
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    resp
}

/// `GET /api/events.jsonl`.
async fn jsonl(
    State(app): State<Arc<App>>,
    Query(q): Query<ApiQuery>,
    headers: HeaderMap,
) -> Response {
    match admit(&app, &headers, &q) {
        Ok(p) => download(stream(app, p, Jsonl), "application/x-ndjson", None),
        Err(refusal) => refusal,
    }
}

/// The address a service is bound to, from the list `hello` shows.
fn service_addr(app: &App, name: &str) -> Option<SocketAddr> {
    app.services
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| s.addr.parse().ok())
}

/// `GET /api/http.har`.
async fn har(
    State(app): State<Arc<App>>,
    Query(q): Query<ApiQuery>,
    headers: HeaderMap,
) -> Response {
    let mut p = match admit(&app, &headers, &q) {
        Ok(p) => p,
        Err(refusal) => return refusal,
    };
    if p.filter.protocol.is_none() {
        p.filter.protocol = Some("http".into());
    }
    let host = service_addr(&app, "http").map_or_else(|| "localhost".into(), |a| a.to_string());
    download(
        stream(app, p, Har::new(host)),
        "application/json",
        Some("wirelab.har"),
    )
}

/// `GET /api/capture.pcapng`.
async fn pcapng(
    State(app): State<Arc<App>>,
    Query(q): Query<ApiQuery>,
    headers: HeaderMap,
) -> Response {
    let mut p = match admit(&app, &headers, &q) {
        Ok(p) => p,
        Err(refusal) => return refusal,
    };
    if p.filter.protocol.is_none() {
        p.filter.protocol = Some("tcp,udp".into());
    }
    let lab = LabAddrs {
        tcp: service_addr(&app, "tcp"),
        udp: service_addr(&app, "udp"),
    };
    let file = Some("wirelab.pcapng");
    download(
        stream(app, p, PcapNg::new(lab)),
        "application/x-pcapng",
        file,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> ApiQuery {
        let s = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let uri: axum::http::Uri = format!("/api/events?{s}").parse().unwrap();
        Query::<ApiQuery>::try_from_uri(&uri).unwrap().0
    }

    #[test]
    fn queries_parse_and_bad_values_are_named() {
        let p = q(&[
            ("since_seq", "5"),
            ("protocol", "udp,tcp"),
            ("order", "desc"),
            ("q", ""),
        ])
        .parse()
        .unwrap();
        assert_eq!(p.filter.since_seq, Some(5));
        assert_eq!(p.filter.protocol.as_deref(), Some("udp,tcp"));
        assert_eq!(
            (p.order, p.filter.q.clone(), p.limit),
            (Order::Desc, None, None)
        );
        // Bounded only from above: the newest under the bound; otherwise the oldest.
        assert_eq!(q(&[("until_seq", "9")]).parse().unwrap().order, Order::Desc);
        assert_eq!(
            q(&[("before_seq", "9")]).parse().unwrap().order,
            Order::Desc
        );
        let both = q(&[("until_seq", "9"), ("since_seq", "2")])
            .parse()
            .unwrap();
        assert_eq!(both.order, Order::Asc);
        let asked = q(&[("until_seq", "9"), ("order", "asc")]).parse().unwrap();
        assert_eq!(asked.order, Order::Asc);
        assert_eq!(q(&[]).parse().unwrap().order, Order::Asc);
        // An empty value is no filter at all.
        assert_eq!(
            q(&[("until_seq", "")]).parse().unwrap().filter,
            Filter::default()
        );
        for (pairs, needle) in [
            (vec![("since_seq", "x")], "since_seq"),
            (vec![("limit", "0")], "limit"),
            (vec![("protocol", "smtp")], "smtp"),
            (vec![("order", "up")], "order"),
        ] {
            let err = q(&pairs).parse().unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert!(err.message.contains(needle), "{}", err.message);
        }
    }
}
