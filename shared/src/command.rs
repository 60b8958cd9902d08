//! Every frame a client may send on `/ws`. Each carries an `id` and is answered by an
//! `ack` or an `error` with the same id. For example:
//!
//! ```json
//! {"type":"chat","id":1,"text":"hello"}
//! {"type":"udp_send","id":2,"peer":"127.0.0.1:5000","data":"68 69","enc":"hex"}
//! ```

use serde::{Deserialize, Serialize};

use crate::event::Protocol;
use crate::payload::Encoding;
use crate::pool::PoolSpec;

/// A command from a client.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Command {
    /// Chosen by the client; echoed in the `ack` or `error`.
    #[serde(default)]
    pub id: u64,
    /// What to do.
    #[serde(flatten)]
    pub kind: CommandKind,
}

/// What a command asks for.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CommandKind {
    /// Answered by `pong`.
    Ping,
    /// Say something to every WebSocket client (and, with `--bridge`, to TCP and UDP).
    Chat { text: String },
    /// Send bytes on one TCP connection, or on every one when `conn` is absent.
    TcpSend {
        #[serde(default)]
        conn: Option<u64>,
        data: String,
        #[serde(default)]
        enc: Encoding,
    },
    /// Close a TCP connection: FIN, or RST when `reset` is set.
    TcpClose {
        conn: u64,
        #[serde(default)]
        reset: bool,
    },
    /// Open a TCP connection to `addr` (`host:port`); loopback only unless the lab runs
    /// with `--allow-outbound`.
    TcpConnect { addr: String },
    /// Send a datagram to one UDP peer the lab has heard from, or to all of them when
    /// `peer` is absent.
    UdpSend {
        #[serde(default)]
        peer: Option<String>,
        data: String,
        #[serde(default)]
        enc: Encoding,
    },
    /// Send a recorded HTTP exchange's request again, from the server.
    HttpReplay { exchange: u64 },
    /// Send the payload of recorded event `seq` again: to its own connection or peer,
    /// or to `target` (a TCP connection id, or a UDP peer address).
    Replay {
        seq: u64,
        #[serde(default)]
        target: Option<String>,
    },
    /// Start a connection-pool run.
    PoolStart { spec: PoolSpec },
    /// Cancel the running connection-pool run.
    PoolCancel,
    /// Send a message to one client of the WebSocket service, or to every one when
    /// `client` is absent: text as a text message, hex or base64 as a binary one.
    WsServiceSend {
        #[serde(default)]
        client: Option<u64>,
        data: String,
        #[serde(default)]
        enc: Encoding,
    },
    /// Close a client of the WebSocket service: a close frame with `code` (1000 when
    /// absent) and `reason`, then the closing handshake; or, with `drop`, no close frame
    /// but a TCP reset (RST).
    WsServiceClose {
        client: u64,
        #[serde(default)]
        code: Option<u16>,
        #[serde(default)]
        reason: String,
        #[serde(default)]
        drop: bool,
    },
    /// Make a relay-mode proxy, listening at once: as `--proxy` or toxiproxy's API (an
    /// upstream off loopback needs `--allow-outbound`).
    ProxyAdd {
        name: String,
        #[serde(default)]
        protocol: crate::proxy::ProxyProtocol,
        listen: String,
        upstream: String,
    },
    /// Enable (listen again) or disable (stop listening, end its connections) a proxy.
    ProxySet { name: String, enabled: bool },
    /// Delete a proxy: it stops listening and its connections end.
    ProxyDelete { name: String },
    /// Add a toxic (a fault) to `tcp` proxy `proxy`, as toxiproxy's `POST
    /// /proxies/{proxy}/toxics` does, with its defaults: `name` `<kind>_<stream>`, `stream`
    /// `downstream`, `toxicity` 1. It applies to the live connections too.
    ToxicAdd {
        proxy: String,
        #[serde(default)]
        name: String,
        /// toxiproxy's type (`latency`, `bandwidth`, ...).
        kind: String,
        #[serde(default)]
        stream: String,
        #[serde(default)]
        toxicity: Option<f64>,
        /// toxiproxy's attributes, by name (`latency`, `jitter`, `rate`, ...): whole
        /// numbers, or chances from 0 to 1 (`loss_rate`).
        #[serde(default)]
        attributes: Vec<(String, f64)>,
        /// Only this connection (its id; a UDP session's) gets it (wirelab's scope).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conn: Option<u64>,
        /// Only this peer's connections (`10.0.0.7`, or `10.0.0.7:5353`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
    },
    /// Remove toxic `name` of proxy `proxy`.
    ToxicRemove { proxy: String, name: String },
    /// Send bytes from the page toward one leg of relayed TCP connection `conn`: queued
    /// between the relayed chunks toward it, in order.
    RelaySend {
        conn: u64,
        leg: crate::event::Leg,
        data: String,
        #[serde(default)]
        enc: Encoding,
    },
    /// Send one WebSocket message (a single frame with FIN; text, or binary when
    /// `binary`) toward one leg of connection `conn` of an `http` proxy, once the upstream
    /// has accepted an upgrade: masked toward the upstream as a client masks, not toward
    /// the client. It goes between the relayed frames, never inside one.
    RelayWsSend {
        conn: u64,
        leg: crate::event::Leg,
        data: String,
        #[serde(default)]
        enc: Encoding,
        #[serde(default)]
        binary: bool,
    },
    /// Act on one leg of relayed TCP connection `conn`: RST it (the connection ends; the
    /// other leg is closed), or send FIN toward it (nothing more is relayed to it).
    RelayClose {
        conn: u64,
        leg: crate::event::Leg,
        #[serde(default)]
        reset: bool,
    },
    /// Only receive events of these protocols (absent or empty: all).
    Subscribe {
        #[serde(default)]
        protocols: Vec<Protocol>,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A command of every kind.
    pub(crate) fn samples() -> Vec<CommandKind> {
        vec![
            CommandKind::Ping,
            CommandKind::ProxyAdd {
                name: "redis".into(),
                protocol: crate::proxy::ProxyProtocol::Udp,
                listen: "127.0.0.1:0".into(),
                upstream: "127.0.0.1:6379".into(),
            },
            CommandKind::ProxySet {
                name: "redis".into(),
                enabled: false,
            },
            CommandKind::ProxyDelete {
                name: "redis".into(),
            },
            CommandKind::ToxicAdd {
                proxy: "redis".into(),
                name: String::new(),
                kind: "latency".into(),
                stream: "both".into(),
                toxicity: Some(0.5),
                attributes: vec![("latency".into(), 300.0), ("seed".into(), 7.0)],
                conn: Some(12),
                peer: None,
            },
            CommandKind::ToxicRemove {
                proxy: "redis".into(),
                name: "latency_both".into(),
            },
            CommandKind::RelaySend {
                conn: 4,
                leg: crate::event::Leg::Upstream,
                data: "PING\r\n".into(),
                enc: Encoding::Text,
            },
            CommandKind::RelayClose {
                conn: 4,
                leg: crate::event::Leg::Client,
                reset: true,
            },
            CommandKind::RelayWsSend {
                conn: 4,
                leg: crate::event::Leg::Upstream,
                data: "hi".into(),
                enc: Encoding::Text,
                binary: false,
            },
            CommandKind::Chat { text: "hi".into() },
            CommandKind::TcpSend {
                conn: Some(3),
                data: "ff00".into(),
                enc: Encoding::Hex,
            },
            CommandKind::TcpClose {
                conn: 3,
                reset: true,
            },
            CommandKind::TcpConnect {
                addr: "127.0.0.1:9".into(),
            },
            CommandKind::UdpSend {
                peer: None,
                data: "x".into(),
                enc: Encoding::Text,
            },
            CommandKind::HttpReplay { exchange: 4 },
            CommandKind::Replay {
                seq: 9,
                target: Some("2".into()),
            },
            CommandKind::PoolStart {
                spec: PoolSpec::default(),
            },
            CommandKind::PoolCancel,
            CommandKind::WsServiceSend {
                client: Some(1),
                data: "00ff".into(),
                enc: Encoding::Hex,
            },
            CommandKind::WsServiceClose {
                client: 1,
                code: Some(4000),
                reason: "bye".into(),
                drop: false,
            },
            CommandKind::Subscribe {
                protocols: vec![Protocol::Udp, Protocol::System],
            },
            CommandKind::ToxicAdd {
                proxy: "web".into(),
                name: "t\u{1}".into(),
                kind: "timeout".into(),
                stream: String::new(),
                toxicity: None,
                attributes: vec![],
                conn: None,
                peer: Some("127.0.0.1".into()),
            },
            CommandKind::UdpSend {
                peer: Some("127.0.0.1:9".into()),
                data: "\"\\\n".into(),
                enc: Encoding::Base64,
            },
            CommandKind::WsServiceClose {
                client: u64::MAX,
                code: None,
                reason: String::new(),
                drop: true,
            },
        ]
    }

    #[test]
    fn every_command_round_trips_through_json() {
        for (id, kind) in samples().into_iter().enumerate() {
            let cmd = Command {
                id: id as u64,
                kind,
            };
            let json = serde_json::to_string(&cmd).unwrap();
            assert_eq!(
                serde_json::from_str::<Command>(&json).unwrap(),
                cmd,
                "{json}"
            );
        }
    }

    #[test]
    fn commands_read_the_way_a_person_types_them() {
        let cmd: Command = serde_json::from_str(r#"{"type":"chat","id":1,"text":"yo"}"#).unwrap();
        assert_eq!(cmd.kind, CommandKind::Chat { text: "yo".into() });
        let cmd: Command = serde_json::from_str(r#"{"type":"udp_send","data":"hi"}"#).unwrap();
        assert_eq!(cmd.id, 0);
        assert!(serde_json::from_str::<Command>(r#"{"type":"launch_missiles"}"#).is_err());
    }
}
