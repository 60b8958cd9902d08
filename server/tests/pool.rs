//! The connection-pool lab over real sockets: runs started and cancelled from a dashboard
//! client against the lab's own HTTP service, checked by the connections they opened.

mod support;

use std::time::Duration;

use support::lab::{self, Client, TestLab};
use wirelab_shared::{Command, CommandKind, EventKind, PoolSpec, PoolState, PoolStatus, ServerMsg};

/// A dashboard client that keeps what it reads while waiting for something else, so no
/// ack, event or pool figure is lost to a race between them.
struct Dashboard {
    client: Client,
    seen: Vec<ServerMsg>,
    next_id: u64,
}

impl Dashboard {
    async fn connect(lab: &TestLab) -> Dashboard {
        let mut client = Client::connect(lab, "").await;
        client.handshake().await;
        Dashboard {
            client,
            seen: Vec::new(),
            next_id: 0,
        }
    }

    /// The first message (kept or new) `pick` accepts, within 60 s.
    async fn until<T>(&mut self, pick: impl Fn(&ServerMsg) -> Option<T>) -> T {
        if let Some(i) = self.seen.iter().position(|m| pick(m).is_some()) {
            return pick(&self.seen.remove(i)).unwrap();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = self
                .client
                .try_next(left.min(Duration::from_secs(5)))
                .await
                .expect("the awaited message did not come");
            if let Some(t) = pick(&msg) {
                return t;
            }
            self.seen.push(msg);
        }
    }

    /// Sends a command and returns its ack's text or its error.
    async fn command(&mut self, kind: CommandKind) -> Result<String, String> {
        self.next_id += 1;
        let id = self.next_id;
        let text = serde_json::to_string(&Command { id, kind }).unwrap();
        self.client.send_text(&text).await;
        self.until(|m| match m {
            ServerMsg::Ack { id: i, detail } if *i == id => {
                Some(Ok(detail.clone().unwrap_or_default()))
            }
            ServerMsg::Error {
                id: Some(i),
                message,
            } if *i == id => Some(Err(message.clone())),
            _ => None,
        })
        .await
    }

    /// The final figures of run `run`, from its `pool_finished` event.
    async fn finished(&mut self, run: u64) -> PoolStatus {
        self.until(|m| match m {
            ServerMsg::Events { events } => events.iter().find_map(|e| match &e.kind {
                EventKind::PoolFinished { run: r, status } if *r == run => Some(status.clone()),
                _ => None,
            }),
            _ => None,
        })
        .await
    }
}

/// The run number in an ack like "pool run #3 started: ...".
fn run_id(ack: &str) -> u64 {
    let rest = ack.split_once('#').expect("the ack names the run").1;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn spec(lab: &TestLab, path: &str, requests: u32, concurrency: u32, max_conns: u32) -> PoolSpec {
    PoolSpec {
        url: format!("http://{}{path}", lab.http),
        requests,
        concurrency,
        max_conns,
        keep_alive: true,
        no_pool: false,
    }
}

/// Connections the lab's HTTP service has accepted so far.
fn accepted(lab: &TestLab) -> u64 {
    lab.app.hub.counters.snapshot().http_conns
}

#[tokio::test]
async fn a_keep_alive_pool_of_k_opens_exactly_k_connections() {
    let lab = lab::start().await;
    let mut dash = Dashboard::connect(&lab).await;
    for k in 1..=8 {
        let before = accepted(&lab);
        let requests = 4 * (k + 2);
        let s = spec(&lab, "/_/delay/20", requests, k + 2, k);
        let ack = dash
            .command(CommandKind::PoolStart { spec: s })
            .await
            .unwrap();
        let status = dash.finished(run_id(&ack)).await;
        assert_eq!(status.state, PoolState::Done, "k={k}: {status:?}");
        assert_eq!(
            (status.done, status.errors),
            (u64::from(requests), 0),
            "k={k}"
        );
        assert_eq!(status.opened, u64::from(k), "k={k}: {status:?}");
        assert_eq!(
            accepted(&lab) - before,
            u64::from(k),
            "k={k}: the service saw as many"
        );
        assert!(
            status.p50_us > 0 && status.p99_us >= status.p50_us,
            "{status:?}"
        );
        assert!(status.reuse_ratio() >= 4.0, "{status:?}");
    }
}

#[tokio::test]
async fn keep_alive_off_opens_a_connection_per_request() {
    let lab = lab::start().await;
    let mut dash = Dashboard::connect(&lab).await;
    let before = accepted(&lab);
    let mut s = spec(&lab, "/_/delay/5", 12, 5, 3);
    s.keep_alive = false;
    let ack = dash
        .command(CommandKind::PoolStart { spec: s })
        .await
        .unwrap();
    let status = dash.finished(run_id(&ack)).await;
    assert_eq!(
        (status.state, status.done, status.errors),
        (PoolState::Done, 12, 0),
        "{status:?}"
    );
    assert_eq!(status.opened, 12, "{status:?}");
    assert_eq!(accepted(&lab) - before, 12);
}

#[tokio::test]
async fn no_pool_opens_a_connection_per_request() {
    let lab = lab::start().await;
    let mut dash = Dashboard::connect(&lab).await;
    let before = accepted(&lab);
    let mut s = spec(&lab, "/", 10, 4, 0);
    s.no_pool = true;
    let ack = dash
        .command(CommandKind::PoolStart { spec: s })
        .await
        .unwrap();
    assert!(ack.contains("no pool"), "{ack}");
    let status = dash.finished(run_id(&ack)).await;
    assert_eq!(
        (status.state, status.done, status.opened),
        (PoolState::Done, 10, 10),
        "{status:?}"
    );
    assert_eq!(accepted(&lab) - before, 10);
}

#[tokio::test]
async fn a_run_pushes_live_figures_and_cancel_stops_it() {
    let lab = lab::start().await;
    let mut dash = Dashboard::connect(&lab).await;
    // The default target: the lab's own /_/delay/50.
    let s = PoolSpec {
        requests: 10_000,
        concurrency: 4,
        max_conns: 2,
        ..PoolSpec::default()
    };
    let ack = dash
        .command(CommandKind::PoolStart { spec: s.clone() })
        .await
        .unwrap();
    let run = run_id(&ack);
    let live = dash
        .until(|m| match m {
            ServerMsg::Pool(p) if p.run == run && p.state == PoolState::Running && p.in_use > 0 => {
                Some(p.clone())
            }
            _ => None,
        })
        .await;
    assert!(live.spec.url.ends_with("/_/delay/50"), "{live:?}");
    assert!(live.in_use <= 2, "{live:?}");
    // One run at a time.
    let second = dash
        .command(CommandKind::PoolStart { spec: s })
        .await
        .unwrap_err();
    assert!(second.contains("still going"), "{second}");

    dash.command(CommandKind::PoolCancel).await.unwrap();
    let status = dash.finished(run).await;
    assert_eq!(status.state, PoolState::Cancelled, "{status:?}");
    assert!(status.done < 10_000, "{status:?}");
    assert!(status.opened <= 2, "{status:?}");
    assert_eq!(
        lab.app.pool.status().map(|s| s.state),
        Some(PoolState::Cancelled)
    );
    let nothing = dash.command(CommandKind::PoolCancel).await.unwrap_err();
    assert!(nothing.contains("no pool run"), "{nothing}");
}

#[tokio::test]
async fn outbound_and_non_http_targets_are_refused() {
    let lab = lab::start().await;
    let mut dash = Dashboard::connect(&lab).await;
    let mut s = spec(&lab, "/", 1, 1, 1);
    s.url = "http://192.0.2.1/".into();
    let e = dash
        .command(CommandKind::PoolStart { spec: s.clone() })
        .await
        .unwrap_err();
    assert!(e.contains("--allow-outbound"), "{e}");
    s.url = "https://127.0.0.1/".into();
    let e = dash
        .command(CommandKind::PoolStart { spec: s.clone() })
        .await
        .unwrap_err();
    assert!(e.contains("http://"), "{e}");
    s.requests = 0;
    s.url = String::new();
    let e = dash
        .command(CommandKind::PoolStart { spec: s })
        .await
        .unwrap_err();
    assert!(e.contains("requests"), "{e}");
    assert!(lab.app.pool.status().is_none(), "nothing ran");
}

#[tokio::test]
async fn a_run_that_cannot_connect_fails_with_the_reason() {
    let lab = lab::start().await;
    let mut dash = Dashboard::connect(&lab).await;
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = PoolSpec {
        url: format!("http://127.0.0.1:{port}/"),
        requests: 3,
        concurrency: 1,
        max_conns: 1,
        ..PoolSpec::default()
    };
    let ack = dash
        .command(CommandKind::PoolStart { spec: s })
        .await
        .unwrap();
    let status = dash.finished(run_id(&ack)).await;
    assert_eq!(
        (status.state, status.done, status.errors),
        (PoolState::Failed, 0, 3),
        "{status:?}"
    );
    assert!(
        status.error.as_deref().unwrap_or("").contains("connect"),
        "{status:?}"
    );
}
