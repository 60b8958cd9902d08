//! The HTTP service over real sockets: the seed's Hello World byte for byte, and the
//! inspector's events for what a client sends, as a dashboard receives them.

mod support;

use std::time::Duration;

use support::http_client::{Inspector, exchange, read_resp};
use support::lab;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wirelab_shared::CommandKind;

#[tokio::test]
async fn the_seeds_hello_world_byte_for_byte() {
    let lab = lab::start().await;
    let (resp, mut s) = exchange(
        lab.http,
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:1337\r\nUser-Agent: curl/7.54.0\r\nAccept: */*\r\n\r\n",
    )
    .await;
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.header("content-type"), Some("text/plain"));
    assert_eq!(resp.header("connection"), Some("keep-alive"));
    assert_eq!(resp.header("content-length"), Some("12"));
    assert!(
        resp.header("date").is_some_and(|d| d.ends_with(" GMT")),
        "{resp:?}"
    );
    assert_eq!(resp.body, b"Hello World\n");
    // Any other target gets the same, and the connection stays open for it (keep-alive).
    s.write_all(b"GET /anything?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let again = read_resp(&mut s, &mut Vec::new()).await;
    assert_eq!(
        (again.status_line.as_str(), again.body.as_slice()),
        ("HTTP/1.1 200 OK", &b"Hello World\n"[..])
    );
}

#[tokio::test]
async fn a_get_is_inspected_with_its_headers_in_order() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    let raw = b"GET /look?q=1 HTTP/1.1\r\nHost: lab\r\nX-Repeat: one\r\nAccept: */*\r\nX-Repeat: two\r\n\r\n";
    let (resp, s) = exchange(lab.http, raw).await;
    assert_eq!(resp.body, b"Hello World\n");
    let x = insp.target("/look?q=1").await;
    assert_eq!((x.method.as_str(), x.version.as_str()), ("GET", "HTTP/1.1"));
    assert_eq!(x.peer, s.local_addr().unwrap().to_string());
    let headers: Vec<_> = x.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    // Exactly as sent: the names in their case, repeats where they were.
    assert_eq!(
        headers,
        ["Host: lab", "X-Repeat: one", "Accept: */*", "X-Repeat: two"]
    );
    assert_eq!((x.status, x.body_size, x.seq_on_conn), (200, 0, 1));
    assert_eq!(
        (x.resp_body.data.as_str(), x.resp_size),
        ("Hello World\n", 12)
    );
    let names: Vec<_> = x.resp_headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["content-type", "Date", "Connection", "Content-Length"],
        "the seed's case: its own `content-type`, Node's capitalized headers"
    );
    assert_eq!(
        x.resp_headers[1].1,
        resp.header("date").unwrap(),
        "the event shows the date sent"
    );
    assert!(x.total_us >= x.ttfb_us);
    let c = lab.app.hub.counters.snapshot();
    assert!(c.http_requests >= 1 && c.http_conns >= 1, "{c:?}");
    assert!(c.http_bytes_in >= raw.len() as u64, "{c:?}");
    assert!(c.http_bytes_out >= 12, "{c:?}");
}

#[tokio::test]
async fn a_post_body_is_captured_and_echoed() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    let raw = b"POST /_/echo HTTP/1.1\r\nHost: lab\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\nhello=world";
    let (resp, _s) = exchange(lab.http, raw).await;
    assert_eq!(resp.body, b"hello=world");
    assert_eq!(
        resp.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let x = insp.target("/_/echo").await;
    assert_eq!(
        (x.method.as_str(), x.body.data.as_str(), x.body_size),
        ("POST", "hello=world", 11)
    );
    assert_eq!(
        (x.resp_body.data.as_str(), x.resp_size),
        ("hello=world", 11)
    );
}

#[tokio::test]
async fn a_chunked_upload_is_joined_and_sized() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    let raw = b"PUT /upload HTTP/1.1\r\nHost: lab\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n";
    let (resp, _s) = exchange(lab.http, raw).await;
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK", "{resp:?}");
    let x = insp.target("/upload").await;
    assert_eq!(
        (x.body.data.as_str(), x.body_size, x.body.cut),
        ("hello world", 11, 0)
    );
    assert!(
        x.headers
            .contains(&("Transfer-Encoding".into(), "chunked".into())),
        "{:?}",
        x.headers
    );
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_and_an_event() {
    let lab = lab::start_with(|c| c.max_http_body = 16).await;
    let mut insp = Inspector::connect(&lab).await;
    // Declared too long: refused without reading it.
    let body = "x".repeat(100);
    let raw = format!("POST /big HTTP/1.1\r\nHost: lab\r\nContent-Length: 100\r\n\r\n{body}");
    let (resp, _s) = exchange(lab.http, raw.as_bytes()).await;
    assert_eq!(resp.status_line, "HTTP/1.1 413 Payload Too Large");
    assert_eq!(resp.header("connection"), Some("close"));
    let x = insp.target("/big").await;
    assert_eq!((x.status, x.body_size, x.body.cut), (413, 100, 100));
    // Chunked: read until it passes the limit.
    let raw = b"POST /big-chunked HTTP/1.1\r\nHost: lab\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n";
    let (resp, _s) = exchange(lab.http, raw).await;
    assert_eq!(resp.status_line, "HTTP/1.1 413 Payload Too Large");
    let x = insp.target("/big-chunked").await;
    assert!(x.status == 413 && x.body_size > 16, "{x:?}");
    // Up to the limit is fine.
    let raw = b"POST /fits HTTP/1.1\r\nHost: lab\r\nContent-Length: 16\r\n\r\n0123456789abcdef";
    assert_eq!(
        exchange(lab.http, raw).await.0.status_line,
        "HTTP/1.1 200 OK"
    );
}

#[tokio::test]
async fn a_malformed_request_gets_400_and_the_server_stays_up() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    let mut s = TcpStream::connect(lab.http).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: lab\r\nthis is no header\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    let me = s.local_addr().unwrap().to_string();
    let x = insp.wait(|x| x.status == 400).await;
    assert_eq!(
        (x.peer.as_str(), x.method.as_str(), x.seq_on_conn),
        (me.as_str(), "", 1)
    );
    assert_eq!(lab.app.http.malformed(), 1);
    // The next connection is served as ever.
    let (resp, _s) = exchange(lab.http, b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n").await;
    assert_eq!(resp.body, b"Hello World\n");
}

#[tokio::test]
async fn keep_alive_requests_are_attributed_to_one_connection() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    let mut s = TcpStream::connect(lab.http).await.unwrap();
    let mut buf = Vec::new();
    for i in 1..=3 {
        let req = format!("GET /ka/{i} HTTP/1.1\r\nHost: lab\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        assert_eq!(read_resp(&mut s, &mut buf).await.body, b"Hello World\n");
    }
    let mut seen = Vec::new();
    for i in 1..=3 {
        let x = insp.target(&format!("/ka/{i}")).await;
        seen.push((x.conn, x.seq_on_conn));
    }
    let conn = seen[0].0;
    assert_eq!(seen, [(conn, 1), (conn, 2), (conn, 3)]);
    let open = lab.app.http.conns();
    let mine = open
        .iter()
        .find(|c| c.id == conn)
        .expect("the connection is listed while open");
    assert_eq!(
        (mine.requests, mine.peer.clone()),
        (3, s.local_addr().unwrap().to_string())
    );
    // Another connection is another id, starting again at 1.
    let (_, _s2) = exchange(lab.http, b"GET /ka/other HTTP/1.1\r\nHost: lab\r\n\r\n").await;
    let other = insp.target("/ka/other").await;
    assert_ne!(other.conn, conn);
    assert_eq!(other.seq_on_conn, 1);
    drop(s);
}

#[tokio::test]
async fn replay_sends_the_request_again_as_a_new_exchange() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    let raw =
        b"POST /_/echo?again HTTP/1.1\r\nHost: lab\r\nX-Mine: 1\r\nContent-Length: 5\r\n\r\nagain";
    exchange(lab.http, raw).await;
    let first = insp.target("/_/echo?again").await;
    let replay = CommandKind::HttpReplay { exchange: first.id };
    let ack = insp.command(7, replay).await.expect("the replay works");
    assert!(ack.contains("200"), "{ack}");
    let replayed = insp.wait(|x| x.replay_of.is_some()).await;
    assert_eq!(replayed.replay_of, Some(first.id));
    assert_ne!((replayed.id, replayed.conn), (first.id, first.conn));
    assert_eq!(
        (replayed.method.as_str(), replayed.body.data.as_str()),
        ("POST", "again")
    );
    assert_eq!(replayed.resp_body.data, "again");
    assert!(replayed.headers.contains(&("x-mine".into(), "1".into())));

    let unknown = insp
        .command(8, CommandKind::HttpReplay { exchange: 999_999 })
        .await;
    assert!(unknown.unwrap_err().contains("#999999"));
}

#[tokio::test]
async fn a_request_whose_body_was_cut_is_not_replayed() {
    let lab = lab::start_with(|c| c.snaplen = 4).await;
    let mut insp = Inspector::connect(&lab).await;
    exchange(
        lab.http,
        b"POST /cut HTTP/1.1\r\nHost: lab\r\nContent-Length: 10\r\n\r\n0123456789",
    )
    .await;
    let x = insp.target("/cut").await;
    assert_eq!(
        (x.body.data.as_str(), x.body.cut, x.body_size),
        ("0123", 6, 10)
    );
    let refused = insp
        .command(1, CommandKind::HttpReplay { exchange: x.id })
        .await;
    let e = refused.unwrap_err();
    assert!(e.contains("not captured whole"), "{e}");
}
