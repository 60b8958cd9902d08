//! One connection's life, from `TcpOpen` to `TcpClose`, in one task that owns the socket.
//!
//! Reading and writing are two arms of one `select!` over `&TcpStream` readiness, so a
//! peer that does not read only pauses this connection's own writes: its reads, and
//! every other connection, go on. Reads go through the pipeline ([`crate::pipeline`]):
//! the tap counts them and merges them into data events, then [`Flow::Up`]'s stages;
//! what passes is relayed at once (by `--tcp-mode`). Each chunk about to be written goes
//! through [`Flow::Down`]'s stages first. Then the service's toxics (`@tcp` in the
//! toxics API), a fault line per direction as on a proxy's connections: what they hold
//! waits its instant (a timer arm), and while they hold their most the reads, or the
//! queue's takes, pause. `--bridge` gets each merged event's captured bytes, so a flood
//! reaches the other services as a bounded stream of chat lines.

use std::io;
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use socket2::{SockRef, TcpKeepalive};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::{Instant, sleep_until};
use wirelab_shared::{CloseReason, Direction, EventKind, Payload};

use super::Tcp;
use super::conn::{CloseRequest, Conn};
use super::queue::Outgoing;
use crate::bridge::Source;
use crate::config::RelayMode;
use crate::faults::{Due, Line};
use crate::hub::counters::add;
use crate::pipeline::{Flow, Stages, Tap};
use crate::relay::TCP_SERVICE;
use crate::relay::faults::reporter;

/// Bytes read at most per `read`.
const READ_CHUNK: usize = 16 * 1024;
/// How long a FIN (from the page, or answering the peer's) waits for the queue to drain.
const DRAIN: Duration = Duration::from_secs(2);
/// Keepalive after a half-close: first probe after this much silence...
const KEEPALIVE_TIME: Duration = Duration::from_secs(30);
/// ...then one every this often (the kernel gives up after its own count of probes).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Removes the connection from the table when its task ends, even by a panic.
struct Registered<'a> {
    /// The table.
    tcp: &'a Tcp,
    /// The connection.
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.tcp.forget(self.id);
    }
}

/// How the loop ended.
struct End {
    /// Why, for `TcpClose`.
    reason: CloseReason,
    /// More words on why, when there are any.
    detail: Option<String>,
}

impl End {
    fn new(reason: CloseReason, detail: impl Into<Option<String>>) -> End {
        End {
            reason,
            detail: detail.into(),
        }
    }
}

/// Runs the connection until it ends, then closes it and publishes `TcpClose`.
pub(crate) async fn serve(
    tcp: Arc<Tcp>,
    stream: TcpStream,
    conn: Arc<Conn>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    _permit: OwnedSemaphorePermit,
) {
    let registered = Registered {
        tcp: &tcp,
        id: conn.id,
    };
    let seed = conn.id ^ conn.since_us.rotate_left(17);
    let line = |flow| {
        let report = reporter(&tcp.hub, TCP_SERVICE, conn.id, &conn.peer_text, flow);
        let shown = conn.faults[flow as usize].clone();
        Line::new(flow, tcp.toxics.clone(), seed, report, shown).of(conn.id, conn.peer)
    };
    let mut session = Session {
        tcp: &tcp,
        conn: &conn,
        stream: &stream,
        tap: Tap::new(tcp.snaplen),
        up: Stages::default(),
        down: Stages::default(),
        up_faults: line(Flow::Up),
        down_faults: line(Flow::Down),
        writing: None,
        peer_fin: false,
        fin_after_faults: false,
        draining: None,
        last_activity: Instant::now(),
    };
    let mut buf = vec![0u8; READ_CHUNK];
    let end = session.run(&mut rx, &mut buf).await;
    conn.closing.store(true, Relaxed);
    session.flush();
    let sock = SockRef::from(&stream);
    match end.reason {
        CloseReason::ResetFromPage | CloseReason::FaultReset => {
            // SO_LINGER 0: close() sends RST and drops whatever was unsent.
            let _ = sock.set_linger(Some(Duration::ZERO));
        }
        CloseReason::Reset | CloseReason::Error => {}
        _ => {
            let _ = sock.shutdown(Shutdown::Write);
        }
    }
    drop(stream);
    drop(registered);
    tcp.hub.publish(EventKind::TcpClose {
        conn: conn.id,
        peer: conn.peer_text.clone(),
        reason: end.reason,
        detail: end.detail,
        duration_us: crate::hub::now_us().saturating_sub(conn.since_us),
        bytes_in: conn.bytes_in.load(Relaxed),
        bytes_out: conn.bytes_out.load(Relaxed),
    });
}

/// The loop's state.
struct Session<'a> {
    /// The service.
    tcp: &'a Tcp,
    /// This connection's shared record.
    conn: &'a Conn,
    /// The socket; every operation on it takes `&self`, so reads and writes are
    /// independent arms of one `select!`.
    stream: &'a TcpStream,
    /// Counts incoming bytes and merges them into data events.
    tap: Tap,
    /// What incoming bytes pass through before they are relayed.
    up: Stages,
    /// What each chunk passes through before it is written.
    down: Stages,
    /// The service's toxics on what is read, before it is relayed.
    up_faults: Line,
    /// The service's toxics on what is about to be written.
    down_faults: Line,
    /// The chunk being written (sent from the page, or relayed), and how much of it is
    /// out.
    writing: Option<(Bytes, bool, usize)>,
    /// The peer has sent FIN: reading is over.
    peer_fin: bool,
    /// ... and the FIN is answered once the toxics have let go of what was read before it.
    fin_after_faults: bool,
    /// Closing with FIN once the queue is written: why, and the latest moment.
    draining: Option<(CloseReason, Instant)>,
    /// When bytes last moved either way, for `--tcp-idle-secs`.
    last_activity: Instant,
}

impl Session<'_> {
    async fn run(&mut self, rx: &mut mpsc::UnboundedReceiver<Outgoing>, buf: &mut [u8]) -> End {
        let (stream, conn, tcp) = (self.stream, self.conn, self.tcp);
        let echo = tcp.mode == RelayMode::Echo;
        loop {
            if let Some((reason, _)) = self.draining
                && self.writing.is_none()
                && rx.is_empty()
                && self.up_faults.head_at().is_none()
                && self.down_faults.head_at().is_none()
            {
                return End::new(reason, None);
            }
            // In echo mode the reader waits for room in its own queue: back-pressure
            // on the sender itself rather than dropping its echo; and for room in what
            // the toxics hold.
            // What the toxics hold is echoed too once due: room is kept for it.
            let can_read = !self.peer_fin
                && self.draining.is_none()
                && (!echo || conn.room() >= READ_CHUNK + self.up_faults.held())
                && self.up_faults.has_room();
            let can_take = self.writing.is_none() && self.down_faults.has_room();
            let idle_at = tcp.idle.map(|d| self.last_activity + d);
            // While a write is stuck (the fault arm is off), a toxic's cut still comes.
            let cut_at = match self.writing {
                Some(_) => self.down_faults.cut_at(),
                None => None,
            };
            let wake_at = [
                self.tap.deadline(),
                idle_at,
                self.draining.map(|(_, at)| at),
                cut_at,
            ]
            .into_iter()
            .flatten()
            .min();
            let ended = tokio::select! {
                _ = stream.readable(), if can_read => self.on_readable(buf),
                _ = stream.writable(), if self.writing.is_some() => self.on_writable(),
                item = rx.recv(), if can_take => match item {
                    Some(item) => self.through_down(item),
                    None => None,
                },
                // Something the toxics held is due, or the toxics changed.
                _ = self.up_faults.wait() => self.release_up(),
                // While a write is under way only a change of the toxics counts (a timeout
                // added, say): `cut_at` then wakes the loop for it.
                _ = self.down_faults.wait_for(self.writing.is_none()) => match self.writing {
                    None => self.release_down(),
                    Some(_) => None,
                },
                _ = conn.close_wake.notified() => self.on_close_request(),
                _ = sleep_until(wake_at.unwrap_or_else(Instant::now)), if wake_at.is_some() => {
                    self.on_timer(idle_at)
                }
                _ = stream.ready(Interest::ERROR), if self.peer_fin => Some(self.gone()),
                _ = tcp.shutdown.cancelled() => Some(End::new(CloseReason::Shutdown, None)),
            };
            if let Some(end) = ended {
                return end;
            }
        }
    }

    fn on_readable(&mut self, buf: &mut [u8]) -> Option<End> {
        match self.stream.try_read(buf) {
            Ok(0) => self.on_fin(),
            Ok(n) => self.on_data(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                Some(End::new(CloseReason::Reset, None))
            }
            Err(e) => Some(End::new(CloseReason::Error, format!("reading: {e}"))),
        }
    }

    fn on_data(&mut self, bytes: &[u8]) -> Option<End> {
        let now = Instant::now();
        self.last_activity = now;
        let counters = [&self.conn.bytes_in, &self.tcp.hub.counters.tcp_bytes_in];
        self.tap.read(now, bytes, &counters);
        let passed;
        let bytes = match self.up.is_empty() {
            true => bytes,
            false => match self.up.run(Flow::Up, Bytes::copy_from_slice(bytes)) {
                Some(chunk) => {
                    passed = chunk;
                    &passed[..]
                }
                None => return None,
            },
        };
        // Under a flood the timer arm may lose every race to the read arm.
        if self.tap.due(now) {
            self.flush();
        }
        if self.up_faults.quiet() {
            self.relay(bytes);
            return None;
        }
        self.up_faults.push(now, Bytes::copy_from_slice(bytes));
        self.release_up()
    }

    /// Relays what was read, by `--tcp-mode`.
    fn relay(&self, bytes: &[u8]) {
        match self.tcp.mode {
            RelayMode::Echo => {
                let _ = self.conn.relay(Bytes::copy_from_slice(bytes));
            }
            RelayMode::Broadcast => self.tcp.relay(Some(self.conn.id), bytes),
            RelayMode::Sink => {}
        }
    }

    /// Relays what the toxics let through of what was read, and is due; a toxic may end
    /// the connection.
    fn release_up(&mut self) -> Option<End> {
        loop {
            match self.up_faults.next(Instant::now(), true) {
                Due::Write(bytes) => self.relay(&bytes),
                Due::Cut { reset, why } => return Some(cut(reset, why)),
                Due::Wait(_) | Due::Idle => break,
            }
        }
        if self.fin_after_faults && self.up_faults.head_at().is_none() {
            self.fin_after_faults = false;
            self.drain(CloseReason::Fin);
        }
        None
    }

    /// Takes what the toxics let through toward the peer, and is due, to be written; a
    /// toxic may end the connection.
    fn release_down(&mut self) -> Option<End> {
        match self.down_faults.next(Instant::now(), true) {
            Due::Write(bytes) => {
                self.writing = Some((bytes, false, 0));
                None
            }
            Due::Cut { reset, why } => Some(cut(reset, why)),
            Due::Wait(_) | Due::Idle => None,
        }
    }

    /// The peer sent FIN.
    fn on_fin(&mut self) -> Option<End> {
        self.flush();
        self.peer_fin = true;
        self.conn.half_closed.store(true, Relaxed);
        self.tcp.hub.publish(EventKind::TcpHalfClose {
            conn: self.conn.id,
            peer: self.conn.peer_text.clone(),
        });
        // Only a sink keeps its side open (see the `tcp` module docs); keepalive then
        // finds a peer that has gone for good while nothing is being written.
        if self.tcp.mode == RelayMode::Sink {
            let keepalive = TcpKeepalive::new()
                .with_time(KEEPALIVE_TIME)
                .with_interval(KEEPALIVE_INTERVAL);
            let _ = SockRef::from(self.stream).set_tcp_keepalive(&keepalive);
        } else if self.up_faults.head_at().is_some() {
            // What the toxics still hold was read before the FIN: relayed first.
            self.fin_after_faults = true;
        } else {
            self.drain(CloseReason::Fin);
        }
        None
    }

    fn on_writable(&mut self) -> Option<End> {
        let (bytes, _, done) = self.writing.as_mut()?;
        match self.stream.try_write(&bytes[*done..]) {
            Ok(n) => {
                *done += n;
                self.last_activity = Instant::now();
                add(&self.conn.bytes_out, n as u64);
                add(&self.tcp.hub.counters.tcp_bytes_out, n as u64);
                if *done >= bytes.len()
                    && let Some((bytes, from_page, _)) = self.writing.take()
                    && from_page
                {
                    self.page_sent(&bytes);
                }
                None
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) if is_reset(&e) && self.peer_fin => Some(End::new(
                CloseReason::Fin,
                format!("the peer had closed: it refused the lab's next write ({e})"),
            )),
            Err(e) if is_reset(&e) => Some(End::new(
                CloseReason::Reset,
                format!("while the lab was writing: {e}"),
            )),
            Err(e) => Some(End::new(CloseReason::Error, format!("writing: {e}"))),
        }
    }

    /// A chunk taken from the queue, through [`Flow::Down`]'s stages (dropped by one, it
    /// is gone), then the toxics: written next, or held by them.
    fn through_down(&mut self, item: Outgoing) -> Option<End> {
        let mut bytes = item.bytes;
        if !self.down.is_empty() {
            bytes = self.down.run(Flow::Down, bytes)?;
        }
        if self.down_faults.quiet() {
            self.writing = Some((bytes, item.from_page, 0));
            return None;
        }
        // Said when it enters the toxics: what they do to it follows as fault events.
        if item.from_page {
            self.page_sent(&bytes);
        }
        self.down_faults.push(Instant::now(), bytes);
        self.release_down()
    }

    /// A chunk the page sent, on the timeline.
    fn page_sent(&self, bytes: &Bytes) {
        self.tcp.hub.publish(EventKind::TcpData {
            conn: self.conn.id,
            peer: self.conn.peer_text.clone(),
            dir: Direction::Out,
            size: bytes.len() as u64,
            payload: Payload::capture(bytes, self.tcp.snaplen),
        });
    }

    fn on_close_request(&mut self) -> Option<End> {
        match self.conn.close_requested() {
            CloseRequest::Reset => Some(End::new(CloseReason::ResetFromPage, None)),
            CloseRequest::Fin => {
                self.drain(CloseReason::ClosedFromPage);
                None
            }
            CloseRequest::None => None,
        }
    }

    fn on_timer(&mut self, idle_at: Option<Instant>) -> Option<End> {
        let now = Instant::now();
        if self.tap.due(now) {
            self.flush();
        }
        if self.down_faults.cut_at().is_some_and(|at| at <= now)
            && let Due::Cut { reset, why } = self.down_faults.next(now, true)
        {
            return Some(cut(reset, why));
        }
        if let Some((reason, at)) = self.draining
            && now >= at
        {
            return Some(End::new(
                reason,
                format!(
                    "gave up writing what was queued after {} s",
                    DRAIN.as_secs()
                ),
            ));
        }
        match (idle_at, self.tcp.idle) {
            (Some(at), Some(idle)) if now >= at => Some(End::new(
                CloseReason::IdleTimeout,
                format!(
                    "nothing travelled for {} s (--tcp-idle-secs)",
                    idle.as_secs()
                ),
            )),
            _ => None,
        }
    }

    /// After a half-close the socket reported an error: the peer's kernel answered a
    /// write or a keepalive probe with RST, so the peer has gone.
    fn gone(&mut self) -> End {
        match self.stream.take_error() {
            Ok(Some(e)) if !is_reset(&e) => {
                End::new(CloseReason::Error, format!("after the peer's FIN: {e}"))
            }
            _ => End::new(
                CloseReason::Fin,
                "the peer had closed: its kernel answered with RST".to_owned(),
            ),
        }
    }

    /// Closes with FIN once what is queued has been written (or [`DRAIN`] has passed).
    fn drain(&mut self, reason: CloseReason) {
        if self.draining.is_none() {
            self.conn.closing.store(true, Relaxed);
            self.draining = Some((reason, Instant::now() + DRAIN));
        }
    }

    /// Publishes the open window as one data event, and bridges its captured bytes.
    fn flush(&mut self) {
        let Some(merged) = self.tap.take() else {
            return;
        };
        self.tcp.hub.publish(EventKind::TcpData {
            conn: self.conn.id,
            peer: self.conn.peer_text.clone(),
            dir: Direction::In,
            size: merged.size,
            payload: merged.payload,
        });
        if !merged.head.is_empty() {
            // One datagram's worth at most, so the UDP side can carry it.
            let head = &merged.head[..merged.head.len().min(crate::udp::MAX_DATAGRAM)];
            self.tcp.bridge.send(Source::Tcp(self.conn.id), head);
        }
    }
}

/// How a toxic ends a connection: a reset (reset_peer) or a close (timeout, limit_data).
fn cut(reset: bool, why: String) -> End {
    match reset {
        true => End::new(CloseReason::FaultReset, why),
        false => End::new(CloseReason::Fault, why),
    }
}

/// Errors that mean the peer reset the connection (or had already closed it).
fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}
