//! Replay: send a captured payload again, to its own connection or peer or to another,
//! under the same outbound rules as any send from the page.

use std::sync::Arc;

use wirelab_shared::EventKind;

use crate::app::App;

/// Sends the payload of event `seq` again. `target` overrides where: a TCP connection
/// id for TCP payloads, a peer address for UDP ones.
pub async fn replay(app: &Arc<App>, seq: u64, target: Option<&str>) -> Result<String, String> {
    let event = match app.hub.find(seq) {
        Some(event) => event,
        None => app
            .store
            .get(seq)
            .await?
            .map(Arc::new)
            .ok_or_else(|| format!("event {seq} was not recorded (or retention pruned it)"))?,
    };
    match &event.kind {
        EventKind::TcpData { conn, payload, .. } => {
            let conn = match target {
                Some(t) => t
                    .trim()
                    .trim_start_matches('#')
                    .parse()
                    .map_err(|_| format!("{t:?} is not a TCP connection id"))?,
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
        EventKind::Http(x) => crate::http::replay(app, x.id).await,
        other => Err(format!(
            "a {} event carries nothing to send again",
            other.protocol().as_str()
        )),
    }
}
