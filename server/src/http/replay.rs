//! Replay: `http_replay` rebuilds an exchange's request from its event, still in the hub's
//! backlog (bodies only up to the snaplen, as captured), and sends it again from the
//! server to the lab's own HTTP service. Nothing is kept per request for it (keeping each
//! request's parts, and dropping them 1,000 requests later, cold, cost the service 4% of
//! its time). The new exchange carries `replay_of`: the replaying connection is
//! registered by its local address before it connects, and the service looks that
//! address up when it accepts.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Uri, Version};
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;

use wirelab_shared::{Event, EventKind, HttpExchange};

use super::Http;
use crate::hub::lock;

/// A replay gives up after this long (the longest helper, `/_/delay`, takes 10 s).
const TIMEOUT: Duration = Duration::from_secs(15);

/// A request to send again.
#[derive(Clone)]
pub struct Saved {
    /// The exchange it belongs to.
    pub id: u64,
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    /// The whole body, when it fit in the snaplen (and the limit); empty otherwise.
    pub body: Bytes,
    /// The body's size, to tell the user what was cut.
    pub body_size: u64,
    /// The body was not kept whole, so the request cannot be sent again as it was.
    pub cut: bool,
}

impl Saved {
    /// The request of recorded exchange `x`, rebuilt (the header names as the client sent
    /// them, which the hyper client sends in lower case; the body is whole unless the
    /// snaplen cut it, which `cut` says).
    pub fn of_exchange(x: &HttpExchange) -> Result<Saved, String> {
        let bad = |what: &str| format!("exchange #{}'s recorded {what} is not valid HTTP", x.id);
        let method = Method::from_bytes(x.method.as_bytes()).map_err(|_| bad("method"))?;
        let uri: Uri = x.target.parse().map_err(|_| bad("target"))?;
        let version = match x.version.as_str() {
            "HTTP/1.0" => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &x.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("header name"))?;
            let value = HeaderValue::from_str(value).map_err(|_| bad("header value"))?;
            headers.append(name, value);
        }
        let body = x.body.bytes();
        let cut = x.body.cut > 0 || (body.len() as u64) < x.body_size;
        Ok(Saved {
            id: x.id,
            method,
            uri,
            version,
            headers,
            body: if cut { Bytes::new() } else { body.into() },
            body_size: x.body_size,
            cut,
        })
    }
}

/// Removes a replay registration that was never taken (the connect failed).
struct Registered<'a> {
    http: &'a Http,
    local: SocketAddr,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock(&self.http.replays).remove(&self.local);
    }
}

/// Sends exchange `exchange`'s request again, from the server to its own HTTP service;
/// the answer is a new exchange with `replay_of`. The ack gives the new status.
pub async fn replay(http: &Http, addr: SocketAddr, exchange: u64) -> Result<String, String> {
    let is_it = |e: &Event| matches!(&e.kind, EventKind::Http(x) if x.id == exchange);
    let event = http.hub.find_latest(is_it).ok_or_else(|| {
        format!(
            "exchange #{exchange} is not among the last {} events the lab keeps (replay it \
             by its seq: recorded events are replayed from the store)",
            http.backlog
        )
    })?;
    let EventKind::Http(x) = &event.kind else {
        unreachable!("find_latest matched an HTTP exchange")
    };
    replay_saved(http, addr, Saved::of_exchange(x)?).await
}

/// Sends `saved` again, as [`replay`] does, to the HTTP service at `addr` (the recorder
/// calls this with a request it rebuilt from the store, for exchanges the lab no longer
/// keeps).
pub async fn replay_saved(http: &Http, addr: SocketAddr, saved: Saved) -> Result<String, String> {
    let exchange = saved.id;
    if saved.cut {
        return Err(format!(
            "exchange #{exchange}'s body ({} bytes) was not captured whole (the snaplen is {} \
             bytes), so it cannot be sent again as it was",
            saved.body_size, http.snaplen
        ));
    }
    match tokio::time::timeout(TIMEOUT, send(http, addr, saved)).await {
        Ok(Ok((status, size))) => Ok(format!(
            "replayed exchange #{exchange}: {} {} ({size} bytes)",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )),
        Ok(Err(e)) => Err(format!("replaying exchange #{exchange} failed: {e}")),
        Err(_) => Err(format!(
            "replaying exchange #{exchange}: no answer within {} s",
            TIMEOUT.as_secs()
        )),
    }
}

async fn send(
    http: &Http,
    addr: SocketAddr,
    saved: Saved,
) -> Result<(hyper::StatusCode, usize), String> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| e.to_string())?;
    // Bind first, so the service can be told who is replaying before it accepts.
    socket
        .bind(SocketAddr::new(addr.ip(), 0))
        .map_err(|e| e.to_string())?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    lock(&http.replays).insert(local, saved.id);
    let _registered = Registered { http, local };
    let stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    // The connection task ends once the response is read and `sender` is dropped.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = Request::new(Full::new(saved.body));
    *req.method_mut() = saved.method;
    *req.uri_mut() = saved.uri;
    *req.version_mut() = saved.version;
    *req.headers_mut() = saved.headers;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, body.to_bytes().len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelab_shared::Payload;

    #[test]
    fn an_exchange_is_rebuilt_whole_or_said_to_be_cut() {
        let x = HttpExchange {
            id: 3,
            method: "POST".into(),
            target: "/form?a=1".into(),
            version: "HTTP/1.0".into(),
            headers: vec![("x-a".into(), "1".into()), ("x-a".into(), "2".into())],
            body: Payload::capture(b"hello", 64),
            body_size: 5,
            ..Default::default()
        };
        let s = Saved::of_exchange(&x).unwrap();
        assert_eq!((s.method, s.version), (Method::POST, Version::HTTP_10));
        assert_eq!(s.uri, "/form?a=1");
        assert_eq!(s.headers.get_all("x-a").iter().count(), 2);
        assert_eq!((&s.body[..], s.cut), (&b"hello"[..], false));
        let cut = HttpExchange {
            body: Payload::capture(b"hello", 2),
            ..x
        };
        let s = Saved::of_exchange(&cut).unwrap();
        assert!(s.cut && s.body.is_empty());
        let bad = HttpExchange {
            method: "BAD METHOD".into(),
            ..Default::default()
        };
        let Err(e) = Saved::of_exchange(&bad) else {
            panic!("a bad method was accepted")
        };
        assert!(e.contains("method"), "{e}");
    }
}
