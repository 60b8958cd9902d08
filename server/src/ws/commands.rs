//! What each command does. `ping` and `subscribe` concern the pump itself and are handled
//! there; everything else lands here, runs in its own task, and returns the text of its
//! `ack` or of its `error`, written for a person.

use axum::extract::ws::Message;
use wirelab_shared::payload::decode;
use wirelab_shared::{CommandKind, Encoding, EventKind};

use std::sync::Arc;

use crate::app::App;
use crate::bridge::Source;
use crate::{http, pool, relay, replay, tcp};

/// Chat lines longer than this are refused.
const MAX_CHAT: usize = 4096;

/// Runs a command for client `client`.
pub async fn execute(app: &Arc<App>, client: u64, kind: CommandKind) -> Result<String, String> {
    match kind {
        CommandKind::Chat { text } => {
            if text.len() > MAX_CHAT {
                return Err(format!("chat lines hold at most {MAX_CHAT} bytes"));
            }
            app.hub.publish(EventKind::Chat {
                from: format!("ws#{client}"),
                text: text.clone(),
            });
            app.bridge.send(Source::Chat, text.as_bytes());
            Ok("sent to every WebSocket client".into())
        }
        CommandKind::TcpSend { conn, data, enc } => {
            let bytes = decode(&data, enc)?;
            app.tcp.send(conn, &bytes).await
        }
        CommandKind::TcpClose { conn, reset } => app.tcp.close(conn, reset),
        CommandKind::TcpConnect { addr } => tcp::connect(&app.tcp, &addr).await,
        CommandKind::UdpSend { peer, data, enc } => {
            let bytes = decode(&data, enc)?;
            app.udp.send(peer.as_deref(), &bytes).await
        }
        CommandKind::HttpReplay { exchange } => {
            http::replay(&app.http, app.http_addr()?, exchange).await
        }
        CommandKind::Replay { seq, target } => replay::replay(app, seq, target.as_deref()).await,
        CommandKind::PoolStart { spec } => pool::start(&app.pool, app.http_addr(), spec),
        CommandKind::PoolCancel => app.pool.cancel(),
        CommandKind::WsServiceSend { client, data, enc } => {
            let bytes = decode(&data, enc)?;
            let msg = match enc {
                Encoding::Text => Message::Text(data.into()),
                _ => Message::Binary(bytes.into()),
            };
            app.ws_service.send(client, msg)
        }
        CommandKind::WsServiceClose {
            client,
            code,
            reason,
            drop,
        } => app.ws_service.close(client, code, reason, drop),
        CommandKind::ProxyAdd {
            name,
            protocol,
            listen,
            upstream,
        } => {
            let spec = relay::ProxySpec {
                name,
                protocol,
                listen,
                upstream,
            };
            let p = app
                .relays
                .create(spec, true, relay::Origin::Remote)
                .await
                .map_err(|e| e.to_string())?;
            let spec = p.spec();
            Ok(format!(
                "proxy {} listens on {} and relays to {}",
                spec.name, spec.listen, spec.upstream
            ))
        }
        CommandKind::ProxySet { name, enabled } => {
            app.relays
                .update(&name, None, None, Some(enabled))
                .await
                .map_err(|e| format!("{name}: {e}"))?;
            Ok(match enabled {
                true => format!("proxy {name} listens again"),
                false => format!("proxy {name} is disabled: it stopped listening"),
            })
        }
        CommandKind::ProxyDelete { name } => {
            app.relays
                .remove(&name)
                .map_err(|e| format!("{name}: {e}"))?;
            Ok(format!("proxy {name} deleted"))
        }
        CommandKind::ToxicAdd {
            proxy,
            name,
            kind,
            stream,
            toxicity,
            attributes,
            conn,
            peer,
        } => {
            // The same JSON toxiproxy's API takes, so that both are checked alike.
            let mut body = serde_json::json!({
                "name": name,
                "type": kind,
                "attributes": attributes.into_iter().map(|(k, v)| (k, attribute(v))).collect::<serde_json::Map<_, _>>(),
            });
            if !stream.is_empty() {
                body["stream"] = stream.into();
            }
            if let Some(t) = toxicity {
                body["toxicity"] = t.into();
            }
            if let Some(c) = conn {
                body["conn"] = c.into();
            }
            if let Some(p) = peer {
                body["peer"] = p.into();
            }
            let entry = app
                .relays
                .toxic_add(&proxy, body.to_string().as_bytes())
                .map_err(|e| format!("{proxy}: {e}"))?;
            let info = entry.info();
            Ok(format!(
                "toxic {} on {proxy}: {} ({})",
                info.name, info.detail, info.stream
            ))
        }
        CommandKind::ToxicRemove { proxy, name } => {
            app.relays
                .toxic_remove(&proxy, &name)
                .map_err(|e| format!("{proxy}: {name}: {e}"))?;
            Ok(format!("toxic {name} removed from {proxy}"))
        }
        CommandKind::RelaySend {
            conn,
            leg,
            data,
            enc,
        } => {
            let bytes = decode(&data, enc)?;
            if bytes.is_empty() {
                return Err("nothing to send: the data is empty".into());
            }
            app.relays.send(conn, leg, bytes.into())
        }
        CommandKind::RelayWsSend {
            conn,
            leg,
            data,
            enc,
            binary,
        } => {
            let bytes = decode(&data, enc)?;
            app.relays.send_ws(conn, leg, &bytes, binary)
        }
        CommandKind::RelayClose { conn, leg, reset } => app.relays.act(conn, leg, reset),
        CommandKind::Ping | CommandKind::Subscribe { .. } => {
            Err("ping and subscribe are answered by the connection itself".into())
        }
    }
}

/// A toxic attribute from the page as toxiproxy's JSON has it: a whole number as an
/// integer (which whole-number attributes need), else a decimal (a chance).
fn attribute(v: f64) -> serde_json::Value {
    match v.fract() == 0.0 && v.abs() < 9e15 {
        true => (v as i64).into(),
        false => v.into(),
    }
}
