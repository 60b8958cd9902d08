//! Faults on datagrams: a `udp` proxy in front of a real UDP echo, its toxics added
//! through toxiproxy's API, and what the client gets back checked datagram by datagram.
//! A toxic with a `seed` does the same to every session: two clients, one after the
//! other, get exactly the same sequence.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use support::events::Events;
use support::lab::{self, TestLab};
use support::toxics::{api, toxic};
use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout};
use wirelab_shared::EventKind;

/// How long anything a test waits for may take.
const WAIT: Duration = Duration::from_secs(10);
/// A datagram not back after this long is taken as dropped.
const QUIET: Duration = Duration::from_millis(1500);

/// A UDP echo upstream.
async fn echo() -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    addr
}

/// A `udp` proxy `name` in front of a new echo; its listen address.
async fn udp_proxy(lab: &TestLab, name: &str) -> String {
    let upstream = echo().await;
    let make = format!(
        r#"{{"name":"{name}","listen":"127.0.0.1:0","upstream":"{upstream}","protocol":"udp"}}"#
    );
    let (status, body) = api(lab, "POST", "/proxies", &make).await;
    assert_eq!(status, 201, "{body}");
    let made: Value = serde_json::from_str(&body).unwrap();
    made["listen"].as_str().unwrap().to_owned()
}

/// A new client (a new session) sends datagrams `0..n` (each its number, big-endian, then
/// `pad` bytes of `x`), a few at a time so that no queue overflows; everything that
/// comes back, in order, until nothing has for [`QUIET`].
async fn exchange(listen: &str, n: u32, pad: usize) -> Vec<Vec<u8>> {
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.connect(listen).await.unwrap();
    let mut back = Vec::new();
    let mut buf = [0u8; 2048];
    let mut drain = |client: &UdpSocket, back: &mut Vec<Vec<u8>>| {
        while let Ok(got) = client.try_recv(&mut buf) {
            back.push(buf[..got].to_vec());
        }
    };
    for i in 0..n {
        let mut datagram = i.to_be_bytes().to_vec();
        datagram.resize(4 + pad, b'x');
        client.send(&datagram).await.unwrap();
        if i % 16 == 15 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            drain(&client, &mut back);
        }
    }
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        match timeout(QUIET, client.recv(&mut buf)).await {
            Ok(Ok(got)) => back.push(buf[..got].to_vec()),
            _ => break,
        }
    }
    back
}

/// The numbers datagrams carry.
fn numbers(datagrams: &[Vec<u8>]) -> Vec<u32> {
    datagrams
        .iter()
        .map(|d| u32::from_be_bytes(d[..4].try_into().unwrap()))
        .collect()
}

#[tokio::test]
async fn duplicate_truncate_and_corrupt_do_exactly_what_they_say() {
    let lab = lab::start().await;
    let listen = udp_proxy(&lab, "dup").await;
    toxic(
        &lab,
        "dup",
        r#"{"type":"duplicate","stream":"upstream","attributes":{"rate":1}}"#,
    )
    .await;
    let back = exchange(&listen, 20, 4).await;
    let twice: Vec<u32> = (0..20).flat_map(|i| [i, i]).collect();
    assert_eq!(numbers(&back), twice, "each one twice, in order");

    let listen = udp_proxy(&lab, "cut").await;
    toxic(
        &lab,
        "cut",
        r#"{"type":"truncate","attributes":{"size":6}}"#,
    )
    .await;
    let back = exchange(&listen, 5, 100).await;
    assert_eq!(numbers(&back), [0, 1, 2, 3, 4]);
    assert!(back.iter().all(|d| d.len() == 6), "cut to 6 bytes");

    let listen = udp_proxy(&lab, "flip").await;
    toxic(
        &lab,
        "flip",
        r#"{"type":"corrupt","stream":"downstream","attributes":{"probability":1}}"#,
    )
    .await;
    let back = exchange(&listen, 3, 2).await;
    let flipped: Vec<Vec<u8>> = (0u32..3)
        .map(|i| {
            let mut d = i.to_be_bytes().to_vec();
            d.extend_from_slice(b"xx");
            d.iter().map(|b| !b).collect()
        })
        .collect();
    assert_eq!(back, flipped, "every bit flipped on the way back");
    let (_, body) = api(&lab, "GET", "/proxies/flip/toxics", "").await;
    assert!(body.contains(r#""probability":1"#), "{body}");
}

#[tokio::test]
async fn a_seeded_loss_drops_the_same_datagrams_in_every_session_and_says_so() {
    let lab = lab::start().await;
    let mut events = Events::connect(&lab).await;
    let listen = udp_proxy(&lab, "lossy").await;
    // Bursts: 10% lost in the good state, 80% in a burst, entered at 5%, left at 30%.
    toxic(
        &lab,
        "lossy",
        r#"{"name":"ge","type":"loss","stream":"upstream","attributes":{"rate":0.1,"burst_enter":0.05,"burst_exit":0.3,"burst_rate":0.8,"seed":42}}"#,
    )
    .await;
    let first = numbers(&exchange(&listen, 400, 8).await);
    let second = numbers(&exchange(&listen, 400, 8).await);
    assert_eq!(first, second, "the same seed, the same drops");
    let lost = 400 - first.len();
    assert!((20..250).contains(&lost), "{lost} of 400 lost");
    assert!(
        first.windows(2).all(|w| w[0] < w[1]),
        "lost, never reordered"
    );
    // The same with another seed is another sequence.
    let (status, body) = api(
        &lab,
        "POST",
        "/proxies/lossy/toxics/ge",
        r#"{"attributes":{"seed":43}}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let third = numbers(&exchange(&listen, 400, 8).await);
    assert_ne!(first, third, "another seed, other drops");
    // Said on the timeline, with what it did.
    let said = events
        .wait("a relay_fault of the loss toxic", |k| {
            matches!(k, EventKind::RelayFault { toxic, what, .. }
                if toxic == "ge" && what.contains("dropped") && what.contains("datagrams"))
        })
        .await;
    assert!(matches!(said.kind, EventKind::RelayFault { .. }));
    let (_, body) = api(&lab, "GET", "/proxies/lossy/toxics/ge", "").await;
    let t: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(t["attributes"]["seed"], 43, "{body}");
    assert_eq!(t["attributes"]["burst_rate"], 0.8, "{body}");
}

#[tokio::test]
async fn a_seeded_reorder_loses_nothing_and_repeats_its_order() {
    let lab = lab::start().await;
    let listen = udp_proxy(&lab, "shuffle").await;
    toxic(
        &lab,
        "shuffle",
        r#"{"type":"reorder","stream":"upstream","attributes":{"rate":0.2,"gap":3,"seed":7}}"#,
    )
    .await;
    let first = numbers(&exchange(&listen, 200, 4).await);
    let second = numbers(&exchange(&listen, 200, 4).await);
    assert_eq!(first, second, "the same seed, the same order");
    let all: BTreeSet<u32> = first.iter().copied().collect();
    assert_eq!(
        (first.len(), all.len()),
        (200, 200),
        "every one, once: {first:?}"
    );
    let late = first.windows(2).filter(|w| w[0] > w[1]).count();
    assert!(late >= 5, "some came after later ones: {first:?}");
}

#[tokio::test]
async fn toxiproxys_packet_loss_and_latency_act_on_datagrams_and_stream_toxics_are_refused() {
    let lab = lab::start().await;
    let listen = udp_proxy(&lab, "dns").await;
    toxic(
        &lab,
        "dns",
        r#"{"type":"latency","stream":"both","attributes":{"latency":100}}"#,
    )
    .await;
    let start = Instant::now();
    let back = exchange(&listen, 1, 4).await;
    assert_eq!(numbers(&back), [0]);
    // QUIET is waited out after the last one came back, which took 100 ms each way.
    assert!(start.elapsed() >= QUIET + Duration::from_millis(200));
    let (status, _) = api(&lab, "DELETE", "/proxies/dns/toxics/latency_both", "").await;
    assert_eq!(status, 204);
    toxic(
        &lab,
        "dns",
        r#"{"type":"packet_loss","stream":"upstream","attributes":{"loss_rate":1}}"#,
    )
    .await;
    assert!(exchange(&listen, 10, 4).await.is_empty(), "all dropped");
    let (_, body) = api(&lab, "GET", "/proxies/dns/toxics/packet_loss_upstream", "").await;
    let t: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(t["attributes"]["loss_rate"], 1, "{body}");
    assert_eq!(t["attributes"]["correlation"], 0, "{body}");
    for refused in [
        "slicer",
        "timeout",
        "limit_data",
        "reset_peer",
        "slow_close",
    ] {
        let (status, body) = api(
            &lab,
            "POST",
            "/proxies/dns/toxics",
            &format!(r#"{{"type":"{refused}"}}"#),
        )
        .await;
        assert_eq!(status, 400, "{refused}: {body}");
        assert!(body.contains("udp proxy"), "{body}");
    }
    let (status, body) = api(
        &lab,
        "POST",
        "/proxies/dns/toxics",
        r#"{"type":"packet_loss","attributes":{"loss_rate":1.5}}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("from 0 to 1"), "{body}");
}

#[tokio::test]
async fn the_labs_own_udp_service_takes_datagram_toxics_per_peer() {
    let lab = lab::start_with(|c| c.udp_mode = wirelab::config::RelayMode::Echo).await;
    let service = lab.udp.to_string();
    assert_eq!(numbers(&exchange(&service, 3, 4).await), [0, 1, 2]);
    toxic(
        &lab,
        "@udp",
        r#"{"type":"duplicate","stream":"downstream","attributes":{"rate":1}}"#,
    )
    .await;
    assert_eq!(
        numbers(&exchange(&service, 3, 4).await),
        [0, 0, 1, 1, 2, 2],
        "each echo twice"
    );
    let (status, _) = api(&lab, "POST", "/reset", "").await;
    assert_eq!(status, 204);
    // Kept to one peer: the other's datagrams pass.
    let lossy = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let body = format!(
        r#"{{"type":"loss","stream":"upstream","peer":"{}","attributes":{{"rate":1}}}}"#,
        lossy.local_addr().unwrap()
    );
    toxic(&lab, "@udp", &body).await;
    lossy.send_to(b"lost", &service).await.unwrap();
    let mut buf = [0u8; 64];
    let got = timeout(Duration::from_millis(500), lossy.recv(&mut buf)).await;
    assert!(got.is_err(), "the kept peer's datagram was dropped");
    // The peer's row says which toxics apply to it; the other peers' rows, none.
    let me = lossy.local_addr().unwrap().to_string();
    let state = lab.app.lab_state();
    let row = state.udp.iter().find(|p| p.peer == me).expect("its row");
    assert_eq!(row.faults, ["loss_upstream"], "{row:?}");
    assert_eq!(numbers(&exchange(&service, 3, 4).await), [0, 1, 2]);
    let (status, body) = api(&lab, "POST", "/proxies/@udp/toxics", r#"{"type":"slicer"}"#).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_flood_into_a_long_latency_is_held_up_to_its_bound_and_the_rest_counted() {
    let lab = lab::start().await;
    let listen = udp_proxy(&lab, "flood").await;
    toxic(
        &lab,
        "flood",
        r#"{"type":"latency","stream":"upstream","attributes":{"latency":60000}}"#,
    )
    .await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.connect(&listen).await.unwrap();
    let datagram = vec![b'x'; 1000];
    // 20 MB toward a line that holds 1 MiB for a minute.
    for i in 0..20_000 {
        client.send(&datagram).await.unwrap();
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let end = Instant::now() + WAIT;
    let (received, dropped) = loop {
        let dropped = lab.app.lab_state().counters.fault_dropped;
        let received = lab.app.relays.get("flood").unwrap().info().client_in / 1000;
        // Everything the lab read is held (1 MiB of it), queued for the toxics (1,024)
        // or dropped and counted; the kernel drops the rest of a flood.
        if (received >= 3000 && received - dropped <= 2100) || Instant::now() > end {
            break (received, dropped);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(received >= 3000, "{received} read");
    assert!(
        received - dropped <= 2100,
        "held and queued at most ~2,000 of {received}: {dropped} dropped"
    );
    let proxy = lab.app.relays.get("flood").unwrap().info();
    assert!(proxy.dropped >= dropped, "{proxy:?}");
    assert_eq!(proxy.upstream_out, 0, "nothing due yet: {proxy:?}");
}

#[tokio::test]
async fn datagrams_a_toxic_still_holds_when_a_session_ends_are_counted() {
    let lab = lab::start_with(|c| c.proxy_udp_idle_secs = 1).await;
    let listen = udp_proxy(&lab, "held").await;
    toxic(
        &lab,
        "held",
        r#"{"type":"latency","stream":"upstream","attributes":{"latency":60000}}"#,
    )
    .await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..5 {
        client.send_to(b"held", &listen).await.unwrap();
    }
    // The session ends idle after 1 s with all five held: dropped, and counted.
    let end = Instant::now() + WAIT;
    let dropped = loop {
        let dropped = lab.app.lab_state().counters.fault_dropped;
        if dropped >= 5 || Instant::now() > end {
            break dropped;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dropped, 5);
    assert_eq!(lab.app.relays.get("held").unwrap().info().dropped, 5);
}
