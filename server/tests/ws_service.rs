//! The WebSocket service (`--ws-service`) over real sockets: the upgrade on any path,
//! the modes, every frame an event, permessage-deflate with a smaller window, its own
//! message limit, and the page's send, close and drop.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::lab::{self, Client};
use support::raw_ws::{self, Ending};
use tokio::net::TcpStream;
use wirelab::config::RelayMode;
use wirelab_shared::{Direction, EventKind, ServerMsg};

fn service(lab: &lab::TestLab) -> SocketAddr {
    lab.ws_service.expect("the WebSocket service runs in tests")
}

/// A watcher of the page's feed, and a raw client of the service on `path`.
async fn connect(lab: &lab::TestLab, path: &str) -> (Client, TcpStream) {
    let mut watcher = Client::connect(lab, "").await;
    watcher.handshake().await;
    let s = raw_ws::upgrade(service(lab), path, &[]).await.unwrap();
    (watcher, s)
}

/// The id of the service's client that asked for `path`.
async fn client_id(watcher: &mut Client, path: &str) -> u64 {
    let ev = watcher
        .wait_event(|k| matches!(k, EventKind::WsServiceOpen { path: p, .. } if p == path))
        .await;
    let EventKind::WsServiceOpen { client, .. } = ev.kind else {
        unreachable!()
    };
    client
}

#[tokio::test]
async fn echo_answers_on_any_path_and_every_frame_is_an_event() {
    let lab = lab::start().await;
    let (mut watcher, mut s) = connect(&lab, "/any/path?x=1").await;
    let id = client_id(&mut watcher, "/any/path?x=1").await;
    // A text message in two fragments, then a binary one.
    raw_ws::send_frame_raw(&mut s, 0x01, b"hel").await;
    raw_ws::send_frame(&mut s, 0x00, b"lo").await;
    raw_ws::send_frame(&mut s, 0x02, &[0, 0xff]).await;
    assert_eq!(
        raw_ws::next_frame(&mut s).await,
        Some((0x81, b"hello".to_vec()))
    );
    assert_eq!(
        raw_ws::next_frame(&mut s).await,
        Some((0x82, vec![0, 0xff]))
    );
    // Each frame, each way: opcode, FIN, length, payload.
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let events = match watcher.next().await {
            ServerMsg::Events { events } => events,
            ServerMsg::Snapshot(s) => s.backlog,
            _ => continue,
        };
        for ev in events {
            if let EventKind::WsServiceFrame {
                client,
                dir,
                opcode,
                fin,
                size,
                payload,
                ..
            } = ev.kind
                && client == id
            {
                seen.push((dir, opcode, fin, size, payload.bytes()));
            }
        }
    }
    use Direction::{In, Out};
    assert_eq!(
        seen,
        vec![
            (In, 1, false, 3, b"hel".to_vec()),
            (In, 0, true, 2, b"lo".to_vec()),
            (Out, 1, true, 5, b"hello".to_vec()),
            (In, 2, true, 2, vec![0, 0xff]),
            (Out, 2, true, 2, vec![0, 0xff]),
        ]
    );
    // The page's state lists the client with its figures.
    loop {
        if let ServerMsg::State(state) = watcher.next().await
            && let Some(c) = state.ws_service.iter().find(|c| c.id == id)
        {
            assert_eq!(c.path, "/any/path?x=1");
            assert_eq!(
                (c.frames_in, c.frames_out, c.bytes_in, c.bytes_out),
                (3, 2, 7, 7)
            );
            break;
        }
    }
    // A close is echoed, then the client's connection ends with FIN, and it is an event.
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"done");
    raw_ws::send_frame(&mut s, 0x08, &close).await;
    let (mut r, _w) = s.into_split();
    assert_eq!(
        raw_ws::close_frame(&mut r).await,
        Some((1000, String::new()))
    );
    drop(_w);
    assert_eq!(raw_ws::ending(&mut r).await, Ending::Fin);
    let ev = watcher
        .wait_event(|k| matches!(k, EventKind::WsServiceClose { client, .. } if *client == id))
        .await;
    let EventKind::WsServiceClose {
        code,
        reason,
        detail,
        ..
    } = ev.kind
    else {
        unreachable!()
    };
    assert_eq!(
        (code, reason.as_str(), detail.as_str()),
        (Some(1000), "done", "the client closed")
    );
}

#[tokio::test]
async fn a_request_that_is_not_an_upgrade_is_told_why() {
    let lab = lab::start().await;
    let mut s = TcpStream::connect(service(&lab)).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Upgrade: websocket"), "{answer}");
    // Garbage is refused too, and the service goes on.
    let mut s = TcpStream::connect(service(&lab)).await.unwrap();
    s.write_all(b"\x16\x03\x01 not http\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(raw_ws::upgrade(service(&lab), "/", &[]).await.is_ok());
}

#[tokio::test]
async fn a_message_over_the_service_limit_is_1009_and_the_close_is_readable() {
    let lab = lab::start_with(|c| c.max_ws_service_message = 1000).await;
    let (_watcher, mut s) = connect(&lab, "/").await;
    raw_ws::send_frame(&mut s, 0x02, &[1; 1000]).await;
    assert_eq!(
        raw_ws::next_frame(&mut s).await.map(|f| f.1.len()),
        Some(1000)
    );
    raw_ws::send_header(&mut s, 0x82, 5_000_000).await;
    let (mut r, mut w) = s.into_split();
    use tokio::io::AsyncWriteExt;
    w.write_all(&vec![0; 5_000_000])
        .await
        .expect("the lab drains");
    let (code, reason) = raw_ws::close_frame(&mut r).await.expect("a close frame");
    assert_eq!(code, 1009);
    assert!(reason.contains("1000 bytes"), "{reason}");
    assert_eq!(raw_ws::ending(&mut r).await, Ending::Fin);
}

/// Compresses `data` as a permessage-deflate payload.
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, flate2::FlushCompress::Sync)
        .unwrap();
    out.truncate(out.len() - 4);
    out
}

fn inflate(data: &[u8]) -> Vec<u8> {
    let mut d = flate2::Decompress::new(false);
    let mut input = data.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
        .unwrap();
    out
}

#[tokio::test]
async fn a_compressed_message_is_echoed_compressed_within_the_window_asked_for() {
    let lab = lab::start().await;
    let offer = (
        "Sec-WebSocket-Extensions",
        "permessage-deflate; client_max_window_bits; server_max_window_bits=9",
    );
    let (mut s, head) = raw_ws::upgrade_with_head(service(&lab), "/", &[offer])
        .await
        .unwrap();
    assert!(
        head.contains(
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
             client_no_context_takeover; server_max_window_bits=9\r\n"
        ),
        "{head}"
    );
    let text = "a line of text that repeats. ".repeat(200);
    raw_ws::send_frame(&mut s, 0x41, &deflate(text.as_bytes())).await;
    let (b0, payload) = raw_ws::next_frame(&mut s).await.unwrap();
    assert_eq!(b0, 0x80 | 0x40 | 0x01, "text, compressed, as it came");
    assert!(payload.len() < text.len() / 4, "{} bytes", payload.len());
    assert_eq!(inflate(&payload), text.as_bytes());
    // A plain message is echoed plain.
    raw_ws::send_frame(&mut s, 0x01, b"plain").await;
    assert_eq!(
        raw_ws::next_frame(&mut s).await,
        Some((0x81, b"plain".to_vec()))
    );
}

#[tokio::test]
async fn broadcast_mode_sends_to_the_others_only() {
    let lab = lab::start_with(|c| c.ws_mode = RelayMode::Broadcast).await;
    let mut a = raw_ws::upgrade(service(&lab), "/a", &[]).await.unwrap();
    let mut b = raw_ws::upgrade(service(&lab), "/b", &[]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    raw_ws::send_frame(&mut a, 0x01, b"to everyone else").await;
    assert_eq!(
        raw_ws::next_frame(&mut b).await,
        Some((0x81, b"to everyone else".to_vec()))
    );
    raw_ws::send_frame(&mut b, 0x09, b"ping").await;
    assert_eq!(
        raw_ws::next_frame(&mut b).await,
        Some((0x8a, b"ping".to_vec()))
    );
    raw_ws::send_frame(&mut a, 0x09, b"ping a").await;
    assert_eq!(
        raw_ws::next_frame(&mut a).await,
        Some((0x8a, b"ping a".to_vec())),
        "a got no copy of its own message before the pong"
    );
}

#[tokio::test]
async fn the_page_sends_closes_and_drops_clients() {
    let lab = lab::start_with(|c| c.ws_mode = RelayMode::Sink).await;
    let (mut page, mut s) = connect(&lab, "/p").await;
    let id = client_id(&mut page, "/p").await;
    let mut other = raw_ws::upgrade(service(&lab), "/q", &[]).await.unwrap();
    let other_id = client_id(&mut page, "/q").await;

    page.send_text(&format!(
        r#"{{"type":"ws_service_send","id":1,"client":{id},"data":"hi there"}}"#
    ))
    .await;
    assert!(page.reply(1).await.unwrap().unwrap().contains("text"));
    assert_eq!(
        raw_ws::next_frame(&mut s).await,
        Some((0x81, b"hi there".to_vec()))
    );
    page.send_text(r#"{"type":"ws_service_send","id":2,"data":"00ff","enc":"hex"}"#)
        .await;
    page.reply(2).await.unwrap();
    assert_eq!(
        raw_ws::next_frame(&mut s).await,
        Some((0x82, vec![0, 0xff]))
    );
    assert_eq!(
        raw_ws::next_frame(&mut other).await,
        Some((0x82, vec![0, 0xff]))
    );

    // Close: the client gets the close frame, answers, and then a FIN.
    page.send_text(&format!(
        r#"{{"type":"ws_service_close","id":3,"client":{id},"code":4001,"reason":"enough"}}"#
    ))
    .await;
    page.reply(3).await.unwrap();
    let (mut r, mut w) = s.into_split();
    assert_eq!(
        raw_ws::close_frame(&mut r).await,
        Some((4001, "enough".into()))
    );
    let mut answer = Vec::new();
    raw_ws::push_frame(&mut answer, 0x08, &4001u16.to_be_bytes());
    use tokio::io::AsyncWriteExt;
    w.write_all(&answer).await.unwrap();
    assert_eq!(raw_ws::ending(&mut r).await, Ending::Fin);
    let ev = page
        .wait_event(|k| matches!(k, EventKind::WsServiceClose { client, .. } if *client == id))
        .await;
    let EventKind::WsServiceClose { code, detail, .. } = ev.kind else {
        unreachable!()
    };
    assert_eq!(code, Some(4001));
    assert_eq!(detail, "closed from the page; the client answered 4001");

    // Drop: no close frame, a reset.
    page.send_text(&format!(
        r#"{{"type":"ws_service_close","id":4,"client":{other_id},"drop":true}}"#
    ))
    .await;
    page.reply(4).await.unwrap();
    let (mut r, _w) = other.into_split();
    assert_eq!(
        raw_ws::ending(&mut r).await,
        Ending::Error(std::io::ErrorKind::ConnectionReset)
    );
    // A bad code is refused with a reason.
    page.send_text(r#"{"type":"ws_service_close","id":5,"client":99,"code":1005}"#)
        .await;
    assert!(
        page.reply(5)
            .await
            .unwrap_err()
            .contains("no WebSocket service client #99")
    );
}

#[tokio::test]
async fn the_service_can_be_off() {
    let lab = lab::start_with(|c| c.ws_service = wirelab::config::ServiceAddr(None)).await;
    assert_eq!(lab.ws_service, None);
    let mut page = Client::connect(&lab, "").await;
    let (hello, _) = page.handshake().await;
    assert!(hello.services.iter().all(|s| s.name != "ws_service"));
}
