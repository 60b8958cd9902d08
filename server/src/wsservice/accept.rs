//! The accept loop, and the upgrade on the raw socket: the request head is read (at
//! most [`MAX_HEAD`] bytes, within [`HEAD_WAIT`]), checked as `/ws` checks its own
//! ([`check_upgrade`]), and answered `101` on any path; a request that is not a
//! WebSocket upgrade gets the same plain-text refusals as `/ws` (400, 405, 426), one past
//! the client limit 503. A refusal half-closes and reads what the client still sends for
//! a while, so the answer is not destroyed by a reset.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use wirelab_shared::EventKind;

use super::{Client, QUEUE_BYTES, QUEUE_MESSAGES, WsService, session};
use crate::backoff::Backoff;
use crate::hub::{counters::add, now_us};
use crate::ws::deflate;
use crate::ws::upgrade::{check_upgrade, offers};

/// The largest request head read.
const MAX_HEAD: usize = 16 * 1024;
/// Headers parsed at most.
const MAX_HEADERS: usize = 64;
/// How long a client has to send its whole request head.
const HEAD_WAIT: Duration = Duration::from_secs(10);
/// After a refusal: how long and how much of what the client still sends is read.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// Accepts clients until `shutdown`, then waits for every client to finish closing.
pub async fn run(listener: TcpListener, service: Arc<WsService>, shutdown: CancellationToken) {
    let mut backoff = Backoff::default();
    while let Some((stream, peer)) = backoff.accept(&listener, &shutdown, "ws service").await {
        let s = service.clone();
        service
            .tasks
            .spawn(async move { upgrade(s, stream, peer).await });
    }
    drop(listener);
    service.tasks.close();
    service.tasks.wait().await;
}

/// A request head, parsed.
struct Head {
    method: Method,
    path: String,
    headers: HeaderMap,
}

/// Reads and answers the upgrade request, then serves the client.
async fn upgrade(service: Arc<WsService>, mut stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(1024);
    let head = tokio::select! {
        head = tokio::time::timeout(HEAD_WAIT, read_head(&mut stream, &mut buf)) => head,
        _ = service.shutdown.cancelled() => return,
    };
    let head = match head {
        Err(_) => {
            return refuse(
                stream,
                StatusCode::REQUEST_TIMEOUT,
                "the request head took too long",
            )
            .await;
        }
        Ok(Err(None)) => return, // the client left
        Ok(Err(Some((status, why)))) => return refuse(stream, status, why).await,
        Ok(Ok(head)) => head,
    };
    let accept = match check_upgrade(&head.method, &head.headers) {
        Ok(accept) => accept,
        Err((status, why)) => return refuse(stream, status, why).await,
    };
    let Some(permit) = service.try_permit() else {
        add(&service.hub.counters.ws_service_refused, 1);
        let why = format!(
            "too many WebSocket service clients: the limit is {} (--max-ws-service-clients)",
            service.max_clients
        );
        return refuse(stream, StatusCode::SERVICE_UNAVAILABLE, &why).await;
    };
    let agreed = deflate::negotiate(offers(&head.headers), true);
    let mut answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        accept.to_str().unwrap_or_default()
    );
    if let Some(agreed) = agreed {
        answer.push_str(&format!(
            "Sec-WebSocket-Extensions: {}\r\n",
            agreed.response()
        ));
    }
    answer.push_str(concat!(
        "Server: wirelab/",
        env!("CARGO_PKG_VERSION"),
        "\r\n\r\n"
    ));
    if stream.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let user_agent: String = head
        .headers
        .get(header::USER_AGENT)
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(256)
                .collect()
        })
        .unwrap_or_default();
    let (queue, rx) = mpsc::channel(QUEUE_MESSAGES);
    let client = Arc::new(Client {
        id: service.next_id(),
        peer: crate::tcp::show(peer),
        path: head.path,
        user_agent,
        deflate: agreed,
        since_us: now_us(),
        frames_in: AtomicU64::new(0),
        frames_not_shown: AtomicU64::new(0),
        frames_out: AtomicU64::new(0),
        bytes_in: AtomicU64::new(0),
        bytes_out: AtomicU64::new(0),
        closing: AtomicBool::new(false),
        queue,
        budget: Arc::new(Semaphore::new(QUEUE_BYTES)),
        request: Default::default(),
        wake: Notify::new(),
        hub: service.hub.clone(),
    });
    service.insert(client.clone());
    add(&service.hub.counters.ws_service_clients, 1);
    service.hub.publish(EventKind::WsServiceOpen {
        client: client.id,
        peer: client.peer.clone(),
        path: client.path.clone(),
        user_agent: client.user_agent.clone(),
        deflate: agreed.map(|a| a.response()),
    });
    session::serve(service.clone(), client, stream, buf.to_vec(), rx, permit).await;
}

/// Reads a request head into `buf` and parses it; what follows it stays in `buf`. `None`
/// for a client that left; else the status and why it is refused.
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
) -> Result<Head, Option<(StatusCode, &'static str)>> {
    let mut scanned = 0;
    let end = loop {
        if let Some(at) = buf[scanned..].windows(4).position(|w| w == b"\r\n\r\n") {
            break scanned + at + 4;
        }
        scanned = buf.len().saturating_sub(3);
        if buf.len() >= MAX_HEAD {
            return Err(Some((
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "the request head is over 16 KiB",
            )));
        }
        buf.reserve(1024);
        match stream.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(None),
            Ok(_) => {}
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let bad = Some((
        StatusCode::BAD_REQUEST,
        "that is not an HTTP/1.1 request head",
    ));
    match req.parse(&buf[..end]) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Some((
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "more than 64 headers",
            )));
        }
        _ => return Err(bad),
    }
    let method = Method::from_bytes(req.method.unwrap_or("").as_bytes()).map_err(|_| bad)?;
    let path = req.path.unwrap_or("/").chars().take(1024).collect();
    let mut map = HeaderMap::new();
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| bad)?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| bad)?;
        map.append(name, value);
    }
    let _ = buf.split_to(end);
    Ok(Head {
        method,
        path,
        headers: map,
    })
}

/// Answers `status` with `why` in plain text, then half-closes and reads what the
/// client still sends (for a while) before closing.
async fn refuse(mut stream: TcpStream, status: StatusCode, why: &str) {
    let body = format!("{why}\n");
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if status == StatusCode::UPGRADE_REQUIRED {
        answer.push_str("Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    if stream.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut drained = 0;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while drained < LINGER_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}
