//! The TCP and UDP panels in a real headless Chromium against a real lab (issue 4): a TCP
//! client's row appears, text sent from the page reaches it, closing it from the page gives
//! it EOF, and a datagram sent from the page reaches a UDP peer.
//!
//! Every test starts its own lab on port 0 and its own browser. Needs the built dashboard
//! (`cargo xtask test` builds `dist/` first).

mod support;

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::Value;
use support::browser::{Browser, browser};
use support::lab;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UdpSocket};

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        wirelab::hub::now_us() % 1_000_000_007
    )
}

fn dist_built() -> bool {
    let built =
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/index.html")).exists();
    if !built && std::env::var("CI").as_deref() == Ok("true") {
        panic!("dist/ is not built: run `cargo xtask test` (it builds the dashboard first)");
    }
    if !built {
        eprintln!("SKIPPING browser test: dist/ is not built (cargo xtask dist)");
    }
    built
}

/// Runs `script` (a function body) in the page and returns what it returns.
async fn js(browser: &Browser, script: &str, args: Vec<Value>) -> Value {
    browser
        .execute(script, args)
        .await
        .unwrap_or_else(|err| panic!("script failed: {err}\n{script}"))
}

/// Polls `script` every 50 ms until it returns something other than null or false, and
/// returns that. Panics after `timeout` with a screenshot and the page's text.
async fn wait_js(
    browser: &Browser,
    what: &str,
    script: &str,
    args: Vec<Value>,
    timeout: Duration,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let value = js(browser, script, args.clone()).await;
        if !matches!(value, Value::Null | Value::Bool(false)) {
            return value;
        }
        if Instant::now() >= deadline {
            let shot = format!("/tmp/wirelab-failure-{}.png", unique("tcp-udp"));
            browser.screenshot(&shot).await;
            let mut body = browser.body_text().await;
            body.truncate(body.floor_char_boundary(3000));
            panic!("{what}: not within {timeout:?}\nscreenshot: {shot}\npage text:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens the lab's page and waits until `#conn-state` says `connected`.
async fn open_connected(browser: &Browser, url: &str) {
    browser.goto(url).await;
    wait_js(
        browser,
        "the page connects",
        "const e = document.querySelector('#conn-state'); \
         return e && e.textContent === 'connected'",
        vec![],
        Duration::from_secs(10),
    )
    .await;
}

/// Clicks the element `css` (waiting for it), the way a user's click would reach Yew's
/// handler. Found afresh, since Yew may have replaced it since the last look.
async fn click(browser: &Browser, css: &str) {
    wait_js(
        browser,
        &format!("{css} is there to click"),
        "const e = document.querySelector(arguments[0]); if (!e || e.disabled) return false; \
         e.click(); return true",
        vec![css.into()],
        Duration::from_secs(5),
    )
    .await;
}

/// Types `text` into the input `css` with real key presses.
async fn type_into(browser: &Browser, css: &str, text: &str) {
    let input = browser
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|err| panic!("no {css}: {err}"));
    input
        .send_keys(text)
        .await
        .unwrap_or_else(|err| panic!("typing into {css}: {err}"));
    // What the form will read on submit.
    let value = js(
        browser,
        "return document.querySelector(arguments[0]).value",
        vec![css.into()],
    )
    .await;
    assert_eq!(value.as_str(), Some(text), "{css} holds what was typed");
}

/// Picks `value` in the `<select>` `css`, as a user would (a `change` event follows).
async fn select(browser: &Browser, css: &str, value: &str) {
    wait_js(
        browser,
        &format!("{css} offers {value}"),
        "const s = document.querySelector(arguments[0]); \
         if (!s || ![...s.options].some(o => o.value === arguments[1])) return false; \
         s.value = arguments[1]; s.dispatchEvent(new Event('change', {bubbles: true})); \
         return s.value === arguments[1]",
        vec![css.into(), value.into()],
        Duration::from_secs(5),
    )
    .await;
}

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
    if !dist_built() {
        return;
    }
    let Some(browser) = browser().await else {
        return;
    };
    let lab = lab::start().await;
    open_connected(&browser, &lab.url()).await;
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
    if !dist_built() {
        return;
    }
    let Some(browser) = browser().await else {
        return;
    };
    let lab = lab::start().await;
    open_connected(&browser, &lab.url()).await;
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
