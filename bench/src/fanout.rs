//! `udp-fanout`: sends UDP datagrams at a fixed rate, each carrying `wlb:<seq>:<send_us>:`,
//! while N WebSocket clients receive. Reads both wirelab's batched `events` frames (and its
//! `lagged { missed }`) and the Node relay's per-datagram objects or arrays: it only looks
//! for the markers in the text, wherever the server put them.
//!
//! Reports delivered messages/s, loss (and how much of it the server reported as `lagged`),
//! and end-to-end latency from the sender's clock to the receiving client's.
//!
//! The receiving side must never be the bottleneck, so it is as cheap as we can make it:
//! one thread, one epoll set (mio, edge-triggered) over raw TCP sockets, a minimal WebSocket
//! client ([`ws`]: the handshake, then the server's unmasked frames; pings are answered,
//! other control frames skipped), one read buffer shared by every connection (a connection
//! keeps only the incomplete tail of a frame), and a memchr scan for the markers. Each
//! client still checks its own delivery: a bitmap of the datagrams it saw.
//!
//! Like a browser, each client offers permessage-deflate; a server that agrees (wirelab,
//! once enough clients share its frames) sends the same compressed bytes to every client.
//! A compressed message is inflated and scanned once ([`Inflated`]); every other client
//! that receives the very same bytes (compared in full) reuses what that scan found.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use memchr::memmem;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::util::{cpu_secs, now_us, result_line};

/// Bytes of each datagram (the marker, padded).
const PAYLOAD: usize = 48;
/// Longest wait after the last datagram for the clients to catch up. A server that passes
/// (p99 < 50 ms) has delivered everything long before; one that needs longer fails anyway,
/// and what it had not delivered by then counts as lost.
const DRAIN: Duration = Duration::from_secs(1);
/// Handshakes in progress at once (the servers' listen backlogs are 128 or more).
const CONNECT_AT_ONCE: usize = 64;
/// All clients must be connected within this.
const CONNECT_LIMIT: Duration = Duration::from_secs(30);
/// The read buffer every connection shares.
const READ_BUF: usize = 256 * 1024;
/// See [`turn`]: the nap when fewer sockets than this were ready.
const COALESCE: Duration = Duration::from_micros(200);
const COALESCE_BELOW: usize = 32;
/// A frame larger than this is a protocol error here (wirelab's snapshot is ~150 KB).
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// `udp-fanout`'s flags.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The UDP service to send the datagrams to.
    #[arg(long, value_name = "ADDR")]
    udp: SocketAddr,
    /// The WebSocket URL the clients connect to (`ws://` only).
    #[arg(long, value_name = "URL")]
    ws: String,
    /// WebSocket clients.
    #[arg(long, value_name = "N", default_value_t = 100)]
    clients: usize,
    /// Datagrams per second.
    #[arg(long, value_name = "PER_S", default_value_t = 1000)]
    rate: u64,
    /// Seconds of sending.
    #[arg(long, value_name = "S", default_value_t = 3.0)]
    secs: f64,
    /// Seconds for hello, snapshot and the join events to settle before the flood.
    #[arg(long, value_name = "S", default_value_t = 0.5)]
    settle: f64,
    /// The server's pid: its CPU share during the flood goes in the result.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
}

pub(crate) fn main(args: Args) -> Result<(), String> {
    let url = ws::Url::parse(&args.ws)?;
    let settle = Duration::from_secs_f64(args.settle);
    let total = (args.rate as f64 * args.secs).round() as u64;
    run(
        args.udp,
        &url,
        args.clients,
        args.rate,
        total,
        settle,
        args.server_pid,
    )
}

/// Where a connection is.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Phase {
    /// Not connected yet (waiting for a handshake slot).
    Waiting,
    /// TCP connect in progress, or the upgrade request sent and the 101 not yet read.
    Handshake,
    Open,
    /// The server closed it (or it failed): it receives nothing more.
    Closed,
}

/// One client.
struct Client {
    stream: Option<TcpStream>,
    phase: Phase,
    /// Whether the upgrade request has been written.
    requested: bool,
    /// Incomplete bytes carried to the next read: the handshake response, or the tail of a
    /// frame.
    carry: Vec<u8>,
    /// Control frames waiting to be written (pongs), masked.
    out: Vec<u8>,
    tally: Tally,
}

/// What one client saw.
struct Tally {
    /// Distinct datagrams received.
    received: u64,
    /// Sum of wirelab's `lagged { missed }`.
    lagged_missed: u64,
    frames: u64,
    bytes: u64,
    /// Bit `seq` is set when datagram `seq` arrived.
    bits: Vec<u64>,
}

/// Shared by every client: the latency histogram and the marker finder.
struct Sink {
    latency: Histogram<u64>,
    marker: memmem::Finder<'static>,
    total: u64,
    /// Datagrams received or reported `lagged`, over all clients (the drain's goal).
    accounted: u64,
    pongs: u64,
    inflated: Inflated,
}

/// What one data message held: a `lagged { missed }`, or the datagrams' markers.
#[derive(Default)]
struct Scanned {
    lagged: Option<u64>,
    /// `(seq, sent_us)` of each marker, in order.
    markers: Vec<(u64, u64)>,
}

/// Compressed messages recently inflated, newest first, with what their scan found.
#[derive(Default)]
struct Inflated {
    recent: VecDeque<(Vec<u8>, Scanned)>,
    /// Messages inflated (the rest were found here).
    inflations: u64,
}

impl Inflated {
    /// Messages remembered: far more than the frames in flight to 1,000 clients at once.
    const KEEP: usize = 512;

    /// The scan of `payload` (compressed): from an earlier client that received exactly
    /// these bytes, or inflated and scanned now.
    fn scan(&mut self, payload: &[u8], marker: &memmem::Finder<'_>) -> Result<&Scanned, String> {
        let found = self
            .recent
            .iter()
            .position(|(bytes, _)| bytes.as_slice() == payload);
        let at = match found {
            Some(at) => at,
            None => {
                let text = inflate(payload)?;
                self.inflations += 1;
                self.recent
                    .push_front((payload.to_vec(), scan(&text, marker)));
                self.recent.truncate(Self::KEEP);
                0
            }
        };
        Ok(&self.recent[at].1)
    }
}

/// A permessage-deflate payload, inflated (RFC 7692 7.2.2: the sender left out the sync
/// flush's `00 00 ff ff`).
fn inflate(payload: &[u8]) -> Result<Vec<u8>, String> {
    let mut d = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(payload.len() * 8);
    for mut input in [payload, &[0, 0, 0xff, 0xff][..]] {
        while !input.is_empty() {
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            }
            let (before, made) = (d.total_in(), out.len());
            let status = d
                .decompress_vec(input, &mut out, flate2::FlushDecompress::Sync)
                .map_err(|e| format!("bad compressed message: {e}"))?;
            input = &input[(d.total_in() - before) as usize..];
            if out.len() > MAX_FRAME {
                return Err("a compressed message inflating past 16 MiB".into());
            }
            let stuck = d.total_in() == before && out.len() == made;
            if !input.is_empty() && (status == flate2::Status::StreamEnd || stuck) {
                return Err("a compressed message with bytes past its end".into());
            }
        }
    }
    Ok(out)
}

/// Finds a `lagged { missed }` or the markers in one data message.
fn scan(payload: &[u8], marker: &memmem::Finder<'_>) -> Scanned {
    if payload.starts_with(br#"{"type":"lagged""#) {
        let missed = memmem::find(payload, br#""missed":"#)
            .and_then(|i| digits(&payload[i + 9..]))
            .map_or(0, |(v, _)| v);
        return Scanned {
            lagged: Some(missed),
            markers: Vec::new(),
        };
    }
    Scanned {
        lagged: None,
        markers: marker
            .find_iter(payload)
            .filter_map(|at| parse_marker(&payload[at + 4..]))
            .collect(),
    }
}

fn run(
    udp: SocketAddr,
    url: &ws::Url,
    clients: usize,
    rate: u64,
    total: u64,
    settle: Duration,
    server: Option<u32>,
) -> Result<(), String> {
    let mut poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; READ_BUF];
    let request = url.request();
    let mut conns: Vec<Client> = (0..clients)
        .map(|_| Client {
            stream: None,
            phase: Phase::Waiting,
            requested: false,
            carry: Vec::new(),
            out: Vec::new(),
            tally: Tally {
                received: 0,
                lagged_missed: 0,
                frames: 0,
                bytes: 0,
                bits: vec![0; (total as usize).div_ceil(64)],
            },
        })
        .collect();
    let mut sink = Sink {
        latency: Histogram::new_with_bounds(1, 600_000_000, 3).map_err(|e| e.to_string())?,
        marker: memmem::Finder::new(b"wlb:"),
        total,
        accounted: 0,
        pongs: 0,
        inflated: Inflated::default(),
    };

    // Connect, at most CONNECT_AT_ONCE handshakes at a time.
    let deadline = Instant::now() + CONNECT_LIMIT;
    let mut next = 0;
    loop {
        let in_flight = conns.iter().filter(|c| c.phase == Phase::Handshake).count();
        for _ in in_flight..CONNECT_AT_ONCE {
            if next == clients {
                break;
            }
            let c = &mut conns[next];
            let mut s = TcpStream::connect(url.addr).map_err(|e| format!("connect: {e}"))?;
            poll.registry()
                .register(&mut s, Token(next), Interest::READABLE | Interest::WRITABLE)
                .map_err(|e| e.to_string())?;
            c.stream = Some(s);
            c.phase = Phase::Handshake;
            next += 1;
        }
        let open = conns.iter().filter(|c| c.phase == Phase::Open).count();
        if open == clients {
            break;
        }
        if let Some(failed) = conns.iter().position(|c| c.phase == Phase::Closed) {
            return Err(format!(
                "client {failed} failed during the handshake ({open} of {clients} open)"
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("only {open} of {clients} clients connected"));
        }
        turn(
            &mut poll,
            &mut events,
            &mut conns,
            &mut buf,
            &mut sink,
            &request,
        )?;
    }
    // Let hello/snapshot and the join events settle before the flood.
    let settle = Instant::now() + settle;
    while Instant::now() < settle {
        turn(
            &mut poll,
            &mut events,
            &mut conns,
            &mut buf,
            &mut sink,
            &request,
        )?;
    }

    let cpu0 = cpu_secs(std::process::id()).unwrap_or(0.0);
    let server_cpu0 = server.and_then(cpu_secs);
    let started = Instant::now();
    let sender = std::thread::spawn(move || send(udp, rate, total));
    while !sender.is_finished() {
        turn(
            &mut poll,
            &mut events,
            &mut conns,
            &mut buf,
            &mut sink,
            &request,
        )?;
    }
    let sent = sender.join().map_err(|_| "sender panicked")??;
    let send_secs = started.elapsed().as_secs_f64();
    let expected = sent * clients as u64;
    let drain_until = Instant::now() + DRAIN;
    while sink.accounted < expected && Instant::now() < drain_until {
        turn(
            &mut poll,
            &mut events,
            &mut conns,
            &mut buf,
            &mut sink,
            &request,
        )?;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_secs(std::process::id()).unwrap_or(0.0) - cpu0;
    // The server's CPU over the same window: the flood and the drain.
    let server_cpu = match (server_cpu0, server.and_then(cpu_secs)) {
        (Some(a), Some(b)) => format!("{:.2}", (b - a) / wall),
        _ => "NaN".to_owned(),
    };

    let (mut delivered, mut lost, mut lagged, mut unreported, mut frames, mut bytes) =
        (0, 0, 0, 0, 0, 0);
    let mut closed = 0;
    for c in &conns {
        let t = &c.tally;
        let lost_here = sent.saturating_sub(t.received);
        delivered += t.received;
        lost += lost_here;
        lagged += t.lagged_missed.min(lost_here);
        unreported += lost_here.saturating_sub(t.lagged_missed);
        frames += t.frames;
        bytes += t.bytes;
        closed += usize::from(c.phase == Phase::Closed);
    }
    let latency = &sink.latency;
    let ms = |q: f64| format!("{:.2}", latency.value_at_quantile(q) as f64 / 1000.0);
    println!(
        "{}",
        result_line(&[
            ("clients", clients.to_string()),
            ("rate", rate.to_string()),
            ("sent", sent.to_string()),
            ("send_rate", format!("{:.0}", sent as f64 / send_secs)),
            ("expected", expected.to_string()),
            ("delivered", delivered.to_string()),
            (
                "delivered_per_s",
                format!("{:.0}", delivered as f64 / send_secs)
            ),
            ("lost", lost.to_string()),
            ("lagged", lagged.to_string()),
            ("unreported", unreported.to_string()),
            ("p50_ms", ms(0.5)),
            ("p99_ms", ms(0.99)),
            ("p999_ms", ms(0.999)),
            ("max_ms", format!("{:.2}", latency.max() as f64 / 1000.0)),
            ("frames", frames.to_string()),
            ("bytes", bytes.to_string()),
            ("closed_by_server", closed.to_string()),
            ("pongs", sink.pongs.to_string()),
            ("inflated", sink.inflated.inflations.to_string()),
            ("loadgen_cpu", format!("{:.2}", cpu / wall)),
            ("server_cpu", server_cpu),
        ])
    );
    Ok(())
}

/// One epoll wait (at most 5 ms) and everything it reported.
fn turn(
    poll: &mut Poll,
    events: &mut Events,
    conns: &mut [Client],
    buf: &mut [u8],
    sink: &mut Sink,
    request: &[u8],
) -> Result<(), String> {
    match poll.poll(events, Some(Duration::from_millis(5))) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(()),
        Err(e) => return Err(format!("epoll: {e}")),
    }
    let mut ready = 0;
    for ev in events.iter() {
        ready += 1;
        let c = &mut conns[ev.token().0];
        if ev.is_writable() {
            c.on_writable(request);
        }
        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
            c.on_readable(buf, sink);
        }
    }
    // A server writes its clients one after another, so waking for each socket costs a
    // context switch per frame (a quarter of this tool's time at 1,000 clients). When few
    // were ready, a short nap lets the rest of the round arrive first; it adds at most
    // COALESCE to a latency measured against a 50 ms bar.
    if ready > 0 && ready < COALESCE_BELOW {
        std::thread::sleep(COALESCE);
    }
    Ok(())
}

impl Client {
    fn close(&mut self) {
        self.phase = Phase::Closed;
        self.stream = None;
        self.carry = Vec::new();
    }

    fn on_writable(&mut self, request: &[u8]) {
        let Some(s) = self.stream.as_mut() else {
            return;
        };
        if !self.requested {
            // Writable after a non-blocking connect: connected, or failed.
            match s.take_error() {
                Ok(None) => {}
                _ => return self.close(),
            }
            if s.peer_addr().is_err() {
                return; // not connected yet
            }
            self.out.extend_from_slice(request);
            self.requested = true;
        }
        self.flush();
    }

    /// Writes what is queued, as far as the socket takes it.
    fn flush(&mut self) {
        let Some(s) = self.stream.as_mut() else {
            return;
        };
        while !self.out.is_empty() {
            match s.write(&self.out) {
                Ok(0) => return self.close(),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.close(),
            }
        }
    }

    /// Reads until the socket would block (edge-triggered), handling every whole frame.
    fn on_readable(&mut self, buf: &mut [u8], sink: &mut Sink) {
        loop {
            let Some(s) = self.stream.as_mut() else {
                return;
            };
            let n = match s.read(buf) {
                Ok(0) => return self.close(),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return self.close(),
            };
            let now = now_us();
            let ok = if self.carry.is_empty() {
                let (used, ok) = self.consume(&buf[..n], now, sink);
                self.carry.extend_from_slice(&buf[used..n]);
                ok
            } else {
                self.carry.extend_from_slice(&buf[..n]);
                let carry = std::mem::take(&mut self.carry);
                let (used, ok) = self.consume(&carry, now, sink);
                self.carry = carry;
                self.carry.drain(..used);
                ok
            };
            if !ok {
                return self.close();
            }
            if !self.out.is_empty() {
                self.flush();
            }
            // A short read emptied the socket's queue; anything arriving later is a new
            // edge. This saves the read that would only say WouldBlock.
            if n < buf.len() {
                return;
            }
        }
    }

    /// Handles the complete frames (or the handshake response) at the start of `data`;
    /// returns how many bytes were used, and false when the connection must close.
    fn consume(&mut self, data: &[u8], now: u64, sink: &mut Sink) -> (usize, bool) {
        let mut at = 0;
        if self.phase == Phase::Handshake {
            let Some(end) = memmem::find(data, b"\r\n\r\n") else {
                return (0, data.len() < 16 * 1024);
            };
            if !data.starts_with(b"HTTP/1.1 101") {
                let line = data.split(|b| *b == b'\r').next().unwrap_or_default();
                eprintln!("upgrade refused: {}", String::from_utf8_lossy(line));
                return (0, false);
            }
            self.phase = Phase::Open;
            at = end + 4;
        }
        while at < data.len() {
            let head = match ws::Head::parse(&data[at..]) {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("bad frame: {e}");
                    return (at, false);
                }
            };
            if head.len > MAX_FRAME {
                eprintln!("frame of {} bytes", head.len);
                return (at, false);
            }
            let end = at + head.size + head.len;
            if end > data.len() {
                break;
            }
            let payload = &data[at + head.size..end];
            at = end;
            match head.opcode {
                ws::TEXT | ws::BINARY | ws::CONTINUATION if head.compressed => {
                    if let Err(e) = self.on_deflated(payload, now, sink) {
                        eprintln!("{e}");
                        return (at, false);
                    }
                }
                ws::TEXT | ws::BINARY | ws::CONTINUATION => self.on_data(payload, now, sink),
                ws::PING => {
                    ws::masked_frame(&mut self.out, ws::PONG, payload);
                    sink.pongs += 1;
                }
                ws::CLOSE => return (at, false),
                _ => {} // pong, reserved
            }
        }
        (at, true)
    }

    fn on_data(&mut self, payload: &[u8], now: u64, sink: &mut Sink) {
        self.tally.frames += 1;
        self.tally.bytes += payload.len() as u64;
        let scanned = scan(payload, &sink.marker);
        self.tally.count(&scanned, now, sink);
    }

    /// A compressed message: inflated and scanned once for every client that gets it.
    fn on_deflated(&mut self, payload: &[u8], now: u64, sink: &mut Sink) -> Result<(), String> {
        self.tally.frames += 1;
        self.tally.bytes += payload.len() as u64;
        // Out of the sink while `count` uses the rest of it (a move, not a copy).
        let mut inflated = std::mem::take(&mut sink.inflated);
        let counted = inflated
            .scan(payload, &sink.marker)
            .map(|scanned| self.tally.count(scanned, now, sink));
        sink.inflated = inflated;
        counted
    }
}

impl Tally {
    /// Marks what one message delivered to this client.
    fn count(&mut self, scanned: &Scanned, now: u64, sink: &mut Sink) {
        let t = self;
        if let Some(missed) = scanned.lagged {
            t.lagged_missed += missed;
            sink.accounted += missed;
            return;
        }
        for &(seq, sent_us) in &scanned.markers {
            if seq >= sink.total {
                continue;
            }
            let (word, bit) = ((seq / 64) as usize, seq % 64);
            if t.bits[word] & (1 << bit) != 0 {
                continue;
            }
            t.bits[word] |= 1 << bit;
            t.received += 1;
            sink.accounted += 1;
            let _ = sink.latency.record(now.saturating_sub(sent_us).max(1));
        }
    }
}

/// Sends `total` datagrams at `rate` per second, in 1 ms slices.
fn send(to: SocketAddr, rate: u64, total: u64) -> Result<u64, String> {
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    sock.connect(to).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut buf = Vec::with_capacity(PAYLOAD);
    // Bounded: the rate's duration plus slack.
    let give_up = started + Duration::from_secs_f64(total as f64 / rate as f64 * 2.0 + 5.0);
    while sent < total && Instant::now() < give_up {
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(total);
        while sent < due {
            buf.clear();
            buf.extend_from_slice(format!("wlb:{sent}:{}:", now_us()).as_bytes());
            buf.resize(PAYLOAD.max(buf.len()), b'x');
            match sock.send(&buf) {
                Ok(_) => sent += 1,
                // The kernel's buffer is full: try again in the next slice.
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(105) => break, // ENOBUFS
                Err(e) => return Err(format!("udp send: {e}")),
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    Ok(sent)
}

/// Reads `<seq>:<us>:` after a marker.
fn parse_marker(b: &[u8]) -> Option<(u64, u64)> {
    let (seq, rest) = digits(b)?;
    let (us, _) = digits(rest.strip_prefix(b":")?)?;
    Some((seq, us))
}

fn digits(b: &[u8]) -> Option<(u64, &[u8])> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    let v = b[..n]
        .iter()
        .fold(0u64, |v, c| v * 10 + u64::from(c - b'0'));
    Some((v, &b[n..]))
}

/// Just enough of RFC 6455 for a client that reads.
mod ws {
    use super::*;

    pub(super) const CONTINUATION: u8 = 0x0;
    pub(super) const TEXT: u8 = 0x1;
    pub(super) const BINARY: u8 = 0x2;
    pub(super) const CLOSE: u8 = 0x8;
    pub(super) const PING: u8 = 0x9;
    pub(super) const PONG: u8 = 0xA;

    /// `ws://host:port/path`.
    pub(super) struct Url {
        pub(super) addr: SocketAddr,
        host: String,
        path: String,
    }

    impl Url {
        pub(super) fn parse(url: &str) -> Result<Url, String> {
            let rest = url
                .strip_prefix("ws://")
                .ok_or_else(|| format!("--ws: {url}: only ws:// URLs"))?;
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let addr = host
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| format!("--ws: {url}: no address for {host}"))?;
            Ok(Url {
                addr,
                host: host.to_owned(),
                path: if path.is_empty() { "/" } else { path }.to_owned(),
            })
        }

        /// The upgrade request. No Origin header: these are not dashboards. It offers
        /// permessage-deflate, as browsers do.
        pub(super) fn request(&self) -> Vec<u8> {
            format!(
                "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
                self.path, self.host
            )
            .into_bytes()
        }
    }

    /// A frame header from the server.
    pub(super) struct Head {
        pub(super) opcode: u8,
        /// RSV1: a permessage-deflate message.
        pub(super) compressed: bool,
        /// Bytes of the header.
        pub(super) size: usize,
        /// Bytes of the payload.
        pub(super) len: usize,
    }

    impl Head {
        /// `None` while the header is incomplete.
        pub(super) fn parse(b: &[u8]) -> Result<Option<Head>, String> {
            if b.len() < 2 {
                return Ok(None);
            }
            if b[1] & 0x80 != 0 {
                return Err("a masked frame from the server".into());
            }
            let (size, len) = match b[1] & 0x7f {
                126 if b.len() < 4 => return Ok(None),
                126 => (4, usize::from(u16::from_be_bytes([b[2], b[3]]))),
                127 if b.len() < 10 => return Ok(None),
                127 => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&b[2..10]);
                    (
                        10,
                        usize::try_from(u64::from_be_bytes(n)).unwrap_or(usize::MAX),
                    )
                }
                n => (2, usize::from(n)),
            };
            Ok(Some(Head {
                opcode: b[0] & 0x0f,
                compressed: b[0] & 0x40 != 0,
                size,
                len,
            }))
        }
    }

    /// Appends a final client frame (control frames: payload ≤ 125 bytes). The mask key is
    /// zero, which RFC 6455 allows, so the payload goes out as it is.
    pub(super) fn masked_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
        let len = payload.len().min(125);
        out.extend_from_slice(&[0x80 | opcode, 0x80 | len as u8, 0, 0, 0, 0]);
        out.extend_from_slice(&payload[..len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_parse_in_both_formats() {
        assert_eq!(parse_marker(b"12:345:xxx\"}"), Some((12, 345)));
        assert_eq!(parse_marker(b"12345"), None);
    }

    #[test]
    fn a_compressed_message_is_inflated_once_for_every_client_that_gets_it() {
        let text = br#"{"type":"events","events":[{"text":"wlb:1:100:x"},{"text":"wlb:2:100:x"}]}"#;
        let mut packed = Vec::with_capacity(256);
        flate2::Compress::new(flate2::Compression::fast(), false)
            .compress_vec(text, &mut packed, flate2::FlushCompress::Sync)
            .unwrap();
        packed.truncate(packed.len() - 4);
        let mut wire = vec![0xC1, packed.len() as u8];
        wire.extend_from_slice(&packed);
        let mut sink = sink(10);
        let mut clients = [client(), client()];
        for c in &mut clients {
            assert_eq!(c.consume(&wire, 300, &mut sink), (wire.len(), true));
            assert_eq!(c.tally.received, 2, "each client counts its own");
        }
        assert_eq!(sink.inflated.inflations, 1);
        assert_eq!(sink.accounted, 4);
        // Other bytes are inflated on their own, and bytes that are not deflate fail.
        let mut other = wire.clone();
        other[2] ^= 1;
        let (_, ok) = client().consume(&other, 300, &mut sink);
        assert!(
            !ok || sink.inflated.inflations == 2,
            "inflated anew, or refused"
        );
    }

    fn client() -> Client {
        Client {
            stream: None,
            phase: Phase::Open,
            requested: true,
            carry: Vec::new(),
            out: Vec::new(),
            tally: Tally {
                received: 0,
                lagged_missed: 0,
                frames: 0,
                bytes: 0,
                bits: vec![0; 1],
            },
        }
    }

    fn sink(total: u64) -> Sink {
        Sink {
            latency: Histogram::new_with_bounds(1, 600_000_000, 3).unwrap(),
            marker: memmem::Finder::new(b"wlb:"),
            total,
            accounted: 0,
            pongs: 0,
            inflated: Inflated::default(),
        }
    }

    #[test]
    fn frame_headers_parse_at_every_length() {
        let h = ws::Head::parse(&[0x81, 5]).unwrap().unwrap();
        assert_eq!((h.opcode, h.size, h.len), (ws::TEXT, 2, 5));
        let h = ws::Head::parse(&[0x81, 126, 1, 0]).unwrap().unwrap();
        assert_eq!((h.size, h.len), (4, 256));
        let h = ws::Head::parse(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!((h.opcode, h.size, h.len), (ws::BINARY, 10, 65_536));
        assert!(ws::Head::parse(&[0x81, 126, 1]).unwrap().is_none());
        assert!(ws::Head::parse(&[0x81, 0x85]).is_err());
    }

    #[test]
    fn a_frame_split_across_reads_is_counted_once_whole() {
        let mut c = client();
        let mut sink = sink(10);
        let text = br#"{"type":"events","events":[{"text":"wlb:3:100:x"},{"text":"wlb:4:100:x"}]}"#;
        let mut wire = vec![0x81, text.len() as u8];
        wire.extend_from_slice(text);
        wire.extend_from_slice(&[0x89, 1, b'p']); // a ping
        wire.extend_from_slice(&[0x81, 32]);
        wire.extend_from_slice(br#"{"type":"lagged","missed":7}    "#);
        let (used, ok) = c.consume(&wire[..20], 200, &mut sink);
        assert_eq!((used, ok), (0, true));
        let (used, ok) = c.consume(&wire, 200, &mut sink);
        assert_eq!((used, ok), (wire.len(), true));
        assert_eq!(c.tally.received, 2);
        assert_eq!(c.tally.lagged_missed, 7);
        assert_eq!(sink.accounted, 9);
        assert_eq!(c.out, vec![0x8A, 0x81, 0, 0, 0, 0, b'p']);
        assert_eq!(sink.latency.max(), 100);
    }
}
