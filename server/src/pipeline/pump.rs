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
}

impl Pump<'_> {
    fn flush(&mut self) {
        if let Some(merged) = self.tap.take() {
            self.events.data(self.flow, merged);
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
            r = from.readable() => Wake::Readable(r),
            _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                Wake::Timer
            }
            Some(chunk) = recv(&mut p.inject) => Wake::Inject(chunk),
        };
        let ready = match ready {
            Wake::Readable(r) => Some(r),
            Wake::Timer => None,
            Wake::Inject(chunk) => {
                if let Err(e) = write_all(to, &chunk).await {
                    p.flush();
                    return PumpEnd::WriteFailed(e);
                }
                for c in p.write_counters {
                    add(c, chunk.len() as u64);
                }
                p.events.sent(p.flow, &chunk);
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
            let written = if p.stages.is_empty() {
                write_all(to, &buf).await.map(|()| buf.len())
            } else {
                match p.stages.run(p.flow, Bytes::copy_from_slice(&buf)) {
                    Some(chunk) => write_all(to, &chunk).await.map(|()| chunk.len()),
                    None => Ok(0),
                }
            };
            match written {
                Ok(n) => {
                    for c in p.write_counters {
                        add(c, n as u64);
                    }
                }
                Err(e) => {
                    p.flush();
                    return PumpEnd::WriteFailed(e);
                }
            }
            // Under a flood the timer never gets its turn.
            if p.tap.due(Instant::now()) {
                p.flush();
            }
        }
    }
}

/// What a pump woke up for.
enum Wake {
    /// The reading side has bytes (or an error).
    Readable(io::Result<()>),
    /// The data-event window is due.
    Timer,
    /// A chunk to inject.
    Inject(Bytes),
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

/// Writes all of `bytes`, waiting for room as long as it takes (the back-pressure).
async fn write_all(to: &TcpStream, bytes: &[u8]) -> io::Result<()> {
    let mut done = 0;
    while done < bytes.len() {
        to.writable().await?;
        match to.try_write(&bytes[done..]) {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
