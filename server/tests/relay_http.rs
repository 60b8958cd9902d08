//! `http` proxies in front of real servers, driven by real clients: `nginx` (with its echo
//! module, as Debian's nginx-light ships it) behind a proxy, `curl -v` through it
//! (keep-alive, a chunked response, a `100-continue` upload), the lab's own WebSocket
//! service behind another with a WebSocket client through it, an upstream that is down
//! (502), and garbage (still relayed, and said).

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use support::events::Events;
use support::lab::{self, Client, TestLab};
use support::{raw_ws, tools};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use wirelab::relay::{Origin, ProxySpec};
use wirelab_shared::{EventKind, HttpExchange, Leg};

/// The size of the big file nginx serves: a flood for the proxy (it may not move it past
/// its reading, as a `tcp` proxy moves a flood with splice).
const BIG: usize = 3 << 20;

/// nginx's dynamic echo module, as Debian installs it.
const ECHO_MODULE: &str = "/usr/lib/nginx/modules/ngx_http_echo_module.so";

/// nginx on `port` with its files under `dir`, in the foreground (killed when dropped).
async fn nginx(program: &Path, dir: &Path, port: u16) -> Child {
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/page.txt"), "a static page\n".repeat(100)).unwrap();
    let big: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("www/big.bin"), big).unwrap();
    let d = dir.display();
    let conf = format!(
        "load_module {ECHO_MODULE};\n\
         worker_processes 1;\nerror_log stderr;\npid {d}/nginx.pid;\nevents {{}}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n\
           proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
           uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           server {{\n    listen 127.0.0.1:{port};\n    root {d}/www;\n\
             location = /hello {{ return 200 \"hello from nginx\\n\"; }}\n\
             location = /chunked {{ echo \"first\"; echo_flush; echo \"second\"; }}\n\
             location = /upload {{ client_max_body_size 1m; echo_read_request_body; \
               echo_request_body; }}\n  }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(program)
        .args(["-p", &d.to_string(), "-c", &format!("{d}/nginx.conf")])
        // One process: killing it (on drop) leaves no worker holding the port.
        .args(["-g", "daemon off; master_process off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("nginx starts");
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nginx did not listen on {port} within 10 s");
}

/// Makes proxy `spec` (listening on port 0) in `lab`; the address it listens on.
async fn proxy(lab: &TestLab, spec: &str) -> String {
    let spec: ProxySpec = spec.parse().unwrap();
    let name = spec.name.clone();
    lab.app
        .relays
        .create(spec, true, Origin::Flag)
        .await
        .expect("the proxy starts");
    lab.app.relays.get(&name).unwrap().spec().listen
}

/// Runs curl with `args`; its stdout, and stderr (the `-v` lines).
async fn curl(curl: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(curl)
        .args(["-sS", "-v", "--http1.1"])
        .args(args)
        .output()
        .await
        .expect("curl runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "curl {args:?}: {err}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), err)
}

/// The next `relay_http` event of proxy `name` for `target` not in `seen`.
async fn exchange(
    events: &mut Events,
    name: &str,
    target: &str,
    seen: &[u64],
) -> (HttpExchange, Option<String>, Option<u64>) {
    let ev = events
        .wait(&format!("the exchange for {target}"), |k| {
            matches!(k, EventKind::RelayHttp { proxy, exchange, .. }
                if proxy == name && exchange.target == target && !seen.contains(&exchange.id))
        })
        .await;
    match ev.kind {
        EventKind::RelayHttp {
            exchange,
            note,
            connect_us,
            ..
        } => (*exchange, note, connect_us),
        _ => unreachable!(),
    }
}

/// Bytes relayed from the client of connection `conn` so far.
fn client_in(lab: &TestLab, conn: u64) -> u64 {
    lab.app
        .relays
        .infos()
        .iter()
        .flat_map(|p| &p.legs)
        .find(|l| l.conn == conn)
        .map_or(0, |l| l.client_in)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wirelab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn curl_through_an_http_proxy_to_nginx() {
    let (Some(nginx_bin), Some(curl_bin)) = (
        tools::find("nginx", "nginx-light"),
        tools::find("curl", "curl"),
    ) else {
        return;
    };
    if !Path::new(ECHO_MODULE).exists() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "{ECHO_MODULE} is missing: apt-get install nginx-light (.ci/run does)"
        );
        eprintln!("SKIPPED: {ECHO_MODULE} is missing (apt-get install nginx-light)");
        return;
    }
    let dir = scratch("nginx");
    let port = tools::free_port();
    let _nginx = nginx(&nginx_bin, &dir, port).await;
    let lab = lab::start().await;
    let mut events = Events::connect(&lab).await;
    let listen = proxy(&lab, &format!("web=http://127.0.0.1:0->127.0.0.1:{port}")).await;
    let base = format!("http://{listen}");

    // Three requests on one kept-alive connection: a plain body, a static file, and a
    // chunked response.
    let urls = [
        format!("{base}/hello"),
        format!("{base}/page.txt"),
        format!("{base}/chunked"),
    ];
    let args: Vec<&str> = urls.iter().map(String::as_str).collect();
    let (out, err) = curl(&curl_bin, &args).await;
    assert_eq!(
        out,
        format!(
            "hello from nginx\n{}first\nsecond\n",
            "a static page\n".repeat(100)
        ),
        "the bodies came through as nginx sent them"
    );
    assert!(
        err.contains("Re-using existing connection"),
        "one connection: {err}"
    );
    let (hello, _, connect_us) = exchange(&mut events, "web", "/hello", &[]).await;
    let (page, _, page_connect) = exchange(&mut events, "web", "/page.txt", &[]).await;
    let (chunked, note, _) = exchange(&mut events, "web", "/chunked", &[]).await;
    assert_eq!((hello.status, hello.resp_size), (200, 17));
    assert_eq!(hello.resp_body.data, "hello from nginx\n");
    assert!(
        connect_us.is_some() && page_connect.is_none(),
        "connect time once"
    );
    assert_eq!((page.status, page.resp_size), (200, 1400));
    assert_eq!((hello.conn, hello.seq_on_conn), (page.conn, 1));
    assert_eq!(
        (chunked.conn, page.seq_on_conn, chunked.seq_on_conn),
        (hello.conn, 2, 3)
    );
    let te = wirelab_shared::event::header(&chunked.resp_headers, "transfer-encoding");
    assert_eq!(te, Some("chunked"), "{:?}", chunked.resp_headers);
    assert_eq!(
        (chunked.resp_size, chunked.resp_body.data.as_str(), note),
        (13, "first\nsecond\n", None),
        "the chunked body, decoded"
    );
    // The heads as curl sent them, in its order and case.
    assert_eq!(hello.headers[0].0, "Host");
    assert!(
        hello
            .headers
            .iter()
            .any(|(k, v)| k == "User-Agent" && v.starts_with("curl/"))
    );
    assert!(
        hello
            .resp_headers
            .iter()
            .any(|(k, v)| k == "Server" && v.starts_with("nginx"))
    );

    // A flood: read whole as it passes, every byte counted.
    let out = Command::new(&curl_bin)
        .args(["-sS", "-o", "/dev/null", "-w", "%{size_download}"])
        .arg(format!("{base}/big.bin"))
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), BIG.to_string());
    let (big, note, _) = exchange(&mut events, "web", "/big.bin", &[]).await;
    assert_eq!((big.status, big.resp_size, note), (200, BIG as u64, None));
    assert_eq!(
        big.resp_body.bytes()[..4],
        [0, 1, 2, 3],
        "its first bytes kept"
    );

    // A 100-continue upload: nginx answers 100 before the body, then echoes the body.
    let upload = format!("{base}/upload");
    let body = "x".repeat(3000);
    let (out, err) = curl(
        &curl_bin,
        &[
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            &body,
            &upload,
        ],
    )
    .await;
    assert_eq!(out, body);
    assert!(err.contains("HTTP/1.1 100 Continue"), "{err}");
    let (up, note, _) = exchange(&mut events, "web", "/upload", &[]).await;
    assert_eq!((up.method.as_str(), up.status), ("POST", 200));
    assert_eq!((up.body_size, up.resp_size), (3000, 3000));
    assert_eq!(note.as_deref(), Some("interim responses first: 100"));

    // Garbage still reaches nginx, which answers 400; the proxy says it could not
    // follow it.
    let mut s = TcpStream::connect(&listen).await.unwrap();
    s.write_all(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut answer)).await;
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "nginx's own answer: {answer:?}"
    );
    events
        .wait("the notice", |k| {
            matches!(k, EventKind::RelayNotice { proxy, from: Leg::Client, detail, .. }
                if proxy == "web" && detail.contains("relayed as they are"))
        })
        .await;

    // Replayed from the page: the request goes through the proxy again, a new exchange.
    let seq = events
        .seen
        .iter()
        .find(
            |e| matches!(&e.kind, EventKind::RelayHttp { exchange, .. } if exchange.id == hello.id),
        )
        .map(|e| e.seq)
        .expect("the /hello exchange's event");
    let mut page = Client::connect(&lab, "").await;
    page.handshake().await;
    page.send_text(&format!(r#"{{"type":"replay","id":1,"seq":{seq}}}"#))
        .await;
    let ack = page.reply(1).await.expect("the replay is acknowledged");
    assert!(
        ack.is_some_and(|a| a.contains("200")),
        "the replay's answer"
    );
    let (again, _, _) = exchange(&mut events, "web", "/hello", &[hello.id]).await;
    assert_eq!(
        (again.status, again.resp_body.data.as_str()),
        (200, "hello from nginx\n")
    );
    assert_ne!(again.conn, hello.conn, "a new client of the proxy");

    // The recording's HAR holds the relayed exchanges, each saying its proxy.
    let har_url = format!("http://{}/api/http.har", lab.dashboard);
    let mut relayed = Vec::new();
    for _ in 0..100 {
        let (har, _) = curl(&curl_bin, &[&har_url]).await;
        let doc: serde_json::Value = serde_json::from_str(&har).expect("HAR is JSON");
        relayed = doc["log"]["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["_proxy"] == "web")
            .map(|e| e["request"]["url"].as_str().unwrap_or("").to_owned())
            .collect();
        if relayed.len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        relayed,
        [
            "/hello",
            "/page.txt",
            "/chunked",
            "/big.bin",
            "/upload",
            "/hello"
        ]
        .map(|p| format!("{base}{p}")),
        "the relayed exchanges in the HAR, in order"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// One numbering for exchanges: a request relayed to the lab's own HTTP service is two
/// exchanges (the proxy's and the service's), and the page must not show two "#1".
#[tokio::test]
async fn relayed_and_served_exchanges_never_share_an_id() {
    let Some(curl_bin) = tools::find("curl", "curl") else {
        return;
    };
    let lab = lab::start().await;
    let mut events = Events::connect(&lab).await;
    let listen = proxy(&lab, &format!("self=http://127.0.0.1:0->{}", lab.http)).await;
    for _ in 0..2 {
        curl(&curl_bin, &[&format!("http://{listen}/")]).await;
    }
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (relayed, _, _) = exchange(&mut events, "self", "/", &ids).await;
        ids.push(relayed.id);
    }
    for _ in 0..2 {
        let served = events
            .wait(
                "the service's exchange",
                |k| matches!(k, EventKind::Http(x) if x.target == "/" && !ids.contains(&x.id)),
            )
            .await;
        let EventKind::Http(x) = served.kind else {
            unreachable!()
        };
        ids.push(x.id);
    }
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3, 4], "four exchanges, four ids");
}

#[tokio::test]
async fn an_upstream_that_is_down_gets_the_client_a_502_that_says_why() {
    let Some(curl_bin) = tools::find("curl", "curl") else {
        return;
    };
    let lab = lab::start().await;
    let mut events = Events::connect(&lab).await;
    let dead = tools::free_port();
    let listen = proxy(&lab, &format!("down=http://127.0.0.1:0->127.0.0.1:{dead}")).await;
    let out = Command::new(&curl_bin)
        .args(["-sS", "-i", &format!("http://{listen}/anything")])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.starts_with("HTTP/1.1 502 Bad Gateway"), "{text}");
    assert!(text.contains("refused the connection"), "{text}");
    events
        .wait("the refusal", |k| {
            matches!(k, EventKind::RelayRefused { proxy, reason, .. }
                if proxy == "down" && reason.contains("502"))
        })
        .await;
}

#[tokio::test]
async fn a_websocket_upgrade_through_an_http_proxy_shows_every_frame_both_ways() {
    let lab = lab::start().await;
    let mut events = Events::connect(&lab).await;
    let service = lab.ws_service.expect("the WebSocket service runs in tests");
    let listen = proxy(&lab, &format!("ws=http://127.0.0.1:0->{service}")).await;
    let addr = listen.parse().unwrap();
    let mut s = raw_ws::upgrade(addr, "/chat", &[])
        .await
        .expect("upgraded through the proxy");
    raw_ws::send_frame(&mut s, 1, b"hello through the relay").await;
    // The echo comes back through the proxy, unmasked.
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(head, [0x81, 23]);
    let mut echo = [0u8; 23];
    s.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"hello through the relay");

    // The page sends a message toward the client: it arrives as a server's frame.
    let conn = match events
        .wait(
            "the upgrade",
            |k| matches!(k, EventKind::RelayHttp { proxy, .. } if proxy == "ws"),
        )
        .await
        .kind
    {
        EventKind::RelayHttp { exchange, .. } => exchange.conn,
        _ => unreachable!(),
    };
    let mut page = Client::connect(&lab, "").await;
    page.handshake().await;
    let send = |id: u64, leg: &str, text: &str| {
        format!(
            r#"{{"type":"relay_ws_send","id":{id},"conn":{conn},"leg":"{leg}","data":"{text}"}}"#
        )
    };
    page.send_text(&send(1, "client", "from the page")).await;
    assert!(page.reply(1).await.is_ok());
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(head, [0x81, 13]);
    let mut text = [0u8; 13];
    s.read_exact(&mut text).await.unwrap();
    assert_eq!(&text, b"from the page");

    // Toward the upstream, while the client is in the middle of a frame: the page's
    // frame waits for the client's to end, so the service reads two whole messages and
    // echoes both, in that order.
    let mut frame = Vec::new();
    raw_ws::push_frame(&mut frame, 1, b"first half, second half");
    let before = client_in(&lab, conn);
    s.write_all(&frame[..12]).await.unwrap();
    // Relayed (the client leg's count moved), though not whole: the frame is open.
    for _ in 0..100 {
        if client_in(&lab, conn) == before + 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(client_in(&lab, conn), before + 12, "the first half relayed");
    page.send_text(&send(2, "upstream", "the page's own")).await;
    assert!(page.reply(2).await.is_ok());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !events.seen.iter().any(|e| matches!(
            &e.kind,
            EventKind::RelaySend {
                to: Leg::Upstream,
                ..
            }
        )),
        "the page's frame went out inside the client's"
    );
    s.write_all(&frame[12..]).await.unwrap();
    for expected in [&b"first half, second half"[..], b"the page's own"] {
        let mut head = [0u8; 2];
        s.read_exact(&mut head).await.unwrap();
        assert_eq!(
            head,
            [0x81, expected.len() as u8],
            "the echo of {expected:?}"
        );
        let mut body = vec![0u8; expected.len()];
        s.read_exact(&mut body).await.unwrap();
        assert_eq!(body, expected);
    }
    events
        .wait("the page's send", |k| {
            matches!(
                k,
                EventKind::RelaySend {
                    to: Leg::Upstream,
                    ..
                }
            )
        })
        .await;

    raw_ws::send_frame(&mut s, 8, &[0x03, 0xe8, b'b', b'y', b'e']).await;
    assert_eq!(raw_ws::close_code(&mut s).await, Some(1000));

    let (x, _, _) = exchange(&mut events, "ws", "/chat", &[]).await;
    assert_eq!(x.status, 101);
    let frame = |from: Leg, opcode: u8, text: &'static str| {
        move |k: &EventKind| {
            matches!(k, EventKind::RelayWsFrame { proxy, from: f, opcode: o, payload, .. }
                if proxy == "ws" && *f == from && *o == opcode && payload.data.contains(text))
        }
    };
    events
        .wait("the client's text", frame(Leg::Client, 1, "hello through"))
        .await;
    events
        .wait("the echo", frame(Leg::Upstream, 1, "hello through"))
        .await;
    // A close frame's payload is its code (not UTF-8) and reason: captured as base64.
    let close = events
        .wait("the client's close", frame(Leg::Client, 8, ""))
        .await;
    match close.kind {
        EventKind::RelayWsFrame {
            close_code,
            close_reason,
            ..
        } => assert_eq!(
            (close_code, close_reason.as_deref()),
            (Some(1000), Some("bye"))
        ),
        _ => unreachable!(),
    }
    events
        .wait("the upstream's close", |k| {
            matches!(
                k,
                EventKind::RelayWsFrame {
                    from: Leg::Upstream,
                    opcode: 8,
                    close_code: Some(1000),
                    ..
                }
            )
        })
        .await;
}
