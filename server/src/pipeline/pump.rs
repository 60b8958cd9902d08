//! One direction of a relayed TCP stream: read from one socket, tap, stages, write to the
//! other, until the reading side sends FIN or either side fails.
//!
//! The window is the bound: a pump reads at most [`WINDOW`] bytes, then writes them all
//! before it reads again. A reader slower than the sender thus stops the pump's reads,
//! the kernel's receive buffer on the fast side fills, and TCP's own flow control slows
//! the sender: memory stays at one window per direction whatever the transfer's size.
//! The window's buffer exists only while bytes are moving: an idle stream holds none
//! (1,000 idle relayed connections cost no buffers at all).

use std::io;
use std::net::Shutdown;
use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use socket2::SockRef;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::merge::Merged;
use super::{Flow, Stages, Tap};
use crate::hub::counters::add;

/// Bytes read at most before they are written (per direction, per stream).
pub const WINDOW: usize = 64 * 1024;

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
    pub inject: Option<mpsc::Receiver<Bytes>>,
    /// A chunk from elsewhere that came while the stream was inside one of its messages:
    /// it goes out once the stream's bytes reach the message's end.
    pub held: Option<Bytes>,
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
    loop {
        // Wait for bytes (or a chunk to inject), closing the data-event window when due.
        // A disabled branch's future is made but never polled: no timer is registered.
        let deadline = p.tap.deadline();
        let ready = tokio::select! {
            r = from.readable(), if p.stages.has_room() => Wake::Readable(r),
            _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                Wake::Timer
            }
            Some(chunk) = recv(&mut p.inject), if p.held.is_none() => Wake::Inject(chunk),
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
            // A fault still holding some of the stream's bytes: they go first.
            Wake::Inject(chunk) if !p.events.at_boundary(p.flow) || p.stages.holding() => {
                p.held = Some(chunk);
                continue;
            }
            Wake::Inject(chunk) => {
                if let Err(end) = inject(p, to, &chunk).await {
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
        // Bytes are moving: take a window's buffer until the socket has no more.
        let mut buf = Vec::with_capacity(WINDOW);
        loop {
            buf.clear();
            match from.try_read_buf(&mut buf) {
                Ok(0) => {
                    p.flush();
                    if let Err(end) = p.stages.finish(to, p.write_counters).await {
                        return end;
                    }
                    let _ = SockRef::from(to).shutdown(Shutdown::Write);
                    p.events.half_close(p.flow);
                    return PumpEnd::Fin;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    p.flush();
                    return PumpEnd::ReadFailed(e);
                }
            }
            let now = Instant::now();
            p.tap.read(now, &buf, p.read_counters);
            p.events.read(p.flow, &buf, now);
            // Every byte written is counted, also those of a chunk cut short by an error.
            let result = if p.stages.is_empty() {
                let (written, result) = write_all(to, &buf).await;
                for c in p.write_counters {
                    add(c, written as u64);
                }
                result.map_err(PumpEnd::WriteFailed)
            } else {
                let chunk = Bytes::copy_from_slice(&buf);
                p.stages.carry(p.flow, chunk, to, p.write_counters).await
            };
            if let Err(end) = result {
                p.flush();
                return end;
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
    }
}

/// Writes the chunk from elsewhere that waited, if there is one and the stream is now
/// between two messages with none of its bytes held by a fault.
async fn inject_held(p: &mut Pump<'_>, to: &TcpStream) -> Result<(), PumpEnd> {
    if p.held.is_some()
        && p.events.at_boundary(p.flow)
        && !p.stages.holding()
        && let Some(chunk) = p.held.take()
    {
        return inject(p, to, &chunk).await;
    }
    Ok(())
}

/// Writes a chunk from elsewhere (counted, and told once written).
async fn inject(p: &mut Pump<'_>, to: &TcpStream, chunk: &[u8]) -> Result<(), PumpEnd> {
    let (written, result) = write_all(to, chunk).await;
    for c in p.write_counters {
        add(c, written as u64);
    }
    if let Err(e) = result {
        p.flush();
        return Err(PumpEnd::WriteFailed(e));
    }
    p.events.sent(p.flow, chunk);
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

/// The next injected chunk; never, when there is no injection channel (or it closed).
async fn recv(inject: &mut Option<mpsc::Receiver<Bytes>>) -> Option<Bytes> {
    match inject {
        Some(rx) => match rx.recv().await {
            Some(b) => Some(b),
            None => {
                *inject = None;
                std::future::pending().await
            }
        },
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
