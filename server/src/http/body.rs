//! The response side of an exchange: its body, which publishes the exchange when hyper is
//! done with it, and its headers.

use std::cell::RefCell;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use wirelab_shared::{EventKind, HttpExchange, Payload};

use super::serve::ConnCtx;

/// Bytes of the pattern `/_/bytes/{n}` sends, one frame at a time.
const CHUNK: usize = 64 * 1024;

/// The pattern `/_/bytes/{n}` repeats: the alphabet and a newline, readable in a dump.
fn pattern() -> &'static Bytes {
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

/// An exchange waiting for its body to be sent.
struct Pending {
    /// Its connection (which counts it finished), and the lab to publish it to.
    ctx: Arc<ConnCtx>,
    /// Everything but `total_us`.
    exchange: Box<HttpExchange>,
    /// When the request arrived.
    start: Instant,
}

/// The response body hyper sends. When hyper drops it (the last byte handed to the
/// socket, or the connection gone) the exchange is published with its total time: one
/// event per exchange, and no task or channel per request.
pub struct Reply {
    /// What is left to send.
    content: Content,
    /// The exchange to publish on drop (`None` for bodies not tied to one).
    pending: Option<Pending>,
}

impl Reply {
    /// A body that publishes `exchange` once it has been sent.
    pub fn new(
        content: Content,
        ctx: Arc<ConnCtx>,
        exchange: HttpExchange,
        start: Instant,
    ) -> Reply {
        Reply {
            content,
            pending: Some(Pending {
                ctx,
                exchange: Box::new(exchange),
                start,
            }),
        }
    }
}

impl Body for Reply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let chunk = match &mut self.content {
            Content::Full(b) if !b.is_empty() => std::mem::take(b),
            Content::Pattern(left) if *left > 0 => {
                let n = (*left).min(CHUNK as u64);
                *left -= n;
                pattern().slice(..n as usize)
            }
            _ => return Poll::Ready(None),
        };
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.content.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.content.len())
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            let mut exchange = p.exchange;
            exchange.total_us = p.start.elapsed().as_micros() as u64;
            p.ctx.app.hub.publish(EventKind::Http(exchange));
            p.ctx.finished.fetch_add(1, Ordering::Relaxed);
        }
    }
}

thread_local! {
    /// The `Date` value for the current second, formatted once a second per thread.
    static DATE: RefCell<(u64, HeaderValue)> =
        const { RefCell::new((0, HeaderValue::from_static(""))) };
}

/// The `Date` header for now (RFC 9110's IMF-fixdate).
pub fn date_value() -> HeaderValue {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != secs {
            let text = httpdate::fmt_http_date(now);
            d.1 = HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""));
            d.0 = secs;
        }
        d.1.clone()
    })
}

/// The `Date` header for now, as text.
pub fn http_date() -> String {
    String::from_utf8_lossy(date_value().as_bytes()).into_owned()
}

/// The response headers, in the seed's order (content type, date, connection) with
/// `content-length` last where Node says `Transfer-Encoding: chunked`; and the same as
/// text pairs for the event. Setting `date` ourselves lets the event show the exact value
/// hyper sends (hyper adds its own only when there is none).
pub fn head(
    content_type: HeaderValue,
    len: u64,
    keep_alive: bool,
) -> (HeaderMap, Vec<(String, String)>) {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let date = date_value();
    let length = HeaderValue::from(len);
    // The pairs straight from the values (what `pairs(&map)` gives, without walking it).
    let text = vec![
        ("content-type".to_owned(), value_text(&content_type)),
        ("date".to_owned(), value_text(&date)),
        ("connection".to_owned(), connection.to_owned()),
        ("content-length".to_owned(), value_text(&length)),
    ];
    let mut map = HeaderMap::with_capacity(4);
    map.insert(header::CONTENT_TYPE, content_type);
    map.insert(header::DATE, date);
    map.insert(header::CONNECTION, HeaderValue::from_static(connection));
    map.insert(header::CONTENT_LENGTH, length);
    (map, text)
}

/// A header value as text (bytes that are not UTF-8 replaced).
fn value_text(v: &HeaderValue) -> String {
    match v.to_str() {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
    }
}

/// Headers as text pairs, in `HeaderMap` order (repeats kept).
pub fn pairs(map: &HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, v)| (k.as_str().to_owned(), value_text(v)))
        .collect()
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
    fn head_lists_what_is_sent_in_the_seeds_order() {
        let (map, pairs) = head(HeaderValue::from_static("text/plain"), 12, true);
        let names: Vec<_> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["content-type", "date", "connection", "content-length"]
        );
        assert_eq!(map[header::CONTENT_LENGTH], "12");
        assert_eq!(pairs[2].1, "keep-alive");
        assert!(pairs[1].1.ends_with(" GMT"), "{}", pairs[1].1);
        assert_eq!(
            head(HeaderValue::from_static("x"), 0, false).1[2].1,
            "close"
        );
        assert_eq!(pairs, super::pairs(&map), "the pairs are what is sent");
    }
}
