//! One event as a row: the columns the API filters on, the text that `q` searches, and the
//! event's JSON.

use std::borrow::Cow;

use wirelab_shared::encode::Word;
use wirelab_shared::payload::{Encoding, decode, hex_encode};
use wirelab_shared::{Event, EventKind, HttpExchange, Payload};

/// Bytes of binary payload turned into hex for the search text (hex doubles the size, and
/// nobody types a longer hex string into a search box).
const HEX_SEARCH_MAX: usize = 4096;

/// The columns of one row of `events`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row<'a> {
    pub seq: i64,
    pub ts_us: i64,
    pub protocol: &'static str,
    /// The event's `type` as on the wire (`udp_datagram`, `http`, ...).
    pub kind: &'static str,
    pub peer: Option<&'a str>,
    pub dir: Option<&'static str>,
    pub size: i64,
    pub text: String,
    pub json: Cow<'a, str>,
}

impl<'a> Row<'a> {
    /// The row for `ev`, serializing it.
    pub fn of(ev: &'a Event) -> Row<'a> {
        Row::with_json(ev, Cow::Owned(wirelab_shared::encode::event_json(ev)))
    }

    /// The row for `ev`, whose JSON (exactly what `serde_json` gives for it) is `json`:
    /// the recorder passes the bytes the hub already wrote for the dashboards.
    pub fn with_json(ev: &'a Event, json: Cow<'a, str>) -> Row<'a> {
        let mut text = String::new();
        search_text_into(&mut text, &ev.kind);
        Row {
            seq: ev.seq as i64,
            ts_us: ev.ts_us as i64,
            protocol: ev.kind.protocol().as_str(),
            kind: ev.kind.tag(),
            peer: ev.kind.peer(),
            dir: ev.kind.direction().map(Word::word),
            size: ev.kind.size() as i64,
            text,
            json,
        }
    }
}

/// What `q` matches: the peer, and the words and bytes a person would look for. Text
/// payloads are searched as text; binary ones as lower-case hex.
pub fn search_text(kind: &EventKind) -> String {
    let mut out = String::new();
    search_text_into(&mut out, kind);
    out
}

/// [`search_text`], appended to `out` (one line per item, no empty lines).
pub fn search_text_into(out: &mut String, kind: &EventKind) {
    fn line(out: &mut String, parts: &[&str]) {
        if parts.iter().all(|p| p.is_empty()) {
            return;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        for p in parts {
            out.push_str(p);
        }
    }
    fn payload(out: &mut String, p: &Payload) {
        if p.is_text() {
            line(out, &[&p.data]);
        } else {
            // Only the bytes that become hex are decoded: a relay's flood captures up to
            // --snaplen (64 KiB) per event, and decoding all of it was 6% of the lab's
            // time under `cargo xtask bench --only relay`.
            let bytes = head(p, HEX_SEARCH_MAX);
            line(
                out,
                &[&hex_encode(&bytes[..bytes.len().min(HEX_SEARCH_MAX)])],
            );
        }
    }
    fn exchange_text(out: &mut String, x: &HttpExchange) {
        let mut status = itoa::Buffer::new();
        line(
            out,
            &[
                &x.method,
                " ",
                &x.target,
                " ",
                &x.version,
                " ",
                status.format(x.status),
            ],
        );
        for (name, value) in x.headers.iter().chain(&x.resp_headers) {
            line(out, &[name, ": ", value]);
        }
        payload(out, &x.body);
        payload(out, &x.resp_body);
    }
    if let Some(peer) = kind.peer() {
        line(out, &[peer]);
    }
    match kind {
        EventKind::TcpData { payload: p, .. }
        | EventKind::RelayData { payload: p, .. }
        | EventKind::RelaySend { payload: p, .. }
        | EventKind::RelayDatagram { payload: p, .. }
        | EventKind::UdpDatagram { payload: p, .. }
        | EventKind::WsMessage { payload: p, .. } => payload(out, p),
        EventKind::WsServiceFrame {
            payload: p,
            close_reason,
            ..
        }
        | EventKind::RelayWsFrame {
            payload: p,
            close_reason,
            ..
        } => {
            payload(out, p);
            line(out, &[close_reason.as_deref().unwrap_or("")]);
        }
        EventKind::WsServiceOpen {
            path, user_agent, ..
        } => line(out, &[path, " ", user_agent]),
        EventKind::WsServiceClose { reason, detail, .. } => line(out, &[reason, " ", detail]),
        EventKind::TcpClose { detail, .. } => line(out, &[detail.as_deref().unwrap_or("")]),
        EventKind::TcpRefused { reason, .. } => line(out, &[reason]),
        EventKind::RelayOpen {
            proxy, upstream, ..
        }
        | EventKind::RelayUdpOpen {
            proxy, upstream, ..
        } => line(out, &[proxy, " ", upstream]),
        EventKind::RelayUdpClose { proxy, reason, .. } => line(out, &[proxy, " ", reason]),
        EventKind::RelayNotice { proxy, detail, .. } => line(out, &[proxy, " ", detail]),
        EventKind::RelayRefused { proxy, reason, .. } => line(out, &[proxy, " ", reason]),
        EventKind::RelayFault {
            proxy, toxic, what, ..
        } => line(out, &[proxy, " ", toxic, " ", what]),
        EventKind::ToxicChange {
            proxy,
            toxic,
            action,
            detail,
        } => line(out, &[proxy, " ", toxic, " ", action, " ", detail]),
        EventKind::RelayClose { proxy, detail, .. } => {
            line(out, &[proxy, " ", detail.as_deref().unwrap_or("")])
        }
        EventKind::RelayHttp {
            proxy,
            exchange: x,
            note,
            ..
        } => {
            line(out, &[proxy, " ", note.as_deref().unwrap_or("")]);
            exchange_text(out, x);
        }
        EventKind::Http(x) => exchange_text(out, x),
        EventKind::Tls(x) => {
            line(out, &[&x.service, " ", &x.sni, " ", &x.ja4, " ", &x.cert]);
            line(out, &[&x.version, " ", &x.cipher, " ", &x.alpn_chosen]);
            line(out, &[x.error.as_deref().unwrap_or("")]);
        }
        EventKind::WsOpen { user_agent, .. } => line(out, &[user_agent]),
        EventKind::WsClose { reason, .. } => line(out, &[reason]),
        EventKind::Chat { from, text } => {
            line(out, &[from]);
            line(out, &[text]);
        }
        EventKind::Notice { level, message } => {
            line(out, &[level]);
            line(out, &[message]);
        }
        _ => {}
    }
}

/// The first bytes of a binary capture, up to `max` of them (fewer if its base64 has
/// whitespace), decoding only the base64 that they take: four symbols make three bytes.
fn head(p: &Payload, max: usize) -> Vec<u8> {
    match (p.enc, p.data.get(..max.div_ceil(3) * 4)) {
        (Encoding::Base64, Some(prefix)) => decode(prefix, p.enc).unwrap_or_default(),
        _ => p.bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelab_shared::Direction;

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
            (row.peer, row.dir, row.size),
            (Some("127.0.0.1:4000"), Some("out"), 3)
        );
        assert_eq!(row.text, "127.0.0.1:4000\ndeadff");
        assert_eq!(serde_json::from_str::<Event>(&row.json).unwrap(), ev);
    }

    #[test]
    fn a_big_binary_capture_gives_the_hex_of_its_head_only() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
        for len in [
            0,
            1,
            2,
            3,
            4,
            5,
            HEX_SEARCH_MAX - 1,
            HEX_SEARCH_MAX,
            64 * 1024,
        ] {
            let p = Payload {
                enc: Encoding::Base64,
                data: wirelab_shared::payload::base64_encode(&bytes[..len]),
                cut: 0,
            };
            let want = &bytes[..len.min(HEX_SEARCH_MAX)];
            assert_eq!(&head(&p, HEX_SEARCH_MAX)[..want.len()], want, "{len} bytes");
            let mut text = String::new();
            search_text_into(
                &mut text,
                &EventKind::RelayDatagram {
                    proxy: "p".into(),
                    session: 1,
                    peer: String::new(),
                    from: wirelab_shared::Leg::Client,
                    size: len as u64,
                    payload: p,
                },
            );
            assert_eq!(text, hex_encode(want), "{len} bytes");
        }
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
