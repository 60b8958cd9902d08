//! Exports: the timeline as JSON Lines (one `Event` per line, exactly as the server sent
//! it) and the HTTP exchanges as a HAR 1.2 log that browsers' network panels import.
//!
//! Events are written by [`wirelab_shared::encode`], the server's own writer: serde's
//! `Serialize` for them was 11 KB of the wasm.
//!
//! No `serde_json::Value` here: the HAR log is `wirelab_shared::har`'s (serialized
//! straight from its types) and indented by [`indent`], like the detail pane's JSON.
//! `Value` (its own serializer and deserializer, B-tree maps, float printing) cost the
//! wasm 18 KB (7 KB gzip).

use std::rc::Rc;

use wirelab_shared::encode::event_json;
use wirelab_shared::har;

use crate::row::Row;

/// An event as indented JSON, for reading, its keys in the wire's order.
pub fn pretty(event: &wirelab_shared::Event) -> String {
    indent(&event_json(event))
}

/// Compact JSON (as `serde_json::to_string` writes it: no whitespace between tokens)
/// indented as `serde_json::to_string_pretty` does: two spaces a level, `"key": value`,
/// and `[]` and `{}` left empty.
pub fn indent(compact: &str) -> String {
    let bytes = compact.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 2);
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.resize(out.len() + 2 * depth, b' ');
    };
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        i += 1;
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            continue;
        }
        match c {
            b'"' => {
                in_string = true;
                out.push(c);
            }
            b'{' | b'[' if matches!(bytes.get(i), Some(b'}' | b']')) => {
                out.extend_from_slice(&[c, bytes[i]]);
                i += 1;
            }
            b'{' | b'[' => {
                out.push(c);
                depth += 1;
                newline(&mut out, depth);
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            b',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            _ => out.push(c),
        }
    }
    // Only ASCII was added, between whole characters.
    String::from_utf8(out).unwrap_or_default()
}

/// One JSON object per line, oldest first, newline-terminated.
pub fn jsonl<'a>(rows: impl Iterator<Item = &'a Rc<Row>>) -> String {
    let mut out = String::new();
    for r in rows {
        out.push_str(&event_json(&r.event));
        out.push('\n');
    }
    out
}

/// A HAR 1.2 log of the HTTP exchanges among `rows`, built as the server's
/// `/api/http.har` builds it ([`wirelab_shared::har`]), indented for reading.
pub fn har<'a>(
    rows: impl Iterator<Item = &'a Rc<Row>>,
    version: &str,
    fallback_host: &str,
) -> String {
    let entries = rows
        .filter_map(|r| har::entry(&r.event, fallback_host))
        .collect();
    serde_json::to_string(&har::Har::new(version, entries))
        .map(|compact| indent(&compact))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use wirelab_shared::{Direction, Event, EventKind, HttpExchange, Payload};

    fn rows() -> Vec<Rc<Row>> {
        let x = HttpExchange {
            id: 3,
            conn: 2,
            seq_on_conn: 1,
            method: "POST".into(),
            target: "/_/echo?a=1&b".into(),
            version: "HTTP/1.1".into(),
            headers: vec![
                ("Host".into(), "127.0.0.1:1337".into()),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: Payload::capture(b"{\"k\":1}", 64),
            body_size: 7,
            status: 200,
            resp_version: "HTTP/1.1".into(),
            resp_reason: "OK".into(),
            resp_headers: vec![("content-type".into(), "text/plain".into())],
            resp_body: Payload::capture(b"Hello World\n", 64),
            resp_size: 12,
            ttfb_us: 1500,
            total_us: 2000,
            ..Default::default()
        };
        vec![
            Row::shared(Event {
                seq: 1,
                ts_us: 1_795_555_083_123_456,
                kind: EventKind::Http(Box::new(x)),
            }),
            Row::shared(Event {
                seq: 2,
                ts_us: 1,
                kind: EventKind::UdpDatagram {
                    peer: "p".into(),
                    dir: Direction::In,
                    size: 9,
                    payload: Payload::capture(b"<script>\n", 64),
                },
            }),
        ]
    }

    #[test]
    fn pretty_json_reads_back_as_the_event() {
        let row = &rows()[1];
        let text = pretty(&row.event);
        assert!(
            text.starts_with("{\n  \"seq\": 2,\n  \"ts_us\": 1,"),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), row.event);
    }

    #[test]
    fn indent_is_serde_jsons_pretty_printing() {
        for row in rows() {
            let pretty = serde_json::to_string_pretty(&row.event).unwrap();
            assert_eq!(indent(&serde_json::to_string(&row.event).unwrap()), pretty);
        }
        let tricky = serde_json::json!({
            "s": "a,b:{c}[d] \" \\\" é",
            "e": [], "o": {}, "n": [[1, {"k": null}], -2.5, true],
        });
        assert_eq!(
            indent(&tricky.to_string()),
            serde_json::to_string_pretty(&tricky).unwrap()
        );
    }

    #[test]
    fn jsonl_is_one_event_per_line() {
        let text = jsonl(rows().iter());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        for (line, row) in lines.iter().zip(rows()) {
            let back: Event = serde_json::from_str(line).unwrap();
            assert_eq!(back, row.event);
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn har_has_the_fields_har_1_2_requires() {
        let har: Value = serde_json::from_str(&har(rows().iter(), "0.1.0", "x")).unwrap();
        let log = &har["log"];
        assert_eq!(log["version"], "1.2");
        assert_eq!(log["creator"]["name"], "wirelab");
        let entries = log["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        // The request's start: the event's time (the response's end) less its 2 ms.
        assert_eq!(e["startedDateTime"], "2026-11-24T21:18:03.121Z");
        assert_eq!(e["_seq"], 1);
        assert_eq!(e["time"], 2.0);
        assert_eq!(e["request"]["url"], "http://127.0.0.1:1337/_/echo?a=1&b");
        assert_eq!(e["request"]["queryString"][1]["name"], "b");
        assert_eq!(e["request"]["postData"]["mimeType"], "application/json");
        assert_eq!(e["request"]["headers"][0]["name"], "Host");
        assert_eq!(e["response"]["status"], 200);
        assert_eq!(e["response"]["statusText"], "OK");
        assert_eq!(e["response"]["content"]["text"], "Hello World\n");
        assert_eq!(e["response"]["content"]["mimeType"], "text/plain");
        assert_eq!(e["timings"]["wait"], 1.5);
        assert_eq!(e["timings"]["receive"], 0.5);
        for key in ["cache", "timings", "request", "response"] {
            assert!(e.get(key).is_some(), "{key}");
        }
        for key in [
            "cookies",
            "headers",
            "headersSize",
            "bodySize",
            "httpVersion",
        ] {
            assert!(e["request"].get(key).is_some(), "request.{key}");
            assert!(e["response"].get(key).is_some(), "response.{key}");
        }
    }
}
