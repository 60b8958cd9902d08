//! Every event a lab publishes, kept in order, for tests that wait for several events
//! that may arrive in one batch (`Client::wait_event` keeps only the one it waited for).

use std::time::Duration;

use tokio::time::Instant;
use wirelab::Lab;
use wirelab_shared::{Event, EventKind, ServerMsg};

use super::lab::Client;

/// How long an awaited event may take.
const WAIT: Duration = Duration::from_secs(10);

/// A `/ws` client that keeps every event it has read.
pub(crate) struct Events {
    /// The connection.
    ws: Client,
    /// Every event read so far, in order.
    pub seen: Vec<Event>,
}

impl Events {
    /// Connects and reads `hello` and `snapshot` (whose backlog is kept).
    pub(crate) async fn connect(lab: &Lab) -> Events {
        let mut ws = Client::connect(lab, "").await;
        let (_, snapshot) = ws.handshake().await;
        Events {
            ws,
            seen: snapshot.backlog,
        }
    }

    /// The first event (of all read so far, and what comes within 10 s) that matches.
    pub(crate) async fn wait(&mut self, what: &str, pred: impl Fn(&EventKind) -> bool) -> Event {
        let deadline = Instant::now() + WAIT;
        let mut checked = 0;
        loop {
            if let Some(ev) = self.seen[checked..].iter().find(|e| pred(&e.kind)) {
                return ev.clone();
            }
            checked = self.seen.len();
            let left = deadline.saturating_duration_since(Instant::now());
            match self.ws.try_next(left).await {
                Some(ServerMsg::Events { events }) => self.seen.extend(events),
                Some(ServerMsg::Lagged { missed }) => panic!("lagged by {missed} events"),
                Some(_) => {}
                None => panic!(
                    "no {what} within {} s; seen: {:#?}",
                    WAIT.as_secs(),
                    self.seen
                ),
            }
        }
    }
}
