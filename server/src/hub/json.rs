//! The JSON of one event, written by hand for HTTP exchanges (one per request, the events a
//! load test makes by the hundred thousand a second) and by `serde_json` for the rest.
//!
//! The bytes are exactly `serde_json`'s (tested below, field by field): the same field
//! order, the same escaping (`serde_json` writes each string), `cut` and
//! `replay_of` left out as their serde attributes say. What is saved is serde's
//! per-field machinery: keys escaped one by one, a state machine per struct. The structs
//! are destructured without `..`, so a new field does not compile until it is written here.
//!
//! Its worth, measured (issue 19): a Hello World exchange's event takes about 3,600
//! instructions here and 7,500 through `serde_json` (callgrind); in the server under
//! callgrind, 20,000 keep-alive requests cost 13.2k user-space instructions each with
//! this module and 17.9k with `serde_json` in its place. The ignored test below times
//! both (`cargo test -p wirelab --profile bench-fast --lib hub::json -- --ignored
//! --nocapture`).

use wirelab_shared::payload::Encoding;
use wirelab_shared::{Event, EventKind, HttpExchange, Payload};

/// Appends `ev` as JSON to `out`.
pub fn write_event(out: &mut Vec<u8>, ev: &Event) {
    match &ev.kind {
        EventKind::Http(x) => write_http(out, ev.seq, ev.ts_us, x),
        _ => serde_json::to_writer(&mut *out, ev).expect("events serialize"),
    }
}

fn write_http(out: &mut Vec<u8>, seq: u64, ts_us: u64, x: &HttpExchange) {
    let HttpExchange {
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
    } = x;
    out.extend_from_slice(b"{\"seq\":");
    num(out, seq);
    out.extend_from_slice(b",\"ts_us\":");
    num(out, ts_us);
    out.extend_from_slice(b",\"kind\":{\"type\":\"http\",\"id\":");
    num(out, *id);
    out.extend_from_slice(b",\"conn\":");
    num(out, *conn);
    out.extend_from_slice(b",\"seq_on_conn\":");
    num(out, *seq_on_conn);
    out.extend_from_slice(b",\"peer\":");
    text(out, peer);
    out.extend_from_slice(b",\"method\":");
    text(out, method);
    out.extend_from_slice(b",\"target\":");
    text(out, target);
    out.extend_from_slice(b",\"version\":");
    text(out, version);
    out.extend_from_slice(b",\"headers\":");
    pairs(out, headers);
    out.extend_from_slice(b",\"body\":");
    payload(out, body);
    out.extend_from_slice(b",\"body_size\":");
    num(out, *body_size);
    out.extend_from_slice(b",\"status\":");
    num(out, u64::from(*status));
    out.extend_from_slice(b",\"resp_version\":");
    text(out, resp_version);
    out.extend_from_slice(b",\"resp_reason\":");
    text(out, resp_reason);
    out.extend_from_slice(b",\"resp_headers\":");
    pairs(out, resp_headers);
    out.extend_from_slice(b",\"resp_body\":");
    payload(out, resp_body);
    out.extend_from_slice(b",\"resp_size\":");
    num(out, *resp_size);
    out.extend_from_slice(b",\"ttfb_us\":");
    num(out, *ttfb_us);
    out.extend_from_slice(b",\"total_us\":");
    num(out, *total_us);
    if let Some(r) = replay_of {
        out.extend_from_slice(b",\"replay_of\":");
        num(out, *r);
    }
    out.extend_from_slice(b"}}");
}

/// `[["name","value"],...]`
fn pairs(out: &mut Vec<u8>, pairs: &[(String, String)]) {
    out.push(b'[');
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        text(out, name);
        out.push(b',');
        text(out, value);
        out.push(b']');
    }
    out.push(b']');
}

fn payload(out: &mut Vec<u8>, p: &Payload) {
    let Payload { enc, data, cut } = p;
    out.extend_from_slice(match enc {
        Encoding::Text => b"{\"enc\":\"text\",\"data\":".as_slice(),
        Encoding::Base64 => b"{\"enc\":\"base64\",\"data\":",
        Encoding::Hex => b"{\"enc\":\"hex\",\"data\":",
    });
    text(out, data);
    if *cut != 0 {
        out.extend_from_slice(b",\"cut\":");
        num(out, *cut);
    }
    out.push(b'}');
}

/// A JSON string, escaped as `serde_json` escapes it.
fn text(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec never fails");
}

/// A number in decimal.
fn num(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_as_serde(ev: &Event) {
        let mut out = Vec::new();
        write_event(&mut out, ev);
        let ours = String::from_utf8(out).unwrap();
        assert_eq!(ours, serde_json::to_string(ev).unwrap());
    }

    #[test]
    fn http_exchanges_are_written_as_serde_writes_them() {
        let full = HttpExchange {
            id: u64::MAX,
            conn: 0,
            seq_on_conn: 10,
            peer: "[::1]:5000".into(),
            method: "PO\"ST".into(),
            target: "/a?b=\\c\u{7}\n\u{e9}\u{1f600}".into(),
            version: "HTTP/1.1".into(),
            headers: vec![("x-a".into(), "1".into()), ("x-a".into(), "\t\"2\"".into())],
            body: Payload::capture(&[0xff, 0, 1, 2], 3),
            body_size: 4,
            status: 65535,
            resp_version: "HTTP/1.1".into(),
            resp_reason: "Unprocessable \"Entity\"".into(),
            resp_headers: vec![("content-type".into(), "text/plain".into())],
            resp_body: Payload::capture("Hello World\n".as_bytes(), 5),
            resp_size: 12,
            ttfb_us: 1,
            total_us: 1_000_000_007,
            replay_of: Some(42),
        };
        let hex = HttpExchange {
            body: Payload {
                enc: Encoding::Hex,
                data: "00ff".into(),
                cut: 0,
            },
            replay_of: None,
            ..full.clone()
        };
        for (seq, x) in [(1, HttpExchange::default()), (99, full), (1 << 40, hex)] {
            same_as_serde(&Event {
                seq,
                ts_us: 1_795_564_037_921_856,
                kind: EventKind::Http(Box::new(x)),
            });
        }
        // Other kinds go through serde itself.
        same_as_serde(&Event {
            seq: 3,
            ts_us: 0,
            kind: EventKind::Chat {
                from: "a".into(),
                text: "b\"".into(),
            },
        });
    }

    /// A Hello World exchange as `wrk` makes them.
    fn hello(seq: u64) -> Event {
        Event {
            seq,
            ts_us: 1_795_555_083_123_456 + seq,
            kind: EventKind::Http(Box::new(HttpExchange {
                id: seq,
                conn: 17,
                seq_on_conn: seq % 1000,
                peer: "127.0.0.1:53012".into(),
                method: "GET".into(),
                target: "/".into(),
                version: "HTTP/1.1".into(),
                headers: vec![("Host".into(), "127.0.0.1:1337".into())],
                status: 200,
                resp_version: "HTTP/1.1".into(),
                resp_reason: "OK".into(),
                resp_headers: vec![
                    ("content-type".into(), "text/plain".into()),
                    ("Date".into(), "Mon, 07 Dec 2026 06:00:00 GMT".into()),
                    ("Connection".into(), "keep-alive".into()),
                    ("Content-Length".into(), "12".into()),
                ],
                resp_body: Payload::capture(b"Hello World\n", 65536),
                resp_size: 12,
                ttfb_us: 13,
                total_us: 21,
                ..Default::default()
            })),
        }
    }

    /// The best of 5 rounds of `n` events written by `write`, in ns per event.
    fn ns_per_event(events: &[Event], n: usize, write: impl Fn(&mut Vec<u8>, &Event)) -> f64 {
        let mut out = Vec::with_capacity(events.len() * 600);
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = std::time::Instant::now();
            for i in 0..n {
                if i % events.len() == 0 {
                    out.clear(); // a frame's worth at a time, as the hub writes them
                }
                write(&mut out, std::hint::black_box(&events[i % events.len()]));
            }
            std::hint::black_box(&out);
            best = best.min(start.elapsed().as_nanos() as f64 / n as f64);
        }
        best
    }

    #[test]
    #[ignore = "a measurement: run it in an optimized build (see the module's doc)"]
    fn writing_by_hand_is_faster_than_serde() {
        let events: Vec<Event> = (1..=256).map(hello).collect();
        same_as_serde(&events[0]);
        let n = 200_000;
        let hand = ns_per_event(&events, n, write_event);
        let serde = ns_per_event(&events, n, |out, ev| {
            serde_json::to_writer(out, ev).expect("events serialize")
        });
        println!("HTTP event JSON: by hand {hand:.0} ns, serde_json {serde:.0} ns");
        assert!(hand < serde, "this module no longer pays its way");
    }
}
