//! Recorded HTTP exchanges as HAR 1.2 (the format browsers' network panels export), a
//! piece at a time: [`head`], one [`Har::entry`] per exchange, [`TAIL`].
//!
//! What HAR asks for that the lab does not know is given as HAR says to: sizes of headers
//! are -1, cookies are empty lists, `send` time is 0. Bodies cut at the snaplen carry a
//! `comment` saying so. Each entry also has `_seq` (the event) and `_exchange` (its id).

use serde_json::{Value, json};
use wirelab_shared::{Event, EventKind, HttpExchange, Payload};

/// The closing of the document.
pub const TAIL: &str = "]}}\n";

/// The opening of the document, up to the entries.
pub fn head() -> String {
    let creator = json!({"name": "wirelab", "version": env!("CARGO_PKG_VERSION")});
    format!(r#"{{"log":{{"version":"1.2","creator":{creator},"pages":[],"entries":["#)
}

/// Writes the entries, with commas between them.
#[derive(Default)]
pub struct Har {
    /// The lab's HTTP service, for the URL of requests without a `Host` header.
    pub host: String,
    written: u64,
}

impl Har {
    pub fn new(host: String) -> Har {
        Har { host, written: 0 }
    }

    /// The entry for `ev` (with its leading comma), or nothing for non-HTTP events.
    pub fn entry(&mut self, ev: &Event) -> Option<String> {
        let EventKind::Http(x) = &ev.kind else {
            return None;
        };
        let entry = entry(ev.seq, ev.ts_us, x, &self.host);
        let comma = if self.written > 0 { "," } else { "" };
        self.written += 1;
        Some(format!("{comma}{entry}"))
    }
}

fn entry(seq: u64, ts_us: u64, x: &HttpExchange, lab_host: &str) -> Value {
    let header = |name: &str, headers: &[(String, String)]| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let url = if x.target.starts_with("http://") || x.target.starts_with("https://") {
        x.target.clone()
    } else {
        let host = header("host", &x.headers).unwrap_or_else(|| lab_host.to_owned());
        format!("http://{host}{}", x.target)
    };
    let query: Vec<Value> = x
        .target
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(""))
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            json!({"name": name, "value": value})
        })
        .collect();
    let mut request = json!({
        "method": x.method,
        "url": url,
        "httpVersion": x.version,
        "cookies": [],
        "headers": headers(&x.headers),
        "queryString": query,
        "headersSize": -1,
        "bodySize": x.body_size,
    });
    if x.body_size > 0 {
        let mime = header("content-type", &x.headers).unwrap_or_default();
        let mut post = json!({"mimeType": mime, "text": x.body.data});
        if !x.body.is_text() {
            post["comment"] = "base64".into();
        }
        request["postData"] = post;
    }
    let mut content = json!({
        "size": x.resp_size,
        "mimeType": header("content-type", &x.resp_headers).unwrap_or_default(),
        "text": x.resp_body.data,
    });
    if !x.resp_body.is_text() {
        content["encoding"] = "base64".into();
    }
    let status_text = axum::http::StatusCode::from_u16(x.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let response = json!({
        "status": x.status,
        "statusText": status_text,
        "httpVersion": x.version,
        "cookies": [],
        "headers": headers(&x.resp_headers),
        "content": content,
        "redirectURL": header("location", &x.resp_headers).unwrap_or_default(),
        "headersSize": -1,
        "bodySize": x.resp_size,
    });
    let ms = |us: u64| us as f64 / 1000.0;
    let mut entry = json!({
        "startedDateTime": iso8601(ts_us),
        "time": ms(x.total_us),
        "request": request,
        "response": response,
        "cache": {},
        "timings": {
            "send": 0,
            "wait": ms(x.ttfb_us),
            "receive": ms(x.total_us.saturating_sub(x.ttfb_us)),
        },
        "connection": x.conn.to_string(),
        "_seq": seq,
        "_exchange": x.id,
    });
    let cut = [
        cut_note("request", &x.body),
        cut_note("response", &x.resp_body),
    ];
    let cut: Vec<String> = cut.into_iter().flatten().collect();
    if !cut.is_empty() {
        entry["comment"] = cut.join("; ").into();
    }
    entry
}

fn headers(list: &[(String, String)]) -> Vec<Value> {
    list.iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect()
}

fn cut_note(what: &str, p: &Payload) -> Option<String> {
    (p.cut > 0).then(|| {
        format!(
            "{what} body cut at the snaplen: {} bytes not captured",
            p.cut
        )
    })
}

/// `2024-01-02T03:04:05.678901Z` for microseconds since the Unix epoch.
pub fn iso8601(ts_us: u64) -> String {
    let secs = ts_us / 1_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ts_us % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_iso8601() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(iso8601(951_782_400_000_001), "2000-02-29T00:00:00.000001Z");
        assert_eq!(
            iso8601(1_700_000_000_123_456),
            "2023-11-14T22:13:20.123456Z"
        );
    }

    #[test]
    fn a_document_of_exchanges_is_valid_har() {
        let x = HttpExchange {
            id: 4,
            conn: 2,
            peer: "127.0.0.1:5000".into(),
            method: "POST".into(),
            target: "/form?a=1&b=".into(),
            version: "HTTP/1.1".into(),
            headers: vec![
                ("Host".into(), "lab:1337".into()),
                ("Content-Type".into(), "text/plain".into()),
            ],
            body: Payload::capture(b"hello", 3),
            body_size: 5,
            status: 404,
            resp_headers: vec![("Content-Type".into(), "application/octet-stream".into())],
            resp_body: Payload::capture(&[0xff, 0], 64),
            resp_size: 2,
            ttfb_us: 1500,
            total_us: 2000,
            ..Default::default()
        };
        let mut har = Har::new("127.0.0.1:1337".into());
        let mut doc = head();
        for (seq, kind) in [
            (1, EventKind::Http(Box::new(x.clone()))),
            (
                2,
                EventKind::Chat {
                    from: "a".into(),
                    text: "b".into(),
                },
            ),
            (
                3,
                EventKind::Http(Box::new(HttpExchange {
                    target: "/".into(),
                    headers: vec![],
                    ..x
                })),
            ),
        ] {
            if let Some(e) = har.entry(&Event {
                seq,
                ts_us: 0,
                kind,
            }) {
                doc.push_str(&e);
            }
        }
        doc.push_str(TAIL);
        let v: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["log"]["version"], "1.2");
        let entries = v["log"]["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        let e = &entries[0];
        assert_eq!(e["request"]["url"], "http://lab:1337/form?a=1&b=");
        assert_eq!(
            e["request"]["queryString"][1],
            json!({"name": "b", "value": ""})
        );
        assert_eq!(e["request"]["postData"]["text"], "hel");
        assert_eq!(e["response"]["statusText"], "Not Found");
        assert_eq!(e["response"]["content"]["encoding"], "base64");
        assert_eq!(e["timings"]["wait"], 1.5);
        assert_eq!(e["_seq"], 1);
        assert!(
            e["comment"]
                .as_str()
                .unwrap()
                .contains("2 bytes not captured")
        );
        assert_eq!(entries[1]["request"]["url"], "http://127.0.0.1:1337/");
    }
}
