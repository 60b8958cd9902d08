//! Relay mode's `tcp` proxies over real sockets: both legs as events with exact byte
//! counts, half-close passed on per direction, an upstream that is down or resets
//! mid-stream, the per-proxy limit, and back-pressure (a reader that does not read).

mod support;

use std::time::Duration;

use socket2::SockRef;
use support::events::Events;
use support::lab::{self, TestLab};
use support::raw_http;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use wirelab::relay::ProxySpec;
use wirelab_shared::{CloseReason, EventKind, Leg};

/// How long anything a test waits for may take.
const WAIT: Duration = Duration::from_secs(10);

/// A lab with one `tcp` proxy named `name` to `upstream`, listening on port 0.
async fn lab_with_proxy(name: &str, upstream: &str, max_conns: usize) -> TestLab {
    let spec: ProxySpec = format!("{name}=tcp://127.0.0.1:0->{upstream}")
        .parse()
        .unwrap();
    lab::start_with(|c| {
        c.proxies = vec![spec];
        c.max_proxy_conns = max_conns;
    })
    .await
}

/// The real address a proxy listens on.
fn listen(lab: &TestLab, name: &str) -> String {
    lab.app
        .relays
        .get(name)
        .expect("the proxy exists")
        .spec()
        .listen
}

/// An upstream that answers every read with the same bytes upper-cased, and closes its
/// side after the client's FIN.
async fn shouting_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = s.read(&mut buf).await {
                    let loud = buf[..n].to_ascii_uppercase();
                    if s.write_all(&loud).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn both_legs_are_events_with_exact_counts_and_fins_pass_through() {
    let upstream = shouting_upstream().await;
    let lab = lab_with_proxy("loud", &upstream, 16).await;
    let mut events = Events::connect(&lab).await;
    let mut client = TcpStream::connect(listen(&lab, "loud")).await.unwrap();
    client.write_all(b"hello relay").await.unwrap();
    let mut got = [0u8; 11];
    timeout(WAIT, client.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"HELLO RELAY");
    // Our FIN reaches the upstream, which closes in turn: its FIN reaches us.
    client.shutdown().await.unwrap();
    let mut rest = Vec::new();
    timeout(WAIT, client.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty());

    let open = events
        .wait("relay_open", |k| matches!(k, EventKind::RelayOpen { .. }))
        .await;
    let EventKind::RelayOpen {
        proxy,
        conn,
        upstream: up,
        ..
    } = open.kind
    else {
        unreachable!()
    };
    assert_eq!((proxy.as_str(), up.as_str()), ("loud", upstream.as_str()));
    let from_client = events
        .wait("data from the client", |k| {
            matches!(
                k,
                EventKind::RelayData {
                    from: Leg::Client,
                    ..
                }
            )
        })
        .await;
    let EventKind::RelayData { size, payload, .. } = &from_client.kind else {
        unreachable!()
    };
    assert_eq!((*size, payload.data.as_str()), (11, "hello relay"));
    events
        .wait("data from the upstream", |k| {
            matches!(k, EventKind::RelayData { from: Leg::Upstream, payload, .. } if payload.data == "HELLO RELAY")
        })
        .await;
    for leg in [Leg::Client, Leg::Upstream] {
        events
            .wait(
                "a half-close",
                |k| matches!(k, EventKind::RelayHalfClose { from, .. } if *from == leg),
            )
            .await;
    }
    let close = events
        .wait("relay_close", |k| matches!(k, EventKind::RelayClose { .. }))
        .await;
    let EventKind::RelayClose {
        conn: closed,
        reason,
        by,
        client_in,
        client_out,
        upstream_in,
        upstream_out,
        ..
    } = close.kind
    else {
        unreachable!()
    };
    assert_eq!(closed, conn);
    assert_eq!((reason, by), (CloseReason::Fin, Some(Leg::Client)));
    assert_eq!(
        (client_in, upstream_out, upstream_in, client_out),
        (11, 11, 11, 11)
    );
    // The store records them like any event: the close, found by its proxy's name.
    let recorded = recorded(&lab, "loud").await;
    assert!(
        recorded
            .iter()
            .any(|j| j.contains(r#""type":"relay_close""#))
    );
    assert!(
        recorded
            .iter()
            .any(|j| j.contains(r#""type":"relay_open""#))
    );
    let info = lab.app.lab_state().proxies;
    assert_eq!(info.len(), 1);
    assert_eq!(
        (
            info[0].conns,
            info[0].open,
            info[0].client_in,
            info[0].client_out
        ),
        (1, 0, 11, 11)
    );
}

/// The recorded events whose text has `q`, once the recorder has a `relay_close` among
/// them (it writes in the background).
async fn recorded(lab: &TestLab, q: &str) -> Vec<String> {
    let filter = wirelab::store::query::Filter {
        q: Some(q.into()),
        ..Default::default()
    };
    for _ in 0..100 {
        let f = filter.clone();
        let page = lab
            .app
            .store
            .read(move |c| {
                wirelab::store::query::page(c, &f, wirelab::store::query::Order::Asc, 100)
            })
            .await
            .unwrap()
            .unwrap();
        if page.events.iter().any(|j| j.contains("relay_close")) {
            return page.events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the recorder did not record the relay's close within 10 s");
}

#[tokio::test]
async fn an_upstream_that_is_down_gets_the_client_a_reset_and_says_why() {
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nobody = free.local_addr().unwrap().to_string();
    drop(free);
    let lab = lab_with_proxy("down", &nobody, 16).await;
    let mut events = Events::connect(&lab).await;
    let mut client = TcpStream::connect(listen(&lab, "down")).await.unwrap();
    let mut buf = [0u8; 16];
    let read = timeout(WAIT, client.read(&mut buf)).await.unwrap();
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "the client gets a RST"
    );
    let refused = events
        .wait("relay_refused", |k| {
            matches!(k, EventKind::RelayRefused { .. })
        })
        .await;
    let EventKind::RelayRefused { reason, .. } = refused.kind else {
        unreachable!()
    };
    assert!(reason.contains("refused the connection"), "{reason}");
    assert!(reason.contains(&nobody), "{reason}");
    assert_eq!(lab.app.relays.get("down").unwrap().info().refused, 1);
}

#[tokio::test]
async fn an_upstream_reset_mid_stream_resets_the_client_and_the_event_says_who() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(b"partial").await.unwrap();
        SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
        drop(s);
    });
    let lab = lab_with_proxy("rst", &upstream, 16).await;
    let mut events = Events::connect(&lab).await;
    let mut client = TcpStream::connect(listen(&lab, "rst")).await.unwrap();
    client.write_all(b"start").await.unwrap();
    let close = events
        .wait("relay_close", |k| matches!(k, EventKind::RelayClose { .. }))
        .await;
    let EventKind::RelayClose { reason, by, .. } = close.kind else {
        unreachable!()
    };
    assert_eq!((reason, by), (CloseReason::Reset, Some(Leg::Upstream)));
    // The client sees the reset too (possibly after the bytes that made it through).
    let mut all = Vec::new();
    let read = timeout(WAIT, client.read_to_end(&mut all)).await.unwrap();
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
}

#[tokio::test]
async fn past_the_limit_a_client_is_reset_and_counted() {
    let upstream = shouting_upstream().await;
    let lab = lab_with_proxy("one", &upstream, 1).await;
    let mut events = Events::connect(&lab).await;
    let addr = listen(&lab, "one");
    let mut first = TcpStream::connect(&addr).await.unwrap();
    first.write_all(b"a").await.unwrap();
    let mut one = [0u8; 1];
    first.read_exact(&mut one).await.unwrap();
    let mut second = TcpStream::connect(&addr).await.unwrap();
    let read = timeout(WAIT, second.read(&mut one)).await.unwrap();
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
    let refused = events
        .wait("relay_refused", |k| {
            matches!(k, EventKind::RelayRefused { .. })
        })
        .await;
    let EventKind::RelayRefused { reason, .. } = refused.kind else {
        unreachable!()
    };
    assert!(reason.contains("--max-proxy-conns"), "{reason}");
    // The first is still served.
    first.write_all(b"b").await.unwrap();
    first.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"B");
}

#[tokio::test]
async fn a_reader_that_does_not_read_holds_at_most_one_window_in_the_lab() {
    // The upstream accepts and never reads.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap().to_string();
    let (keep_tx, keep_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let _ = keep_tx.send(s);
    });
    let lab = lab_with_proxy("stuck", &upstream, 16).await;
    let mut client = TcpStream::connect(listen(&lab, "stuck")).await.unwrap();
    let _held = keep_rx.await.unwrap();
    // Write until nothing more goes for a second: every buffer on the way is full.
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0u64;
    while let Ok(Ok(n)) = timeout(Duration::from_secs(1), client.write(&chunk)).await {
        sent += n as u64;
        assert!(
            sent < 1 << 30,
            "1 GiB went into a reader that does not read"
        );
    }
    let p = lab.app.relays.get("stuck").unwrap().info();
    assert!(p.client_in > 0 && p.client_in <= sent);
    let held = p.client_in - p.upstream_out;
    eprintln!(
        "sent {sent} B; the lab read {} B, wrote {} B: {held} B held",
        p.client_in, p.upstream_out
    );
    assert!(
        held <= wirelab::pipeline::pump::WINDOW as u64,
        "the lab holds {held} bytes between the legs, more than one window"
    );
}

/// A UDP upstream that answers each datagram with the same bytes upper-cased.
async fn shouting_udp_upstream() -> String {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n].to_ascii_uppercase(), from).await;
        }
    });
    addr
}

#[tokio::test]
async fn udp_sessions_per_client_end_when_idle_and_are_bounded() {
    let upstream = shouting_udp_upstream().await;
    let spec: ProxySpec = format!("shout=udp://127.0.0.1:0->{upstream}")
        .parse()
        .unwrap();
    let lab = lab::start_with(|c| {
        c.proxies = vec![spec];
        c.max_proxy_conns = 2;
        c.proxy_udp_idle_secs = 1;
    })
    .await;
    let mut events = Events::connect(&lab).await;
    let listen = listen(&lab, "shout");
    let mut clients = Vec::new();
    for text in ["one", "two"] {
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(text.as_bytes(), &listen).await.unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = timeout(WAIT, c.recv_from(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], text.to_ascii_uppercase().as_bytes());
        clients.push(c);
    }
    // A third client is past the limit: dropped, counted and shown.
    let third = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    third.send_to(b"three", &listen).await.unwrap();
    let refused = events
        .wait("relay_refused", |k| {
            matches!(k, EventKind::RelayRefused { .. })
        })
        .await;
    let third_peer = third.local_addr().unwrap().to_string();
    assert_eq!(refused.kind.peer(), Some(third_peer.as_str()));
    let mut sessions = Vec::new();
    for c in &clients {
        let peer = c.local_addr().unwrap().to_string();
        let open = events
            .wait(
                "relay_udp_open",
                |k| matches!(k, EventKind::RelayUdpOpen { peer: p, .. } if *p == peer),
            )
            .await;
        let EventKind::RelayUdpOpen { session, .. } = open.kind else {
            unreachable!()
        };
        sessions.push(session);
    }
    assert_ne!(sessions[0], sessions[1], "a session per client address");
    // Idle for a second: both end, with their exact counts.
    for (session, size) in sessions.iter().zip([3u64, 3]) {
        let close = events
            .wait(
                "relay_udp_close",
                |k| matches!(k, EventKind::RelayUdpClose { session: s, .. } if s == session),
            )
            .await;
        let EventKind::RelayUdpClose {
            reason,
            client_in,
            client_out,
            upstream_in,
            upstream_out,
            ..
        } = close.kind
        else {
            unreachable!()
        };
        assert!(reason.contains("--proxy-udp-idle-secs"), "{reason}");
        assert_eq!(
            (client_in, upstream_out, upstream_in, client_out),
            (size, size, size, size)
        );
    }
    let info = lab.app.relays.get("shout").unwrap().info();
    assert_eq!(
        (info.conns, info.open, info.refused, info.dropped),
        (2, 0, 1, 1)
    );
    // With room again, the third client gets a session.
    third.send_to(b"again", &listen).await.unwrap();
    let peer = third.local_addr().unwrap().to_string();
    let closed = events
        .wait(
            "the third's session",
            |k| matches!(k, EventKind::RelayUdpClose { peer: p, .. } if *p == peer),
        )
        .await;
    assert!(
        matches!(
            closed.kind,
            EventKind::RelayUdpClose {
                client_in: 5,
                client_out: 5,
                ..
            }
        ),
        "{closed:?}"
    );
    let mut buf = [0u8; 16];
    let (n, _) = timeout(WAIT, third.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"AGAIN");
}

#[tokio::test]
async fn the_page_adds_disables_enables_and_deletes_a_proxy() {
    let upstream = shouting_upstream().await;
    let lab = lab::start().await;
    let mut page = lab::Client::connect(&lab, "").await;
    page.handshake().await;
    let add = format!(
        r#"{{"type":"proxy_add","id":1,"name":"p","listen":"127.0.0.1:0","upstream":"{upstream}"}}"#
    );
    page.send_text(&add).await;
    let said = page.reply(1).await.expect("added");
    assert!(said.unwrap().contains("listens on 127.0.0.1:"));
    let addr = listen(&lab, "p");
    let mut c = TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"hi").await.unwrap();
    let mut two = [0u8; 2];
    c.read_exact(&mut two).await.unwrap();
    assert_eq!(&two, b"HI");

    page.send_text(r#"{"type":"proxy_set","id":2,"name":"p","enabled":false}"#)
        .await;
    page.reply(2).await.expect("disabled");
    assert!(
        TcpStream::connect(&addr).await.is_err(),
        "disabled: nothing listens"
    );
    // Its open connection ended with it.
    let mut rest = Vec::new();
    let _ = timeout(WAIT, c.read_to_end(&mut rest)).await.unwrap();
    page.send_text(r#"{"type":"proxy_set","id":3,"name":"p","enabled":true}"#)
        .await;
    page.reply(3).await.expect("enabled");
    TcpStream::connect(&addr).await.expect("listening again");

    let far = r#"{"type":"proxy_add","id":4,"name":"far","listen":"127.0.0.1:0","upstream":"192.0.2.1:80"}"#;
    page.send_text(far).await;
    let refused = page.reply(4).await.unwrap_err();
    assert!(refused.contains("--allow-outbound"), "{refused}");
    page.send_text(r#"{"type":"proxy_delete","id":5,"name":"p"}"#)
        .await;
    page.reply(5).await.expect("deleted");
    page.send_text(r#"{"type":"proxy_delete","id":6,"name":"p"}"#)
        .await;
    assert_eq!(page.reply(6).await.unwrap_err(), "p: proxy not found");
    assert!(lab.app.lab_state().proxies.is_empty());
}

#[tokio::test]
async fn two_thousand_connections_through_one_proxy_each_get_their_answer() {
    let upstream = shouting_upstream().await;
    let lab = lab_with_proxy("many", &upstream, 4096).await;
    let addr = listen(&lab, "many");
    let clients: Vec<_> = (0..2000u32)
        .map(|i| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let mut s = timeout(Duration::from_secs(30), TcpStream::connect(&addr))
                    .await
                    .expect("connects in time")
                    .expect("connects");
                let text = format!("c{i:04}");
                s.write_all(text.as_bytes()).await.unwrap();
                let mut back = [0u8; 5];
                timeout(Duration::from_secs(30), s.read_exact(&mut back))
                    .await
                    .expect("answered in time")
                    .unwrap();
                assert_eq!(back, text.to_ascii_uppercase().as_bytes());
                s
            })
        })
        .collect();
    let mut held = Vec::new();
    for c in clients {
        held.push(c.await.unwrap());
    }
    let p = lab.app.relays.get("many").unwrap().info();
    assert_eq!((p.conns, p.open, p.refused), (2000, 2000, 0));
    assert_eq!((p.client_in, p.client_out), (10_000, 10_000));
    assert_eq!(p.legs.len(), 100, "state lists 100 of them");
    drop(held);
}

#[tokio::test]
async fn the_page_resets_a_leg_or_sends_fin_toward_it() {
    let upstream = shouting_upstream().await;
    let lab = lab_with_proxy("act", &upstream, 16).await;
    let mut events = Events::connect(&lab).await;
    let mut page = lab::Client::connect(&lab, "").await;
    page.handshake().await;
    let addr = listen(&lab, "act");

    // RST toward the client: it sees a reset, and the event says the page did it.
    let mut c = TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"x").await.unwrap();
    let mut one = [0u8; 1];
    c.read_exact(&mut one).await.unwrap();
    let open = events
        .wait("relay_open", |k| matches!(k, EventKind::RelayOpen { .. }))
        .await;
    let EventKind::RelayOpen { conn, .. } = open.kind else {
        unreachable!()
    };
    page.send_text(&format!(
        r#"{{"type":"relay_close","id":1,"conn":{conn},"leg":"client","reset":true}}"#
    ))
    .await;
    page.reply(1).await.expect("acted");
    let mut rest = Vec::new();
    let read = timeout(WAIT, c.read_to_end(&mut rest)).await.unwrap();
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
    let close = events
        .wait(
            "relay_close",
            |k| matches!(k, EventKind::RelayClose { conn: c, .. } if *c == conn),
        )
        .await;
    let EventKind::RelayClose { reason, by, .. } = close.kind else {
        unreachable!()
    };
    assert_eq!(
        (reason, by),
        (CloseReason::ResetFromPage, Some(Leg::Client))
    );

    // FIN toward the client: it reads EOF but may still send to the upstream.
    let mut c = TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"y").await.unwrap();
    c.read_exact(&mut one).await.unwrap();
    let open = events
        .wait(
            "the second relay_open",
            |k| matches!(k, EventKind::RelayOpen { conn: c, .. } if *c != conn),
        )
        .await;
    let EventKind::RelayOpen { conn, .. } = open.kind else {
        unreachable!()
    };
    page.send_text(&format!(
        r#"{{"type":"relay_close","id":2,"conn":{conn},"leg":"client"}}"#
    ))
    .await;
    page.reply(2).await.expect("acted");
    let mut rest = Vec::new();
    timeout(WAIT, c.read_to_end(&mut rest))
        .await
        .unwrap()
        .expect("EOF, not an error");
    c.write_all(b"more").await.unwrap();
    c.shutdown().await.unwrap();
    let close = events
        .wait(
            "relay_close",
            |k| matches!(k, EventKind::RelayClose { conn: c, .. } if *c == conn),
        )
        .await;
    let EventKind::RelayClose {
        reason,
        by,
        client_in,
        ..
    } = close.kind
    else {
        unreachable!()
    };
    assert_eq!(
        (reason, by),
        (CloseReason::ClosedFromPage, Some(Leg::Client))
    );
    assert_eq!(
        client_in, 5,
        "what the client sent after the FIN still went up"
    );
    page.send_text(&format!(
        r#"{{"type":"relay_close","id":3,"conn":{conn},"leg":"upstream","reset":true}}"#
    ))
    .await;
    assert!(page.reply(3).await.unwrap_err().contains("no open relayed"));
}

#[tokio::test]
async fn kernel_figures_of_both_legs_appear_in_state() {
    let upstream = shouting_upstream().await;
    let lab = lab_with_proxy("k", &upstream, 16).await;
    let mut c = TcpStream::connect(listen(&lab, "k")).await.unwrap();
    c.write_all(b"hello").await.unwrap();
    let mut back = [0u8; 5];
    c.read_exact(&mut back).await.unwrap();
    let legs = || lab.app.relays.infos()[0].legs.clone();
    // Refreshed in the background at most once a second: ask until they are there.
    let mut found = None;
    for _ in 0..100 {
        if let Some(l) = legs().into_iter().next()
            && let (Some(ck), Some(uk)) = (l.client_kernel, l.upstream_kernel)
        {
            found = Some((ck, uk));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (client, up) = found.expect("TCP_INFO of both legs within 10 s");
    assert!(
        client.bytes_acked >= 5,
        "the client leg acked the answer: {client:?}"
    );
    assert!(
        up.bytes_acked >= 5,
        "the upstream leg acked the request: {up:?}"
    );
    assert!(client.cwnd > 0 && up.cwnd > 0);
}

#[tokio::test]
async fn the_page_sends_bytes_toward_either_leg() {
    let upstream = shouting_upstream().await;
    let lab = lab_with_proxy("send", &upstream, 16).await;
    let mut events = Events::connect(&lab).await;
    let mut page = lab::Client::connect(&lab, "").await;
    page.handshake().await;
    let mut c = TcpStream::connect(listen(&lab, "send")).await.unwrap();
    let open = events
        .wait("relay_open", |k| matches!(k, EventKind::RelayOpen { .. }))
        .await;
    let EventKind::RelayOpen { conn, .. } = open.kind else {
        unreachable!()
    };
    // Toward the client: it reads the bytes as if the upstream had sent them.
    page.send_text(&format!(
        r#"{{"type":"relay_send","id":1,"conn":{conn},"leg":"client","data":"from page"}}"#
    ))
    .await;
    page.reply(1).await.expect("queued");
    let mut got = [0u8; 9];
    timeout(WAIT, c.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"from page");
    // Toward the upstream: it answers (upper-cased), and the answer comes back relayed.
    page.send_text(&format!(
        r#"{{"type":"relay_send","id":2,"conn":{conn},"leg":"upstream","data":"6869","enc":"hex"}}"#
    ))
    .await;
    page.reply(2).await.expect("queued");
    let mut got = [0u8; 2];
    timeout(WAIT, c.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"HI");
    for to in [Leg::Client, Leg::Upstream] {
        events
            .wait(
                "relay_send",
                |k| matches!(k, EventKind::RelaySend { to: t, .. } if *t == to),
            )
            .await;
    }
    let p = lab.app.relays.get("send").unwrap().info();
    // 9 from the page and 2 relayed to the client; 2 from the page to the upstream.
    assert_eq!((p.client_out, p.upstream_out, p.client_in), (11, 2, 0));
    page.send_text(r#"{"type":"relay_send","id":3,"conn":999,"leg":"client","data":"x"}"#)
        .await;
    assert!(page.reply(3).await.unwrap_err().contains("no open relayed"));

    // Replay: a chunk the client sent goes again toward the upstream (which answers), or
    // toward the client when the target says so.
    c.write_all(b"abc").await.unwrap();
    let mut got = [0u8; 3];
    timeout(WAIT, c.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    let sent = events
        .wait("the client's chunk", |k| {
            matches!(k, EventKind::RelayData { from: Leg::Client, payload, .. } if payload.data == "abc")
        })
        .await;
    let seq = sent.seq;
    page.send_text(&format!(r#"{{"type":"replay","id":4,"seq":{seq}}}"#))
        .await;
    page.reply(4).await.expect("replayed");
    timeout(WAIT, c.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"ABC", "the upstream got it again and answered");
    page.send_text(&format!(
        r#"{{"type":"replay","id":5,"seq":{seq},"target":"client"}}"#
    ))
    .await;
    page.reply(5).await.expect("replayed");
    timeout(WAIT, c.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"abc", "toward the client this time");
}

/// A PATCH of proxy `name` through toxiproxy's API: the status and the body.
async fn patch(lab: &TestLab, name: &str, body: &str) -> (u16, String) {
    let api = lab.toxiproxy_api.expect("the API runs");
    let request = format!(
        "PATCH /proxies/{name} HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let raw = raw_http::exchange(api, &request, WAIT).await;
    let text = String::from_utf8(raw).expect("the answer is UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    (head[9..12].parse().expect("a status code"), body.to_owned())
}

#[tokio::test]
async fn only_the_flags_own_upstream_may_be_off_loopback_without_allow_outbound() {
    // `--proxy` may name any upstream: whoever starts the lab chose it.
    let lab = lab_with_proxy("far", "192.0.2.1:80", 16).await;
    let (status, body) = patch(&lab, "far", r#"{"enabled":false}"#).await;
    assert_eq!(status, 200, "the flag's upstream, unchanged: {body}");
    // One from the API is checked, whoever made the proxy.
    let (status, body) = patch(&lab, "far", r#"{"upstream":"192.0.2.2:80"}"#).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--allow-outbound"), "{body}");
    let far = lab.app.relays.get("far").unwrap();
    assert_eq!(
        far.spec().upstream,
        "192.0.2.1:80",
        "a refused change changes nothing"
    );
    let upstream = shouting_upstream().await;
    let (status, body) = patch(&lab, "far", &format!(r#"{{"upstream":"{upstream}"}}"#)).await;
    assert_eq!(status, 200, "{body}");
    // The flag's value again, but from the API now: checked like any other.
    let (status, body) = patch(&lab, "far", r#"{"upstream":"192.0.2.1:80"}"#).await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn data_events_add_up_to_the_close_even_when_a_leg_resets_early() {
    // The upstream resets as soon as it has the client's bytes, well inside the client
    // side's open merge window.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.unwrap();
        SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
        drop(s);
    });
    let lab = lab_with_proxy("early", &upstream, 16).await;
    let mut events = Events::connect(&lab).await;
    let mut client = TcpStream::connect(listen(&lab, "early")).await.unwrap();
    client.write_all(b"start").await.unwrap();
    let close = events
        .wait("relay_close", |k| matches!(k, EventKind::RelayClose { .. }))
        .await;
    let EventKind::RelayClose {
        conn,
        client_in,
        upstream_in,
        ..
    } = close.kind
    else {
        unreachable!()
    };
    assert_eq!((client_in, upstream_in), (5, 0));
    // Every byte read is in a data event published before the close.
    let read_from = |leg: Leg| -> u64 {
        events
            .seen
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::RelayData {
                    conn: c,
                    from,
                    size,
                    ..
                } if *c == conn && *from == leg => Some(*size),
                _ => None,
            })
            .sum()
    };
    assert_eq!(
        read_from(Leg::Client),
        client_in,
        "the client's data event is lost"
    );
    assert_eq!(read_from(Leg::Upstream), upstream_in);
}

#[tokio::test]
async fn a_client_gone_in_front_of_a_silent_upstream_gives_its_permit_back() {
    // The upstream accepts and then neither reads, writes nor closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let spec: ProxySpec = format!("silent=tcp://127.0.0.1:0->{upstream}")
        .parse()
        .unwrap();
    let lab = lab::start_with(|c| {
        c.proxies = vec![spec];
        c.max_proxy_conns = 1;
        c.proxy_idle_secs = 1;
    })
    .await;
    let mut events = Events::connect(&lab).await;
    let addr = listen(&lab, "silent");
    let mut first = TcpStream::connect(&addr).await.unwrap();
    let open = events
        .wait("relay_open", |k| matches!(k, EventKind::RelayOpen { .. }))
        .await;
    let EventKind::RelayOpen { conn: first_id, .. } = open.kind else {
        unreachable!()
    };
    first.shutdown().await.unwrap();
    drop(first);
    // Half-closed, and the upstream says nothing: the lab closes the pair...
    let close = events
        .wait("relay_close", |k| matches!(k, EventKind::RelayClose { .. }))
        .await;
    let EventKind::RelayClose {
        conn, reason, by, ..
    } = close.kind
    else {
        unreachable!()
    };
    assert_eq!(
        (conn, reason, by),
        (first_id, CloseReason::IdleTimeout, None)
    );
    // ...and its permit is back: the next client is relayed, not reset.
    let _second = TcpStream::connect(&addr).await.unwrap();
    let next = events
        .wait("the second client's open or refusal", |k| {
            matches!(k, EventKind::RelayOpen { conn, .. } if *conn != first_id)
                || matches!(k, EventKind::RelayRefused { .. })
        })
        .await;
    assert!(
        matches!(next.kind, EventKind::RelayOpen { .. }),
        "{:?}",
        next.kind
    );
}

#[tokio::test]
async fn a_client_whose_upstream_connect_is_running_when_the_proxy_stops_is_told() {
    // An upstream whose accept queue is full: a further handshake gets no answer.
    let hang = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    hang.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    hang.listen(0).unwrap();
    let upstream = hang.local_addr().unwrap().as_socket().unwrap();
    let _queued = std::net::TcpStream::connect(upstream).unwrap();
    let lab = lab_with_proxy("hang", &upstream.to_string(), 16).await;
    let mut events = Events::connect(&lab).await;
    let mut client = TcpStream::connect(listen(&lab, "hang")).await.unwrap();
    // Accepted (it holds a permit), and its upstream connect is running.
    let proxy = lab.app.relays.get("hang").unwrap();
    timeout(WAIT, async {
        while proxy.limit.available_permits() == 16 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the client is accepted");
    lab.app
        .relays
        .update("hang", None, None, Some(false))
        .await
        .unwrap();
    let refused = events
        .wait("relay_refused", |k| {
            matches!(k, EventKind::RelayRefused { .. })
        })
        .await;
    let EventKind::RelayRefused { reason, .. } = refused.kind else {
        unreachable!()
    };
    assert!(reason.contains("disabled"), "{reason}");
    assert!(reason.contains("the client got a RST"), "{reason}");
    let mut buf = [0u8; 1];
    let read = timeout(WAIT, client.read(&mut buf)).await.unwrap();
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
}
