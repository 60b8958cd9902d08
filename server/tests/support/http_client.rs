//! An HTTP/1.1 client by hand for the HTTP service's tests: responses read off a raw
//! socket (keeping it open), and a dashboard client that keeps the exchanges it sees.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wirelab_shared::{Command, CommandKind, EventKind, HttpExchange, ServerMsg};

use super::lab::{self, Client};

/// One response read off a socket.
#[derive(Debug)]
pub(crate) struct Resp {
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response with a `content-length` body from `s` (leaving the socket open).
pub(crate) async fn read_resp(s: &mut TcpStream, buf: &mut Vec<u8>) -> Resp {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("a response within 5 s")
            .unwrap();
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.to_owned(), v.trim().to_owned())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed inside a body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Resp {
        status_line,
        headers,
        body,
    }
}

/// Sends `raw` on a new connection and reads one response; returns it and the socket.
pub(crate) async fn exchange(addr: SocketAddr, raw: &[u8]) -> (Resp, TcpStream) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let resp = read_resp(&mut s, &mut Vec::new()).await;
    (resp, s)
}

/// A dashboard client that keeps every exchange it reads, so one batch carrying several
/// exchanges (or an exchange arriving before an ack) loses none of them.
pub(crate) struct Inspector {
    pub client: Client,
    pub kept: Vec<HttpExchange>,
}

impl Inspector {
    pub(crate) async fn connect(lab: &lab::TestLab) -> Inspector {
        let mut client = Client::connect(lab, "").await;
        client.handshake().await;
        Inspector {
            client,
            kept: Vec::new(),
        }
    }

    /// Keeps the exchanges in `msg`.
    fn keep(&mut self, msg: ServerMsg) -> ServerMsg {
        if let ServerMsg::Events { events } = &msg {
            for e in events {
                if let EventKind::Http(x) = &e.kind {
                    self.kept.push((**x).clone());
                }
            }
        }
        msg
    }

    /// The first exchange `pred` accepts (within 5 s of the last message).
    pub(crate) async fn wait(&mut self, pred: impl Fn(&HttpExchange) -> bool) -> HttpExchange {
        loop {
            if let Some(i) = self.kept.iter().position(&pred) {
                return self.kept.remove(i);
            }
            let msg = self.client.next().await;
            self.keep(msg);
        }
    }

    /// The exchange whose target is `target`.
    pub(crate) async fn target(&mut self, target: &str) -> HttpExchange {
        self.wait(|x| x.target == target).await
    }

    /// Sends command `kind` as `id` and waits for its ack's text or its error.
    pub(crate) async fn command(&mut self, id: u64, kind: CommandKind) -> Result<String, String> {
        let text = serde_json::to_string(&Command { id, kind }).unwrap();
        self.client.send_text(&text).await;
        loop {
            let msg = self.client.next().await;
            match self.keep(msg) {
                ServerMsg::Ack { id: i, detail } if i == id => {
                    return Ok(detail.unwrap_or_default());
                }
                ServerMsg::Error {
                    id: Some(i),
                    message,
                } if i == id => return Err(message),
                _ => {}
            }
        }
    }
}
