//! Replay: send a captured payload again, to its own connection or peer or to another,
//! under the same outbound rules as any send from the page. The event is looked up in the
//! hub's backlog, then in the store, so anything recorded can be sent again.

use std::sync::Arc;

use wirelab_shared::{EventKind, Leg};

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
            app.tcp.send(Some(conn), &payload.bytes()).await
        }
        EventKind::RelayData {
            conn,
            peer,
            from,
            payload,
            ..
        } => {
            // Toward the leg the bytes were written to, unless `target` says otherwise.
            let to = match from {
                Leg::Client => Leg::Upstream,
                Leg::Upstream => Leg::Client,
            };
            relay_again(app, *conn, peer, to, target, &payload.bytes())
        }
        EventKind::RelaySend {
            conn,
            peer,
            to,
            payload,
            ..
        } => relay_again(app, *conn, peer, *to, target, &payload.bytes()),
        EventKind::UdpDatagram { peer, payload, .. } => {
            let peer = target.unwrap_or(peer);
            app.udp.send(Some(peer), &payload.bytes()).await
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
        EventKind::Http(x) => {
            let saved = Saved::of_exchange(x)?;
            crate::http::replay::replay_saved(&app.http, app.http_addr()?, saved).await
        }
        // Through its proxy again, as a new client of it: a new exchange on both legs.
        EventKind::RelayHttp {
            proxy, exchange, ..
        } => {
            let saved = Saved::of_exchange(exchange)?;
            let addr = app.relays.http_addr(proxy)?;
            crate::http::replay::replay_saved(&app.http, addr, saved).await
        }
        other => Err(format!(
            "a {} event carries nothing to send again",
            other.protocol().as_str()
        )),
    }
}

/// Sends a relayed chunk again toward leg `to` of relayed connection `conn` (while it is
/// still open to `peer`). `target` may name another leg (`client`, `upstream`), another
/// connection (`7`, `#7`), or both (`7:client`).
fn relay_again(
    app: &App,
    conn: u64,
    peer: &str,
    to: Leg,
    target: Option<&str>,
    bytes: &[u8],
) -> Result<String, String> {
    let (mut conn, mut to, mut named_conn) = (conn, to, false);
    for part in target.unwrap_or("").split(':').map(str::trim) {
        match part {
            "" => {}
            "client" => to = Leg::Client,
            "upstream" => to = Leg::Upstream,
            id => {
                conn = id.trim_start_matches('#').parse().map_err(|_| {
                    format!("{id:?} is neither a leg (client, upstream) nor a connection id")
                })?;
                named_conn = true;
            }
        }
    }
    if !named_conn && !app.relays.is_open_to(conn, peer) {
        return Err(format!(
            "relayed connection #{conn} from {peer} is closed: name an open one to send the \
             bytes to"
        ));
    }
    app.relays
        .send(conn, to, bytes::Bytes::copy_from_slice(bytes))
}

/// Whether TCP connection `conn` is open, to `peer`.
fn still_open(app: &App, conn: u64, peer: &str) -> bool {
    app.tcp
        .infos()
        .iter()
        .any(|c| c.id == conn && c.peer == peer)
}
