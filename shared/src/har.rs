//! HTTP exchanges as HAR 1.2, the format browsers' network panels export and import
//! (<http://www.softwareishard.com/blog/har-12-spec/>). The one builder: the server's
//! `/api/http.har` streams [`entry`]s between the halves of an empty [`Har`], the page
//! serializes a whole [`Har`]; the types only serialize (each side brings its JSON writer).
//!
//! What HAR asks for and the lab does not know is given as the spec says: header sizes
//! are -1, cookie lists are empty, `send` takes 0 ms. The response's status line is the
//! one sent (its version and reason from the event). Captured bodies are the text, or
//! base64 (`encoding` on a response, a `comment` on posted data, which has no encoding
//! field in 1.2); a body cut at the snaplen says how much was not captured in its
//! `comment`. Each entry also carries the event's `_seq`, the exchange's `_exchange`
//! id, the client's address `_peer`, `_seq_on_conn` and (for a replay) `_replay_of`.

use serde::Serialize;

use crate::event::{Event, EventKind, HttpExchange, header};
use crate::payload::Payload;
use crate::time::iso8601;

/// A HAR document: `{"log": {...}}`.
#[derive(Serialize)]
pub struct Har<'a> {
    log: Log<'a>,
}

impl<'a> Har<'a> {
    /// A document of `entries`, made by wirelab `version`.
    pub fn new(version: &'a str, entries: Vec<Entry<'a>>) -> Har<'a> {
        Har {
            log: Log {
                version: "1.2",
                creator: Creator {
                    name: "wirelab",
                    version,
                },
                pages: [],
                entries,
            },
        }
    }
}

#[derive(Serialize)]
struct Log<'a> {
    version: &'static str,
    creator: Creator<'a>,
    /// The lab has no pages: its requests come from anywhere.
    pages: [(); 0],
    /// Last, so that a document streamed entry by entry has an empty one's head and tail.
    entries: Vec<Entry<'a>>,
}

#[derive(Serialize)]
struct Creator<'a> {
    name: &'static str,
    version: &'a str,
}

/// One exchange: a request and its response.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry<'a> {
    started_date_time: String,
    /// Milliseconds, from the request's head to the end of the response.
    time: f64,
    request: Request<'a>,
    response: Response<'a>,
    cache: Cache,
    timings: Timings,
    /// The lab's connection id (keep-alive requests share it).
    connection: String,
    #[serde(rename = "_seq")]
    seq: u64,
    #[serde(rename = "_exchange")]
    exchange: u64,
    #[serde(rename = "_peer")]
    peer: &'a str,
    #[serde(rename = "_seq_on_conn")]
    seq_on_conn: u64,
    #[serde(rename = "_replay_of", skip_serializing_if = "Option::is_none")]
    replay_of: Option<u64>,
    /// The `http` proxy the exchange went through (its `_connection` is the relayed
    /// connection); none for the lab's own HTTP service.
    #[serde(rename = "_proxy", skip_serializing_if = "Option::is_none")]
    proxy: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    method: &'a str,
    url: String,
    http_version: &'a str,
    cookies: [(); 0],
    headers: Vec<Pair<'a>>,
    query_string: Vec<Pair<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    post_data: Option<PostData<'a>>,
    headers_size: i64,
    body_size: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostData<'a> {
    mime_type: &'a str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    status: u16,
    status_text: &'a str,
    http_version: &'a str,
    cookies: [(); 0],
    headers: Vec<Pair<'a>>,
    content: Content<'a>,
    #[serde(rename = "redirectURL")]
    redirect_url: &'a str,
    headers_size: i64,
    body_size: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Content<'a> {
    size: u64,
    mime_type: &'a str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

/// No cache information: `{}`.
#[derive(Serialize)]
struct Cache {}

#[derive(Serialize)]
struct Timings {
    send: f64,
    wait: f64,
    receive: f64,
}

/// A header or a query parameter.
#[derive(Serialize)]
struct Pair<'a> {
    name: &'a str,
    value: &'a str,
}

/// The entry for `ev`, or `None` when it is not an HTTP exchange. `fallback_host` makes the
/// URL of a request that sent no `Host` header (the lab's HTTP service).
pub fn entry<'a>(ev: &'a Event, fallback_host: &str) -> Option<Entry<'a>> {
    let (x, proxy) = match &ev.kind {
        EventKind::Http(x) => (x, None),
        EventKind::RelayHttp {
            exchange, proxy, ..
        } => (exchange, Some(proxy.as_str())),
        _ => return None,
    };
    let ms = |us: u64| us as f64 / 1000.0;
    let x: &'a HttpExchange = x;
    let post_data = (x.body_size > 0).then(|| PostData {
        mime_type: header(&x.headers, "content-type").unwrap_or(""),
        text: &x.body.data,
        comment: note(&x.body, Some("base64")),
    });
    let binary = !x.resp_body.is_text();
    Some(Entry {
        // The event is stamped when the response has gone out; HAR wants the request's start.
        started_date_time: iso8601(ev.ts_us.saturating_sub(x.total_us)),
        time: ms(x.total_us),
        request: Request {
            method: &x.method,
            url: x.url(fallback_host),
            http_version: &x.version,
            cookies: [],
            headers: pairs(&x.headers),
            query_string: query(&x.target),
            post_data,
            headers_size: -1,
            body_size: x.body_size,
        },
        response: Response {
            status: x.status,
            status_text: &x.resp_reason,
            http_version: &x.resp_version,
            cookies: [],
            headers: pairs(&x.resp_headers),
            content: Content {
                size: x.resp_size,
                mime_type: header(&x.resp_headers, "content-type").unwrap_or(""),
                text: &x.resp_body.data,
                encoding: binary.then_some("base64"),
                comment: note(&x.resp_body, None),
            },
            redirect_url: header(&x.resp_headers, "location").unwrap_or(""),
            headers_size: -1,
            body_size: x.resp_size,
        },
        cache: Cache {},
        timings: Timings {
            send: 0.0,
            wait: ms(x.ttfb_us),
            receive: ms(x.total_us.saturating_sub(x.ttfb_us)),
        },
        connection: x.conn.to_string(),
        seq: ev.seq,
        exchange: x.id,
        peer: &x.peer,
        seq_on_conn: x.seq_on_conn,
        replay_of: x.replay_of,
        proxy,
    })
}

fn pairs(list: &[(String, String)]) -> Vec<Pair<'_>> {
    list.iter()
        .map(|(name, value)| Pair { name, value })
        .collect()
}

/// The parameters of the target's query (up to a `#`), as sent (not percent-decoded).
fn query(target: &str) -> Vec<Pair<'_>> {
    let Some((_, q)) = target.split_once('?') else {
        return Vec::new();
    };
    let q = q.split('#').next().unwrap_or("");
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            Pair { name, value }
        })
        .collect()
}

/// A body's comment: `binary` when its text is base64 (and `binary` is given), and how
/// much of it was not captured.
fn note(body: &Payload, binary: Option<&str>) -> Option<String> {
    let binary = binary.filter(|_| !body.is_text());
    let plural = if body.cut == 1 { "" } else { "s" };
    let cut = (body.cut > 0).then(|| format!("{} byte{plural} not captured", body.cut));
    match (binary, cut) {
        (None, None) => None,
        (Some(b), None) => Some(b.to_owned()),
        (None, Some(c)) => Some(c),
        (Some(b), Some(c)) => Some(format!("{b}; {c}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn exchange() -> HttpExchange {
        HttpExchange {
            id: 4,
            conn: 2,
            seq_on_conn: 3,
            peer: "127.0.0.1:5000".into(),
            method: "POST".into(),
            target: "/form?a=1&b=&c#frag".into(),
            version: "HTTP/1.0".into(),
            headers: vec![
                ("Host".into(), "lab:1337".into()),
                ("Content-Type".into(), "text/plain".into()),
            ],
            body: Payload::capture(b"hello", 3),
            body_size: 5,
            status: 422,
            resp_version: "HTTP/1.1".into(),
            resp_reason: "Unprocessable Entity".into(),
            resp_headers: vec![
                ("content-type".into(), "application/octet-stream".into()),
                ("Location".into(), "/elsewhere".into()),
            ],
            resp_body: Payload::capture(&[0xff, 0, 1], 2),
            resp_size: 3,
            ttfb_us: 1500,
            total_us: 2000,
            replay_of: Some(1),
            tls: false,
        }
    }

    fn to_json(ev: &Event) -> Value {
        serde_json::to_value(entry(ev, "fallback:1").unwrap()).unwrap()
    }

    #[test]
    fn an_entry_tells_the_exchange_as_sent() {
        let ev = Event {
            seq: 7,
            ts_us: 1_795_555_083_125_456,
            kind: EventKind::Http(Box::new(exchange())),
        };
        let e = to_json(&ev);
        assert_eq!(
            e["startedDateTime"], "2026-11-24T21:18:03.123Z",
            "ts - total"
        );
        assert_eq!(e["time"], 2.0);
        assert_eq!(
            e["timings"],
            json!({"send": 0.0, "wait": 1.5, "receive": 0.5})
        );
        assert_eq!(e["cache"], json!({}));
        assert_eq!(e["connection"], "2");
        let want_ids = json!([7, 4, "127.0.0.1:5000", 3, 1]);
        let ids = json!([
            e["_seq"],
            e["_exchange"],
            e["_peer"],
            e["_seq_on_conn"],
            e["_replay_of"]
        ]);
        assert_eq!(ids, want_ids);

        let req = &e["request"];
        assert_eq!(req["url"], "http://lab:1337/form?a=1&b=&c#frag");
        assert_eq!(req["httpVersion"], "HTTP/1.0");
        assert_eq!(
            req["queryString"],
            json!([{"name": "a", "value": "1"}, {"name": "b", "value": ""}, {"name": "c", "value": ""}]),
            "the fragment is not part of the query"
        );
        assert_eq!(
            req["headers"][1],
            json!({"name": "Content-Type", "value": "text/plain"})
        );
        assert_eq!(
            req["postData"],
            json!({"mimeType": "text/plain", "text": "hel", "comment": "2 bytes not captured"})
        );
        assert_eq!(
            (&req["headersSize"], &req["bodySize"]),
            (&json!(-1), &json!(5))
        );
        assert_eq!(req["cookies"], json!([]));

        let resp = &e["response"];
        assert_eq!(resp["status"], 422);
        assert_eq!(resp["statusText"], "Unprocessable Entity");
        assert_eq!(
            resp["httpVersion"], "HTTP/1.1",
            "the response's own version"
        );
        assert_eq!(resp["redirectURL"], "/elsewhere");
        assert_eq!(
            resp["content"],
            json!({
                "size": 3,
                "mimeType": "application/octet-stream",
                "text": "/wA=",
                "encoding": "base64",
                "comment": "1 byte not captured",
            })
        );
    }

    #[test]
    fn plain_exchanges_leave_the_optional_fields_out() {
        let x = HttpExchange {
            method: "GET".into(),
            target: "/".into(),
            headers: vec![],
            body: Payload::default(),
            body_size: 0,
            resp_body: Payload::capture(b"Hello World\n", 64),
            replay_of: None,
            ..exchange()
        };
        let e = to_json(&Event {
            seq: 1,
            ts_us: 0,
            kind: EventKind::Http(Box::new(x)),
        });
        assert_eq!(e["request"]["url"], "http://fallback:1/", "no Host header");
        assert_eq!(e["request"]["queryString"], json!([]));
        assert!(e["request"].get("postData").is_none(), "{e}");
        assert!(e.get("_replay_of").is_none(), "{e}");
        assert_eq!(
            e["response"]["content"],
            json!({"size": 3, "mimeType": "application/octet-stream", "text": "Hello World\n"})
        );
        assert_eq!(
            e["startedDateTime"], "1970-01-01T00:00:00.000Z",
            "never before 0"
        );

        let binary_post = HttpExchange {
            body: Payload::capture(&[0xfe], 64),
            body_size: 1,
            ..exchange()
        };
        let e = to_json(&Event {
            seq: 1,
            ts_us: 0,
            kind: EventKind::Http(Box::new(binary_post)),
        });
        assert_eq!(e["request"]["postData"]["comment"], "base64");
    }

    #[test]
    fn a_document_holds_only_the_http_exchanges() {
        let events = [
            Event {
                seq: 1,
                ts_us: 0,
                kind: EventKind::Chat {
                    from: "a".into(),
                    text: "b".into(),
                },
            },
            Event {
                seq: 2,
                ts_us: 0,
                kind: EventKind::Http(Box::new(exchange())),
            },
            Event {
                seq: 3,
                ts_us: 0,
                kind: EventKind::RelayHttp {
                    proxy: "api".into(),
                    exchange: Box::new(exchange()),
                    connect_us: None,
                    note: None,
                },
            },
        ];
        let entries = events.iter().filter_map(|e| entry(e, "h")).collect();
        let doc = serde_json::to_value(Har::new("0.1.0", entries)).unwrap();
        let log = &doc["log"];
        assert_eq!(log["version"], "1.2");
        assert_eq!(
            log["creator"],
            json!({"name": "wirelab", "version": "0.1.0"})
        );
        assert_eq!(log["pages"], json!([]));
        assert_eq!(log["entries"].as_array().unwrap().len(), 2);
        assert_eq!(log["entries"][0]["_seq"], 2);
        assert_eq!(log["entries"][0].get("_proxy"), None);
        assert_eq!(
            log["entries"][1]["_proxy"], "api",
            "a relayed exchange says its proxy"
        );
        // `entries` comes last, so an empty document splits into a streamable head and tail.
        let empty = serde_json::to_string(&Har::new("0.1.0", vec![])).unwrap();
        assert!(empty.ends_with(r#""entries":[]}}"#), "{empty}");
    }
}
