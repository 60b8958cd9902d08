//! The TCP and UDP panels in a real headless Chromium against a real lab (issue 4): a TCP
//! client's row appears, text sent from the page reaches it, closing it from the page gives
//! it EOF, and a datagram sent from the page reaches a UDP peer.
//!
//! Every test starts its own lab on port 0 and its own browser. Needs the built dashboard
//! (`cargo xtask test` builds `dist/` first).

mod support;

use std::time::Duration;

use support::browser::Browser;
use support::page::{click, connected_dashboard, select, type_into, unique, wait_js};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UdpSocket};

/// Reads from `stream` until what came contains `want`; panics after 5 s or at EOF.
async fn read_until(stream: &mut TcpStream, want: &str) -> String {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(want) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the client did not receive {want:?} within 5 s; it got {:?}",
                    String::from_utf8_lossy(&got)
                )
            })
            .expect("the client reads");
        assert!(
            n > 0,
            "EOF before {want:?} came; got {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The id of the TCP connection whose row names `peer` in the TCP panel, once it shows.
async fn conn_id_for(browser: &Browser, peer: &str) -> String {
    let id = wait_js(
        browser,
        &format!("a row for the TCP client {peer} in the TCP tab"),
        "for (const r of document.querySelectorAll('tr[data-conn]')) { \
           if (r.textContent.includes(arguments[0])) return r.dataset.conn; } \
         return null",
        vec![peer.into()],
        Duration::from_secs(5),
    )
    .await;
    id.as_str().expect("data-conn is a string").to_owned()
}

#[tokio::test]
async fn a_tcp_client_appears_gets_text_from_the_page_and_eof_when_closed_from_it() {
    let Some((browser, lab)) = connected_dashboard().await else {
        return;
    };
    click(&browser, "[data-tab=tcp]").await;

    let mut client = TcpStream::connect(lab.tcp)
        .await
        .expect("the TCP service accepts");
    let peer = client.local_addr().unwrap().to_string();
    let id = conn_id_for(&browser, &peer).await;
    // Live kernel figures (TCP_INFO, refreshed every second): a round-trip time shows.
    wait_js(
        &browser,
        "the connection's rtt (TCP_INFO) in the TCP panel",
        "const r = document.querySelector(`tr[data-conn='${arguments[0]}']`); \
         const rtt = r && r.children[5].textContent.trim(); \
         return !!rtt && rtt !== '—' && rtt",
        vec![id.clone().into()],
        Duration::from_secs(4),
    )
    .await;

    // Send from the page to this one connection.
    select(&browser, "#tcp-send-target", &id).await;
    let text = unique("from-the-page");
    type_into(&browser, "#tcp-send-input", &text).await;
    click(&browser, "#tcp-send-button").await;
    let got = read_until(&mut client, &text).await;
    assert_eq!(
        got,
        format!("{text}\n"),
        "the client gets the text, with the trailing newline the form adds by default"
    );
    wait_js(
        &browser,
        "the send form says the send went through",
        "const s = document.querySelector('.status[data-form=tcp-send]'); \
         return s && s.classList.contains('ok')",
        vec![],
        Duration::from_secs(5),
    )
    .await;
    browser.screenshot("/tmp/wirelab-tcp-send.png").await;

    // Close it from the page: the client reads EOF.
    click(&browser, &format!("[data-close-conn='{id}']")).await;
    let mut rest = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut rest))
        .await
        .expect("the client reads EOF within 5 s of the close")
        .expect("a clean close (FIN), not a reset");
    assert_eq!(
        n,
        0,
        "EOF expected, got {:?}",
        String::from_utf8_lossy(&rest[..n])
    );
    wait_js(
        &browser,
        "the closed connection's row leaves the TCP panel",
        "return !document.querySelector(`tr[data-conn='${arguments[0]}']`)",
        vec![id.clone().into()],
        Duration::from_secs(5),
    )
    .await;
    browser
        .wait_for_text("closed from page", Duration::from_secs(3))
        .await;
    browser.screenshot("/tmp/wirelab-tcp-closed.png").await;
    browser.close().await;
}

#[tokio::test]
async fn a_datagram_sent_from_the_page_reaches_the_udp_peer() {
    let Some((browser, lab)) = connected_dashboard().await else {
        return;
    };
    click(&browser, "[data-tab=udp]").await;

    // The lab only sends to peers it has heard from: say hello first.
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = peer.local_addr().unwrap().to_string();
    peer.send_to(b"hello lab", lab.udp).await.unwrap();
    wait_js(
        &browser,
        &format!("the peer {addr} in the UDP tab"),
        "return !!document.querySelector(`tr[data-peer='${arguments[0]}']`)",
        vec![addr.clone().into()],
        Duration::from_secs(5),
    )
    .await;

    select(&browser, "#udp-send-target", &addr).await;
    let text = unique("dgram-from-the-page");
    type_into(&browser, "#udp-send-input", &text).await;
    click(&browser, "#udp-send-button").await;

    let mut buf = vec![0u8; 65_536];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
        .await
        .expect("the datagram from the page arrives within 5 s")
        .unwrap();
    assert_eq!(from, lab.udp, "it comes from the lab's UDP socket");
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        format!("{text}\n"),
        "one datagram, the text with the form's trailing newline"
    );
    wait_js(
        &browser,
        "the peer's row counts one datagram out",
        "const r = document.querySelector(`tr[data-peer='${arguments[0]}']`); \
         return !!r && r.children[4].textContent.trim() === '1'",
        vec![addr.into()],
        Duration::from_secs(5),
    )
    .await;
    browser.screenshot("/tmp/wirelab-udp-send.png").await;
    browser.close().await;
}
