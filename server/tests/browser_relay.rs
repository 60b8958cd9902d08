//! Relay mode from the page, in a real headless Chromium against a real lab (issue 14): a
//! proxy made from the Proxies panel, a client through it to a real upstream, both legs in
//! the timeline, and a RST sent from the page reaching the client; and a fault added from
//! a connection's row reaching that client only (issue 15).
//!
//! Needs the built dashboard (`cargo xtask test` builds `dist/` first).

mod support;

use std::time::Duration;

use support::page::{click, connected_dashboard, js, select, type_into, unique, wait_js};
use support::tools::echo_upstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_proxy_made_from_the_page_shows_both_legs_and_its_rst_reaches_the_client() {
    let Some((browser, lab)) = connected_dashboard().await else {
        return;
    };
    let upstream = echo_upstream().await;
    click(&browser, "[data-tab=tcp]").await;
    let name = unique("echo");
    type_into(&browser, "#proxy-name", &name).await;
    type_into(&browser, "#proxy-upstream", &upstream).await;
    click(&browser, "#proxy-add").await;
    wait_js(
        &browser,
        "the new proxy's row, listening",
        "const r = document.querySelector(`tr[data-proxy='${arguments[0]}']`); \
         return r && r.textContent.includes('listening')",
        vec![name.clone().into()],
        WAIT,
    )
    .await;
    // The page asked for port 0: the row (and the lab) has the real one.
    let listen = lab
        .app
        .relays
        .get(&name)
        .expect("the proxy exists")
        .info()
        .listen;
    assert!(!listen.ends_with(":0"), "bound: {listen}");

    let mut client = TcpStream::connect(&listen).await.unwrap();
    let text = unique("through-the-relay");
    client.write_all(text.as_bytes()).await.unwrap();
    let mut back = vec![0u8; text.len()];
    timeout(WAIT, client.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, text.as_bytes(), "the upstream's echo came back");

    // Both legs in the timeline: the client's bytes going up (→), the upstream's coming
    // back down (←), each on a row of its own.
    click(&browser, "[data-tab=timeline]").await;
    for arrow in ["→", "←"] {
        wait_js(
            &browser,
            &format!("a timeline row for {name} with {arrow} and the text"),
            "for (const r of document.querySelectorAll('.row')) { \
               const t = r.textContent; \
               if (t.includes(arguments[0]) && t.includes(arguments[1]) && t.includes(arguments[2])) \
                 return true; } \
             return false",
            vec![name.clone().into(), arrow.into(), text.clone().into()],
            WAIT,
        )
        .await;
    }

    click(&browser, "[data-tab=tcp]").await;
    let id = wait_js(
        &browser,
        "the relayed connection's row",
        "const r = document.querySelector('tr[data-relay]'); return r ? r.dataset.relay : null",
        vec![],
        WAIT,
    )
    .await;
    let id = id.as_str().expect("an id").to_owned();
    browser.screenshot("/tmp/wirelab-relay.png").await;
    click(&browser, &format!("[data-relay-rst='{id}-client']")).await;
    let mut buf = [0u8; 1];
    let read = timeout(WAIT, client.read(&mut buf)).await.unwrap();
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "the page's RST on the client leg reached the client"
    );
    wait_js(
        &browser,
        "the reset connection's row leaves the panel",
        "return !document.querySelector(`tr[data-relay='${arguments[0]}']`)",
        vec![id.into()],
        WAIT,
    )
    .await;
    let made = lab.app.relays.get(&name).expect("the page made it").info();
    let n = text.len() as u64;
    assert_eq!(
        (made.conns, made.client_in, made.upstream_in),
        (1, n, n),
        "one connection, its bytes counted exactly on both legs"
    );
    browser.close().await;
}

#[tokio::test]
async fn an_http_proxys_exchange_shows_in_the_http_tab_as_curl_tells_it() {
    let Some((browser, lab)) = connected_dashboard().await else {
        return;
    };
    // The lab's own HTTP service is the upstream: a real HTTP server, here already.
    let name = unique("web");
    let spec = format!("{name}=http://127.0.0.1:0->{}", lab.http);
    lab.app
        .relays
        .create(spec.parse().unwrap(), true, wirelab::relay::Origin::Flag)
        .await
        .expect("the proxy starts");
    let listen = lab.app.relays.get(&name).unwrap().info().listen;
    let marker = unique("through-the-proxy");
    let mut client = TcpStream::connect(&listen).await.unwrap();
    let request = format!(
        "GET /?via=proxy HTTP/1.1\r\nHost: {listen}\r\nX-Wirelab-Test: {marker}\r\n\
         Connection: close\r\n\r\n"
    );
    client.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    timeout(WAIT, client.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.ends_with("Hello World\n"), "{answer}");

    // In the HTTP tab, named by its proxy; picked, it reads as curl -v would print it.
    click(&browser, "[data-tab=http]").await;
    let id = wait_js(
        &browser,
        "the relayed exchange's row, with its proxy",
        "for (const r of document.querySelectorAll('tr[data-exchange]')) \
           if (r.textContent.includes(arguments[0])) return r.dataset.exchange; \
         return null",
        vec![name.clone().into()],
        WAIT,
    )
    .await;
    let id = id.as_str().expect("an exchange id").to_owned();
    click(&browser, &format!("tr[data-exchange='{id}']")).await;
    let verbose = wait_js(
        &browser,
        "the exchange as curl -v prints it",
        "const v = document.querySelector('#http-curl-v'); \
         return v && v.textContent.includes(arguments[0]) && v.textContent",
        vec![marker.clone().into()],
        WAIT,
    )
    .await;
    let verbose = verbose.as_str().unwrap();
    assert!(
        verbose.starts_with("> GET /?via=proxy HTTP/1.1"),
        "{verbose}"
    );
    assert!(
        verbose.contains(&format!("> X-Wirelab-Test: {marker}")),
        "{verbose}"
    );
    assert!(verbose.contains("< HTTP/1.1 200 OK"), "{verbose}");
    browser.screenshot("/tmp/wirelab-relay-http.png").await;
    browser.close().await;
}

/// Sends `text` through `client` and reads the echo; how long that took.
async fn round_trip(client: &mut TcpStream, text: &str) -> Duration {
    let start = std::time::Instant::now();
    client.write_all(text.as_bytes()).await.unwrap();
    let mut back = vec![0u8; text.len()];
    timeout(Duration::from_secs(10), client.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, text.as_bytes());
    start.elapsed()
}

#[tokio::test]
async fn a_fault_added_to_one_connection_from_its_row_slows_that_client_only() {
    let Some((browser, lab)) = connected_dashboard().await else {
        return;
    };
    let upstream = echo_upstream().await;
    click(&browser, "[data-tab=tcp]").await;
    let name = unique("faulty");
    type_into(&browser, "#proxy-name", &name).await;
    type_into(&browser, "#proxy-upstream", &upstream).await;
    click(&browser, "#proxy-add").await;
    let proxy = || lab.app.relays.get(&name).expect("the proxy exists").info();
    wait_js(
        &browser,
        "the new proxy's row",
        "return !!document.querySelector(`tr[data-proxy='${arguments[0]}']`)",
        vec![name.clone().into()],
        WAIT,
    )
    .await;
    let listen = proxy().listen;
    let mut slow = TcpStream::connect(&listen).await.unwrap();
    let mut fast = TcpStream::connect(&listen).await.unwrap();
    round_trip(&mut slow, "hello").await;
    round_trip(&mut fast, "hello").await;
    let me = slow.local_addr().unwrap().to_string();
    let id = proxy()
        .legs
        .iter()
        .find(|l| l.peer == me)
        .expect("the slow client's connection")
        .conn;

    // Its row's "fault…" aims the form at it; the satellite preset (600 ms) goes on.
    let row = format!("[data-relay-fault='{id}']");
    wait_js(
        &browser,
        "the connection's row",
        "return !!document.querySelector(arguments[0])",
        vec![row.clone().into()],
        WAIT,
    )
    .await;
    // The form's defaults, as a user first sees them: this proxy, the 3G preset, and
    // toxiproxy's first type for a custom fault.
    let defaults = js(
        &browser,
        "return ['#fault-proxy', '#fault-preset', '#fault-type'] \
           .map(s => document.querySelector(s).value).join(' ')",
        vec![],
    )
    .await;
    assert_eq!(defaults, format!("{name} 3g latency").as_str());
    click(&browser, &row).await;
    let scope = js(
        &browser,
        "return document.querySelector('#fault-scope').value",
        vec![],
    )
    .await;
    assert_eq!(scope, format!("conn {id}").as_str(), "the form is aimed");
    select(&browser, "#fault-preset", "satellite").await;
    click(&browser, "#fault-add").await;
    wait_js(
        &browser,
        "the row shows its fault",
        "const c = document.querySelector(`[data-relay-faults='${arguments[0]}']`); \
         return c && c.textContent.includes('satellite')",
        vec![id.to_string().into()],
        WAIT,
    )
    .await;
    browser.screenshot("/tmp/wirelab-fault.png").await;
    let took = round_trip(&mut slow, "slow now").await;
    assert!(took >= Duration::from_millis(600), "{took:?}");
    let other = round_trip(&mut fast, "still fast").await;
    assert!(other < Duration::from_millis(600), "{other:?}");
    // The other connection's row shows none.
    let other_id = proxy().legs.iter().find(|l| l.conn != id).unwrap().conn;
    let shown = js(
        &browser,
        "return document.querySelector(`[data-relay-faults='${arguments[0]}']`).textContent",
        vec![other_id.to_string().into()],
    )
    .await;
    assert_eq!(shown, "—", "no fault on the other one");

    // The same from a row of the lab's own TCP service: its "fault…" aims the form at
    // `@tcp` and that connection, and the row shows what applies.
    let service = TcpStream::connect(lab.tcp).await.unwrap();
    let me = service.local_addr().unwrap().to_string();
    let id = wait_js(
        &browser,
        "the service connection's row",
        "for (const r of document.querySelectorAll('tr[data-conn]')) \
           if (r.textContent.includes(arguments[0])) return r.dataset.conn; \
         return null",
        vec![me.into()],
        WAIT,
    )
    .await;
    let id = id.as_str().expect("an id").to_owned();
    click(&browser, &format!("[data-conn-fault='{id}']")).await;
    let aimed = js(
        &browser,
        "return document.querySelector('#fault-proxy').value + ' ' + \
           document.querySelector('#fault-scope').value",
        vec![],
    )
    .await;
    assert_eq!(aimed, format!("@tcp conn {id}").as_str());
    select(&browser, "#fault-preset", "3g").await;
    click(&browser, "#fault-add").await;
    wait_js(
        &browser,
        "the service connection's row shows its faults",
        "const c = document.querySelector(`[data-conn-faults='${arguments[0]}']`); \
         return c && c.textContent.includes('3g_latency')",
        vec![id.into()],
        WAIT,
    )
    .await;

    // A proxy's row aims the form at the whole proxy: every connection.
    click(&browser, &format!("[data-proxy-fault='{name}']")).await;
    let aimed = js(
        &browser,
        "return document.querySelector('#fault-proxy').value + '|' + \
           document.querySelector('#fault-scope').value",
        vec![],
    )
    .await;
    assert_eq!(aimed, format!("{name}|").as_str());

    // A peer of the UDP service, from the UDP tab: its "fault…" opens the TCP tab with the
    // form at `@udp` and that peer; its row shows the fault once it applies.
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = peer.local_addr().unwrap().to_string();
    peer.send_to(b"hello", lab.udp).await.unwrap();
    click(&browser, "[data-tab=udp]").await;
    let button = format!("[data-peer-fault='{me}']");
    wait_js(
        &browser,
        "the peer's row",
        "return !!document.querySelector(arguments[0])",
        vec![button.clone().into()],
        WAIT,
    )
    .await;
    click(&browser, &button).await;
    let aimed = wait_js(
        &browser,
        "the Faults form, aimed at the peer",
        "const p = document.querySelector('#fault-proxy'), s = document.querySelector('#fault-scope'); \
         return p && s && s.value ? p.value + ' ' + s.value : null",
        vec![],
        WAIT,
    )
    .await;
    assert_eq!(aimed, format!("@udp peer {me}").as_str());
    select(&browser, "#fault-preset", "wifi").await;
    // Both ways: what the peer sends gets it (the service may relay nothing back to it).
    select(&browser, "#fault-stream", "both").await;
    click(&browser, "#fault-add").await;
    wait_js(
        &browser,
        "the toxic on @udp",
        "return [...document.querySelectorAll('tr[data-toxic]')].some(r => r.dataset.toxic.startsWith('@udp/wifi'))",
        vec![],
        WAIT,
    )
    .await;
    peer.send_to(b"again", lab.udp).await.unwrap();
    click(&browser, "[data-tab=udp]").await;
    wait_js(
        &browser,
        "the peer's row shows its fault",
        "const c = document.querySelector(`[data-peer-faults='${arguments[0]}']`); \
         return c && c.textContent.includes('wifi')",
        vec![me.into()],
        WAIT,
    )
    .await;
    browser.close().await;
}
