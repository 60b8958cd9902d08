//! One connection's exchanges, in order: read a head ([`head`]), read its body (by
//! `Content-Length` or [`chunked`]), answer ([`helpers`]), and describe both in the one
//! [`HttpExchange`] event each exchange makes.
//!
//! The read buffer is the connection's own, and requests already in it (pipelined) are
//! answered before the socket is read again. Answers wait in one output buffer and go out
//! in one write when the buffer holds no further complete request (or when the next
//! answer would wait), so a pipelined batch costs one write; their events are published
//! after that write, so `total_us` covers it. Per request, the only allocations are the
//! event's own strings and vectors; there is no lock but the hub's intake, and no timer.
//!
//! Every read and every write goes through the service's toxics (`@http` in the toxics
//! API), a fault line per direction as on a proxy's connections ([`Faults`]): with none,
//! that is one check per read and per write.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hyper::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wirelab_shared::{EventKind, HttpExchange, Payload};

use super::chunked::Chunked;
use super::head::{self, Framing, Head};
use super::helpers;
use super::response::{self, CHUNK, Content};
use super::serve::{ConnCtx, malformed};
use crate::faults::{Due, Line};
use crate::hub::counters::add;
use crate::pipeline::Flow;
use crate::relay::HTTP_SERVICE;
use crate::relay::faults::reporter;
use crate::tls::Wire;

/// The read buffer's size to start with, and the room made before each read.
const READ_ROOM: usize = 8 * 1024;
/// Answers waiting past this many bytes are written before the next request is served.
const OUT_LIMIT: usize = 64 * 1024;
/// After refusing a request, how long and how much of what the client still sends is
/// read and dropped before closing, so that the close does not reset the connection
/// (and destroy the answer in the client's buffers) while its data is unread.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1024 * 1024;

/// A request body as read.
pub struct ReadBody {
    /// The bytes read: all of them, or (when `over`) those before the limit.
    pub bytes: Bytes,
    /// The body's size: exact, except past the limit, where it is the declared
    /// `content-length` or, for a chunked body, the bytes received before reading stopped.
    pub size: u64,
    /// Past `--max-http-body`: the request gets 413 and its connection is closed.
    pub over: bool,
    /// Why the body could not be read, when it broke off, was badly chunked or came too
    /// slowly.
    pub error: Option<String>,
    /// It came too slowly (see [`BodyClock`]): the request gets 408 and its connection is
    /// closed.
    pub late: bool,
}

impl ReadBody {
    fn empty() -> ReadBody {
        ReadBody {
            bytes: Bytes::new(),
            size: 0,
            over: false,
            error: None,
            late: false,
        }
    }
}

/// When a body being read must have come by: `grace` (`--http-idle-secs`) after its head,
/// plus one second for every `rate` bytes received (`--http-body-min-rate`), as Apache's
/// mod_reqtimeout does with its `MinRate`; and never more than `grace` without a byte.
/// A slow but steady upload goes on; a body trickled a byte at a time, each byte keeping
/// the idle watchdog quiet, is cut off after about `grace`, and so is one that stops.
/// Either gets 408 (the watchdog would close without a word). A timer only while the
/// body is not in the buffer already.
struct BodyClock {
    start: tokio::time::Instant,
    /// When the last read that brought bytes ended.
    last: tokio::time::Instant,
    grace: Duration,
    /// Bytes a second; 0: no minimum.
    rate: u64,
    /// Bytes received since the head (those already buffered included).
    received: u64,
    /// The deadline passed.
    late: bool,
}

impl BodyClock {
    fn new(http: &super::Http, buffered: usize) -> BodyClock {
        let now = tokio::time::Instant::now();
        BodyClock {
            start: now,
            last: now,
            grace: http.idle,
            rate: http.body_min_rate,
            received: buffered as u64,
            late: false,
        }
    }

    fn deadline(&self) -> tokio::time::Instant {
        let stall = self.last + self.grace;
        if self.rate == 0 {
            return stall;
        }
        let earned = Duration::from_millis(self.received.saturating_mul(1000) / self.rate);
        stall.min(self.start + self.grace + earned)
    }

    /// What went wrong, once late.
    fn why(&self) -> String {
        if self.last.elapsed() >= self.grace {
            return format!(
                "no byte for {} s (--http-idle-secs) after {} bytes",
                self.grace.as_secs(),
                self.received
            );
        }
        format!(
            "{} bytes in {:.1} s, under {} bytes/s after a {} s grace \
             (--http-body-min-rate, --http-idle-secs)",
            self.received,
            self.start.elapsed().as_secs_f64(),
            self.rate,
            self.grace.as_secs()
        )
    }
}

/// One connection being served.
pub struct Conn<'a> {
    ctx: &'a ConnCtx,
    stream: Wire,
    /// Bytes read and not yet parsed.
    buf: BytesMut,
    /// Answers not yet written.
    out: Vec<u8>,
    /// The exchanges answered in `out`, published once it is written; with when each
    /// request arrived.
    answered: Vec<(Box<HttpExchange>, Instant)>,
    /// How much of `buf` is known to hold no complete head: a head arriving in pieces is
    /// parsed again once a blank line may have come, or once a line ended and the head
    /// doubled since it was last parsed (so a bad line is caught early, and a client
    /// dribbling a large head byte by byte costs linear work, not quadratic).
    scanned: usize,
    /// The length of `buf` when the head in it was last parsed.
    parsed_at: usize,
    /// The connection ends on a refusal, with the client maybe still sending.
    refused: bool,
    /// The service's toxics, both ways.
    faults: Faults,
}

/// A connection's fault lines: on what is read (before it is parsed) and on what is
/// written.
struct Faults {
    up: Line,
    down: Line,
}

impl<'a> Conn<'a> {
    pub fn new(ctx: &'a ConnCtx, stream: Wire, peer: SocketAddr) -> Conn<'a> {
        let seed = ctx.id ^ crate::hub::now_us().rotate_left(17);
        let line = |flow| {
            let report = reporter(&ctx.http.hub, HTTP_SERVICE, ctx.id, &ctx.peer, flow);
            let toxics = ctx.http.toxics.clone();
            let shown = ctx.faults[flow as usize].clone();
            Line::new(flow, toxics, seed, report, shown).of(ctx.id, peer)
        };
        Conn {
            faults: Faults {
                up: line(Flow::Up),
                down: line(Flow::Down),
            },
            ctx,
            stream,
            buf: BytesMut::with_capacity(READ_ROOM),
            out: Vec::new(),
            answered: Vec::new(),
            scanned: 0,
            parsed_at: 0,
            refused: false,
        }
    }

    /// Serves requests until the client leaves, one asks to close, a request cannot be
    /// served, or (between exchanges) the lab stops.
    pub async fn serve(mut self) -> io::Result<()> {
        let result = self.run().await;
        // Whatever ended the connection, the exchanges answered are published.
        let flushed = self.flush().await;
        if self.refused && flushed.is_ok() {
            self.linger().await;
        } else if result.is_ok() && flushed.is_ok() && self.stream.is_tls() {
            // `close_notify` before the FIN: the client can tell the end of a response
            // framed by the close from a cut (OpenSSL 3 says "unexpected eof" otherwise).
            let _ = tokio::time::timeout(LINGER, self.stream.shutdown()).await;
        }
        result.and(flushed)
    }

    /// Closes the sending side, then reads and drops what the client still sends (for a
    /// while), so that it reads the answer before the connection is gone.
    async fn linger(&mut self) {
        let _ = self.stream.shutdown().await;
        let mut drained = 0;
        let _ = tokio::time::timeout(LINGER, async {
            while drained < LINGER_BYTES {
                self.buf.clear();
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => drained += n,
                }
            }
        })
        .await;
        add(&self.ctx.http.hub.counters.http_bytes_in, drained as u64);
    }

    async fn run(&mut self) -> io::Result<()> {
        loop {
            let parsed = if self.may_hold_a_head() {
                self.parsed_at = self.buf.len();
                head::parse(&self.buf)
            } else {
                Ok(None)
            };
            let (head, len) = match parsed {
                Ok(Some(parsed)) => parsed,
                Ok(None) => {
                    self.scanned = self.buf.len();
                    self.flush().await?;
                    if self.buf.is_empty() && self.ctx.stopping.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    if self.read().await? == 0 {
                        return Ok(()); // the client left (maybe halfway through a head)
                    }
                    continue;
                }
                Err(m) => {
                    // Earlier answers first; if they cannot go, the refusal is still an event.
                    let _ = self.flush().await;
                    let answer = StatusCode::from_u16(m.status)
                        .ok() // 0: closed without a word
                        .map(|status| response::write_refusal(&mut self.out, status, &m.detail));
                    malformed(self.ctx, m, answer);
                    self.refused = true;
                    return Ok(());
                }
            };
            let _ = self.buf.split_to(len);
            self.scanned = 0;
            if !self.exchange(head).await? {
                return Ok(());
            }
            if self.out.len() >= OUT_LIMIT {
                self.flush().await?;
            }
        }
    }

    /// Whether `buf` is worth parsing again: it may hold a complete head (or one too
    /// large) that it did not when last parsed, or a line ended since and the head has
    /// doubled (see `scanned`).
    fn may_hold_a_head(&self) -> bool {
        if self.scanned == 0 || self.buf.len() > head::HEAD_LIMIT {
            return true;
        }
        let new = &self.buf[self.scanned.saturating_sub(2)..];
        new.windows(2).any(|w| w == b"\n\n")
            || new.windows(3).any(|w| w == b"\n\r\n")
            || (self.buf.len() >= 2 * self.parsed_at && new.contains(&b'\n'))
    }

    /// Serves one request whose head was read; whether the connection stays open.
    async fn exchange(&mut self, head: Head) -> io::Result<bool> {
        let start = Instant::now();
        let ctx = self.ctx;
        let http = &ctx.http;
        let seq_on_conn = ctx.requests.fetch_add(1, Ordering::Relaxed) + 1;
        add(&http.hub.counters.http_requests, 1);

        let body = self.read_body(&head, http.max_body).await;
        let answer = match (&body.error, body.over) {
            (_, true) => helpers::too_large(http.max_body),
            (Some(why), _) if body.late => helpers::too_slow(why),
            (Some(why), _) => helpers::unreadable(why),
            (None, false) => {
                if helpers::waits(head.path()) {
                    // Answers before this one go out now; a failed write shows on its own.
                    let _ = self.flush().await;
                }
                helpers::answer(&http.shutdown, &head, &body.bytes).await
            }
        };
        self.refused = body.over || body.error.is_some();
        let keep_alive = head.keep_alive && !self.refused && !ctx.stopping.load(Ordering::Relaxed);
        let sent = response::write_head(
            &mut self.out,
            answer.status,
            &answer.content_type,
            answer.content.len(),
            keep_alive,
        );
        let ttfb_us = start.elapsed().as_micros() as u64;
        // A HEAD response says how long the body would be, and sends none.
        let (resp_body, resp_size) = if head.method == "HEAD" {
            (Payload::default(), 0)
        } else {
            (answer.content.capture(http.snaplen), answer.content.len())
        };

        let mut req_body = Payload::capture(&body.bytes, http.snaplen);
        req_body.cut += body.size - body.bytes.len() as u64; // what was never read counts as cut
        let exchange = Box::new(HttpExchange {
            id: http.exchange_id(),
            conn: ctx.id,
            seq_on_conn,
            peer: ctx.peer.clone(),
            version: head.version().to_owned(),
            method: head.method,
            target: head.target,
            headers: head.headers,
            body: req_body,
            body_size: body.size,
            status: answer.status.as_u16(),
            resp_version: sent.version.to_owned(),
            resp_reason: sent.reason.to_owned(),
            resp_headers: sent.headers,
            resp_body,
            resp_size,
            ttfb_us,
            total_us: 0,
            replay_of: ctx.replay_of,
            tls: ctx.tls,
        });
        self.answered.push((exchange, start));
        if resp_size > 0 {
            match answer.content {
                Content::Full(bytes) => self.out.extend_from_slice(&bytes),
                Content::Pattern(n) => self.send_pattern(n).await?,
            }
        }
        if !keep_alive {
            self.flush().await?;
        }
        Ok(keep_alive)
    }

    /// Reads the body `head` announces, up to `max` bytes. A declared length past `max`
    /// is refused unread; a client that asked sees `100 Continue` before it is read.
    async fn read_body(&mut self, head: &Head, max: usize) -> ReadBody {
        let mut read = ReadBody::empty();
        let mut clock = BodyClock::new(&self.ctx.http, self.buf.len());
        match head.framing {
            Framing::None => {}
            Framing::Length(n) if n > max as u64 => {
                read.size = n;
                read.over = true;
            }
            Framing::Length(n) => {
                let n = n as usize;
                // Room for the body as it comes, not all at once for a length only declared.
                self.buf
                    .reserve(n.saturating_sub(self.buf.len()).min(64 * 1024));
                if self.buf.len() < n && head.expect_continue {
                    self.send_continue().await;
                }
                while self.buf.len() < n {
                    if let Err(e) = self.read_more(&mut clock).await {
                        read.size = self.buf.len() as u64;
                        read.bytes = self.buf.split().freeze();
                        read.error = Some(format!("{e}, {} bytes into a {n}-byte body", read.size));
                        read.late = clock.late;
                        return read;
                    }
                }
                read.bytes = self.buf.split_to(n).freeze();
                read.size = n as u64;
            }
            Framing::Chunked => {
                let mut decoder = Chunked::default();
                let mut body = BytesMut::new();
                let mut asked = !head.expect_continue;
                loop {
                    match decoder.decode(&mut self.buf, &mut body) {
                        Ok(true) => break,
                        Ok(false) if body.len() > max => {
                            read.over = true;
                            break;
                        }
                        Ok(false) => {}
                        Err(e) => {
                            read.error = Some(e);
                            break;
                        }
                    }
                    if !asked {
                        self.send_continue().await;
                        asked = true;
                    }
                    if let Err(e) = self.read_more(&mut clock).await {
                        read.error = Some(format!("{e}, inside the body"));
                        break;
                    }
                }
                read.size = body.len() as u64;
                read.over |= body.len() > max;
                body.truncate(max);
                read.bytes = body.freeze();
            }
        }
        read.late = clock.late;
        read
    }

    /// Sends `100 Continue` (after any answers waiting before it). A failure shows as
    /// the body's read failing next.
    async fn send_continue(&mut self) {
        self.out.extend_from_slice(response::CONTINUE);
        let _ = self.write_out().await;
    }

    /// Reads more of a body (after sending the answers waiting: the client may wait for
    /// them before it sends the rest): an error when the stream ended or failed, or when
    /// `clock`'s deadline passed (then `clock.late`).
    async fn read_more(&mut self, clock: &mut BodyClock) -> Result<(), String> {
        if !self.out.is_empty() {
            let _ = self.flush().await;
        }
        // The clock judges this read, not the watchdog (which would close without a word).
        self.ctx.body_timed.store(true, Ordering::Relaxed);
        let read = tokio::time::timeout_at(clock.deadline(), self.read()).await;
        self.ctx.body_timed.store(false, Ordering::Relaxed);
        let Ok(read) = read else {
            clock.late = true;
            return Err(clock.why());
        };
        match read {
            Ok(0) => Err("the client closed the connection".into()),
            Ok(n) => {
                clock.received += n as u64;
                clock.last = tokio::time::Instant::now();
                Ok(())
            }
            Err(e) => Err(format!("reading failed ({e})")),
        }
    }

    /// Sends `n` bytes of the pattern after the head waiting in `out`.
    async fn send_pattern(&mut self, n: u64) -> io::Result<()> {
        let pattern = response::pattern();
        let first = n.min(CHUNK as u64) as usize;
        self.out.extend_from_slice(&pattern[..first]);
        self.write_out().await?;
        let mut left = n - first as u64;
        while left > 0 {
            let k = left.min(CHUNK as u64) as usize;
            left -= self.write(&pattern[..k]).await? as u64;
        }
        Ok(())
    }

    /// Reads from the socket into the buffer; 0 at the end of the stream. Under toxics,
    /// what they let through, when it is due.
    async fn read(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < READ_ROOM / 2 {
            self.buf.reserve(READ_ROOM);
        }
        // What the toxics hold of the answers so far (a `100 Continue`, say) goes out
        // before the client is waited for.
        if self.faults.down.head_at().is_some() {
            self.release(true).await?;
        }
        if self.faults.up.quiet() {
            let n = self.stream.read_buf(&mut self.buf).await?;
            add(&self.ctx.http.hub.counters.http_bytes_in, n as u64);
            self.ctx.progressed();
            return Ok(n);
        }
        let mut ended = false;
        let _waiting = FaultWait(&self.ctx.fault_wait);
        loop {
            // While the toxics hold what the client sent, the watchdog waits too.
            let holding = self.faults.up.head_at().is_some();
            self.ctx.fault_wait.store(holding, Ordering::Relaxed);
            match self.faults.up.next(tokio::time::Instant::now(), true) {
                Due::Write(bytes) => {
                    self.buf.extend_from_slice(&bytes);
                    return Ok(bytes.len());
                }
                Due::Cut { reset, why } => return Err(self.cut(reset, why)),
                // The client is gone, or the toxics hold their most: what they hold first.
                Due::Wait(at) if ended || !self.faults.up.has_room() => {
                    tokio::time::sleep_until(at).await
                }
                // Nothing held, or nothing due yet: read on meanwhile (a due piece waits
                // for the next read at most).
                due @ (Due::Wait(_) | Due::Idle) if !ended => {
                    let mut chunk = BytesMut::with_capacity(READ_ROOM);
                    let read = match due {
                        Due::Wait(at) => {
                            tokio::select! {
                                r = self.stream.read_buf(&mut chunk) => Some(r?),
                                _ = tokio::time::sleep_until(at) => None,
                            }
                        }
                        _ => Some(self.stream.read_buf(&mut chunk).await?),
                    };
                    match read {
                        Some(0) => ended = true,
                        Some(n) => {
                            add(&self.ctx.http.hub.counters.http_bytes_in, n as u64);
                            self.ctx.progressed();
                            let now = tokio::time::Instant::now();
                            self.faults.up.push(now, chunk.freeze());
                        }
                        None => {}
                    }
                }
                // The client is gone and nothing is held.
                Due::Wait(_) | Due::Idle => return Ok(0),
            }
        }
    }

    /// A toxic ends the connection: with a RST (`reset`) or a close; the error says why.
    fn cut(&self, reset: bool, why: String) -> io::Error {
        if reset {
            let _ = socket2::SockRef::from(self.stream.tcp()).set_linger(Some(Duration::ZERO));
        }
        io::Error::other(why)
    }

    /// One write through the toxics: with none, one write (how many bytes went); else
    /// all of `bytes` handed to them (what is due written now; the rest by
    /// [`Conn::release`] once the answer is complete, or as soon as they hold their most).
    async fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.faults.down.quiet() {
            return write_counted(&mut self.stream, self.ctx, bytes).await;
        }
        let now = tokio::time::Instant::now();
        self.faults.down.push(now, Bytes::copy_from_slice(bytes));
        self.release(false).await?;
        Ok(bytes.len())
    }

    /// Writes what the toxics let through and is due; waits for what they hold when
    /// `all`, or while they hold their most.
    async fn release(&mut self, all: bool) -> io::Result<()> {
        let _waiting = FaultWait(&self.ctx.fault_wait);
        loop {
            match self.faults.down.next(tokio::time::Instant::now(), true) {
                Due::Write(piece) => {
                    // A client that stops reading is the watchdog's again.
                    self.ctx.fault_wait.store(false, Ordering::Relaxed);
                    let mut sent = 0;
                    while sent < piece.len() {
                        sent += write_counted(&mut self.stream, self.ctx, &piece[sent..]).await?;
                    }
                }
                Due::Cut { reset, why } => return Err(self.cut(reset, why)),
                Due::Wait(at) if all || !self.faults.down.has_room() => {
                    self.ctx.fault_wait.store(true, Ordering::Relaxed);
                    tokio::time::sleep_until(at).await
                }
                Due::Wait(_) | Due::Idle => return Ok(()),
            }
        }
    }

    /// Writes what `out` holds, counting each write as it goes (so what went out counts
    /// even when a later write fails or the connection is dropped).
    async fn write_out(&mut self) -> io::Result<()> {
        let mut sent = 0;
        let mut result = Ok(());
        while sent < self.out.len() {
            let out = std::mem::take(&mut self.out);
            let written = self.write(&out[sent..]).await;
            self.out = out;
            match written {
                Ok(n) => sent += n,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.out.clear();
        result
    }

    /// Writes the answers waiting, then publishes their exchanges (also when the write
    /// failed: the exchange happened, the client left).
    async fn flush(&mut self) -> io::Result<()> {
        let mut result = self.write_out().await;
        if result.is_ok() && !self.faults.down.quiet() {
            result = self.release(true).await;
        }
        self.publish();
        result
    }

    /// Publishes the exchanges answered, with their total time.
    fn publish(&mut self) {
        let http = &self.ctx.http;
        for (mut exchange, start) in self.answered.drain(..) {
            exchange.total_us = start.elapsed().as_micros() as u64;
            http.hub.publish(EventKind::Http(exchange));
            self.ctx.finished.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Clears `ConnCtx::fault_wait` when a wait on the toxics ends, however it ends.
struct FaultWait<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for FaultWait<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// One write of `bytes` (plaintext, under TLS): how many went out, counted in the lab's bytes out and as progress
/// for the watchdog.
async fn write_counted(stream: &mut Wire, ctx: &ConnCtx, bytes: &[u8]) -> io::Result<usize> {
    let n = stream.write(bytes).await?;
    if n == 0 {
        return Err(io::ErrorKind::WriteZero.into());
    }
    if stream.is_tls() {
        // rustls holds what was written until flushed: out it goes now, as a plain
        // socket's would.
        stream.flush().await?;
    }
    add(&ctx.http.hub.counters.http_bytes_out, n as u64);
    ctx.progressed();
    Ok(n)
}

impl Drop for Conn<'_> {
    /// A connection dropped while its answers were being written (the watchdog, or the
    /// grace at shutdown running out) still publishes their exchanges.
    fn drop(&mut self) {
        self.publish();
    }
}
