//! Relay mode's events as timeline rows: a word for the kind and one line of detail.
//! Kept apart from `row` (the service events) so relay mode's page footprint stays in
//! files of its own.

use wirelab_shared::{EventKind, Leg};

use crate::fmt;
use crate::row::{close_reason, preview};

fn leg(l: Leg) -> &'static str {
    match l {
        Leg::Client => "client",
        Leg::Upstream => "upstream",
    }
}

/// The kind word and the detail line of a relay event; `None` for other events.
pub fn describe(k: &EventKind) -> Option<(&'static str, String)> {
    Some(match k {
        EventKind::RelayOpen {
            proxy,
            conn,
            upstream,
            connect_us,
            ..
        } => (
            "open",
            format!(
                "{proxy} #{conn} → {upstream}, upstream connect {}",
                fmt::duration_us(*connect_us)
            ),
        ),
        EventKind::RelayData {
            proxy,
            conn,
            from,
            payload,
            ..
        } => {
            let arrow = arrow(*from);
            (
                "data",
                format!("{proxy} #{conn} {arrow} {}", preview(payload)),
            )
        }
        EventKind::RelaySend {
            proxy,
            conn,
            to,
            payload,
            ..
        } => (
            "send",
            format!("{proxy} #{conn} page → {}: {}", leg(*to), preview(payload)),
        ),
        EventKind::RelayHalfClose {
            proxy, conn, from, ..
        } => (
            "fin",
            format!("{proxy} #{conn} the {} sent FIN (passed on)", leg(*from)),
        ),
        EventKind::RelayClose {
            proxy,
            conn,
            reason,
            detail,
            duration_us,
            client_in,
            upstream_in,
            ..
        } => {
            let mut s = format!(
                "{proxy} #{conn} closed: {} after {}, client sent {} / upstream sent {}",
                close_reason(*reason),
                fmt::duration_us(*duration_us),
                fmt::size(*client_in),
                fmt::size(*upstream_in)
            );
            if let Some(d) = detail {
                s.push_str(&format!(" ({d})"));
            }
            ("close", s)
        }
        EventKind::RelayRefused { proxy, reason, .. } => ("refused", format!("{proxy}: {reason}")),
        EventKind::RelayFault {
            proxy,
            conn,
            from,
            toxic,
            what,
            ..
        } => (
            "fault",
            format!("{proxy} #{conn} {} {toxic}: {what}", arrow(*from)),
        ),
        EventKind::ToxicChange {
            proxy,
            toxic,
            action,
            detail,
        } => (
            "toxic",
            format!("{proxy}: toxic {toxic} {action} ({detail})"),
        ),
        EventKind::RelayUdpOpen {
            proxy,
            session,
            upstream,
            ..
        } => ("open", format!("{proxy} session #{session} → {upstream}")),
        EventKind::RelayDatagram {
            proxy,
            session,
            from,
            payload,
            ..
        } => {
            let arrow = arrow(*from);
            (
                "data",
                format!("{proxy} #{session} {arrow} {}", preview(payload)),
            )
        }
        EventKind::RelayUdpClose {
            proxy,
            session,
            reason,
            client_in,
            upstream_in,
            ..
        } => (
            "close",
            format!(
                "{proxy} session #{session} ended: {reason}; client sent {} / upstream sent {}",
                fmt::size(*client_in),
                fmt::size(*upstream_in)
            ),
        ),
        EventKind::RelayHttp {
            proxy,
            exchange: x,
            note,
            ..
        } => {
            let status = match x.status {
                0 => "no response".to_owned(),
                s => s.to_string(),
            };
            let mut line = format!(
                "{proxy} #{} {} {} → {status}, upstream {} to first byte, {} in all",
                x.conn,
                x.method,
                x.target,
                fmt::duration_us(x.ttfb_us),
                fmt::duration_us(x.total_us)
            );
            if let Some(n) = note {
                line.push_str(&format!(" ({n})"));
            }
            ("http", line)
        }
        EventKind::RelayWsFrame {
            proxy,
            conn,
            from,
            opcode,
            size,
            payload,
            close_code,
            skipped,
            ..
        } => {
            let arrow = arrow(*from);
            let what = match (opcode, close_code) {
                (8, Some(code)) => format!("close {code}"),
                (1, _) | (0, _) => preview(payload),
                (2, _) => format!("binary {}", fmt::size(*size)),
                (9, _) => "ping".to_owned(),
                (10, _) => "pong".to_owned(),
                (op, _) => format!("opcode {op}, {}", fmt::size(*size)),
            };
            let mut line = format!("{proxy} #{conn} ws {arrow} {what}");
            if *skipped > 0 {
                line.push_str(&format!(" ({skipped} frames before it not shown)"));
            }
            ("frame", line)
        }
        EventKind::RelayNotice {
            proxy,
            conn,
            detail,
            ..
        } => ("notice", format!("{proxy} #{conn} {detail}")),
        _ => return None,
    })
}

/// Which way a chunk or datagram went: `→` read from the client (toward the upstream), `←`
/// read from the upstream.
fn arrow(from: Leg) -> &'static str {
    match from {
        Leg::Client => "→",
        Leg::Upstream => "←",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelab_shared::Payload;

    #[test]
    fn relay_events_read_as_one_line() {
        let data = EventKind::RelayData {
            proxy: "redis".into(),
            conn: 3,
            peer: "p".into(),
            from: Leg::Upstream,
            size: 5,
            payload: Payload::capture(b"+OK\r\n", 64),
        };
        assert_eq!(
            describe(&data),
            Some(("data", "redis #3 ← +OK\\r\\n".to_owned()))
        );
        assert_eq!(
            describe(&EventKind::Chat {
                from: "a".into(),
                text: "b".into()
            }),
            None
        );
    }

    #[test]
    fn faults_read_as_what_they_did() {
        let fault = EventKind::RelayFault {
            proxy: "redis".into(),
            conn: 3,
            peer: "p".into(),
            from: Leg::Upstream,
            toxic: "latency_downstream".into(),
            what: "held 100 ms".into(),
        };
        assert_eq!(
            describe(&fault),
            Some((
                "fault",
                "redis #3 ← latency_downstream: held 100 ms".to_owned()
            ))
        );
        let change = EventKind::ToxicChange {
            proxy: "redis".into(),
            toxic: "flaky_both".into(),
            action: "added".into(),
            detail: "reset_peer after 0 ms, toxicity 0.05, both".into(),
        };
        assert_eq!(
            describe(&change),
            Some((
                "toxic",
                "redis: toxic flaky_both added (reset_peer after 0 ms, toxicity 0.05, both)"
                    .to_owned()
            ))
        );
    }
}
