//! A WebSocket client by hand, for frames a proper library refuses to send (text that is
//! not UTF-8) and for refusals before the upgrade (status codes).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends the upgrade request with `extra` headers; returns the stream once upgraded, or
/// the HTTP response (status line and body) when the server refused.
pub(crate) async fn upgrade(
    addr: SocketAddr,
    path: &str,
    extra: &[(&str, &str)],
) -> Result<TcpStream, String> {
    upgrade_with_head(addr, path, extra).await.map(|(s, _)| s)
}

/// [`upgrade`], also returning the 101 response's head.
pub(crate) async fn upgrade_with_head(
    addr: SocketAddr,
    path: &str,
    extra: &[(&str, &str)],
) -> Result<(TcpStream, String), String> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if s.read(&mut b).await.unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    if head.starts_with("HTTP/1.1 101") {
        Ok((s, head))
    } else {
        let mut body = vec![0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(2), s.read(&mut body))
            .await
            .map_or(0, |r| r.unwrap_or(0));
        Err(format!("{head}{}", String::from_utf8_lossy(&body[..n])))
    }
}

/// Writes one masked frame with `opcode` (1 text, 2 binary; RSV bits may be set too) and
/// `payload`.
pub(crate) async fn send_frame(s: &mut TcpStream, opcode: u8, payload: &[u8]) {
    let mut frame = Vec::new();
    push_frame(&mut frame, opcode, payload);
    s.write_all(&frame).await.unwrap();
}

/// Writes one masked frame whose first byte is exactly `b0` (FIN clear when it is).
pub(crate) async fn send_frame_raw(s: &mut TcpStream, b0: u8, payload: &[u8]) {
    let mut frame = Vec::new();
    push_frame(&mut frame, 0, payload);
    frame[0] = b0;
    s.write_all(&frame).await.unwrap();
}

/// Appends one masked frame (as [`send_frame`] writes it) to `frame`.
pub(crate) fn push_frame(frame: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    frame.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

/// Reads frames until a close frame and returns its code (None if the stream just ended).
pub(crate) async fn close_code(s: &mut TcpStream) -> Option<u16> {
    close_frame(s).await.map(|(code, _)| code)
}

/// Writes the header of a masked frame that declares `len` payload bytes, with mask key
/// 0 (so zeros on the wire are zeros in the payload: a test can stream a huge payload
/// without masking it).
pub(crate) async fn send_header(s: &mut TcpStream, b0: u8, len: u64) {
    let mut head = vec![b0, 0x80 | 127];
    head.extend_from_slice(&len.to_be_bytes());
    head.extend_from_slice(&[0; 4]);
    s.write_all(&head).await.unwrap();
}

/// How a connection ended, seen by the client after the server's close frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The server closed its side (FIN): a read returned 0.
    Fin,
    /// The read failed (a reset: what a server that drops a socket with unread data sends).
    Error(std::io::ErrorKind),
    /// More bytes came after the close frame.
    Bytes(usize),
}

/// What the client reads after the close frame, within 5 s.
pub(crate) async fn ending(s: &mut tokio::net::tcp::OwnedReadHalf) -> Ending {
    let mut b = [0u8; 256];
    match tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut b)).await {
        Ok(Ok(0)) => Ending::Fin,
        Ok(Ok(n)) => Ending::Bytes(n),
        Ok(Err(e)) => Ending::Error(e.kind()),
        Err(_) => Ending::Error(std::io::ErrorKind::TimedOut),
    }
}

/// Reads server frames until a close frame: its code and reason (None if the stream
/// ended or failed first).
pub(crate) async fn close_frame<R: tokio::io::AsyncRead + Unpin>(
    s: &mut R,
) -> Option<(u16, String)> {
    loop {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).await.ok()?;
        let mut len = u64::from(h[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).await.ok()?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).await.ok()?;
            len = u64::from_be_bytes(b);
        }
        let mut payload = vec![0u8; len as usize];
        s.read_exact(&mut payload).await.ok()?;
        if h[0] & 0x0f == 8 {
            let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]))?;
            return Some((code, String::from_utf8_lossy(&payload[2..]).into_owned()));
        }
    }
}

/// The next frame the server sends, within 5 s: (first byte, payload); `None` when the
/// stream ended or failed first.
pub(crate) async fn next_frame<R: tokio::io::AsyncRead + Unpin>(
    s: &mut R,
) -> Option<(u8, Vec<u8>)> {
    let read = async {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).await.ok()?;
        assert_eq!(h[1] & 0x80, 0, "a server's frames are not masked");
        let mut len = u64::from(h[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).await.ok()?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).await.ok()?;
            len = u64::from_be_bytes(b);
        }
        let mut payload = vec![0u8; len as usize];
        s.read_exact(&mut payload).await.ok()?;
        Some((h[0], payload))
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), read)
        .await
        .expect("a frame within 5 s")
}
