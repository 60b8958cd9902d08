//! The HTTP/1.1 half: request streams, our verdict on the first request (head, then body
//! by `Content-Length` or chunked), and hyper's HTTP/1 server's verdict on a loopback
//! socket.

use std::convert::Infallible;
use std::error::Error;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wirelab::http::chunked::Chunked;
use wirelab::http::head::{self, Framing};

use crate::rng::Rng;

/// What became of a stream's first request.
#[derive(Debug)]
pub(crate) enum HttpVerdict {
    /// The head is refused (with why).
    HeadRefused(String),
    /// The stream ended before the request did.
    Incomplete,
    /// The head is read, its body refused (with why).
    BodyRefused(String),
    /// The whole request is read: its body.
    Body(Vec<u8>),
}

impl HttpVerdict {
    pub(crate) const HEAD_REFUSED: &str = "head refused";
    pub(crate) const INCOMPLETE: &str = "incomplete";
    pub(crate) const BODY_REFUSED: &str = "body refused";
    pub(crate) const BODY: &str = "read";

    pub(crate) fn name(&self) -> &'static str {
        match self {
            HttpVerdict::HeadRefused(_) => Self::HEAD_REFUSED,
            HttpVerdict::Incomplete => Self::INCOMPLETE,
            HttpVerdict::BodyRefused(_) => Self::BODY_REFUSED,
            HttpVerdict::Body(_) => Self::BODY,
        }
    }

    fn why(&self) -> &str {
        match self {
            HttpVerdict::HeadRefused(why) | HttpVerdict::BodyRefused(why) => why,
            _ => "",
        }
    }
}

/// Verdicts are compared by kind, bodies byte for byte; the reasons' wording differs.
impl PartialEq for HttpVerdict {
    fn eq(&self, other: &HttpVerdict) -> bool {
        match (self, other) {
            (HttpVerdict::Body(a), HttpVerdict::Body(b)) => a == b,
            _ => self.name() == other.name(),
        }
    }
}

/// The named differences (see docs/conformance.md): a disagreement that is one of them,
/// in the documented direction, or None.
pub(crate) fn http_rule(
    raw: &[u8],
    ours: &HttpVerdict,
    theirs: &HttpVerdict,
) -> Option<&'static str> {
    use HttpVerdict::*;
    let why = ours.why();
    let headers = head_fields(raw);
    let values = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    };
    match (ours, theirs) {
        // Framing that could smuggle a request: hyper lets Transfer-Encoding win over
        // Content-Length, and reads `gzip, chunked` as chunked (handing on gzip).
        (HeadRefused(_), _)
            if values("content-length").next().is_some()
                && values("transfer-encoding").next().is_some() =>
        {
            Some("content-length with transfer-encoding")
        }
        (HeadRefused(_), _) if why.contains("besides chunked") => Some("coding besides chunked"),
        // Transfer-Encoding lists: hyper looks at the last element of the last header
        // only; we take every element of every header, empty ones skipped (RFC 9110
        // 5.6.1), and want exactly one `chunked`, last.
        (HeadRefused(_), Body(_) | BodyRefused(_) | Incomplete)
            if why.contains("transfer-encoding") && hyper_chunked(values("transfer-encoding")) =>
        {
            Some("transfer-encoding list")
        }
        (Body(_) | BodyRefused(_) | Incomplete, HeadRefused(_))
            if values("transfer-encoding").next().is_some()
                && !hyper_chunked(values("transfer-encoding")) =>
        {
            Some("transfer-encoding list")
        }
        // Content-Length: we read `5, 5` (one number repeated, RFC 9110 8.6); hyper reads
        // one number per field. We bound it to 19 digits; hyper takes leading zeros.
        (Body(_) | BodyRefused(_) | Incomplete, HeadRefused(_))
            if values("content-length").any(|v| v.contains(&b',')) =>
        {
            Some("content-length list")
        }
        (HeadRefused(_), _)
            if why.contains("content-length")
                && values("content-length").any(|v| v.trim_ascii().len() > 19) =>
        {
            Some("content-length over 19 digits")
        }
        // The head rules hyper does not have: a Host header in HTTP/1.1 (RFC 9112 3.2),
        // lines ending in CRLF only, an ASCII target (RFC 3986).
        (HeadRefused(_), _) if head_minor(raw) == Some(1) && values("host").next().is_none() => {
            Some("no host in HTTP/1.1")
        }
        (HeadRefused(_), _)
            if values("host").count() > 1
                || values("host").any(|v| !v.iter().all(|b| in_authority(*b))) =>
        {
            Some("host not host[:port]")
        }
        (HeadRefused(_), _) if bare_lf_in_head(raw) => Some("bare LF in the head"),
        (HeadRefused(_), _) if !target(raw).is_ascii() => Some("target outside ASCII"),
        // hyper parses the target as a URI (`http::Uri`); we keep it as sent.
        (_, HeadRefused(_)) if !matches!(ours, HeadRefused(_)) && !target_is_uri(raw) => {
            Some("target hyper's URI parser refuses")
        }
        // Chunked bodies: we refuse what could let two parsers disagree on the body's
        // end (control bytes, a bare CR or LF, a trailer that is not a field, a size over
        // 16 digits or a line over 4 KiB, extensions outside RFC 9112's grammar), where
        // hyper skips extensions unread and leaves trailers to httparse.
        (BodyRefused(_), Body(_) | Incomplete) if STRICTER.iter().any(|w| why.contains(w)) => {
            Some("chunked: stricter lines")
        }
        // We judge a line once it has ended (or at a control byte); hyper byte by byte.
        // Once the line ends, we refuse it too.
        (Incomplete, BodyRefused(_)) => {
            let mut more = raw.to_vec();
            more.extend_from_slice(b"\r\n");
            matches!(our_verdict(&more), BodyRefused(_))
                .then_some("chunked: judged at the line's end")
        }
        _ => None,
    }
}

/// Our reasons for refusing a chunked body where hyper reads on.
const STRICTER: [&str; 7] = [
    "control byte",
    "bare CR",
    "bare LF",
    "not a field",
    "chunk-size line",
    "longer than",
    "extensions over",
];

/// hyper's reading: the last comma-separated element of the last field is `chunked`.
fn hyper_chunked<'a>(mut values: impl DoubleEndedIterator<Item = &'a [u8]>) -> bool {
    values.next_back().is_some_and(|v| {
        let last = v.rsplit(|b| *b == b',').next().unwrap_or(v);
        std::str::from_utf8(last).is_ok_and(|s| s.trim().eq_ignore_ascii_case("chunked"))
    })
}

/// The head's fields as httparse reads them (both sides use it); none if it does not.
fn head_fields(raw: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut slots = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(raw) {
        Ok(httparse::Status::Complete(_)) => req
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_vec()))
            .collect(),
        _ => Vec::new(),
    }
}

/// The request target as httparse reads it (empty if it does not).
fn target(raw: &[u8]) -> String {
    let mut slots = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut slots);
    let _ = req.parse(raw);
    req.path.unwrap_or_default().to_owned()
}

fn target_is_uri(raw: &[u8]) -> bool {
    let target = target(raw);
    target.is_empty() || target.parse::<hyper::Uri>().is_ok()
}

fn head_minor(raw: &[u8]) -> Option<u8> {
    let mut slots = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut slots);
    let _ = req.parse(raw);
    req.version
}

/// A byte a URI's authority may hold (RFC 3986 3.2: unreserved, sub-delims, `:`, `%`,
/// and the brackets of an IPv6 literal).
fn in_authority(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:%[]".contains(&b)
}

/// Whether a line of the head (as far as httparse reads it) ends in a lone LF.
fn bare_lf_in_head(raw: &[u8]) -> bool {
    let mut slots = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut slots);
    let end = match req.parse(raw) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => raw.len(),
    };
    (0..end).any(|i| raw[i] == b'\n' && (i == 0 || raw[i - 1] != b'\r'))
}

/// Our engine's reading of the first request in `raw`, followed by the end of the stream.
pub(crate) fn our_verdict(raw: &[u8]) -> HttpVerdict {
    let (head, len) = match head::parse(raw) {
        Err(m) => return HttpVerdict::HeadRefused(format!("{} {}", m.status, m.detail)),
        Ok(None) => return HttpVerdict::Incomplete,
        Ok(Some(parsed)) => parsed,
    };
    let rest = &raw[len..];
    match head.framing {
        Framing::None => HttpVerdict::Body(Vec::new()),
        Framing::Length(n) if rest.len() as u64 >= n => {
            HttpVerdict::Body(rest[..n as usize].to_vec())
        }
        Framing::Length(_) => HttpVerdict::Incomplete,
        Framing::Chunked => {
            let (mut buf, mut out) = (BytesMut::from(rest), BytesMut::new());
            match Chunked::default().decode(&mut buf, &mut out) {
                Ok(true) => HttpVerdict::Body(out.to_vec()),
                Ok(false) => HttpVerdict::Incomplete,
                Err(why) => HttpVerdict::BodyRefused(why),
            }
        }
    }
}

/// A listener for hyper's server; each case is one connection to it.
pub(crate) struct HyperServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl HyperServer {
    pub(crate) async fn start() -> HyperServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        HyperServer { listener, addr }
    }
}

/// hyper's server's reading of the first request in `raw`: the stream is written to it,
/// then the write side closed.
pub(crate) async fn hyper_verdict(server: &HyperServer, raw: &[u8]) -> HttpVerdict {
    let (client, accepted) =
        tokio::join!(TcpStream::connect(server.addr), server.listener.accept());
    let (mut client, (conn, _)) = (client.unwrap(), accepted.unwrap());
    let first: Arc<Mutex<Option<HttpVerdict>>> = Arc::default();
    let slot = first.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let slot = slot.clone();
        async move {
            let verdict = match req.into_body().collect().await {
                Ok(body) => HttpVerdict::Body(body.to_bytes().to_vec()),
                Err(e) if ended_early(&e) => HttpVerdict::Incomplete,
                Err(e) => HttpVerdict::BodyRefused(e.to_string()),
            };
            slot.lock().unwrap().get_or_insert(verdict);
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        }
    });
    // half_close: the end of the stream is not the end of the connection, so the
    // request already read is served.
    let serving = tokio::spawn(
        http1::Builder::new()
            .half_close(true)
            .serve_connection(TokioIo::new(conn), service),
    );
    // hyper may answer 400 and close before it has read everything: not an error here.
    let _ = client.write_all(raw).await;
    let _ = client.shutdown().await;
    let _ = client.read_to_end(&mut Vec::new()).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("hyper ends the connection within 5 s")
        .expect("hyper's connection task does not panic");
    if let Some(verdict) = first.lock().unwrap().take() {
        return verdict;
    }
    match ended {
        Ok(()) => HttpVerdict::Incomplete,
        Err(e) if e.is_parse() || e.is_parse_too_large() => HttpVerdict::HeadRefused(e.to_string()),
        Err(e) if e.is_incomplete_message() || ended_early(&e) => HttpVerdict::Incomplete,
        Err(e) => panic!("hyper ended the connection with {e:?}"),
    }
}

/// Whether hyper's error is the stream ending too soon.
fn ended_early(e: &hyper::Error) -> bool {
    let mut source: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return io.kind() == io::ErrorKind::UnexpectedEof;
        }
        source = s.source();
    }
    e.is_incomplete_message()
}

/// A request: half of them well formed (a `Content-Length` or a chunked body, or none),
/// the others with heads and bodies drawn from what parsers read differently, and (a
/// third of the time) byte mutations.
pub(crate) fn http_case(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(50) {
        return valid_request(rng);
    }
    if rng.chance(30) {
        // A well-formed head, a chunked body drawn from the hard cases.
        let mut raw =
            b"POST /_/echo HTTP/1.1\r\nHost: lab\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        chunked_body(rng, &mut raw, false);
        return raw;
    }
    let mut raw = Vec::new();
    let method = rng.pick(&[
        "GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "PATCH", "get", "G\x01T",
    ]);
    let target = rng.pick(&[
        "/",
        "/_/echo",
        "/a?b=c",
        "*",
        "http://h:1/x",
        "/%zz",
        "/ä",
        "/{x}",
        "/\"q\"",
        "/a|b",
        "/a^b",
        "/`",
        "/\\",
        "//",
        "h:1",
    ]);
    let version = rng.pick(&[
        "HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "HTTP/2.0",
    ]);
    let eol = if rng.chance(95) { "\r\n" } else { "\n" };
    raw.extend_from_slice(format!("{method} {target} {version}{eol}").as_bytes());
    if rng.chance(90) {
        raw.extend_from_slice(format!("Host: lab{eol}").as_bytes());
    }
    let mut chunked = false;
    for _ in 0..rng.below(4) {
        let (name, value) = match rng.below(7) {
            0 | 1 => (
                "Content-Length",
                rng.pick(&[
                    "0",
                    "5",
                    "3",
                    "12",
                    "5, 5",
                    "5,6",
                    "+5",
                    "00000000000000000005",
                    "-1",
                    "",
                    "abc",
                    "18446744073709551615",
                ]),
            ),
            2 | 3 => {
                chunked = true;
                (
                    rng.pick(&["Transfer-Encoding", "transfer-encoding"]),
                    rng.pick(&[
                        "chunked",
                        "Chunked",
                        "gzip, chunked",
                        "chunked, gzip",
                        "chunked,",
                        "chunked, chunked",
                        "",
                        " chunked ",
                        "identity",
                        ",chunked",
                    ]),
                )
            }
            4 => (
                "Connection",
                rng.pick(&["close", "keep-alive", "Upgrade, close"]),
            ),
            5 => ("Expect", "100-continue"),
            _ => *rng.pick(&[
                &("X-A", "1"),
                &("X-B", "a\tb"),
                &("X-C", "\u{ff}"),
                &("X-D", "\x01"),
                &("Bad Name", "v"),
                &(" X-F", "v"),
            ]),
        };
        raw.extend_from_slice(format!("{name}: {value}{eol}").as_bytes());
    }
    raw.extend_from_slice(eol.as_bytes());
    if chunked || rng.chance(10) {
        chunked_body(rng, &mut raw, false);
    } else {
        raw.extend((0..rng.below(14)).map(|_| b'a' + rng.below(26) as u8));
    }
    if rng.chance(33) {
        rng.mutate(&mut raw);
    }
    raw
}

fn valid_request(rng: &mut Rng) -> Vec<u8> {
    let method = rng.pick(&["GET", "POST", "PUT", "DELETE"]);
    let target = rng.pick(&["/", "/_/echo", "/a?b=c", "http://h:1/x", "/_/status/201"]);
    let version = rng.pick(&["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]);
    let mut raw = format!("{method} {target} {version}\r\nHost: lab\r\n").into_bytes();
    let body: Vec<u8> = (0..rng.below(30))
        .map(|_| b'a' + rng.below(26) as u8)
        .collect();
    match rng.below(3) {
        0 if version == "HTTP/1.1" => {
            raw.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            chunked_body(rng, &mut raw, true);
        }
        1 => {
            raw.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            raw.extend_from_slice(&body);
        }
        _ => raw.extend_from_slice(b"\r\n"),
    }
    if rng.chance(30) {
        // A stream that ends early.
        raw.truncate(rng.below(raw.len()));
    }
    raw
}

fn chunked_body(rng: &mut Rng, raw: &mut Vec<u8>, valid: bool) {
    for _ in 0..rng.below(4) {
        let size = rng.below(20);
        if valid {
            raw.extend_from_slice(format!("{size:x}\r\n").as_bytes());
            raw.extend((0..size).map(|_| b'a' + rng.below(26) as u8));
            raw.extend_from_slice(b"\r\n");
            continue;
        }
        let digits = match rng.below(10) {
            0 => format!("{size:X}"),
            1 => format!("{size:020x}"),
            2 => format!("{size:016x}"),
            _ => format!("{size:x}"),
        };
        let ext = rng.pick(&[
            "", "", "", ";a=b", " ;a", ";a=\"q\"", ";", "; a = b", ";a=\x01", " ", ";a\nb",
        ]);
        raw.extend_from_slice(format!("{digits}{ext}\r\n").as_bytes());
        raw.extend((0..size).map(|_| b'a' + rng.below(26) as u8));
        raw.extend_from_slice(rng.pick(&[&b"\r\n"[..], b"\r\n", b"\r\n", b"\n", b"xx"]));
    }
    raw.extend_from_slice(b"0\r\n");
    for _ in 0..rng.below(3) {
        if valid {
            raw.extend_from_slice(b"X-Sum: 1\r\n");
            continue;
        }
        let trailer: &[u8] = rng.pick(&[
            &b"X-T: 1\r\n"[..],
            b"bad line\r\n",
            b"X: a\nY: b\r\n",
            b"X: \x02\r\n",
            b": v\r\n",
        ]);
        raw.extend_from_slice(trailer);
    }
    raw.extend_from_slice(b"\r\n");
    if rng.chance(20) {
        raw.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
    }
}
