//! The client's direction read as HTTP/1.1 requests, with the HTTP service's own parser
//! ([`crate::http::head`]): each head starts an exchange in flight, its body is read as
//! it passes.

use bytes::Buf;
use tokio::time::Instant;
use wirelab_shared::{EventKind, HttpExchange};

use super::message::Body;
use super::{HttpView, InFlight, MAX_HEADS_IN_FLIGHT, MAX_IN_FLIGHT, Read};
use crate::http::head;
use crate::pipeline::Flow;

impl HttpView {
    /// Requests in `up.buf`, as far as they go.
    pub(super) fn requests(&mut self, now: Instant, out: &mut Vec<EventKind>) {
        loop {
            match &mut self.up.read {
                Read::Head => {
                    // After an upgrade or CONNECT, what the client sends is read once the
                    // answer says what it is.
                    if self.up.buf.is_empty() || self.flight.back().is_some_and(InFlight::holds) {
                        return;
                    }
                    let (head, len) = match head::parse(&self.up.buf) {
                        Ok(None) => return,
                        Ok(Some(parsed)) => parsed,
                        Err(bad) => {
                            let answer = match bad.status {
                                0 => "by closing".to_owned(),
                                status => status.to_string(),
                            };
                            let why = format!(
                                "the client sent {} (the lab's own HTTP service would answer \
                                 {answer})",
                                bad.detail
                            );
                            return self.lose(Flow::Up, why, out);
                        }
                    };
                    let heads: usize = self.flight.iter().map(|x| x.head_len).sum();
                    if self.flight.len() >= MAX_IN_FLIGHT || heads + len > MAX_HEADS_IN_FLIGHT {
                        let why = format!(
                            "the client pipelined more than {MAX_IN_FLIGHT} requests (or \
                             {MAX_HEADS_IN_FLIGHT} bytes of heads) without waiting for \
                             responses"
                        );
                        return self.lose(Flow::Up, why, out);
                    }
                    self.up.buf.advance(len);
                    self.requests += 1;
                    let websocket = head
                        .header("upgrade")
                        .is_some_and(|u| u.to_ascii_lowercase().contains("websocket"));
                    let x = HttpExchange {
                        conn: self.conn,
                        seq_on_conn: self.requests,
                        peer: self.peer.clone(),
                        version: head.version().to_owned(),
                        method: head.method,
                        target: head.target,
                        headers: head.headers,
                        ..HttpExchange::default()
                    };
                    self.flight.push_back(InFlight::new(x, now, len, websocket));
                    self.reading = Some(self.requests);
                    self.up.read = Read::Body(Body::new(Some(head.framing), self.snaplen));
                }
                Read::Body(body) => match body.feed(&mut self.up.buf) {
                    Ok(false) => return,
                    Ok(true) => {
                        let (size, payload) = (body.size, body.payload());
                        self.up.read = Read::Head;
                        if let Some(x) = self.reading_mut() {
                            x.x.body_size = size;
                            x.x.body = payload;
                            x.request_done = true;
                        }
                        self.reading = None;
                        self.emit_done(out);
                    }
                    Err(why) => return self.lose(Flow::Up, format!("the client sent {why}"), out),
                },
                // Frames are read by the view itself; nothing else is read.
                Read::Frames(_) | Read::Opaque => return,
            }
        }
    }
}
