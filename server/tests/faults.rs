//! Faults on real sockets: each toxic on a `tcp` proxy in front of a real echo upstream,
//! added through toxiproxy's API, and its effect measured from the client's side, both
//! directions. Timings are lower bounds only (the machine may be loaded): a toxic that
//! does nothing fails them.

mod support;

use std::io::ErrorKind;
use std::time::Duration;

use serde_json::Value;
use support::events::Events;
use support::lab::{self, TestLab};
use support::tools::echo_upstream;
use support::toxics::{api, remove, toxic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};
use wirelab_shared::{CloseReason, EventKind};

/// How long anything a test waits for may take.
const WAIT: Duration = Duration::from_secs(10);

/// A proxy `name` in front of a new echo upstream; its listen address.
async fn echo_proxy(lab: &TestLab, name: &str) -> String {
    let upstream = echo_upstream().await;
    let make = format!(r#"{{"name":"{name}","listen":"127.0.0.1:0","upstream":"{upstream}"}}"#);
    let (status, body) = api(lab, "POST", "/proxies", &make).await;
    assert_eq!(status, 201, "{body}");
    let made: Value = serde_json::from_str(&body).unwrap();
    made["listen"].as_str().unwrap().to_owned()
}

/// Sends `text` and reads its echo; how long that took.
async fn round_trip(s: &mut TcpStream, text: &[u8]) -> Duration {
    let start = Instant::now();
    s.write_all(text).await.unwrap();
    let mut back = vec![0u8; text.len()];
    timeout(WAIT, s.read_exact(&mut back))
        .await
        .expect("the echo in time")
        .expect("the echo");
    assert_eq!(back, text);
    start.elapsed()
}

#[tokio::test]
async fn latency_adds_to_a_round_trip_each_way_and_reaches_live_connections() {
    let lab = lab::start().await;
    let mut events = Events::connect(&lab).await;
    let listen = echo_proxy(&lab, "slow").await;
    // A connection made before the toxic gets it too.
    let mut live = TcpStream::connect(&listen).await.unwrap();
    round_trip(&mut live, b"before").await;
    toxic(
        &lab,
        "slow",
        r#"{"type":"latency","attributes":{"latency":150}}"#,
    )
    .await;
    let took = round_trip(&mut live, b"down").await;
    assert!(took >= Duration::from_millis(150), "{took:?}");
    toxic(
        &lab,
        "slow",
        r#"{"type":"latency","stream":"upstream","attributes":{"latency":100}}"#,
    )
    .await;
    let took = round_trip(&mut live, b"both ways").await;
    assert!(took >= Duration::from_millis(250), "{took:?}");
    // The connection's row lists the toxics that apply to it.
    let legs = &lab.app.lab_state().proxies[0].legs;
    assert_eq!(legs[0].faults, ["latency_upstream", "latency_downstream"]);
    // A new connection, with the jitter's lower end.
    remove(&lab, "slow", "latency_upstream").await;
    let patch = r#"{"attributes":{"latency":200,"jitter":50}}"#;
    let path = "/proxies/slow/toxics/latency_downstream";
    assert_eq!(api(&lab, "PATCH", path, patch).await.0, 200);
    let mut fresh = TcpStream::connect(&listen).await.unwrap();
    let took = round_trip(&mut fresh, b"new").await;
    assert!(took >= Duration::from_millis(150), "{took:?}");

    // Seen: the change and what the toxic did are events.
    events
        .wait("the toxic's addition", |k| {
            matches!(k, EventKind::ToxicChange { toxic, action, detail, .. }
                if toxic == "latency_downstream" && action == "added"
                    && detail.contains("latency 150 ms"))
        })
        .await;
    events
        .wait("the toxic's removal", |k| {
            matches!(k, EventKind::ToxicChange { toxic, action, .. }
                if toxic == "latency_upstream" && action == "removed")
        })
        .await;
    events
        .wait("what the toxic did", |k| {
            matches!(k, EventKind::RelayFault { toxic, what, .. }
                if toxic == "latency_downstream" && what.starts_with("held 150 ms"))
        })
        .await;
}

#[tokio::test]
async fn timeout_drops_data_until_removed_or_closes_after_its_time() {
    let lab = lab::start().await;
    let listen = echo_proxy(&lab, "stuck").await;
    let mut live = TcpStream::connect(&listen).await.unwrap();
    round_trip(&mut live, b"ok").await;
    // timeout 0: nothing gets through, the connection stays.
    toxic(&lab, "stuck", r#"{"type":"timeout","stream":"upstream"}"#).await;
    live.write_all(b"lost").await.unwrap();
    let mut buf = [0u8; 16];
    let read = timeout(Duration::from_millis(500), live.read(&mut buf)).await;
    assert!(read.is_err(), "the client's read must time out: {read:?}");
    // Removed: as toxiproxy, the connection it held is closed, and "lost" was dropped.
    remove(&lab, "stuck", "timeout_upstream").await;
    assert_eq!(read_until_closed(&mut live).await, 0);
    // A new connection relays again.
    let mut again = TcpStream::connect(&listen).await.unwrap();
    round_trip(&mut again, b"back").await;

    // timeout 300: the connection is closed 300 ms after the toxic applies.
    toxic(
        &lab,
        "stuck",
        r#"{"type":"timeout","attributes":{"timeout":300}}"#,
    )
    .await;
    let start = Instant::now();
    let mut s = TcpStream::connect(&listen).await.unwrap();
    s.write_all(b"never echoed").await.unwrap();
    let mut got = Vec::new();
    timeout(WAIT, s.read_to_end(&mut got))
        .await
        .expect("closed in time")
        .expect("closed with a FIN");
    assert!(got.is_empty(), "downstream data dropped: {got:?}");
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn reset_peer_gives_the_client_a_reset_either_way() {
    let lab = lab::start().await;
    let mut events = Events::connect(&lab).await;
    let listen = echo_proxy(&lab, "flaky").await;
    for (stream, wait_ms) in [("downstream", 0), ("upstream", 200)] {
        let json = format!(
            r#"{{"type":"reset_peer","stream":"{stream}","attributes":{{"timeout":{wait_ms}}}}}"#
        );
        toxic(&lab, "flaky", &json).await;
        let mut s = TcpStream::connect(&listen).await.unwrap();
        let start = Instant::now();
        s.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 16];
        let read = timeout(WAIT, s.read(&mut buf)).await.expect("in time");
        assert_eq!(
            read.map_err(|e| e.kind()),
            Err(ErrorKind::ConnectionReset),
            "{stream}"
        );
        assert!(start.elapsed() >= Duration::from_millis(wait_ms));
        remove(&lab, "flaky", &format!("reset_peer_{stream}")).await;
    }
    events
        .wait("a close by reset_peer", |k| {
            matches!(k, EventKind::RelayClose { reason: CloseReason::FaultReset, detail: Some(d), .. }
                if d.contains("reset_peer"))
        })
        .await;
}

#[tokio::test]
async fn limit_data_closes_after_the_byte_count_either_way() {
    let lab = lab::start().await;
    // Downstream: the client reads the first 1,000 bytes of the echo, then the end.
    let listen = echo_proxy(&lab, "limited").await;
    let json = r#"{"type":"limit_data","attributes":{"bytes":1000}}"#;
    toxic(&lab, "limited", json).await;
    let mut s = TcpStream::connect(&listen).await.unwrap();
    s.write_all(&[b'x'; 5000]).await.unwrap();
    assert_eq!(read_until_closed(&mut s).await, 1000);

    // Upstream: the upstream reads 300 bytes, then the end; so does the client.
    let sink = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let make = format!(
        r#"{{"name":"sink","listen":"127.0.0.1:0","upstream":"{}"}}"#,
        sink.local_addr().unwrap()
    );
    let (status, body) = api(&lab, "POST", "/proxies", &make).await;
    assert_eq!(status, 201, "{body}");
    let listen = serde_json::from_str::<Value>(&body).unwrap()["listen"]
        .as_str()
        .unwrap()
        .to_owned();
    let json = r#"{"type":"limit_data","stream":"upstream","attributes":{"bytes":300}}"#;
    toxic(&lab, "sink", json).await;
    let mut s = TcpStream::connect(&listen).await.unwrap();
    let (mut upstream, _) = timeout(WAIT, sink.accept()).await.unwrap().unwrap();
    s.write_all(&[b'y'; 5000]).await.unwrap();
    assert_eq!(read_until_closed(&mut upstream).await, 300);
    assert_eq!(read_until_closed(&mut s).await, 0);
}

/// Bytes read until the peer closed: by a FIN or, when it closed with bytes unread, a RST.
async fn read_until_closed(s: &mut TcpStream) -> usize {
    let mut got = 0;
    let mut buf = [0u8; 8192];
    loop {
        match timeout(WAIT, s.read(&mut buf))
            .await
            .expect("closed in time")
        {
            Ok(0) | Err(_) => return got,
            Ok(n) => got += n,
        }
    }
}

#[tokio::test]
async fn slicer_makes_the_reader_see_many_small_reads() {
    let lab = lab::start().await;
    let listen = echo_proxy(&lab, "sliced").await;
    toxic(
        &lab,
        "sliced",
        r#"{"type":"slicer","attributes":{"average_size":10,"size_variation":0,"delay":20000}}"#,
    )
    .await;
    let mut s = TcpStream::connect(&listen).await.unwrap();
    let sent: Vec<u8> = (0..200u8).collect();
    let start = Instant::now();
    s.write_all(&sent).await.unwrap();
    let (mut got, mut reads) = (Vec::new(), 0);
    let mut buf = [0u8; 4096];
    while got.len() < sent.len() {
        let n = timeout(WAIT, s.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
        reads += 1;
    }
    assert_eq!(got, sent, "the bytes, in order");
    // 20 slices 20 ms apart: the client sees them apart (a loaded machine may merge some).
    assert!(reads >= 5, "{reads} reads");
    assert!(start.elapsed() >= Duration::from_millis(19 * 20));
}

#[tokio::test]
async fn bandwidth_makes_a_transfer_take_its_size_over_the_rate_each_way() {
    let lab = lab::start().await;
    let listen = echo_proxy(&lab, "thin").await;
    for stream in ["downstream", "upstream"] {
        let json =
            format!(r#"{{"type":"bandwidth","stream":"{stream}","attributes":{{"rate":100}}}}"#);
        toxic(&lab, "thin", &json).await;
        let mut s = TcpStream::connect(&listen).await.unwrap();
        // 50,000 bytes at 100 KB/s: half a second at least.
        let took = round_trip(&mut s, &[7u8; 50_000]).await;
        assert!(took >= Duration::from_millis(500), "{stream}: {took:?}");
        remove(&lab, "thin", &format!("bandwidth_{stream}")).await;
    }
}

#[tokio::test]
async fn slow_close_passes_the_fin_late() {
    let lab = lab::start().await;
    let listen = echo_proxy(&lab, "lingering").await;
    toxic(
        &lab,
        "lingering",
        r#"{"type":"slow_close","attributes":{"delay":300}}"#,
    )
    .await;
    let fin_after = async || {
        let mut s = TcpStream::connect(&listen).await.unwrap();
        s.write_all(b"bye").await.unwrap();
        let start = Instant::now();
        s.shutdown().await.unwrap();
        let mut got = Vec::new();
        timeout(WAIT, s.read_to_end(&mut got))
            .await
            .expect("the FIN in time")
            .unwrap();
        assert_eq!(got, b"bye");
        start.elapsed()
    };
    let took = fin_after().await;
    assert!(took >= Duration::from_millis(300), "{took:?}");
    // Two in a chain add up, as in toxiproxy (each sleeps once the one before has closed).
    toxic(
        &lab,
        "lingering",
        r#"{"name":"more","type":"slow_close","attributes":{"delay":250}}"#,
    )
    .await;
    let took = fin_after().await;
    assert!(took >= Duration::from_millis(550), "{took:?}");
}

#[tokio::test]
async fn toxicity_zero_spares_every_connection_and_says_so() {
    let lab = lab::start().await;
    let mut events = Events::connect(&lab).await;
    let listen = echo_proxy(&lab, "lucky").await;
    toxic(
        &lab,
        "lucky",
        r#"{"type":"reset_peer","toxicity":0,"stream":"both"}"#,
    )
    .await;
    let mut s = TcpStream::connect(&listen).await.unwrap();
    round_trip(&mut s, b"still here").await;
    events
        .wait("the toxic sparing the connection", |k| {
            matches!(k, EventKind::RelayFault { toxic, what, .. }
                if toxic == "reset_peer_both" && what == "spared (toxicity 0)")
        })
        .await;
}

#[tokio::test]
async fn the_page_adds_a_preset_fault_sees_it_listed_and_removes_it() {
    let lab = lab::start().await;
    let listen = echo_proxy(&lab, "page").await;
    let mut page = lab::Client::connect(&lab, "").await;
    page.handshake().await;
    // The satellite preset, as the page sends it.
    page.send_text(
        r#"{"type":"toxic_add","id":1,"proxy":"page","name":"satellite_both","kind":"latency","stream":"both","attributes":[["latency",300]]}"#,
    )
    .await;
    let said = page.reply(1).await.expect("added").unwrap();
    assert!(said.contains("latency 300 ms"), "{said}");
    let mut s = TcpStream::connect(&listen).await.unwrap();
    let took = round_trip(&mut s, b"far away").await;
    assert!(
        took >= Duration::from_millis(600),
        "300 ms each way: {took:?}"
    );
    let state = lab.app.lab_state();
    let toxics = &state.proxies[0].toxics;
    assert_eq!(toxics.len(), 1);
    assert_eq!(
        (toxics[0].name.as_str(), toxics[0].conns),
        ("satellite_both", 2)
    );
    assert!(toxics[0].bytes >= 16, "{:?}", toxics[0]);
    let metrics = lab.app.metrics.render(&lab.app);
    let line = r#"wirelab_toxic_connections_total{proxy="page",toxic="satellite_both"} 2"#;
    assert!(metrics.contains(line), "{metrics}");
    // Refused as toxiproxy refuses it, said to the page.
    page.send_text(r#"{"type":"toxic_add","id":2,"proxy":"page","kind":"nope"}"#)
        .await;
    assert_eq!(page.reply(2).await.unwrap_err(), "page: invalid toxic type");
    page.send_text(r#"{"type":"toxic_remove","id":3,"proxy":"page","name":"satellite_both"}"#)
        .await;
    page.reply(3).await.expect("removed");
    assert!(lab.app.lab_state().proxies[0].toxics.is_empty());
    // Its series leave /metrics (the recorder drops what a scrape no longer writes), and
    // the lab's own stay.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let metrics = lab.app.metrics.render(&lab.app);
    assert!(!metrics.contains("wirelab_toxic_"), "{metrics}");
    assert!(metrics.contains("wirelab_events_total "), "{metrics}");
    page.send_text(r#"{"type":"toxic_remove","id":4,"proxy":"page","name":"satellite_both"}"#)
        .await;
    assert_eq!(
        page.reply(4).await.unwrap_err(),
        "page: satellite_both: toxic not found"
    );
}

#[tokio::test]
async fn under_a_flood_a_latency_toxic_stops_reading_past_its_bound() {
    let lab = lab::start().await;
    // An upstream that reads everything and counts it.
    let sink = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let make = format!(
        r#"{{"name":"flood","listen":"127.0.0.1:0","upstream":"{}"}}"#,
        sink.local_addr().unwrap()
    );
    let (status, body) = api(&lab, "POST", "/proxies", &make).await;
    assert_eq!(status, 201, "{body}");
    let listen = serde_json::from_str::<Value>(&body).unwrap()["listen"]
        .as_str()
        .unwrap()
        .to_owned();
    let json = r#"{"type":"latency","stream":"upstream","attributes":{"latency":5000}}"#;
    toxic(&lab, "flood", json).await;
    let mut s = TcpStream::connect(&listen).await.unwrap();
    let (mut upstream, _) = timeout(WAIT, sink.accept()).await.unwrap().unwrap();
    let arrived = tokio::spawn(async move {
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0;
        while let Ok(Ok(got @ 1..)) = timeout(Duration::from_secs(2), upstream.read(&mut buf)).await
        {
            n += got;
        }
        n
    });
    // Two seconds of writing as fast as the lab reads.
    let chunk = vec![b'z'; 1 << 16];
    let mut written = 0usize;
    let _ = timeout(Duration::from_secs(2), async {
        loop {
            s.write_all(&chunk).await.unwrap();
            written += chunk.len();
        }
    })
    .await;
    // The lab holds 1 MiB at most: the rest waits in the kernel's buffers (4 MiB went in
    // all told when this was written), not in the lab; with the bound lifted, 1.25 GB.
    assert!(written < 16 << 20, "{written} bytes went in");
    assert!(written > 0);
    assert_eq!(arrived.await.unwrap(), 0, "nothing before its 5 s");
}

#[tokio::test]
async fn an_http_proxy_takes_toxics_and_datagram_toxics_are_for_udp_proxies_only() {
    let lab = lab::start().await;
    // An http proxy in front of the lab's own HTTP service, 200 ms late each way.
    let make = format!(
        r#"{{"name":"web","listen":"127.0.0.1:0","upstream":"{}","protocol":"http"}}"#,
        lab.http
    );
    let (status, body) = api(&lab, "POST", "/proxies", &make).await;
    assert_eq!(status, 201, "{body}");
    let listen: std::net::SocketAddr = serde_json::from_str::<Value>(&body).unwrap()["listen"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    toxic(
        &lab,
        "web",
        r#"{"type":"latency","stream":"both","attributes":{"latency":200}}"#,
    )
    .await;
    let start = Instant::now();
    let request = format!("GET / HTTP/1.1\r\nHost: {listen}\r\nConnection: close\r\n\r\n");
    let response = support::raw_http::exchange(listen, &request, WAIT).await;
    assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
    assert!(start.elapsed() >= Duration::from_millis(400));

    let (status, body) = api(&lab, "POST", "/proxies/web/toxics", r#"{"type":"reorder"}"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("udp proxies only"), "{body}");
}

#[tokio::test]
async fn bytes_from_the_page_wait_behind_what_a_fault_holds() {
    let lab = lab::start().await;
    let sink = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let make = format!(
        r#"{{"name":"order","listen":"127.0.0.1:0","upstream":"{}"}}"#,
        sink.local_addr().unwrap()
    );
    let (status, body) = api(&lab, "POST", "/proxies", &make).await;
    assert_eq!(status, 201, "{body}");
    let listen = serde_json::from_str::<Value>(&body).unwrap()["listen"]
        .as_str()
        .unwrap()
        .to_owned();
    let json = r#"{"type":"latency","stream":"upstream","attributes":{"latency":300}}"#;
    toxic(&lab, "order", json).await;
    let mut s = TcpStream::connect(&listen).await.unwrap();
    let (mut upstream, _) = timeout(WAIT, sink.accept()).await.unwrap().unwrap();
    s.write_all(b"first,").await.unwrap();
    // The client's bytes are held 300 ms; the page's, sent meanwhile, go after them.
    let mut events = Events::connect(&lab).await;
    let open = events
        .wait("the connection", |k| {
            matches!(k, EventKind::RelayOpen { .. })
        })
        .await;
    let EventKind::RelayOpen { conn, .. } = open.kind else {
        unreachable!()
    };
    let mut page = lab::Client::connect(&lab, "").await;
    page.handshake().await;
    let send = format!(
        r#"{{"type":"relay_send","id":1,"conn":{conn},"leg":"upstream","data":"then the page"}}"#
    );
    page.send_text(&send).await;
    page.reply(1).await.expect("queued");
    let mut got = vec![0u8; "first,then the page".len()];
    timeout(WAIT, upstream.read_exact(&mut got))
        .await
        .expect("in time")
        .unwrap();
    assert_eq!(got, b"first,then the page");
    // The page's bytes cross the same faults: a timeout toxic drops them as it drops the
    // client's, until it is removed.
    remove(&lab, "order", "latency_upstream").await;
    let json = r#"{"type":"timeout","stream":"upstream","attributes":{"timeout":0}}"#;
    toxic(&lab, "order", json).await;
    let send =
        format!(r#"{{"type":"relay_send","id":2,"conn":{conn},"leg":"upstream","data":"lost"}}"#);
    page.send_text(&send).await;
    page.reply(2).await.expect("queued");
    s.write_all(b"lost too").await.unwrap();
    let mut buf = [0u8; 64];
    assert!(
        timeout(Duration::from_millis(300), upstream.read(&mut buf))
            .await
            .is_err(),
        "nothing passes a timeout toxic"
    );
    // Removed, it closes the connection it held (as toxiproxy): nothing of either came.
    remove(&lab, "order", "timeout_upstream").await;
    let mut rest = Vec::new();
    timeout(WAIT, upstream.read_to_end(&mut rest))
        .await
        .expect("closed in time")
        .unwrap();
    assert!(rest.is_empty(), "{rest:?}");
}

/// The id of the relayed connection from `client`, from its `relay_open` event.
async fn conn_of(events: &mut Events, client: &TcpStream) -> u64 {
    let peer = client.local_addr().unwrap().to_string();
    let open = events
        .wait(
            "the connection's relay_open",
            |k| matches!(k, EventKind::RelayOpen { peer: p, .. } if *p == peer),
        )
        .await;
    match open.kind {
        EventKind::RelayOpen { conn, .. } => conn,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_toxic_kept_to_one_connection_or_one_peer_leaves_the_others_alone() {
    let lab = lab::start().await;
    let mut events = Events::connect(&lab).await;
    let listen = echo_proxy(&lab, "scoped").await;
    let mut one = TcpStream::connect(&listen).await.unwrap();
    let mut other = TcpStream::connect(&listen).await.unwrap();
    let id = conn_of(&mut events, &one).await;
    round_trip(&mut other, b"warm").await;
    let body =
        format!(r#"{{"name":"one","type":"latency","conn":{id},"attributes":{{"latency":300}}}}"#);
    toxic(&lab, "scoped", &body).await;
    assert!(round_trip(&mut one, b"slow").await >= Duration::from_millis(300));
    let spared = round_trip(&mut other, b"fast").await;
    assert!(spared < Duration::from_millis(300), "{spared:?}");
    // Listed with its scope; toxiproxy's fields as they were.
    let (_, body) = api(&lab, "GET", "/proxies/scoped/toxics/one", "").await;
    let t: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(t["conn"], id, "{body}");
    assert!(t.get("peer").is_none(), "{body}");

    // Kept to the other one's peer address (address and port).
    remove(&lab, "scoped", "one").await;
    let peer = other.local_addr().unwrap();
    let body = format!(
        r#"{{"name":"peer","type":"latency","peer":"{peer}","attributes":{{"latency":300}}}}"#
    );
    toxic(&lab, "scoped", &body).await;
    assert!(round_trip(&mut other, b"slow").await >= Duration::from_millis(300));
    let spared = round_trip(&mut one, b"fast").await;
    assert!(spared < Duration::from_millis(300), "{spared:?}");
    let (status, body) = api(
        &lab,
        "POST",
        "/proxies/scoped/toxics",
        r#"{"type":"latency","peer":"not an address"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("IP address"), "{body}");
}

#[tokio::test]
async fn the_labs_own_tcp_service_takes_toxics_as_a_proxy_does() {
    let lab = lab::start_with(|c| c.tcp_mode = wirelab::config::RelayMode::Echo).await;
    let mut events = Events::connect(&lab).await;
    let mut client = TcpStream::connect(lab.tcp).await.unwrap();
    round_trip(&mut client, b"fast").await;
    toxic(
        &lab,
        "@tcp",
        r#"{"type":"latency","attributes":{"latency":250}}"#,
    )
    .await;
    // A live connection gets it too, on what the service writes back.
    let took = round_trip(&mut client, b"slow").await;
    assert!(took >= Duration::from_millis(250), "{took:?}");
    let (status, body) = api(&lab, "GET", "/proxies/@tcp/toxics", "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("latency_downstream"), "{body}");
    // Its figures: in the lab's state (listed as `@tcp`) and in /metrics.
    let state = lab.app.lab_state();
    let listed = state
        .proxies
        .iter()
        .find(|p| p.name == "@tcp")
        .expect("listed");
    assert_eq!(listed.toxics[0].conns, 1, "{listed:?}");
    let metrics = lab.app.metrics.render(&lab.app);
    let line = r#"wirelab_toxic_connections_total{proxy="@tcp",toxic="latency_downstream"} 1"#;
    assert!(metrics.contains(line), "{metrics}");
    let (_, body) = api(&lab, "GET", "/proxies", "").await;
    assert!(
        !body.contains("@tcp"),
        "toxiproxy's list has proxies only: {body}"
    );
    events
        .wait("what it did, on the timeline", |k| {
            matches!(k, EventKind::RelayFault { proxy, what, .. }
                if proxy == "@tcp" && what.starts_with("held"))
        })
        .await;
    // toxiproxy's /reset clears the service's toxics too.
    let (status, _) = api(&lab, "POST", "/reset", "").await;
    assert_eq!(status, 204);
    let fast = round_trip(&mut client, b"fast again").await;
    assert!(fast < Duration::from_millis(250), "{fast:?}");
    // reset_peer on what the peer sends: the client gets a reset.
    toxic(
        &lab,
        "@tcp",
        r#"{"type":"reset_peer","stream":"upstream","attributes":{"timeout":0}}"#,
    )
    .await;
    client.write_all(b"reset me").await.unwrap();
    let mut buf = [0u8; 16];
    let read = timeout(WAIT, client.read(&mut buf)).await.unwrap();
    assert_eq!(read.map_err(|e| e.kind()), Err(ErrorKind::ConnectionReset));
    let closed = events
        .wait("the connection's close", |k| {
            matches!(
                k,
                EventKind::TcpClose {
                    reason: CloseReason::FaultReset,
                    ..
                }
            )
        })
        .await;
    assert!(matches!(closed.kind, EventKind::TcpClose { .. }));
}

#[tokio::test]
async fn the_labs_own_http_service_takes_toxics_as_a_proxy_does() {
    let lab = lab::start().await;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        lab.http
    );
    let fast = Instant::now();
    let response = support::raw_http::exchange(lab.http, &request, WAIT).await;
    assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
    let fast = fast.elapsed();
    toxic(
        &lab,
        "@http",
        r#"{"type":"latency","stream":"both","attributes":{"latency":200}}"#,
    )
    .await;
    let start = Instant::now();
    let response = support::raw_http::exchange(lab.http, &request, WAIT).await;
    assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
    assert!(response.ends_with(b"Hello World\n"), "whole: {response:?}");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "200 ms each way: {took:?} ({fast:?} without)"
    );
    remove(&lab, "@http", "latency_both").await;
    // A timeout on what clients send: the request never arrives, and the connection is
    // closed after 300 ms without an answer.
    toxic(
        &lab,
        "@http",
        r#"{"type":"timeout","stream":"upstream","attributes":{"timeout":300}}"#,
    )
    .await;
    let response = support::raw_http::exchange(lab.http, &request, WAIT).await;
    assert!(response.is_empty(), "no answer: {response:?}");
}

#[tokio::test]
async fn the_tcp_services_echo_under_toxics_loses_nothing_not_even_before_a_fin() {
    let lab = lab::start_with(|c| c.tcp_mode = wirelab::config::RelayMode::Echo).await;
    toxic(
        &lab,
        "@tcp",
        r#"{"type":"latency","stream":"upstream","attributes":{"latency":300}}"#,
    )
    .await;
    // A line and a FIN at once (`printf hi | nc -N`): the echo comes back, then EOF.
    let mut client = TcpStream::connect(lab.tcp).await.unwrap();
    client.write_all(b"hi\n").await.unwrap();
    client.shutdown().await.unwrap();
    let mut back = Vec::new();
    timeout(WAIT, client.read_to_end(&mut back))
        .await
        .expect("EOF in time")
        .unwrap();
    assert_eq!(back, b"hi\n", "echoed before the close");
    // 1 MiB written at once, all of it held 300 ms: echoed whole, in order (the reads
    // wait for room in the echo queue rather than drop what falls due together).
    let client = TcpStream::connect(lab.tcp).await.unwrap();
    let (mut rd, mut wr) = client.into_split();
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let sent = data.clone();
    let writer = tokio::spawn(async move { wr.write_all(&sent).await });
    let mut back = vec![0u8; data.len()];
    timeout(WAIT, rd.read_exact(&mut back))
        .await
        .expect("the whole echo in time")
        .unwrap();
    assert!(back == data, "1 MiB echoed exactly");
    writer.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_timeout_added_while_the_service_waits_on_a_reader_that_stopped_still_ends_it() {
    let lab = lab::start_with(|c| c.tcp_mode = wirelab::config::RelayMode::Echo).await;
    let mut events = Events::connect(&lab).await;
    // A client that writes and never reads: the echo's writes stall.
    let client = TcpStream::connect(lab.tcp).await.unwrap();
    let (_rd, mut wr) = client.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..256 {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    toxic(
        &lab,
        "@tcp",
        r#"{"type":"timeout","attributes":{"timeout":300}}"#,
    )
    .await;
    let closed = events
        .wait("the connection closed by the toxic", |k| {
            matches!(
                k,
                EventKind::TcpClose {
                    reason: CloseReason::Fault,
                    ..
                }
            )
        })
        .await;
    assert!(matches!(closed.kind, EventKind::TcpClose { .. }));
    writer.abort();
}

#[tokio::test]
async fn an_http_latency_longer_than_the_idle_timeout_is_waited_out_not_cut() {
    let lab = lab::start_with(|c| c.http_idle_secs = 1).await;
    toxic(
        &lab,
        "@http",
        r#"{"type":"latency","stream":"both","attributes":{"latency":1500}}"#,
    )
    .await;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        lab.http
    );
    let start = Instant::now();
    let response = support::raw_http::exchange(lab.http, &request, WAIT).await;
    assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
    assert!(start.elapsed() >= Duration::from_millis(3000));
}
