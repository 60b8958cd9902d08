//! An `http` proxy: relayed as a `tcp` proxy is (the same pumps, every byte passed on as
//! it came, nothing rewritten, so keep-alive, pipelining, chunked bodies, `100-continue`
//! and upgrades pass through as the two ends speak them), and read on the side as
//! HTTP/1.1: each exchange becomes one event with both heads exactly as sent, both bodies'
//! first bytes and the upstream's timing; after a `101 Switching Protocols` to WebSocket,
//! each frame either way is an event.
//!
//! What cannot be followed as HTTP (garbage, a head over 64 KiB, a chunked body the lab
//! cannot read, a request or response framed so that two readers could disagree) is still
//! relayed byte for byte: a [`EventKind::RelayNotice`] says so and why, the exchanges in
//! flight are told as far as they got, and the connection's later exchanges are not shown.
//! An upstream that cannot be reached gets the client a `502 Bad Gateway`
//! ([`bad_gateway`]).
//!
//! ## Layout
//! - this file: [`HttpView`], one connection's reading of both directions: the exchanges
//!   in flight, the switch to frames, the end.
//! - [`requests`](mod@requests) and [`responses`](mod@responses): each direction's reading
//!   as HTTP, responses matched to requests in order.
//! - [`message`]: the response head, and a body read as it passes.
//! - [`frames`]: WebSocket frames, one direction's.
//! - [`bad_gateway`]: the answer to a client whose upstream cannot be reached.
//! - [`inject`]: a WebSocket message from the page, as the frame one leg expects.
//!
//! Bounded: a head is read up to 64 KiB, a body keeps its first `--snaplen` bytes, at most
//! [`MAX_IN_FLIGHT`] requests with [`MAX_HEADS_IN_FLIGHT`] bytes of heads wait for their
//! responses, bytes after an upgrade request wait for its answer up to 64 KiB, at most
//! [`MAX_INTERIM`] interim responses are kept per exchange, frames hold only their header.

pub mod bad_gateway;
pub mod frames;
pub mod inject;
pub mod message;
mod requests;
mod responses;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::BytesMut;
use tokio::time::Instant;
use wirelab_shared::{EventKind, HttpExchange, Leg};

use crate::http::head::HEAD_LIMIT;
use crate::pipeline::Flow;
use frames::Frames;
use message::Body;

/// Requests read whose responses have not ended, at most (pipelined); past it the
/// connection's exchanges are no longer shown.
pub const MAX_IN_FLIGHT: usize = 64;
/// Bytes of request heads in flight, at most.
pub const MAX_HEADS_IN_FLIGHT: usize = 256 * 1024;
/// Interim responses (`100`, `103`) kept per exchange; more are counted.
pub const MAX_INTERIM: usize = 16;

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
    /// The sender has sent FIN.
    fin: bool,
}

impl Side {
    fn new() -> Side {
        Side {
            read: Read::Head,
            buf: BytesMut::new(),
            head_at: None,
            fin: false,
        }
    }
}

/// An exchange whose request has begun.
#[derive(Debug)]
struct InFlight {
    x: HttpExchange,
    /// When its request head had arrived (and been passed on).
    sent: Instant,
    /// Its request head's size, for [`MAX_HEADS_IN_FLIGHT`].
    head_len: usize,
    request_done: bool,
    response_done: bool,
    /// The request asked to switch to WebSocket.
    websocket: bool,
    /// Interim responses seen before the final one (`100 Continue`), the first
    /// [`MAX_INTERIM`] of them, and how many there were.
    interim: Vec<u16>,
    interim_count: u64,
    /// What else to say.
    note: Option<String>,
}

impl InFlight {
    /// A request begun at `sent`, as `x` tells it.
    fn new(x: HttpExchange, sent: Instant, head_len: usize, websocket: bool) -> InFlight {
        InFlight {
            x,
            sent,
            head_len,
            request_done: false,
            response_done: false,
            websocket,
            interim: Vec::new(),
            interim_count: 0,
            note: None,
        }
    }

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

    /// Adds `more` to the note.
    fn say(&mut self, more: String) {
        self.note = Some(match self.note.take() {
            Some(n) => format!("{n}; {more}"),
            None => more,
        });
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
    /// The request whose body is being read (its `seq_on_conn`).
    reading: Option<u64>,
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
            reading: None,
            answering: 0,
        }
    }

    /// Whether the page may put a chunk of its own travelling `flow` now without cutting
    /// a message of the stream in two (a request, a response, a WebSocket message).
    pub fn at_boundary(&self, flow: Flow) -> bool {
        let side = self.side(flow);
        match &side.read {
            Read::Head => side.buf.is_empty(),
            Read::Body(_) => false,
            Read::Frames(f) => f.at_boundary(),
            Read::Opaque => true,
        }
    }

    /// Whether the page may send WebSocket messages: both directions carry frames, and
    /// no close frame has passed either way.
    pub fn takes_messages(&self) -> bool {
        [&self.up, &self.down]
            .iter()
            .all(|s| matches!(&s.read, Read::Frames(f) if !f.closed()))
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
            Read::Frames(frames) if from_page => frames.pass(bytes),
            Read::Frames(frames) => {
                let mut shown = Vec::new();
                frames.feed(bytes, now, &mut shown);
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
                self.read_on(flow, now, out);
                let side = self.side_mut(flow);
                if side.buf.len() > HEAD_LIMIT {
                    // Only bytes held back for an upgrade's answer stay unread.
                    let why = format!(
                        "the client sent more than {HEAD_LIMIT} bytes after a request to \
                         switch protocols, before the upstream answered it"
                    );
                    return self.lose(flow, why, out);
                }
                // An idle kept-alive connection holds no buffer of its own.
                if side.buf.is_empty() && side.buf.capacity() > KEEP_BUFFER {
                    side.buf = BytesMut::new();
                }
            }
        }
    }

    /// Reads on what `flow`'s buffer holds.
    fn read_on(&mut self, flow: Flow, now: Instant, out: &mut Vec<EventKind>) {
        match flow {
            Flow::Up => self.requests(now, out),
            Flow::Down => self.responses(now, out),
        }
    }

    /// The side sending `flow` sent FIN: a response read until the close has ended.
    pub fn fin(&mut self, flow: Flow, now: Instant, out: &mut Vec<EventKind>) {
        self.side_mut(flow).fin = true;
        if flow == Flow::Down
            && let Read::Body(body) = &mut self.down.read
            && body.closed()
        {
            self.response_ended(now, out);
        }
    }

    /// The connection ended: what was in flight is told as far as it got.
    pub fn finish(&mut self, now: Instant, out: &mut Vec<EventKind>) {
        if let Read::Body(body) = &self.up.read {
            let (size, payload) = (body.size, body.payload());
            if let Some(x) = self.reading_mut() {
                x.x.body_size = size;
                x.x.body = payload;
                x.say(format!(
                    "the connection ended {size} bytes into the request's body"
                ));
            }
        }
        if let Read::Body(body) = &mut self.down.read
            && let Some(x) = self.flight.get_mut(self.answering)
        {
            // A body read until the close is whole only if the upstream closed with FIN.
            x.response_done = self.down.fin && body.closed();
            x.x.resp_size = body.size;
            x.x.resp_body = body.payload();
            x.x.total_us = micros(now, x.sent);
        }
        self.tell_all(None, out);
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

    /// Tells every exchange in flight as far as it got (`why`: what stopped the reading;
    /// none: the connection ended).
    fn tell_all(&mut self, why: Option<&str>, out: &mut Vec<EventKind>) {
        for mut x in std::mem::take(&mut self.flight) {
            if !x.response_done {
                x.say(match (why, x.x.status) {
                    (Some(why), _) => format!("not followed past here: {why}"),
                    (None, 0) => "the connection ended before a response came".into(),
                    (None, _) => "the connection ended before the response's body did".into(),
                });
            }
            out.push(self.exchange_event(x));
        }
        self.answering = 0;
        self.reading = None;
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

    /// `flow` cannot be followed any more: said once; the exchanges in flight are told
    /// as far as they got, and neither direction is read any more.
    fn lose(&mut self, flow: Flow, why: String, out: &mut Vec<EventKind>) {
        // Both ways: with one side lost, the other's messages cannot be matched to it.
        for side in [&mut self.up, &mut self.down] {
            side.read = Read::Opaque;
            side.buf = BytesMut::new();
        }
        self.tell_all(Some(&why), out);
        let detail = format!(
            "{why}; the bytes are relayed as they are, and the exchanges of this connection \
             from here on are not shown"
        );
        out.push(self.notice(flow, detail));
    }

    /// The exchange whose request body is being read.
    fn reading_mut(&mut self) -> Option<&mut InFlight> {
        let seq = self.reading?;
        self.flight.iter_mut().find(|x| x.x.seq_on_conn == seq)
    }

    fn exchange_event(&mut self, f: InFlight) -> EventKind {
        let mut x = f.x;
        x.id = self.ids.fetch_add(1, Relaxed) + 1;
        let mut note = f.note;
        if !f.interim.is_empty() {
            let codes: Vec<String> = f.interim.iter().map(u16::to_string).collect();
            let mut first = format!("interim responses first: {}", codes.join(", "));
            if f.interim_count > f.interim.len() as u64 {
                first.push_str(&format!(" ({} in all)", f.interim_count));
            }
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
