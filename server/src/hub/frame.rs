//! A frame for every WebSocket client: serialized once by the hub, shared by all.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use wirelab_shared::{Event, ServerMsg};

/// What the hub broadcasts. Cloning is cheap: the bytes are reference-counted.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The JSON text every client gets.
    pub text: Utf8Bytes,
    /// For event batches: the events (so a client with a subscription filter can
    /// re-serialize the part it wants) and their range of `seq`.
    pub batch: Option<Batch>,
    /// What clients that are not dashboards get instead, when it differs: `state` without
    /// the WebSocket client list.
    pub others: Option<Utf8Bytes>,
    /// `text` and `others` compressed (permessage-deflate), made by the first client that
    /// wants them and shared by the rest.
    deflated: Arc<[OnceLock<Bytes>; 2]>,
}

/// The events of one `events` frame.
#[derive(Debug, Clone)]
pub struct Batch {
    pub events: Arc<[Arc<Event>]>,
    /// Where each event's JSON sits in the frame's text, in the order of `events`: the
    /// recorder stores these bytes instead of serializing every event a second time.
    pub spans: Arc<[Range<usize>]>,
    /// Union of [`wirelab_shared::Protocol::bit`] over the events.
    pub mask: u8,
    pub first_seq: u64,
    pub last_seq: u64,
}

impl Frame {
    /// A frame that is not an event batch (state, pool figures).
    pub fn message(msg: &ServerMsg) -> Frame {
        Frame {
            text: to_text(msg),
            batch: None,
            others: None,
            deflated: Arc::default(),
        }
    }

    /// A message whose text for dashboards (`full`) differs from the one the other clients
    /// get (`others`).
    pub fn for_dashboards(full: &ServerMsg, others: &ServerMsg) -> Frame {
        Frame {
            text: to_text(full),
            batch: None,
            others: Some(to_text(others)),
            deflated: Arc::default(),
        }
    }

    /// The text for a client (`dashboard`: its upgrade carried an Origin header).
    pub fn text_for(&self, dashboard: bool) -> &Utf8Bytes {
        match &self.others {
            Some(others) if !dashboard => others,
            _ => &self.text,
        }
    }

    /// An `events` frame for `events` (oldest first, at least one).
    pub fn events(events: Vec<Arc<Event>>) -> Frame {
        let mask = events.iter().fold(0, |m, e| m | e.kind.protocol().bit());
        let first_seq = events.first().map_or(0, |e| e.seq);
        let last_seq = events.last().map_or(0, |e| e.seq);
        let (text, spans) = events_text_spans(events.iter().map(|e| &**e));
        Frame {
            text,
            batch: Some(Batch {
                events: events.into(),
                spans: spans.into(),
                mask,
                first_seq,
                last_seq,
            }),
            others: None,
            deflated: Arc::default(),
        }
    }

    /// [`Frame::text_for`] compressed for permessage-deflate: compressed once, by the
    /// first client that asks, for every client.
    pub fn deflated_for(&self, dashboard: bool) -> &Bytes {
        self.deflated_slot(dashboard)
            .get_or_init(|| crate::ws::deflate::compress(self.text_for(dashboard).as_bytes()))
    }

    /// Whether the compressed text is made already (so using it costs nothing).
    pub fn is_deflated(&self, dashboard: bool) -> bool {
        self.deflated_slot(dashboard).get().is_some()
    }

    /// Where the compressed form of [`Frame::text_for`]`(dashboard)` is kept.
    fn deflated_slot(&self, dashboard: bool) -> &OnceLock<Bytes> {
        let others = self.others.is_some() && !dashboard;
        &self.deflated[usize::from(others)]
    }

    /// Event `i`'s JSON in an `events` frame (what `serde_json::to_string` gives for it).
    pub fn event_json(&self, i: usize) -> Option<&str> {
        let span = self.batch.as_ref()?.spans.get(i)?.clone();
        self.text.as_str().get(span)
    }
}
/// Serializes a message; our types always serialize.
pub fn to_text(msg: &ServerMsg) -> Utf8Bytes {
    serde_json::to_string(msg)
        .expect("server messages serialize")
        .into()
}

/// `{"type":"events","events":[...]}` written straight from borrowed events, so the hub
/// never clones an event to serialize it.
pub fn events_text<'a>(events: impl Iterator<Item = &'a Event>) -> Utf8Bytes {
    events_text_spans(events).0
}

/// [`events_text`], and where each event's JSON sits in it.
pub fn events_text_spans<'a>(
    events: impl Iterator<Item = &'a Event>,
) -> (Utf8Bytes, Vec<Range<usize>>) {
    const HEAD: &[u8] = br#"{"type":"events","events":["#;
    let (hint, _) = events.size_hint();
    let mut out = Vec::with_capacity(HEAD.len() + 2 + hint * 512);
    let mut spans = Vec::with_capacity(hint);
    out.extend_from_slice(HEAD);
    for (i, ev) in events.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let start = out.len();
        wirelab_shared::encode::write_event(&mut out, ev);
        spans.push(start..out.len());
    }
    out.extend_from_slice(b"]}");
    let text = String::from_utf8(out).expect("JSON is UTF-8");
    (text.into(), spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelab_shared::{EventKind, Protocol};

    fn chat(seq: u64) -> Arc<Event> {
        Arc::new(Event {
            seq,
            ts_us: 1,
            kind: EventKind::Chat {
                from: "a".into(),
                text: "<b>".into(),
            },
        })
    }

    #[test]
    fn an_events_frame_parses_as_the_shared_type() {
        let frame = Frame::events(vec![chat(3), chat(4)]);
        let msg: ServerMsg = serde_json::from_str(frame.text.as_str()).unwrap();
        let ServerMsg::Events { events } = msg else {
            panic!("not events")
        };
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4]);
        let batch = frame.batch.unwrap();
        assert_eq!((batch.first_seq, batch.last_seq), (3, 4));
        assert_eq!(batch.mask, Protocol::Ws.bit());
    }

    #[test]
    fn each_events_json_is_found_in_the_frame() {
        let events = vec![chat(3), chat(4), chat(5)];
        let frame = Frame::events(events.clone());
        for (i, ev) in events.iter().enumerate() {
            let json = frame.event_json(i).unwrap();
            assert_eq!(json, serde_json::to_string(&**ev).unwrap());
        }
        assert_eq!(frame.event_json(3), None);
        assert_eq!(
            Frame::message(&ServerMsg::Pong { id: 1, ts_us: 2 }).event_json(0),
            None
        );
    }
}
