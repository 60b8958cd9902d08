//! The HTTPS service and the lab's CA, with real TLS clients: curl and `openssl s_client`
//! trusting the CA from `/api/ca.pem`, each broken name failing the way it fails in the
//! wild (with the client's alert in the handshake's event), and what is not TLS (a plain
//! HTTP request, garbage, a hello cut short, handshakes that never finish) named in an
//! event without stopping the service.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use support::events::Events;
use support::http_client::exchange;
use support::{lab, tools};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wirelab_shared::{EventKind, TlsHandshake};

/// The lab's CA as `/api/ca.pem` serves it, written to a file for the clients.
async fn ca_file(lab: &lab::TestLab, dir: &Path) -> PathBuf {
    let (resp, _) = exchange(
        lab.dashboard,
        b"GET /api/ca.pem HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    let pem = String::from_utf8(resp.body.clone()).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert_eq!(pem, lab.app.tls.ca.pem);
    let fingerprint = resp.header("x-fingerprint").unwrap().to_owned();
    assert_eq!(fingerprint, lab.app.tls.ca.fingerprint());
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("ca.pem");
    std::fs::write(&path, pem).unwrap();
    // openssl computes the same fingerprint the lab shows.
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.trim().ends_with(&fingerprint),
        "{said} vs {fingerprint}"
    );
    path
}

fn temp_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("wirelab-tls-{name}-{}", std::process::id()))
}

/// curl on `https://{name}:{port}/` trusting `ca` (curl resolves `*.localhost` itself).
async fn curl(ca: &Path, name: &str, port: u16, extra: &[&str]) -> Output {
    tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(extra)
        .arg(format!("https://{name}:{port}/"))
        .output()
        .await
        .expect("curl runs")
}

/// The handshake event for `sni` (the first not yet taken).
async fn handshake(events: &mut Events, sni: &str) -> TlsHandshake {
    let ev = events
        .wait(sni, |k| matches!(k, EventKind::Tls(x) if x.sni == sni))
        .await;
    events.seen.retain(|e| e.seq != ev.seq);
    match ev.kind {
        EventKind::Tls(x) => *x,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn curl_trusts_the_lab_ca_and_each_broken_name_fails_its_own_way() {
    if tools::find("curl", "curl").is_none() || tools::find("openssl", "openssl").is_none() {
        return;
    }
    let lab = lab::start().await;
    let port = lab.https.unwrap().port();
    let mut events = Events::connect(&lab).await;
    let dir = temp_dir("curl");
    let ca = ca_file(&lab, &dir).await;

    let ok = curl(&ca, "localhost", port, &["-i"]).await;
    let said = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        said.starts_with("HTTP/1.1 200 OK") && said.ends_with("Hello World\n"),
        "{said}"
    );
    let good = handshake(&mut events, "localhost").await;
    assert_eq!(good.error, None);
    assert_eq!(good.version, "TLSv1.3");
    assert_eq!(good.alpn_chosen, "http/1.1");
    assert!(good.alpn.contains(&"http/1.1".to_owned()), "{good:?}");
    assert!(good.versions.contains(&"TLSv1.3".to_owned()), "{good:?}");
    assert!(good.ja4.starts_with("t13d"), "{good:?}");
    assert!(good.cert.contains("the lab's CA"), "{good:?}");
    // The exchange on that connection says it came over TLS, and is the same connection.
    let x = events
        .wait(
            "the https exchange",
            |k| matches!(k, EventKind::Http(x) if x.tls),
        )
        .await;
    let EventKind::Http(x) = x.kind else {
        unreachable!()
    };
    assert_eq!(x.conn, good.conn);
    assert!(
        x.url("x").starts_with("https://localhost:"),
        "{}",
        x.url("x")
    );

    // Each broken name: curl's own exit code and message, and the client's alert in the
    // event (but for the wrong host, which curl checks after its handshake is done).
    for (name, code, says, alert) in [
        (
            "expired.localhost",
            60,
            "certificate has expired",
            Some("certificate expired"),
        ),
        (
            "not-yet-valid.localhost",
            60,
            "certificate is not yet valid",
            Some("the client rejected"),
        ),
        (
            "wrong-host.localhost",
            60,
            "no alternative certificate subject name matches",
            None,
        ),
        (
            "self-signed.localhost",
            60,
            "self-signed certificate",
            Some("unknown CA"),
        ),
        (
            "untrusted-root.localhost",
            60,
            "unable to get local issuer certificate",
            Some("unknown CA"),
        ),
        (
            "incomplete-chain.localhost",
            60,
            "unable to get local issuer certificate",
            Some("unknown CA"),
        ),
    ] {
        let out = curl(&ca, name, port, &[]).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{name}: {err}");
        assert!(err.contains(says), "{name}: {err}");
        let ev = handshake(&mut events, name).await;
        assert!(ev.cert.starts_with(name), "{name}: {ev:?}");
        match alert {
            Some(alert) => {
                let e = ev.error.clone().unwrap_or_default();
                assert!(e.contains(alert), "{name}: {e}");
            }
            None => assert_eq!(ev.error, None, "{name}"),
        }
    }
    // TLS 1.2 only: a client that allows 1.2 gets it; one that asks for 1.3 is refused.
    let out = curl(
        &ca,
        "tls12-only.localhost",
        port,
        &["-o", "/dev/null", "-w", "%{http_code}"],
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    let ev = handshake(&mut events, "tls12-only.localhost").await;
    assert_eq!((ev.version.as_str(), ev.error), ("TLSv1.2", None));
    let out = curl(&ca, "tls12-only.localhost", port, &["--tlsv1.3"]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(35), "{err}");
    assert!(err.contains("protocol version"), "{err}");
    let ev = handshake(&mut events, "tls12-only.localhost").await;
    assert!(
        ev.error
            .unwrap_or_default()
            .contains("lab ended the handshake")
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn openssl_s_client_verifies_the_chain_and_the_event_holds_its_hello() {
    if tools::find("openssl", "openssl").is_none() {
        return;
    }
    let lab = lab::start().await;
    let addr = lab.https.unwrap();
    let mut events = Events::connect(&lab).await;
    let dir = temp_dir("s_client");
    let ca = ca_file(&lab, &dir).await;
    let s_client = async |name: &str| {
        let mut child = tokio::process::Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &addr.to_string(),
                "-servername",
                name,
            ])
            .args([
                "-ign_eof",
                "-alpn",
                "http/1.1",
                "-groups",
                "X25519:P-256",
                "-CAfile",
            ])
            .arg(&ca)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
            .await
            .expect("s_client ends")
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = s_client("localhost").await;
    assert!(said.contains("Verify return code: 0 (ok)"), "{said}");
    assert!(said.contains("ALPN protocol: http/1.1"), "{said}");
    assert!(said.contains("Hello World"), "{said}");
    // The chain: the leaf, then the intermediate under the lab's root.
    assert!(said.contains(" 0 s:CN = localhost, O = wirelab"), "{said}");
    assert!(said.contains(" 1 s:CN = wirelab intermediate CA"), "{said}");
    let ev = handshake(&mut events, "localhost").await;
    assert_eq!(ev.alpn, ["http/1.1"]);
    assert_eq!(ev.groups, ["X25519", "secp256r1"]);
    assert!(ev.key_shares.contains(&"X25519".to_owned()), "{ev:?}");
    assert!(!ev.sig_algs.is_empty() && !ev.ciphers.is_empty(), "{ev:?}");
    assert!(
        ev.ja4.starts_with("t13d") && ev.ja4.contains("h1"),
        "{}",
        ev.ja4
    );

    let said = s_client("incomplete-chain.localhost").await;
    assert!(
        said.contains("Verify return code: 21 (unable to verify the first certificate)"),
        "{said}"
    );
    assert!(!said.contains(" 1 s:"), "only the leaf is served: {said}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Connects and sends `bytes`; what comes back before the close.
async fn send(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut back = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut back)).await;
    back
}

#[tokio::test]
async fn what_is_not_tls_is_named_and_the_service_goes_on() {
    let lab = lab::start().await;
    let addr = lab.https.unwrap();
    let mut events = Events::connect(&lab).await;
    let error_with = |what: &'static str| move |k: &EventKind| matches!(k, EventKind::Tls(x) if x.error.as_deref().is_some_and(|e| e.contains(what)));

    let back = send(addr, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    let back = String::from_utf8_lossy(&back);
    assert!(back.starts_with("HTTP/1.1 400 Bad Request"), "{back}");
    assert!(back.contains("use https://"), "{back}");
    events
        .wait(
            "plain http",
            error_with("a plain HTTP request on the TLS port"),
        )
        .await;

    assert!(send(addr, b"\x00\x01\x02garbage\xff").await.is_empty());
    events
        .wait(
            "garbage",
            error_with("bytes that are not TLS (starting 00010267"),
        )
        .await;

    // A ClientHello cut in half, then the close.
    let hello = [22, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3, 9, 9, 9];
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&hello).await.unwrap();
    drop(s);
    events
        .wait(
            "half a hello",
            error_with("closed after 14 bytes of a ClientHello"),
        )
        .await;

    // A record too long for a hello.
    assert!(send(addr, &[22, 3, 1, 0xff, 0xff]).await.is_empty());
    events
        .wait(
            "a huge record",
            error_with("a handshake record of 65535 bytes"),
        )
        .await;

    // The service still serves a real client.
    let ok = tokio::process::Command::new("curl")
        .args(["-sSk", "--max-time", "5"])
        .arg(format!("https://localhost:{}/", addr.port()))
        .output()
        .await;
    if let Ok(ok) = ok {
        assert_eq!(String::from_utf8_lossy(&ok.stdout), "Hello World\n");
    }
}

#[tokio::test]
async fn handshakes_that_never_finish_are_closed_after_ten_seconds() {
    let lab = lab::start().await;
    let addr = lab.https.unwrap();
    // 500 clients: half send nothing, half the start of a hello.
    let mut stuck = Vec::new();
    for i in 0..500 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            s.write_all(&[22, 3, 1, 0, 200, 1, 0, 0]).await.unwrap();
        }
        stuck.push(s);
    }
    // Meanwhile a real handshake is served.
    let back = send(addr, b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(String::from_utf8_lossy(&back).starts_with("HTTP/1.1 400"));
    // Each stuck one is closed by the lab within the handshake's 10 s (and a margin).
    for mut s in stuck {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(15), s.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "not closed: {read:?}"
        );
    }
    // Every one of them is a `tls` event saying so (the recorded history, counted).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (resp, _) = exchange(
            lab.dashboard,
            b"GET /api/events?q=did%20not%20finish&limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await;
        let page: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        let n = page["events"].as_array().map_or(0, Vec::len);
        if n == 500 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} of 500 timed-out handshakes shown"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Their slots are free again: every one of --max-http-conns.
    assert_eq!(lab.app.http.free_slots(), lab.app.config.max_http_conns);
}

#[tokio::test]
async fn the_key_log_holds_each_sessions_secrets() {
    if tools::find("curl", "curl").is_none() {
        return;
    }
    let dir = temp_dir("keylog");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("keys.log");
    let lab = lab::start_with(|c| c.tls_keylog = Some(log.clone())).await;
    let port = lab.https.unwrap().port();
    let out = tokio::process::Command::new("curl")
        .args(["-sSk", "--max-time", "5"])
        .arg(format!("https://localhost:{port}/"))
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello World\n");
    let text = std::fs::read_to_string(&log).unwrap();
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("{label}: {text}"));
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts.len(), 3, "{line}");
        assert_eq!(parts[1].len(), 64, "the client random, in hex: {line}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "only its owner reads the keys");
    // An existing file others may read is refused, with the reason, rather than used.
    let open = dir.join("open.log");
    std::fs::write(&open, "").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut config = wirelab::Config::for_tests();
    config.tls_keylog = Some(open.clone());
    let refused = wirelab::start(config, tokio_util::sync::CancellationToken::new()).await;
    let err = format!("{:#}", refused.err().expect("refused"));
    assert!(err.contains("others may read it"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_tls_tcp_service_is_the_tcp_service_behind_tls() {
    if tools::find("openssl", "openssl").is_none() {
        return;
    }
    let lab = lab::start_with(|c| c.tcp_mode = wirelab::config::RelayMode::Echo).await;
    let addr = lab.tls_tcp.unwrap();
    let mut events = Events::connect(&lab).await;
    let dir = temp_dir("tls-tcp");
    let ca = ca_file(&lab, &dir).await;
    let mut child = tokio::process::Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &addr.to_string()])
        .args([
            "-servername",
            "localhost",
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(&ca)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdin.write_all(b"ping over tls\n").await.unwrap();
    // Echoed back through TLS by the TCP service.
    let mut back = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), stdout.read(&mut back))
        .await
        .expect("the echo within 10 s")
        .unwrap();
    assert_eq!(&back[..n], b"ping over tls\n");
    let ev = handshake(&mut events, "localhost").await;
    assert_eq!(
        (ev.service.as_str(), ev.error.as_deref()),
        ("tls_tcp", None)
    );
    // The TCP service's own connection, under the client's address and the TLS port.
    let open = events
        .wait(
            "tcp_open",
            |k| matches!(k, EventKind::TcpOpen { conn, .. } if *conn == ev.conn),
        )
        .await;
    let EventKind::TcpOpen { peer, local, .. } = open.kind else {
        unreachable!()
    };
    assert_eq!((peer, local), (ev.peer.clone(), addr.to_string()));
    events
        .wait("its data", |k| {
            matches!(k, EventKind::TcpData { conn, payload, .. } if *conn == ev.conn && payload.data == "ping over tls\n")
        })
        .await;
    // A reset from the page resets the client's connection too: s_client ends.
    lab.app.tcp.close(ev.conn, true).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("s_client ends")
        .unwrap();
    drop(stdin);
    assert!(
        !status.success(),
        "s_client saw a reset, not a clean close: {status}"
    );
    events
        .wait("the reset", |k| {
            matches!(k, EventKind::TcpClose { conn, reason, .. } if *conn == ev.conn && *reason == wirelab_shared::CloseReason::ResetFromPage)
        })
        .await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A TLS client of the lab's own CA, with rustls (what a Rust client would be).
async fn rustls_client(
    lab: &wirelab::Lab,
    addr: SocketAddr,
    name: &str,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(lab.app.tls.ca.der.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        #[allow(deprecated)]
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
    connector.connect(name, tcp).await.expect("the handshake")
}

#[tokio::test]
async fn a_silent_tls_tcp_client_does_not_hold_up_the_labs_stop() {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let lab = wirelab::start(wirelab::Config::for_tests(), shutdown.clone())
        .await
        .unwrap();
    let addr = lab.tls_tcp.unwrap();
    let mut client = rustls_client(&lab, addr, "localhost").await;
    client.write_all(b"hi\n").await.unwrap();
    client.flush().await.unwrap();
    // The TCP service has it (broadcast mode: nothing comes back); then the lab stops
    // while the client, silent, never closes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(lab.app.tcp.open_count(), 1);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), lab.wait())
        .await
        .expect("the lab stops within 5 s with a silent TLS client");
    drop(client);
}

#[tokio::test]
async fn https_ends_a_response_with_close_notify_and_past_the_limit_writes_no_http() {
    let lab = lab::start_with(|c| c.max_http_conns = 1).await;
    let addr = lab.https.unwrap();
    let mut events = Events::connect(&lab).await;
    // `Connection: close`: the answer, then close_notify (rustls's client calls an end
    // without it an error: UnexpectedEof).
    let mut client = rustls_client(&lab, addr, "localhost").await;
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut back = Vec::new();
    client
        .read_to_end(&mut back)
        .await
        .expect("a clean end, with close_notify");
    assert!(String::from_utf8_lossy(&back).ends_with("Hello World\n"));
    // One connection open (the limit); the next gets no HTTP 503 in place of a
    // ServerHello: it is closed without a word, and the notice says so.
    let _held = rustls_client(&lab, addr, "localhost").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut raw = TcpStream::connect(addr).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut got)).await;
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    events
        .wait("the refusal", |k| {
            matches!(k, EventKind::Notice { message, .. } if message.starts_with("https connection") && message.contains("closed before its handshake"))
        })
        .await;
}
