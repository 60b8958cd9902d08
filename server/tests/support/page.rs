//! Page helpers shared by the browser tests (`browser_*.rs`): a unique marker, the check that
//! the dashboard is built, running and polling scripts in the page, opening the lab's page
//! until it is connected, and a user's clicks, typing and `<select>` choices.
//!
//! A wait that times out panics with a screenshot (`/tmp/wirelab-failure-wait-….png`) and
//! the page's text.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::Value;

use super::browser::{Browser, browser};
use super::lab::{self, TestLab};

/// `prefix`, then this process's id and the time: a marker no other test run will have.
pub(crate) fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        wirelab::hub::now_us() % 1_000_000_007
    )
}

/// Whether `dist/` holds the built dashboard. When it does not, says the test is skipped
/// (and returns false), or under `CI=true` panics: CI never skips the browser.
pub(crate) fn dist_built() -> bool {
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
pub(crate) async fn js(browser: &Browser, script: &str, args: Vec<Value>) -> Value {
    browser
        .execute(script, args)
        .await
        .unwrap_or_else(|err| panic!("script failed: {err}\n{script}"))
}

/// Polls `script` every 50 ms until it returns something other than null or false, and
/// returns that. Panics after `timeout` with a screenshot and the page's text.
pub(crate) async fn wait_js(
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
            let shot = format!("/tmp/wirelab-failure-{}.png", unique("wait"));
            browser.screenshot(&shot).await;
            let mut body = browser.body_text().await;
            body.truncate(body.floor_char_boundary(3000));
            panic!("{what}: not within {timeout:?}\nscreenshot: {shot}\npage text:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens the lab's page and waits until `#conn-state` says `connected`.
pub(crate) async fn open_connected(browser: &Browser, url: &str) {
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

/// What most browser tests start with: a lab on port 0 with the test defaults, and a
/// browser on its page, connected. `None` when the test is skipped (no dashboard built, or
/// no browser; each says so, and under `CI=true` panics instead).
pub(crate) async fn connected_dashboard() -> Option<(Browser, TestLab)> {
    if !dist_built() {
        return None;
    }
    let browser = browser().await?;
    let lab = lab::start().await;
    open_connected(&browser, &lab.url()).await;
    Some((browser, lab))
}

/// Clicks the element `css` (waiting for it), the way a user's click would reach Yew's
/// handler. Found afresh, since Yew may have replaced it since the last look.
pub(crate) async fn click(browser: &Browser, css: &str) {
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
pub(crate) async fn type_into(browser: &Browser, css: &str, text: &str) {
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
pub(crate) async fn select(browser: &Browser, css: &str, value: &str) {
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
