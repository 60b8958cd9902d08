//! Relay mode's Proxies panel in a real headless Chromium against a real lab (issue 14): a
//! proxy made from the page, a client through it to a real upstream, both legs in the
//! timeline, and a RST from the page reaching the client.
//!
//! Needs the built dashboard (`cargo xtask test` builds `dist/` first).

mod support;

use std::time::Duration;

use support::page::{click, connected_dashboard, type_into, wait_js};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn a_proxy_made_from_the_page_relays_and_its_rst_reaches_the_client() {
    let Some((browser, lab)) = connected_dashboard().await else {
        return;
    };
    // The upstream echoes.
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = upstream.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });

    click(&browser, "[data-tab=tcp]").await;
    type_into(&browser, "#proxy-name", "echo").await;
    type_into(&browser, "#proxy-upstream", &upstream_addr).await;
    click(&browser, "#proxy-add").await;
    let listen = wait_js(
        &browser,
        "the proxy's row with its real listen address",
        "const r = document.querySelector('tr[data-proxy=echo]'); \
         const l = r && r.children[2].textContent.trim(); \
         return l && !l.endsWith(':0') && l",
        vec![],
        Duration::from_secs(5),
    )
    .await;
    let listen = listen.as_str().unwrap().to_owned();

    let mut client = TcpStream::connect(&listen)
        .await
        .expect("the proxy listens");
    client.write_all(b"through the page's proxy").await.unwrap();
    let mut back = [0u8; 24];
    client.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"through the page's proxy");

    // Both legs on the timeline: the bytes from the client and the upstream's answer.
    for arrow in ["→", "←"] {
        let row = format!("echo #1 {arrow} through the page's proxy");
        browser.wait_for_text(&row, Duration::from_secs(5)).await;
    }

    // RST toward the client, from the connection's row.
    let id = wait_js(
        &browser,
        "the relayed connection's row",
        "const r = document.querySelector('tr[data-relay]'); return r && r.dataset.relay",
        vec![],
        Duration::from_secs(5),
    )
    .await;
    let id = id.as_str().unwrap().to_owned();
    click(&browser, &format!("[data-relay-rst='{id}-client']")).await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest))
        .await
        .expect("the client hears within 5 s");
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
    let made = lab.app.relays.get("echo").expect("the page made it").info();
    assert_eq!((made.conns, made.client_in, made.upstream_in), (1, 24, 24));
    browser.close().await;
}
