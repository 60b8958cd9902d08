//! The recorder end to end, over real sockets: history survives a restart and a `kill -9`,
//! retention prunes, every `/api` filter, the exports (the pcapng read back by tshark and
//! by pcap-file), replay of a recorded datagram, and a data directory that can't be used.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use support::lab::Client;
use support::raw_http;
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use wirelab::{Config, Lab};
use wirelab_shared::payload::hex_encode;
use wirelab_shared::{CloseReason, Direction, Event, EventKind, HttpExchange, Payload, ServerMsg};

/// A fresh directory under the system's temp directory, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "wirelab-test-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a temp dir");
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A lab of our own (not `support::lab::TestLab`, which can't be waited for).
pub(crate) struct Running {
    lab: Lab,
    stop: CancellationToken,
}

impl Running {
    pub(crate) async fn start(tweak: impl FnOnce(&mut Config)) -> Running {
        let mut config = Config::for_tests();
        tweak(&mut config);
        let stop = CancellationToken::new();
        let lab = wirelab::start(config, stop.clone())
            .await
            .expect("the lab starts");
        Running { lab, stop }
    }

    /// A lab recording to `dir`.
    pub(crate) async fn on_disk(dir: &Path) -> Running {
        let dir = dir.to_owned();
        Running::start(move |c| {
            c.ephemeral = false;
            c.data_dir = dir;
        })
        .await
    }

    /// Stops the lab and waits for every task (the writer's last commit included).
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.lab.wait())
            .await
            .expect("the lab stops within 10 s");
    }

    /// Waits until at least `n` events are recorded (the writer commits every 50 ms).
    pub(crate) async fn stored(&self, n: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let stored = self.lab.app.hub.counters.snapshot().stored;
            if stored >= n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {stored} of {n} events were recorded within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn publish(&self, kind: EventKind) -> u64 {
        self.lab
            .app
            .hub
            .publish(kind)
            .expect("the hub takes the event")
    }
}

impl std::ops::Deref for Running {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

/// An HTTP/1.0 GET (so the body is never chunked: it ends when the server closes), with
/// extra header lines. Returns the status, the head, and the body.
async fn get_with(addr: SocketAddr, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n{extra}\r\n");
    let out = raw_http::exchange(addr, &req, Duration::from_secs(30)).await;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head, out[split + 4..].to_vec())
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    get_with(addr, path, "").await
}

/// `GET` that must answer 200 with JSON.
async fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (status, head, body) = get(addr, path).await;
    assert_eq!(
        status,
        200,
        "{path}: {head}\n{}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{path}: not JSON: {e}"))
}

/// The events of one `/api/events` page.
fn events_of(page: &Value) -> Vec<Event> {
    serde_json::from_value(page["events"].clone()).expect("events parse as the shared type")
}

fn seqs(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// Every event matching `query` (`protocol=udp&...`), following `next_since_seq`.
async fn all_events(addr: SocketAddr, query: &str) -> Vec<Event> {
    let mut out = Vec::new();
    let mut since = 0;
    loop {
        let page = get_json(
            addr,
            &format!("/api/events?limit=5000&since_seq={since}&{query}"),
        )
        .await;
        out.extend(events_of(&page));
        match page["next_since_seq"].as_u64() {
            Some(n) => since = n,
            None => return out,
        }
    }
}

fn udp_text(ev: &Event) -> Option<(String, Direction, String)> {
    match &ev.kind {
        EventKind::UdpDatagram {
            peer, dir, payload, ..
        } => Some((
            peer.clone(),
            *dir,
            String::from_utf8_lossy(&payload.bytes()).into_owned(),
        )),
        _ => None,
    }
}

async fn peer() -> (UdpSocket, String) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap().to_string();
    (s, addr)
}

#[tokio::test]
async fn history_survives_a_restart_and_seq_goes_on() {
    let dir = TempDir::new("restart");
    let lab = Running::on_disk(dir.path()).await;
    assert!(!lab.app.store.in_memory());
    let (sock, me) = peer().await;
    for i in 0..5 {
        sock.send_to(format!("before-{i}").as_bytes(), lab.udp)
            .await
            .unwrap();
    }
    lab.stored(5).await;
    lab.stop().await;

    let lab = Running::on_disk(dir.path()).await;
    let before = all_events(lab.dashboard, "protocol=udp").await;
    let texts: Vec<_> = before.iter().filter_map(udp_text).collect();
    let expected: Vec<_> = (0..5)
        .map(|i| (me.clone(), Direction::In, format!("before-{i}")))
        .collect();
    assert_eq!(texts, expected);
    let old_max = *seqs(&before).iter().max().unwrap();
    assert!(lab.app.store.last_seq >= old_max);
    // The first dashboard after the restart gets the recorded history in its snapshot.
    let backlog = lab.app.hub.subscribe(None).backlog;
    let old_texts: Vec<_> = backlog.iter().filter_map(|e| udp_text(e)).collect();
    assert_eq!(
        old_texts, expected,
        "the backlog is refilled from the store"
    );

    sock.send_to(b"after", lab.udp).await.unwrap();
    lab.stored(1).await;
    let everything = all_events(lab.dashboard, "").await;
    let s = seqs(&everything);
    assert!(
        s.windows(2).all(|w| w[0] < w[1]),
        "seq repeats or goes back: {s:?}"
    );
    let after = everything
        .iter()
        .find(|e| udp_text(e).is_some_and(|t| t.2 == "after"))
        .expect("the new datagram is recorded");
    assert!(after.seq > old_max, "{} is not after {old_max}", after.seq);
    lab.stop().await;
}

/// What the `wirelab` binary printed: its dashboard and UDP addresses, and the lines
/// before them (the log goes to stdout too).
struct Spawned {
    child: std::process::Child,
    dashboard: SocketAddr,
    udp: SocketAddr,
    lines: Vec<String>,
}

/// Starts the real binary on port 0 with `args`, and reads its addresses. A thread keeps
/// reading its stdout afterwards, so its log never fills the pipe and blocks it.
fn spawn_binary(args: &[&str]) -> Spawned {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wirelab"))
        .args(["--dashboard", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(["--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"])
        .args(["--ws-service", "127.0.0.1:0", "--toxiproxy-api", "off"])
        .args(["--https", "127.0.0.1:0", "--tls-tcp", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "wirelab=info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the wirelab binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let (mut dashboard, mut udp) = (None, None);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while let Ok(line) =
        rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
    {
        if let Some(url) = line.trim().strip_prefix("dashboard") {
            let url = url.trim().trim_start_matches("http://");
            dashboard = url.split('/').next().and_then(|a| a.parse().ok());
        }
        if let Some(rest) = line.trim().strip_prefix("udp") {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            if let [.., ip, port] = parts[..] {
                udp = format!("{ip}:{port}").parse().ok();
            }
        }
        let done = line.starts_with("Open ");
        lines.push(line);
        if done {
            break;
        }
    }
    let (Some(dashboard), Some(udp)) = (dashboard, udp) else {
        let _ = child.kill();
        panic!(
            "the binary did not print its addresses:\n{}",
            lines.join("\n")
        );
    };
    Spawned {
        child,
        dashboard,
        udp,
        lines,
    }
}

/// Events a second the flood sends, and what the recorder may lose to a `kill -9`:
/// whatever arrived in the last 100 ms.
const FLOOD_RATE: u64 = 2000;
const LOSS_WINDOW: u64 = FLOOD_RATE / 10;

#[tokio::test]
async fn kill_9_during_a_flood_loses_at_most_the_last_write_window() {
    let dir = TempDir::new("kill9");
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let mut bin = spawn_binary(&["--data-dir", &data_dir]);

    // Watch the live stream: the highest seq seen there was surely published.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", bin.dashboard))
        .await
        .expect("the binary's /ws answers");
    let seen = Arc::new(AtomicU64::new(0));
    let watcher = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                let Message::Text(text) = msg else { continue };
                let events = match serde_json::from_str(text.as_str()) {
                    Ok(ServerMsg::Events { events }) => events,
                    Ok(ServerMsg::Snapshot(s)) => s.backlog,
                    _ => continue,
                };
                if let Some(last) = events.last() {
                    seen.fetch_max(last.seq, Ordering::Relaxed);
                }
            }
        })
    };

    // The flood: 10 datagrams every 5 ms, for at most 10 s.
    let flooding = CancellationToken::new();
    let flood = {
        let (sock, target, stop) = (peer().await.0, bin.udp, flooding.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            let mut n = 0u64;
            while n < FLOOD_RATE * 10 && !stop.is_cancelled() {
                tick.tick().await;
                for _ in 0..FLOOD_RATE / 200 {
                    let _ = sock.send_to(format!("flood {n}").as_bytes(), target).await;
                    n += 1;
                }
            }
        })
    };

    // Kill it in the middle of the flood, once a second's worth has gone by live.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.load(Ordering::Relaxed) < FLOOD_RATE {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the flood never showed up live"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let shown = seen.load(Ordering::Relaxed);
    bin.child.kill().expect("SIGKILL"); // std's kill() is SIGKILL
    bin.child.wait().unwrap();
    flooding.cancel();
    flood.await.unwrap();
    watcher.abort();

    // Restart on the same directory: the database opens, and seq is contiguous from 1.
    let lab = Running::on_disk(dir.path()).await;
    assert!(!lab.app.store.in_memory(), "the database did not open");
    let recorded = seqs(&all_events(lab.dashboard, "").await);
    let contiguous = recorded
        .iter()
        .zip(1..)
        .take_while(|(s, i)| **s == *i)
        .count() as u64;
    println!("kill -9: {shown} events shown live, seq contiguous up to {contiguous}");
    assert!(
        contiguous + LOSS_WINDOW >= shown,
        "seq is contiguous only up to {contiguous}, but {shown} had been shown live: more \
         than {LOSS_WINDOW} events (100 ms at {FLOOD_RATE}/s) were lost"
    );
    assert_eq!(
        contiguous as usize,
        recorded.len(),
        "a hole in the middle: {recorded:?}"
    );
    // New events go on after the old ones.
    let next = lab.publish(EventKind::Chat {
        from: "t".into(),
        text: "after the kill".into(),
    });
    assert_eq!(next, contiguous + 1);
    lab.stop().await;
}

#[tokio::test]
async fn retention_prunes_the_oldest_events() {
    let lab = Running::start(|c| {
        c.retain_events = 10;
        c.prune_secs = 1;
    })
    .await;
    let (sock, _) = peer().await;
    for i in 0..30 {
        sock.send_to(format!("d{i}").as_bytes(), lab.udp)
            .await
            .unwrap();
    }
    lab.stored(30).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let left = loop {
        let left = all_events(lab.dashboard, "").await;
        if left.len() <= 10 {
            break left;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} events are still kept after 15 s",
            left.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let texts: Vec<String> = left.iter().filter_map(udp_text).map(|t| t.2).collect();
    let newest: Vec<String> = (20..30).map(|i| format!("d{i}")).collect();
    assert_eq!(texts, newest);
    lab.stop().await;
}

fn chat(text: &str) -> EventKind {
    EventKind::Chat {
        from: "ws#1".into(),
        text: text.into(),
    }
}

#[tokio::test]
async fn every_api_filter_and_paging() {
    let lab = Running::start(|_| {}).await;
    let (a, a_addr) = peer().await;
    let (b, b_addr) = peer().await;
    a.send_to(b"alpha NEEDLE one", lab.udp).await.unwrap();
    lab.stored(1).await;
    let c1 = lab.publish(chat("a chat with a needle"));
    b.send_to(b"bravo two", lab.udp).await.unwrap();
    lab.stored(3).await;
    a.send_to(b"alpha three", lab.udp).await.unwrap();
    lab.stored(4).await;
    lab.publish(chat("50%_off"));
    lab.stored(5).await;
    let d = lab.dashboard;

    let all = all_events(d, "").await;
    assert_eq!(all.len(), 5);
    let s = seqs(&all);
    assert_eq!(s[1], c1);
    let texts = |evs: &[Event]| -> Vec<String> {
        evs.iter()
            .map(|e| match &e.kind {
                EventKind::Chat { text, .. } => text.clone(),
                _ => udp_text(e).map(|t| t.2).unwrap_or_default(),
            })
            .collect()
    };
    let page = |q: &str| {
        let q = q.to_owned();
        async move { events_of(&get_json(d, &format!("/api/events?{q}")).await) }
    };

    assert_eq!(seqs(&page(&format!("since_seq={}", s[2])).await), s[3..]);
    // Bounded only from above, a page is the newest under the bound ("load older").
    assert_eq!(
        seqs(&page(&format!("until_seq={}", s[1])).await),
        [s[1], s[0]]
    );
    assert_eq!(
        seqs(&page(&format!("before_seq={}", s[2])).await),
        [s[1], s[0]]
    );
    let near = get_json(d, &format!("/api/events?until_seq={}&limit=2", s[3])).await;
    assert_eq!(seqs(&events_of(&near)), [s[3], s[2]]);
    assert_eq!(near["next_before_seq"].as_u64(), Some(s[2]));
    let up = format!("until_seq={}&order=asc", s[1]);
    assert_eq!(seqs(&page(&up).await), s[..2]);
    let between = page(&format!("since_seq={}&until_seq={}", s[0], s[3])).await;
    assert_eq!(seqs(&between), s[1..4]);
    assert_eq!(
        texts(&page("protocol=ws").await),
        ["a chat with a needle", "50%_off"]
    );
    assert_eq!(page("protocol=udp").await.len(), 3);
    assert_eq!(page("protocol=udp,ws").await.len(), 5);
    assert_eq!(page("protocol=tcp").await.len(), 0);
    assert_eq!(
        texts(&page(&format!("peer={a_addr}")).await),
        ["alpha NEEDLE one", "alpha three"]
    );
    assert_eq!(texts(&page(&format!("peer={b_addr}")).await), ["bravo two"]);
    assert_eq!(page("peer=127.0.0.1").await.len(), 3);
    assert_eq!(page("peer=10.9.9.9").await.len(), 0);
    assert_eq!(
        texts(&page("q=needle").await),
        ["alpha NEEDLE one", "a chat with a needle"]
    );
    assert_eq!(texts(&page("q=50%25_").await), ["50%_off"]);
    // `_` is taken literally, not as LIKE's any-character.
    assert_eq!(page("q=a_chat").await.len(), 0);
    assert_eq!(
        texts(&page("q=alpha&protocol=udp&limit=1").await),
        ["alpha NEEDLE one"]
    );

    // Paging oldest first: pages of 2 add up to everything, each once.
    let mut got = Vec::new();
    let mut since = 0;
    let mut pages = 0;
    loop {
        let p = get_json(d, &format!("/api/events?limit=2&since_seq={since}")).await;
        got.extend(seqs(&events_of(&p)));
        pages += 1;
        match p["next_since_seq"].as_u64() {
            Some(n) => since = n,
            None => break,
        }
    }
    assert_eq!((got, pages), (s.clone(), 3));

    // Newest first, loading older history as when scrolling up.
    let first = get_json(d, "/api/events?order=desc&limit=3").await;
    assert_eq!(seqs(&events_of(&first)), [s[4], s[3], s[2]]);
    assert!(first["next_since_seq"].is_null());
    let before = first["next_before_seq"].as_u64().expect("more to load");
    let older = get_json(
        d,
        &format!("/api/events?order=desc&limit=3&before_seq={before}"),
    )
    .await;
    assert_eq!(seqs(&events_of(&older)), [s[1], s[0]]);
    assert!(older["next_before_seq"].is_null());

    // Bad values are refused with a message naming them.
    for (q, needle) in [
        ("protocol=smtp", "smtp"),
        ("limit=0", "limit"),
        ("since_seq=x", "since_seq"),
    ] {
        let (status, _, body) = get(d, &format!("/api/events?{q}")).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body.contains(needle), "{q}: {body}");
    }
    let (status, _, _) = get(d, "/api/nothing").await;
    assert_eq!(status, 404);

    // JSON Lines: the same events, one a line, filtered the same way.
    let (status, head, body) = get(d, "/api/events.jsonl?protocol=udp").await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_lowercase().contains("application/x-ndjson"),
        "{head}"
    );
    let lines: Vec<Event> = String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(seqs(&lines), [s[0], s[2], s[3]]);
    let (_, _, limited) = get(d, "/api/events.jsonl?limit=2").await;
    assert_eq!(String::from_utf8(limited).unwrap().lines().count(), 2);
    lab.stop().await;
}

#[tokio::test]
async fn api_asks_for_the_token_when_the_lab_has_one() {
    let lab = Running::start(|c| c.token = Some("sekret".into())).await;
    let d = lab.dashboard;
    for path in [
        "/api/events",
        "/api/events.jsonl",
        "/api/http.har",
        "/api/capture.pcapng",
    ] {
        assert_eq!(get(d, path).await.0, 401, "{path} without the token");
        assert_eq!(
            get(d, &format!("{path}?token=wrong")).await.0,
            401,
            "{path}"
        );
        assert_eq!(
            get(d, &format!("{path}?token=sekret")).await.0,
            200,
            "{path}"
        );
    }
    let bearer = get_with(d, "/api/events", "Authorization: Bearer sekret\r\n").await;
    assert_eq!(bearer.0, 200);
    lab.stop().await;
}

#[tokio::test]
async fn har_holds_the_recorded_http_exchanges() {
    let lab = Running::start(|_| {}).await;
    let exchange = HttpExchange {
        id: 9,
        conn: 1,
        seq_on_conn: 1,
        peer: "127.0.0.1:50000".into(),
        method: "GET".into(),
        target: "/hello?name=lab".into(),
        version: "HTTP/1.1".into(),
        headers: vec![("Host".into(), "127.0.0.1:1337".into())],
        status: 200,
        resp_version: "HTTP/1.1".into(),
        resp_reason: "OK".into(),
        resp_headers: vec![("Content-Type".into(), "text/plain".into())],
        resp_body: Payload::capture(b"Hello World\n", 64),
        resp_size: 12,
        ttfb_us: 300,
        total_us: 400,
        ..Default::default()
    };
    let seq = lab.publish(EventKind::Http(Box::new(exchange)));
    lab.publish(chat("not http"));
    lab.stored(2).await;
    let (status, head, body) = get(lab.dashboard, "/api/http.har").await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("wirelab.har"), "{head}");
    let har: Value = serde_json::from_slice(&body).expect("HAR is JSON");
    assert_eq!(har["log"]["version"], "1.2");
    let entries = har["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0]["request"]["url"],
        "http://127.0.0.1:1337/hello?name=lab"
    );
    assert_eq!(entries[0]["response"]["content"]["text"], "Hello World\n");
    assert_eq!(entries[0]["response"]["statusText"], "OK");
    assert_eq!(entries[0]["response"]["httpVersion"], "HTTP/1.1");
    assert_eq!(entries[0]["_seq"], seq);
    lab.stop().await;
}

/// Runs tshark, or says why not: missing tshark skips (with a message), except under
/// `CI=true` where it fails.
fn tshark(args: &[&str]) -> Option<String> {
    match Command::new("tshark").args(args).output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "tshark {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8(out.stdout).unwrap())
        }
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true and tshark can't run ({e}): install Debian's tshark")
        }
        Err(e) => {
            println!("SKIPPING the tshark checks: tshark can't run ({e}); apt-get install tshark");
            None
        }
    }
}

/// The packets of a pcapng, read in-process: (captured frame, original length).
fn packets(pcapng: &[u8]) -> Vec<(Vec<u8>, u32)> {
    use pcap_file::pcapng::{Block, PcapNgReader};
    let mut reader = PcapNgReader::new(pcapng).expect("a pcapng section header");
    let mut out = Vec::new();
    while let Some(block) = reader.next_block() {
        if let Block::EnhancedPacket(p) = block.expect("a valid block") {
            out.push((p.data.to_vec(), p.original_len));
        }
    }
    out
}

#[tokio::test]
async fn the_pcapng_shows_the_conversations_and_payloads() {
    let lab = Running::start(|_| {}).await;
    let (sock, me) = peer().await;
    sock.send_to(b"udp-one", lab.udp).await.unwrap();
    sock.send_to(&[0, 1, 2, 0xff], lab.udp).await.unwrap();
    lab.stored(2).await;
    // Two TCP connections, as the TCP service records them: one closed by FIN, one reset,
    // and one payload cut by the snaplen.
    let local = "127.0.0.1:1338".to_owned();
    let tcp_peer = |port: u16| format!("127.0.0.1:{port}");
    let data = |conn, port, dir, bytes: &[u8], snaplen| EventKind::TcpData {
        conn,
        peer: tcp_peer(port),
        dir,
        size: bytes.len() as u64,
        payload: Payload::capture(bytes, snaplen),
    };
    let close = |conn, port, reason| EventKind::TcpClose {
        conn,
        peer: tcp_peer(port),
        reason,
        detail: None,
        duration_us: 10,
        bytes_in: 0,
        bytes_out: 0,
    };
    for (conn, port) in [(1, 40001), (2, 40002)] {
        lab.publish(EventKind::TcpOpen {
            conn,
            peer: tcp_peer(port),
            local: local.clone(),
            outbound: false,
            handshake_us: None,
        });
    }
    lab.publish(data(1, 40001, Direction::In, b"tcp hello", 64));
    lab.publish(data(1, 40001, Direction::Out, b"tcp reply", 64));
    lab.publish(data(2, 40002, Direction::In, &[7u8; 100], 10));
    lab.publish(close(1, 40001, CloseReason::Fin));
    lab.publish(close(2, 40002, CloseReason::Reset));
    lab.stored(9).await;

    let (status, head, capture) = get(lab.dashboard, "/api/capture.pcapng").await;
    assert_eq!(status, 200, "{head}");
    // 2 UDP; conn 1: 3 handshake + 2 data + 3 closing; conn 2: 3 + 1 + RST.
    let all = packets(&capture);
    assert_eq!(all.len(), 2 + 8 + 5);
    let cut = all
        .iter()
        .find(|(frame, orig)| frame.len() < *orig as usize)
        .expect("the cut payload's packet");
    assert_eq!(
        (cut.0.len(), cut.1),
        (14 + 20 + 20 + 10, 14 + 20 + 20 + 100)
    );
    // Filtered like /api/events.
    let (_, _, udp_only) = get(lab.dashboard, "/api/capture.pcapng?protocol=udp").await;
    assert_eq!(packets(&udp_only).len(), 2);
    let (_, _, one_conn) = get(lab.dashboard, "/api/capture.pcapng?peer=127.0.0.1:40002").await;
    assert_eq!(packets(&one_conn).len(), 5);

    let dir = TempDir::new("pcapng");
    let file = dir.path().join("x.pcapng");
    std::fs::write(&file, &capture).unwrap();
    let file = file.to_str().unwrap();
    if let Some(conv) = tshark(&["-r", file, "-qz", "conv,tcp"]) {
        let rows: Vec<(String, String, u64)> = conv
            .lines()
            .filter(|l| l.contains("<->"))
            .map(|l| {
                let t: Vec<&str> = l.split_whitespace().collect();
                // a <-> b, then frames and bytes (with units) <-, ->, total.
                (t[0].to_owned(), t[2].to_owned(), t[9].parse().unwrap_or(0))
            })
            .collect();
        let mut rows = rows;
        rows.sort();
        let want = |port: u16, frames| (format!("127.0.0.1:{port}"), local.clone(), frames);
        assert_eq!(rows, [want(40001, 8), want(40002, 5)], "{conv}");
    }
    if let Some(udp) = tshark(&["-r", file, "-Y", "udp", "-T", "fields", "-e", "data"]) {
        let got: Vec<&str> = udp.lines().collect();
        assert_eq!(
            got,
            [hex_encode(b"udp-one"), hex_encode(&[0, 1, 2, 0xff])],
            "{udp}"
        );
    }
    let tcp_fields = ["-r", file, "-Y", "tcp.len > 0", "-T", "fields"];
    let tcp_fields = [&tcp_fields[..], &["-e", "tcp.srcport", "-e", "tcp.payload"]].concat();
    if let Some(tcp) = tshark(&tcp_fields) {
        let got: Vec<&str> = tcp.lines().collect();
        let want = [
            format!("40001\t{}", hex_encode(b"tcp hello")),
            format!("1338\t{}", hex_encode(b"tcp reply")),
            format!("40002\t{}", hex_encode(&[7u8; 10])),
        ];
        assert_eq!(got, want, "{tcp}");
    }
    let _ = me;
    lab.stop().await;
}

#[tokio::test]
async fn a_recorded_datagram_is_replayed_from_the_store() {
    // No backlog: the hub keeps nothing, so replay must find the event in the store.
    let lab = Running::start(|c| c.backlog = 0).await;
    let (sock, me) = peer().await;
    sock.send_to(b"replay me", lab.udp).await.unwrap();
    lab.stored(1).await;
    let recorded = all_events(lab.dashboard, "protocol=udp").await;
    let seq = recorded[0].seq;
    assert!(lab.app.hub.find(seq).is_none(), "the hub still has it");

    let mut client = Client::connect(&lab, "").await;
    client.handshake().await;
    client
        .send_text(&format!(r#"{{"type":"replay","id":1,"seq":{seq}}}"#))
        .await;
    let ack = client.reply(1).await.expect("the replay is acknowledged");
    assert!(ack.unwrap_or_default().contains("sent"), "ack");
    let mut buf = [0u8; 64];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("the peer receives the replay within 5 s")
        .unwrap();
    assert_eq!((&buf[..n], from), (&b"replay me"[..], lab.udp));
    // And the replay itself is recorded, as a datagram out to the peer.
    lab.stored(2).await;
    let out = all_events(lab.dashboard, "protocol=udp").await;
    let last = udp_text(out.last().unwrap()).unwrap();
    assert_eq!(last, (me, Direction::Out, "replay me".into()));
    // A recorded TCP payload whose connection is gone is not sent to whatever
    // connection has its id now.
    let tcp = lab.publish(EventKind::TcpData {
        conn: 1,
        peer: "127.0.0.1:40009".into(),
        dir: Direction::In,
        size: 2,
        payload: Payload::capture(b"hi", 64),
    });
    lab.stored(4).await;
    let cmd = format!(r#"{{"type":"replay","id":3,"seq":{tcp}}}"#);
    client.send_text(&cmd).await;
    let err = client
        .reply(3)
        .await
        .expect_err("a closed connection is refused");
    assert!(err.contains("#1 to 127.0.0.1:40009 is closed"), "{err}");
    client
        .send_text(r#"{"type":"replay","id":2,"seq":999999}"#)
        .await;
    let err = client
        .reply(2)
        .await
        .expect_err("an unknown seq is refused");
    assert!(err.contains("999999"), "{err}");
    lab.stop().await;
}

#[tokio::test]
async fn a_recorded_http_request_is_replayed_after_a_restart() {
    let dir = TempDir::new("http-replay");
    let lab = Running::on_disk(dir.path()).await;
    let (status, head, _) = get(lab.http, "/replay-me?x=1").await;
    assert_eq!(status, 200, "{head}");
    lab.stored(1).await;
    lab.stop().await;

    // After the restart the HTTP service keeps nothing, and exchange ids start again.
    let lab = Running::on_disk(dir.path()).await;
    let (status, _, _) = get(lab.http, "/something-else").await;
    assert_eq!(status, 200);
    let recorded = all_events(lab.dashboard, "protocol=http").await;
    let target = |e: &Event| match &e.kind {
        EventKind::Http(x) => x.target.clone(),
        _ => String::new(),
    };
    let old = recorded
        .iter()
        .find(|e| target(e) == "/replay-me?x=1")
        .expect("the first run's request is recorded");
    let mut client = Client::connect(&lab, "").await;
    client.handshake().await;
    let cmd = format!(r#"{{"type":"replay","id":1,"seq":{}}}"#, old.seq);
    client.send_text(&cmd).await;
    let ack = client.reply(1).await.expect("the replay is acknowledged");
    assert!(ack.unwrap_or_default().contains("200"), "ack");
    let again = client
        .wait_event(|k| matches!(k, EventKind::Http(x) if x.replay_of.is_some()))
        .await;
    let EventKind::Http(x) = again.kind else {
        unreachable!()
    };
    assert_eq!(
        x.target, "/replay-me?x=1",
        "the old request was sent, not a new one's"
    );
    lab.stop().await;
}

/// A data directory whose parent is a regular file: creating it fails even for root (who
/// ignores permission bits, so a read-only directory would not fail in CI).
fn unusable_dir(tmp: &TempDir) -> PathBuf {
    let file = tmp.path().join("a-regular-file");
    std::fs::write(&file, b"not a directory").unwrap();
    file.join("wirelab-data")
}

#[tokio::test]
async fn an_unusable_data_dir_is_reported_and_not_fatal() {
    let tmp = TempDir::new("unusable");
    let data_dir = unusable_dir(&tmp);
    let lab = Running::on_disk(&data_dir).await;
    assert!(lab.app.store.in_memory());
    // The page hears of it (a notice in the backlog) ...
    let mut client = Client::connect(&lab, "").await;
    let notice = client
        .wait_event(|k| matches!(k, EventKind::Notice { .. }))
        .await;
    let EventKind::Notice { level, message } = notice.kind else {
        unreachable!()
    };
    assert_eq!(level, "error");
    assert!(
        message.contains("cannot record to") && message.contains("a-regular-file"),
        "{message}"
    );
    // ... and the lab works: datagrams are shown live and recorded in memory.
    let (sock, _) = peer().await;
    sock.send_to(b"still here", lab.udp).await.unwrap();
    client
        .wait_event(|k| matches!(k, EventKind::UdpDatagram { .. }))
        .await;
    // The CA could not be kept there either: one in memory, said in a notice too.
    let trouble = lab.app.tls.trouble.clone().unwrap_or_default();
    assert!(trouble.contains("cannot be used"), "{trouble}");
    assert!(lab.app.tls.ca_file.is_none());
    lab.stored(4).await; // the two notices, the client's ws_open, the datagram
    assert_eq!(all_events(lab.dashboard, "protocol=udp").await.len(), 1);
    lab.stop().await;

    // The binary logs it, and runs.
    let arg = data_dir.to_str().unwrap();
    let mut bin = spawn_binary(&["--data-dir", arg]);
    let said = bin.lines.join("\n");
    assert!(said.contains("cannot record to"), "not in the log:\n{said}");
    assert_eq!(get(bin.dashboard, "/api/events").await.0, 200);
    bin.child.kill().unwrap();
    bin.child.wait().unwrap();
}
