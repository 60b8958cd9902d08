//! The dashboard in a real headless Chromium against a real lab: it connects, shows a UDP
//! datagram live, carries chat between two dashboards (over compressed WebSockets), and
//! renders hostile payloads as text.
//!
//! Needs the built dashboard (`cargo xtask test` builds `dist/` first).

mod support;

use std::time::Duration;

use fantoccini::Locator;
use support::browser::browser;
use support::lab;
use support::page::{connected_dashboard, dist_built, unique};
use tokio::net::UdpSocket;

#[tokio::test]
async fn a_datagram_appears_on_the_dashboard_within_two_seconds() {
    let Some((browser, lab)) = connected_dashboard().await else {
        return;
    };
    let text = unique("hello-from-udp");
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    peer.send_to(text.as_bytes(), lab.udp).await.unwrap();
    browser.wait_for_text(&text, Duration::from_secs(2)).await;
    browser.screenshot("/tmp/wirelab-e2e-udp.png").await;
    browser.close().await;
}

#[tokio::test]
async fn chat_from_one_dashboard_appears_on_the_other() {
    if !dist_built() {
        return;
    }
    let (Some(alice), Some(bob)) = (browser().await, browser().await) else {
        return;
    };
    // Both pages take every message compressed (permessage-deflate), which Chromium
    // offers by itself: the chat must survive compression both ways.
    let lab = lab::start_with(|c| c.ws_compress = wirelab::ws::deflate::Policy::Always).await;
    for b in [&alice, &bob] {
        b.goto(&format!("{}#ws", lab.url())).await;
        b.wait_for_text("connected", Duration::from_secs(10)).await;
        b.find(Locator::Css("[data-tab=ws]"))
            .await
            .expect("a WebSocket tab")
            .click()
            .await
            .unwrap();
    }
    let line = unique("hi-bob");
    let input = alice
        .wait()
        .for_element(Locator::Css("#chat-input"))
        .await
        .unwrap();
    input.send_keys(&line).await.unwrap();
    alice
        .find(Locator::Css("#chat-send"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    bob.wait_for_text(&line, Duration::from_secs(3)).await;
    assert_eq!(
        lab.app.ws.deflating(),
        2,
        "both pages agreed to compression"
    );
    // And the WebSocket panel says so (the clients table, from the next `state`).
    bob.wait_for_text("deflate", Duration::from_secs(3)).await;
    bob.screenshot("/tmp/wirelab-e2e-chat.png").await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn a_hostile_payload_arrives_as_text() {
    let Some((browser, lab)) = connected_dashboard().await else {
        return;
    };
    let marker = unique("xss");
    let payload = format!(
        "<img src=x onerror=\"document.title='{marker}'\"><script>window.pwned=1</script>{marker}"
    );
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    peer.send_to(payload.as_bytes(), lab.udp).await.unwrap();
    browser.wait_for_text(&marker, Duration::from_secs(3)).await;
    let body = browser.body_text().await;
    assert!(body.contains("<img src=x"), "the markup is shown as text");
    let injected = browser
        .execute(
            "return [document.querySelectorAll('img[src=x]').length, window.pwned === 1, document.title]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(injected[0], 0, "no element was created from the payload");
    assert_eq!(injected[1], false, "no script ran");
    assert_ne!(injected[2].as_str(), Some(marker.as_str()));
    browser.close().await;
}
