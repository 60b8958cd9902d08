//! Proves the headless-Chromium harness (`support/browser.rs`) works, with no server at all:
//! a `data:` page whose script writes text late, found by polling, then a screenshot.

mod support;

use std::time::Duration;

use support::browser::browser;

/// A page that shows a heading at once and a line from its script 200 ms later.
const PAGE: &str = "<!doctype html><title>wirelab smoke</title>\
    <body style=\"font: 24px sans-serif; margin: 40px\">\
    <h1>wirelab browser smoke test</h1><p id=\"late\">waiting for the script...</p>\
    <script>setTimeout(() => { document.getElementById('late').textContent = \
    'script ran: ' + 6 * 7; }, 200);</script></body>";

#[tokio::test]
async fn chromium_renders_a_page_and_runs_its_script() {
    let Some(browser) = browser().await else {
        return;
    };
    browser.goto(&data_url(PAGE)).await;
    browser
        .wait_for_text("script ran: 42", Duration::from_secs(5))
        .await;
    assert_eq!(browser.title().await.expect("page title"), "wirelab smoke");

    let shot = "/tmp/wirelab-smoke.png";
    browser.screenshot(shot).await;
    let png = std::fs::read(shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG: {shot}");
    browser.close().await;
}

/// Runs beside the test above, on its own chromedriver and port.
#[tokio::test]
async fn text_that_never_shows_is_reported_with_what_did() {
    let Some(browser) = browser().await else {
        return;
    };
    browser.goto(&data_url("<p>only this</p>")).await;
    let seen = browser
        .try_wait_for_text("never shown", Duration::from_millis(300))
        .await;
    assert_eq!(seen, Err("only this".to_owned()));
    browser.close().await;
}

/// `html` as a `data:text/html` URL, every byte but unreserved ones percent-encoded.
fn data_url(html: &str) -> String {
    let mut url = String::from("data:text/html;charset=utf-8,");
    for byte in html.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            url.push(byte as char);
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}
