//! Recorded HTTP exchanges as HAR 1.2, a piece at a time: [`head`], one [`Har::entry`] per
//! exchange, [`TAIL`]. What goes in the document is [`wirelab_shared::har`]'s, the builder
//! the page's export uses too; this module only streams it.

use wirelab_shared::Event;
use wirelab_shared::har;

/// The closing of the document (an empty document's, after its `[` of entries).
const CLOSE: &str = "]}}";

/// The closing of the document, with a newline.
pub const TAIL: &str = "]}}\n";

/// The opening of the document, up to the entries: an empty document without its closing.
pub fn head() -> String {
    let empty = har::Har::new(env!("CARGO_PKG_VERSION"), Vec::new());
    let empty = serde_json::to_string(&empty).expect("HAR serializes");
    match empty.strip_suffix(CLOSE) {
        Some(head) => head.to_owned(),
        None => unreachable!("a HAR document ends with its entries: {empty}"),
    }
}

/// Writes the entries, with commas between them.
pub struct Har {
    /// The lab's HTTP service, for the URL of requests without a `Host` header.
    host: String,
    /// Entries written so far (the first has no comma before it).
    written: u64,
}

impl Har {
    pub fn new(host: String) -> Har {
        Har { host, written: 0 }
    }

    /// The entry for `ev` (with its leading comma), or nothing for non-HTTP events.
    pub fn entry(&mut self, ev: &Event) -> Option<String> {
        let entry = har::entry(ev, &self.host)?;
        let json = serde_json::to_string(&entry).expect("HAR serializes");
        let comma = if self.written > 0 { "," } else { "" };
        self.written += 1;
        Some(format!("{comma}{json}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelab_shared::{EventKind, HttpExchange, Payload};

    #[test]
    fn the_streamed_document_is_the_shared_builders() {
        let x = HttpExchange {
            id: 4,
            method: "POST".into(),
            target: "/form?a=1".into(),
            version: "HTTP/1.1".into(),
            body: Payload::capture(b"hello", 3),
            body_size: 5,
            status: 404,
            resp_reason: "Not Found".into(),
            ..Default::default()
        };
        let events: Vec<Event> = [
            EventKind::Http(Box::new(x.clone())),
            EventKind::Chat {
                from: "a".into(),
                text: "b".into(),
            },
            EventKind::Http(Box::new(HttpExchange { id: 5, ..x })),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Event {
            seq: i as u64 + 1,
            ts_us: 1_000_000,
            kind,
        })
        .collect();
        let mut har = Har::new("127.0.0.1:1337".into());
        let mut doc = head();
        for ev in &events {
            doc.extend(har.entry(ev));
        }
        doc.push_str(TAIL);

        let entries = events
            .iter()
            .filter_map(|e| har::entry(e, "127.0.0.1:1337"))
            .collect();
        let whole = har::Har::new(env!("CARGO_PKG_VERSION"), entries);
        assert_eq!(doc, serde_json::to_string(&whole).unwrap() + "\n");
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["log"]["entries"].as_array().unwrap().len(), 2, "{v:#}");
        assert_eq!(v["log"]["entries"][1]["_exchange"], 5);
        assert_eq!(
            v["log"]["entries"][0]["request"]["url"],
            "http://127.0.0.1:1337/form?a=1"
        );
    }
}
