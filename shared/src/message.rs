//! Every frame the server sends on `/ws`: JSON text, one object with a `type`.

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::pool::PoolStatus;
use crate::state::LabState;

/// A frame from the server. (The dashboard reads it with [`crate::decode`], not serde.)
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// First frame on every connection.
    Hello(Hello),
    /// Second frame: the current state and a backlog of recent events.
    Snapshot(Box<Snapshot>),
    /// Events as they happen, oldest first, in batches.
    Events { events: Vec<Event> },
    /// This client fell behind and `missed` events were skipped; the stream goes on live.
    Lagged { missed: u64 },
    /// A command succeeded. `detail` says what it did, for a person.
    Ack {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A command failed, or a frame was not understood; the connection stays open.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        message: String,
    },
    /// The current state, once a second.
    State(Box<LabState>),
    /// A connection-pool run's live figures (at least 5 a second while it runs).
    Pool(PoolStatus),
    /// Answer to `ping`.
    Pong { id: u64, ts_us: u64 },
}

/// Who the server is and what it runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct Hello {
    /// `wirelab`.
    pub server: String,
    /// The server's version (its crate version).
    pub version: String,
    /// [`crate::PROTOCOL_VERSION`].
    pub protocol: u32,
    /// This connection's client id (as in `ws_open` events).
    pub client: u64,
    pub services: Vec<ServiceInfo>,
    pub limits: Limits,
    /// Whether a token is needed (the lab is bound to a non-loopback address).
    pub token_required: bool,
    /// `--bridge`: TCP, UDP and chat are relayed to each other.
    pub bridge: bool,
    /// `--allow-outbound`: the page may send to addresses the lab has not heard from.
    pub allow_outbound: bool,
    /// The SHA-256 fingerprint of the lab's CA (`AB:CD:...`), for the page to show next
    /// to `/api/ca.pem`.
    pub ca_fingerprint: String,
}

/// One service the lab runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct ServiceInfo {
    /// `tcp`, `udp`, `http` or `ws`.
    pub name: String,
    /// The address it listens on (the real one, after binding port 0).
    pub addr: String,
    /// Relay mode, for TCP and UDP: `broadcast`, `echo` or `sink`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// The limits in force, so a client knows what to expect.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(default)]
pub struct Limits {
    /// Bytes of payload captured per event; the rest is counted and cut.
    pub snaplen: u64,
    /// Events in the backlog sent on connect.
    pub backlog: u64,
    /// Events per batch frame at most.
    pub batch_max: u64,
    /// Milliseconds between batch frames at most.
    pub batch_ms: u64,
    /// Largest message a client may send, in bytes.
    pub max_message: u64,
    pub max_ws_clients: u64,
    pub max_tcp_conns: u64,
    pub max_http_conns: u64,
    pub max_http_body: u64,
}

/// The current state and the backlog, sent right after `hello`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct Snapshot {
    pub state: LabState,
    /// Recent events, oldest first.
    pub backlog: Vec<Event>,
    /// Set when the client asked to resume (`/ws?since=N`) and the backlog still held
    /// every event after N: `backlog` then holds exactly those. When `None`, the client
    /// must start its timeline afresh from `backlog`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<u64>,
    /// The highest `seq` issued so far.
    pub last_seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;
    use crate::state::{Counters, TcpConnInfo, TcpKernelInfo, UdpPeerInfo, WsClientInfo};

    #[test]
    fn every_server_message_round_trips_through_json() {
        let state = LabState {
            ts_us: 1,
            tcp: vec![TcpConnInfo {
                id: 1,
                kernel: Some(TcpKernelInfo {
                    rtt_us: 30,
                    ..Default::default()
                }),
                ..Default::default()
            }],
            udp: vec![UdpPeerInfo::default()],
            ws: vec![WsClientInfo::default()],
            ws_service: vec![crate::state::WsServiceClientInfo {
                id: 3,
                path: "/x".into(),
                ..Default::default()
            }],
            http: vec![Default::default()],
            pool: Some(PoolStatus::default()),
            proxies: vec![crate::proxy::ProxyInfo {
                name: "redis".into(),
                protocol: crate::proxy::ProxyProtocol::Udp,
                legs: vec![crate::proxy::RelayConnInfo {
                    conn: 2,
                    upstream_kernel: Some(TcpKernelInfo::default()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            counters: Counters {
                events: 4,
                ..Default::default()
            },
        };
        let ev = Event {
            seq: 7,
            ts_us: 8,
            kind: EventKind::Chat {
                from: "a".into(),
                text: "b".into(),
            },
        };
        let msgs = vec![
            ServerMsg::Hello(Hello {
                server: "wirelab".into(),
                services: vec![ServiceInfo {
                    name: "udp".into(),
                    addr: "127.0.0.1:1339".into(),
                    mode: Some("broadcast".into()),
                }],
                ..Default::default()
            }),
            ServerMsg::Snapshot(Box::new(Snapshot {
                state: state.clone(),
                backlog: vec![ev.clone()],
                resumed_from: Some(6),
                last_seq: 7,
            })),
            ServerMsg::Events { events: vec![ev] },
            ServerMsg::Lagged { missed: 3 },
            ServerMsg::Ack {
                id: 1,
                detail: Some("sent".into()),
            },
            ServerMsg::Error {
                id: None,
                message: "no".into(),
            },
            ServerMsg::State(Box::new(state)),
            ServerMsg::Pool(PoolStatus::default()),
            ServerMsg::Pong { id: 2, ts_us: 3 },
        ];
        for msg in msgs {
            let json = serde_json::to_string(&msg).unwrap();
            assert_eq!(
                serde_json::from_str::<ServerMsg>(&json).unwrap(),
                msg,
                "{json}"
            );
        }
    }

    #[test]
    fn frames_are_tagged_by_type() {
        let json = serde_json::to_string(&ServerMsg::Lagged { missed: 5 }).unwrap();
        assert_eq!(json, r#"{"type":"lagged","missed":5}"#);
    }
}
