//! The WebSocket service's panel in a real headless Chromium against a real lab (issue 19):
//! a client's row appears with its path, a message sent from the page reaches it, and
//! dropping it from the page resets its connection.
//!
//! Needs the built dashboard (`cargo xtask test` builds `dist/` first).

mod support;

use std::time::Duration;

use support::page::{click, connected_dashboard, select, type_into, unique, wait_js};
use support::raw_ws::{self, Ending};

#[tokio::test]
async fn a_client_appears_gets_a_message_from_the_page_and_is_dropped_from_it() {
    let Some((browser, lab)) = connected_dashboard().await else {
        return;
    };
    click(&browser, "[data-tab=ws]").await;
    let addr = lab.ws_service.expect("the WebSocket service runs");
    let path = format!("/{}", unique("path"));
    let mut client = raw_ws::upgrade(addr, &path, &[]).await.unwrap();
    let id = wait_js(
        &browser,
        &format!("a row for the client on {path}"),
        "for (const r of document.querySelectorAll('tr[data-wss-client]')) { \
           if (r.textContent.includes(arguments[0])) return r.dataset.wssClient; } \
         return null",
        vec![path.clone().into()],
        Duration::from_secs(5),
    )
    .await;
    let id = id.as_str().expect("an id").to_owned();

    select(&browser, "#wss-send-target", &id).await;
    let text = unique("from-the-page");
    type_into(&browser, "#wss-send-input", &text).await;
    click(&browser, "#wss-send-button").await;
    assert_eq!(
        raw_ws::next_frame(&mut client).await,
        Some((0x81, text.clone().into_bytes())),
        "one text message, as typed"
    );
    browser.screenshot("/tmp/wirelab-ws-service.png").await;

    click(&browser, &format!("[data-wss-drop='{id}']")).await;
    let (mut r, _w) = client.into_split();
    assert_eq!(
        raw_ws::ending(&mut r).await,
        Ending::Error(std::io::ErrorKind::ConnectionReset),
        "a drop is a reset, with no close frame before it"
    );
    wait_js(
        &browser,
        "the dropped client's row leaves the panel",
        "return !document.querySelector(`tr[data-wss-client='${arguments[0]}']`)",
        vec![id.into()],
        Duration::from_secs(5),
    )
    .await;
    browser.close().await;
}
