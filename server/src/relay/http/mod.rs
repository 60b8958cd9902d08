//! An `http` proxy: relayed as a `tcp` proxy is (the same pumps, every byte passed on as
//! it came, nothing rewritten, so keep-alive, pipelining, chunked bodies, `100-continue`
//! and upgrades pass through as the two ends speak them), and read on the side as
//! HTTP/1.1: each exchange becomes one event with both heads exactly as sent, both bodies'
//! first bytes and the upstream's timing; after a `101 Switching Protocols` to WebSocket,
//! each frame either way is an event.
//!
//! What cannot be followed as HTTP (garbage, a head over 64 KiB, a chunked body the lab
//! cannot read, a request shaped for smuggling) is still relayed byte for byte: a
//! [`EventKind::RelayNotice`] says so and why, and the connection's later exchanges are not
//! shown. An upstream that cannot be reached gets the client a `502 Bad Gateway`
//! ([`bad_gateway`]).
//!
//! ## Layout
//! - this file: [`HttpView`], one connection's reading of both directions: the exchanges
//!   in flight (requests matched to responses in order), the switch to frames.
//! - [`message`]: the request and response heads, and a body read as it passes.
//! - [`frames`]: WebSocket frames, one direction's.
//! - [`bad_gateway`]: the answer to a client whose upstream cannot be reached.
//! - [`inject`]: a WebSocket message from the page, as the frame one leg expects.
//!
//! Bounded: a head is read up to 64 KiB, a body keeps its first `--snaplen` bytes, at most
//! [`MAX_IN_FLIGHT`] requests wait for their responses, frames hold only their header.

pub mod bad_gateway;
pub mod frames;
pub mod inject;
pub mod message;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::{Buf, BytesMut};
use tokio::time::Instant;
use wirelab_shared::{EventKind, HttpExchange, Leg};

use crate::http::head;
use crate::pipeline::Flow;
use frames::Frames;
use message::{Body, parse_response};

/// Requests read whose responses have not ended, at most (pipelined); past it the
/// connection's exchanges are no longer shown.
pub const MAX_IN_FLIGHT: usize = 64;

/// A direction's emptied buffer is kept while it is this small, else dropped.
const KEEP_BUFFER: usize = 4096;

/// What one direction is reading.
#[derive(Debug)]
enum Read {
    /// A head (request or response).
    Head,
    /// The body after one.
    Body(Body),
    /// WebSocket frames, after a `101`.
    Frames(Frames),
    /// Bytes no longer read as anything: a tunnel (`CONNECT`, an upgrade to another
    /// protocol), or what could not be followed.
    Opaque,
}

/// One direction: what it reads and the bytes not yet read.
#[derive(Debug)]
struct Side {
    read: Read,
    buf: BytesMut,
    /// When the head being read began to arrive.
    head_at: Option<Instant>,
}

impl Side {
    fn new() -> Side {
        Side {
            read: Read::Head,
            buf: BytesMut::new(),
            head_at: None,
        }
    }
}

/// An exchange whose request has begun.
#[derive(Debug)]
struct InFlight {
    x: HttpExchange,
    /// When its request head had arrived (and been passed on).
    sent: Instant,
    request_done: bool,
    response_done: bool,
    /// The request asked to switch to WebSocket.
    websocket: bool,
    /// Interim responses seen before the final one (`100 Continue`).
    interim: Vec<u16>,
    /// What else to say.
    note: Option<String>,
}

impl InFlight {
    /// Whether the request asks to leave HTTP (an upgrade, `CONNECT`) and its answer has
    /// not come: the bytes after it may not be HTTP.
    fn holds(&self) -> bool {
        !self.response_done
            && (self.websocket
                || self
                    .x
                    .headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("upgrade"))
                || self.x.method.eq_ignore_ascii_case("CONNECT"))
    }
}

/// One `http` connection's reading. See the module docs.
#[derive(Debug)]
pub struct HttpView {
    proxy: String,
    conn: u64,
    peer: String,
    snaplen: usize,
    /// The lab's exchange ids.
    ids: Arc<AtomicU64>,
    /// The upstream's connect time, told with the connection's first exchange.
    connect_us: Option<u64>,
    up: Side,
    down: Side,
    flight: VecDeque<InFlight>,
    /// Requests begun on this connection.
    requests: u64,
    /// The response body being read belongs to `flight[answering]`.
    answering: usize,
}

impl HttpView {
    /// The reading of connection `conn` of proxy `proxy`, from client `peer`.
    pub fn new(
        proxy: &str,
        conn: u64,
        peer: &str,
        snaplen: usize,
        ids: Arc<AtomicU64>,
        connect_us: u64,
    ) -> HttpView {
        HttpView {
            proxy: proxy.to_owned(),
            conn,
            peer: peer.to_owned(),
            snaplen,
            ids,
            connect_us: Some(connect_us),
            up: Side::new(),
            down: Side::new(),
            flight: VecDeque::new(),
            requests: 0,
            answering: 0,
        }
    }

    /// Whether the page may put a chunk of its own travelling `flow` now without cutting
    /// a message or frame of the stream in two.
    pub fn at_boundary(&self, flow: Flow) -> bool {
        let side = self.side(flow);
        match &side.read {
            Read::Head => side.buf.is_empty(),
            Read::Body(_) => false,
            Read::Frames(f) => f.at_boundary(),
            Read::Opaque => true,
        }
    }

    /// Whether `flow` carries WebSocket frames now.
    pub fn framed(&self, flow: Flow) -> bool {
        matches!(self.side(flow).read, Read::Frames(_))
    }

    /// Reads `bytes`, read travelling `flow` at `now`; what they complete goes to `out`.
    pub fn feed(&mut self, flow: Flow, bytes: &[u8], now: Instant, out: &mut Vec<EventKind>) {
        self.feed_from(flow, bytes, now, false, out);
    }

    /// Reads `bytes` the page sent travelling `flow` (its `relay_send` told them): they
    /// move the reading on, and what they complete goes to `out`, but for frames, which
    /// are not told again.
    pub fn feed_page(&mut self, flow: Flow, bytes: &[u8], now: Instant, out: &mut Vec<EventKind>) {
        self.feed_from(flow, bytes, now, true, out);
    }

    fn feed_from(
        &mut self,
        flow: Flow,
        bytes: &[u8],
        now: Instant,
        from_page: bool,
        out: &mut Vec<EventKind>,
    ) {
        let side = self.side_mut(flow);
        match &mut side.read {
            Read::Opaque => {}
            Read::Frames(frames) => {
                let mut shown = Vec::new();
                frames.feed(bytes, now, &mut shown);
                if from_page {
                    return;
                }
                for f in shown {
                    let event = self.frame_event(leg(flow), f);
                    out.push(event);
                }
            }
            read => {
                if matches!(read, Read::Head) && side.buf.is_empty() && !bytes.is_empty() {
                    side.head_at = Some(now);
                }
                side.buf.extend_from_slice(bytes);
                match flow {
                    Flow::Up => self.requests(now, out),
                    Flow::Down => self.responses(now, out),
                }
                // An idle kept-alive connection holds no buffer of its own.
                let side = self.side_mut(flow);
                if side.buf.is_empty() && side.buf.capacity() > KEEP_BUFFER {
                    side.buf = BytesMut::new();
                }
            }
        }
    }

    /// The connection ended: what was in flight is told as far as it got.
    pub fn finish(&mut self, now: Instant, out: &mut Vec<EventKind>) {
        if let Read::Body(body) = &mut self.down.read
            && let Some(x) = self.flight.get_mut(self.answering)
        {
            x.response_done = body.closed();
            x.x.resp_size = body.size;
            x.x.resp_body = body.payload();
            x.x.total_us = micros(now, x.sent);
        }
        for mut x in std::mem::take(&mut self.flight) {
            if !x.response_done && x.note.is_none() {
                x.note = Some(match x.x.status {
                    0 => "the connection ended before a response came".into(),
                    _ => "the connection ended before the response's body did".into(),
                });
            }
            x.request_done = true;
            x.response_done = true;
            out.push(self.exchange_event(x));
        }
        for (flow, who) in [(Flow::Up, "client"), (Flow::Down, "upstream")] {
            if let Read::Frames(f) = &self.side(flow).read
                && f.skipped() > 0
            {
                let detail = format!(
                    "{} WebSocket frames from the {who} at the end were relayed but not shown \
                     (over {} a second)",
                    f.skipped(),
                    frames::EVENTS_PER_SEC
                );
                out.push(self.notice(flow, detail));
            }
        }
    }

    /// Requests in `up.buf`, as far as they go.
    fn requests(&mut self, now: Instant, out: &mut Vec<EventKind>) {
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
                            let detail = format!(
                                "the client sent {} (the lab's own HTTP service would answer {})",
                                bad.detail,
                                if bad.status == 0 {
                                    "by closing".to_owned()
                                } else {
                                    bad.status.to_string()
                                }
                            );
                            return self.lose(Flow::Up, detail, out);
                        }
                    };
                    if self.flight.len() >= MAX_IN_FLIGHT {
                        let detail = format!(
                            "the client pipelined more than {MAX_IN_FLIGHT} requests without \
                             waiting for responses"
                        );
                        return self.lose(Flow::Up, detail, out);
                    }
                    self.up.buf.advance(len);
                    self.requests += 1;
                    let websocket = head
                        .header("upgrade")
                        .is_some_and(|u| u.to_ascii_lowercase().contains("websocket"));
                    self.flight.push_back(InFlight {
                        x: HttpExchange {
                            conn: self.conn,
                            seq_on_conn: self.requests,
                            peer: self.peer.clone(),
                            version: head.version().to_owned(),
                            method: head.method,
                            target: head.target,
                            headers: head.headers,
                            ..HttpExchange::default()
                        },
                        sent: now,
                        request_done: false,
                        response_done: false,
                        websocket,
                        interim: Vec::new(),
                        note: None,
                    });
                    self.up.read = Read::Body(Body::new(Some(head.framing), self.snaplen));
                }
                Read::Body(body) => match body.feed(&mut self.up.buf) {
                    Ok(false) => return,
                    Ok(true) => {
                        let (size, payload) = (body.size, body.payload());
                        self.up.read = Read::Head;
                        if let Some(x) = self.flight.back_mut() {
                            x.x.body_size = size;
                            x.x.body = payload;
                            x.request_done = true;
                        }
                        self.emit_done(out);
                    }
                    Err(why) => return self.lose(Flow::Up, format!("the client sent {why}"), out),
                },
                Read::Frames(_) | Read::Opaque => {
                    // Bytes after an upgrade request, before its `101`: read as frames
                    // once it comes.
                    return;
                }
            }
        }
    }

    /// Responses in `down.buf`, as far as they go.
    fn responses(&mut self, now: Instant, out: &mut Vec<EventKind>) {
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
                        self.flight.push_back(InFlight {
                            x: HttpExchange {
                                conn: self.conn,
                                seq_on_conn: self.requests,
                                peer: self.peer.clone(),
                                ..HttpExchange::default()
                            },
                            sent: head_at,
                            request_done: true,
                            response_done: false,
                            websocket: false,
                            interim: Vec::new(),
                            note: Some("the upstream sent this response with no request".into()),
                        });
                    }
                    let x = &mut self.flight[self.answering];
                    if (100..200).contains(&head.status) && head.status != 101 {
                        x.interim.push(head.status);
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
                        self.answering += 1;
                        self.emit_done(out);
                        return self.switch(websocket, now, out);
                    }
                    self.down.read = Read::Body(Body::new(framing, self.snaplen));
                }
                Read::Body(body) => match body.feed(&mut self.down.buf) {
                    Ok(false) => return,
                    Ok(true) => {
                        let x = &mut self.flight[self.answering];
                        x.x.resp_size = body.size;
                        x.x.resp_body = body.payload();
                        x.x.total_us = micros(now, x.sent);
                        x.response_done = true;
                        self.down.read = Read::Head;
                        self.answering += 1;
                        self.emit_done(out);
                    }
                    Err(why) => {
                        return self.lose(Flow::Down, format!("the upstream sent {why}"), out);
                    }
                },
                Read::Frames(_) | Read::Opaque => return,
            }
        }
    }

    /// The upstream agreed to switch protocols: from here on both directions are
    /// WebSocket frames, or a tunnel read as nothing.
    fn switch(&mut self, websocket: bool, now: Instant, out: &mut Vec<EventKind>) {
        let snaplen = self.snaplen;
        for flow in [Flow::Up, Flow::Down] {
            let side = self.side_mut(flow);
            let pending = std::mem::take(&mut side.buf);
            side.read = match websocket {
                true => Read::Frames(Frames::new(snaplen)),
                false => Read::Opaque,
            };
            if websocket && !pending.is_empty() {
                self.feed(flow, &pending, now, out);
            }
        }
    }

    /// Exchanges at the front that have ended both ways become events, in order.
    fn emit_done(&mut self, out: &mut Vec<EventKind>) {
        while self
            .flight
            .front()
            .is_some_and(|x| x.request_done && x.response_done)
        {
            if let Some(x) = self.flight.pop_front() {
                self.answering = self.answering.saturating_sub(1);
                out.push(self.exchange_event(x));
            }
        }
    }

    /// `flow` cannot be followed any more: said once, and neither direction is read any
    /// more.
    fn lose(&mut self, flow: Flow, why: String, out: &mut Vec<EventKind>) {
        // Both ways: with one side lost, the other's messages cannot be matched to it.
        for side in [&mut self.up, &mut self.down] {
            side.read = Read::Opaque;
            side.buf = BytesMut::new();
        }
        let detail = format!(
            "{why}; the bytes are relayed as they are, and the exchanges of this connection \
             from here on are not shown"
        );
        out.push(self.notice(flow, detail));
    }

    fn exchange_event(&mut self, f: InFlight) -> EventKind {
        let mut x = f.x;
        x.id = self.ids.fetch_add(1, Relaxed) + 1;
        let mut note = f.note;
        if !f.interim.is_empty() {
            let codes: Vec<String> = f.interim.iter().map(u16::to_string).collect();
            let first = format!("interim responses first: {}", codes.join(", "));
            note = Some(match note {
                Some(n) => format!("{first}; {n}"),
                None => first,
            });
        }
        EventKind::RelayHttp {
            proxy: self.proxy.clone(),
            exchange: Box::new(x),
            connect_us: self.connect_us.take(),
            note,
        }
    }

    fn frame_event(&self, from: Leg, f: frames::Frame) -> EventKind {
        EventKind::RelayWsFrame {
            proxy: self.proxy.clone(),
            conn: self.conn,
            peer: self.peer.clone(),
            from,
            opcode: f.opcode,
            fin: f.fin,
            rsv1: f.rsv1,
            size: f.size,
            payload: f.payload,
            close_code: f.close_code,
            close_reason: f.close_reason,
            skipped: f.skipped,
        }
    }

    fn notice(&self, flow: Flow, detail: String) -> EventKind {
        EventKind::RelayNotice {
            proxy: self.proxy.clone(),
            conn: self.conn,
            peer: self.peer.clone(),
            from: leg(flow),
            detail,
        }
    }

    fn side(&self, flow: Flow) -> &Side {
        match flow {
            Flow::Up => &self.up,
            Flow::Down => &self.down,
        }
    }

    fn side_mut(&mut self, flow: Flow) -> &mut Side {
        match flow {
            Flow::Up => &mut self.up,
            Flow::Down => &mut self.down,
        }
    }
}

/// The leg bytes travelling `flow` come from.
fn leg(flow: Flow) -> Leg {
    match flow {
        Flow::Up => Leg::Client,
        Flow::Down => Leg::Upstream,
    }
}

/// Microseconds from `since` to `at` (0 if `at` came first).
fn micros(at: Instant, since: Instant) -> u64 {
    at.saturating_duration_since(since).as_micros() as u64
}

#[cfg(test)]
mod tests;
