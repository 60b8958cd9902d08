//! The TCP service over real sockets: every event kind, each relay mode and `--bridge`,
//! every action from the page (send, close, reset, connect out), the limit, and bad
//! input (binary, a flood, a storm of connections, a peer that sends and vanishes).

mod support;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::time::Duration;

use serde_json::json;
use support::lab::{self, Client, TestLab};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::{Instant, timeout};
use wirelab::config::RelayMode;
use wirelab_shared::payload::Encoding;
use wirelab_shared::{CloseReason, Direction, Event, EventKind, ServerMsg};

/// How long anything a test waits for may take.
const WAIT: Duration = Duration::from_secs(10);

/// A WebSocket client of the lab that keeps what it has read: events not yet asked
/// for, and replies to commands, so that waiting for one never loses another.
struct Watch {
    ws: Client,
    events: VecDeque<Event>,
    replies: HashMap<u64, Result<Option<String>, String>>,
}

impl Watch {
    async fn new(lab: &TestLab) -> Watch {
        let mut ws = Client::connect(lab, "").await;
        ws.handshake().await;
        Watch {
            ws,
            events: VecDeque::new(),
            replies: HashMap::new(),
        }
    }

    /// Reads one more message into the stores.
    async fn pump(&mut self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = self.ws.try_next(left).await.expect("the lab went quiet");
        match msg {
            ServerMsg::Events { events } => self.events.extend(events),
            ServerMsg::Lagged { missed } => panic!("the test client lagged by {missed} events"),
            ServerMsg::Ack { id, detail } => drop(self.replies.insert(id, Ok(detail))),
            ServerMsg::Error {
                id: Some(id),
                message,
            } => drop(self.replies.insert(id, Err(message))),
            _ => {}
        }
    }

    /// The first event matching `pred` (taken out of the store).
    async fn event(&mut self, pred: impl Fn(&EventKind) -> bool) -> Event {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(at) = self.events.iter().position(|e| pred(&e.kind)) {
                return self.events.remove(at).expect("the position is in range");
            }
            self.pump(deadline).await;
        }
    }

    /// Every event up to and including the first that matches `pred` (all taken out).
    async fn until(&mut self, pred: impl Fn(&EventKind) -> bool) -> Vec<Event> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(at) = self.events.iter().position(|e| pred(&e.kind)) {
                return self.events.drain(..=at).collect();
            }
            self.pump(deadline).await;
        }
    }

    /// Sends a command (its `id` is set here) and returns its ack's detail or its error.
    async fn command(&mut self, id: u64, mut cmd: serde_json::Value) -> Result<String, String> {
        cmd["id"] = json!(id);
        self.ws.send_text(&cmd.to_string()).await;
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(reply) = self.replies.remove(&id) {
                return reply.map(Option::unwrap_or_default);
            }
            self.pump(deadline).await;
        }
    }

    /// Connects a client to the TCP service; returns it and the lab's id for it.
    async fn open(&mut self, lab: &TestLab) -> (TcpStream, u64) {
        let s = TcpStream::connect(lab.tcp).await.unwrap();
        let me = s.local_addr().unwrap().to_string();
        let ev = self
            .event(|k| matches!(k, EventKind::TcpOpen { peer, .. } if *peer == me))
            .await;
        let EventKind::TcpOpen {
            conn,
            local,
            outbound,
            handshake_us,
            ..
        } = ev.kind
        else {
            unreachable!()
        };
        assert_eq!(local, lab.tcp.to_string());
        assert!(!outbound);
        assert_eq!(handshake_us, None);
        (s, conn)
    }

    /// The `TcpData` events of `conn` in direction `dir` until they add up to `total`
    /// bytes (merging may cut a write into several events, or join several into one).
    async fn data(
        &mut self,
        conn: u64,
        dir: Direction,
        total: u64,
    ) -> Vec<(u64, wirelab_shared::Payload)> {
        let mut got = Vec::new();
        let mut sum = 0;
        while sum < total {
            let ev = self
                .event(|k| matches!(k, EventKind::TcpData { conn: c, dir: d, .. } if *c == conn && *d == dir))
                .await;
            let EventKind::TcpData { size, payload, .. } = ev.kind else {
                unreachable!()
            };
            sum += size;
            got.push((size, payload));
        }
        assert_eq!(sum, total, "more bytes than were sent");
        got
    }

    /// The `TcpClose` of `conn`: its reason, detail and byte counts.
    async fn closed(&mut self, conn: u64) -> (CloseReason, Option<String>, u64, u64) {
        let ev = self
            .event(|k| matches!(k, EventKind::TcpClose { conn: c, .. } if *c == conn))
            .await;
        let EventKind::TcpClose {
            reason,
            detail,
            bytes_in,
            bytes_out,
            ..
        } = ev.kind
        else {
            unreachable!()
        };
        (reason, detail, bytes_in, bytes_out)
    }
}

/// Reads exactly `n` bytes.
async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    timeout(WAIT, s.read_exact(&mut buf))
        .await
        .expect("the bytes arrive in time")
        .expect("the read works");
    buf
}

/// Reads until EOF or an error.
async fn read_to_end(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("EOF or an error in time")
        .map(|_| buf)
}

/// Waits until `check` holds, polling the lab's own state.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn mode(m: RelayMode) -> impl FnOnce(&mut wirelab::Config) {
    move |c| c.tcp_mode = m
}

#[tokio::test]
async fn a_connection_shows_open_data_half_close_and_close() {
    let lab = lab::start_with(mode(RelayMode::Sink)).await;
    let mut w = Watch::new(&lab).await;
    let (mut client, conn) = w.open(&lab).await;

    client.write_all(b"hello <script>").await.unwrap();
    let data = w.data(conn, Direction::In, 14).await;
    let text: String = data.iter().map(|(_, p)| p.data.as_str()).collect();
    assert_eq!(text, "hello <script>");
    assert!(
        data.iter()
            .all(|(_, p)| p.enc == Encoding::Text && p.cut == 0)
    );

    client.shutdown().await.unwrap();
    w.event(|k| matches!(k, EventKind::TcpHalfClose { conn: c, .. } if *c == conn))
        .await;
    let info = lab.app.tcp.infos();
    let row = info
        .iter()
        .find(|i| i.id == conn)
        .expect("still open after FIN");
    assert!(row.half_closed);
    assert_eq!(row.bytes_in, 14);

    // Half-closed, it still hears the page.
    let ack = w
        .command(
            1,
            json!({"type":"tcp_send","conn":conn,"data":"still here"}),
        )
        .await;
    assert!(ack.unwrap().contains(&format!("#{conn}")));
    assert_eq!(read_n(&mut client, 10).await, b"still here");
    w.data(conn, Direction::Out, 10).await;

    let ack = w.command(2, json!({"type":"tcp_close","conn":conn})).await;
    assert!(ack.unwrap().contains("FIN"));
    assert_eq!(read_to_end(&mut client).await.unwrap(), b"");
    let (reason, _, bytes_in, bytes_out) = w.closed(conn).await;
    assert_eq!(
        (reason, bytes_in, bytes_out),
        (CloseReason::ClosedFromPage, 14, 10)
    );
    assert!(lab.app.tcp.infos().iter().all(|i| i.id != conn));
    let c = lab.app.hub.counters.snapshot();
    assert_eq!((c.tcp_conns, c.tcp_bytes_in, c.tcp_bytes_out), (1, 14, 10));
}

#[tokio::test]
async fn a_connection_that_sends_nothing_makes_no_data_event() {
    let lab = lab::start().await;
    let mut w = Watch::new(&lab).await;
    let (mut client, conn) = w.open(&lab).await;
    client.shutdown().await.unwrap();
    let seen = w
        .until(|k| matches!(k, EventKind::TcpHalfClose { conn: c, .. } if *c == conn))
        .await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(&e.kind, EventKind::TcpData { conn: c, .. } if *c == conn)),
        "{seen:?}"
    );
}

#[tokio::test]
async fn broadcast_relays_to_the_others_but_not_back_and_publishes_no_copies() {
    let lab = lab::start().await;
    let mut w = Watch::new(&lab).await;
    let (mut a, a_id) = w.open(&lab).await;
    let (mut b, b_id) = w.open(&lab).await;

    a.write_all(b"hi from a\n").await.unwrap();
    assert_eq!(read_n(&mut b, 10).await, b"hi from a\n");
    b.write_all(b"yo\n").await.unwrap();
    // a's first bytes are b's: its own line never came back.
    assert_eq!(read_n(&mut a, 3).await, b"yo\n");

    // The copy to b was written before b's own line was read, so a published copy
    // would come before b's data event.
    let seen = w
        .until(
            |k| matches!(k, EventKind::TcpData { conn, dir: Direction::In, .. } if *conn == b_id),
        )
        .await;
    assert!(
        !seen.iter().any(|e| matches!(
            &e.kind,
            EventKind::TcpData {
                dir: Direction::Out,
                ..
            }
        )),
        "{seen:?}"
    );
    let c = lab.app.hub.counters.snapshot();
    assert_eq!((c.tcp_bytes_in, c.tcp_bytes_out), (13, 13));

    // Like `ncat --broker`: the peer's FIN is answered with the lab's own.
    a.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut a).await.unwrap(), b"");
    let (reason, _, bytes_in, bytes_out) = w.closed(a_id).await;
    assert_eq!((reason, bytes_in, bytes_out), (CloseReason::Fin, 10, 3));
    b.write_all(b"alone").await.unwrap();
    w.data(b_id, Direction::In, 5).await;
}

#[tokio::test]
async fn a_slow_reader_stalls_neither_the_sender_nor_the_others() {
    let lab = lab::start().await;
    let mut w = Watch::new(&lab).await;
    let (mut sender, _) = w.open(&lab).await;
    let (_stuck, _) = w.open(&lab).await; // never reads
    let (mut reader, reader_id) = w.open(&lab).await;
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        // Until the page's closing word shows up at the end of what was read.
        let mut tail = Vec::new();
        loop {
            let n = reader.read(&mut buf).await.unwrap();
            assert!(n > 0, "the lab closed the reader");
            total += n as u64;
            tail.extend_from_slice(&buf[..n]);
            let keep = tail.len().saturating_sub(8);
            tail.drain(..keep);
            if tail.ends_with(b"the end") {
                return total;
            }
        }
    });
    // 32 MiB is far more than the kernel buffers and the stuck reader's queue hold
    // together: if the stuck reader could stall the relay, this write would never end.
    const TOTAL: usize = 32 * 1024 * 1024;
    let chunk = vec![b'f'; 256 * 1024];
    timeout(WAIT, async {
        for _ in 0..TOTAL / chunk.len() {
            sender.write_all(&chunk).await.unwrap();
        }
    })
    .await
    .expect("the sender was never stalled");
    eventually("every byte read from the sender", || {
        lab.app.hub.counters.snapshot().tcp_bytes_in == TOTAL as u64
    })
    .await;
    assert!(lab.app.hub.counters.snapshot().tcp_bytes_dropped > 0);
    // The reader still gets what the page sends (once its queue has room for it).
    let mut id = 0;
    loop {
        id += 1;
        let sent = w
            .command(
                id,
                json!({"type":"tcp_send","conn":reader_id,"data":"the end"}),
            )
            .await;
        match sent {
            Ok(_) => break,
            Err(e) if e.contains("full") && id < 100 => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    let got = timeout(WAIT, drain).await.unwrap().unwrap();
    assert!(got >= 7);
}

#[tokio::test]
async fn echo_sends_back_and_closes_after_the_peers_fin() {
    let lab = lab::start_with(mode(RelayMode::Echo)).await;
    let mut w = Watch::new(&lab).await;
    let (mut client, conn) = w.open(&lab).await;
    let (mut other, _) = w.open(&lab).await;

    client.write_all(b"ping\n").await.unwrap();
    assert_eq!(read_n(&mut client, 5).await, b"ping\n");
    client.write_all(b"last").await.unwrap();
    client.shutdown().await.unwrap();
    // What it still owed, then EOF.
    assert_eq!(read_to_end(&mut client).await.unwrap(), b"last");
    let (reason, _, bytes_in, bytes_out) = w.closed(conn).await;
    assert_eq!((reason, bytes_in, bytes_out), (CloseReason::Fin, 9, 9));

    // Nothing went to the other connection.
    w.command(1, json!({"type":"tcp_send","data":"page"}))
        .await
        .unwrap();
    assert_eq!(read_n(&mut other, 4).await, b"page");
}

#[tokio::test]
async fn sink_keeps_everything_and_only_the_page_talks() {
    let lab = lab::start_with(mode(RelayMode::Sink)).await;
    let mut w = Watch::new(&lab).await;
    let (mut a, a_id) = w.open(&lab).await;
    let (mut b, b_id) = w.open(&lab).await;

    a.write_all(b"secret").await.unwrap();
    w.data(a_id, Direction::In, 6).await;
    w.command(1, json!({"type":"tcp_send","conn":b_id,"data":"x"}))
        .await
        .unwrap();
    assert_eq!(read_n(&mut b, 1).await, b"x");
    w.command(2, json!({"type":"tcp_send","conn":a_id,"data":"y"}))
        .await
        .unwrap();
    assert_eq!(read_n(&mut a, 1).await, b"y");
    assert_eq!(lab.app.hub.counters.snapshot().tcp_bytes_out, 2);
}

#[tokio::test]
async fn bridge_joins_tcp_udp_and_the_chat() {
    let lab = lab::start_with(|c| c.bridge = true).await;
    let mut w = Watch::new(&lab).await;
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(b"udp here\n", lab.udp).await.unwrap();
    w.event(|k| matches!(k, EventKind::UdpDatagram { .. }))
        .await;
    let (mut tcp, conn) = w.open(&lab).await;
    // The datagram from before the connection was bridged to nobody on TCP; the
    // chat line comes next.
    tcp.write_all(b"hello bridge\n").await.unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = timeout(WAIT, udp.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"hello bridge\n");
    let from_tcp = format!("tcp#{conn}");
    let ev = w
        .event(|k| matches!(k, EventKind::Chat { from, .. } if *from == from_tcp))
        .await;
    let EventKind::Chat { from, text } = ev.kind else {
        unreachable!()
    };
    assert_eq!(
        (from, text),
        (format!("tcp#{conn}"), "hello bridge".to_owned())
    );

    w.command(1, json!({"type":"chat","text":"hi tcp"}))
        .await
        .unwrap();
    assert_eq!(read_n(&mut tcp, 6).await, b"hi tcp");
}

#[tokio::test]
async fn the_page_sends_text_hex_and_to_everyone() {
    let lab = lab::start_with(mode(RelayMode::Sink)).await;
    let mut w = Watch::new(&lab).await;
    let (mut a, a_id) = w.open(&lab).await;
    let (mut b, b_id) = w.open(&lab).await;

    w.command(1, json!({"type":"tcp_send","conn":a_id,"data":"hi"}))
        .await
        .unwrap();
    assert_eq!(read_n(&mut a, 2).await, b"hi");
    let out = w.data(a_id, Direction::Out, 2).await;
    assert_eq!(out[0].1.data, "hi");

    w.command(
        2,
        json!({"type":"tcp_send","conn":a_id,"data":"ff 00","enc":"hex"}),
    )
    .await
    .unwrap();
    assert_eq!(read_n(&mut a, 2).await, [0xff, 0x00]);
    let out = w.data(a_id, Direction::Out, 2).await;
    assert_eq!(
        (out[0].1.enc, out[0].1.bytes()),
        (Encoding::Base64, vec![0xff, 0])
    );

    let ack = w
        .command(3, json!({"type":"tcp_send","data":"all"}))
        .await
        .unwrap();
    assert!(
        ack.contains(&format!("#{a_id}")) && ack.contains(&format!("#{b_id}")),
        "{ack}"
    );
    assert_eq!(read_n(&mut a, 3).await, b"all");
    assert_eq!(read_n(&mut b, 3).await, b"all");

    let err = w
        .command(4, json!({"type":"tcp_send","conn":999,"data":"x"}))
        .await
        .unwrap_err();
    assert!(
        err.contains("#999") && err.contains(&format!("#{a_id}")),
        "{err}"
    );
    let err = w
        .command(5, json!({"type":"tcp_send","conn":a_id,"data":""}))
        .await
        .unwrap_err();
    assert!(err.contains("empty"), "{err}");
    let err = w
        .command(6, json!({"type":"tcp_close","conn":999}))
        .await
        .unwrap_err();
    assert!(err.contains("#999"), "{err}");
}

#[tokio::test]
async fn reset_from_the_page_gives_the_client_econnreset() {
    let lab = lab::start().await;
    let mut w = Watch::new(&lab).await;
    let (mut client, conn) = w.open(&lab).await;
    let ack = w
        .command(1, json!({"type":"tcp_close","conn":conn,"reset":true}))
        .await;
    assert!(ack.unwrap().contains("RST"));
    let err = read_to_end(&mut client).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    let (reason, ..) = w.closed(conn).await;
    assert_eq!(reason, CloseReason::ResetFromPage);
}

#[tokio::test]
async fn connect_out_times_the_handshake_and_is_a_connection_like_any_other() {
    let lab = lab::start_with(mode(RelayMode::Sink)).await;
    let mut w = Watch::new(&lab).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let ack = w
        .command(1, json!({"type":"tcp_connect","addr":target}))
        .await
        .unwrap();
    assert!(ack.contains("handshake"), "{ack}");
    let (mut far, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let ev = w
        .event(|k| matches!(k, EventKind::TcpOpen { peer, .. } if *peer == target))
        .await;
    let EventKind::TcpOpen {
        conn,
        outbound,
        handshake_us,
        local,
        ..
    } = ev.kind
    else {
        unreachable!()
    };
    assert!(outbound);
    assert!(handshake_us.is_some());
    assert_eq!(local, far.peer_addr().unwrap().to_string());
    assert!(ack.contains(&format!("#{conn}")), "{ack}");
    assert!(
        lab.app
            .tcp
            .infos()
            .iter()
            .any(|i| i.id == conn && i.outbound)
    );

    w.command(
        2,
        json!({"type":"tcp_send","conn":conn,"data":"from the page"}),
    )
    .await
    .unwrap();
    assert_eq!(read_n(&mut far, 13).await, b"from the page");
    far.write_all(b"answer").await.unwrap();
    let data = w.data(conn, Direction::In, 6).await;
    assert_eq!(data[0].1.data, "answer");
    drop(far);
    w.event(|k| matches!(k, EventKind::TcpHalfClose { conn: c, .. } if *c == conn))
        .await;
}

#[tokio::test]
async fn connect_out_refuses_other_hosts_and_says_why_it_failed() {
    let lab = lab::start().await;
    let mut w = Watch::new(&lab).await;
    let err = w
        .command(1, json!({"type":"tcp_connect","addr":"10.1.2.3:80"}))
        .await
        .unwrap_err();
    assert!(err.contains("--allow-outbound"), "{err}");
    // A port where nothing listens.
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    let err = w
        .command(2, json!({"type":"tcp_connect","addr":addr}))
        .await
        .unwrap_err();
    assert!(err.contains("refused"), "{err}");
    let err = w
        .command(3, json!({"type":"tcp_connect","addr":"127.0.0.1"}))
        .await
        .unwrap_err();
    assert!(err.contains("port"), "{err}");
    assert_eq!(lab.app.hub.counters.snapshot().tcp_conns, 0);
}

#[tokio::test]
async fn past_the_limit_connections_are_refused_and_counted_and_the_lab_goes_on() {
    let lab = lab::start_with(|c| c.max_tcp_conns = 2).await;
    let mut w = Watch::new(&lab).await;
    let (_a, a_id) = w.open(&lab).await;
    let (_b, _) = w.open(&lab).await;

    let mut extra = TcpStream::connect(lab.tcp).await.unwrap();
    let me = extra.local_addr().unwrap().to_string();
    let told = read_to_end(&mut extra).await.unwrap();
    assert!(String::from_utf8_lossy(&told).contains("too many connections"));
    let ev = w
        .event(|k| matches!(k, EventKind::TcpRefused { peer, .. } if *peer == me))
        .await;
    let EventKind::TcpRefused { reason, .. } = ev.kind else {
        unreachable!()
    };
    assert!(reason.contains("--max-tcp-conns"), "{reason}");
    assert_eq!(lab.app.hub.counters.snapshot().tcp_refused, 1);

    // Connecting out counts against the same limit.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let err = w
        .command(1, json!({"type":"tcp_connect","addr":target}))
        .await
        .unwrap_err();
    assert!(err.contains("--max-tcp-conns"), "{err}");

    // One closes; the next one is served.
    w.command(2, json!({"type":"tcp_close","conn":a_id}))
        .await
        .unwrap();
    w.closed(a_id).await;
    let (mut c, c_id) = w.open(&lab).await;
    w.command(3, json!({"type":"tcp_send","conn":c_id,"data":"in"}))
        .await
        .unwrap();
    assert_eq!(read_n(&mut c, 2).await, b"in");
}

#[tokio::test]
async fn binary_data_travels_as_base64_and_every_byte_is_counted() {
    let lab = lab::start_with(mode(RelayMode::Sink)).await;
    let mut w = Watch::new(&lab).await;
    let (mut client, conn) = w.open(&lab).await;
    let sent: Vec<u8> = [0xff, 0xfe].into_iter().chain(0..=255u8).collect();
    client.write_all(&sent).await.unwrap();
    let data = w.data(conn, Direction::In, sent.len() as u64).await;
    assert_eq!(data[0].1.enc, Encoding::Base64);
    let got: Vec<u8> = data.iter().flat_map(|(_, p)| p.bytes()).collect();
    assert_eq!(got, sent);
}

#[tokio::test]
async fn a_flood_is_merged_into_bounded_events_and_every_byte_is_counted() {
    let lab = lab::start_with(|c| {
        c.tcp_mode = RelayMode::Sink;
        c.snaplen = 1024;
    })
    .await;
    let mut w = Watch::new(&lab).await;
    let (mut client, conn) = w.open(&lab).await;
    const TOTAL: usize = 8 * 1024 * 1024;
    let chunk = vec![b'z'; 64 * 1024];
    for _ in 0..TOTAL / chunk.len() {
        client.write_all(&chunk).await.unwrap();
    }
    let data = w.data(conn, Direction::In, TOTAL as u64).await;
    for (size, payload) in &data {
        let captured = payload.data.len() as u64;
        assert!(captured <= 1024, "captured {captured}");
        assert_eq!(captured + payload.cut, *size);
    }
    // 8 MiB cannot be 1 KiB reads, each alone in its window: reads were merged or cut.
    assert!(data.iter().any(|(size, _)| *size > 1024));
    assert_eq!(lab.app.hub.counters.snapshot().tcp_bytes_in, TOTAL as u64);
}

#[tokio::test]
async fn two_thousand_concurrent_connections_do_not_take_the_lab_down() {
    let lab = lab::start_with(|c| {
        c.tcp_mode = RelayMode::Sink;
        c.max_tcp_conns = 4096;
    })
    .await;
    let addr = lab.tcp;
    let clients: Vec<_> = (0..2000)
        .map(|_| {
            tokio::spawn(async move {
                let mut s = timeout(Duration::from_secs(30), TcpStream::connect(addr))
                    .await
                    .expect("connects in time")
                    .expect("connects");
                s.write_all(b"x").await.unwrap();
                s
            })
        })
        .collect();
    let mut held = Vec::new();
    for c in clients {
        held.push(c.await.unwrap());
    }
    let counters = || lab.app.hub.counters.snapshot();
    eventually("2,000 connections and their bytes", || {
        let c = counters();
        c.tcp_conns == 2000 && c.tcp_bytes_in == 2000
    })
    .await;
    assert_eq!(lab.app.tcp.open_count(), 2000);
    drop(held);

    // Still serving.
    let mut w = Watch::new(&lab).await;
    let (mut client, conn) = w.open(&lab).await;
    w.command(1, json!({"type":"tcp_send","conn":conn,"data":"ok"}))
        .await
        .unwrap();
    assert_eq!(read_n(&mut client, 2).await, b"ok");
}

#[tokio::test]
async fn a_storm_past_the_limit_is_refused_exactly_and_counted() {
    let lab = lab::start_with(|c| {
        c.tcp_mode = RelayMode::Sink;
        c.max_tcp_conns = 50;
    })
    .await;
    let addr = lab.tcp;
    let clients: Vec<_> = (0..500)
        .map(|_| tokio::spawn(async move { TcpStream::connect(addr).await.unwrap() }))
        .collect();
    let mut held = Vec::new();
    for c in clients {
        held.push(c.await.unwrap());
    }
    let counters = || lab.app.hub.counters.snapshot();
    eventually("500 connections accepted or refused", || {
        let c = counters();
        c.tcp_conns + c.tcp_refused == 500
    })
    .await;
    let c = counters();
    assert_eq!((c.tcp_conns, c.tcp_refused), (50, 450));
    assert_eq!(lab.app.tcp.open_count(), 50);
}

#[tokio::test]
async fn a_peer_that_sends_and_resets_is_closed_as_reset() {
    let lab = lab::start_with(mode(RelayMode::Sink)).await;
    let mut w = Watch::new(&lab).await;
    let (mut client, conn) = w.open(&lab).await;
    client.write_all(b"bye").await.unwrap();
    w.data(conn, Direction::In, 3).await;
    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(client);
    let (reason, _, bytes_in, _) = w.closed(conn).await;
    assert_eq!((reason, bytes_in), (CloseReason::Reset, 3));
}

#[tokio::test]
async fn a_peer_that_sends_and_vanishes_is_found_gone_by_the_next_write() {
    // A sink keeps its side open after the peer's FIN, so the peer may have gone.
    let lab = lab::start_with(mode(RelayMode::Sink)).await;
    let mut w = Watch::new(&lab).await;
    let (mut gone, gone_id) = w.open(&lab).await;
    gone.write_all(b"x").await.unwrap();
    w.data(gone_id, Direction::In, 1).await;
    drop(gone);
    w.event(|k| matches!(k, EventKind::TcpHalfClose { conn, .. } if *conn == gone_id))
        .await;
    // The page writes to the closed socket; its kernel answers RST.
    w.command(
        1,
        json!({"type":"tcp_send","conn":gone_id,"data":"anyone?"}),
    )
    .await
    .unwrap();
    let (reason, detail, bytes_in, _) = w.closed(gone_id).await;
    assert_eq!((reason, bytes_in), (CloseReason::Fin, 1));
    assert!(detail.unwrap_or_default().contains("RST"));
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_timeout() {
    let lab = lab::start_with(|c| c.tcp_idle_secs = 1).await;
    let mut w = Watch::new(&lab).await;
    let (mut client, conn) = w.open(&lab).await;
    assert_eq!(read_to_end(&mut client).await.unwrap(), b"");
    let (reason, detail, ..) = w.closed(conn).await;
    assert_eq!(reason, CloseReason::IdleTimeout);
    assert!(detail.unwrap_or_default().contains("--tcp-idle-secs"));
}

#[tokio::test]
async fn stopping_the_lab_closes_every_connection() {
    let lab = lab::start().await;
    let mut w = Watch::new(&lab).await;
    let (mut client, _) = w.open(&lab).await;
    lab.shutdown.cancel();
    assert_eq!(read_to_end(&mut client).await.unwrap(), b"");
}

#[tokio::test]
async fn kernel_figures_appear_in_the_connection_list() {
    let lab = lab::start().await;
    let mut w = Watch::new(&lab).await;
    let (mut client, conn) = w.open(&lab).await;
    w.command(1, json!({"type":"tcp_send","conn":conn,"data":"hello"}))
        .await
        .unwrap();
    assert_eq!(read_n(&mut client, 5).await, b"hello");
    let figures = || {
        lab.app
            .tcp
            .infos()
            .into_iter()
            .find(|i| i.id == conn)
            .and_then(|i| i.kernel)
    };
    eventually("TCP_INFO figures with the 5 bytes acked", || {
        figures().is_some_and(|k| k.bytes_acked >= 5)
    })
    .await;
    assert!(figures().unwrap().cwnd > 0);
}

/// The UDP service asks for a large receive buffer, and a burst that arrives while the lab
/// is busy waits there: the test's runtime has one thread and the sends never yield, so
/// the lab cannot read a single datagram until the whole burst is in the kernel's buffer.
/// (With the kernel's default buffer, about 208 KiB, this burst overflowed it.)
#[tokio::test]
async fn a_udp_burst_waits_in_the_receive_buffer_and_every_datagram_is_counted() {
    let lab = lab::start().await;
    let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let granted = lab.app.udp.rcvbuf();
    assert!(
        granted >= wirelab::udp::RCVBUF_WANTED.min(rmem_max),
        "the kernel granted {granted} bytes of receive buffer (rmem_max {rmem_max})"
    );
    // Each small datagram costs about 1 KiB of buffer; 2 KiB leaves room.
    let burst = (granted / 2048).min(2000) as u64;
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..burst {
        sock.send_to(format!("burst {i}").as_bytes(), lab.udp)
            .unwrap();
    }
    let app = lab.app.clone();
    eventually("every datagram of the burst counted", || {
        app.hub.counters.snapshot().udp_dgrams_in >= burst
    })
    .await;
    assert_eq!(lab.app.hub.counters.snapshot().udp_dgrams_in, burst);
}
