//! # wirelab-shared: the wire protocol
//!
//! Everything the server and the dashboard say to each other over `/ws` is defined here,
//! once, with serde (and base64 for binary payloads) so the crate builds natively and for
//! wasm32. The prose version, with examples, is `docs/protocol.md`.
//!
//! ## Layout
//! - [`event`]: [`Event`], one thing that happened on a service, with its `seq` and time.
//! - [`payload`]: [`Payload`], captured bytes as text or base64, and the codecs for them.
//! - [`state`]: [`LabState`], the current picture (connections, peers, clients, counters).
//! - [`message`]: [`ServerMsg`], every frame the server sends.
//! - [`command`]: [`Command`], every frame a client may send, each answered by
//!   `ack` or `error`.
//! - [`pool`]: the connection-pool lab's run spec and live figures.
//! - [`proxy`]: relay mode's proxies and their open connections, as `state` lists them.
//! - [`json`] and [`decode`]: a small hand-written JSON reader, and every type of a
//!   `ServerMsg` read with it: how the dashboard's wasm reads the frames (a fifth of the
//!   size of serde's derive there); the tests check it against serde.
//! - [`encode`]: an [`Event`] written as JSON by hand, byte for byte serde's: how the
//!   server writes every event (twice as fast) and the dashboard its JSON view and export.
//! - [`har`]: HTTP exchanges as HAR 1.2, for the server's `/api/http.har` and the page's
//!   export alike.
//! - [`time`]: civil dates and ISO 8601 (UTC, milliseconds) from the events' timestamps.

pub mod command;
pub mod decode;
pub mod encode;
pub mod event;
pub mod har;
pub mod json;
pub mod message;
pub mod payload;
pub mod pool;
pub mod proxy;
pub mod state;
pub mod time;

pub use command::{Command, CommandKind};
pub use event::{
    CloseReason, Direction, Event, EventKind, HttpExchange, Leg, Protocol, TlsHandshake,
};
pub use message::{Hello, Limits, ServerMsg, ServiceInfo, Snapshot};
pub use payload::{Encoding, Payload};
pub use pool::{PoolSpec, PoolState, PoolStatus};
pub use proxy::{ProxyInfo, ProxyProtocol, RelayConnInfo, ToxicInfo};
pub use state::{
    Counters, LabState, TcpConnInfo, TcpKernelInfo, UdpPeerInfo, WsClientInfo, WsServiceClientInfo,
};

/// Version of this protocol; bumped on any incompatible change. Sent in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// WebSocket close code for a client that stayed too far behind for too long.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// WebSocket close code when the client limit is reached.
pub const CLOSE_TOO_MANY_CLIENTS: u16 = 4029;
/// WebSocket close code when the peer stayed silent past the idle timeout.
pub const CLOSE_IDLE: u16 = 4000;
