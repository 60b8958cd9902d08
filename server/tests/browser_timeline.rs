//! The unified timeline in a real headless Chromium against a real lab (issue 6):
//! filtering by protocol, peer and text, and hiding single rows; pause (by scrolling up, or the pause button) and
//! the "N new" button; a binary payload as a hex dump; the exports (JSON Lines of the
//! filtered rows, HAR 1.2 of the HTTP exchanges), read back from the Blob the page hands
//! to the browser, and the server's pcapng behind the page's link; and a bounded ring whose counters stay exact. (The flood test runs alone
//! in `browser_flood.rs`; the hostile-payload test is in `browser_dashboard.rs`.)
//!
//! Every test starts its own lab on port 0 and its own browser. Needs the built dashboard
//! (`cargo xtask test` builds `dist/` first).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use fantoccini::Locator;
use serde_json::Value;
use support::browser::{Browser, browser};
use support::lab;
use support::page::{
    click, connected_dashboard, dist_built, js, open_connected, type_into, unique, wait_js,
};
use support::raw_http;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use wirelab_shared::{Event, Protocol};

/// Sends one HTTP/1.1 request (closing the connection after it) and returns the status.
async fn http(addr: SocketAddr, method: &str, target: &str, headers: &str, body: &str) -> u16 {
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let response = raw_http::exchange(addr, &request, Duration::from_secs(5)).await;
    let response = String::from_utf8_lossy(&response);
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

/// The protocol cell of every timeline row in the DOM, top to bottom.
const ROW_PROTOS: &str = "return [...document.querySelectorAll('.row')].map(r => r.querySelector('.c-proto').textContent)";

/// Waits until `#count-shown` is `n`, and returns the protocols of the rows in the DOM.
async fn wait_shown(browser: &Browser, what: &str, n: u64) -> Vec<String> {
    wait_js(
        browser,
        &format!("{what}: {n} rows shown"),
        &format!(
            "const e = document.getElementById('count-shown'); \
             return !!e && Number(e.dataset.value) === {n} \
               && document.querySelectorAll('.row').length === {n}"
        ),
        vec![],
        Duration::from_secs(5),
    )
    .await;
    serde_json::from_value(js(browser, ROW_PROTOS, vec![]).await).unwrap()
}

/// Waits until `#count-shown` is `n` (the rows in the DOM may be fewer: only those in view).
async fn wait_shown_total(browser: &Browser, what: &str, n: u64) {
    wait_js(
        browser,
        &format!("{what}: {n} rows pass the filter"),
        &format!(
            "const e = document.getElementById('count-shown'); \
             return !!e && Number(e.dataset.value) === {n}"
        ),
        vec![],
        Duration::from_secs(5),
    )
    .await;
}

/// A real click (WebDriver) on `css`, found afresh.
async fn real_click(browser: &Browser, css: &str) {
    browser
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|err| panic!("no {css}: {err}"))
        .click()
        .await
        .unwrap_or_else(|err| panic!("clicking {css}: {err}"));
}

#[tokio::test]
async fn filters_by_protocol_peer_and_text_hide_and_show_rows() {
    let Some((browser, lab)) = connected_dashboard().await else {
        return;
    };

    let u = unique("f");
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for word in ["alpha", "beta", "gamma"] {
        peer.send_to(format!("udp-{word}-{u}").as_bytes(), lab.udp)
            .await
            .unwrap();
    }
    let mut tcp = TcpStream::connect(lab.tcp).await.unwrap();
    let tcp_peer = tcp.local_addr().unwrap().to_string();
    tcp.write_all(format!("tcp-delta-{u}\n").as_bytes())
        .await
        .unwrap();
    let status = http(lab.http, "GET", "/", &format!("X-Find-Me: hdr-{u}\r\n"), "").await;
    assert_eq!(status, 200);
    // 1 ws open (this page), 3 udp, tcp open + data, 1 http.
    let all = wait_shown(&browser, "everything", 7).await;
    let count = |protos: &[String], p: &str| protos.iter().filter(|x| *x == p).count();
    assert_eq!(
        (count(&all, "udp"), count(&all, "tcp"), count(&all, "http")),
        (3, 2, 1),
        "{all:?}"
    );

    // One protocol: a click shows it alone.
    real_click(&browser, "[data-filter-proto=udp]").await;
    let rows = wait_shown(&browser, "UDP only", 3).await;
    assert!(rows.iter().all(|p| p == "udp"), "only UDP rows: {rows:?}");
    let body = browser.body_text().await;
    assert!(
        !body.contains(&format!("tcp-delta-{u}")),
        "the TCP row is hidden"
    );
    let pressed = js(
        &browser,
        "return ['all', 'udp', 'tcp'].map(p => \
           document.querySelector(`[data-filter-proto=${p}]`).getAttribute('aria-pressed'))",
        vec![],
    )
    .await;
    assert_eq!(pressed, serde_json::json!(["false", "true", "false"]));

    // Ctrl-click adds one.
    js(
        &browser,
        "document.querySelector('[data-filter-proto=tcp]').dispatchEvent(\
           new MouseEvent('click', {bubbles: true, cancelable: true, ctrlKey: true})); return true",
        vec![],
    )
    .await;
    let rows = wait_shown(&browser, "UDP and TCP", 5).await;
    assert_eq!(
        (count(&rows, "udp"), count(&rows, "tcp")),
        (3, 2),
        "{rows:?}"
    );
    browser.screenshot("/tmp/wirelab-filter-proto.png").await;

    real_click(&browser, "[data-filter-proto=all]").await;
    wait_shown(&browser, "all protocols again", 7).await;

    // Text: payloads, and HTTP headers too.
    type_into(&browser, "#filter-text", &format!("beta-{u}")).await;
    wait_shown(&browser, "the text filter", 1).await;
    let text = browser.body_text().await;
    assert!(text.contains(&format!("udp-beta-{u}")));
    assert!(!text.contains(&format!("udp-alpha-{u}")));
    js(
        &browser,
        "const e = document.getElementById('filter-text'); e.value = ''; \
         e.dispatchEvent(new Event('input', {bubbles: true})); return true",
        vec![],
    )
    .await;
    wait_shown(&browser, "the text filter emptied", 7).await;
    type_into(&browser, "#filter-text", &format!("hdr-{u}")).await;
    let rows = wait_shown(&browser, "a header's value", 1).await;
    assert_eq!(rows, ["http"], "the text filter searches HTTP headers");
    browser.screenshot("/tmp/wirelab-filter-text.png").await;

    // Peer, on top of the text: nothing; then alone: the TCP client's rows.
    type_into(&browser, "#filter-peer", &tcp_peer).await;
    wait_shown(&browser, "text and peer together", 0).await;
    wait_js(
        &browser,
        "the empty view says so",
        "const e = document.querySelector('.tl-empty'); \
         return !!e && e.textContent.includes('No event matches')",
        vec![],
        Duration::from_secs(3),
    )
    .await;
    js(
        &browser,
        "const e = document.getElementById('filter-text'); e.value = ''; \
         e.dispatchEvent(new Event('input', {bubbles: true})); return true",
        vec![],
    )
    .await;
    let rows = wait_shown(&browser, "the TCP client's address", 2).await;
    assert!(rows.iter().all(|p| p == "tcp"), "{rows:?}");

    // Reset: everything again.
    click(&browser, "#filter-reset").await;
    wait_shown(&browser, "after reset", 7).await;

    // One row hidden from its detail pane (mitmproxy #8186 asks for this): it leaves the
    // view, the filter bar counts it, and one click shows it again.
    let first: String = serde_json::from_value(
        js(
            &browser,
            "return document.querySelector('.row').dataset.seq",
            vec![],
        )
        .await,
    )
    .unwrap();
    click(&browser, &format!(".row[data-seq='{first}']")).await;
    real_click(&browser, "#detail-hide").await;
    wait_shown(&browser, "one row hidden", 6).await;
    let gone = js(
        &browser,
        "return !document.querySelector(`.row[data-seq='${arguments[0]}']`)            && document.getElementById('show-hidden').textContent",
        vec![first.clone().into()],
    )
    .await;
    assert_eq!(gone, "1 hidden · show");
    click(&browser, "#show-hidden").await;
    wait_shown(&browser, "hidden rows shown again", 7).await;
    let pressed = js(
        &browser,
        "return document.querySelector('[data-filter-proto=all]').getAttribute('aria-pressed')",
        vec![],
    )
    .await;
    assert_eq!(pressed, "true");

    // The chart strip counts the same 7 events over the last minute (it charts complete
    // seconds, so within about two seconds).
    wait_js(
        &browser,
        "the ALL chart counts the 7 events",
        "const e = document.querySelector('[data-chart=all] .chart-foot'); \
         return !!e && e.textContent.includes('7 in 60 s')",
        vec![],
        Duration::from_secs(4),
    )
    .await;
    browser.close().await;
}

/// Defines `scrollState()`: the list's scroll figures, and what the follow button and the
/// "N new" button say.
const SCROLL_STATE: &str = "const scrollState = () => { \
    const l = document.getElementById('timeline-list'); \
    const j = document.getElementById('jump-new'); const f = document.getElementById('follow'); \
    const seqs = [...document.querySelectorAll('.row')].map(r => Number(r.dataset.seq)); \
    return { top: l.scrollTop, height: l.clientHeight, full: l.scrollHeight, \
      at_bottom: l.scrollTop + l.clientHeight >= l.scrollHeight - 2, \
      jump: j ? j.textContent : null, paused: f.getAttribute('aria-pressed') === 'true', \
      follow_label: f.textContent, last_seq_in_dom: Math.max(...seqs), \
      shown: Number(document.getElementById('count-shown').dataset.value) }; };";

/// A script that returns `scrollState()` when `cond` (an expression over `s`) holds.
fn scroll_when(cond: &str) -> String {
    format!("{SCROLL_STATE} const s = scrollState(); return ({cond}) && s")
}

/// Whether the row with the newest `seq` is in the DOM and inside the list's viewport.
const NEWEST_IN_VIEW: &str = "const l = document.getElementById('timeline-list'); \
    const rows = [...document.querySelectorAll('.row')]; if (!rows.length) return false; \
    const newest = rows.reduce((a, b) => Number(a.dataset.seq) > Number(b.dataset.seq) ? a : b); \
    if (Number(newest.dataset.seq) !== arguments[0]) return false; \
    const lr = l.getBoundingClientRect(), r = newest.getBoundingClientRect(); \
    return r.top >= lr.top - 1 && r.bottom <= lr.bottom + 1";

async fn send_numbered(peer: &UdpSocket, to: SocketAddr, prefix: &str, n: usize) {
    for i in 0..n {
        peer.send_to(format!("{prefix}-{i}").as_bytes(), to)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn scrolling_up_or_pause_holds_the_view_and_n_new_jumps_back() {
    let Some((browser, lab)) = connected_dashboard().await else {
        return;
    };
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    // Enough rows to scroll: the list follows the newest.
    send_numbered(&peer, lab.udp, "first", 120).await;
    wait_shown_total(&browser, "ws open and 120 datagrams", 121).await;
    // A fresh lab numbers events from 1: the newest is seq 121 (this page's ws open is 1).
    let n = 121u64;
    wait_js(
        &browser,
        "the list follows: the newest row in view",
        NEWEST_IN_VIEW,
        vec![n.into()],
        Duration::from_secs(3),
    )
    .await;

    // The user scrolls up: autoscroll stops.
    js(
        &browser,
        "document.getElementById('timeline-list').scrollTop = 0; return true",
        vec![],
    )
    .await;
    let state = wait_js(
        &browser,
        "scrolling up pauses autoscroll",
        &scroll_when("s.paused"),
        vec![],
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(state["top"], 0, "{state}");
    assert_eq!(state["follow_label"], "▶ follow", "{state}");

    // New rows come: the view holds still, and "7 new" offers the way back.
    send_numbered(&peer, lab.udp, "second", 7).await;
    let state = wait_js(
        &browser,
        "\"7 new\" while paused",
        &scroll_when("s.shown === 128 && s.jump !== null"),
        vec![],
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(state["jump"], "↓ 7 new", "{state}");
    assert_eq!(state["top"], 0, "the view held still: {state}");
    assert!(
        state["last_seq_in_dom"].as_u64().unwrap() < 128,
        "the new rows are not rendered while the top is in view: {state}"
    );
    browser.screenshot("/tmp/wirelab-paused.png").await;

    click(&browser, "#jump-new").await;
    wait_js(
        &browser,
        "after \"N new\": following again, the newest row in view",
        &scroll_when("!s.paused && s.jump === null && s.at_bottom"),
        vec![],
        Duration::from_secs(3),
    )
    .await;
    wait_js(
        &browser,
        "the newest row (after N new) in view",
        NEWEST_IN_VIEW,
        vec![128.into()],
        Duration::from_secs(3),
    )
    .await;

    // The pause button does the same.
    click(&browser, "#follow").await;
    wait_js(
        &browser,
        "the pause button pauses",
        &scroll_when("s.paused"),
        vec![],
        Duration::from_secs(3),
    )
    .await;
    let before = js(&browser, &scroll_when("true"), vec![]).await;
    send_numbered(&peer, lab.udp, "third", 3).await;
    let state = wait_js(
        &browser,
        "\"3 new\" after the pause button",
        &scroll_when("s.shown === 131 && s.jump !== null"),
        vec![],
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(state["jump"], "↓ 3 new", "paused with the button: {state}");
    assert_eq!(state["top"], before["top"], "the view held still: {state}");
    let in_view = js(&browser, NEWEST_IN_VIEW, vec![131.into()]).await;
    assert_eq!(
        in_view, false,
        "paused: the newest row is not scrolled into view"
    );
    click(&browser, "#follow").await;
    wait_js(
        &browser,
        "follow again: the newest row in view and no \"N new\"",
        &scroll_when("!s.paused && s.jump === null"),
        vec![],
        Duration::from_secs(3),
    )
    .await;
    wait_js(
        &browser,
        "the newest row (after follow) in view",
        NEWEST_IN_VIEW,
        vec![131.into()],
        Duration::from_secs(3),
    )
    .await;
    browser.close().await;
}

#[tokio::test]
async fn a_binary_payload_shows_as_a_hex_dump() {
    let Some((browser, lab)) = connected_dashboard().await else {
        return;
    };
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    peer.send_to(&[0x00, 0x9f, 0x92, 0x96, 0xff], lab.udp)
        .await
        .unwrap();
    let seq = wait_js(
        &browser,
        "the binary datagram's row",
        "for (const r of document.querySelectorAll('.row')) \
           if (r.querySelector('.c-proto').textContent === 'udp') return r.dataset.seq; \
         return null",
        vec![],
        Duration::from_secs(5),
    )
    .await;
    let seq = seq.as_str().unwrap().to_owned();
    click(&browser, &format!(".row[data-seq='{seq}']")).await;
    let text_view = wait_js(
        &browser,
        "the detail pane for the binary row",
        "const d = document.getElementById('detail'); const p = document.getElementById('detail-payload'); \
         return !!d && d.dataset.seq === arguments[0] && !!p && p.textContent",
        vec![seq.clone().into()],
        Duration::from_secs(5),
    )
    .await;
    let text_view = text_view.as_str().unwrap();
    assert!(
        text_view.contains("00 9f 92 96 ff"),
        "binary is shown as hex even in the text view:\n{text_view}"
    );
    click(&browser, "[data-view=hex]").await;
    let hex = wait_js(
        &browser,
        "the hex view",
        "const b = document.querySelector('[data-view=hex]'); const p = document.getElementById('detail-payload'); \
         return b.getAttribute('aria-pressed') === 'true' && p.textContent",
        vec![],
        Duration::from_secs(5),
    )
    .await;
    let hex = hex.as_str().unwrap();
    let first = hex.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("00000000  00 9f 92 96 ff") && first.ends_with("|.....|"),
        "a hexdump -C style line, offset, bytes and ASCII:\n{hex}"
    );
    browser.screenshot("/tmp/wirelab-hexdump.png").await;
    browser.close().await;
}

/// Catches the page's downloads: each Blob handed to `URL.createObjectURL` is kept, with
/// the file name of the anchor that is then clicked (the click itself is swallowed, so
/// nothing is written to disk).
const CATCH_DOWNLOADS: &str = "window.__downloads = []; \
    const create = URL.createObjectURL.bind(URL); \
    URL.createObjectURL = blob => { const url = create(blob); \
      window.__downloads.push({ url, blob, name: null }); return url; }; \
    const click = HTMLAnchorElement.prototype.click; \
    HTMLAnchorElement.prototype.click = function () { \
      const d = window.__downloads.find(d => d.url === this.href); \
      if (d) { d.name = this.download; return; } return click.call(this); }; \
    return true";

/// Clicks `button` and returns the download it made: (file name, MIME type, text).
async fn download(browser: &Browser, button: &str) -> (String, String, String) {
    let before = js(browser, "return window.__downloads.length", vec![]).await;
    click(browser, button).await;
    wait_js(
        browser,
        &format!("a download from {button}"),
        "return window.__downloads.length > arguments[0] && window.__downloads.at(-1).name !== null",
        vec![before],
        Duration::from_secs(5),
    )
    .await;
    let got = browser
        .execute_async(
            "const done = arguments[arguments.length - 1]; const d = window.__downloads.at(-1); \
             d.blob.text().then(text => done([d.name, d.blob.type, text]))",
            vec![],
        )
        .await
        .expect("the Blob's text");
    serde_json::from_value(got).expect("[name, type, text]")
}

/// Parses JSON Lines: every line one `Event`; panics naming the line that is not.
fn parse_jsonl(text: &str) -> Vec<Event> {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "JSON Lines end each line with a newline"
    );
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str::<Event>(line)
                .unwrap_or_else(|err| panic!("line {} is not an event: {err}\n{line}", i + 1))
        })
        .collect()
}

#[tokio::test]
async fn exports_parse_as_json_lines_and_har_1_2() {
    let Some((browser, lab)) = connected_dashboard().await else {
        return;
    };
    js(&browser, CATCH_DOWNLOADS, vec![]).await;

    let u = unique("x");
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tricky = format!("two\nlines, \"quotes\" and \\ {u}");
    peer.send_to(tricky.as_bytes(), lab.udp).await.unwrap();
    peer.send_to(&[0xff, 0x00, 0xfe], lab.udp).await.unwrap();
    assert_eq!(
        http(lab.http, "GET", &format!("/?q={u}&n=1"), "", "").await,
        200
    );
    let posted = format!("{{\"hello\": \"{u}\"}}");
    assert_eq!(
        http(
            lab.http,
            "POST",
            "/_/echo",
            "Content-Type: application/json\r\n",
            &posted
        )
        .await,
        200
    );
    assert_eq!(http(lab.http, "GET", "/_/status/404", "", "").await, 404);
    // ws open, 2 udp, 3 http.
    wait_shown_total(&browser, "every event", 6).await;

    // JSON Lines of the whole view: one event per line, as the server sent them.
    let (name, mime, text) = download(&browser, "#export-jsonl").await;
    assert!(name.ends_with(".jsonl"), "{name}");
    assert_eq!(mime, "application/x-ndjson");
    let events = parse_jsonl(&text);
    assert_eq!(events.len(), 6, "one line per row shown:\n{text}");
    assert!(
        events.windows(2).all(|w| w[0].seq < w[1].seq),
        "oldest first"
    );
    let udp: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind.protocol() == Protocol::Udp)
        .collect();
    assert_eq!(udp.len(), 2);
    let payload = udp[0].kind.payload().expect("a payload");
    assert_eq!(
        payload.data, tricky,
        "text survives, newline and quotes included"
    );
    assert_eq!(udp[1].kind.payload().unwrap().bytes(), [0xff, 0x00, 0xfe]);

    // Filtered: the export holds what the filter shows.
    real_click(&browser, "[data-filter-proto=http]").await;
    wait_shown_total(&browser, "HTTP only", 3).await;
    let (_, _, text) = download(&browser, "#export-jsonl").await;
    let events = parse_jsonl(&text);
    assert_eq!(events.len(), 3, "the filtered view:\n{text}");
    assert!(events.iter().all(|e| e.kind.protocol() == Protocol::Http));

    // The Wireshark capture, made by the server from its recording: the link the page
    // shows fetches a pcapng (section header block magic) holding both datagrams.
    // (The recorder commits in batches: a few tries.)
    let mut got = Value::Null;
    for _ in 0..40 {
        got = js(
            &browser,
            "const a = document.querySelector('#export-pcapng');
             return fetch(a.href).then(r => r.arrayBuffer()).then(b => {
                 const text = new TextDecoder('latin1').decode(b);
                 return [Array.from(new Uint8Array(b.slice(0, 4))), text.includes(arguments[0])];
             });",
            vec![Value::from(u.clone())],
        )
        .await;
        if got[1] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got[0], serde_json::json!([10, 13, 13, 10]), "pcapng: {got}");
    assert_eq!(got[1], true, "the datagram's bytes are in the capture");

    // HAR 1.2: one entry per HTTP exchange.
    let (name, mime, text) = download(&browser, "#export-har").await;
    assert!(name.ends_with(".har"), "{name}");
    assert_eq!(mime, "application/json");
    let har: Value = serde_json::from_str(&text).expect("the HAR parses as JSON");
    assert_eq!(har["log"]["version"], "1.2", "{har:#}");
    assert!(har["log"]["creator"]["name"].is_string(), "{har:#}");
    let entries = har["log"]["entries"].as_array().expect("log.entries");
    assert_eq!(entries.len(), 3, "one entry per exchange: {har:#}");
    let summary: Vec<(String, String, u64)> = entries
        .iter()
        .map(|e| {
            (
                e["request"]["method"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                e["request"]["url"].as_str().unwrap_or_default().to_owned(),
                e["response"]["status"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let base = format!("http://{}", lab.http);
    assert_eq!(
        summary,
        [
            ("GET".to_owned(), format!("{base}/?q={u}&n=1"), 200),
            ("POST".to_owned(), format!("{base}/_/echo"), 200),
            ("GET".to_owned(), format!("{base}/_/status/404"), 404),
        ],
        "{har:#}"
    );
    assert_eq!(
        entries[1]["request"]["postData"]["text"], posted,
        "the POST body: {:#}",
        entries[1]
    );
    assert_eq!(
        (
            &entries[2]["response"]["httpVersion"],
            &entries[2]["response"]["statusText"]
        ),
        (&Value::from("HTTP/1.1"), &Value::from("Not Found")),
        "the status line as sent: {:#}",
        entries[2]
    );
    let query = &entries[0]["request"]["queryString"];
    assert_eq!(
        *query,
        serde_json::json!([{"name": "q", "value": u}, {"name": "n", "value": "1"}])
    );
    for e in entries {
        for key in ["startedDateTime", "time", "cache", "timings"] {
            assert!(!e[key].is_null(), "HAR 1.2 needs entry.{key}: {e:#}");
        }
        assert_eq!(e["request"]["httpVersion"], "HTTP/1.1", "{e:#}");
        assert!(e["request"]["headers"].is_array() && e["response"]["headers"].is_array());
        assert!(e["response"]["content"]["mimeType"].is_string(), "{e:#}");
    }
    browser.screenshot("/tmp/wirelab-exports.png").await;
    browser.close().await;
}

#[tokio::test]
async fn the_ring_is_bounded_while_the_counters_stay_exact() {
    if !dist_built() {
        return;
    }
    let Some(browser) = browser().await else {
        return;
    };
    let lab = lab::start().await;
    // A small ring (?cap=100) shows the bound without a flood.
    let url = lab.url();
    let sep = if url.contains('?') { '&' } else { '?' };
    open_connected(&browser, &format!("{url}{sep}cap=100")).await;
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    send_numbered(&peer, lab.udp, "ring", 300).await;
    let seen = wait_js(
        &browser,
        "301 events counted",
        "const n = Number(document.getElementById('count-events').dataset.value); \
         return n >= 301 && n",
        vec![],
        Duration::from_secs(5),
    )
    .await;
    let published = lab.app.hub.counters.snapshot().events;
    assert_eq!(
        seen, published,
        "the page counted every event the lab published"
    );
    let held = js(
        &browser,
        "const c = document.getElementById('count-shown'); \
         return [Number(c.dataset.value), c.parentElement.textContent, \
           Number(document.getElementById('count-lagged').dataset.value), \
           document.querySelectorAll('.row').length]",
        vec![],
    )
    .await;
    assert_eq!(held[0], 100, "the ring holds 100 rows: {held}");
    assert!(held[1].as_str().unwrap().contains("/ 100"), "{held}");
    assert_eq!(held[2], 0, "nothing missed: {held}");
    assert!(held[3].as_u64().unwrap() < 100, "virtualized: {held}");
    browser.close().await;
}
