//! One upgraded connection as a WebSocket, split into a [`WsSink`] and a [`WsStream`] of
//! axum's [`Message`] (what [`pump`](super::pump) drives).
//!
//! Memory is the point: an idle client holds no heap buffer here. Reads go through a
//! buffer on the stack; only bytes of the next frame that arrived with the end of a
//! message are kept (rare: a client that pipelines). A frame is written as its header
//! plus the message's own `Bytes` in one vectored write: a hub frame shared by every
//! client is never copied per client, and nothing stays allocated once it is out.
//!
//! A message the pump compressed ([`Outgoing::Deflated`]) goes out the same way, with
//! RSV1 set in its header.
//!
//! Pings are answered with a pong, and a client's close frame is echoed, by the stream
//! half as it reads them (after any frame the sink has half written).
//!
//! Closing the sink is the lab's end of the closing handshake: what is queued goes out
//! (the close frame), then the lab half-closes (FIN) and reads and drops what the client
//! still sends until the client closes too, at most [`LINGER_BYTES`] (the caller bounds
//! the time, with [`LINGER`]). Dropping a socket with unread bytes makes the kernel send
//! a reset, which destroys the close frame in the client's buffers before it reads it:
//! a client still writing a message (one the lab refused as too big, say) would see
//! only "connection reset". The HTTP service's refusals linger the same way.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::ws::Message;
use bytes::Bytes;
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use wirelab_shared::Direction;

use crate::hub::lock;
use crate::ws::frame::{
    self, OP_BINARY, OP_CLOSE, OP_PONG, OP_TEXT, Outgoing, RSV1, Reader, Seen, WsError,
};

/// Bytes read from the socket at once (on the stack).
const READ_CHUNK: usize = 4096;
/// How long the lab reads what a client still sends after the lab's close frame (the
/// bound callers put on closing the sink).
pub const LINGER: Duration = Duration::from_secs(2);
/// Bytes read and dropped at most after the close frame: enough for a client that had
/// started writing a 100 MB message to finish it and read the answer (dropping them costs
/// about 40 ms on loopback).
pub const LINGER_BYTES: u64 = 128 << 20;
/// Bytes read at once while lingering (on the stack).
const LINGER_CHUNK: usize = 16 * 1024;

/// The writing half: `Sink<Outgoing>`.
pub struct WsSink<IO> {
    conn: Arc<Mutex<Conn<IO>>>,
}

/// The reading half: `Stream<Item = Result<Message, WsError>>`.
pub struct WsStream<IO> {
    conn: Arc<Mutex<Conn<IO>>>,
}

/// Told every frame either way, as it is read (whole) or queued to be written.
pub type Tap = Box<dyn FnMut(Direction, Seen<'_>) + Send>;

/// How a socket is made.
#[derive(Default)]
pub struct Options {
    /// The largest message accepted (inflated), bytes.
    pub max_message: usize,
    /// permessage-deflate was agreed.
    pub deflate: bool,
    /// Bytes the client sent after its upgrade request, read with it.
    pub read_ahead: Vec<u8>,
    /// Sees every frame (the WebSocket service shows each one).
    pub tap: Option<Tap>,
}

/// Makes `io` (already upgraded) a server-side WebSocket that accepts messages of up to
/// `max_message` bytes; `deflate`: permessage-deflate was agreed.
pub fn split<IO>(io: IO, max_message: usize, deflate: bool) -> (WsSink<IO>, WsStream<IO>)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    split_with(
        io,
        Options {
            max_message,
            deflate,
            ..Options::default()
        },
    )
}

/// [`split`], with every option.
pub fn split_with<IO>(io: IO, options: Options) -> (WsSink<IO>, WsStream<IO>)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let conn = Arc::new(Mutex::new(Conn {
        io,
        reader: Reader::new(options.max_message, options.deflate),
        leftover: options.read_ahead,
        tap: options.tap,
        out: None,
        control: None,
        close_sent: false,
        read_done: false,
        shut: false,
        lingered: 0,
    }));
    (WsSink { conn: conn.clone() }, WsStream { conn })
}

/// A frame being written: its header, then its payload.
struct Out {
    head: [u8; 10],
    head_len: u8,
    payload: Bytes,
    /// Bytes of header and payload written so far.
    at: usize,
}

impl Out {
    fn new(opcode: u8, payload: Bytes) -> Out {
        let (head, head_len) = frame::header(opcode, payload.len());
        Out {
            head,
            head_len,
            payload,
            at: 0,
        }
    }
}

struct Conn<IO> {
    io: IO,
    reader: Reader,
    /// Bytes read past the end of the last message, parsed before reading again.
    leftover: Vec<u8>,
    /// Sees every frame, when the service shows them.
    tap: Option<Tap>,
    /// The frame being written, if it is not all out yet.
    out: Option<Out>,
    /// A pong or the close echo, written once `out` is done.
    control: Option<(u8, Bytes)>,
    close_sent: bool,
    read_done: bool,
    /// The lab has half-closed (FIN sent).
    shut: bool,
    /// Bytes read and dropped since the half-close.
    lingered: u64,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Conn<IO> {
    /// Writes what is pending: the current frame, then a pong or close echo.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Some(out) = &mut self.out {
                let head_len = out.head_len as usize;
                let n = if out.at < head_len {
                    let bufs = [
                        IoSlice::new(&out.head[out.at..head_len]),
                        IoSlice::new(&out.payload),
                    ];
                    ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &bufs))?
                } else {
                    ready!(
                        Pin::new(&mut self.io).poll_write(cx, &out.payload[out.at - head_len..])
                    )?
                };
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                out.at += n;
                if out.at >= head_len + out.payload.len() {
                    self.out = None;
                }
                continue;
            }
            match self.control.take() {
                Some((opcode, payload)) => {
                    self.tap_out(opcode, &payload);
                    self.out = Some(Out::new(opcode, payload));
                }
                None => return Poll::Ready(Ok(())),
            }
        }
    }

    /// The closing handshake's end: writes what is queued, half-closes, then reads and
    /// drops what the client sends until it closes too (or [`LINGER_BYTES`]).
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        if !self.shut {
            ready!(Pin::new(&mut self.io).poll_shutdown(cx))?;
            self.shut = true;
        }
        while self.lingered < LINGER_BYTES {
            let mut buf = [0u8; LINGER_CHUNK];
            let mut rb = ReadBuf::new(&mut buf);
            match ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb)) {
                Ok(()) if rb.filled().is_empty() => break,
                Ok(()) => self.lingered += rb.filled().len() as u64,
                Err(_) => break, // the client is gone: nothing left to protect
            }
        }
        self.leftover = Vec::new();
        Poll::Ready(Ok(()))
    }

    /// Queues a frame; `poll_drain` writes it.
    fn queue(&mut self, msg: Outgoing) -> Result<(), WsError> {
        if self.close_sent {
            return Err(WsError::Closed);
        }
        let (opcode, payload) = match msg {
            Outgoing::Plain(msg) => frame::encode(msg)?,
            Outgoing::Deflated(payload) => (RSV1 | OP_TEXT, payload),
            Outgoing::DeflatedBinary(payload) => (RSV1 | OP_BINARY, payload),
        };
        if opcode == OP_CLOSE {
            self.close_sent = true;
            self.control = None;
        }
        debug_assert!(self.out.is_none(), "poll_ready drained the last frame");
        self.tap_out(opcode, &payload);
        self.out = Some(Out::new(opcode, payload));
        Ok(())
    }

    /// Tells the tap of a frame the lab writes (`opcode` with its RSV1 bit).
    fn tap_out(&mut self, opcode: u8, payload: &[u8]) {
        if let Some(tap) = &mut self.tap {
            let seen = Seen {
                opcode: opcode & 0x0f,
                fin: true,
                rsv1: opcode & RSV1 != 0,
                payload,
            };
            tap(Direction::Out, seen);
        }
    }

    /// Reads until a message is complete, the client is gone, or nothing is to be read.
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, WsError>>> {
        if self.read_done {
            return Poll::Ready(None);
        }
        // A pong or close echo still waiting goes out as we read; a socket that takes
        // nothing now is tried again on the next read.
        if (self.out.is_some() || self.control.is_some())
            && let Poll::Ready(Err(e)) = self.poll_drain(cx)
        {
            self.read_done = true;
            return Poll::Ready(Some(Err(e.into())));
        }
        loop {
            let tap = &mut self.tap;
            let mut tap_in = |seen: Seen<'_>| {
                if let Some(tap) = tap {
                    tap(Direction::In, seen);
                }
            };
            let parsed = if self.leftover.is_empty() {
                let mut buf = [0u8; READ_CHUNK];
                let mut rb = ReadBuf::new(&mut buf);
                if let Err(e) = ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb)) {
                    self.read_done = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
                let data = rb.filled();
                if data.is_empty() {
                    self.read_done = true;
                    return Poll::Ready(None);
                }
                self.reader
                    .feed_tapped(data, &mut tap_in)
                    .map(|(used, msg)| {
                        if used < data.len() {
                            self.leftover.extend_from_slice(&data[used..]);
                        }
                        msg
                    })
            } else {
                self.reader
                    .feed_tapped(&self.leftover, &mut tap_in)
                    .map(|(used, msg)| {
                        self.leftover.drain(..used);
                        if self.leftover.is_empty() {
                            self.leftover = Vec::new();
                        }
                        msg
                    })
            };
            match parsed {
                Err(e) => {
                    self.read_done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Ok(None) => continue,
                Ok(Some(msg)) => {
                    self.on_control(&msg, cx);
                    return Poll::Ready(Some(Ok(msg)));
                }
            }
        }
    }

    /// Answers a ping, echoes a close.
    fn on_control(&mut self, msg: &Message, cx: &mut Context<'_>) {
        match msg {
            Message::Ping(p) if !self.close_sent => self.control = Some((OP_PONG, p.clone())),
            Message::Close(f) => {
                self.read_done = true;
                if !self.close_sent {
                    self.close_sent = true;
                    let payload = f.as_ref().map_or_else(Bytes::new, |f| {
                        Bytes::copy_from_slice(&f.code.to_be_bytes())
                    });
                    self.control = Some((OP_CLOSE, payload));
                }
            }
            _ => return,
        }
        // Written now if the socket takes it; else on the next read or write.
        let _ = self.poll_drain(cx);
    }
}

impl<IO> WsStream<IO> {
    /// Whether the last message read came compressed.
    pub fn last_compressed(&self) -> bool {
        lock(&self.conn).reader.last_compressed()
    }
}

impl<IO> WsSink<IO> {
    /// Runs `f` on the socket (for socket options: `SO_LINGER` before a reset).
    pub fn with_io<R>(&self, f: impl FnOnce(&IO) -> R) -> R {
        f(&lock(&self.conn).io)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Stream for WsStream<IO> {
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        lock(&self.conn).poll_message(cx)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Sink<Outgoing> for WsSink<IO> {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        lock(&self.conn).poll_drain(cx).map_err(WsError::Io)
    }

    fn start_send(self: Pin<&mut Self>, msg: Outgoing) -> Result<(), WsError> {
        lock(&self.conn).queue(msg)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let mut conn = lock(&self.conn);
        ready!(conn.poll_drain(cx))?;
        Pin::new(&mut conn.io).poll_flush(cx).map_err(WsError::Io)
    }

    /// Writes what is queued, half-closes and drains (see the module docs); bound it
    /// with [`LINGER`].
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        lock(&self.conn).poll_linger(cx).map_err(WsError::Io)
    }
}
