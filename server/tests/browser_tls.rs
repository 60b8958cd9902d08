//! The dashboard leaves loopback: it serves HTTPS and WSS with a certificate from the lab's
//! CA (and asks for its token), and Chromium, trusting that CA in its certificate store,
//! loads the page and connects its push channel, with no certificate warning.
//!
//! Needs the built dashboard (`cargo xtask test` builds `dist/` first), Chromium and NSS's
//! `certutil` (`libnss3-tools`).

mod support;

use std::process::Command;
use std::time::Duration;

use support::browser::browser_with_home;
use support::page::{click, dist_built, open_connected};
use support::{lab, tools};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn chromium_trusting_the_lab_ca_loads_the_dashboard_over_https_off_loopback() {
    if !dist_built() || tools::find("certutil", "libnss3-tools").is_none() {
        return;
    }
    // Bound to every address, so off loopback: TLS and a token, as `--dashboard-tls auto`
    // decides.
    let lab = lab::start_with(|c| c.dashboard = "0.0.0.0:0".parse().unwrap()).await;
    assert!(lab.dashboard_tls);
    let token = lab.app.token.clone().expect("a token off loopback");
    let home = std::env::temp_dir().join(format!("wirelab-browser-tls-{}", std::process::id()));
    let nssdb = home.join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).unwrap();
    let ca = home.join("ca.pem");
    std::fs::write(&ca, &lab.app.tls.ca.pem).unwrap();
    let db = format!("sql:{}", nssdb.display());
    let made = Command::new("certutil")
        .args(["-N", "--empty-password", "-d", &db])
        .status();
    assert!(made.is_ok_and(|s| s.success()), "certutil -N");
    let added = Command::new("certutil")
        .args(["-A", "-t", "C,,", "-n", "wirelab CA", "-i"])
        .arg(&ca)
        .args(["-d", &db])
        .status();
    assert!(added.is_ok_and(|s| s.success()), "certutil -A");

    let Some(browser) = browser_with_home(Some(&home)).await else {
        return;
    };
    let url = format!("https://localhost:{}/?token={token}", lab.dashboard.port());
    open_connected(&browser, &url).await;
    let shown = browser.current_url().await.unwrap();
    assert_eq!(shown.scheme(), "https");
    // The push channel is WSS: the lab counts the page among its WebSocket clients.
    let clients = lab.app.lab_state().ws.len();
    assert!(clients >= 1, "{clients}");
    // The HTTP tab says how to trust the CA, with its fingerprint.
    click(&browser, "[data-tab=http]").await;
    let fingerprint = lab.app.tls.ca.fingerprint();
    browser
        .wait_for_text(&fingerprint, Duration::from_secs(5))
        .await;
    browser
        .wait_for_text("untrusted-root", Duration::from_secs(1))
        .await;
    browser.screenshot("/tmp/wirelab-dashboard-https.png").await;
    browser.close().await;

    // Plain HTTP to the dashboard gets no page: the port speaks TLS only.
    let mut s = TcpStream::connect(("127.0.0.1", lab.dashboard.port()))
        .await
        .unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut plain = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut plain)).await;
    assert!(read.is_ok(), "answered and closed within 5 s");
    let plain = String::from_utf8_lossy(&plain);
    assert!(
        plain.starts_with("HTTP/1.1 400") && plain.contains("use https://"),
        "{plain}"
    );
    let _ = std::fs::remove_dir_all(home);
}
