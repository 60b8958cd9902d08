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
