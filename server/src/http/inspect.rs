//! One exchange: read the request, answer it, and describe both in an
//! [`HttpExchange`] that the response body publishes once it has been sent.
//!
//! The cost per request is kept to the strings the event needs: no lock is held across an
//! await, the only locks are the hub's intake and one replay slot, and the event is the
//! only thing sent anywhere.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use hyper::header::{CONNECTION, HeaderMap};
use hyper::{Method, Request, Response, Uri, Version};
use wirelab_shared::{HttpExchange, Payload};

use super::body::{self, Reply};
use super::helpers;
use super::serve::ConnCtx;
use crate::hub::counters::add;

/// A request body as read.
pub struct ReadBody {
    /// The bytes read: all of them, or (when `over`) those before the limit.
    pub bytes: Bytes,
    /// The body's size: exact, except past the limit, where it is the declared
    /// `content-length` or, for a chunked body, the bytes received before reading stopped.
    pub size: u64,
    /// Past `--max-http-body`: the request gets 413 and its connection is closed.
    pub over: bool,
    /// Why the body could not be read, when it broke off or was badly chunked.
    pub error: Option<String>,
}

/// Serves one request on connection `ctx`.
pub async fn handle(
    ctx: Arc<ConnCtx>,
    req: Request<Incoming>,
) -> Result<Response<Reply>, Infallible> {
    let start = Instant::now();
    let app = &ctx.app;
    let http = &app.http;
    let seq_on_conn = ctx.requests.fetch_add(1, Ordering::Relaxed) + 1;
    add(&app.hub.counters.http_requests, 1);

    let (parts, incoming) = req.into_parts();
    let body = read_body(incoming, http.max_body).await;
    let answer = match (&body.error, body.over) {
        (_, true) => helpers::too_large(http.max_body),
        (Some(why), _) => helpers::unreadable(why),
        (None, false) => helpers::answer(&app.shutdown, &parts, &body.bytes).await,
    };
    let keep_alive =
        !body.over && body.error.is_none() && wants_keep_alive(parts.version, &parts.headers);
    let (headers, resp_headers) = body::head(answer.content_type, answer.content.len(), keep_alive);
    // A HEAD response says how long the body would be, and sends none.
    let (resp_body, resp_size) = if parts.method == Method::HEAD {
        (Payload::default(), 0)
    } else {
        (answer.content.capture(http.snaplen), answer.content.len())
    };

    let mut req_body = Payload::capture(&body.bytes, http.snaplen);
    req_body.cut += body.size - body.bytes.len() as u64; // what was never read counts as cut
    let id = http.exchange_id();
    let exchange = HttpExchange {
        id,
        conn: ctx.id,
        seq_on_conn,
        peer: ctx.peer.clone(),
        method: parts.method.as_str().to_owned(),
        target: target(&parts.uri),
        version: version(parts.version).to_owned(),
        headers: body::pairs(&parts.headers),
        body: req_body,
        body_size: body.size,
        status: answer.status.as_u16(),
        resp_headers,
        resp_body,
        resp_size,
        ttfb_us: start.elapsed().as_micros() as u64,
        total_us: 0,
        replay_of: ctx.replay_of,
    };

    let mut resp = Response::new(Reply::new(answer.content, ctx.clone(), exchange, start));
    *resp.status_mut() = answer.status;
    *resp.headers_mut() = headers;
    Ok(resp)
}

/// Reads the body, up to `max` bytes. A declared length past `max` is refused unread.
pub async fn read_body(mut body: Incoming, max: usize) -> ReadBody {
    let mut read = ReadBody {
        bytes: Bytes::new(),
        size: 0,
        over: false,
        error: None,
    };
    if body.is_end_stream() {
        return read;
    }
    if let Some(n) = body.size_hint().exact().filter(|n| *n > max as u64) {
        read.size = n;
        read.over = true;
        return read;
    }
    // One frame (the usual small body) is kept as is; more are copied together.
    let mut joined = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let data = match frame {
            Ok(f) => match f.into_data() {
                Ok(d) => d,
                Err(_) => continue, // trailers
            },
            Err(e) => {
                read.error = Some(e.to_string());
                break;
            }
        };
        read.size += data.len() as u64;
        if read.size > max as u64 {
            read.over = true;
            break;
        }
        if read.bytes.is_empty() && joined.is_empty() {
            read.bytes = data;
        } else {
            if !read.bytes.is_empty() {
                joined.extend_from_slice(&std::mem::take(&mut read.bytes));
            }
            joined.extend_from_slice(&data);
        }
    }
    if !joined.is_empty() {
        read.bytes = joined.freeze();
    }
    read
}

/// Whether the client wants the connection kept open (RFC 9112 section 9.3): by default
/// from HTTP/1.1 on unless it says `close`; in HTTP/1.0 only if it says `keep-alive`.
pub fn wants_keep_alive(version: Version, headers: &HeaderMap) -> bool {
    let says = |token: &str| {
        headers.get_all(CONNECTION).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if version <= Version::HTTP_10 {
        says("keep-alive")
    } else {
        !says("close")
    }
}

/// The request target as sent: path and query, or the whole URI in absolute form.
fn target(uri: &Uri) -> String {
    match (uri.scheme(), uri.path_and_query()) {
        (None, Some(pq)) => pq.as_str().to_owned(),
        _ => uri.to_string(),
    }
}

/// The version as on the request line.
fn version(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(CONNECTION, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn keep_alive_follows_the_version_and_the_connection_header() {
        assert!(wants_keep_alive(Version::HTTP_11, &conn(&[])));
        assert!(!wants_keep_alive(
            Version::HTTP_11,
            &conn(&["Upgrade, Close"])
        ));
        assert!(!wants_keep_alive(Version::HTTP_10, &conn(&[])));
        assert!(wants_keep_alive(
            Version::HTTP_10,
            &conn(&["x", "Keep-Alive"])
        ));
    }

    #[test]
    fn the_target_is_shown_as_sent() {
        assert_eq!(target(&"/a/b?c=d".parse().unwrap()), "/a/b?c=d");
        assert_eq!(target(&"http://h:1/x".parse().unwrap()), "http://h:1/x");
        assert_eq!(version(Version::HTTP_10), "HTTP/1.0");
    }
}
