//! Starting a real lab on port 0 and speaking to it as a WebSocket client would.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use tokio_util::sync::CancellationToken;
use wirelab::{Config, Lab};
use wirelab_shared::{Event, EventKind, ServerMsg};

/// A lab running on port 0; it stops when dropped.
pub(crate) struct TestLab {
    pub lab: Lab,
    pub shutdown: CancellationToken,
}

impl Drop for TestLab {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl std::ops::Deref for TestLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

/// Starts a lab with every service on 127.0.0.1:0, after `tweak` adjusts its config.
pub(crate) async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestLab {
    let mut config = Config::for_tests();
    tweak(&mut config);
    let shutdown = CancellationToken::new();
    let lab = wirelab::start(config, shutdown.clone())
        .await
        .expect("the lab starts");
    TestLab { lab, shutdown }
}

/// Starts a lab with the test defaults.
pub(crate) async fn start() -> TestLab {
    start_with(|_| {}).await
}

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client of `/ws` (with `query`, e.g. `?since=3`).
pub(crate) struct Client {
    pub ws: Ws,
}

impl Client {
    pub(crate) async fn connect(lab: &Lab, query: &str) -> Client {
        let url = format!("ws://{}/ws{query}", lab.dashboard);
        let (ws, _) = connect_async(url).await.expect("websocket connects");
        Client { ws }
    }

    /// The next server message, within 5 s.
    pub(crate) async fn next(&mut self) -> ServerMsg {
        self.try_next(Duration::from_secs(5))
            .await
            .expect("a message within 5 s")
    }

    /// The next server message within `wait`, skipping pings; `None` on timeout or close.
    pub(crate) async fn try_next(&mut self, wait: Duration) -> Option<ServerMsg> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match msg.ok()? {
                Message::Text(t) => {
                    return Some(serde_json::from_str(t.as_str()).expect("server JSON parses"));
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Reads until an event matching `pred` arrives (within 5 s) and returns it.
    pub(crate) async fn wait_event(&mut self, pred: impl Fn(&EventKind) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = self
                .try_next(left)
                .await
                .expect("the awaited event did not arrive within 5 s");
            let events = match msg {
                ServerMsg::Events { events } => events,
                ServerMsg::Snapshot(s) => s.backlog,
                _ => continue,
            };
            if let Some(ev) = events.into_iter().find(|e| pred(&e.kind)) {
                return ev;
            }
        }
    }

    /// Sends a text frame.
    pub(crate) async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send works");
    }

    /// Reads until the `ack` or `error` for command `id`.
    pub(crate) async fn reply(&mut self, id: u64) -> Result<Option<String>, String> {
        loop {
            match self.next().await {
                ServerMsg::Ack { id: i, detail } if i == id => return Ok(detail),
                ServerMsg::Error {
                    id: Some(i),
                    message,
                } if i == id => return Err(message),
                _ => continue,
            }
        }
    }

    /// Reads `hello` and `snapshot` and returns them.
    pub(crate) async fn handshake(&mut self) -> (wirelab_shared::Hello, wirelab_shared::Snapshot) {
        let ServerMsg::Hello(hello) = self.next().await else {
            panic!("the first frame is not hello")
        };
        let ServerMsg::Snapshot(snapshot) = self.next().await else {
            panic!("the second frame is not snapshot")
        };
        (hello, *snapshot)
    }
}
