//! The upstream's direction read as HTTP/1.1 responses, each matched to the oldest
//! request still waiting (pipelining); interim responses (`100`, `103`) noted on it, a
//! `101` or a `CONNECT`'s `2xx` switching both directions to frames or a tunnel.

use bytes::Buf;
use tokio::time::Instant;
use wirelab_shared::{EventKind, HttpExchange};

use super::message::{Body, parse_response};
use super::{HttpView, InFlight, MAX_INTERIM, Read, micros};
use crate::pipeline::Flow;

impl HttpView {
    /// Responses in `down.buf`, as far as they go.
    pub(super) fn responses(&mut self, now: Instant, out: &mut Vec<EventKind>) {
        loop {
            match &mut self.down.read {
                Read::Head => {
                    if self.down.buf.is_empty() {
                        return;
                    }
                    let (head, len) = match parse_response(&self.down.buf) {
                        Ok(None) => return,
                        Ok(Some(parsed)) => parsed,
                        Err(why) => {
                            return self.lose(Flow::Down, format!("the upstream sent {why}"), out);
                        }
                    };
                    self.down.buf.advance(len);
                    let head_at = self.down.head_at.take().unwrap_or(now);
                    if self.answering >= self.flight.len() {
                        // Nothing asked for it (a server's own `408` before it closes).
                        self.requests += 1;
                        let x = HttpExchange {
                            conn: self.conn,
                            seq_on_conn: self.requests,
                            peer: self.peer.clone(),
                            ..HttpExchange::default()
                        };
                        let mut unasked = InFlight::new(x, head_at, 0, false);
                        unasked.request_done = true;
                        unasked.say("the upstream sent this response with no request".into());
                        self.flight.push_back(unasked);
                    }
                    let x = &mut self.flight[self.answering];
                    if (100..200).contains(&head.status) && head.status != 101 {
                        x.interim_count += 1;
                        if x.interim.len() < MAX_INTERIM {
                            x.interim.push(head.status);
                        }
                        continue;
                    }
                    x.x.status = head.status;
                    x.x.resp_version = head.version.to_owned();
                    x.x.resp_reason = head.reason.clone();
                    x.x.ttfb_us = micros(head_at, x.sent);
                    let switch = match (head.status, x.x.method.as_str()) {
                        (101, _) if x.websocket => Some(true),
                        (101, _) => Some(false),
                        (200..=299, m) if m.eq_ignore_ascii_case("CONNECT") => Some(false),
                        _ => None,
                    };
                    let framing = head.framing(&x.x.method);
                    x.x.resp_headers = head.headers;
                    if let Some(websocket) = switch {
                        x.response_done = true;
                        x.request_done = true;
                        x.x.total_us = x.x.ttfb_us;
                        self.reading = None;
                        self.answering += 1;
                        self.emit_done(out);
                        return self.switch(websocket, now, out);
                    }
                    match framing {
                        Ok(framing) => {
                            self.down.read = Read::Body(Body::new(framing, self.snaplen));
                        }
                        Err(why) => {
                            return self.lose(Flow::Down, format!("the upstream sent {why}"), out);
                        }
                    }
                }
                Read::Body(body) => match body.feed(&mut self.down.buf) {
                    Ok(false) => return,
                    Ok(true) => self.response_ended(now, out),
                    Err(why) => {
                        return self.lose(Flow::Down, format!("the upstream sent {why}"), out);
                    }
                },
                Read::Frames(_) | Read::Opaque => return,
            }
        }
    }

    /// The response being read has ended (its body, or the upstream's FIN for one read
    /// until the close): its exchange is done, and the client's bytes held back behind
    /// it (after a refused upgrade) are read on.
    pub(super) fn response_ended(&mut self, now: Instant, out: &mut Vec<EventKind>) {
        let Read::Body(body) = &self.down.read else {
            return;
        };
        let (size, payload) = (body.size, body.payload());
        if let Some(x) = self.flight.get_mut(self.answering) {
            x.x.resp_size = size;
            x.x.resp_body = payload;
            x.x.total_us = micros(now, x.sent);
            x.response_done = true;
        }
        self.down.read = Read::Head;
        self.answering += 1;
        self.emit_done(out);
        if matches!(self.up.read, Read::Head) && !self.up.buf.is_empty() {
            self.requests(now, out);
        }
    }
}
