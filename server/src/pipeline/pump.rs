//! One direction of a relayed TCP stream: read from one socket, tap, stages, write to the
//! other, until the reading side sends FIN or either side fails.
//!
//! The window is the bound: a pump reads at most [`WINDOW`] bytes, then writes them all
//! before it reads again. A reader slower than the sender thus stops the pump's reads,
//! the kernel's receive buffer on the fast side fills, and TCP's own flow control slows
//! the sender: memory stays at one window per direction whatever the transfer's size.
//! The lab's buffer ([`BUFFER`], read into per window) exists only while bytes are
//! moving: an idle stream holds none
//! (1,000 idle relayed connections cost no buffers at all).
//!
//! Which way a window's bytes go is chosen per window: through that buffer (read, tap,
//! stages, write) while the open data-event window still captures or a stage is
//! installed; else, on Linux, through a pipe of the pump's own with splice(2)
//! ([`super::splice`]), counted but never copied into the lab. Under a flood that is all
//! but the first `--snaplen` bytes of each 16 ms window. The pipe is made at the first
//! such window and kept until the pump ends (two file descriptors).

use std::collections::VecDeque;
use std::io;
use std::net::Shutdown;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use socket2::SockRef;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

use super::merge::Merged;
use super::splice::{Pipe, drain_all};
use super::{Flow, Stages, Tap};
use crate::hub::counters::add;
use crate::hub::lock;

/// Bytes read at most before they are written (per direction, per stream). 256 KiB: a
/// flood on loopback moved at about 1.0 GB/s with 64 KiB windows, 1.2 to 1.5 with 256 KiB,
/// and no faster with 1 MiB (`cargo xtask bench --only relay`, 2 loaded cores).
pub const WINDOW: usize = 256 * 1024;

/// Bytes read at most into the lab's own buffer ([`WINDOW`]'s bytes beyond them wait for
/// the next read): that buffer exists per stream while bytes move, a pipe's bytes stay in
/// the kernel's pages.
const BUFFER: usize = 64 * 1024;

/// What a pump tells its owner as bytes move.
pub trait Events: Sync {
    /// A closed window of bytes read travelling `flow` (its size counts every byte).
    fn data(&self, flow: Flow, merged: Merged);
    /// The side that sends `flow` sent FIN; it was passed on as a FIN.
    fn half_close(&self, flow: Flow);
    /// Bytes from elsewhere (the page) were written travelling `flow`.
    fn sent(&self, flow: Flow, bytes: &[u8]);
    /// Bytes from elsewhere, held for the end of a message of the stream, were never
    /// written: the stream ended first. Nothing by default.
    fn unsent(&self, _flow: Flow, _bytes: &[u8]) {}
    /// Whether the owner reads every byte as it passes ([`Events::read`]): then no window
    /// is spliced past the lab. Not by default.
    fn reads(&self) -> bool {
        false
    }
    /// `bytes` were read travelling `flow` at `now` (after the tap, before the stages),
    /// for an owner that reads the stream's protocol as it passes. Nothing by default.
    fn read(&self, _flow: Flow, _bytes: &[u8], _now: Instant) {}
    /// Whether a chunk from elsewhere may go out travelling `flow` now without landing
    /// inside one of the stream's own messages (a WebSocket frame, an HTTP request); when
    /// not, the pump holds it until the stream's bytes reach such a point. Always, by
    /// default.
    fn at_boundary(&self, _flow: Flow) -> bool {
        true
    }
}

/// How a pump ended.
#[derive(Debug)]
pub enum PumpEnd {
    /// The reading side sent FIN, and it was passed on.
    Fin,
    /// Reading failed (a reset, most often): the reading side is gone.
    ReadFailed(io::Error),
    /// Writing failed (a reset, most often): the writing side is gone.
    WriteFailed(io::Error),
    /// A stage (a fault) ends the connection: both legs closed, or reset (`reset`).
    Cut { reset: bool, why: String },
}

/// One direction's parts.
pub struct Pump<'a> {
    /// Which way it carries bytes.
    pub flow: Flow,
    /// Its counters and data-event window.
    pub tap: Tap,
    /// Its stages.
    pub stages: Stages,
    /// Counted for every byte read.
    pub read_counters: &'a [&'a AtomicU64],
    /// Counted for every byte written.
    pub write_counters: &'a [&'a AtomicU64],
    /// Where its events go.
    pub events: &'a dyn Events,
    /// Chunks from elsewhere (the page) to write between the relayed ones, in order.
    pub inject: Option<&'a Inject>,
    /// A chunk from elsewhere that came while the stream was inside one of its messages
    /// (or while a fault held some of its bytes): it goes out once they have.
    pub held: Option<Bytes>,
}

/// Chunks from elsewhere (the page) that a pump writes between the relayed ones, in
/// order; bounded. Nothing is allocated until a chunk comes (a channel's buffer was
/// allocated for every relayed connection, a third of an idle one's memory).
#[derive(Debug)]
pub struct Inject {
    /// The chunks, oldest first.
    queue: Mutex<VecDeque<Bytes>>,
    /// Chunks waiting at most.
    cap: usize,
    /// Wakes the pump when a chunk comes (one consumer: a permit is kept).
    ready: Notify,
    /// Set once the pump has ended: nothing more is written.
    closed: AtomicBool,
}

/// Why a chunk was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum InjectError {
    /// `cap` chunks wait already: the side is not reading.
    Full,
    /// The pump has ended.
    Closed,
}

impl Inject {
    /// An empty queue of `cap` chunks at most.
    pub fn new(cap: usize) -> Inject {
        Inject {
            queue: Mutex::new(VecDeque::new()),
            cap,
            ready: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Queues `chunk` behind the others.
    pub fn push(&self, chunk: Bytes) -> Result<(), InjectError> {
        if self.closed.load(Relaxed) {
            return Err(InjectError::Closed);
        }
        let mut queue = lock(&self.queue);
        if queue.len() >= self.cap {
            return Err(InjectError::Full);
        }
        queue.push_back(chunk);
        drop(queue);
        self.ready.notify_one();
        Ok(())
    }

    /// Says the pump has ended: later chunks are refused, waiting ones dropped.
    pub fn close(&self) {
        self.closed.store(true, Relaxed);
        lock(&self.queue).clear();
    }

    /// The next chunk, once there is one. Cancel-safe: a chunk is taken only when returned.
    async fn next(&self) -> Bytes {
        loop {
            if let Some(chunk) = lock(&self.queue).pop_front() {
                return chunk;
            }
            self.ready.notified().await;
        }
    }
}

impl Pump<'_> {
    /// Closes the open data-event window, if there is one, as a data event. A pump does
    /// it whenever it returns; whoever drops a pump before it returns calls it after.
    pub fn flush(&mut self) {
        if let Some(merged) = self.tap.take() {
            self.events.data(self.flow, merged);
        }
    }

    /// Once the stream is over: tells of the chunk still held, if one is.
    pub fn unsent(&mut self) {
        if let Some(chunk) = self.held.take() {
            self.events.unsent(self.flow, &chunk);
        }
    }
}

/// Carries bytes from `from` to `to` until `from` sends FIN (passed on to `to` as a FIN)
/// or either fails. Cancel-safe between chunks: dropping it loses no byte it counted.
pub async fn pump(p: &mut Pump<'_>, from: &TcpStream, to: &TcpStream) -> PumpEnd {
    // The window's buffer, while bytes move; the pipe, once a flood needs one.
    let mut buf = Vec::new();
    let (mut pipe, mut no_pipe) = (None, false);
    loop {
        // Wait for bytes (or a chunk to inject), closing the data-event window when due.
        // A disabled branch's future is made but never polled: no timer is registered.
        let deadline = p.tap.deadline();
        let ready = tokio::select! {
            r = from.readable(), if p.stages.has_room() => Wake::Readable(r),
            _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                Wake::Timer
            }
            Some(chunk) = recv(p.inject), if p.held.is_none() => Wake::Inject(chunk),
            () = p.stages.wait(), if p.stages.timed() => Wake::Stages,
        };
        let ready = match ready {
            Wake::Readable(r) => Some(r),
            Wake::Timer => None,
            Wake::Stages => {
                if let Err(end) = p.stages.release(to, p.write_counters).await {
                    p.flush();
                    return end;
                }
                if let Err(end) = inject_held(p, to).await {
                    return end;
                }
                continue;
            }
            // Inside one of the stream's messages, or a fault still holding some of its
            // bytes: they go first.
            Wake::Inject(chunk) if !p.events.at_boundary(p.flow) || p.stages.holding() => {
                p.held = Some(chunk);
                continue;
            }
            Wake::Inject(chunk) => {
                if let Err(end) = inject(p, to, chunk).await {
                    return end;
                }
                continue;
            }
        };
        match ready {
            None => {
                p.flush();
                continue;
            }
            Some(Err(e)) => {
                p.flush();
                return PumpEnd::ReadFailed(e);
            }
            Some(Ok(())) => {}
        }
        // Bytes are moving: carry windows until the socket has no more.
        loop {
            // Once the open data-event window has its capture, no stage runs and nobody
            // reads the bytes as they pass (an `http` proxy does), the kernel moves them;
            // otherwise they pass through `buf`.
            let kernel = p.stages.is_empty() && p.tap.full() && !p.events.reads();
            if kernel && pipe.is_none() && !no_pipe {
                pipe = Pipe::new(WINDOW).ok();
                // Out of file descriptors, say: copying still works.
                no_pipe = pipe.is_none();
            }
            let step = match &pipe {
                Some(pipe) if kernel => spliced(p, pipe, from, to).await,
                _ => copied(p, &mut buf, from, to).await,
            };
            match step {
                Step::Moved => {}
                Step::Drained => break,
                Step::Ended(end) => return end,
            }
            if let Err(end) = inject_held(p, to).await {
                return end;
            }
            if !p.stages.has_room() {
                break; // a fault holds its most: read again once it wrote some
            }
            // Under a flood the timer never gets its turn.
            if p.tap.due(Instant::now()) {
                p.flush();
            }
        }
        // Idle again: the buffer goes (an idle stream holds none); the pipe, made for a
        // flood, stays for the next.
        buf = Vec::new();
    }
}

/// What one window's read and write came to.
enum Step {
    /// Bytes were read and written.
    Moved,
    /// The reading side has no more for now.
    Drained,
    /// The pump is over.
    Ended(PumpEnd),
}

/// One window through `buf`: read, tapped (counted and captured), through the stages,
/// written.
async fn copied(p: &mut Pump<'_>, buf: &mut Vec<u8>, from: &TcpStream, to: &TcpStream) -> Step {
    buf.clear();
    buf.reserve_exact(BUFFER);
    match from.try_read_buf(buf) {
        Ok(0) => return Step::Ended(fin(p, to).await),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Drained,
        Err(e) => {
            p.flush();
            return Step::Ended(PumpEnd::ReadFailed(e));
        }
    }
    let now = Instant::now();
    p.tap.read(now, buf, p.read_counters);
    p.events.read(p.flow, buf, now);
    if p.stages.is_empty() {
        let (written, result) = write_all(to, buf).await;
        return wrote(p, written, result);
    }
    // The stages write what is due (a fault may hold it), counting every byte.
    let chunk = Bytes::copy_from_slice(buf);
    match p.stages.carry(p.flow, chunk, to, p.write_counters).await {
        Ok(()) => Step::Moved,
        Err(end) => {
            p.flush();
            Step::Ended(end)
        }
    }
}

/// One window through `pipe`, in the kernel: read, counted (not captured: the window's
/// capture is full), written.
async fn spliced(p: &mut Pump<'_>, pipe: &Pipe, from: &TcpStream, to: &TcpStream) -> Step {
    let n = match pipe.fill(from, WINDOW) {
        Ok(0) => return Step::Ended(fin(p, to).await),
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Drained,
        Err(e) => {
            p.flush();
            return Step::Ended(PumpEnd::ReadFailed(e));
        }
    };
    p.tap.count(Instant::now(), n, p.read_counters);
    let (written, result) = drain_all(pipe, to, n).await;
    wrote(p, written, result)
}

/// Counts what was written (every byte, also those of a window cut short by an error).
fn wrote(p: &mut Pump<'_>, written: usize, result: io::Result<()>) -> Step {
    for c in p.write_counters {
        add(c, written as u64);
    }
    match result {
        Ok(()) => Step::Moved,
        Err(e) => {
            p.flush();
            Step::Ended(PumpEnd::WriteFailed(e))
        }
    }
}

/// The reading side sent FIN: passed on, once the stages have written what they hold
/// (and a slow_close has waited).
async fn fin(p: &mut Pump<'_>, to: &TcpStream) -> PumpEnd {
    p.flush();
    if let Err(end) = p.stages.finish(to, p.write_counters).await {
        return end;
    }
    let _ = SockRef::from(to).shutdown(Shutdown::Write);
    p.events.half_close(p.flow);
    PumpEnd::Fin
}

/// Writes the chunk from elsewhere that waited, if there is one and the stream is now
/// between two messages with none of its bytes held by a fault.
async fn inject_held(p: &mut Pump<'_>, to: &TcpStream) -> Result<(), PumpEnd> {
    if p.held.is_some()
        && p.events.at_boundary(p.flow)
        && !p.stages.holding()
        && let Some(chunk) = p.held.take()
    {
        return inject(p, to, chunk).await;
    }
    Ok(())
}

/// Writes a chunk from elsewhere (counted, and told once handed on). It takes the path
/// the stream's own bytes take after the tap: the stages and the fault line, so a latency
/// delays it, a timeout drops it and a slicer cuts it as they would the peer's bytes (the
/// page's bytes cross the same network).
async fn inject(p: &mut Pump<'_>, to: &TcpStream, chunk: Bytes) -> Result<(), PumpEnd> {
    let told = chunk.clone();
    let carried = if p.stages.is_empty() {
        let (written, result) = write_all(to, &chunk).await;
        for c in p.write_counters {
            add(c, written as u64);
        }
        result.map_err(PumpEnd::WriteFailed)
    } else {
        p.stages.carry(p.flow, chunk, to, p.write_counters).await
    };
    if let Err(end) = carried {
        p.flush();
        return Err(end);
    }
    p.events.sent(p.flow, &told);
    Ok(())
}

/// What a pump woke up for.
enum Wake {
    /// The reading side has bytes (or an error).
    Readable(io::Result<()>),
    /// The data-event window is due.
    Timer,
    /// A chunk to inject.
    Inject(Bytes),
    /// A stage (a fault) has something due, or its faults changed.
    Stages,
}

/// The next injected chunk; never, when there is no injection queue.
async fn recv(inject: Option<&Inject>) -> Option<Bytes> {
    match inject {
        Some(queue) => Some(queue.next().await),
        None => std::future::pending().await,
    }
}

/// Writes all of `bytes`, waiting for room as long as it takes (the back-pressure). Says
/// how many were written, all of them or those before an error.
pub(super) async fn write_all(to: &TcpStream, bytes: &[u8]) -> (usize, io::Result<()>) {
    let mut done = 0;
    while done < bytes.len() {
        if let Err(e) = to.writable().await {
            return (done, Err(e));
        }
        match to.try_write(&bytes[done..]) {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Socket, Type};
    use std::time::Duration;
    use tokio::net::TcpListener;

    /// Collects a pump's data events.
    #[derive(Default)]
    struct Seen(std::sync::Mutex<Vec<Merged>>);

    impl Events for Seen {
        fn data(&self, _flow: Flow, merged: Merged) {
            self.0.lock().unwrap().push(merged);
        }
        fn half_close(&self, _flow: Flow) {}
        fn sent(&self, _flow: Flow, _bytes: &[u8]) {}
    }

    /// A connected pair of loopback sockets.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap());
        let (a, b) = tokio::join!(a, listener.accept());
        (a.unwrap(), b.unwrap().0)
    }

    #[tokio::test]
    async fn a_flood_arrives_whole_counted_and_captured_once_per_window() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // sender → [from | pump | to] → receiver; 8 MiB of bytes that are never alike.
        let ((mut sender, from), (to, mut receiver)) = (pair().await, pair().await);
        let bytes: Vec<u8> = (0..8u32 << 20).map(|i| (i ^ (i >> 9)) as u8).collect();
        let sending = bytes.clone();
        let send = tokio::spawn(async move {
            sender.write_all(&sending).await.unwrap();
            sender.shutdown().await.unwrap();
        });
        let receive = tokio::spawn(async move {
            let mut got = Vec::new();
            receiver.read_to_end(&mut got).await.unwrap();
            got
        });
        let (read, written, seen) = (AtomicU64::new(0), AtomicU64::new(0), Seen::default());
        let mut p = Pump {
            flow: Flow::Up,
            tap: Tap::new(100),
            stages: Stages::default(),
            read_counters: &[&read],
            write_counters: &[&written],
            events: &seen,
            inject: None,
            held: None,
        };
        assert!(matches!(pump(&mut p, &from, &to).await, PumpEnd::Fin));
        drop(to);
        send.await.unwrap();
        assert!(receive.await.unwrap() == bytes, "the bytes arrived changed");
        let n = bytes.len() as u64;
        assert_eq!((read.into_inner(), written.into_inner()), (n, n));
        // Every window's event counts its bytes; the first captures the first bytes.
        let events = seen.0.into_inner().unwrap();
        assert_eq!(events.iter().map(|m| m.size).sum::<u64>(), n);
        assert_eq!(events[0].head, bytes[..100]);
        for m in &events {
            assert_eq!(m.head.len() as u64, m.size.min(100));
            assert_eq!(m.payload.cut, m.size - m.head.len() as u64);
        }
    }

    #[tokio::test]
    async fn injected_chunks_come_in_order_bounded_and_not_after_the_close() {
        let q = Inject::new(2);
        assert_eq!(q.push(Bytes::from_static(b"a")), Ok(()));
        assert_eq!(q.push(Bytes::from_static(b"b")), Ok(()));
        assert_eq!(q.push(Bytes::from_static(b"c")), Err(InjectError::Full));
        assert_eq!(q.next().await, "a");
        assert_eq!(q.next().await, "b");
        // Waiting for one: a push wakes it.
        let (got, ()) = tokio::join!(q.next(), async {
            tokio::task::yield_now().await;
            q.push(Bytes::from_static(b"d")).unwrap();
        });
        assert_eq!(got, "d");
        q.push(Bytes::from_static(b"e")).unwrap();
        q.close();
        assert_eq!(q.push(Bytes::from_static(b"f")), Err(InjectError::Closed));
        let none = tokio::time::timeout(Duration::from_millis(50), q.next()).await;
        assert!(none.is_err(), "a chunk waiting at the close was dropped");
    }

    #[tokio::test]
    async fn a_write_cut_short_says_how_much_went_out() {
        // A peer with small buffers that never reads: 1 MiB cannot go out at once.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket.set_send_buffer_size(4096).unwrap();
        socket.connect(&addr.into()).unwrap();
        socket.set_nonblocking(true).unwrap();
        let to = TcpStream::from_std(socket.into()).unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        SockRef::from(&peer).set_recv_buffer_size(4096).unwrap();
        let bytes = vec![b'x'; 1 << 20];
        let writing = tokio::spawn(async move { write_all(&to, &bytes).await });
        // Some of it has arrived: it was written.
        let mut arrived = [0u8; 1];
        let peeked = tokio::time::timeout(Duration::from_secs(10), peer.peek(&mut arrived))
            .await
            .expect("bytes arrive")
            .unwrap();
        assert_eq!(peeked, 1);
        // The peer resets: the rest cannot be written.
        SockRef::from(&peer)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(peer);
        let (written, result) = tokio::time::timeout(Duration::from_secs(10), writing)
            .await
            .expect("the write ends")
            .unwrap();
        assert!(result.is_err(), "1 MiB went into a peer that reset");
        assert!(
            written > 0 && written < 1 << 20,
            "{written} bytes written before the reset"
        );
    }
}
