//! [`FromJson`] for every type in a [`ServerMsg`]: how the dashboard reads the server's
//! frames (with [`crate::json`], not serde; the server and other clients keep serde).
//!
//! Each type reads exactly what its serde derive reads, field for field: a struct marked
//! `#[serde(default)]` starts from its `Default` and takes the keys it finds; elsewhere a
//! field without `#[serde(default)]` is required; unknown keys are skipped. An internally
//! tagged enum (`ServerMsg`, `EventKind`) must have `type` as its first key, which the
//! server always writes first. The tests read every frame both ways and compare.

use crate::event::{CloseReason, Direction, Event, EventKind, HttpExchange};
use crate::json::{Error, FromJson, Reader};
use crate::message::{Hello, Limits, ServerMsg, ServiceInfo, Snapshot};
use crate::payload::{Encoding, Payload};
use crate::pool::{PoolSpec, PoolState, PoolStatus};
use crate::state::{
    Counters, HttpConnInfo, LabState, TcpConnInfo, TcpKernelInfo, UdpPeerInfo, WsClientInfo,
    WsServiceClientInfo,
};

impl FromJson for bool {
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        r.bool()
    }
}

macro_rules! unsigned {
    ($($ty:ty)*) => {$(
        impl FromJson for $ty {
            fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
                // In range: `uint` checked it.
                r.uint(<$ty>::MAX.into()).map(|n| n as $ty)
            }
        }
    )*};
}
unsigned!(u8 u16 u32 u64);

impl FromJson for String {
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        r.str().map(|s| s.into_owned())
    }
}

/// `null` is `None`, as serde reads it.
impl<T: FromJson> FromJson for Option<T> {
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        if r.null() {
            Ok(None)
        } else {
            r.read().map(Some)
        }
    }
}

impl<T: FromJson> FromJson for Box<T> {
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        r.read().map(Box::new)
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut items = Vec::new();
        r.array(&mut |r| {
            items.push(r.read()?);
            Ok(())
        })?;
        Ok(items)
    }
}

/// A header: `[name, value]`.
impl FromJson for (String, String) {
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut pair = Vec::<String>::with_capacity(2);
        r.array(&mut |r| {
            pair.push(r.read()?);
            Ok(())
        })?;
        let mut pair = pair.into_iter();
        match (pair.next(), pair.next(), pair.next()) {
            (Some(name), Some(value), None) => Ok((name, value)),
            _ => Err(r.error("expected a [name, value] pair")),
        }
    }
}

/// Unit enums, by their snake_case names.
macro_rules! names {
    ($($ty:ident { $($name:literal => $variant:ident),* $(,)? })*) => {$(
        impl FromJson for $ty {
            fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
                let name = r.str()?;
                match &*name {
                    $($name => Ok($ty::$variant),)*
                    other => Err(r.error(&format!("unknown variant `{other}`"))),
                }
            }
        }
    )*};
}

names! {
    Direction { "in" => In, "out" => Out }
    CloseReason {
        "fin" => Fin,
        "reset" => Reset,
        "error" => Error,
        "closed_from_page" => ClosedFromPage,
        "reset_from_page" => ResetFromPage,
        "idle_timeout" => IdleTimeout,
        "shutdown" => Shutdown,
    }
    Encoding { "text" => Text, "base64" => Base64, "hex" => Hex }
    PoolState { "running" => Running, "done" => Done, "cancelled" => Cancelled, "failed" => Failed }
}

/// A struct marked `#[serde(default)]`, read member by member into its `Default`.
trait Members: Default {
    /// Reads the value of `key` into its field (or skips it).
    fn member(&mut self, r: &mut Reader<'_>, key: &str) -> Result<(), Error>;
}

/// Reads a `#[serde(default)]` struct: a whole object, or the members after a tag.
fn members<T: Members>(r: &mut Reader<'_>, after_tag: bool) -> Result<T, Error> {
    let mut value = T::default();
    let member = &mut |r: &mut Reader<'_>, key: &str| value.member(r, key);
    if after_tag {
        r.rest(member)?;
    } else {
        r.object(member)?;
    }
    Ok(value)
}

macro_rules! with_defaults {
    ($($ty:ident { $($field:ident),* $(,)? })*) => {$(
        impl Members for $ty {
            fn member(&mut self, r: &mut Reader<'_>, key: &str) -> Result<(), Error> {
                match key {
                    $(stringify!($field) => self.$field = r.read()?,)*
                    _ => r.skip()?,
                }
                Ok(())
            }
        }

        impl FromJson for $ty {
            fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
                members(r, false)
            }
        }
    )*};
}

with_defaults! {
    Hello {
        server, version, protocol, client, services, limits, token_required, bridge,
        allow_outbound,
    }
    ServiceInfo { name, addr, mode }
    Limits {
        snaplen, backlog, batch_max, batch_ms, max_message, max_ws_clients, max_tcp_conns,
        max_http_conns, max_http_body,
    }
    Snapshot { state, backlog, resumed_from, last_seq }
    LabState { ts_us, tcp, udp, ws, ws_service, http, pool, counters }
    TcpConnInfo { id, peer, local, outbound, since_us, bytes_in, bytes_out, half_closed, kernel }
    TcpKernelInfo { rtt_us, rttvar_us, cwnd, retransmits, bytes_acked }
    UdpPeerInfo { peer, first_us, last_us, dgrams_in, dgrams_out, bytes_in, bytes_out }
    WsClientInfo {
        id, peer, user_agent, dashboard, deflate, since_us, frames_in, frames_out, bytes_in,
        bytes_out, missed, lagged,
    }
    WsServiceClientInfo {
        id, peer, path, user_agent, deflate, since_us, frames_in, frames_out, bytes_in,
        bytes_out, closing,
    }
    HttpConnInfo { id, peer, since_us, requests }
    Counters {
        events, events_dropped, tcp_conns, tcp_refused, tcp_bytes_in, tcp_bytes_out,
        tcp_bytes_dropped, udp_dgrams_in, udp_dgrams_out, udp_bytes_in, udp_bytes_out,
        udp_peers_evicted, udp_send_errors, http_requests, http_conns, http_refused,
        http_bytes_in, http_bytes_out, ws_clients, ws_refused, ws_frames_in, ws_frames_out,
        ws_bytes_in, ws_bytes_out, ws_missed, ws_slow_closed, ws_service_clients,
        ws_service_refused, ws_service_dropped, stored, store_errors,
    }
    PoolSpec { url, requests, concurrency, max_conns, keep_alive, no_pool }
    PoolStatus {
        run, state, spec, in_use, idle, waiting, opened, done, errors, p50_us, p99_us,
        elapsed_us, error,
    }
}

/// A required field: serde's "missing field" when it was not there.
fn req<T>(value: Option<T>, name: &str) -> Result<T, Error> {
    value.ok_or_else(|| missing(name))
}

#[cold]
fn missing(name: &str) -> Error {
    Error(format!("missing field `{name}`"))
}

/// Reads the named members (`$r.object`: a whole object; `$r.rest`: the members after a
/// tag) into `Option`s of the same names, skipping other keys, checks that those after
/// `needs` were there, and gives them all as a tuple. After it, `unwrap_or_default` (or
/// `unwrap_or` for types without a default) only ever meets `Some` for the needed ones:
/// one check, rather than an early return (and its drops) for every field.
macro_rules! fields {
    ($r:ident . $how:ident; $($name:ident),* ; needs $($need:ident),* $(,)?) => {{
        $(let mut $name = None;)*
        $r.$how(&mut |r, key| {
            match key {
                $(stringify!($name) => $name = Some(r.read()?),)*
                _ => r.skip()?,
            }
            Ok(())
        })
        .and_then(|()| need(&[$((stringify!($need), $need.is_some())),*]))?;
        ($($name,)*)
    }};
}

/// serde's "missing field" for the first required field that was not there.
fn need(fields: &[(&str, bool)]) -> Result<(), Error> {
    match fields.iter().find(|(_, there)| !there) {
        Some((name, _)) => Err(Error(format!("missing field `{name}`"))),
        None => Ok(()),
    }
}

impl FromJson for Payload {
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (enc, data, cut) = fields!(r.object; enc, data, cut; needs enc, data);
        Ok(Payload {
            enc: enc.unwrap_or_default(),
            data: data.unwrap_or_default(),
            cut: cut.unwrap_or_default(),
        })
    }
}

impl FromJson for Event {
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (seq, ts_us, kind) = fields!(r.object; seq, ts_us, kind; needs seq, ts_us);
        Ok(Event {
            seq: seq.unwrap_or_default(),
            ts_us: ts_us.unwrap_or_default(),
            kind: req(kind, "kind")?,
        })
    }
}

/// `EventKind::Http`'s exchange: the members after the tag.
fn http_exchange(r: &mut Reader<'_>) -> Result<HttpExchange, Error> {
    let (
        id,
        conn,
        seq_on_conn,
        peer,
        method,
        target,
        version,
        headers,
        body,
        body_size,
        status,
        resp_version,
        resp_reason,
        resp_headers,
        resp_body,
        resp_size,
        ttfb_us,
        total_us,
        replay_of,
    ) = fields!(
        r.rest; id, conn, seq_on_conn, peer, method, target, version, headers, body, body_size,
        status, resp_version, resp_reason, resp_headers, resp_body, resp_size, ttfb_us,
        total_us, replay_of;
        needs id, conn, seq_on_conn, peer, method, target, version, headers, body, body_size,
        status, resp_headers, resp_body, resp_size, ttfb_us, total_us
    );
    Ok(HttpExchange {
        id: id.unwrap_or_default(),
        conn: conn.unwrap_or_default(),
        seq_on_conn: seq_on_conn.unwrap_or_default(),
        peer: peer.unwrap_or_default(),
        method: method.unwrap_or_default(),
        target: target.unwrap_or_default(),
        version: version.unwrap_or_default(),
        headers: headers.unwrap_or_default(),
        body: body.unwrap_or_default(),
        body_size: body_size.unwrap_or_default(),
        status: status.unwrap_or_default(),
        // Recordings from before the field: the lab answered with HTTP/1.1 then.
        resp_version: resp_version.unwrap_or_else(|| "HTTP/1.1".to_owned()),
        resp_reason: resp_reason.unwrap_or_default(),
        resp_headers: resp_headers.unwrap_or_default(),
        resp_body: resp_body.unwrap_or_default(),
        resp_size: resp_size.unwrap_or_default(),
        ttfb_us: ttfb_us.unwrap_or_default(),
        total_us: total_us.unwrap_or_default(),
        replay_of: replay_of.unwrap_or_default(),
    })
}

impl FromJson for EventKind {
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let tag = r.tag()?;
        Ok(match &*tag {
            "tcp_open" => {
                let (conn, peer, local, outbound, handshake_us) = fields!(
                    r.rest; conn, peer, local, outbound, handshake_us; needs conn, peer, local
                );
                EventKind::TcpOpen {
                    conn: conn.unwrap_or_default(),
                    peer: peer.unwrap_or_default(),
                    local: local.unwrap_or_default(),
                    outbound: outbound.unwrap_or_default(),
                    handshake_us: handshake_us.unwrap_or_default(),
                }
            }
            "tcp_data" => {
                let (conn, peer, dir, size, payload) = fields!(
                    r.rest; conn, peer, dir, size, payload; needs conn, peer, dir, size, payload
                );
                EventKind::TcpData {
                    conn: conn.unwrap_or_default(),
                    peer: peer.unwrap_or_default(),
                    dir: dir.unwrap_or(Direction::In),
                    size: size.unwrap_or_default(),
                    payload: payload.unwrap_or_default(),
                }
            }
            "tcp_half_close" => {
                let (conn, peer) = fields!(r.rest; conn, peer; needs conn, peer);
                EventKind::TcpHalfClose {
                    conn: conn.unwrap_or_default(),
                    peer: peer.unwrap_or_default(),
                }
            }
            "tcp_close" => {
                let (conn, peer, reason, detail, duration_us, bytes_in, bytes_out) = fields!(
                    r.rest; conn, peer, reason, detail, duration_us, bytes_in, bytes_out;
                    needs conn, peer, reason, duration_us, bytes_in, bytes_out
                );
                EventKind::TcpClose {
                    conn: conn.unwrap_or_default(),
                    peer: peer.unwrap_or_default(),
                    reason: reason.unwrap_or(CloseReason::Error),
                    detail: detail.unwrap_or_default(),
                    duration_us: duration_us.unwrap_or_default(),
                    bytes_in: bytes_in.unwrap_or_default(),
                    bytes_out: bytes_out.unwrap_or_default(),
                }
            }
            "tcp_refused" => {
                let (peer, reason) = fields!(r.rest; peer, reason; needs peer, reason);
                EventKind::TcpRefused {
                    peer: peer.unwrap_or_default(),
                    reason: reason.unwrap_or_default(),
                }
            }
            "udp_datagram" => {
                let (peer, dir, size, payload) =
                    fields!(r.rest; peer, dir, size, payload; needs peer, dir, size, payload);
                EventKind::UdpDatagram {
                    peer: peer.unwrap_or_default(),
                    dir: dir.unwrap_or(Direction::In),
                    size: size.unwrap_or_default(),
                    payload: payload.unwrap_or_default(),
                }
            }
            "http" => EventKind::Http(Box::new(http_exchange(r)?)),
            "ws_open" => {
                let (client, peer, user_agent, dashboard) =
                    fields!(r.rest; client, peer, user_agent, dashboard; needs client, peer);
                EventKind::WsOpen {
                    client: client.unwrap_or_default(),
                    peer: peer.unwrap_or_default(),
                    user_agent: user_agent.unwrap_or_default(),
                    dashboard: dashboard.unwrap_or_default(),
                }
            }
            "ws_close" => {
                let (client, peer, code, reason, duration_us) = fields!(
                    r.rest; client, peer, code, reason, duration_us; needs client, peer,
                    duration_us
                );
                EventKind::WsClose {
                    client: client.unwrap_or_default(),
                    peer: peer.unwrap_or_default(),
                    code: code.unwrap_or_default(),
                    reason: reason.unwrap_or_default(),
                    duration_us: duration_us.unwrap_or_default(),
                }
            }
            "ws_message" => {
                let (client, peer, size, payload) =
                    fields!(r.rest; client, peer, size, payload; needs client, peer, size, payload);
                EventKind::WsMessage {
                    client: client.unwrap_or_default(),
                    peer: peer.unwrap_or_default(),
                    size: size.unwrap_or_default(),
                    payload: payload.unwrap_or_default(),
                }
            }
            "chat" => {
                let (from, text) = fields!(r.rest; from, text; needs from, text);
                EventKind::Chat {
                    from: from.unwrap_or_default(),
                    text: text.unwrap_or_default(),
                }
            }
            "ws_service_open" => {
                let (client, peer, path, user_agent, deflate) = fields!(
                    r.rest; client, peer, path, user_agent, deflate; needs client, peer, path
                );
                EventKind::WsServiceOpen {
                    client: client.unwrap_or_default(),
                    peer: peer.unwrap_or_default(),
                    path: path.unwrap_or_default(),
                    user_agent: user_agent.unwrap_or_default(),
                    deflate: deflate.unwrap_or_default(),
                }
            }
            "ws_service_frame" => {
                let (
                    client,
                    peer,
                    dir,
                    opcode,
                    fin,
                    rsv1,
                    size,
                    payload,
                    close_code,
                    close_reason,
                    skipped,
                ) = fields!(
                    r.rest; client, peer, dir, opcode, fin, rsv1, size, payload, close_code,
                    close_reason, skipped; needs client, peer, dir, opcode, fin, rsv1, size, payload
                );
                EventKind::WsServiceFrame {
                    client: client.unwrap_or_default(),
                    peer: peer.unwrap_or_default(),
                    dir: dir.unwrap_or(Direction::In),
                    opcode: opcode.unwrap_or_default(),
                    fin: fin.unwrap_or_default(),
                    rsv1: rsv1.unwrap_or_default(),
                    size: size.unwrap_or_default(),
                    payload: payload.unwrap_or_default(),
                    close_code: close_code.unwrap_or_default(),
                    close_reason: close_reason.unwrap_or_default(),
                    skipped: skipped.unwrap_or_default(),
                }
            }
            "ws_service_close" => {
                let (
                    client,
                    peer,
                    code,
                    reason,
                    detail,
                    duration_us,
                    bytes_in,
                    bytes_out,
                    frames_not_shown,
                ) = fields!(
                    r.rest; client, peer, code, reason, detail, duration_us, bytes_in, bytes_out,
                    frames_not_shown; needs client, peer, duration_us, bytes_in, bytes_out
                );
                EventKind::WsServiceClose {
                    client: client.unwrap_or_default(),
                    peer: peer.unwrap_or_default(),
                    code: code.unwrap_or_default(),
                    reason: reason.unwrap_or_default(),
                    detail: detail.unwrap_or_default(),
                    duration_us: duration_us.unwrap_or_default(),
                    bytes_in: bytes_in.unwrap_or_default(),
                    bytes_out: bytes_out.unwrap_or_default(),
                    frames_not_shown: frames_not_shown.unwrap_or_default(),
                }
            }
            "pool_started" => {
                let (run, spec) = fields!(r.rest; run, spec; needs run, spec);
                EventKind::PoolStarted {
                    run: run.unwrap_or_default(),
                    spec: spec.unwrap_or_default(),
                }
            }
            "pool_finished" => {
                let (run, status) = fields!(r.rest; run, status; needs run, status);
                EventKind::PoolFinished {
                    run: run.unwrap_or_default(),
                    status: status.unwrap_or_default(),
                }
            }
            "notice" => {
                let (level, message) = fields!(r.rest; level, message; needs level, message);
                EventKind::Notice {
                    level: level.unwrap_or_default(),
                    message: message.unwrap_or_default(),
                }
            }
            other => return Err(r.error(&format!("unknown variant `{other}`"))),
        })
    }
}

impl FromJson for ServerMsg {
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let tag = r.tag()?;
        Ok(match &*tag {
            "hello" => ServerMsg::Hello(members(r, true)?),
            "snapshot" => ServerMsg::Snapshot(Box::new(members(r, true)?)),
            "events" => {
                let (events,) = fields!(r.rest; events; needs events);
                ServerMsg::Events {
                    events: events.unwrap_or_default(),
                }
            }
            "lagged" => {
                let (missed,) = fields!(r.rest; missed; needs missed);
                ServerMsg::Lagged {
                    missed: missed.unwrap_or_default(),
                }
            }
            "ack" => {
                let (id, detail) = fields!(r.rest; id, detail; needs id);
                ServerMsg::Ack {
                    id: id.unwrap_or_default(),
                    detail: detail.unwrap_or_default(),
                }
            }
            "error" => {
                let (id, message) = fields!(r.rest; id, message; needs message);
                ServerMsg::Error {
                    id: id.unwrap_or_default(),
                    message: message.unwrap_or_default(),
                }
            }
            "state" => ServerMsg::State(Box::new(members(r, true)?)),
            "pool" => ServerMsg::Pool(members(r, true)?),
            "pong" => {
                let (id, ts_us) = fields!(r.rest; id, ts_us; needs id, ts_us);
                ServerMsg::Pong {
                    id: id.unwrap_or_default(),
                    ts_us: ts_us.unwrap_or_default(),
                }
            }
            other => return Err(r.error(&format!("unknown variant `{other}`"))),
        })
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
                ..Default::default()
            }],
            udp: vec![UdpPeerInfo::default()],
            ws: vec![WsClientInfo::default()],
            ws_service: vec![WsServiceClientInfo::default()],
            http: vec![HttpConnInfo::default()],
            pool: Some(PoolStatus {
                error: Some("refused".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let events: Vec<Event> = crate::event::tests::samples()
            .into_iter()
            .map(|kind| Event {
                seq: 1,
                ts_us: 2,
                kind,
            })
            .chain([Event {
                seq: 3,
                ts_us: 4,
                kind: EventKind::Http(Box::new(HttpExchange {
                    replay_of: Some(1),
                    body: Payload {
                        cut: 5,
                        ..Default::default()
                    },
                    ..Default::default()
                })),
            }])
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
