//! One event as a row: the columns the API filters on, the text that `q` searches, and the
//! event's JSON.

use wirelab_shared::payload::hex_encode;
use wirelab_shared::{Direction, Event, EventKind, Payload};

/// Bytes of binary payload turned into hex for the search text (hex doubles the size, and
/// nobody types a longer hex string into a search box).
const HEX_SEARCH_MAX: usize = 4096;

/// The columns of one row of `events`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub seq: i64,
    pub ts_us: i64,
    pub protocol: &'static str,
    /// The event's `type` as on the wire (`udp_datagram`, `http`, ...).
    pub kind: String,
    pub peer: Option<String>,
    pub dir: Option<&'static str>,
    pub size: i64,
    pub text: String,
    pub json: String,
}

impl Row {
    /// The row for `ev`.
    pub fn of(ev: &Event) -> Row {
        let json = serde_json::to_string(ev).expect("events serialize");
        Row {
            seq: ev.seq as i64,
            ts_us: ev.ts_us as i64,
            protocol: ev.kind.protocol().as_str(),
            kind: kind_name(&json),
            peer: ev.kind.peer().map(str::to_owned),
            dir: ev.kind.direction().map(|d| match d {
                Direction::In => "in",
                Direction::Out => "out",
            }),
            size: ev.kind.size() as i64,
            text: search_text(&ev.kind),
            json,
        }
    }
}

/// The `type` tag from an event's JSON (`{"seq":..,"ts_us":..,"kind":{"type":"..."`).
fn kind_name(json: &str) -> String {
    json.split_once(r#""type":""#)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or_else(String::new, |(name, _)| name.to_owned())
}

/// What `q` matches: the peer, and the words and bytes a person would look for. Text
/// payloads are searched as text; binary ones as lower-case hex.
pub fn search_text(kind: &EventKind) -> String {
    let mut out = String::new();
    let mut add = |s: &str| {
        if !s.is_empty() {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(s);
        }
    };
    if let Some(peer) = kind.peer() {
        add(peer);
    }
    match kind {
        EventKind::TcpData { payload, .. }
        | EventKind::UdpDatagram { payload, .. }
        | EventKind::WsMessage { payload, .. } => add(&payload_text(payload)),
        EventKind::TcpClose { detail, .. } => add(detail.as_deref().unwrap_or("")),
        EventKind::TcpRefused { reason, .. } => add(reason),
        EventKind::Http(x) => {
            add(&format!(
                "{} {} {} {}",
                x.method, x.target, x.version, x.status
            ));
            for (name, value) in x.headers.iter().chain(&x.resp_headers) {
                add(&format!("{name}: {value}"));
            }
            add(&payload_text(&x.body));
            add(&payload_text(&x.resp_body));
        }
        EventKind::WsOpen { user_agent, .. } => add(user_agent),
        EventKind::WsClose { reason, .. } => add(reason),
        EventKind::Chat { from, text } => {
            add(from);
            add(text);
        }
        EventKind::Notice { level, message } => {
            add(level);
            add(message);
        }
        _ => {}
    }
    out
}

fn payload_text(p: &Payload) -> String {
    if p.is_text() {
        p.data.clone()
    } else {
        let bytes = p.bytes();
        hex_encode(&bytes[..bytes.len().min(HEX_SEARCH_MAX)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelab_shared::HttpExchange;

    #[test]
    fn a_row_has_the_filter_columns_and_the_json() {
        let ev = Event {
            seq: 5,
            ts_us: 9,
            kind: EventKind::UdpDatagram {
                peer: "127.0.0.1:4000".into(),
                dir: Direction::Out,
                size: 3,
                payload: Payload::capture(&[0xde, 0xad, 0xff], 64),
            },
        };
        let row = Row::of(&ev);
        assert_eq!((row.seq, row.ts_us, row.protocol), (5, 9, "udp"));
        assert_eq!(row.kind, "udp_datagram");
        assert_eq!(
            (row.peer.as_deref(), row.dir, row.size),
            (Some("127.0.0.1:4000"), Some("out"), 3)
        );
        assert_eq!(row.text, "127.0.0.1:4000\ndeadff");
        assert_eq!(serde_json::from_str::<Event>(&row.json).unwrap(), ev);
    }

    #[test]
    fn http_text_has_the_request_line_and_headers() {
        let kind = EventKind::Http(Box::new(HttpExchange {
            peer: "p".into(),
            method: "GET".into(),
            target: "/hello?x=1".into(),
            version: "HTTP/1.1".into(),
            headers: vec![("User-Agent".into(), "curl/8".into())],
            status: 200,
            resp_body: Payload::capture(b"Hello World", 64),
            ..Default::default()
        }));
        let text = search_text(&kind);
        for needle in [
            "GET /hello?x=1 HTTP/1.1 200",
            "User-Agent: curl/8",
            "Hello World",
        ] {
            assert!(text.contains(needle), "{needle:?} not in {text:?}");
        }
        let ev = Event {
            seq: 1,
            ts_us: 1,
            kind,
        };
        assert_eq!(Row::of(&ev).kind, "http");
    }
}
