//! The HTTP service's own HTTP/1.1 engine over real sockets: how it reads what a client
//! writes (pipelining, `100 Continue`, HTTP/1.0, HEAD, chunked bodies, bodies in pieces),
//! what it refuses (smuggling shapes, bad chunking, heads too large, garbage), and that
//! the inspector shows the request as it was sent.

mod support;

use std::time::Duration;

use support::http_client::{Inspector, exchange, read_resp};
use support::lab;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wirelab_shared::EventKind;

/// Everything the server sends until it closes the connection (within 5 s).
async fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the server closes the connection within 5 s")
        .expect("the connection closes cleanly (no reset)");
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `raw` on a new connection and returns all the server sends until it closes.
async fn refused(addr: std::net::SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    read_to_close(&mut s).await
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    let mut s = TcpStream::connect(lab.http).await.unwrap();
    s.write_all(
        b"GET /pipe/1 HTTP/1.1\r\nHost: lab\r\n\r\n\
          POST /_/echo HTTP/1.1\r\nHost: lab\r\nContent-Length: 3\r\n\r\ntwo\
          GET /_/status/201 HTTP/1.1\r\nHost: lab\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let bodies = [
        read_resp(&mut s, &mut buf).await.body,
        read_resp(&mut s, &mut buf).await.body,
        read_resp(&mut s, &mut buf).await.body,
    ];
    assert_eq!(
        bodies,
        [&b"Hello World\n"[..], b"two", b"201 Created\n"],
        "the answers in the order asked"
    );
    let first = insp.target("/pipe/1").await;
    let second = insp.target("/_/echo").await;
    let third = insp.target("/_/status/201").await;
    assert_eq!(
        [first.seq_on_conn, second.seq_on_conn, third.seq_on_conn],
        [1, 2, 3]
    );
    assert!(first.conn == second.conn && second.conn == third.conn);
    assert_eq!((second.body.data.as_str(), third.status), ("two", 201));
}

/// Sends `head` (which asks `Expect: 100-continue`) on a new connection and checks that
/// `100 Continue` comes back before any body is sent; returns the connection.
async fn after_100_continue(addr: std::net::SocketAddr, head: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head).await.unwrap();
    let want = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut interim = vec![0u8; want.len()];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut interim))
        .await
        .expect("100 Continue without the body sent")
        .unwrap();
    assert_eq!(interim, want);
    s
}

#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body_is_read() {
    let lab = lab::start().await;
    let mut s = after_100_continue(
        lab.http,
        b"POST /_/echo HTTP/1.1\r\nHost: lab\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    .await;
    s.write_all(b"hello").await.unwrap();
    let resp = read_resp(&mut s, &mut Vec::new()).await;
    assert_eq!(
        (resp.status_line.as_str(), resp.body.as_slice()),
        ("HTTP/1.1 200 OK", &b"hello"[..])
    );
}

#[tokio::test]
async fn http_1_0_closes_unless_keep_alive_is_asked() {
    let lab = lab::start().await;
    let mut s = TcpStream::connect(lab.http).await.unwrap();
    s.write_all(b"GET /old HTTP/1.0\r\n\r\n").await.unwrap();
    let all = read_to_close(&mut s).await;
    assert!(all.starts_with("HTTP/1.1 200 OK\r\n"), "{all}");
    assert!(all.contains("\r\nConnection: close\r\n"), "{all}");
    assert!(all.ends_with("\r\n\r\nHello World\n"), "{all}");

    let mut insp = Inspector::connect(&lab).await;
    let (resp, mut s) = exchange(
        lab.http,
        b"GET /old/ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    )
    .await;
    assert_eq!(resp.header("connection"), Some("keep-alive"));
    s.write_all(b"GET /old/ka2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_resp(&mut s, &mut Vec::new()).await.body,
        b"Hello World\n"
    );
    let x = insp.target("/old/ka2").await;
    assert_eq!((x.version.as_str(), x.seq_on_conn), ("HTTP/1.0", 2));
    assert_eq!(
        x.resp_version, "HTTP/1.1",
        "answered in 1.1, as the wire says"
    );
}

#[tokio::test]
async fn the_event_carries_the_status_line_as_sent() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    // 422's reason is in no short table; 299 has none at all.
    for (code, line) in [
        (422, "HTTP/1.1 422 Unprocessable Entity"),
        (299, "HTTP/1.1 299 "),
        (200, "HTTP/1.1 200 OK"),
    ] {
        let target = format!("/_/status/{code}");
        let head = format!("GET {target} HTTP/1.0\r\n\r\n");
        let (resp, _) = exchange(lab.http, head.as_bytes()).await;
        assert_eq!(resp.status_line, line);
        let x = insp.target(&target).await;
        assert_eq!(
            format!("{} {} {}", x.resp_version, x.status, x.resp_reason),
            line,
            "{x:?}"
        );
    }
    // A refusal too.
    let all = refused(lab.http, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").await;
    let x = insp.wait(|x| x.status == 400).await;
    let line = format!("{} {} {}\r\n", x.resp_version, x.status, x.resp_reason);
    assert!(all.starts_with(&line), "{line:?} in {all}");
    assert_eq!(x.resp_reason, "Bad Request");
}

#[tokio::test]
async fn head_says_the_length_and_sends_no_body() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    let mut s = TcpStream::connect(lab.http).await.unwrap();
    s.write_all(
        b"HEAD / HTTP/1.1\r\nHost: lab\r\n\r\nGET /after-head HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let all = read_to_close(&mut s).await;
    let (head_resp, rest) = all.split_once("\r\n\r\n").unwrap();
    assert!(head_resp.contains("\r\nContent-Length: 12"), "{all}");
    assert!(
        rest.starts_with("HTTP/1.1 200 OK\r\n"),
        "the next answer right after the HEAD's head, no body between: {all}"
    );
    assert!(rest.ends_with("\r\n\r\nHello World\n"), "{all}");
    let x = insp.wait(|x| x.method == "HEAD").await;
    assert_eq!((x.status, x.resp_size), (200, 0));
}

#[tokio::test]
async fn a_chunked_body_with_extensions_and_trailers_is_decoded() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    let mut s = TcpStream::connect(lab.http).await.unwrap();
    s.write_all(
        b"POST /_/echo?chunked HTTP/1.1\r\nHost: lab\r\nTransfer-Encoding: chunked\r\n\r\n\
          4;name=value\r\nwire\r\n3 ; x\r\nlab\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n\
          GET /after-trailers HTTP/1.1\r\nHost: lab\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_resp(&mut s, &mut buf).await.body, b"wirelab");
    assert_eq!(
        read_resp(&mut s, &mut buf).await.body,
        b"Hello World\n",
        "the request after the trailers is read as the next one"
    );
    let x = insp.target("/_/echo?chunked").await;
    assert_eq!((x.body.data.as_str(), x.body_size), ("wirelab", 7));
    assert_eq!(insp.target("/after-trailers").await.seq_on_conn, 2);
}

#[tokio::test]
async fn a_bad_chunk_size_gets_400_and_a_close() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    let all = refused(
        lab.http,
        b"POST /bad-chunk HTTP/1.1\r\nHost: lab\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert!(all.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{all}");
    assert!(all.contains("\r\nConnection: close\r\n"), "{all}");
    assert!(all.contains("chunk-size"), "the reason in the body: {all}");
    let x = insp.target("/bad-chunk").await;
    assert_eq!((x.method.as_str(), x.status), ("POST", 400));
}

/// Chunking a lenient parser reads one way and a strict one another: the request that
/// would hide behind it must never be answered.
#[tokio::test]
async fn ambiguous_chunking_gets_one_400_and_hides_no_request() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    let bodies: [&[u8]; 3] = [
        b"\r\n\r\n",                     // a size line without digits, read as the last chunk
        b"2;\nxx\r\nhi\r\n0\r\n\r\n",    // a bare LF in a chunk extension
        b"0\r\nGET /x HTTP/1.1\r\n\r\n", // a request line as a trailer
    ];
    for body in bodies {
        let mut raw =
            b"POST /chunks HTTP/1.1\r\nHost: lab\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        raw.extend_from_slice(body);
        raw.extend_from_slice(b"GET /_/status/418 HTTP/1.1\r\nHost: lab\r\n\r\n");
        let all = refused(lab.http, &raw).await;
        assert!(all.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{all}");
        assert!(
            !all.contains("418"),
            "the hidden request was not answered: {all}"
        );
        let x = insp.target("/chunks").await;
        assert_eq!((x.method.as_str(), x.status), ("POST", 400));
    }
}

#[tokio::test]
async fn smuggling_shapes_get_400_and_a_close() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    let shapes: [&[u8]; 3] = [
        b"POST /cl-te HTTP/1.1\r\nHost: lab\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /cl-cl HTTP/1.1\r\nHost: lab\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
        b"POST /te-gzip HTTP/1.1\r\nHost: lab\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    ];
    for raw in shapes {
        let all = refused(lab.http, raw).await;
        assert!(all.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{all}");
        let (_, body) = all.split_once("\r\n\r\n").unwrap();
        assert!(
            body.starts_with("the request was refused: ") && body.ends_with('\n'),
            "the reason in the body: {all}"
        );
    }
    for target in ["/cl-te", "/cl-cl", "/te-gzip"] {
        let x = insp.target(target).await;
        assert_eq!((x.status, x.method.as_str()), (400, "POST"), "{target}");
    }
    assert_eq!(lab.app.http.malformed(), 3);
}

#[tokio::test]
async fn heads_too_large_get_431_and_targets_too_long_414() {
    let lab = lab::start().await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: lab\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let all = refused(lab.http, big.as_bytes()).await;
    assert!(
        all.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{all}"
    );
    let long = format!(
        "GET /{} HTTP/1.1\r\nHost: lab\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let all = refused(lab.http, long.as_bytes()).await;
    assert!(all.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{all}");
    assert_eq!(lab.app.http.malformed(), 2);
}

#[tokio::test]
async fn garbage_gets_400_and_the_server_serves_others() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    let mut s = TcpStream::connect(lab.http).await.unwrap();
    let me = s.local_addr().unwrap().to_string();
    s.write_all(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n")
        .await
        .unwrap();
    let all = read_to_close(&mut s).await;
    assert!(all.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{all}");
    let x = insp.wait(|x| x.peer == me).await;
    assert_eq!((x.status, x.method.as_str()), (400, ""));
    // An HTTP/2 preface is closed without an answer.
    let all = refused(lab.http, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    assert_eq!(all, "");
    let x = insp.wait(|x| x.status == 0).await;
    assert!(x.resp_headers.is_empty());
    let (resp, _s) = exchange(lab.http, b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n").await;
    assert_eq!(resp.body, b"Hello World\n");
}

#[tokio::test]
async fn headers_are_shown_in_their_case_and_order() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    let (resp, _s) = exchange(
        lab.http,
        b"GET /_/headers HTTP/1.1\r\nHost: lab\r\nX-Trace: a\r\nAccept: */*\r\nX-Trace: b\r\n\r\n",
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&resp.body),
        "Host: lab\nX-Trace: a\nAccept: */*\nX-Trace: b\n",
        "the helper lists them as received"
    );
    let x = insp.target("/_/headers").await;
    let shown: Vec<_> = x.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    assert_eq!(
        shown,
        ["Host: lab", "X-Trace: a", "Accept: */*", "X-Trace: b"]
    );
}

#[tokio::test]
async fn a_client_gone_halfway_through_a_head_leaves_nothing_behind() {
    let lab = lab::start().await;
    let mut s = TcpStream::connect(lab.http).await.unwrap();
    let me = s.local_addr().unwrap().to_string();
    s.write_all(b"GET /half HTTP/1.1\r\nHost: la")
        .await
        .unwrap();
    // Listed while open (once the server has accepted it).
    let listed = |lab: &lab::TestLab| lab.app.http.conns().iter().any(|c| c.peer == me);
    wait_until("the connection listed", || listed(&lab)).await;
    drop(s);
    wait_until("the connection gone from Http::conns", || !listed(&lab)).await;
    let state = lab.app.http.conns();
    assert!(state.iter().all(|c| c.peer != me), "{state:?}");
    assert_eq!(lab.app.hub.counters.snapshot().http_requests, 0);
}

/// Waits (polling, up to 5 s) until `done` says so; panics naming `what` otherwise.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 5 s");
}

#[tokio::test]
async fn a_body_written_in_many_small_pieces_is_read_whole() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    let mut s = TcpStream::connect(lab.http).await.unwrap();
    s.set_nodelay(true).unwrap();
    let body: String = (0..200)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let head = format!(
        "POST /_/echo HTTP/1.1\r\nHost: lab\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    for piece in head.as_bytes().chunks(7).chain(body.as_bytes().chunks(3)) {
        s.write_all(piece).await.unwrap();
        s.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    let resp = read_resp(&mut s, &mut Vec::new()).await;
    assert_eq!(String::from_utf8_lossy(&resp.body), body);
    let x = insp.target("/_/echo").await;
    assert_eq!((x.body.data.as_str(), x.body_size), (body.as_str(), 200));
}

#[tokio::test]
async fn stopping_the_lab_finishes_the_exchange_in_progress_and_closes_idle_ones() {
    let lab = lab::start().await;
    let (_, mut idle) = exchange(lab.http, b"GET /idle HTTP/1.1\r\nHost: lab\r\n\r\n").await;
    let mut busy = TcpStream::connect(lab.http).await.unwrap();
    busy.write_all(b"POST /_/echo HTTP/1.1\r\nHost: lab\r\nContent-Length: 5\r\n\r\nhe")
        .await
        .unwrap();
    // The head was read (the exchange is in progress) once the request is counted.
    wait_until("the request counted", || {
        lab.app.hub.counters.snapshot().http_requests == 2
    })
    .await;
    lab.shutdown.cancel();
    assert_eq!(
        read_to_close(&mut idle).await,
        "",
        "the idle connection is closed"
    );
    busy.write_all(b"llo").await.unwrap();
    let all = read_to_close(&mut busy).await;
    assert!(all.starts_with("HTTP/1.1 200 OK\r\n"), "{all}");
    assert!(all.contains("\r\nConnection: close\r\n"), "{all}");
    assert!(all.ends_with("\r\n\r\nhello"), "{all}");
}

#[tokio::test]
async fn answers_go_out_before_a_pipelined_body_is_waited_for() {
    let lab = lab::start().await;
    let mut s = TcpStream::connect(lab.http).await.unwrap();
    s.write_all(
        b"GET /first HTTP/1.1\r\nHost: lab\r\n\r\nPOST /_/echo HTTP/1.1\r\nHost: lab\r\nContent-Length: 5\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    assert_eq!(
        read_resp(&mut s, &mut buf).await.body,
        b"Hello World\n",
        "the first answer without the second request's body"
    );
    s.write_all(b"later").await.unwrap();
    assert_eq!(read_resp(&mut s, &mut buf).await.body, b"later");
}

#[tokio::test]
async fn codings_and_methods_not_implemented_get_501() {
    let lab = lab::start().await;
    let all = refused(
        lab.http,
        b"POST /gz HTTP/1.1\r\nHost: lab\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert!(all.starts_with("HTTP/1.1 501 Not Implemented\r\n"), "{all}");
    let (resp, _s) = exchange(
        lab.http,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    )
    .await;
    assert_eq!(resp.status_line, "HTTP/1.1 501 Not Implemented");
}

#[tokio::test]
async fn a_bad_line_is_refused_before_the_head_ends() {
    let lab = lab::start().await;
    let mut s = TcpStream::connect(lab.http).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    // Let the server read the first line on its own (a wait, not a timing assert).
    wait_until("the first line read", || {
        lab.app.hub.counters.snapshot().http_bytes_in >= 16
    })
    .await;
    s.write_all(b"this is no header\r\n").await.unwrap();
    // No blank line follows: the server answers anyway.
    let all = read_to_close(&mut s).await;
    assert!(all.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{all}");
}

#[tokio::test]
async fn expect_100_continue_works_for_a_chunked_body_too() {
    let lab = lab::start().await;
    let mut s = after_100_continue(
        lab.http,
        b"POST /_/echo HTTP/1.1\r\nHost: lab\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await;
    s.write_all(b"3\r\nabc\r\n0\r\n\r\n").await.unwrap();
    assert_eq!(read_resp(&mut s, &mut Vec::new()).await.body, b"abc");
}

#[tokio::test]
async fn the_byte_counters_are_exact() {
    let lab = lab::start().await;
    let request = b"GET /count HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n";
    let mut s = TcpStream::connect(lab.http).await.unwrap();
    s.write_all(request).await.unwrap();
    let answer = read_to_close(&mut s).await;
    drop(s);
    // Each read and write is counted before the server closes the connection, so once the
    // close is read the counters hold it all (no other HTTP traffic in this lab).
    let c = lab.app.hub.counters.snapshot();
    assert_eq!(
        (c.http_bytes_in, c.http_bytes_out),
        (request.len() as u64, answer.len() as u64),
        "{c:?}"
    );
}

/// Slow and vanished clients (`--http-idle-secs 1`): a connection on which nothing moves
/// for one to two periods is closed, whatever it is stuck on; a body that stops is told
/// so (its minimum rate, `--http-body-min-rate`, runs out first).
#[tokio::test]
async fn connections_where_nothing_moves_are_closed() {
    let lab = lab::start_with(|c| c.http_idle_secs = 1).await;
    let stuck: [(&[u8], &str); 3] = [
        (b"GET / HTTP/1.1\r\nHo", ""), // a head never finished: closed without an answer
        (
            b"POST /_/echo HTTP/1.1\r\nHost: lab\r\nContent-Length: 10\r\n\r\nab", // a body never finished
            "HTTP/1.1 408 Request Timeout\r\n",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n",
            "HTTP/1.1 200 OK\r\n",
        ), // then idle keep-alive
    ];
    for (raw, answer) in stuck {
        let mut s = TcpStream::connect(lab.http).await.unwrap();
        s.write_all(raw).await.unwrap();
        let all = read_to_close(&mut s).await; // within 5 s
        assert!(
            all.starts_with(answer),
            "{}: {all:?}",
            String::from_utf8_lossy(raw)
        );
        assert_eq!(all.is_empty(), answer.is_empty(), "{all}");
    }
    // A client that asks for more than it reads: its answers back up, and it is closed
    // once nothing moves, while its socket is still open.
    let mut greedy = TcpStream::connect(lab.http).await.unwrap();
    let asks = b"GET /_/bytes/65536 HTTP/1.1\r\nHost: lab\r\n\r\n".repeat(1000); // 64 MB asked
    greedy.write_all(&asks).await.unwrap();
    wait_until("the greedy client is seen", || {
        !lab.app.http.conns().is_empty()
    })
    .await;
    wait_until("the greedy client is closed", || {
        lab.app.http.conns().is_empty()
    })
    .await;
    drop(greedy);
}

/// What strict llhttp (the parser inside Node.js) refuses in its own request corpus, and
/// the lab once answered 200 (docs/conformance.md): each gets 400 and a close.
#[tokio::test]
async fn what_strict_llhttp_refuses_gets_400() {
    let lab = lab::start().await;
    let cases: [&[u8]; 4] = [
        // A chunk extension with no name after its semicolon.
        b"POST /ext HTTP/1.1\r\nHost: lab\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n2;\r\naa\r\n0\r\n\r\n",
        // A blank after the chunk size, with no extension behind it.
        b"PUT /blank HTTP/1.1\r\nHost: lab\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\na \r\n0123456789\r\n0\r\n\r\n",
        // An extension value that is neither a token nor a whole quoted string.
        b"POST /quote HTTP/1.1\r\nHost: lab\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"b\r\nhello\r\n0\r\n\r\n",
        // UTF-8 in the request target, not percent-encoded.
        "GET /\u{3b4}\u{b6}/t HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n".as_bytes(),
    ];
    for raw in cases {
        let all = refused(lab.http, raw).await;
        assert!(
            all.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{}: {all}",
            String::from_utf8_lossy(raw)
        );
    }
    // Extensions as RFC 9112 writes them still pass: quoted, escaped, blanks around `;`.
    let (resp, _s) = exchange(
        lab.http,
        b"POST /_/echo HTTP/1.1\r\nHost: lab\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;a=\"I \\\"q\\\"; x\";b ; c=d\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(resp.body, b"hello");
}

/// A bare LF ends no line of a request head (the lab reads CRLF only, as in chunked
/// bodies): behind a front proxy that passes a lone LF through as data,
/// `X: y\nContent-Length: 5` would be a header the proxy never saw.
#[tokio::test]
async fn a_bare_lf_in_a_head_gets_400() {
    let lab = lab::start().await;
    let mut insp = Inspector::connect(&lab).await;
    let cases: [&[u8]; 3] = [
        b"POST /lf-hidden HTTP/1.1\r\nHost: lab\r\nX: y\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        b"GET /lf-all HTTP/1.1\nHost: lab\nConnection: close\n\n",
        b"GET /lf-end HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\n",
    ];
    for raw in cases {
        let all = refused(lab.http, raw).await;
        assert!(
            all.starts_with("HTTP/1.1 400 Bad Request\r\n") && all.contains("bare LF"),
            "{}: {all}",
            String::from_utf8_lossy(raw)
        );
    }
    let x = insp.wait(|x| x.status == 400).await;
    assert_eq!(x.method, "", "the head is not shown as if it parsed: {x:?}");
    // A bare LF in a body is only data.
    let (resp, _s) = exchange(
        lab.http,
        b"POST /_/echo HTTP/1.1\r\nHost: lab\r\nContent-Length: 3\r\n\r\na\nb",
    )
    .await;
    assert_eq!(resp.body, b"a\nb");
}

/// RFC 9112 section 3.2: 400 for an HTTP/1.1 request without `Host`, and for any request
/// with several or an invalid one, with the reason in the body.
#[tokio::test]
async fn the_host_rule_of_rfc_9112() {
    let lab = lab::start().await;
    let cases: [(&[u8], &str); 6] = [
        (
            b"GET /none HTTP/1.1\r\nConnection: close\r\n\r\n",
            "without a Host",
        ),
        (
            b"GET /two HTTP/1.1\r\nHost: a\r\nhost: b\r\nConnection: close\r\n\r\n",
            "several Host",
        ),
        (
            b"GET /same HTTP/1.1\r\nHost: a\r\nHost: a\r\nConnection: close\r\n\r\n",
            "several Host",
        ),
        (
            b"GET /space HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
            "an invalid Host",
        ),
        (
            b"GET /path HTTP/1.1\r\nHost: a/b:80\r\nConnection: close\r\n\r\n",
            "an invalid Host",
        ),
        (
            b"GET /old HTTP/1.0\r\nHost: a:8o\r\n\r\n",
            "an invalid Host",
        ),
    ];
    for (raw, why) in cases {
        let all = refused(lab.http, raw).await;
        assert!(
            all.starts_with("HTTP/1.1 400 Bad Request\r\n") && all.contains(why),
            "{}: {all}",
            String::from_utf8_lossy(raw)
        );
    }
    // What the rule allows: an empty Host (RFC 9110 section 7.2), an IPv6 literal, a port
    // left empty, an absolute-form target with its Host, HTTP/1.0 without one.
    for raw in [
        &b"GET / HTTP/1.1\r\nHost:\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: [::1]:1337\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: xn--bcher-kva.example:\r\n\r\n",
        b"GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
    ] {
        let (resp, _s) = exchange(lab.http, raw).await;
        assert_eq!(
            resp.status_line,
            "HTTP/1.1 200 OK",
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}

/// `--max-http-conns 2`: a third connection gets 503 saying why, is closed, counted and
/// told in a notice; a slot freed is taken again.
#[tokio::test]
async fn past_the_limit_connections_get_503_and_are_counted() {
    let lab = lab::start_with(|c| c.max_http_conns = 2).await;
    let mut watch = lab::Client::connect(&lab, "").await;
    let (_, first) = exchange(lab.http, b"GET /1 HTTP/1.1\r\nHost: lab\r\n\r\n").await;
    let (_, _second) = exchange(lab.http, b"GET /2 HTTP/1.1\r\nHost: lab\r\n\r\n").await;
    // Turned away at once, before it sends anything (so its close is a FIN: a request
    // arriving after it would be answered with a reset).
    let all = read_to_close(&mut TcpStream::connect(lab.http).await.unwrap()).await;
    assert!(
        all.starts_with("HTTP/1.1 503 Service Unavailable\r\n")
            && all.contains("\r\nConnection: close\r\n")
            && all.ends_with("(at most 2, --max-http-conns); try again later\n"),
        "{all}"
    );
    assert_eq!(lab.app.hub.counters.snapshot().http_refused, 1);
    watch
        .wait_event(|k| {
            matches!(k, EventKind::Notice { message, .. } if message.contains("--max-http-conns"))
        })
        .await;
    drop(first);
    wait_until("the slot freed", || lab.app.http.conns().len() == 1).await;
    let (resp, _) = exchange(lab.http, b"GET /4 HTTP/1.1\r\nHost: lab\r\n\r\n").await;
    assert_eq!(resp.body, b"Hello World\n");
    assert_eq!(lab.app.hub.counters.snapshot().http_refused, 1);
}

/// A body trickled a byte at a time keeps the idle watchdog quiet (a byte moves every
/// 200 ms), but not the body's minimum rate (`--http-body-min-rate`, 500 bytes/s after a
/// grace of `--http-idle-secs 1`): 408, the reason, and a close.
#[tokio::test]
async fn a_body_trickled_a_byte_at_a_time_gets_408() {
    let lab = lab::start_with(|c| c.http_idle_secs = 1).await;
    let mut insp = Inspector::connect(&lab).await;
    let s = TcpStream::connect(lab.http).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (mut rd, mut wr) = s.into_split();
    wr.write_all(b"POST /_/echo?trickle HTTP/1.1\r\nHost: lab\r\nContent-Length: 1000\r\n\r\n")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..1000 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if wr.write_all(b"x").await.is_err() {
                break;
            }
        }
    });
    let started = tokio::time::Instant::now();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), rd.read_to_end(&mut out))
        .await
        .expect("closed within 5 s, while the trickle goes on")
        .unwrap();
    let all = String::from_utf8_lossy(&out);
    assert!(
        all.starts_with("HTTP/1.1 408 Request Timeout\r\n")
            && all.contains("\r\nConnection: close\r\n")
            && all.contains("under 500 bytes/s after a 1 s grace"),
        "{all}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "not before the grace: {:?}",
        started.elapsed()
    );
    let x = insp.target("/_/echo?trickle").await;
    assert_eq!(x.status, 408);
    assert!(x.body_size < 100, "{}", x.body_size);
    trickle.abort();
}
