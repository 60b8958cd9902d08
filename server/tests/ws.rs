//! The push channel over real sockets: snapshot and backlog, batching, resume, the lagged
//! path, commands good and bad, size and encoding limits, Origin, token, client limit.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::lab::{self, Client};
use support::raw_ws;
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;
use wirelab_shared::{EventKind, ServerMsg};

async fn udp_burst(lab: &lab::TestLab, n: usize) -> UdpSocket {
    udp_burst_sized(lab, n, 0).await
}

/// Sends `n` datagrams, each padded to at least `size` bytes.
async fn udp_burst_sized(lab: &lab::TestLab, n: usize, size: usize) -> UdpSocket {
    send_burst(lab.udp, n, size).await
}

/// Sends `n` datagrams of at least `size` bytes to `to`, pausing now and then (every 64
/// datagrams or 128 KiB) so a lab on the same thread keeps up and the kernel's buffer
/// never overflows.
async fn send_burst(to: std::net::SocketAddr, n: usize, size: usize) -> UdpSocket {
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut since_pause = 0;
    for i in 0..n {
        let mut text = format!("dgram {i} ");
        while text.len() < size {
            text.push('.');
        }
        peer.send_to(text.as_bytes(), to).await.unwrap();
        since_pause += text.len();
        if i % 64 == 63 || since_pause >= 128 << 10 {
            since_pause = 0;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    peer
}

/// How many datagrams the lab has received, once that number stops growing: UDP may lose
/// some of a burst in the kernel on a busy machine, before the lab ever sees them.
async fn settled_udp_in(lab: &lab::TestLab) -> usize {
    let mut last = usize::MAX;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = lab.app.hub.counters.snapshot().udp_dgrams_in as usize;
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// Reads `events` frames until `n` events of protocol udp were seen (within 30 s); returns
/// the frames' sizes in events and the udp events' seqs.
async fn read_udp_events(client: &mut Client, n: usize) -> (Vec<usize>, Vec<u64>) {
    let (mut frames, mut seqs) = (Vec::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seqs.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} udp events arrived",
            seqs.len()
        );
        match client.next().await {
            ServerMsg::Events { events } => {
                frames.push(events.len());
                seqs.extend(
                    events
                        .iter()
                        .filter(|e| matches!(e.kind, EventKind::UdpDatagram { .. }))
                        .map(|e| e.seq),
                );
            }
            ServerMsg::Lagged { missed } => panic!("lagged by {missed}"),
            _ => {}
        }
    }
    (frames, seqs)
}

#[tokio::test]
async fn snapshot_carries_state_and_backlog() {
    let lab = lab::start_with(|c| c.backlog = 5).await;
    let _peer = udp_burst(&lab, 8).await;
    // Wait until all 8 were published (seq 1 to 8) and so was the watcher's own ws_open
    // (9 events), whether they came before the watcher (its snapshot) or after it.
    let mut watcher = Client::connect(&lab, "").await;
    let (_, first) = watcher.handshake().await;
    let mut top = first.last_seq;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while top < 9 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only seq {top} seen"
        );
        if let ServerMsg::Events { events } = watcher.next().await {
            top = events.iter().map(|e| e.seq).fold(top, u64::max);
        }
    }
    let mut client = Client::connect(&lab, "").await;
    let (_, snapshot) = client.handshake().await;
    assert_eq!(snapshot.backlog.len(), 5, "the backlog is capped at 5");
    assert_eq!(snapshot.backlog.last().unwrap().seq, snapshot.last_seq);
    assert_eq!(snapshot.state.counters.udp_dgrams_in, 8);
    assert_eq!(snapshot.state.udp.len(), 1);
    assert_eq!(snapshot.state.udp[0].dgrams_in, 8);
    assert!(snapshot.state.ws.iter().any(|c| c.id > 0));
}

#[tokio::test]
async fn a_burst_is_batched_into_few_frames() {
    let lab = lab::start().await;
    let mut client = Client::connect(&lab, "").await;
    client.handshake().await;
    let _peer = udp_burst(&lab, 2000).await;
    let received = settled_udp_in(&lab).await;
    assert!(received > 1000, "the lab received {received} of 2000");
    let (frames, seqs) = read_udp_events(&mut client, received).await;
    assert!(frames.iter().all(|&n| n <= 256), "{frames:?}");
    assert!(
        frames.len() < received / 10,
        "{} frames for {received} events",
        frames.len()
    );
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq is monotonic");
}

#[tokio::test]
async fn a_client_resumes_after_its_last_seq() {
    let lab = lab::start().await;
    let mut first = Client::connect(&lab, "").await;
    first.handshake().await;
    let peer = udp_burst(&lab, 3).await;
    let (_, seqs) = read_udp_events(&mut first, 3).await;
    let last = seqs[1];
    drop(first);
    peer.send_to(b"while away", lab.udp).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut again = Client::connect(&lab, &format!("?since={last}")).await;
    let (_, snapshot) = again.handshake().await;
    assert_eq!(snapshot.resumed_from, Some(last));
    let backlog: Vec<u64> = snapshot.backlog.iter().map(|e| e.seq).collect();
    assert_eq!(backlog.first(), Some(&(last + 1)), "{backlog:?}");
    assert!(snapshot.backlog.iter().any(|e| matches!(&e.kind,
        EventKind::UdpDatagram { payload, .. } if payload.data == "while away")));
    assert!(
        backlog.windows(2).all(|w| w[1] == w[0] + 1),
        "no holes: {backlog:?}"
    );

    let mut stale = Client::connect(&lab, "?since=999999").await;
    let (_, snapshot) = stale.handshake().await;
    assert_eq!(
        snapshot.resumed_from, None,
        "a seq from the future starts afresh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_told_it_lagged_and_others_are_not_affected() {
    let lab = lab::start_with(|c| {
        c.ws_queue = 16;
        c.ws_stuck_secs = 60;
    })
    .await;
    let mut healthy = Client::connect(&lab, "").await;
    healthy.handshake().await;
    let mut sleepy = Client::connect(&lab, "").await;
    sleepy.handshake().await;

    // `sleepy` reads nothing while 6000 events (48 MB: far more than the kernel's socket
    // buffers and its queue hold) flow; `healthy` reads them all as they come.
    let sender = tokio::spawn(send_burst(lab.udp, 6000, 8000));
    let mut healthy_seen = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let received = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "healthy saw {healthy_seen}"
        );
        if sender.is_finished() {
            let received = lab.app.hub.counters.snapshot().udp_dgrams_in as usize;
            if healthy_seen == received && settled_udp_in(&lab).await == received {
                break received;
            }
        }
        match healthy.try_next(Duration::from_millis(200)).await {
            Some(ServerMsg::Events { events }) => {
                healthy_seen += events
                    .iter()
                    .filter(|e| matches!(e.kind, EventKind::UdpDatagram { .. }))
                    .count();
            }
            Some(ServerMsg::Lagged { missed }) => panic!("the healthy client lagged by {missed}"),
            _ => {}
        }
    };
    assert!(received > 3000, "the lab received {received} of 6000");

    let (mut missed, mut udp_seen) = (0, 0);
    while let Some(msg) = sleepy.try_next(Duration::from_millis(500)).await {
        match msg {
            ServerMsg::Lagged { missed: m } => missed += m,
            ServerMsg::Events { events } => {
                udp_seen += events
                    .iter()
                    .filter(|e| matches!(e.kind, EventKind::UdpDatagram { .. }))
                    .count() as u64;
            }
            _ => {}
        }
    }
    assert!(missed > 0, "the sleepy client was told it lagged");
    // No silent holes: what it saw plus what it was told it missed covers every event
    // (the open/close events of the clients themselves are among the missed ones).
    let received = received as u64;
    assert!(
        udp_seen + missed >= received,
        "seen {udp_seen} + missed {missed} < {received}"
    );
    assert!(udp_seen < received);
    let counters = lab.app.hub.counters.snapshot();
    assert_eq!(
        counters.ws_missed, missed,
        "the server counted what it said"
    );
}

#[tokio::test]
async fn bad_commands_get_errors_and_the_connection_stays_open() {
    let lab = lab::start().await;
    let mut client = Client::connect(&lab, "").await;
    client.handshake().await;
    client
        .send_text(r#"{"type":"launch_missiles","id":7}"#)
        .await;
    let err = client.reply(7).await.unwrap_err();
    assert!(err.contains("launch_missiles"), "{err}");
    client.send_text(r#"{"type":"chat","id":8}"#).await;
    let err = client.reply(8).await.unwrap_err();
    assert!(err.contains("text"), "names the missing field: {err}");
    client
        .send_text(r#"{"type":"udp_send","id":9,"data":"zz","enc":"hex"}"#)
        .await;
    assert!(client.reply(9).await.unwrap_err().contains("hex"));
    client
        .send_text(r#"{"type":"udp_send","id":10,"peer":"127.0.0.1:9","data":"x"}"#)
        .await;
    let err = client.reply(10).await.unwrap_err();
    assert!(err.contains("--allow-outbound"), "no reflection: {err}");
    client.send_text("{ not json").await;
    loop {
        if let ServerMsg::Error { id: None, message } = client.next().await {
            assert!(message.contains("could not read"), "{message}");
            break;
        }
    }
    client.send_text(r#"{"type":"ping","id":11}"#).await;
    loop {
        if let ServerMsg::Pong { id, .. } = client.next().await {
            assert_eq!(id, 11, "still open and answering");
            break;
        }
    }
}

#[tokio::test]
async fn chat_reaches_every_client_and_plain_text_is_a_message_event() {
    let lab = lab::start().await;
    let mut a = Client::connect(&lab, "").await;
    a.handshake().await;
    let mut b = Client::connect(&lab, "").await;
    b.handshake().await;
    a.send_text(r#"{"type":"chat","id":1,"text":"<b>hi</b>"}"#)
        .await;
    let ev = b
        .wait_event(|k| matches!(k, EventKind::Chat { text, .. } if text == "<b>hi</b>"))
        .await;
    let EventKind::Chat { from, .. } = ev.kind else {
        unreachable!()
    };
    assert!(from.starts_with("ws#"), "{from}");
    a.send_text("just words").await;
    let ev = b
        .wait_event(
            |k| matches!(k, EventKind::WsMessage { payload, .. } if payload.data == "just words"),
        )
        .await;
    assert!(matches!(ev.kind, EventKind::WsMessage { size: 10, .. }));
}

#[tokio::test]
async fn subscribe_filters_events_by_protocol() {
    let lab = lab::start().await;
    let mut client = Client::connect(&lab, "").await;
    client.handshake().await;
    client
        .send_text(r#"{"type":"subscribe","id":3,"protocols":["ws"]}"#)
        .await;
    assert!(client.reply(3).await.unwrap().unwrap().contains("ws"));
    let _peer = udp_burst(&lab, 5).await;
    client
        .send_text(r#"{"type":"chat","id":4,"text":"only this"}"#)
        .await;
    let mut saw_chat = false;
    while let Some(msg) = client.try_next(Duration::from_millis(500)).await {
        if let ServerMsg::Events { events } = msg {
            assert!(
                events
                    .iter()
                    .all(|e| !matches!(e.kind, EventKind::UdpDatagram { .. }))
            );
            saw_chat |= events
                .iter()
                .any(|e| matches!(e.kind, EventKind::Chat { .. }));
        }
    }
    assert!(saw_chat);
}

#[tokio::test]
async fn an_oversized_message_is_closed_with_1009() {
    let lab = lab::start_with(|c| c.max_ws_message = 1024).await;
    let mut s = raw_ws::upgrade(lab.dashboard, "/ws", &[]).await.unwrap();
    raw_ws::send_frame(&mut s, 1, &vec![b'a'; 4096]).await;
    assert_eq!(raw_ws::close_code(&mut s).await, Some(1009));
    // The lab is still up for the next client.
    let mut client = Client::connect(&lab, "").await;
    client.handshake().await;
}

#[tokio::test]
async fn invalid_utf8_text_is_closed_with_1007() {
    let lab = lab::start().await;
    let mut s = raw_ws::upgrade(lab.dashboard, "/ws", &[]).await.unwrap();
    raw_ws::send_frame(&mut s, 1, &[0x68, 0xff, 0xfe, 0x69]).await;
    assert_eq!(raw_ws::close_code(&mut s).await, Some(1007));
}

#[tokio::test]
async fn binary_garbage_is_shown_as_a_message_not_a_crash() {
    let lab = lab::start().await;
    let mut watcher = Client::connect(&lab, "").await;
    watcher.handshake().await;
    let mut s = raw_ws::upgrade(lab.dashboard, "/ws", &[]).await.unwrap();
    raw_ws::send_frame(&mut s, 2, &[0, 159, 146, 150, 255]).await;
    let ev = watcher
        .wait_event(|k| matches!(k, EventKind::WsMessage { .. }))
        .await;
    let EventKind::WsMessage { payload, size, .. } = ev.kind else {
        unreachable!()
    };
    assert_eq!(size, 5);
    assert!(!payload.is_text());
    assert_eq!(payload.bytes(), vec![0, 159, 146, 150, 255]);
}

#[tokio::test]
async fn a_foreign_origin_is_refused_and_the_own_origin_is_not() {
    let lab = lab::start().await;
    let refused = raw_ws::upgrade(lab.dashboard, "/ws", &[("Origin", "http://evil.example")])
        .await
        .unwrap_err();
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(refused.contains("--allow-origin"), "{refused}");
    let own = format!("http://{}", lab.dashboard);
    assert!(
        raw_ws::upgrade(lab.dashboard, "/ws", &[("Origin", &own)])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_exposed_lab_makes_a_token_and_enforces_it() {
    // Exposed, the dashboard would speak TLS (browser_tls.rs); the token is the same with
    // `--dashboard-tls off`, spoken here in plain HTTP.
    let lab = lab::start_with(|c| {
        c.dashboard = "0.0.0.0:0".parse().unwrap();
        c.dashboard_tls = wirelab::config::DashboardTls::Off;
    })
    .await;
    assert!(!lab.dashboard_tls);
    let token = lab.app.token.clone().expect("an exposed lab has a token");
    assert!(lab.url().contains(&token));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], lab.dashboard.port()));
    let refused = raw_ws::upgrade(addr, "/ws", &[]).await.unwrap_err();
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let wrong = raw_ws::upgrade(addr, "/ws?token=nope", &[])
        .await
        .unwrap_err();
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    assert!(
        raw_ws::upgrade(addr, &format!("/ws?token={token}"), &[])
            .await
            .is_ok()
    );
    let bearer = format!("Bearer {token}");
    assert!(
        raw_ws::upgrade(addr, "/ws", &[("Authorization", &bearer)])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn past_the_client_limit_a_client_is_refused_with_a_reason() {
    let lab = lab::start_with(|c| c.max_ws_clients = 2).await;
    let _a = raw_ws::upgrade(lab.dashboard, "/ws", &[]).await.unwrap();
    let _b = raw_ws::upgrade(lab.dashboard, "/ws", &[]).await.unwrap();
    let refused = raw_ws::upgrade(lab.dashboard, "/ws", &[])
        .await
        .unwrap_err();
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("--max-ws-clients"), "{refused}");
    assert_eq!(lab.app.hub.counters.snapshot().ws_refused, 1);
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_format() {
    let lab = lab::start().await;
    let _peer = udp_burst(&lab, 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut s = tokio::net::TcpStream::connect(lab.dashboard).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    assert!(
        body.contains("wirelab_datagrams_in_total{service=\"udp\"} 3"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE wirelab_events_total counter"),
        "{body}"
    );
}

#[tokio::test]
async fn a_client_close_is_an_event_with_its_code() {
    let lab = lab::start().await;
    let mut watcher = Client::connect(&lab, "").await;
    watcher.handshake().await;
    let mut leaver = Client::connect(&lab, "").await;
    leaver.handshake().await;
    leaver
        .ws
        .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: 4321.into(),
            reason: "bye now".into(),
        }))
        .await
        .unwrap();
    while let Some(Ok(msg)) = leaver.ws.next().await {
        if matches!(msg, Message::Close(_)) {
            break;
        }
    }
    let ev = watcher
        .wait_event(|k| matches!(k, EventKind::WsClose { .. }))
        .await;
    let EventKind::WsClose { code, reason, .. } = ev.kind else {
        unreachable!()
    };
    assert_eq!((code, reason.as_str()), (Some(4321), "bye now"));
}

#[tokio::test]
async fn fragmented_and_large_messages_from_a_library_client_are_understood() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let lab = lab::start_with(|c| c.max_ws_message = 100_000).await;
    let mut watcher = Client::connect(&lab, "").await;
    watcher.handshake().await;
    let mut client = Client::connect(&lab, "").await;
    client.handshake().await;

    // A command in three fragments, with a ping between two of them.
    let parts = [r#"{"type":"pi"#, r#"ng","id""#, r#":77}"#];
    let opcodes = [Data::Text, Data::Continue, Data::Continue];
    for (i, (part, op)) in parts.iter().zip(opcodes).enumerate() {
        let frame = Frame::message(part.as_bytes().to_vec(), OpCode::Data(op), i == 2);
        client.ws.send(Message::Frame(frame)).await.unwrap();
        if i == 0 {
            client.ws.send(Message::Ping("mid".into())).await.unwrap();
        }
    }
    let mut got_pong = false;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), client.ws.next())
            .await
            .expect("an answer within 5 s")
            .unwrap()
            .unwrap();
        match msg {
            Message::Pong(p) => {
                assert_eq!(&p[..], b"mid");
                got_pong = true;
            }
            Message::Text(t) => {
                if let ServerMsg::Pong { id, .. } = serde_json::from_str(t.as_str()).unwrap() {
                    assert_eq!(id, 77, "the fragments were joined into one command");
                    break;
                }
            }
            _ => {}
        }
    }
    assert!(got_pong, "the ping between fragments was answered first");

    // 70,000 bytes: a 64-bit length, under this lab's limit.
    let big = "x".repeat(70_000);
    client.send_text(&big).await;
    let ev = watcher
        .wait_event(|k| matches!(k, EventKind::WsMessage { size: 70_000, .. }))
        .await;
    assert!(matches!(ev.kind, EventKind::WsMessage { .. }));
    client.send_text(r#"{"type":"ping","id":78}"#).await;
    loop {
        if let ServerMsg::Pong { id, .. } = client.next().await {
            assert_eq!(id, 78, "still open after the large message");
            break;
        }
    }
}

/// Reads one frame sent by the server: (first byte, payload).
async fn read_frame(s: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.unwrap();
    assert_eq!(h[1] & 0x80, 0, "a server's frames are not masked");
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        s.read_exact(&mut b).await.unwrap();
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b).await.unwrap();
        len = u64::from_be_bytes(b);
    }
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload).await.unwrap();
    (h[0], payload)
}

#[tokio::test]
async fn pings_are_answered_and_a_close_is_echoed() {
    let lab = lab::start().await;
    let mut s = raw_ws::upgrade(lab.dashboard, "/ws", &[]).await.unwrap();
    raw_ws::send_frame(&mut s, 9, b"are you there").await;
    let pong = loop {
        let (b0, payload) = tokio::time::timeout(Duration::from_secs(5), read_frame(&mut s))
            .await
            .expect("a frame within 5 s");
        if b0 & 0x0f == 0xA {
            break (b0, payload);
        }
    };
    assert_eq!(pong, (0x8A, b"are you there".to_vec()));
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"done");
    raw_ws::send_frame(&mut s, 8, &close).await;
    assert_eq!(raw_ws::close_code(&mut s).await, Some(1000), "echoed");
}

#[tokio::test]
async fn broken_framing_is_closed_with_1002() {
    use tokio::io::AsyncWriteExt;
    let lab = lab::start().await;
    // An unmasked frame, a reserved bit, an unknown opcode, a fragmented ping.
    let cases: [&[u8]; 4] = [
        &[0x81, 0x02, b'h', b'i'],
        &[0xC1, 0x80, 1, 2, 3, 4],
        &[0x83, 0x80, 1, 2, 3, 4],
        &[0x09, 0x80, 1, 2, 3, 4],
    ];
    for bytes in cases {
        let mut s = raw_ws::upgrade(lab.dashboard, "/ws", &[]).await.unwrap();
        s.write_all(bytes).await.unwrap();
        assert_eq!(raw_ws::close_code(&mut s).await, Some(1002), "{bytes:02x?}");
    }
    let mut client = Client::connect(&lab, "").await;
    client.handshake().await;
}

#[tokio::test]
async fn a_request_that_is_not_a_websocket_upgrade_is_told_what_it_lacks() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let lab = lab::start().await;
    let addr = lab.dashboard;
    let ask = move |extra: &'static str| async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close{extra}\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        text
    };
    let plain = ask("").await;
    assert!(plain.starts_with("HTTP/1.1 400"), "{plain}");
    assert!(plain.contains("Upgrade: websocket"), "{plain}");
    let old = ask(", upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8").await;
    assert!(old.starts_with("HTTP/1.1 426"), "{old}");
    assert!(
        old.to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{old}"
    );
    let keyless = ask(", upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13").await;
    assert!(keyless.starts_with("HTTP/1.1 400"), "{keyless}");
    assert!(keyless.contains("Sec-WebSocket-Key"), "{keyless}");
}

/// Inflates a permessage-deflate payload the way a client does (RFC 7692 7.2.2: append
/// `00 00 ff ff`), with flate2 directly rather than the lab's own helper.
fn inflate(payload: &[u8]) -> String {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut d = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(payload.len() * 4 + 1024);
    while (d.total_in() as usize) < input.len() {
        out.reserve(out.capacity());
        let at = d.total_in() as usize;
        d.decompress_vec(&input[at..], &mut out, flate2::FlushDecompress::Sync)
            .expect("valid deflate");
        assert!(out.len() < 64 << 20, "inflates to less than 64 MiB");
    }
    String::from_utf8(out).expect("UTF-8 JSON")
}

/// Reads frames until one whose text (inflated when RSV1 is set) contains `needle`;
/// returns whether that one was compressed, and its text.
async fn frame_with(s: &mut tokio::net::TcpStream, needle: &str) -> (bool, String) {
    loop {
        let (b0, payload) = tokio::time::timeout(Duration::from_secs(5), read_frame(s))
            .await
            .expect("a frame within 5 s");
        if b0 & 0x0f != 1 {
            continue;
        }
        let compressed = b0 & 0x40 != 0;
        let text = if compressed {
            inflate(&payload)
        } else {
            String::from_utf8(payload).unwrap()
        };
        serde_json::from_str::<ServerMsg>(&text).expect("a server message");
        if text.contains(needle) {
            return (compressed, text);
        }
    }
}

const OFFER: (&str, &str) = (
    "Sec-WebSocket-Extensions",
    "permessage-deflate; client_max_window_bits",
);

#[tokio::test]
async fn permessage_deflate_is_agreed_and_both_ways_compress() {
    let lab = lab::start_with(|c| c.ws_compress = wirelab::ws::deflate::Policy::Always).await;
    let (mut s, head) = raw_ws::upgrade_with_head(lab.dashboard, "/ws", &[OFFER])
        .await
        .unwrap();
    assert!(
        head.to_ascii_lowercase().contains(
            "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; \
             client_no_context_takeover"
        ),
        "{head}"
    );
    let (compressed, _) = frame_with(&mut s, r#""type":"snapshot""#).await;
    assert!(compressed, "the snapshot (over 512 bytes) is compressed");
    // A datagram's event arrives compressed and inflates to the event.
    let text = format!("deflated-{}", std::process::id());
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    peer.send_to(text.repeat(40).as_bytes(), lab.udp)
        .await
        .unwrap();
    let (compressed, json) = frame_with(&mut s, &text).await;
    assert!(compressed, "{json}");
    // A compressed command from the client is understood (RSV1 | text).
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut cmd = Vec::with_capacity(256);
    c.compress_vec(
        br#"{"type":"ping","id":4242}"#,
        &mut cmd,
        flate2::FlushCompress::Sync,
    )
    .unwrap();
    assert!(cmd.ends_with(&[0, 0, 0xff, 0xff]));
    cmd.truncate(cmd.len() - 4);
    raw_ws::send_frame(&mut s, 0x41, &cmd).await;
    frame_with(&mut s, r#""id":4242"#).await;
    // A bomb: 64 KiB is the limit, this inflates to 1 MiB.
    let mut bomb = Vec::with_capacity(1 << 20);
    flate2::Compress::new(flate2::Compression::best(), false)
        .compress_vec(&vec![b' '; 1 << 20], &mut bomb, flate2::FlushCompress::Sync)
        .unwrap();
    assert!(bomb.len() < 8 * 1024);
    raw_ws::send_frame(&mut s, 0x41, &bomb[..bomb.len() - 4]).await;
    assert_eq!(raw_ws::close_code(&mut s).await, Some(1009));
}

#[tokio::test]
async fn a_big_snapshot_is_compressed_too() {
    let lab = lab::start_with(|c| c.ws_compress = wirelab::ws::deflate::Policy::Always).await;
    // Eight datagrams of 60 KB in the backlog: a snapshot of about 500 KB, compressed off
    // the runtime's workers.
    let _peer = udp_burst_sized(&lab, 8, 60_000).await;
    assert_eq!(settled_udp_in(&lab).await, 8);
    let (mut s, _) = raw_ws::upgrade_with_head(lab.dashboard, "/ws", &[OFFER])
        .await
        .unwrap();
    let (compressed, json) = frame_with(&mut s, r#""type":"snapshot""#).await;
    assert!(compressed);
    assert!(json.len() > 400_000, "{} bytes", json.len());
    assert!(json.contains("dgram 7 ....."), "the last datagram is in it");
}

#[tokio::test]
async fn on_loopback_frames_are_compressed_only_once_many_clients_share_them() {
    let lab = lab::start().await; // --ws-compress auto
    let (mut first, _) = raw_ws::upgrade_with_head(lab.dashboard, "/ws", &[OFFER])
        .await
        .unwrap();
    frame_with(&mut first, r#""type":"snapshot""#).await;
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    peer.send_to(b"alone-on-loopback", lab.udp).await.unwrap();
    let (compressed, _) = frame_with(&mut first, "alone-on-loopback").await;
    assert!(!compressed, "one local client: not worth the CPU");

    let mut others = Vec::new();
    for _ in 1..wirelab::ws::deflate::SHARED_FROM {
        let (mut s, _) = raw_ws::upgrade_with_head(lab.dashboard, "/ws", &[OFFER])
            .await
            .unwrap();
        frame_with(&mut s, r#""type":"snapshot""#).await;
        others.push(s);
    }
    assert_eq!(lab.app.ws.deflating(), wirelab::ws::deflate::SHARED_FROM);
    peer.send_to(b"shared-by-eight", lab.udp).await.unwrap();
    let (compressed, _) = frame_with(&mut first, "shared-by-eight").await;
    assert!(compressed, "eight clients share one compression");
    for s in &mut others {
        let (compressed, _) = frame_with(s, "shared-by-eight").await;
        assert!(compressed);
    }
    // A client that offers nothing still gets plain frames.
    let mut plain = raw_ws::upgrade(lab.dashboard, "/ws", &[]).await.unwrap();
    frame_with(&mut plain, r#""type":"snapshot""#).await;
    peer.send_to(b"plain-for-some", lab.udp).await.unwrap();
    assert!(!frame_with(&mut plain, "plain-for-some").await.0);
}

#[tokio::test]
async fn with_compression_off_the_offer_is_declined() {
    let lab = lab::start_with(|c| c.ws_compress = wirelab::ws::deflate::Policy::Off).await;
    let (mut s, head) = raw_ws::upgrade_with_head(lab.dashboard, "/ws", &[OFFER])
        .await
        .unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions"),
        "{head}"
    );
    // RSV1 without the extension is a protocol error.
    raw_ws::send_frame(&mut s, 0x41, b"\x01\x02").await;
    assert_eq!(raw_ws::close_code(&mut s).await, Some(1002));
}
