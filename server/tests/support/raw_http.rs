//! HTTP by hand: one request written as is on a fresh connection, the whole response read
//! until the server closes (so the request should say `Connection: close` or be HTTP/1.0).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` to `addr` and returns every byte of the response, which must end within
/// `within`.
pub(crate) async fn exchange(addr: SocketAddr, request: &str, within: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("the HTTP service accepts");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut response))
        .await
        .unwrap_or_else(|_| panic!("the response within {within:?}"))
        .unwrap();
    response
}

/// One JSON request (`Connection: close`, `User-Agent: ua`), as toxiproxy's API takes
/// them: the status and the body.
pub(crate) async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    ua: &str,
) -> (u16, String) {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: {ua}\r\nContent-Type: \
         application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let raw = exchange(addr, &request, Duration::from_secs(10)).await;
    let text = String::from_utf8(raw).expect("the answer is UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head[9..12].parse().expect("a status code");
    (status, body.to_owned())
}
