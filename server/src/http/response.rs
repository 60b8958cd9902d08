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

/// Writes the status line and headers of a response into `out`: in the seed's order
/// (content type, date, connection) with `content-length` last where Node says
/// `Transfer-Encoding: chunked`. Returns the same headers as text pairs for the event, so
/// it shows exactly what was sent.
pub fn write_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    content_type: &str,
    len: u64,
    keep_alive: bool,
) -> Vec<(String, String)> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
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
        let mut digits = [0u8; 20];
        header("Content-Length", decimal(len, &mut digits));
    }
    out.extend_from_slice(b"\r\n\r\n");
    pairs
}

/// Writes the answer to a request that cannot be served (400, 414, 431, 501): its reason
/// as a line of text, and the connection closes after it. Returns the headers as text
/// pairs for the event, and the body.
pub fn write_refusal(
    out: &mut Vec<u8>,
    status: StatusCode,
    why: &str,
) -> (Vec<(String, String)>, String) {
    let body = format!("the request was refused: {why}\n");
    let pairs = write_head(out, status, "text/plain", body.len() as u64, false);
    out.extend_from_slice(body.as_bytes());
    (pairs, body)
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// `n` in decimal, in `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

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

    #[test]
    fn the_head_is_written_as_the_pairs_say_in_the_seeds_order() {
        let mut out = Vec::new();
        let pairs = write_head(&mut out, StatusCode::OK, "text/plain", 12, true);
        let names: Vec<_> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["content-type", "Date", "Connection", "Content-Length"]
        );
        assert!(pairs[1].1.ends_with(" GMT"), "{}", pairs[1].1);
        let mut want = String::from("HTTP/1.1 200 OK");
        for (k, v) in &pairs {
            want.push_str(&format!("\r\n{k}: {v}"));
        }
        want.push_str("\r\n\r\n");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            want,
            "the pairs are what is sent"
        );
        let mut out = Vec::new();
        let pairs = write_head(&mut out, StatusCode::NO_CONTENT, "x", 0, false);
        assert_eq!(pairs.len(), 3, "no content-length on a 204: {pairs:?}");
        assert_eq!(pairs[2].1, "close");
        assert!(out.starts_with(b"HTTP/1.1 204 No Content\r\n"));
    }

    #[test]
    fn lengths_are_written_in_decimal() {
        let mut b = [0u8; 20];
        assert_eq!(decimal(0, &mut b), "0");
        assert_eq!(decimal(12, &mut b), "12");
        assert_eq!(decimal(u64::MAX, &mut b), "18446744073709551615");
    }
}
