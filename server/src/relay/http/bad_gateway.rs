//! The answer to a client of an `http` proxy whose upstream cannot be reached: `502 Bad
//! Gateway`, saying why, as a reverse proxy answers (nginx, mitmproxy). It comes after the
//! client's request head (or after [`WAIT`] without one), then the lab sends FIN and, as
//! nginx does, reads and drops what the client still sends (a body it had started) until
//! the client closes or falls quiet, so that the close is not a RST that could destroy the
//! answer before the client reads it.

use std::io;
use std::net::Shutdown;
use std::time::Duration;

use socket2::SockRef;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::http::head::HEAD_LIMIT;

/// How long the client may take to send its request head.
pub const WAIT: Duration = Duration::from_secs(5);
/// After the answer, what the client still sends is read and dropped (nginx's lingering
/// close) until it closes, or sends nothing for this long...
const LINGER_QUIET: Duration = Duration::from_secs(2);
/// ...or this long has passed.
const LINGER_MAX: Duration = Duration::from_secs(30);

/// The response, for proxy `proxy` whose upstream failed as `why` says.
pub fn response(proxy: &str, why: &str) -> Vec<u8> {
    let body = format!("wirelab: the proxy {proxy:?} could not reach its upstream: {why}\n");
    let mut out = format!(
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\nX-Wirelab-Proxy: {proxy}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Waits for the request head, answers 502, and closes; gives up at once when `stop`
/// (the proxy stopped, or the lab).
pub async fn answer(
    client: &TcpStream,
    proxy: &str,
    why: &str,
    stop: &CancellationToken,
) -> io::Result<()> {
    tokio::select! {
        r = exchange(client, proxy, why) => r,
        _ = stop.cancelled() => Ok(()),
    }
}

async fn exchange(client: &TcpStream, proxy: &str, why: &str) -> io::Result<()> {
    let mut head = Vec::new();
    let in_head = |chunk: &[u8]| {
        head.extend_from_slice(chunk);
        head.len() >= HEAD_LIMIT || memchr::memmem::find(&head, b"\r\n\r\n").is_some()
    };
    let _ = timeout(WAIT, read_until(client, in_head, None)).await;
    let bytes = response(proxy, why);
    let mut done = 0;
    while done < bytes.len() {
        client.writable().await?;
        match client.try_write(&bytes[done..]) {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    SockRef::from(client).shutdown(Shutdown::Write)?;
    let _ = timeout(
        LINGER_MAX,
        read_until(client, |_| false, Some(LINGER_QUIET)),
    )
    .await;
    Ok(())
}

/// Reads until `enough` (shown each chunk) says so, the client closes or fails, or (with
/// `quiet`) sends nothing for that long. What is read is not kept here.
async fn read_until(
    client: &TcpStream,
    mut enough: impl FnMut(&[u8]) -> bool,
    quiet: Option<Duration>,
) -> io::Result<()> {
    // On the heap: held across awaits, an array would make every relayed connection's
    // task 8 KiB larger for as long as it lives (this path is rare; the task is not).
    let mut chunk = vec![0u8; 8192];
    loop {
        match quiet {
            Some(q) => match timeout(q, client.readable()).await {
                Ok(r) => r?,
                Err(_) => return Ok(()),
            },
            None => client.readable().await?,
        }
        match client.try_read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) if enough(&chunk[..n]) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_a_whole_response_that_says_why() {
        let bytes = response("api", "the upstream 127.0.0.1:9 refused the connection");
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(body.contains("refused the connection"), "{body}");
    }
}
