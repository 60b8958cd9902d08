//! Replay: the last [`KEEP`] requests are kept (bodies only up to the snaplen), and
//! `http_replay` sends one again from the server to the lab's own HTTP service. The new
//! exchange carries `replay_of`: the replaying connection is registered by its local
//! address before it connects, and the service looks that address up when it accepts.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::http::request::Parts;
use hyper::{HeaderMap, Method, Request, Uri, Version};
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;

use super::inspect::ReadBody;
use super::{Http, own_addr};
use crate::app::App;
use crate::hub::lock;

/// Requests kept for replay.
pub const KEEP: usize = 1000;
/// A replay gives up after this long (the longest helper, `/_/delay`, takes 10 s).
const TIMEOUT: Duration = Duration::from_secs(15);

/// One kept request.
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
    /// Keeps request `parts` with `body`. A body kept is copied into its own buffer, so
    /// a kept request never pins a larger read buffer.
    pub fn new(id: u64, parts: Parts, body: &ReadBody, snaplen: usize) -> Saved {
        let whole = !body.over && body.error.is_none() && body.bytes.len() <= snaplen;
        Saved {
            id,
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            headers: parts.headers,
            body: match whole && !body.bytes.is_empty() {
                true => Bytes::copy_from_slice(&body.bytes),
                false => Bytes::new(),
            },
            body_size: body.size,
            cut: !whole,
        }
    }
}

/// The last requests, one slot per `id % KEEP`: a request locks only its own slot.
pub struct Recent {
    /// The slots.
    slots: Box<[Mutex<Option<Saved>>]>,
}

impl Recent {
    /// Room for `n` requests.
    pub fn new(n: usize) -> Recent {
        Recent {
            slots: (0..n.max(1)).map(|_| Mutex::new(None)).collect(),
        }
    }

    fn slot(&self, id: u64) -> &Mutex<Option<Saved>> {
        &self.slots[(id % self.slots.len() as u64) as usize]
    }

    /// Keeps `saved`, forgetting the request `KEEP` exchanges older.
    pub fn keep(&self, saved: Saved) {
        let old = lock(self.slot(saved.id)).replace(saved);
        drop(old); // freed outside the lock
    }

    /// Exchange `id`'s request, if it is still kept.
    pub fn get(&self, id: u64) -> Option<Saved> {
        lock(self.slot(id)).as_ref().filter(|s| s.id == id).cloned()
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
pub async fn replay(app: &Arc<App>, exchange: u64) -> Result<String, String> {
    let saved = app.http.recent.get(exchange).ok_or_else(|| {
        format!("exchange #{exchange} is not among the last {KEEP} requests the lab keeps")
    })?;
    replay_saved(app, saved).await
}

/// Sends `saved` again, as [`replay`] does (the recorder calls this with a request it
/// rebuilt from the store, for exchanges the lab no longer keeps).
pub async fn replay_saved(app: &Arc<App>, saved: Saved) -> Result<String, String> {
    let exchange = saved.id;
    if saved.cut {
        return Err(format!(
            "exchange #{exchange}'s body ({} bytes) was not captured whole (the snaplen is {} \
             bytes), so it cannot be sent again as it was",
            saved.body_size, app.http.snaplen
        ));
    }
    let addr = own_addr(app)?;
    match tokio::time::timeout(TIMEOUT, send(app, addr, saved)).await {
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
    app: &App,
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
    lock(&app.http.replays).insert(local, saved.id);
    let _registered = Registered {
        http: &app.http,
        local,
    };
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
