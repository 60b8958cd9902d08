//! The push channel over real sockets: snapshot and backlog, batching, resume, the lagged
//! path, commands good and bad, size and encoding limits, Origin, token, client limit.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
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
    let mut watcher = Client::connect(&lab, "").await;
    watcher.handshake().await;
    // Wait until all 8 were published, then look at what a new client gets.
    let mut seen = 0;
    while seen < 8 {
        if let ServerMsg::Events { events } = watcher.next().await {
            seen += events.len();
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
    let lab = lab::start_with(|c| c.dashboard = "0.0.0.0:0".parse().unwrap()).await;
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
