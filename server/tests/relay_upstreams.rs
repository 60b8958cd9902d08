//! Relay mode in front of real services, started by the test and driven by their own
//! clients: `redis-server` behind a `tcp` proxy, with `redis-cli` through it.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::events::Events;
use support::lab::{self, TestLab};
use support::tools;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use wirelab::relay::ProxySpec;
use wirelab_shared::{CloseReason, EventKind, Leg};

/// Starts `program` with `args` (killed when dropped) and waits until `port` accepts.
async fn upstream(program: &std::path::Path, args: &[&str], port: u16) -> Child {
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", program.display()));
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} did not listen on {port} within 10 s", program.display());
}

/// A lab with one proxy `spec` (its listen port 0), and the port it got.
async fn lab_with(spec: &str) -> (TestLab, String) {
    let spec: ProxySpec = spec.parse().unwrap();
    let name = spec.name.clone();
    let lab = lab::start_with(|c| c.proxies = vec![spec]).await;
    let listen = lab.app.relays.get(&name).unwrap().spec().listen;
    let port = listen.rsplit_once(':').unwrap().1.to_owned();
    (lab, port)
}

/// A command in RESP, as redis-cli sends it.
fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

#[tokio::test]
async fn redis_cli_through_a_tcp_proxy_to_redis_server() {
    let (Some(server), Some(cli)) = (
        tools::find("redis-server", "redis-server"),
        tools::find("redis-cli", "redis-tools"),
    ) else {
        return;
    };
    let port = tools::free_port();
    let port_text = port.to_string();
    let args = [
        "--port",
        &port_text,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ];
    let _redis = upstream(&server, &args, port).await;
    let (lab, proxy_port) = lab_with(&format!("redis=tcp://127.0.0.1:0->127.0.0.1:{port}")).await;
    let mut events = Events::connect(&lab).await;

    let run = |args: &'static [&'static str]| {
        let cli = cli.clone();
        let proxy_port = proxy_port.clone();
        async move {
            let out = Command::new(&cli)
                .args(["-h", "127.0.0.1", "-p", &proxy_port])
                .args(args)
                .output()
                .await
                .expect("redis-cli runs");
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        }
    };
    assert_eq!(run(&["SET", "wirelab", "relayed"]).await.trim(), "OK");
    assert_eq!(run(&["GET", "wirelab"]).await.trim(), "relayed");

    // Two connections, each with both legs, and exact byte counts.
    let set = resp(&["SET", "wirelab", "relayed"]);
    let get = resp(&["GET", "wirelab"]);
    let answers: [&[u8]; 2] = [b"+OK\r\n", b"$7\r\nrelayed\r\n"];
    let mut conns = Vec::new();
    for (request, answer) in [set, get].iter().zip(answers) {
        let close = events
            .wait(
                "relay_close",
                |k| matches!(k, EventKind::RelayClose { conn, .. } if !conns.contains(conn)),
            )
            .await;
        let EventKind::RelayClose {
            conn,
            reason,
            by,
            client_in,
            client_out,
            upstream_in,
            upstream_out,
            ..
        } = close.kind
        else {
            unreachable!()
        };
        conns.push(conn);
        assert_eq!((reason, by), (CloseReason::Fin, Some(Leg::Client)));
        assert_eq!(
            (client_in, upstream_out),
            (request.len() as u64, request.len() as u64),
            "the request, both legs"
        );
        assert_eq!(
            (upstream_in, client_out),
            (answer.len() as u64, answer.len() as u64),
            "the answer, both legs"
        );
        let seen = |from: Leg, bytes: &[u8]| {
            let text = String::from_utf8(bytes.to_vec()).unwrap();
            move |k: &EventKind| {
                matches!(k, EventKind::RelayData { conn: c, from: f, payload, .. }
                    if *c == conn && *f == from && payload.data == text)
            }
        };
        events.wait("the request", seen(Leg::Client, request)).await;
        events.wait("the answer", seen(Leg::Upstream, answer)).await;
        events
            .wait("the upstream leg opened", |k| {
                matches!(k, EventKind::RelayOpen { conn: c, upstream, .. }
                    if *c == conn && upstream.ends_with(&format!(":{port}")))
            })
            .await;
    }
    let info = lab.app.relays.get("redis").unwrap().info();
    assert_eq!((info.conns, info.refused), (2, 0));

    // The recording as a capture: two connections, each two TCP conversations (one per
    // leg), which tshark reads; the value crosses both legs of the GET.
    let tshark = tools::find("tshark", "tshark");
    let capture = recorded_capture(&lab).await;
    if let Some(tshark) = tshark {
        let file = std::env::temp_dir().join(format!("wirelab-relay-{port}.pcapng"));
        std::fs::write(&file, &capture).unwrap();
        let path = file.to_str().unwrap();
        let conv = Command::new(&tshark)
            .args(["-r", path, "-q", "-z", "conv,tcp"])
            .output()
            .await
            .unwrap();
        let conv = String::from_utf8_lossy(&conv.stdout);
        let rows = conv.lines().filter(|l| l.contains("<->")).count();
        assert_eq!(rows, 4, "{conv}");
        let found = Command::new(&tshark)
            .args(["-r", path, "-Y", "tcp.payload contains \"relayed\""])
            .output()
            .await
            .unwrap();
        // SET on both legs, and the GET's answer on both legs.
        let lines = String::from_utf8_lossy(&found.stdout).lines().count();
        assert_eq!(lines, 4, "{}", String::from_utf8_lossy(&found.stdout));
        let _ = std::fs::remove_file(file);
    }
}

/// `/api/capture.pcapng` once the recorder has both `relay_close` events.
async fn recorded_capture(lab: &TestLab) -> Vec<u8> {
    let mut recorded = false;
    for _ in 0..100 {
        let closes = lab.app.store.read(|c| {
            c.query_row(
                "SELECT count(*) FROM events WHERE kind = 'relay_close'",
                [],
                |r| r.get::<_, i64>(0),
            )
        });
        if let Ok(Ok(2)) = closes.await {
            recorded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recorded,
        "the recorder did not record both relay_close events within 10 s"
    );
    let request = "GET /api/capture.pcapng HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n";
    let raw = support::raw_http::exchange(lab.dashboard, request, Duration::from_secs(10)).await;
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let head = String::from_utf8_lossy(&raw[..at]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    match head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        true => unchunk(&raw[at..]),
        false => raw[at..].to_vec(),
    }
}

/// A chunked body, joined.
fn unchunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size");
        let size_text = String::from_utf8_lossy(&raw[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// `dig` at `server:port` for `name`, one try: the answer's lines (`+short`).
async fn dig(dig: &std::path::Path, port: u16, name: &str) -> String {
    let out = Command::new(dig)
        .args(["@127.0.0.1", "-p", &port.to_string(), name])
        .args(["+short", "+tries=1", "+time=2"])
        .output()
        .await
        .expect("dig runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// dnsmasq answering `wirelab.test` with 10.1.2.3 on a loopback port, once it answers. It
/// binds the port for TCP too and exits when it cannot (a busy test run holds many
/// loopback ports), so an exit is retried on another port, five ports in all.
async fn start_dnsmasq(dnsmasq: &std::path::Path, dig_path: &std::path::Path) -> (Child, u16) {
    for _ in 0..5 {
        let port = tools::free_udp_and_tcp_port();
        let mut child = Command::new(dnsmasq)
            .args([
                "--no-daemon",
                &format!("--port={port}"),
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--address=/wirelab.test/10.1.2.3",
                "--conf-file=/dev/null",
                "--pid-file=",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("dnsmasq starts");
        for _ in 0..20 {
            if dig(dig_path, port, "wirelab.test").await == "10.1.2.3" {
                return (child, port);
            }
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = child.kill().await;
    }
    panic!("dnsmasq answered on none of five ports");
}

#[tokio::test]
async fn dig_through_a_udp_proxy_to_dnsmasq() {
    let (Some(dnsmasq), Some(dig_path)) = (
        tools::find("dnsmasq", "dnsmasq"),
        tools::find("dig", "dnsutils"),
    ) else {
        return;
    };
    let (_dns, port) = start_dnsmasq(&dnsmasq, &dig_path).await;
    let (lab, proxy_port) = lab_with(&format!("dns=udp://127.0.0.1:0->127.0.0.1:{port}")).await;
    let mut events = Events::connect(&lab).await;
    let proxy_port: u16 = proxy_port.parse().unwrap();

    assert_eq!(dig(&dig_path, proxy_port, "wirelab.test").await, "10.1.2.3");

    let open = events
        .wait("relay_udp_open", |k| {
            matches!(k, EventKind::RelayUdpOpen { upstream, .. } if upstream.ends_with(&format!(":{port}")))
        })
        .await;
    let EventKind::RelayUdpOpen { session, .. } = open.kind else {
        unreachable!()
    };
    let query = events
        .wait("the query", |k| {
            matches!(k, EventKind::RelayDatagram { session: s, from: Leg::Client, .. } if *s == session)
        })
        .await;
    let answer = events
        .wait("the answer", |k| {
            matches!(k, EventKind::RelayDatagram { session: s, from: Leg::Upstream, .. } if *s == session)
        })
        .await;
    let (
        EventKind::RelayDatagram { size: q, .. },
        EventKind::RelayDatagram {
            size: a, payload, ..
        },
    ) = (query.kind, answer.kind)
    else {
        unreachable!()
    };
    // The answer carries 10.1.2.3 as its last four bytes (one A record, no EDNS options
    // past it... unless dig asked for EDNS: then it is in the answer section anyway).
    let bytes = payload.bytes();
    assert!(
        bytes.windows(4).any(|w| w == [10, 1, 2, 3]),
        "the A record 10.1.2.3 is in the answer"
    );
    let info = lab.app.relays.get("dns").unwrap().info();
    assert_eq!((info.client_in, info.upstream_out), (q, q));
    assert_eq!((info.upstream_in, info.client_out), (a, a));
    assert_eq!(info.conns, 1);
}
