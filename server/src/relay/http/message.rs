//! The two heads an `http` proxy reads, a request's (with the HTTP service's own parser,
//! [`crate::http::head`]) and a response's, and the body that follows either of them:
//! how it is delimited, read as it passes, its first `--snaplen` bytes kept.

use bytes::BytesMut;
use wirelab_shared::Payload;

use crate::http::chunked::Chunked;
use crate::http::head::{Framing, HEAD_LIMIT};

/// The most header fields a response may have to be followed (hyper's limit too).
const MAX_HEADERS: usize = 100;

/// A response head as the upstream sent it.
#[derive(Debug)]
pub struct ResponseHead {
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: &'static str,
    pub status: u16,
    /// The reason phrase as sent.
    pub reason: String,
    /// Header fields in their case and order.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// The value of the first field named `name`, in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        wirelab_shared::event::header(&self.headers, name)
    }

    /// How the body after this head is delimited (RFC 9112 section 6.3), for a response
    /// to `method`. `None`: it runs until the upstream closes.
    pub fn framing(&self, method: &str) -> Option<Framing> {
        let status = self.status;
        if method.eq_ignore_ascii_case("HEAD")
            || (100..200).contains(&status)
            || status == 204
            || status == 304
        {
            return Some(Framing::None);
        }
        if let Some(te) = self.header("transfer-encoding") {
            let last = te.rsplit(',').next().unwrap_or("").trim();
            return last
                .eq_ignore_ascii_case("chunked")
                .then_some(Framing::Chunked);
        }
        match self.header("content-length") {
            Some(n) => n.trim().parse().ok().map(Framing::Length),
            None => None,
        }
    }
}

/// Parses the response head at the start of `buf`: `Ok(None)` while it is incomplete,
/// else the head and its length; the error says why these bytes are no response.
pub fn parse_response(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, String> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= HEAD_LIMIT => len,
        Ok(httparse::Status::Partial) if buf.len() <= HEAD_LIMIT => return Ok(None),
        Ok(_) => return Err(format!("a response head larger than {HEAD_LIMIT} bytes")),
        Err(e) => return Err(format!("not an HTTP/1.x response ({e})")),
    };
    let head = ResponseHead {
        version: if resp.version == Some(0) {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        },
        status: resp.code.unwrap_or_default(),
        reason: resp.reason.unwrap_or_default().to_owned(),
        headers: resp
            .headers
            .iter()
            .map(|h| {
                let value = String::from_utf8_lossy(h.value).into_owned();
                (h.name.to_owned(), value)
            })
            .collect(),
    };
    Ok(Some((head, len)))
}

/// A body being read as it passes: where it ends, how much of it went by, what of it
/// is kept.
#[derive(Debug)]
pub struct Body {
    /// How much is left, or how to find its end.
    left: Left,
    /// Body bytes so far (decoded, for a chunked body).
    pub size: u64,
    /// Their first bytes: `snaplen` and a few more, so that a capture cut inside a UTF-8
    /// character still reads as text.
    kept: Vec<u8>,
    snaplen: usize,
}

#[derive(Debug)]
enum Left {
    /// This many bytes.
    Length(u64),
    /// Chunks, until the last one and its trailers.
    Chunked(Box<Chunked>),
    /// Everything until the sender closes.
    UntilClose,
}

impl Body {
    /// A body delimited by `framing` (`None`: by the sender's close).
    pub fn new(framing: Option<Framing>, snaplen: usize) -> Body {
        let left = match framing {
            Some(Framing::None) => Left::Length(0),
            Some(Framing::Length(n)) => Left::Length(n),
            Some(Framing::Chunked) => Left::Chunked(Box::default()),
            None => Left::UntilClose,
        };
        Body {
            left,
            size: 0,
            kept: Vec::new(),
            snaplen,
        }
    }

    /// Whether it has ended.
    pub fn done(&self) -> bool {
        matches!(self.left, Left::Length(0))
    }

    /// Reads what of `buf` belongs to the body (consuming it); `Ok(true)` once it ended.
    pub fn feed(&mut self, buf: &mut BytesMut) -> Result<bool, String> {
        match &mut self.left {
            Left::Length(n) => {
                let take = (*n).min(buf.len() as u64) as usize;
                *n -= take as u64;
                let part = buf.split_to(take);
                self.keep(&part);
            }
            Left::UntilClose => {
                let part = buf.split();
                self.keep(&part);
            }
            Left::Chunked(chunked) => {
                let mut out = BytesMut::new();
                let ended = chunked
                    .decode(buf, &mut out)
                    .map_err(|e| format!("a chunked body the lab cannot follow: {e}"))?;
                if ended {
                    self.left = Left::Length(0);
                }
                self.keep(&out);
            }
        }
        Ok(self.done())
    }

    /// The sender closed: a body read until the close has ended; another has not.
    pub fn closed(&mut self) -> bool {
        if matches!(self.left, Left::UntilClose) {
            self.left = Left::Length(0);
        }
        self.done()
    }

    /// What was kept, saying how much was not.
    pub fn payload(&self) -> Payload {
        let mut p = Payload::capture(&self.kept, self.snaplen);
        p.cut = self.size - (self.kept.len() as u64 - p.cut);
        p
    }

    fn keep(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        let room = (self.snaplen + 4).saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&bytes[..room.min(bytes.len())]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_head_and_its_framing() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nX-A: b\r\n\r\nrest";
        let (head, len) = parse_response(raw).unwrap().unwrap();
        assert_eq!(&raw[len..], b"rest");
        assert_eq!((head.status, head.reason.as_str()), (200, "OK"));
        assert_eq!(head.framing("GET"), Some(Framing::Chunked));
        assert_eq!(head.framing("HEAD"), Some(Framing::None));
        let (head, _) = parse_response(b"HTTP/1.0 404 Nope\r\ncontent-length: 7\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (head.version, head.framing("GET")),
            ("HTTP/1.0", Some(Framing::Length(7)))
        );
        let (head, _) = parse_response(b"HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.framing("GET"), None, "no length: until the close");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nX").unwrap().is_none());
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n").is_err());
    }

    #[test]
    fn bodies_end_where_their_framing_says_and_keep_their_start() {
        let mut body = Body::new(Some(Framing::Length(5)), 3);
        let mut buf = BytesMut::from(&b"hel"[..]);
        assert!(!body.feed(&mut buf).unwrap());
        let mut buf = BytesMut::from(&b"loNEXT"[..]);
        assert!(body.feed(&mut buf).unwrap());
        assert_eq!(&buf[..], b"NEXT");
        let p = body.payload();
        assert_eq!((p.data.as_str(), p.cut, body.size), ("hel", 2, 5));

        let mut body = Body::new(Some(Framing::Chunked), 64);
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\nGET"[..]);
        assert!(body.feed(&mut buf).unwrap());
        assert_eq!((&buf[..], body.size), (&b"GET"[..], 3));
        let mut bad = Body::new(Some(Framing::Chunked), 64);
        assert!(bad.feed(&mut BytesMut::from(&b"zz\r\n"[..])).is_err());

        let mut body = Body::new(None, 64);
        assert!(!body.feed(&mut BytesMut::from(&b"all of it"[..])).unwrap());
        assert!(body.closed());
        assert_eq!(body.payload().data, "all of it");
    }
}
