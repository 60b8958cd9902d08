//! The HTTP panel and the connection-pool lab in a real headless Chromium against a real
//! lab (issue 5): a `curl` request appears with its headers, told the way `curl -v` tells
//! it; a pool run started from the page shows live figures and ends with the right totals.
//!
//! Every test starts its own lab on port 0 and its own browser. Needs the built dashboard
//! (`cargo xtask test` builds `dist/` first).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use fantoccini::Locator;
use serde_json::Value;
use support::page::{click, connected_dashboard, js, type_into, unique, wait_js};
use support::raw_http;

/// Sends `GET /` to `addr` with `headers`, with the real `curl` when it is installed (else
/// the same request by hand), and returns the response body.
async fn get_with_headers(addr: SocketAddr, headers: &[(&str, &str)]) -> String {
    let url = format!("http://{addr}/");
    let mut curl = tokio::process::Command::new("curl");
    curl.args(["-sS", "--max-time", "5"]);
    for (name, value) in headers {
        curl.arg("-H").arg(format!("{name}: {value}"));
    }
    match curl.arg(&url).output().await {
        Ok(out) => {
            assert!(
                out.status.success(),
                "curl {url} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("curl is not installed: sending the request by hand");
        }
        Err(err) => panic!("could not run curl: {err}"),
    }
    let mut request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: curl/8.0\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Accept: */*\r\nConnection: close\r\n\r\n");
    let response = raw_http::exchange(addr, &request, Duration::from_secs(5)).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let (_, body) = response.split_once("\r\n\r\n").expect("a response head");
    body.to_owned()
}

#[tokio::test]
async fn a_curl_request_appears_in_the_http_tab_with_its_headers() {
    let Some((browser, lab)) = connected_dashboard().await else {
        return;
    };
    click(&browser, "[data-tab=http]").await;

    let marker = unique("marker");
    let body = get_with_headers(
        lab.http,
        &[
            ("X-Wirelab-Test", &marker),
            ("X-Repeat", "first"),
            ("X-Repeat", "second"),
        ],
    )
    .await;
    assert_eq!(body, "Hello World\n", "the seed's answer");

    // Its row appears; select it, and the exchange shows as curl -v tells it.
    let id = wait_js(
        &browser,
        "the request's row in the HTTP tab",
        "const r = document.querySelector('tr[data-exchange]'); return r && r.dataset.exchange",
        vec![],
        Duration::from_secs(5),
    )
    .await;
    let id = id.as_str().expect("data-exchange is a string").to_owned();
    click(&browser, &format!("tr[data-exchange='{id}']")).await;
    let verbose = wait_js(
        &browser,
        "the selected exchange, curl -v style, names the test's header",
        "const r = document.querySelector(`tr[data-exchange='${arguments[0]}']`); \
         const v = document.querySelector('#http-curl-v'); \
         return !!r && r.classList.contains('sel') && !!v && v.textContent.includes(arguments[1]) \
           && v.textContent",
        vec![id.into(), marker.clone().into()],
        Duration::from_secs(5),
    )
    .await;
    let verbose = verbose.as_str().unwrap();
    let lines: Vec<&str> = verbose.lines().collect();
    let has = |want: &str| lines.iter().any(|l| l.eq_ignore_ascii_case(want));
    let position = |want: &str| lines.iter().position(|l| l.eq_ignore_ascii_case(want));
    assert!(
        lines.first().is_some_and(|l| *l == "> GET / HTTP/1.1"),
        "the request line first:\n{verbose}"
    );
    assert!(
        has(&format!("> X-Wirelab-Test: {marker}")),
        "the test's header as a `> ` line:\n{verbose}"
    );
    let (first, second) = (
        position("> X-Repeat: first"),
        position("> X-Repeat: second"),
    );
    assert!(
        first.is_some() && second.is_some() && first < second,
        "a repeated header is kept, in order:\n{verbose}"
    );
    assert!(has("< HTTP/1.1 200 OK"), "the status line:\n{verbose}");
    assert!(
        has("< content-type: text/plain"),
        "the response's content-type:\n{verbose}"
    );
    assert!(
        lines.contains(&"Hello World"),
        "the response body:\n{verbose}"
    );
    browser.screenshot("/tmp/wirelab-http-curl.png").await;
    browser.close().await;
}

/// Installs an in-page sampler: every 10 ms, while a run shows, it records the pool's
/// figures as the page shows them (in `window.__poolSamples`).
const SAMPLER: &str = "window.__poolSamples = []; \
    const text = id => { const e = document.getElementById(id); return e ? e.textContent : null; }; \
    window.__poolSampler = setInterval(() => { \
      const state = text('pool-state'); if (state === null) return; \
      window.__poolSamples.push({ t: performance.now(), state, in_use: text('pool-in-use'), \
        idle: text('pool-idle'), waiting: text('pool-waiting'), opened: text('pool-opened'), \
        done: text('pool-done'), errors: text('pool-errors'), p50: text('pool-p50') }); \
    }, 10); return true";

#[tokio::test]
async fn a_pool_run_from_the_page_shows_live_figures_and_the_right_totals() {
    // `_lab` keeps the lab running until the test ends.
    let Some((browser, _lab)) = connected_dashboard().await else {
        return;
    };
    click(&browser, "[data-tab=pool]").await;
    browser
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css("#pool-start"))
        .await
        .expect("the pool form");

    // 60 requests, 10 at a time, through at most 3 keep-alive connections, against the
    // default target (the lab's own /_/delay/50: the URL field stays empty).
    js(
        &browser,
        "for (const id of ['pool-requests', 'pool-concurrency', 'pool-max-conns', 'pool-url']) \
           document.getElementById(id).value = ''; \
         const check = (id, on) => { const e = document.getElementById(id); \
           if (e.checked !== on) e.click(); return e.checked === on; }; \
         return check('pool-no-pool', false) && check('pool-keep-alive', true)",
        vec![],
    )
    .await;
    type_into(&browser, "#pool-requests", "60").await;
    type_into(&browser, "#pool-concurrency", "10").await;
    type_into(&browser, "#pool-max-conns", "3").await;
    js(&browser, SAMPLER, vec![]).await;
    click(&browser, "#pool-start").await;

    // While it runs: the figures move.
    wait_js(
        &browser,
        "the run shows as running",
        "return window.__poolSamples.some(s => s.state === 'running')",
        vec![],
        Duration::from_secs(5),
    )
    .await;
    browser.screenshot("/tmp/wirelab-pool-running.png").await;
    wait_js(
        &browser,
        "the run ends",
        "const s = document.getElementById('pool-state'); return !!s && s.textContent !== 'running'",
        vec![],
        Duration::from_secs(20),
    )
    .await;
    let samples = js(
        &browser,
        "clearInterval(window.__poolSampler); return window.__poolSamples",
        vec![],
    )
    .await;
    let samples = samples.as_array().expect("samples");
    let num = |s: &Value, k: &str| -> u64 {
        s[k].as_str()
            .and_then(|v| v.replace([',', ' ', '\u{202f}', '\u{a0}'], "").parse().ok())
            .unwrap_or_else(|| panic!("{k} is not a count in {s}"))
    };
    let running: Vec<&Value> = samples.iter().filter(|s| s["state"] == "running").collect();
    let mut done_seen: Vec<u64> = running.iter().map(|s| num(s, "done")).collect();
    done_seen.dedup();
    let max_in_use = running.iter().map(|s| num(s, "in_use")).max().unwrap_or(0);
    let max_waiting = running.iter().map(|s| num(s, "waiting")).max().unwrap_or(0);
    let max_opened = running.iter().map(|s| num(s, "opened")).max().unwrap_or(0);
    let span_ms = running.last().zip(running.first()).map_or(0.0, |(l, f)| {
        l["t"].as_f64().unwrap() - f["t"].as_f64().unwrap()
    });
    let summary = format!(
        "{} running samples over {span_ms:.0} ms; done went {done_seen:?}; \
         max in use {max_in_use}, max waiting {max_waiting}, max opened {max_opened}",
        running.len()
    );
    eprintln!("pool run as the page showed it: {summary}");
    assert!(
        done_seen.iter().filter(|d| (1..60).contains(*d)).count() >= 3,
        "the page showed the run's progress live (at least 3 counts of done between 0 and 60): {summary}"
    );
    let per_second = (done_seen.len() - 1) as f64 / (span_ms / 1000.0).max(0.001);
    assert!(
        per_second >= 5.0,
        "the figures changed at least 5 times a second while running ({per_second:.1}/s): {summary}"
    );
    assert!(
        max_in_use <= 3 && max_opened <= 3,
        "never more than the pool's 3 connections: {summary}"
    );
    assert_eq!(
        max_in_use, 3,
        "with 10 requests at once, all 3 connections were in use at some point: {summary}"
    );
    assert!(
        max_waiting > 0,
        "with 10 requests at once on 3 connections, requests waited: {summary}"
    );

    // The end: exact totals.
    let end = js(
        &browser,
        "const t = id => document.getElementById(id).textContent; \
         return { state: t('pool-state'), done: t('pool-done'), opened: t('pool-opened'), \
           errors: t('pool-errors'), reuse: t('pool-reuse'), in_use: t('pool-in-use'), \
           waiting: t('pool-waiting'), totals: t('pool-totals') }",
        vec![],
    )
    .await;
    assert_eq!(end["state"], "done", "{end}");
    assert_eq!(num(&end, "done"), 60, "{end}");
    assert_eq!(num(&end, "opened"), 3, "{end}");
    assert_eq!(num(&end, "errors"), 0, "{end}");
    assert_eq!(num(&end, "in_use"), 0, "{end}");
    assert_eq!(num(&end, "waiting"), 0, "{end}");
    assert_eq!(
        end["reuse"], "20.00",
        "60 requests over 3 connections: {end}"
    );
    browser.screenshot("/tmp/wirelab-pool-done.png").await;
    browser.close().await;
}
