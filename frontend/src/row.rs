//! [`Row`]: an event made ready for display once, when it arrives, so that rendering and
//! filtering a row never parses or formats again.

use std::fmt::Write;
use std::rc::Rc;

use wirelab_shared::{CloseReason, Direction, Event, EventKind, Payload, PoolState, Protocol};

use crate::fmt;

/// Characters of payload kept in a row's one-line preview.
pub const PREVIEW_CHARS: usize = 160;

/// One timeline row: the event and what the list shows of it.
#[derive(Debug, PartialEq)]
pub struct Row {
    pub seq: u64,
    pub ts_us: u64,
    pub proto: Protocol,
    pub dir: Option<Direction>,
    /// The peer address, or who spoke for a chat line; empty when none.
    pub peer: String,
    /// Bytes on the wire (0 for events that carry none).
    pub size: u64,
    /// A short word for what happened: `open`, `data`, `close`, `GET`, ...
    pub kind: &'static str,
    /// One line: the payload as text (`\\r`, `\\n`, `\\t` written out, other control
    /// characters as `·`) or hex, or a
    /// sentence for events without payload.
    pub preview: String,
    /// The event itself, for the detail pane, exports and replay.
    pub event: Event,
}

impl Row {
    /// Prepares an event for display.
    pub fn new(event: Event) -> Row {
        let k = &event.kind;
        let (kind, preview) = describe(k);
        Row {
            seq: event.seq,
            ts_us: event.ts_us,
            proto: k.protocol(),
            dir: k.direction(),
            peer: match k {
                EventKind::Chat { from, .. } => from.clone(),
                _ => k.peer().unwrap_or_default().to_owned(),
            },
            size: k.size(),
            kind,
            preview,
            event,
        }
    }

    /// Shared, as the timeline holds it.
    pub fn shared(event: Event) -> Rc<Row> {
        Rc::new(Row::new(event))
    }

    /// The TCP connection or WebSocket client id this event is about, if any.
    pub fn conn(&self) -> Option<u64> {
        match &self.event.kind {
            EventKind::TcpOpen { conn, .. }
            | EventKind::TcpData { conn, .. }
            | EventKind::TcpHalfClose { conn, .. }
            | EventKind::TcpClose { conn, .. } => Some(*conn),
            EventKind::Http(x) => Some(x.conn),
            EventKind::Tls(x) => Some(x.conn),
            EventKind::WsOpen { client, .. }
            | EventKind::WsClose { client, .. }
            | EventKind::WsMessage { client, .. }
            | EventKind::WsServiceOpen { client, .. }
            | EventKind::WsServiceFrame { client, .. }
            | EventKind::WsServiceClose { client, .. } => Some(*client),
            _ => None,
        }
    }

    /// Whether the payload of this event can be sent again (`replay`).
    pub fn replayable(&self) -> bool {
        matches!(
            self.event.kind,
            EventKind::TcpData { .. }
                | EventKind::UdpDatagram { .. }
                | EventKind::WsMessage { .. }
                | EventKind::RelayData { .. }
                | EventKind::RelaySend { .. }
        )
    }
}

/// A one-line preview of a payload: text with control characters made visible, or the
/// first bytes in hex; cut at [`PREVIEW_CHARS`].
pub fn preview(payload: &Payload) -> String {
    let mut out = String::new();
    if payload.is_text() {
        for (n, c) in payload.data.chars().enumerate() {
            if n == PREVIEW_CHARS {
                out.push('…');
                return out;
            }
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => out.push('·'),
                c => out.push(c),
            }
        }
    } else {
        let bytes = payload.bytes();
        for (i, b) in bytes.iter().take(PREVIEW_CHARS / 3).enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let _ = write!(out, "{b:02x}");
        }
        if bytes.len() > PREVIEW_CHARS / 3 {
            out.push_str(" …");
        }
    }
    if payload.cut > 0 {
        let _ = write!(out, " [+{} cut]", fmt::size(payload.cut));
    }
    out
}

/// A WebSocket opcode's name.
pub fn opcode_name(opcode: u8) -> &'static str {
    match opcode {
        0 => "continuation",
        1 => "text",
        2 => "binary",
        8 => "close",
        9 => "ping",
        10 => "pong",
        _ => "reserved",
    }
}

/// Why a TCP connection ended, in a word or two.
pub fn close_reason(r: CloseReason) -> &'static str {
    match r {
        CloseReason::Fin => "FIN",
        CloseReason::Reset => "reset by peer",
        CloseReason::Error => "error",
        CloseReason::ClosedFromPage => "closed from page",
        CloseReason::ResetFromPage => "reset from page",
        CloseReason::IdleTimeout => "idle timeout",
        CloseReason::Shutdown => "shutdown",
        CloseReason::Fault => "closed by a fault",
        CloseReason::FaultReset => "reset by a fault",
    }
}

fn describe(k: &EventKind) -> (&'static str, String) {
    match k {
        EventKind::Tls(x) => ("tls", crate::tls_text::summary(x)),
        EventKind::RelayOpen { .. }
        | EventKind::RelayData { .. }
        | EventKind::RelaySend { .. }
        | EventKind::RelayHalfClose { .. }
        | EventKind::RelayClose { .. }
        | EventKind::RelayRefused { .. }
        | EventKind::RelayFault { .. }
        | EventKind::ToxicChange { .. }
        | EventKind::RelayUdpOpen { .. }
        | EventKind::RelayDatagram { .. }
        | EventKind::RelayUdpClose { .. }
        | EventKind::RelayHttp { .. }
        | EventKind::RelayWsFrame { .. }
        | EventKind::RelayNotice { .. } => crate::relay_row::describe(k).unwrap_or_default(),
        EventKind::TcpOpen {
            conn,
            local,
            outbound,
            handshake_us,
            ..
        } => {
            if *outbound {
                let hs = handshake_us.map(fmt::duration_us).unwrap_or_default();
                (
                    "connect",
                    format!("#{conn} opened from the lab, handshake {hs}"),
                )
            } else {
                ("open", format!("#{conn} accepted on {local}"))
            }
        }
        EventKind::TcpData { payload, .. } | EventKind::UdpDatagram { payload, .. } => {
            ("data", preview(payload))
        }
        EventKind::WsMessage {
            client, payload, ..
        } => ("msg", format!("#{client} {}", preview(payload))),
        EventKind::TcpHalfClose { conn, .. } => {
            ("fin", format!("#{conn} peer sent FIN (half-closed)"))
        }
        EventKind::TcpClose {
            conn,
            reason,
            detail,
            duration_us,
            bytes_in,
            bytes_out,
            ..
        } => {
            let mut s = format!(
                "#{conn} closed: {} after {}, in {} / out {}",
                close_reason(*reason),
                fmt::duration_us(*duration_us),
                fmt::size(*bytes_in),
                fmt::size(*bytes_out)
            );
            if let Some(d) = detail {
                let _ = write!(s, " ({d})");
            }
            ("close", s)
        }
        EventKind::TcpRefused { reason, .. } => ("refused", reason.clone()),
        EventKind::Http(x) => {
            let mut s = format!(
                "{} {} → {} in {}",
                x.method,
                x.target,
                x.status,
                fmt::duration_us(x.total_us)
            );
            if let Some(of) = x.replay_of {
                let _ = write!(s, " (replay of #{of})");
            }
            ("http", s)
        }
        EventKind::WsOpen {
            client,
            user_agent,
            dashboard,
            ..
        } => {
            let who = if *dashboard { "dashboard" } else { "client" };
            ("open", format!("#{client} {who} connected · {user_agent}"))
        }
        EventKind::WsClose {
            client,
            code,
            reason,
            duration_us,
            ..
        } => {
            let code = code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "no code".into());
            (
                "close",
                format!(
                    "#{client} left after {}: {code} {reason}",
                    fmt::duration_us(*duration_us)
                ),
            )
        }
        EventKind::WsServiceOpen {
            client,
            path,
            deflate,
            ..
        } => (
            "open",
            format!(
                "#{client} upgraded on {path}{}",
                if deflate.is_some() { " · deflate" } else { "" }
            ),
        ),
        EventKind::WsServiceFrame {
            client,
            opcode,
            fin,
            rsv1,
            size,
            payload,
            close_code,
            close_reason,
            skipped,
            ..
        } => {
            let mut s = format!("#{client} {}", opcode_name(*opcode));
            if !fin {
                s.push_str(" (more)");
            }
            if *rsv1 {
                s.push_str(" rsv1");
            }
            let _ = write!(s, " {} ", fmt::size(*size));
            match close_code {
                Some(code) => {
                    let _ = write!(s, "{code} {}", close_reason.as_deref().unwrap_or(""));
                }
                None => s.push_str(&preview(payload)),
            }
            if *skipped > 0 {
                let _ = write!(s, " [{skipped} frames not shown before it]");
            }
            ("frame", s)
        }
        EventKind::WsServiceClose {
            client,
            code,
            reason,
            detail,
            duration_us,
            ..
        } => {
            let code = code.map_or("no code".into(), |c| c.to_string());
            (
                "close",
                format!(
                    "#{client} closed after {}: {code} {reason} ({detail})",
                    fmt::duration_us(*duration_us)
                ),
            )
        }
        EventKind::Chat { text, .. } => (
            "chat",
            preview(&Payload {
                data: text.clone(),
                ..Default::default()
            }),
        ),
        EventKind::PoolStarted { run, spec } => (
            "start",
            format!(
                "run #{run}: {} requests × {} at once, {}",
                spec.requests,
                spec.concurrency,
                if spec.no_pool {
                    "no pool".to_owned()
                } else {
                    format!(
                        "pool of {}{}",
                        spec.max_conns,
                        if spec.keep_alive { ", keep-alive" } else { "" }
                    )
                }
            ),
        ),
        EventKind::PoolFinished { run, status } => {
            let state = match status.state {
                PoolState::Running => "running",
                PoolState::Done => "done",
                PoolState::Cancelled => "cancelled",
                PoolState::Failed => "failed",
            };
            (
                "end",
                format!(
                    "run #{run} {state}: {} done, {} errors, {} connections, reuse {}",
                    status.done,
                    status.errors,
                    status.opened,
                    crate::fmt::fixed(status.reuse_ratio(), 1)
                ),
            )
        }
        EventKind::Notice { level, message } => ("notice", format!("[{level}] {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelab_shared::HttpExchange;

    fn ev(kind: EventKind) -> Event {
        Event {
            seq: 1,
            ts_us: 5,
            kind,
        }
    }

    #[test]
    fn data_rows_preview_text_with_visible_control_characters() {
        let row = Row::new(ev(EventKind::UdpDatagram {
            peer: "127.0.0.1:5000".into(),
            dir: Direction::In,
            size: 13,
            payload: Payload::capture(b"<b>hi</b>\r\n\x07x", 64),
        }));
        assert_eq!(row.proto, Protocol::Udp);
        assert_eq!(row.dir, Some(Direction::In));
        assert_eq!(row.peer, "127.0.0.1:5000");
        assert_eq!(row.kind, "data");
        assert_eq!(row.preview, "<b>hi</b>\\r\\n·x");
        assert!(row.replayable());
    }

    #[test]
    fn binary_previews_as_hex_and_cuts_are_said() {
        let p = Payload::capture(&[0xff, 0x00, 0x41, 0x42], 3);
        assert_eq!(preview(&p), "ff 00 41 [+1 B cut]");
        let long = "x".repeat(500);
        let p = Payload::capture(long.as_bytes(), 1000);
        assert_eq!(preview(&p).chars().count(), PREVIEW_CHARS + 1);
    }

    #[test]
    fn events_without_payload_get_a_sentence() {
        let row = Row::new(ev(EventKind::TcpClose {
            conn: 4,
            peer: "p".into(),
            reason: CloseReason::ResetFromPage,
            detail: None,
            duration_us: 2_000_000,
            bytes_in: 10,
            bytes_out: 2048,
        }));
        assert_eq!(row.kind, "close");
        assert_eq!(
            row.preview,
            "#4 closed: reset from page after 2.0 s, in 10 B / out 2.0 KiB"
        );
        assert_eq!(row.conn(), Some(4));
        let row = Row::new(ev(EventKind::Http(Box::new(HttpExchange {
            method: "GET".into(),
            target: "/".into(),
            status: 200,
            total_us: 1500,
            conn: 9,
            ..Default::default()
        }))));
        assert_eq!(row.preview, "GET / → 200 in 1.50 ms");
        assert_eq!(row.conn(), Some(9));
        let row = Row::new(ev(EventKind::Chat {
            from: "ws#2".into(),
            text: "yo".into(),
        }));
        assert_eq!((row.peer.as_str(), row.preview.as_str()), ("ws#2", "yo"));
    }
}
