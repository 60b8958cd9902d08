//! One WebSocket client's loop: `hello`, `snapshot`, then the hub's frames out and
//! commands in, until either side goes away.
//!
//! Generic over the socket's Sink and Stream halves, so tests drive it with channels.
//! Per-client work on the hot path is a queue pop and a write of bytes the hub already
//! serialized; only a client with a subscription filter ever re-serializes.
//!
//! Compression (permessage-deflate, when the client agreed to it): the hub's frames are
//! compressed once for every client that takes them compressed; see
//! [`deflate`](super::deflate) for when that is.
//!
//! No silent holes: the pump tracks the `seq` it expects next; when the hub's queue
//! overran this client, the next batch starts later, and the client is told
//! `lagged { missed }` before it. A client that does not read for `--ws-stuck-secs` is
//! closed with [`CLOSE_TOO_SLOW`]; one silent for `--ws-idle-secs` with [`CLOSE_IDLE`].

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, timeout};
use wirelab_shared::{
    CLOSE_IDLE, CLOSE_TOO_SLOW, Command, CommandKind, Event, EventKind, Hello, LabState, Limits,
    PROTOCOL_VERSION, Payload, ServerMsg,
};

use crate::app::App;
use crate::bridge::Source;
use crate::hub::frame::{events_text, to_text};
use crate::hub::{self, Frame, counters::add, now_us};
use crate::ws::ClientStats;
use crate::ws::commands;
use crate::ws::deflate;
use crate::ws::frame::{Outgoing, WsError};
use crate::ws::socket::LINGER;

/// Commands of one client in flight at once; more are refused until some finish.
const MAX_IN_FLIGHT: usize = 16;
/// The snapshot's backlog is trimmed (oldest first) to stay under this many bytes.
const SNAPSHOT_BUDGET: usize = 8 << 20;

/// Why the loop ended.
enum End {
    /// The client closed or vanished.
    Gone(Option<u16>, String),
    /// We close it with this code and reason.
    Close(u16, String),
}

struct Pump<Si> {
    app: Arc<App>,
    stats: Arc<ClientStats>,
    sink: Si,
    /// Protocols this client subscribed to (0: all).
    filter: u8,
    /// The `seq` this client should see next; a later one means it missed some.
    next_seq: u64,
    /// How long one write may wait on the client.
    stuck: Duration,
    /// Where background commands answer (see [`Pump::replies_tx`]).
    replies: Option<mpsc::Sender<Box<ServerMsg>>>,
}

impl<Si> Pump<Si>
where
    Si: Sink<Outgoing> + Unpin,
    Si::Error: Display,
{
    /// Writes one frame, giving up on a client that stays stuck. What is counted is what
    /// goes on the wire (compressed, when it is).
    async fn send(&mut self, msg: impl Into<Outgoing>) -> Result<(), End> {
        let msg = msg.into();
        let len = match &msg {
            Outgoing::Plain(Message::Text(t)) => t.len(),
            Outgoing::Plain(Message::Binary(b)) => b.len(),
            Outgoing::Plain(_) => 0,
            Outgoing::Deflated(b) | Outgoing::DeflatedBinary(b) => b.len(),
        };
        match timeout(self.stuck, self.sink.send(msg)).await {
            Ok(Ok(())) => {
                add(&self.stats.frames_out, 1);
                add(&self.stats.bytes_out, len as u64);
                add(&self.app.hub.counters.ws_frames_out, 1);
                add(&self.app.hub.counters.ws_bytes_out, len as u64);
                Ok(())
            }
            Ok(Err(e)) => Err(End::Gone(None, format!("write failed: {e}"))),
            Err(_) => {
                add(&self.app.hub.counters.ws_slow_closed, 1);
                Err(End::Close(
                    CLOSE_TOO_SLOW,
                    format!("too slow: not reading for {} s", self.stuck.as_secs()),
                ))
            }
        }
    }

    async fn send_msg(&mut self, msg: &ServerMsg) -> Result<(), End> {
        let out = self.own(to_text(msg)).await;
        self.send(out).await
    }

    /// A message of this client's own, compressed if the client agreed to it and it is
    /// not on loopback (or `--ws-compress always`), and it is long enough to gain.
    async fn own(&self, text: Utf8Bytes) -> Outgoing {
        let wanted =
            self.app
                .config
                .ws_compress
                .compresses(self.stats.deflate, self.stats.loopback, false);
        if !wanted || text.len() < deflate::OWN_FROM {
            return Outgoing::Plain(Message::Text(text));
        }
        if text.len() < deflate::INLINE_UP_TO {
            return Outgoing::Deflated(deflate::compress(text.as_bytes()));
        }
        // A big snapshot (up to 8 MiB) would hold this worker for milliseconds.
        let job = text.clone();
        match tokio::task::spawn_blocking(move || deflate::compress(job.as_bytes())).await {
            Ok(packed) => Outgoing::Deflated(packed),
            Err(_) => Outgoing::Plain(Message::Text(text)),
        }
    }

    /// A hub frame as this client gets it: compressed (once, for all) if it agreed and
    /// the frame is compressed already, the policy says so, or enough clients share it.
    fn shared(&self, frame: &Frame) -> Outgoing {
        let dashboard = self.stats.dashboard;
        let widely =
            frame.is_deflated(dashboard) || self.app.ws.deflating() >= deflate::SHARED_FROM;
        let wanted =
            self.app
                .config
                .ws_compress
                .compresses(self.stats.deflate, self.stats.loopback, widely);
        if wanted {
            Outgoing::Deflated(frame.deflated_for(dashboard).clone())
        } else {
            Outgoing::Plain(Message::Text(frame.text_for(dashboard).clone()))
        }
    }

    /// Sends a hub frame, announcing any events this client missed before it.
    async fn deliver(&mut self, frame: Frame) -> Result<(), End> {
        let Some(batch) = &frame.batch else {
            let out = self.shared(&frame);
            return self.send(out).await;
        };
        if batch.first_seq > self.next_seq {
            let missed = batch.first_seq - self.next_seq;
            add(&self.stats.missed, missed);
            add(&self.stats.lagged, 1);
            add(&self.app.hub.counters.ws_missed, missed);
            self.send_msg(&ServerMsg::Lagged { missed }).await?;
        }
        self.next_seq = batch.last_seq + 1;
        if self.filter == 0 || batch.mask & !self.filter == 0 {
            let out = self.shared(&frame);
            return self.send(out).await;
        }
        if batch.mask & self.filter == 0 {
            return Ok(());
        }
        let wanted = batch
            .events
            .iter()
            .filter(|e| e.kind.protocol().bit() & self.filter != 0)
            .map(|e| &**e);
        let out = self.own(events_text(wanted)).await;
        self.send(out).await
    }

    /// Handles a text frame: a command, or plain text to show (and chat, bridged).
    async fn on_text(
        &mut self,
        text: Utf8Bytes,
        replies: &mut Option<mpsc::Receiver<Box<ServerMsg>>>,
    ) -> Result<(), End> {
        if !text.trim_start().starts_with('{') {
            self.plain_message(text.as_bytes());
            return Ok(());
        }
        let cmd: Command = match serde_json::from_str(&text) {
            Ok(cmd) => cmd,
            Err(e) => {
                let id = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v.get("id")?.as_u64());
                let message = format!(
                    "could not read that command: {e}. A command looks like \
                     {{\"type\":\"chat\",\"id\":1,\"text\":\"hi\"}} (see docs/protocol.md)"
                );
                return self.send_msg(&ServerMsg::Error { id, message }).await;
            }
        };
        let id = cmd.id;
        match cmd.kind {
            CommandKind::Ping => {
                let pong = ServerMsg::Pong {
                    id,
                    ts_us: now_us(),
                };
                self.send_msg(&pong).await
            }
            CommandKind::Subscribe { protocols } => {
                self.filter = protocols.iter().fold(0, |m, p| m | p.bit());
                let detail = if protocols.is_empty() {
                    "subscribed to every protocol".to_owned()
                } else {
                    let names: Vec<_> = protocols.iter().map(|p| p.as_str()).collect();
                    format!("subscribed to {}", names.join(", "))
                };
                let ack = ServerMsg::Ack {
                    id,
                    detail: Some(detail),
                };
                self.send_msg(&ack).await
            }
            kind => match self.replies_tx(replies).try_reserve_owned() {
                Ok(permit) => {
                    let (app, client) = (self.app.clone(), self.stats.id);
                    tokio::spawn(async move {
                        let reply = match commands::execute(&app, client, kind).await {
                            Ok(detail) => ServerMsg::Ack {
                                id,
                                detail: Some(detail),
                            },
                            Err(message) => ServerMsg::Error {
                                id: Some(id),
                                message,
                            },
                        };
                        permit.send(Box::new(reply));
                    });
                    Ok(())
                }
                Err(_) => {
                    let message = format!(
                        "too many commands in flight (at most {MAX_IN_FLIGHT}); wait for their \
                         answers"
                    );
                    self.send_msg(&ServerMsg::Error {
                        id: Some(id),
                        message,
                    })
                    .await
                }
            },
        }
    }

    /// Where background commands send their answers: made with the first of them (an
    /// idle client holds no channel).
    fn replies_tx(
        &mut self,
        rx: &mut Option<mpsc::Receiver<Box<ServerMsg>>>,
    ) -> mpsc::Sender<Box<ServerMsg>> {
        self.replies
            .get_or_insert_with(|| {
                let (tx, new_rx) = mpsc::channel(MAX_IN_FLIGHT);
                *rx = Some(new_rx);
                tx
            })
            .clone()
    }

    /// A frame that is not a command: shown as this client's message and, with
    /// `--bridge`, relayed like chat.
    fn plain_message(&self, bytes: &[u8]) {
        let app = &self.app;
        app.hub.publish(EventKind::WsMessage {
            client: self.stats.id,
            peer: self.stats.peer.clone(),
            size: bytes.len() as u64,
            payload: Payload::capture(bytes, app.config.snaplen),
        });
        app.bridge.send(Source::Chat, bytes);
    }
}

/// Builds `hello` and `snapshot` and runs the client until it leaves or the lab stops.
pub async fn run<Si, St>(
    app: Arc<App>,
    stats: Arc<ClientStats>,
    sink: Si,
    mut stream: St,
    since: Option<u64>,
) where
    Si: Sink<Outgoing> + Unpin,
    Si::Error: Display,
    St: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let started = now_us();
    add(&app.hub.counters.ws_clients, 1);
    app.hub.publish(EventKind::WsOpen {
        client: stats.id,
        peer: stats.peer.clone(),
        user_agent: stats.user_agent.clone(),
        dashboard: stats.dashboard,
    });
    let sub = app.hub.subscribe(since);
    let mut rx = sub.rx;
    let mut pump = Pump {
        app: app.clone(),
        stats: stats.clone(),
        sink,
        filter: 0,
        next_seq: sub.last_seq + 1,
        stuck: Duration::from_secs(app.config.ws_stuck_secs.max(1)),
        replies: None,
    };
    let mut replies: Option<mpsc::Receiver<Box<ServerMsg>>> = None;
    let idle = Duration::from_secs(app.config.ws_idle_secs.max(3));
    let mut ping = tokio::time::interval_at(Instant::now() + idle / 3, idle / 3);
    let mut last_heard = Instant::now();
    let shutdown = app.shutdown.clone();

    let end = async {
        pump.send_msg(&hello(&app, stats.id)).await?;
        let make = || {
            snapshot_text(
                &app.lab_state(),
                trimmed(&sub.backlog),
                sub.resumed_from,
                sub.last_seq,
            )
        };
        let text = match sub.resumed_from {
            None => app.ws.snapshot(sub.last_seq, make),
            Some(_) => make(),
        };
        drop(sub.backlog);
        let snapshot = pump.own(text).await;
        pump.send(snapshot).await?;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    return Err(End::Close(1001, "the lab is shutting down".into()));
                }
                incoming = stream.next() => {
                    last_heard = Instant::now();
                    let msg = match incoming {
                        None => return Err(End::Gone(None, "vanished".into())),
                        Some(Err(e)) => return Err(failed(e)),
                        Some(Ok(msg)) => msg,
                    };
                    let len = match &msg {
                        Message::Text(t) => t.len(),
                        Message::Binary(b) => b.len(),
                        _ => 0,
                    };
                    add(&stats.frames_in, 1);
                    add(&stats.bytes_in, len as u64);
                    add(&app.hub.counters.ws_frames_in, 1);
                    add(&app.hub.counters.ws_bytes_in, len as u64);
                    match msg {
                        Message::Text(text) => pump.on_text(text, &mut replies).await?,
                        Message::Binary(bytes) => pump.plain_message(&bytes),
                        Message::Close(frame) => {
                            let (code, reason) = frame
                                .map(|f| (Some(f.code), f.reason.to_string()))
                                .unwrap_or((None, String::new()));
                            return Err(End::Gone(code, reason));
                        }
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                Some(reply) = next_reply(&mut replies) => pump.send_msg(&reply).await?,
                frame = rx.recv() => match frame {
                    Ok(frame) => pump.deliver(frame).await?,
                    // The gap shows in the next batch's seq: `deliver` reports it.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(End::Close(1001, "the lab is shutting down".into()));
                    }
                },
                _ = ping.tick() => {
                    if last_heard.elapsed() > idle {
                        return Err(End::Close(CLOSE_IDLE, format!("idle for {} s", idle.as_secs())));
                    }
                    pump.send(Message::Ping(Default::default())).await?;
                }
            }
        }
    }
    .await;

    let (code, reason) = match end {
        Ok(()) => (None, String::new()),
        Err(End::Gone(code, reason)) => {
            // The client's close frame was answered: that answer goes out, then FIN.
            if code.is_some() {
                let _ = timeout(LINGER, pump.sink.close()).await;
            }
            (code, reason)
        }
        Err(End::Close(code, reason)) => {
            let frame = CloseFrame {
                code,
                reason: reason.clone().into(),
            };
            let sent = timeout(
                Duration::from_secs(1),
                pump.sink.send(Message::Close(Some(frame)).into()),
            )
            .await;
            // Half-close and drain (the socket's `poll_close`), so a client still
            // sending reads the close frame instead of a reset; not for a client that
            // could not even take the close frame.
            if matches!(sent, Ok(Ok(()))) {
                let _ = timeout(LINGER, pump.sink.close()).await;
            }
            (Some(code), reason)
        }
    };
    app.hub.publish(EventKind::WsClose {
        client: stats.id,
        peer: stats.peer.clone(),
        code,
        reason,
        duration_us: now_us().saturating_sub(started),
    });
}

/// The next answer of a background command; never, while none was started.
async fn next_reply(rx: &mut Option<mpsc::Receiver<Box<ServerMsg>>>) -> Option<Box<ServerMsg>> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A read error and how the connection ends: closed with the code its type deserves
/// ([`WsError::close_code`]: 1009, 1007, 1002) and its text as the reason, or, for a
/// socket error, gone.
fn failed(e: WsError) -> End {
    match e.close_code() {
        Some(code) => End::Close(code, e.to_string()),
        None => End::Gone(None, e.to_string()),
    }
}

/// The first frame: who we are, what runs where, the limits.
pub fn hello(app: &App, client: u64) -> ServerMsg {
    let c = &app.config;
    ServerMsg::Hello(Hello {
        server: "wirelab".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        protocol: PROTOCOL_VERSION,
        client,
        services: app.services.clone(),
        limits: Limits {
            snaplen: c.snaplen as u64,
            backlog: c.backlog as u64,
            batch_max: hub::BATCH_MAX as u64,
            batch_ms: hub::BATCH_INTERVAL.as_millis() as u64,
            max_message: c.max_ws_message as u64,
            max_ws_clients: c.max_ws_clients as u64,
            max_tcp_conns: c.max_tcp_conns as u64,
            max_http_conns: c.max_http_conns as u64,
            max_http_body: c.max_http_body as u64,
        },
        token_required: app.token.is_some(),
        bridge: c.bridge,
        allow_outbound: c.allow_outbound,
        ca_fingerprint: app.tls.ca.fingerprint(),
    })
}

/// The newest events that fit in [`SNAPSHOT_BUDGET`] bytes of payload.
fn trimmed(backlog: &[Arc<Event>]) -> &[Arc<Event>] {
    let mut budget = SNAPSHOT_BUDGET;
    let mut start = backlog.len();
    for ev in backlog.iter().rev() {
        let cost = ev.kind.payload().map_or(0, |p| p.data.len()) + 128;
        if cost > budget {
            break;
        }
        budget -= cost;
        start -= 1;
    }
    &backlog[start..]
}

/// The `snapshot` frame, serialized straight from the hub's events (the same JSON as
/// `ServerMsg::Snapshot`, without a deep copy of the backlog first).
fn snapshot_text(
    state: &LabState,
    backlog: &[Arc<Event>],
    resumed_from: Option<u64>,
    last_seq: u64,
) -> Utf8Bytes {
    struct Events<'a>(&'a [Arc<Event>]);
    impl serde::Serialize for Events<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(|e| &**e))
        }
    }
    #[derive(serde::Serialize)]
    #[serde(tag = "type", rename = "snapshot")]
    struct SnapshotOut<'a> {
        state: &'a LabState,
        backlog: Events<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        resumed_from: Option<u64>,
        last_seq: u64,
    }
    let out = SnapshotOut {
        state,
        backlog: Events(backlog),
        resumed_from,
        last_seq,
    };
    serde_json::to_string(&out)
        .expect("snapshots serialize")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelab_shared::Snapshot;

    #[test]
    fn the_snapshot_text_is_what_the_shared_type_reads() {
        let events: Vec<Arc<Event>> = (1..=3)
            .map(|seq| {
                Arc::new(Event {
                    seq,
                    ts_us: 10 * seq,
                    kind: EventKind::Chat {
                        from: "ws#1".into(),
                        text: format!("hi {seq}"),
                    },
                })
            })
            .collect();
        let state = LabState::default();
        for resumed_from in [None, Some(1)] {
            let text = snapshot_text(&state, &events[1..], resumed_from, 3);
            let expected = ServerMsg::Snapshot(Box::new(Snapshot {
                state: state.clone(),
                backlog: events[1..].iter().map(|e| (**e).clone()).collect(),
                resumed_from,
                last_seq: 3,
            }));
            assert_eq!(text.as_str(), serde_json::to_string(&expected).unwrap());
            let back: ServerMsg = serde_json::from_str(text.as_str()).unwrap();
            assert_eq!(back, expected);
        }
    }

    #[test]
    fn the_backlog_is_trimmed_to_the_budget_newest_first() {
        let big = |seq| {
            Arc::new(Event {
                seq,
                ts_us: 0,
                kind: EventKind::WsMessage {
                    client: 1,
                    peer: "p".into(),
                    size: 0,
                    payload: Payload::capture(&vec![b'a'; 3 << 20], 4 << 20),
                },
            })
        };
        let events: Vec<_> = (1..=4).map(big).collect();
        let kept = trimmed(&events);
        assert_eq!(kept.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4]);
    }
}
