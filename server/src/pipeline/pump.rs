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
}

impl Pump<'_> {
    /// Closes the open data-event window, if there is one, as a data event. A pump does
    /// it whenever it returns; whoever drops a pump before it returns calls it after.
    pub fn flush(&mut self) {
        if let Some(merged) = self.tap.take() {
            self.events.data(self.flow, merged);
        }
    }
}

/// Carries bytes from `from` to `to` until `from` sends FIN (passed on to `to` as a FIN)
/// or either fails. Cancel-safe between chunks: dropping it loses no byte it counted.
pub async fn pump(p: &mut Pump<'_>, from: &TcpStream, to: &TcpStream) -> PumpEnd {
    loop {
        // Wait for bytes, closing the data-event window when it is due.
        let ready = match p.tap.deadline() {
            Some(at) => tokio::select! {
                r = from.readable() => Some(r),
                _ = sleep_until(at) => None,
            },
            None => Some(from.readable().await),
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
