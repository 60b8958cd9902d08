//! [`FromJson`] for every type in a [`ServerMsg`]: how the dashboard reads the server's
//! frames (with [`crate::json`], not serde; the server and other clients keep serde).
//!
//! Each type reads exactly what its serde derive reads, field for field: a struct marked
//! `#[serde(default)]` starts from its `Default` and takes the keys it finds; elsewhere a
//! field without `#[serde(default)]` is required; unknown keys are skipped. An internally
//! tagged enum (`ServerMsg`, `EventKind`) must have `type` as its first key, which the
//! server always writes first. The tests read every frame both ways and compare.

use std::borrow::Cow;

use crate::event::{CloseReason, Direction, Event, EventKind, HttpExchange, Leg, TlsHandshake};
use crate::json::{Error, FromJson, Value};
use crate::message::{Hello, Limits, ServerMsg, ServiceInfo, Snapshot};
use crate::payload::{Encoding, Payload};
use crate::pool::{PoolSpec, PoolState, PoolStatus};
use crate::proxy::{ProxyInfo, ProxyProtocol, RelayConnInfo, ToxicInfo};
use crate::state::{
    Counters, HttpConnInfo, LabState, TcpConnInfo, TcpKernelInfo, UdpPeerInfo, WsClientInfo,
    WsServiceClientInfo,
};

/// What a value of the wrong kind gets.
fn expected(what: &str) -> Error {
    Error(format!("expected {what}"))
}

impl FromJson for bool {
    fn from_json(value: Value<'_>) -> Result<Self, Error> {
        match value {
            Value::Bool(b) => Ok(b),
            _ => Err(expected("true or false")),
        }
    }
}

/// An unsigned integer no larger than `max`.
fn uint(value: Value<'_>, max: u64) -> Result<u64, Error> {
    let Value::Num(text) = value else {
        return Err(expected("an unsigned integer"));
    };
    if text.starts_with('-') {
        return Err(expected("an unsigned integer"));
    }
    let mut n: u64 = 0;
    for d in text.bytes() {
        if !d.is_ascii_digit() {
            return Err(expected("an integer"));
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or_else(|| Error("number out of range".into()))?;
    }
    if n > max {
        return Err(Error("number out of range".into()));
    }
    Ok(n)
}

macro_rules! unsigned {
    ($($ty:ty)*) => {$(
        impl FromJson for $ty {
            fn from_json(value: Value<'_>) -> Result<Self, Error> {
                // In range: `uint` checked it.
                uint(value, <$ty>::MAX.into()).map(|n| n as $ty)
            }
        }
    )*};
}
unsigned!(u8 u16 u32 u64);

/// A string's text, borrowed from the frame or not.
fn text(value: Value<'_>) -> Result<Cow<'_, str>, Error> {
    match value {
        Value::Str(s) => Ok(s),
        _ => Err(expected("a string")),
    }
}

impl FromJson for String {
    fn from_json(value: Value<'_>) -> Result<Self, Error> {
        text(value).map(Cow::into_owned)
    }
}

/// `null` is `None`, as serde reads it.
impl<T: FromJson> FromJson for Option<T> {
    fn from_json(value: Value<'_>) -> Result<Self, Error> {
        match value {
            Value::Null => Ok(None),
            value => T::from_json(value).map(Some),
        }
    }
}

impl<T: FromJson> FromJson for Box<T> {
    fn from_json(value: Value<'_>) -> Result<Self, Error> {
        T::from_json(value).map(Box::new)
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(value: Value<'_>) -> Result<Self, Error> {
        let mut out = Vec::new();
        each(value, &mut |item| {
            out.push(T::from_json(item)?);
            Ok(())
        })?;
        Ok(out)
    }
}

/// Hands an array's items to `item`, in order, until one fails. Not generic: the loop and
/// the array's check are made once, not for each `Vec<T>` (inlined in every struct that
/// holds a `Vec`, they were some KB of the wasm); nor `collect::<Result<_, _>>()`, whose
/// adapter, made for each `T`, was 2 KB more.
fn each(
    value: Value<'_>,
    item: &mut dyn FnMut(Value<'_>) -> Result<(), Error>,
) -> Result<(), Error> {
    match value {
        Value::Array(items) => items.into_iter().try_for_each(item),
        _ => Err(expected("an array")),
    }
}

/// A header: `[name, value]`.
impl FromJson for (String, String) {
    fn from_json(value: Value<'_>) -> Result<Self, Error> {
        if let Value::Array(items) = value
            && let Ok([name, value]) = <[Value<'_>; 2]>::try_from(items)
        {
            return Ok((String::from_json(name)?, String::from_json(value)?));
        }
        Err(expected("a [name, value] pair"))
    }
}

/// Unit enums, by their snake_case names: read here, and written by [`crate::encode`].
macro_rules! names {
    ($($ty:ident { $($name:literal => $variant:ident),* $(,)? })*) => {$(
        impl crate::encode::Word for $ty {
            fn word(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)*
                }
            }
        }

        impl FromJson for $ty {
            fn from_json(value: Value<'_>) -> Result<Self, Error> {
                match &*text(value)? {
                    $($name => Ok($ty::$variant),)*
                    other => Err(unknown(other)),
                }
            }
        }
    )*};
}

fn unknown(variant: &str) -> Error {
    Error(format!("unknown variant `{variant}`"))
}

names! {
    Direction { "in" => In, "out" => Out }
    Leg { "client" => Client, "upstream" => Upstream }
    ProxyProtocol { "tcp" => Tcp, "http" => Http, "udp" => Udp }
    CloseReason {
        "fin" => Fin,
        "reset" => Reset,
        "error" => Error,
        "closed_from_page" => ClosedFromPage,
        "reset_from_page" => ResetFromPage,
        "idle_timeout" => IdleTimeout,
        "shutdown" => Shutdown,
        "fault" => Fault,
        "fault_reset" => FaultReset,
    }
    Encoding { "text" => Text, "base64" => Base64, "hex" => Hex }
    PoolState { "running" => Running, "done" => Done, "cancelled" => Cancelled, "failed" => Failed }
}

/// An object's members, taken out one field at a time. A field that is missing (when
/// needed) or unreadable gives a stand-in value, and the first such error is kept for
/// [`Fields::done`]: one check per object rather than an early return per field.
pub struct Fields<'a> {
    members: Vec<(Cow<'a, str>, Value<'a>)>,
    error: Option<Error>,
}

impl<'a> Fields<'a> {
    /// The members of an object.
    pub fn of(value: Value<'a>) -> Result<Self, Error> {
        match value {
            Value::Object(members) => Ok(Fields {
                members,
                error: None,
            }),
            _ => Err(expected("an object")),
        }
    }

    /// An internally tagged object's tag, and its other members. `type` must come first.
    fn tagged(value: Value<'a>) -> Result<(Cow<'a, str>, Self), Error> {
        let mut fields = Fields::of(value)?;
        match fields.members.first() {
            Some((key, _)) if key == "type" => {}
            Some((key, _)) => {
                return Err(Error(format!(
                    "`type` must be the first key, found `{key}`"
                )));
            }
            None => return Err(Error("missing field `type`".into())),
        }
        let (_, tag) = fields.members.remove(0);
        Ok((text(tag)?, fields))
    }

    /// The value of `key`: when it is not there, `fallback`, and an error if `needed`.
    pub fn get<T: FromJson>(&mut self, key: &str, needed: bool, fallback: T) -> T {
        // The generic part is only the conversion: finding the key and keeping an error
        // are `take` and `fail`, once for every type.
        match self.take(key, needed).map(T::from_json) {
            Some(Ok(t)) => t,
            Some(Err(e)) => {
                self.fail_field(key, e);
                fallback
            }
            None => fallback,
        }
    }

    /// Keeps a field's error (not inlined: formatting it at every call was a fifth of the
    /// dashboard's decoding code).
    #[cold]
    #[inline(never)]
    fn fail_field(&mut self, key: &str, e: Error) {
        self.fail(format_args!("field `{key}`: {e}"));
    }

    /// The value of `key`, taken out; when it is not there, `None`, and an error if
    /// `needed`.
    fn take(&mut self, key: &str, needed: bool) -> Option<Value<'a>> {
        match self.members.iter_mut().find(|(k, _)| k == key) {
            Some((_, value)) => Some(std::mem::replace(value, Value::Null)),
            None => {
                if needed {
                    self.fail(format_args!("missing field `{key}`"));
                }
                None
            }
        }
    }

    /// Keeps `error` unless one came first.
    #[cold]
    fn fail(&mut self, error: std::fmt::Arguments<'_>) {
        if self.error.is_none() {
            self.error = Some(Error(error.to_string()));
        }
    }

    /// A required field.
    pub fn need<T: FromJson + Default>(&mut self, key: &str) -> T {
        self.get(key, true, T::default())
    }

    /// A field marked `#[serde(default)]`.
    pub fn opt<T: FromJson + Default>(&mut self, key: &str) -> T {
        self.get(key, false, T::default())
    }

    /// The first error met, if any.
    pub fn done(self) -> Result<(), Error> {
        self.error.map_or(Ok(()), Err)
    }
}

/// A struct marked `#[serde(default)]`: each field from its key, else from `Default`.
macro_rules! with_defaults {
    ($($ty:ident { $($field:ident),* $(,)? })*) => {$(
        impl $ty {
            /// Reads this struct's fields from `f` (a whole object's, or the members after a
            /// tag).
            fn from_fields(f: &mut Fields<'_>) -> Self {
                let d = <$ty>::default();
                $ty { $($field: f.get(stringify!($field), false, d.$field),)* }
            }
        }

        impl FromJson for $ty {
            fn from_json(value: Value<'_>) -> Result<Self, Error> {
                let mut f = Fields::of(value)?;
                let v = <$ty>::from_fields(&mut f);
                f.done().map(|()| v)
            }
        }
    )*};
}

with_defaults! {
    Hello {
        server, version, protocol, client, services, limits, token_required, bridge,
        allow_outbound, ca_fingerprint,
    }
    ServiceInfo { name, addr, mode }
    Limits {
        snaplen, backlog, batch_max, batch_ms, max_message, max_ws_clients, max_tcp_conns,
        max_http_conns, max_http_body,
    }
    Snapshot { state, backlog, resumed_from, last_seq }
    LabState { ts_us, tcp, udp, ws, ws_service, http, pool, proxies, counters }
    ProxyInfo {
        name, listen, upstream, protocol, enabled, open, conns, refused, client_in, client_out,
        upstream_in, upstream_out, dropped, legs, toxics,
    }
    ToxicInfo { name, kind, stream, detail, conns, spared, bytes, dropped, cuts, acted }
    RelayConnInfo {
        conn, peer, upstream_local, since_us, client_in, client_out, upstream_in, upstream_out,
        client_half_closed, upstream_half_closed, client_kernel, upstream_kernel, websocket,
        faults,
    }
    TcpConnInfo {
        id, peer, local, outbound, since_us, bytes_in, bytes_out, half_closed, kernel, faults,
    }
    TcpKernelInfo { rtt_us, rttvar_us, cwnd, retransmits, bytes_acked }
    UdpPeerInfo { peer, first_us, last_us, dgrams_in, dgrams_out, bytes_in, bytes_out, faults }
    WsClientInfo {
        id, peer, user_agent, dashboard, deflate, since_us, frames_in, frames_out, bytes_in,
        bytes_out, missed, lagged,
    }
    WsServiceClientInfo {
        id, peer, path, user_agent, deflate, since_us, frames_in, frames_out, bytes_in,
        bytes_out, closing,
    }
    HttpConnInfo { id, peer, since_us, requests, faults }
    Counters {
        events, events_dropped, tcp_conns, tcp_refused, tcp_bytes_in, tcp_bytes_out,
        tcp_bytes_dropped, udp_dgrams_in, udp_dgrams_out, udp_bytes_in, udp_bytes_out,
        udp_peers_evicted, udp_send_errors, http_requests, http_conns, http_refused,
        http_bytes_in, http_bytes_out, ws_clients, ws_refused, ws_frames_in, ws_frames_out,
        ws_bytes_in, ws_bytes_out, ws_missed, ws_slow_closed, ws_service_clients,
        ws_service_refused, ws_service_dropped, relay_conns, relay_refused, bridge_dropped,
        fault_dropped, stored, store_errors,
    }
    PoolSpec { url, requests, concurrency, max_conns, keep_alive, no_pool }
    PoolStatus {
        run, state, spec, in_use, idle, waiting, opened, done, errors, p50_us, p99_us,
        elapsed_us, error,
    }
}

impl FromJson for Payload {
    fn from_json(value: Value<'_>) -> Result<Self, Error> {
        let mut f = Fields::of(value)?;
        let payload = Payload {
            enc: f.need("enc"),
            data: f.need("data"),
            cut: f.opt("cut"),
        };
        f.done().map(|()| payload)
    }
}

impl FromJson for Event {
    fn from_json(value: Value<'_>) -> Result<Self, Error> {
        let mut f = Fields::of(value)?;
        let (seq, ts_us) = (f.need("seq"), f.need("ts_us"));
        let kind: Option<EventKind> = f.need("kind");
        f.done()?;
        let kind = kind.ok_or_else(|| expected("an object for `kind`"))?;
        Ok(Event { seq, ts_us, kind })
    }
}

/// `EventKind::Http`'s exchange: the members after the tag.
fn http_exchange(f: &mut Fields<'_>) -> HttpExchange {
    HttpExchange {
        id: f.need("id"),
        conn: f.need("conn"),
        seq_on_conn: f.need("seq_on_conn"),
        peer: f.need("peer"),
        method: f.need("method"),
        target: f.need("target"),
        version: f.need("version"),
        headers: f.need("headers"),
        body: f.need("body"),
        body_size: f.need("body_size"),
        status: f.need("status"),
        // Recordings from before the field: the lab answered with HTTP/1.1 then.
        resp_version: f.get("resp_version", false, "HTTP/1.1".to_owned()),
        resp_reason: f.opt("resp_reason"),
        resp_headers: f.need("resp_headers"),
        resp_body: f.need("resp_body"),
        resp_size: f.need("resp_size"),
        ttfb_us: f.need("ttfb_us"),
        total_us: f.need("total_us"),
        replay_of: f.opt("replay_of"),
        tls: f.opt("tls"),
    }
}

impl FromJson for HttpExchange {
    fn from_json(value: Value<'_>) -> Result<Self, Error> {
        let mut f = Fields::of(value)?;
        let x = http_exchange(&mut f);
        f.done().map(|()| x)
    }
}

impl FromJson for EventKind {
    fn from_json(value: Value<'_>) -> Result<Self, Error> {
        let (tag, mut f) = Fields::tagged(value)?;
        let dir = |f: &mut Fields<'_>| f.get("dir", true, Direction::In);
        let kind = match &*tag {
            "tcp_open" => EventKind::TcpOpen {
                conn: f.need("conn"),
                peer: f.need("peer"),
                local: f.need("local"),
                outbound: f.opt("outbound"),
                handshake_us: f.opt("handshake_us"),
            },
            "tcp_data" => EventKind::TcpData {
                conn: f.need("conn"),
                peer: f.need("peer"),
                dir: dir(&mut f),
                size: f.need("size"),
                payload: f.need("payload"),
            },
            "tcp_half_close" => EventKind::TcpHalfClose {
                conn: f.need("conn"),
                peer: f.need("peer"),
            },
            "tcp_close" => EventKind::TcpClose {
                conn: f.need("conn"),
                peer: f.need("peer"),
                reason: f.get("reason", true, CloseReason::Error),
                detail: f.opt("detail"),
                duration_us: f.need("duration_us"),
                bytes_in: f.need("bytes_in"),
                bytes_out: f.need("bytes_out"),
            },
            "tcp_refused" => EventKind::TcpRefused {
                peer: f.need("peer"),
                reason: f.need("reason"),
            },
            "udp_datagram" => EventKind::UdpDatagram {
                peer: f.need("peer"),
                dir: dir(&mut f),
                size: f.need("size"),
                payload: f.need("payload"),
            },
            "http" => EventKind::Http(Box::new(http_exchange(&mut f))),
            "tls" => EventKind::Tls(Box::new(TlsHandshake {
                service: f.need("service"),
                conn: f.need("conn"),
                peer: f.need("peer"),
                sni: f.need("sni"),
                alpn: f.need("alpn"),
                versions: f.need("versions"),
                ciphers: f.need("ciphers"),
                groups: f.need("groups"),
                key_shares: f.need("key_shares"),
                sig_algs: f.need("sig_algs"),
                ja4: f.need("ja4"),
                version: f.need("version"),
                cipher: f.need("cipher"),
                alpn_chosen: f.need("alpn_chosen"),
                cert: f.need("cert"),
                handshake_us: f.need("handshake_us"),
                error: f.opt("error"),
            })),
            "ws_open" => EventKind::WsOpen {
                client: f.need("client"),
                peer: f.need("peer"),
                user_agent: f.opt("user_agent"),
                dashboard: f.opt("dashboard"),
            },
            "ws_close" => EventKind::WsClose {
                client: f.need("client"),
                peer: f.need("peer"),
                code: f.opt("code"),
                reason: f.opt("reason"),
                duration_us: f.need("duration_us"),
            },
            "ws_message" => EventKind::WsMessage {
                client: f.need("client"),
                peer: f.need("peer"),
                size: f.need("size"),
                payload: f.need("payload"),
            },
            "chat" => EventKind::Chat {
                from: f.need("from"),
                text: f.need("text"),
            },
            "ws_service_open" => EventKind::WsServiceOpen {
                client: f.need("client"),
                peer: f.need("peer"),
                path: f.need("path"),
                user_agent: f.opt("user_agent"),
                deflate: f.opt("deflate"),
            },
            "ws_service_frame" => EventKind::WsServiceFrame {
                client: f.need("client"),
                peer: f.need("peer"),
                dir: dir(&mut f),
                opcode: f.need("opcode"),
                fin: f.need("fin"),
                rsv1: f.need("rsv1"),
                size: f.need("size"),
                payload: f.need("payload"),
                close_code: f.opt("close_code"),
                close_reason: f.opt("close_reason"),
                skipped: f.opt("skipped"),
            },
            "ws_service_close" => EventKind::WsServiceClose {
                client: f.need("client"),
                peer: f.need("peer"),
                code: f.opt("code"),
                reason: f.opt("reason"),
                detail: f.opt("detail"),
                duration_us: f.need("duration_us"),
                bytes_in: f.need("bytes_in"),
                bytes_out: f.need("bytes_out"),
                frames_not_shown: f.opt("frames_not_shown"),
            },
            "pool_started" => EventKind::PoolStarted {
                run: f.need("run"),
                spec: f.need("spec"),
            },
            "pool_finished" => EventKind::PoolFinished {
                run: f.need("run"),
                status: f.need("status"),
            },
            "relay_open" => EventKind::RelayOpen {
                proxy: f.need("proxy"),
                conn: f.need("conn"),
                peer: f.need("peer"),
                listen: f.need("listen"),
                upstream: f.need("upstream"),
                upstream_local: f.need("upstream_local"),
                connect_us: f.need("connect_us"),
            },
            "relay_data" => EventKind::RelayData {
                proxy: f.need("proxy"),
                conn: f.need("conn"),
                peer: f.need("peer"),
                from: f.get("from", true, Leg::Client),
                size: f.need("size"),
                payload: f.need("payload"),
            },
            "relay_send" => EventKind::RelaySend {
                proxy: f.need("proxy"),
                conn: f.need("conn"),
                peer: f.need("peer"),
                to: f.get("to", true, Leg::Client),
                size: f.need("size"),
                payload: f.need("payload"),
            },
            "relay_half_close" => EventKind::RelayHalfClose {
                proxy: f.need("proxy"),
                conn: f.need("conn"),
                peer: f.need("peer"),
                from: f.get("from", true, Leg::Client),
            },
            "relay_close" => EventKind::RelayClose {
                proxy: f.need("proxy"),
                conn: f.need("conn"),
                peer: f.need("peer"),
                reason: f.get("reason", true, CloseReason::Error),
                by: f.opt("by"),
                detail: f.opt("detail"),
                duration_us: f.need("duration_us"),
                client_in: f.need("client_in"),
                client_out: f.need("client_out"),
                upstream_in: f.need("upstream_in"),
                upstream_out: f.need("upstream_out"),
            },
            "relay_refused" => EventKind::RelayRefused {
                proxy: f.need("proxy"),
                peer: f.need("peer"),
                reason: f.need("reason"),
            },
            "relay_fault" => EventKind::RelayFault {
                proxy: f.need("proxy"),
                conn: f.need("conn"),
                peer: f.need("peer"),
                from: f.get("from", true, Leg::Client),
                toxic: f.need("toxic"),
                what: f.need("what"),
            },
            "toxic_change" => EventKind::ToxicChange {
                proxy: f.need("proxy"),
                toxic: f.need("toxic"),
                action: f.need("action"),
                detail: f.need("detail"),
            },
            "relay_udp_open" => EventKind::RelayUdpOpen {
                proxy: f.need("proxy"),
                session: f.need("session"),
                peer: f.need("peer"),
                listen: f.need("listen"),
                upstream: f.need("upstream"),
                upstream_local: f.need("upstream_local"),
            },
            "relay_datagram" => EventKind::RelayDatagram {
                proxy: f.need("proxy"),
                session: f.need("session"),
                peer: f.need("peer"),
                from: f.get("from", true, Leg::Client),
                size: f.need("size"),
                payload: f.need("payload"),
            },
            "relay_udp_close" => EventKind::RelayUdpClose {
                proxy: f.need("proxy"),
                session: f.need("session"),
                peer: f.need("peer"),
                reason: f.need("reason"),
                duration_us: f.need("duration_us"),
                client_in: f.need("client_in"),
                client_out: f.need("client_out"),
                upstream_in: f.need("upstream_in"),
                upstream_out: f.need("upstream_out"),
            },
            "relay_http" => EventKind::RelayHttp {
                proxy: f.need("proxy"),
                exchange: f.need("exchange"),
                connect_us: f.opt("connect_us"),
                note: f.opt("note"),
            },
            "relay_ws_frame" => EventKind::RelayWsFrame {
                proxy: f.need("proxy"),
                conn: f.need("conn"),
                peer: f.need("peer"),
                from: f.get("from", true, Leg::Client),
                opcode: f.need("opcode"),
                fin: f.need("fin"),
                rsv1: f.need("rsv1"),
                size: f.need("size"),
                payload: f.need("payload"),
                close_code: f.opt("close_code"),
                close_reason: f.opt("close_reason"),
                skipped: f.opt("skipped"),
            },
            "relay_notice" => EventKind::RelayNotice {
                proxy: f.need("proxy"),
                conn: f.need("conn"),
                peer: f.need("peer"),
                from: f.get("from", true, Leg::Client),
                detail: f.need("detail"),
            },
            "notice" => EventKind::Notice {
                level: f.need("level"),
                message: f.need("message"),
            },
            other => return Err(unknown(other)),
        };
        f.done().map(|()| kind)
    }
}

impl FromJson for ServerMsg {
    fn from_json(value: Value<'_>) -> Result<Self, Error> {
        let (tag, mut f) = Fields::tagged(value)?;
        let msg = match &*tag {
            "hello" => ServerMsg::Hello(Hello::from_fields(&mut f)),
            "snapshot" => ServerMsg::Snapshot(Box::new(Snapshot::from_fields(&mut f))),
            "events" => ServerMsg::Events {
                events: f.need("events"),
            },
            "lagged" => ServerMsg::Lagged {
                missed: f.need("missed"),
            },
            "ack" => ServerMsg::Ack {
                id: f.need("id"),
                detail: f.opt("detail"),
            },
            "error" => ServerMsg::Error {
                id: f.opt("id"),
                message: f.need("message"),
            },
            "state" => ServerMsg::State(Box::new(LabState::from_fields(&mut f))),
            "pool" => ServerMsg::Pool(PoolStatus::from_fields(&mut f)),
            "pong" => ServerMsg::Pong {
                id: f.need("id"),
                ts_us: f.need("ts_us"),
            },
            other => return Err(unknown(other)),
        };
        f.done().map(|()| msg)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::json::from_str;
    use crate::state::WsServiceClientInfo;

    /// Every frame the server may send: each variant, state with every list filled and
    /// every option set, and every kind of event.
    fn frames() -> Vec<ServerMsg> {
        let state = LabState {
            tcp: vec![TcpConnInfo {
                kernel: Some(TcpKernelInfo::default()),
                faults: vec!["latency_downstream".into()],
                ..Default::default()
            }],
            udp: vec![UdpPeerInfo {
                faults: vec!["loss_upstream".into()],
                ..Default::default()
            }],
            ws: vec![WsClientInfo::default()],
            ws_service: vec![WsServiceClientInfo::default()],
            http: vec![HttpConnInfo {
                faults: vec!["latency_both".into()],
                ..Default::default()
            }],
            pool: Some(PoolStatus {
                error: Some("refused".into()),
                ..Default::default()
            }),
            proxies: vec![ProxyInfo {
                protocol: ProxyProtocol::Udp,
                legs: vec![RelayConnInfo {
                    faults: vec!["latency_downstream".into()],
                    client_kernel: Some(TcpKernelInfo::default()),
                    upstream_kernel: Some(TcpKernelInfo::default()),
                    ..Default::default()
                }],
                toxics: vec![ToxicInfo::default()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let events: Vec<Event> = crate::event::tests::samples()
            .into_iter()
            .map(|kind| Event {
                seq: 1,
                ts_us: 2,
                kind,
            })
            // The fields the samples leave out (`None`, or 0 where 0 is not written).
            .chain(
                [
                    EventKind::Http(Box::new(HttpExchange {
                        replay_of: Some(1),
                        body: Payload {
                            cut: 5,
                            ..Default::default()
                        },
                        ..Default::default()
                    })),
                    EventKind::TcpOpen {
                        conn: 1,
                        peer: "p".into(),
                        local: "l".into(),
                        outbound: true,
                        handshake_us: Some(5),
                    },
                    EventKind::WsServiceClose {
                        client: 2,
                        peer: "p".into(),
                        code: None,
                        reason: String::new(),
                        detail: String::new(),
                        duration_us: 3,
                        bytes_in: 4,
                        bytes_out: 5,
                        frames_not_shown: 6,
                    },
                ]
                .map(|kind| Event {
                    seq: 3,
                    ts_us: 4,
                    kind,
                }),
            )
            .collect();
        vec![
            ServerMsg::Hello(Hello {
                services: vec![ServiceInfo {
                    mode: Some("echo".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ServerMsg::Snapshot(Box::new(Snapshot {
                state: state.clone(),
                backlog: events.clone(),
                resumed_from: Some(1),
                last_seq: 2,
            })),
            ServerMsg::Events { events },
            ServerMsg::Lagged { missed: 3 },
            ServerMsg::Ack {
                id: 1,
                detail: Some("sent".into()),
            },
            ServerMsg::Ack {
                id: 1,
                detail: None,
            },
            ServerMsg::Error {
                id: Some(2),
                message: "no".into(),
            },
            ServerMsg::State(Box::new(state)),
            ServerMsg::Pool(PoolStatus::default()),
            ServerMsg::Pong { id: 2, ts_us: 3 },
        ]
    }

    /// The names of unit variants, which must stay as they are.
    const NAMES: &[&str] = &[
        "in",
        "out",
        "client",
        "upstream",
        "tcp",
        "http",
        "udp",
        "text",
        "base64",
        "hex",
        "running",
        "done",
        "cancelled",
        "failed",
        "fin",
        "reset",
        "error",
        "closed_from_page",
        "reset_from_page",
        "idle_timeout",
        "shutdown",
        "fault",
        "fault_reset",
    ];

    /// Gives every number a different value, every bool `true`, and every string (but tags
    /// and variant names) escapes and non-ASCII characters, so that a field read into the
    /// wrong place, or not read, shows.
    fn vary(value: &mut Value, next: &mut u64) {
        match value {
            Value::Number(n) => {
                *next += 1;
                *n = (*next % 250 + 1).into();
            }
            Value::Bool(b) => *b = true,
            Value::String(s) if !NAMES.contains(&s.as_str()) => {
                s.push_str(" \"é\\\n\u{1F600}\u{7}");
            }
            Value::Array(items) => items.iter_mut().for_each(|v| vary(v, next)),
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if key != "type" {
                        vary(v, next);
                    }
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_frame_reads_as_serde_reads_it() {
        let mut next = 0;
        for frame in frames() {
            let mut value = serde_json::to_value(&frame).unwrap();
            vary(&mut value, &mut next);
            // Through serde again, so that `type` comes first as the server writes it.
            let varied: ServerMsg = serde_json::from_value(value).unwrap();
            for json in [
                serde_json::to_string(&varied).unwrap(),
                serde_json::to_string_pretty(&varied).unwrap(),
            ] {
                assert_eq!(from_str::<ServerMsg>(&json), Ok(varied.clone()), "{json}");
            }
        }
    }

    #[test]
    fn defaults_and_unknown_keys_are_as_serde_has_them() {
        let read = |json: &str| {
            let ours = from_str::<ServerMsg>(json).unwrap();
            assert_eq!(
                ours,
                serde_json::from_str::<ServerMsg>(json).unwrap(),
                "{json}"
            );
            ours
        };
        // A struct marked `#[serde(default)]` starts from its `Default` (PoolSpec's is not
        // all zeros), and unknown keys are skipped whatever they hold.
        let ServerMsg::Pool(pool) = read(
            r#"{"type":"pool","new":[1,-2.5e+3,0.5,{"a":null,"b":[true,false,"x\"]"]}],"spec":{}}"#,
        ) else {
            panic!()
        };
        assert_eq!(pool.spec, PoolSpec::default());
        read(r#"{"type":"ack","id":1,"detail":null}"#);
        read(r#"{"type":"state","pool":null}"#);
        read(r#" { "type" : "pong" , "id" : 0 , "ts_us" : 18446744073709551615 } "#);
        // HTTP events recorded before the status line's fields: HTTP/1.1, no reason.
        let http = serde_json::to_string(&ServerMsg::Events {
            events: vec![Event {
                seq: 1,
                ts_us: 2,
                kind: EventKind::Http(Box::default()),
            }],
        })
        .unwrap();
        let old = http.replace(r#""resp_version":"","resp_reason":"","#, "");
        assert!(old.len() < http.len(), "{http}");
        let ServerMsg::Events { events } = read(&old) else {
            panic!()
        };
        let EventKind::Http(x) = &events[0].kind else {
            panic!()
        };
        assert_eq!(x.resp_version, "HTTP/1.1");
    }

    #[test]
    fn strings_read_every_escape() {
        let json = r#""a\"b\\c\/d\b\f\n\r\t\u00e9\u20AC\ud83d\ude00 é€😀""#;
        let want: String = serde_json::from_str(json).unwrap();
        assert_eq!(from_str::<String>(json), Ok(want));
        for bad in [
            r#""\ud83d""#,
            r#""\ude00""#,
            r#""\x""#,
            r#""\u12""#,
            "\"a\nb\"",
            r#""a"#,
        ] {
            assert!(from_str::<String>(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<String>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_event_kinds_are_refused() {
        let err = |json: &str| from_str::<EventKind>(json).unwrap_err().0;
        assert!(err("{}").contains("missing field `type`"));
        assert!(err(r#"{"type":"smtp_mail","peer":"p"}"#).contains("unknown variant `smtp_mail`"));
        assert!(err(r#"{"type":"chat","from":"a"}"#).contains("missing field `text`"));
        assert!(err("[1]").contains("expected an object"));
        // A newtype variant's fields follow the tag too.
        assert!(err(r#"{"type":"http","id":4,"status":200}"#).contains("missing field `conn`"));
    }

    #[test]
    fn bad_frames_are_refused() {
        let err = |json: &str| from_str::<ServerMsg>(json).unwrap_err().0;
        assert!(err(r#"{"missed":5,"type":"lagged"}"#).contains("`type` must be the first key"));
        assert!(err(r#"{"type":"smtp"}"#).contains("unknown variant `smtp`"));
        assert!(err(r#"{"type":"pong","id":1}"#).contains("missing field `ts_us`"));
        assert!(err(r#"{"type":"lagged","missed":5} x"#).contains("trailing characters"));
        assert!(err(r#"{"type":"lagged","missed":05}"#).contains("leading zero"));
        assert!(err(r#"{"type":"lagged","missed":5.0}"#).contains("expected an integer"));
        assert!(err(r#"{"type":"lagged","missed":-5}"#).contains("unsigned integer"));
        assert!(err(r#"{"type":"lagged","missed":18446744073709551616}"#).contains("range"));
        assert!(err(r#"{"type":"lagged","missed":5,"x":1.}"#).contains("invalid number"));
        assert!(err(r#"{"type":"lagged","missed":5"#).contains("expected `,` or `}`"));
        let frame = |opcode: &str| {
            format!(
                r#"{{"type":"events","events":[{{"seq":1,"ts_us":2,"kind":{{"type":"ws_service_frame","client":1,"peer":"p","dir":"in","opcode":{opcode},"fin":true,"rsv1":false,"size":0,"payload":{{"enc":"text","data":""}}}}}}]}}"#
            )
        };
        assert!(from_str::<ServerMsg>(&frame("255")).is_ok());
        assert!(err(&frame("256")).contains("out of range"));
        let deep = format!(
            r#"{{"type":"lagged","missed":1,"x":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(err(&deep).contains("nested too deep"));
    }
}
