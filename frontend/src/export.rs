//! Exports: the timeline as JSON Lines (one `Event` per line, exactly as the server sent
//! it) and the HTTP exchanges as a HAR 1.2 log that browsers' network panels import.

use std::rc::Rc;

use serde_json::{Value, json};
use wirelab_shared::{EventKind, HttpExchange, Payload};

use crate::curl;
use crate::fmt;
use crate::row::Row;

/// An event as indented JSON, for reading. (Compact JSON re-read as a `Value` and printed
/// with indents: the event's serializer is then built for the compact form only, which
/// keeps the wasm smaller.)
pub fn pretty(event: &wirelab_shared::Event) -> String {
    serde_json::to_string(event)
        .ok()
        .and_then(|compact| serde_json::from_str::<Value>(&compact).ok())
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_default()
}

/// One JSON object per line, oldest first, newline-terminated.
pub fn jsonl<'a>(rows: impl Iterator<Item = &'a Rc<Row>>) -> String {
    let mut out = String::new();
    for r in rows {
        if let Ok(line) = serde_json::to_string(&r.event) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

fn pairs(list: &[(String, String)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(k, v)| json!({ "name": k, "value": v }))
            .collect(),
    )
}

fn query_string(target: &str) -> Value {
    let Some((_, q)) = target.split_once('?') else {
        return json!([]);
    };
    Value::Array(
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                json!({ "name": k, "value": v })
            })
            .collect(),
    )
}

fn content(body: &Payload, size: u64, mime: &str) -> Value {
    let mut c = json!({ "size": size, "mimeType": mime });
    if body.is_text() {
        c["text"] = json!(body.data);
    } else {
        c["text"] = json!(body.data);
        c["encoding"] = json!("base64");
    }
    if body.cut > 0 {
        c["comment"] = json!(format!("{} bytes not captured (snaplen)", body.cut));
    }
    c
}

fn entry(seq: u64, ts_us: u64, x: &HttpExchange, fallback_host: &str) -> Value {
    let ms = |us: u64| us as f64 / 1000.0;
    let req_mime = curl::header(&x.headers, "content-type").unwrap_or("");
    let resp_mime = curl::header(&x.resp_headers, "content-type").unwrap_or("");
    let mut request = json!({
        "method": x.method,
        "url": curl::url(x, fallback_host),
        "httpVersion": x.version,
        "cookies": [],
        "headers": pairs(&x.headers),
        "queryString": query_string(&x.target),
        "headersSize": -1,
        "bodySize": x.body_size,
    });
    if x.body_size > 0 || !x.body.data.is_empty() {
        let mut post = json!({ "mimeType": req_mime, "text": x.body.data });
        if !x.body.is_text() {
            post["comment"] = json!("base64");
        }
        request["postData"] = post;
    }
    json!({
        "startedDateTime": fmt::iso8601(ts_us),
        "time": ms(x.total_us),
        "request": request,
        "response": {
            "status": x.status,
            "statusText": curl::reason(x.status),
            "httpVersion": x.version,
            "cookies": [],
            "headers": pairs(&x.resp_headers),
            "content": content(&x.resp_body, x.resp_size, resp_mime),
            "redirectURL": curl::header(&x.resp_headers, "location").unwrap_or(""),
            "headersSize": -1,
            "bodySize": x.resp_size,
        },
        "cache": {},
        "timings": {
            "send": 0,
            "wait": ms(x.ttfb_us),
            "receive": ms(x.total_us.saturating_sub(x.ttfb_us)),
        },
        "connection": x.conn.to_string(),
        "comment": format!("wirelab event {seq}, exchange {}, request {} on connection {}, from {}",
            x.id, x.seq_on_conn, x.conn, x.peer),
    })
}

/// A HAR 1.2 log of the HTTP exchanges among `rows`.
pub fn har<'a>(
    rows: impl Iterator<Item = &'a Rc<Row>>,
    version: &str,
    fallback_host: &str,
) -> String {
    let entries: Vec<Value> = rows
        .filter_map(|r| match &r.event.kind {
            EventKind::Http(x) => Some(entry(r.seq, r.ts_us, x, fallback_host)),
            _ => None,
        })
        .collect();
    let log = json!({
        "log": {
            "version": "1.2",
            "creator": { "name": "wirelab", "version": version },
            "pages": [],
            "entries": entries,
        }
    });
    serde_json::to_string_pretty(&log).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelab_shared::{Direction, Event};

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
        assert!(text.contains("\n  \"seq\": 2"), "{text}");
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), row.event);
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
        assert_eq!(e["startedDateTime"], "2026-11-24T21:18:03.123Z");
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
