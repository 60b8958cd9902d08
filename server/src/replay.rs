//! Replay: send a captured payload again, to its own connection or peer or to another,
//! under the same outbound rules as any send from the page. The event is looked up in the
//! hub's backlog, then in the store, so anything recorded can be sent again.

use std::sync::Arc;

use wirelab_shared::{EventKind, HttpExchange};

use crate::app::App;
use crate::http::replay::Saved;

/// Sends the payload of event `seq` again. `target` overrides where: a TCP connection
/// id for TCP payloads, a peer address for UDP ones.
pub async fn replay(app: &Arc<App>, seq: u64, target: Option<&str>) -> Result<String, String> {
    let event = match app.hub.find(seq) {
        Some(event) => event,
        None => {
            let event = app.store.get(seq).await?;
            let event = event
                .ok_or_else(|| format!("event {seq} was not recorded (or retention pruned it)"))?;
            Arc::new(event)
        }
    };
    // Connection and exchange ids start again at a restart, and the backlog is refilled
    // from the store at start: an event may name ids that now belong to others. So a TCP
    // payload goes to its connection only while that is still open to the same peer, and
    // an HTTP request is rebuilt from what was recorded, never looked up by its id.
    match &event.kind {
        EventKind::TcpData {
            conn,
            peer,
            payload,
            ..
        } => {
            let conn = match target {
                Some(t) => t
                    .trim()
                    .trim_start_matches('#')
                    .parse()
                    .map_err(|_| format!("{t:?} is not a TCP connection id"))?,
                None if !still_open(app, *conn, peer) => {
                    return Err(format!(
                        "connection #{conn} to {peer} is closed: choose an open connection to \
                         send event {seq}'s bytes to"
                    ));
                }
                None => *conn,
            };
            app.tcp.send(app, Some(conn), &payload.bytes()).await
        }
        EventKind::UdpDatagram { peer, payload, .. } => {
            let peer = target.unwrap_or(peer);
            app.udp.send(app, Some(peer), &payload.bytes()).await
        }
        EventKind::WsMessage { payload, .. } => {
            let text = String::from_utf8_lossy(&payload.bytes()).into_owned();
            app.hub.publish(EventKind::Chat {
                from: "replay".into(),
                text,
            });
            Ok("sent again to every WebSocket client".into())
        }
        EventKind::Chat { text, .. } => {
            app.hub.publish(EventKind::Chat {
                from: "replay".into(),
                text: text.clone(),
            });
            Ok("sent again to every WebSocket client".into())
        }
        EventKind::Http(x) => crate::http::replay::replay_saved(app, request_of(x)?).await,
        other => Err(format!(
            "a {} event carries nothing to send again",
            other.protocol().as_str()
        )),
    }
}

/// Whether TCP connection `conn` is open, to `peer`.
fn still_open(app: &App, conn: u64, peer: &str) -> bool {
    app.tcp
        .infos()
        .iter()
        .any(|c| c.id == conn && c.peer == peer)
}

/// The request of a recorded exchange, as the HTTP service keeps one for replay.
fn request_of(x: &HttpExchange) -> Result<Saved, String> {
    use hyper::header::{HeaderName, HeaderValue};
    use hyper::{HeaderMap, Method, Uri, Version};
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
        body: if cut { Default::default() } else { body.into() },
        body_size: x.body_size,
        cut,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelab_shared::Payload;

    #[test]
    fn a_recorded_request_is_rebuilt_whole_or_said_to_be_cut() {
        let x = HttpExchange {
            id: 3,
            method: "POST".into(),
            target: "/form?a=1".into(),
            version: "HTTP/1.0".into(),
            headers: vec![("X-A".into(), "1".into()), ("x-a".into(), "2".into())],
            body: Payload::capture(b"hello", 64),
            body_size: 5,
            ..Default::default()
        };
        let saved = request_of(&x).unwrap();
        assert_eq!(
            (saved.method.as_str(), saved.uri.to_string()),
            ("POST", "/form?a=1".into())
        );
        assert_eq!(saved.version, hyper::Version::HTTP_10);
        assert_eq!(saved.headers.get_all("x-a").iter().count(), 2);
        assert_eq!((&saved.body[..], saved.cut), (&b"hello"[..], false));
        let cut = HttpExchange {
            body: Payload::capture(b"hello", 2),
            ..x.clone()
        };
        assert!(request_of(&cut).unwrap().cut);
        let bad = HttpExchange {
            method: "GE T".into(),
            ..x
        };
        let Err(err) = request_of(&bad) else {
            panic!("a bad method was taken")
        };
        assert!(err.contains("method"), "{err}");
    }
}
