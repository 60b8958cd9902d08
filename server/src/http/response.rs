//! The response side of an exchange: what it carries ([`Content`]), and its head written
//! straight into the connection's output buffer, with the same headers as text pairs for
//! the event (`Date` formatted once a second per thread).

use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::StatusCode;
use wirelab_shared::Payload;

/// Bytes of the pattern `/_/bytes/{n}` sends, one write at a time.
pub const CHUNK: usize = 64 * 1024;

/// The pattern `/_/bytes/{n}` repeats: the alphabet and a newline, readable in a dump.
pub fn pattern() -> &'static Bytes {
    static PATTERN: OnceLock<Bytes> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let line = b"abcdefghijklmnopqrstuvwxyz\n";
        Bytes::from(
            line.iter()
                .copied()
                .cycle()
                .take(CHUNK)
                .collect::<Vec<u8>>(),
        )
    })
}

/// What a response carries.
pub enum Content {
    /// Bytes known in advance (most answers).
    Full(Bytes),
    /// `n` bytes of the pattern, sent a chunk at a time without allocating them.
    Pattern(u64),
}

impl Content {
    /// The body's exact size.
    pub fn len(&self) -> u64 {
        match self {
            Content::Full(b) => b.len() as u64,
            Content::Pattern(n) => *n,
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `snaplen` bytes, for the event.
    pub fn capture(&self, snaplen: usize) -> Payload {
        match self {
            Content::Full(b) => Payload::capture(b, snaplen),
            Content::Pattern(n) => {
                let kept = (*n).min(snaplen as u64) as usize;
                let mut p = Payload::capture(&pattern()[..kept.min(CHUNK)], snaplen);
                p.cut = n - p.data.len() as u64;
                p
            }
        }
    }
}

thread_local! {
    /// The `Date` value for the current second, formatted once a second per thread.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Calls `f` with the `Date` header's value for now (RFC 9110's IMF-fixdate).
pub fn with_date<R>(f: impl FnOnce(&str) -> R) -> R {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != secs {
            d.1 = httpdate::fmt_http_date(now);
            d.0 = secs;
        }
        f(&d.1)
    })
}

/// The `Date` header's value for now, as text.
pub fn http_date() -> String {
    with_date(str::to_owned)
}

/// Whether a response with `status` carries no body and no `content-length` (RFC 9110
/// sections 8.6 and 15.3.5: 1xx and 204 never do; a 304's length would describe another
/// response).
fn bodiless(status: StatusCode) -> bool {
    status.is_informational() || status == StatusCode::NO_CONTENT || status.as_u16() == 304
}

/// A response head as written, for the event, so it shows exactly what was sent.
pub struct Sent {
    /// The status line's version.
    pub version: &'static str,
    /// The status line's reason phrase.
    pub reason: &'static str,
    /// The headers as text pairs, in order.
    pub headers: Vec<(String, String)>,
}

/// The version every answer's status line carries: the service speaks HTTP/1.1 (an
/// HTTP/1.0 client is answered in 1.1 too, as RFC 9110 section 6.2 allows).
const VERSION: &str = "HTTP/1.1";

/// Writes `HTTP/1.1 <code> <reason>` into `out`; returns the reason.
fn status_line(out: &mut Vec<u8>, status: StatusCode) -> &'static str {
    let reason = status.canonical_reason().unwrap_or("");
    out.extend_from_slice(VERSION.as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    reason
}

/// Writes the status line and headers of a response into `out`: in the seed's order
/// (content type, date, connection) with `content-length` last where Node says
/// `Transfer-Encoding: chunked`.
pub fn write_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    content_type: &str,
    len: u64,
    keep_alive: bool,
) -> Sent {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let reason = status_line(out, status);
    let mut pairs = Vec::with_capacity(4);
    let mut header = |name: &'static str, value: &str| {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        pairs.push((name.to_owned(), value.to_owned()));
    };
    // In the seed's case: its code names `content-type` in lower case and Node writes its
    // own headers capitalized, so `curl -v` prints what the article shows.
    header("content-type", content_type);
    with_date(|date| header("Date", date));
    header("Connection", connection);
    if !bodiless(status) {
        header("Content-Length", itoa::Buffer::new().format(len));
    }
    out.extend_from_slice(b"\r\n\r\n");
    Sent {
        version: VERSION,
        reason,
        headers: pairs,
    }
}

/// Writes the answer to a request that cannot be served (400, 414, 431, 501): its reason
/// as a line of text, and the connection closes after it. Returns the head as sent, for
/// the event, and the body.
pub fn write_refusal(out: &mut Vec<u8>, status: StatusCode, why: &str) -> (Sent, String) {
    let body = format!("the request was refused: {why}\n");
    let sent = write_head(out, status, "text/plain", body.len() as u64, false);
    out.extend_from_slice(body.as_bytes());
    (sent, body)
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_content_has_its_exact_size_and_a_cut_capture() {
        let c = Content::Pattern(200_000);
        assert_eq!(c.len(), 200_000);
        let p = c.capture(10);
        assert_eq!((p.data.as_str(), p.cut), ("abcdefghij", 199_990));
        let small = Content::Pattern(3).capture(10);
        assert_eq!((small.data.as_str(), small.cut), ("abc", 0));
    }

    /// What `sent` says was written: its status line, then its headers.
    fn as_sent(status: u16, sent: &Sent) -> String {
        let mut text = format!("{} {status} {}", sent.version, sent.reason);
        for (k, v) in &sent.headers {
            text.push_str(&format!("\r\n{k}: {v}"));
        }
        text + "\r\n\r\n"
    }

    #[test]
    fn the_head_is_written_as_the_event_says_in_the_seeds_order() {
        let mut out = Vec::new();
        let sent = write_head(&mut out, StatusCode::OK, "text/plain", 12, true);
        let names: Vec<_> = sent.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["content-type", "Date", "Connection", "Content-Length"]
        );
        assert!(sent.headers[1].1.ends_with(" GMT"), "{}", sent.headers[1].1);
        assert_eq!((sent.version, sent.reason), ("HTTP/1.1", "OK"));
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, as_sent(200, &sent), "the event says what is sent");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));

        let mut out = Vec::new();
        let sent = write_head(&mut out, StatusCode::NO_CONTENT, "x", 0, false);
        assert_eq!(
            sent.headers.len(),
            3,
            "no content-length on a 204: {:?}",
            sent.headers
        );
        assert_eq!(sent.headers[2].1, "close");
        assert!(out.starts_with(b"HTTP/1.1 204 No Content\r\n"));

        let status = StatusCode::UNPROCESSABLE_ENTITY;
        let mut out = Vec::new();
        let sent = write_head(&mut out, status, "x", u64::MAX, true);
        assert_eq!(sent.reason, "Unprocessable Entity");
        assert_eq!(sent.headers[3].1, "18446744073709551615");
        assert_eq!(String::from_utf8(out).unwrap(), as_sent(422, &sent));
    }

    #[test]
    fn a_refusal_is_written_as_the_event_says() {
        let mut out = Vec::new();
        let status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        let (sent, body) = write_refusal(&mut out, status, "too big");
        assert_eq!(sent.reason, "Request Header Fields Too Large");
        assert_eq!(body, "the request was refused: too big\n");
        assert_eq!(String::from_utf8(out).unwrap(), as_sent(431, &sent) + &body);
    }
}
