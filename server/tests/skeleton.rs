//! The walking skeleton end to end over real sockets: the page is served, a WebSocket
//! client gets `hello`, and a UDP datagram arrives on it as an event.

mod support;

use support::lab::{self, Client};
use tokio::net::UdpSocket;
use wirelab_shared::{Direction, EventKind, PROTOCOL_VERSION};

#[tokio::test]
async fn the_page_is_served() {
    let lab = lab::start().await;
    let body = http_get(lab.dashboard, "/").await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("wirelab"), "{body}");
    // With a built dashboard (the test command builds it first) the page loads the wasm.
    if std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/index.html")).exists() {
        assert!(
            body.contains(".wasm") || body.contains("wirelab-frontend"),
            "{body}"
        );
    }
    let health = http_get(lab.dashboard, "/healthz").await;
    assert!(health.ends_with("ok\n"), "{health}");
}

#[tokio::test]
async fn a_client_gets_hello_then_a_datagram_as_an_event() {
    let lab = lab::start().await;
    let mut client = Client::connect(&lab, "").await;
    let (hello, snapshot) = client.handshake().await;
    assert_eq!(hello.server, "wirelab");
    assert_eq!(hello.protocol, PROTOCOL_VERSION);
    let udp = hello.services.iter().find(|s| s.name == "udp").unwrap();
    assert_eq!(udp.addr, lab.udp.to_string());
    assert_eq!(snapshot.resumed_from, None);

    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    peer.send_to(b"hello from the skeleton", lab.udp)
        .await
        .unwrap();
    let me = peer.local_addr().unwrap().to_string();
    let ev = client
        .wait_event(|k| matches!(k, EventKind::UdpDatagram { .. }))
        .await;
    let EventKind::UdpDatagram {
        peer,
        dir,
        size,
        payload,
    } = ev.kind
    else {
        unreachable!()
    };
    assert_eq!((peer, dir, size), (me, Direction::In, 23));
    assert!(payload.is_text());
    assert_eq!(payload.data, "hello from the skeleton");
    assert!(ev.seq > snapshot.last_seq);
}

/// A minimal HTTP/1.1 GET over a real socket, returning the whole response.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}
