//! One client's life, from `ws_service_open` to `ws_service_close`: its messages in (by
//! `--ws-mode`), the queue out (broadcast copies, sends from the page), the page's close
//! and drop, and the closing handshake.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use futures_util::{SinkExt, StreamExt};
use socket2::SockRef;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::{Instant, timeout, timeout_at};
use wirelab_shared::{Direction, EventKind, Payload};

use super::{Client, Out, Request, WsService};
use crate::config::RelayMode;
use crate::hub::{counters::add, now_us};
use crate::ws::deflate;
use crate::ws::frame::{OP_CLOSE, Outgoing, Seen};
use crate::ws::socket::{self, LINGER, Options, WsSink, WsStream};

/// How long the lab's close frame may wait to be written.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Frame events one client may publish at once, and then per second...
pub(super) const FRAME_EVENTS_PER_SEC: u64 = 1000;
/// ...and payload bytes they may capture (as the TCP service's merged reads: 64 KiB
/// every 16 ms at most); frames past either are counted, not shown.
const CAPTURE_PER_SEC: u64 = 4 << 20;

/// The frame events a client may still publish: two token buckets, events and bytes.
struct Budget {
    events: u64,
    bytes: u64,
    /// When tokens were last added.
    at: std::time::Instant,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            events: FRAME_EVENTS_PER_SEC,
            bytes: CAPTURE_PER_SEC,
            at: std::time::Instant::now(),
        }
    }

    /// Takes a frame event capturing `bytes`, if the budget allows.
    fn take(&mut self, bytes: u64) -> bool {
        if self.events == 0 || self.bytes < bytes {
            let ms = self.at.elapsed().as_millis() as u64;
            if ms == 0 {
                return false;
            }
            self.events =
                (self.events + ms * FRAME_EVENTS_PER_SEC / 1000).min(FRAME_EVENTS_PER_SEC);
            self.bytes = (self.bytes + ms * CAPTURE_PER_SEC / 1000).min(CAPTURE_PER_SEC);
            self.at = std::time::Instant::now();
            if self.events == 0 || self.bytes < bytes {
                return false;
            }
        }
        self.events -= 1;
        self.bytes -= bytes;
        true
    }
}

/// How the loop ended.
enum End {
    /// The client closed (its close frame was answered) or vanished.
    Gone {
        code: Option<u16>,
        reason: String,
        detail: String,
    },
    /// The lab closes with this code and reason (`detail`: why).
    Close {
        code: u16,
        reason: String,
        detail: String,
    },
    /// Dropped from the page: RST, no close frame.
    Drop,
}

/// Removes the client from the table when its task ends, even by a panic.
struct Registered<'a>(&'a WsService, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.forget(self.1);
    }
}

/// Serves the upgraded `stream` (`read_ahead`: bytes the client sent after its request)
/// until it ends, then publishes `ws_service_close`.
pub(super) async fn serve(
    service: Arc<WsService>,
    client: Arc<Client>,
    stream: TcpStream,
    read_ahead: Vec<u8>,
    mut rx: mpsc::Receiver<Out>,
    _permit: OwnedSemaphorePermit,
) {
    let _registered = Registered(&service, client.id);
    let (sink, stream) = socket::split_with(
        stream,
        Options {
            max_message: service.max_message,
            deflate: client.deflate.is_some(),
            read_ahead,
            tap: Some(tap(&service, &client)),
        },
    );
    let mut session = Session {
        service: &service,
        client: &client,
        sink,
        stream,
    };
    let end = session.run(&mut rx).await;
    client.closing.store(true, Relaxed);
    rx.close();
    let (code, reason, detail) = session.end(end).await;
    service.hub.publish(EventKind::WsServiceClose {
        client: client.id,
        peer: client.peer.clone(),
        code,
        reason,
        detail,
        duration_us: now_us().saturating_sub(client.since_us),
        bytes_in: client.bytes_in.load(Relaxed),
        bytes_out: client.bytes_out.load(Relaxed),
        frames_not_shown: client.frames_not_shown.load(Relaxed),
    });
}

/// The socket's tap: counts every frame and publishes it as an event, within the
/// client's [`Budget`] (a close frame always).
fn tap(service: &Arc<WsService>, client: &Arc<Client>) -> socket::Tap {
    let (service, client) = (service.clone(), client.clone());
    let mut budget = Budget::new();
    let mut skipped = 0;
    Box::new(move |dir: Direction, seen: Seen<'_>| {
        let size = seen.payload.len() as u64;
        let (frames, bytes) = match dir {
            Direction::In => (&client.frames_in, &client.bytes_in),
            Direction::Out => (&client.frames_out, &client.bytes_out),
        };
        add(frames, 1);
        add(bytes, size);
        let captured = size.min(service.snaplen as u64);
        if seen.opcode != OP_CLOSE && !budget.take(captured) {
            skipped += 1;
            add(&client.frames_not_shown, 1);
            return;
        }
        let (close_code, close_reason) = match seen.payload {
            [a, b, reason @ ..] if seen.opcode == OP_CLOSE => (
                Some(u16::from_be_bytes([*a, *b])),
                Some(String::from_utf8_lossy(reason).into_owned()),
            ),
            _ => (None, None),
        };
        service.hub.publish(EventKind::WsServiceFrame {
            client: client.id,
            peer: client.peer.clone(),
            dir,
            opcode: seen.opcode,
            fin: seen.fin,
            rsv1: seen.rsv1,
            size,
            payload: Payload::capture(seen.payload, service.snaplen),
            close_code,
            close_reason,
            skipped: std::mem::take(&mut skipped),
        });
    })
}

struct Session<'a> {
    service: &'a WsService,
    client: &'a Client,
    sink: WsSink<TcpStream>,
    stream: WsStream<TcpStream>,
}

impl Session<'_> {
    async fn run(&mut self, rx: &mut mpsc::Receiver<Out>) -> End {
        let shutdown = self.service.shutdown.clone();
        loop {
            let result = tokio::select! {
                biased;
                _ = shutdown.cancelled() => Err(shutting_down()),
                _ = self.client.wake.notified() => Err(self.requested()),
                incoming = self.stream.next() => self.on_incoming(incoming).await,
                Some(out) = rx.recv() => {
                    let msg = self.outgoing(out.msg, out.compressed).await;
                    self.write(msg).await
                }
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    async fn on_incoming(
        &mut self,
        incoming: Option<Result<Message, crate::ws::frame::WsError>>,
    ) -> Result<(), End> {
        let msg = match incoming {
            None => {
                return Err(End::Gone {
                    code: None,
                    reason: String::new(),
                    detail: "vanished: the connection ended without a close frame".into(),
                });
            }
            Some(Err(e)) => {
                return Err(match e.close_code() {
                    Some(code) => End::Close {
                        code,
                        reason: e.to_string(),
                        detail: "the lab failed the connection".into(),
                    },
                    None => End::Gone {
                        code: None,
                        reason: String::new(),
                        detail: e.to_string(),
                    },
                });
            }
            Some(Ok(msg)) => msg,
        };
        match msg {
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (Some(f.code), f.reason.to_string()))
                    .unwrap_or_default();
                Err(End::Gone {
                    code,
                    reason,
                    detail: "the client closed".into(),
                })
            }
            Message::Ping(_) | Message::Pong(_) => Ok(()), // pings are answered by the socket
            msg => {
                let compressed = self.stream.last_compressed();
                match self.service.mode {
                    RelayMode::Echo => {
                        let out = self.outgoing(msg, compressed).await;
                        self.write(out).await
                    }
                    RelayMode::Broadcast => {
                        self.service.relay(self.client.id, &msg, compressed);
                        Ok(())
                    }
                    RelayMode::Sink => Ok(()),
                }
            }
        }
    }

    /// A message as this client gets it: compressed (with the window it asked for) when
    /// it agreed and the message came compressed.
    async fn outgoing(&self, msg: Message, compressed: bool) -> Outgoing {
        let Some(agreed) = self.client.deflate.filter(|_| compressed) else {
            return Outgoing::Plain(msg);
        };
        let (binary, data) = match &msg {
            Message::Text(t) => (false, bytes::Bytes::from(t.clone())),
            Message::Binary(b) => (true, b.clone()),
            _ => return Outgoing::Plain(msg),
        };
        let bits = agreed.window_bits();
        let packed = if data.len() < deflate::INLINE_UP_TO {
            deflate::compress_window(&data, bits)
        } else {
            // Up to 16 MiB: tens of milliseconds, off the runtime's workers.
            match tokio::task::spawn_blocking(move || deflate::compress_window(&data, bits)).await {
                Ok(packed) => packed,
                Err(_) => return Outgoing::Plain(msg),
            }
        };
        match binary {
            true => Outgoing::DeflatedBinary(packed),
            false => Outgoing::Deflated(packed),
        }
    }

    /// Writes a message; the page's close or drop, and the lab's shutdown, cut it short.
    async fn write(&mut self, out: Outgoing) -> Result<(), End> {
        let shutdown = self.service.shutdown.clone();
        tokio::select! {
            r = self.sink.send(out) => r.map_err(|e| End::Gone {
                code: None,
                reason: String::new(),
                detail: format!("write failed: {e}"),
            }),
            _ = self.client.wake.notified() => Err(self.requested()),
            _ = shutdown.cancelled() => Err(shutting_down()),
        }
    }

    /// What the page asked for.
    fn requested(&self) -> End {
        match crate::hub::lock(&self.client.request).clone() {
            Some(Request::Drop) | None => End::Drop,
            Some(Request::Close(code, reason)) => End::Close {
                code,
                reason,
                detail: "closed from the page".into(),
            },
        }
    }

    /// The closing handshake: the code, reason and detail `ws_service_close` shows.
    async fn end(mut self, end: End) -> (Option<u16>, String, String) {
        match end {
            End::Gone {
                code,
                reason,
                detail,
            } => {
                if code.is_some() || detail == "the client closed" {
                    // Its close frame was answered: that answer goes out, then FIN.
                    let _ = timeout(LINGER, self.sink.close()).await;
                }
                (code, reason, detail)
            }
            End::Drop => {
                // SO_LINGER 0: dropping the socket sends RST.
                let _ = self
                    .sink
                    .with_io(|s| SockRef::from(s).set_linger(Some(Duration::ZERO)));
                let detail = "dropped from the page (RST, no close frame)".to_owned();
                (None, String::new(), detail)
            }
            End::Close {
                code,
                reason,
                mut detail,
            } => {
                let frame = CloseFrame {
                    code,
                    reason: reason.clone().into(),
                };
                let sent = timeout(
                    CLOSE_WAIT,
                    self.sink.send(Message::Close(Some(frame)).into()),
                )
                .await;
                if !matches!(sent, Ok(Ok(()))) {
                    detail.push_str("; the close frame could not be written");
                    return (Some(code), reason, detail);
                }
                // The client's answer (its frames still show), unless the connection
                // was failed (nothing more is read then), then FIN and the drain.
                let deadline = Instant::now() + LINGER;
                while let Ok(Some(Ok(msg))) = timeout_at(deadline, self.stream.next()).await {
                    if let Message::Close(answer) = msg {
                        let answer = answer.map_or("no code".into(), |f| f.code.to_string());
                        detail.push_str(&format!("; the client answered {answer}"));
                        break;
                    }
                }
                let _ = timeout_at(deadline, self.sink.close()).await;
                (Some(code), reason, detail)
            }
        }
    }
}

fn shutting_down() -> End {
    End::Close {
        code: 1001,
        reason: "the lab is shutting down".into(),
        detail: "the lab stopped".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_event_budget_allows_a_burst_then_a_rate() {
        let mut b = Budget::new();
        let burst = (0..5000).filter(|_| b.take(10)).count();
        assert_eq!(burst as u64, FRAME_EVENTS_PER_SEC);
        std::thread::sleep(Duration::from_millis(100));
        let later = (0..5000).filter(|_| b.take(10)).count() as u64;
        // 100 ms earn about 100 (the sleep may run long on a busy machine).
        assert!(
            (FRAME_EVENTS_PER_SEC / 10..FRAME_EVENTS_PER_SEC).contains(&later),
            "{later}"
        );
        // Bytes: 4 MiB a second, so 64 frames of 64 KiB, then none.
        let mut b = Budget::new();
        let big = (0..100).filter(|_| b.take(64 << 10)).count();
        assert_eq!(big, 64);
    }
}
