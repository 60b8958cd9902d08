//! A request's head, parsed with `httparse` from the connection's read buffer: the
//! request line, the headers in their original case and order (what the event shows),
//! and what the headers say about the body and the connection (RFC 9112 sections 6 and
//! 9.3), with the framing that could smuggle a request refused.

use hyper::StatusCode;

/// The largest head read: past it the request gets 431 (or 414 when the request line
/// alone is longer).
pub const HEAD_LIMIT: usize = 64 * 1024;

/// The most headers one request may have (hyper's limit too); more get 431.
const MAX_HEADERS: usize = 100;

/// How the request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head.
#[derive(Debug)]
pub struct Head {
    pub method: String,
    /// The request target as sent.
    pub target: String,
    /// The `1` of `HTTP/1.1` or the `0` of `HTTP/1.0`.
    pub minor: u8,
    /// The headers as sent: names in their case, in their order, repeats where they were.
    pub headers: Vec<(String, String)>,
    pub framing: Framing,
    /// Whether the client wants the connection kept open after this exchange.
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits for `100 Continue` before the body.
    pub expect_continue: bool,
}

impl Head {
    /// The version as on the request line.
    pub fn version(&self) -> &'static str {
        if self.minor == 0 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        }
    }

    /// The path of the target (without the query; for a target in absolute form, the
    /// part after the authority).
    pub fn path(&self) -> &str {
        let t = self.target.as_str();
        let t = match t.as_bytes().first() {
            Some(b'/') | None => t,
            Some(_) => match t.split_once("://") {
                Some((_, rest)) => rest.find('/').map_or("/", |j| &rest[j..]),
                None => t,
            },
        };
        let end = t.bytes().position(|b| b == b'?' || b == b'#');
        &t[..end.unwrap_or(t.len())]
    }

    /// The value of the first header named `name` (in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request that cannot be served: answered with `status` (0: closed without a word) and
/// the connection closed.
#[derive(Debug)]
pub struct Malformed {
    pub status: u16,
    /// What is wrong, for the notice.
    pub detail: String,
    /// The head, when it parsed but its framing is refused.
    pub head: Option<Box<Head>>,
}

fn malformed(status: StatusCode, detail: impl Into<String>) -> Malformed {
    Malformed {
        status: status.as_u16(),
        detail: detail.into(),
        head: None,
    }
}

/// Parses the head at the start of `buf`: `Ok(None)` while it is incomplete, else the
/// head and its length in bytes.
pub fn parse(buf: &[u8]) -> Result<Option<(Head, usize)>, Malformed> {
    let mut slots = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) if len <= HEAD_LIMIT => len,
        Ok(httparse::Status::Complete(_)) => return Err(too_large(buf)),
        Ok(httparse::Status::Partial) if buf.len() > HEAD_LIMIT => return Err(too_large(buf)),
        Ok(httparse::Status::Partial) if bare_lf(buf) => return Err(bare_lf_refused()),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) if buf.starts_with(b"PRI * HTTP/2") => {
            return Err(Malformed {
                status: 0,
                detail: "an HTTP/2 connection preface; this service speaks HTTP/1.1".into(),
                head: None,
            });
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(malformed(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!("more than {MAX_HEADERS} headers"),
            ));
        }
        Err(e) => return Err(malformed(StatusCode::BAD_REQUEST, e.to_string())),
    };
    if bare_lf(&buf[..len]) {
        return Err(bare_lf_refused());
    }
    let mut head = Head {
        method: req.method.unwrap_or_default().to_owned(),
        target: req.path.unwrap_or_default().to_owned(),
        minor: req.version.unwrap_or(1),
        headers: Vec::with_capacity(req.headers.len()),
        framing: Framing::None,
        keep_alive: false,
        expect_continue: false,
    };
    let mut rules = Rules::default();
    for h in req.headers.iter() {
        rules.see(h.name, h.value);
        let value = match std::str::from_utf8(h.value) {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(h.value).into_owned(),
        };
        head.headers.push((h.name.to_owned(), value));
    }
    let checked = if head.target.is_ascii() {
        rules.finish(head.minor)
    } else {
        // httparse lets UTF-8 through; strict llhttp and RFC 3986 do not.
        Err((
            StatusCode::BAD_REQUEST,
            "bytes outside ASCII in the request target (RFC 3986: percent-encode them)",
        ))
    };
    match checked {
        Ok(framing) => head.framing = framing,
        Err((status, detail)) => {
            return Err(Malformed {
                head: Some(Box::new(head)),
                ..malformed(status, detail)
            });
        }
    }
    head.keep_alive = if head.minor == 0 {
        rules.keep_alive
    } else {
        !rules.close
    };
    head.expect_continue = rules.expect_continue && head.minor >= 1;
    Ok(Some((head, len)))
}

/// Whether a line of `head` ends in a bare LF. httparse reads one as a line's end (RFC
/// 9112 section 2.2 allows it); the lab does not, as most servers do not and as its own
/// chunked decoder does not: behind a front proxy that passes a lone LF through as data,
/// `X: y\nContent-Length: 5` would be a header the proxy never saw.
fn bare_lf(head: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', head).any(|i| i == 0 || head[i - 1] != b'\r')
}

fn bare_lf_refused() -> Malformed {
    malformed(
        StatusCode::BAD_REQUEST,
        "a bare LF in the head (its lines end in CRLF)",
    )
}

/// 414 when even the request line does not fit in [`HEAD_LIMIT`], else 431.
fn too_large(buf: &[u8]) -> Malformed {
    if !buf[..buf.len().min(HEAD_LIMIT)].contains(&b'\n') {
        malformed(
            StatusCode::URI_TOO_LONG,
            format!("a request line longer than {HEAD_LIMIT} bytes"),
        )
    } else {
        malformed(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("a head larger than {HEAD_LIMIT} bytes"),
        )
    }
}

/// What the headers say, gathered one header at a time.
#[derive(Default)]
struct Rules {
    /// The `Content-Length` value, once seen.
    length: Option<u64>,
    /// A `Content-Length` that is not one number, or two that differ.
    bad_length: Option<&'static str>,
    /// A `Transfer-Encoding` header was seen.
    te: bool,
    /// Its codings, all headers joined: the last one, and how many `chunked` there were.
    last_coding_chunked: bool,
    chunked: u32,
    /// A coding other than `chunked` (`gzip, chunked`): not decoded here.
    other_coding: bool,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    /// `Host` headers seen, and whether one of them is not a valid `host[:port]`.
    hosts: u32,
    bad_host: bool,
}

impl Rules {
    fn see(&mut self, name: &str, value: &[u8]) {
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("host") {
            self.hosts += 1;
            self.bad_host |= !valid_host(value.trim_ascii());
        } else if is("content-length") {
            // `5` or, as some intermediaries fold them, `5, 5`: one number, repeated.
            for part in value.split(|b| *b == b',') {
                match decimal(part.trim_ascii()) {
                    Some(n) if self.length.is_none_or(|l| l == n) => self.length = Some(n),
                    Some(_) => self.bad_length = Some("several different content-length values"),
                    None => self.bad_length = Some("an invalid content-length"),
                }
            }
        } else if is("transfer-encoding") {
            self.te = true;
            for coding in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                if coding.is_empty() {
                    continue;
                }
                self.last_coding_chunked = coding.eq_ignore_ascii_case(b"chunked");
                self.chunked += u32::from(self.last_coding_chunked);
                self.other_coding |= !self.last_coding_chunked;
            }
        } else if is("connection") {
            for token in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if is("expect") {
            self.expect_continue |= value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        }
    }

    /// The body's framing, or why it is refused (with 400, or 501 for a transfer coding
    /// the lab does not decode, as RFC 9112 section 6.1 says). The `Host` rule of RFC
    /// 9112 section 3.2 first: none in HTTP/1.1, several, or an invalid one get 400.
    fn finish(&self, minor: u8) -> Result<Framing, (StatusCode, &'static str)> {
        let bad = |why| Err((StatusCode::BAD_REQUEST, why));
        if self.hosts > 1 {
            return bad("several Host headers (RFC 9112 section 3.2: exactly one)");
        }
        if self.bad_host {
            return bad("an invalid Host header (RFC 9112 section 3.2: host[:port], as in a URI)");
        }
        if self.hosts == 0 && minor >= 1 {
            return bad("an HTTP/1.1 request without a Host header (RFC 9112 section 3.2)");
        }
        if let Some(why) = self.bad_length {
            return bad(why);
        }
        if self.te {
            if self.length.is_some() {
                return bad(
                    "both content-length and transfer-encoding (a request smuggling shape)",
                );
            }
            if minor == 0 {
                return bad("transfer-encoding in an HTTP/1.0 request");
            }
            if !self.last_coding_chunked || self.chunked != 1 {
                return bad("a transfer-encoding that does not end in one chunked");
            }
            if self.other_coding {
                return Err((
                    StatusCode::NOT_IMPLEMENTED,
                    "a transfer coding besides chunked, which this service does not decode",
                ));
            }
            return Ok(Framing::Chunked);
        }
        Ok(match self.length {
            None | Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
        })
    }
}

/// Whether a `Host` value is `uri-host [ ":" port ]` (RFC 3986 section 3.2): an IP literal
/// in brackets, or a name (an IPv4 address is one) of unreserved characters,
/// sub-delimiters and %-escapes, maybe empty; then maybe a colon and digits.
fn valid_host(v: &[u8]) -> bool {
    let (host_ok, rest) = match v.strip_prefix(b"[") {
        Some(literal) => match literal.iter().position(|b| *b == b']') {
            Some(end) => (ip_literal(&literal[..end]), &literal[end + 1..]),
            None => return false,
        },
        None => {
            let end = v.iter().position(|b| *b == b':').unwrap_or(v.len());
            (reg_name(&v[..end]), &v[end..])
        }
    };
    host_ok
        && match rest.split_first() {
            None => true,
            Some((b':', port)) => port.iter().all(u8::is_ascii_digit),
            Some(_) => false,
        }
}

/// An IPv6 address, or RFC 3986's `IPvFuture` (`v1.x`), between the brackets.
fn ip_literal(s: &[u8]) -> bool {
    match s.split_first() {
        Some((b'v' | b'V', rest)) => {
            let hex = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
            hex > 0
                && rest.get(hex) == Some(&b'.')
                && rest.len() > hex + 1
                && rest[hex + 1..]
                    .iter()
                    .all(|b| unreserved_or_sub_delim(*b) || *b == b':')
        }
        _ => std::str::from_utf8(s).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok()),
    }
}

/// RFC 3986's `reg-name`: unreserved characters, sub-delimiters and %-escapes.
fn reg_name(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            if !s
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else if unreserved_or_sub_delim(s[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn unreserved_or_sub_delim(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
}

/// A decimal number of 1 to 19 digits, nothing else.
fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> Head {
        let (head, len) = parse(raw.as_bytes()).unwrap().expect("a complete head");
        assert_eq!(len, raw.find("\r\n\r\n").unwrap() + 4);
        head
    }

    fn refused(raw: &str) -> Malformed {
        parse(raw.as_bytes()).expect_err("refused")
    }

    #[test]
    fn headers_keep_their_case_and_order() {
        let h =
            ok("GET /a?b HTTP/1.1\r\nHost: x\r\nX-Trace: a\r\nAccept: */*\r\nx-trace: b\r\n\r\n");
        let names: Vec<_> = h.headers.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(names, ["Host=x", "X-Trace=a", "Accept=*/*", "x-trace=b"]);
        assert_eq!(
            (h.method.as_str(), h.path(), h.version()),
            ("GET", "/a", "HTTP/1.1")
        );
        assert_eq!(h.header("X-TRACE"), Some("a"));
        assert!(h.keep_alive && h.framing == Framing::None);
    }

    #[test]
    fn an_incomplete_head_waits_for_more() {
        assert!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        assert!(parse(b"").unwrap().is_none());
    }

    #[test]
    fn framing_follows_the_headers() {
        let h =
            ok("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\ncontent-length: 5, 5\r\n\r\n");
        assert_eq!(h.framing, Framing::Length(5));
        let h = ok("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        let gzip =
            refused("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(gzip.status, 501, "{gzip:?}");
        let h = ok(
            "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nConnection: Upgrade, Close\r\n\r\n",
        );
        assert!(h.expect_continue && !h.keep_alive);
        assert!(!ok("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(ok("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn smuggling_shapes_are_refused_with_400() {
        for raw in [
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 00000000000000000001\r\n\r\n",
        ] {
            let raw = &raw.replacen("\r\n", "\r\nHost: x\r\n", 1);
            let m = refused(raw);
            assert_eq!(m.status, 400, "{raw:?}: {m:?}");
            assert!(!m.detail.contains("Host"), "{raw:?}: {m:?}");
            assert!(m.head.is_some(), "the head is kept for the event: {raw:?}");
        }
    }

    #[test]
    fn bad_and_oversized_heads_get_their_status() {
        assert_eq!(refused("GET / HTTP/1.1\r\nno header\r\n\r\n").status, 400);
        assert_eq!(refused("GET /\u{3b4} HTTP/1.1\r\n\r\n").status, 400);
        for lf in [
            "GET / HTTP/1.1\nHost: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\n\n",
            "\nGET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nX: y\nContent-Length: 5\r\n", // refused before the head ends
        ] {
            assert!(refused(lf).detail.contains("bare LF"), "{lf:?}");
        }
        assert_eq!(refused("\x16\x03\x01\x02\x00").status, 400);
        assert_eq!(refused("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").status, 0);
        let long_target = format!("GET /{} HTTP/1.1", "a".repeat(HEAD_LIMIT));
        assert_eq!(refused(&long_target).status, 414);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(HEAD_LIMIT));
        assert_eq!(refused(&big).status, 431);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")).collect();
        assert_eq!(
            refused(&format!("GET / HTTP/1.1\r\n{many}\r\n")).status,
            431
        );
    }

    #[test]
    fn the_host_rule() {
        for (raw, why) in [
            ("GET / HTTP/1.1\r\n\r\n", "without a Host"),
            ("GET / HTTP/1.1\r\nHost: a\r\nHOST: a\r\n\r\n", "several"),
            ("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "several"),
        ] {
            assert!(refused(raw).detail.contains(why), "{raw:?}");
        }
        let host = |v: &str| valid_host(v.as_bytes());
        for good in [
            "",
            "a",
            "a.example:1337",
            "127.0.0.1:80",
            "x:",
            "[::1]",
            "[2001:db8::1]:443",
            "[v7.a:b]",
            "%41b",
            "a_b~c!$&'()*+,;=",
        ] {
            assert!(host(good), "{good:?}");
        }
        for bad in [
            "a b", "a/b", "a@b", "a:8o", "a:1:2", "[::1", "[::g]", "[::1]x", "[v.a]", "%4", "é",
            "a?b", "[]", ":80:",
        ] {
            assert!(!host(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_path_leaves_the_query_and_the_authority_out() {
        let path = |t: &str| {
            ok(&format!("GET {t} HTTP/1.1\r\nHost: h\r\n\r\n"))
                .path()
                .to_owned()
        };
        assert_eq!(path("/_/echo?x=1"), "/_/echo");
        assert_eq!(path("http://h:1/_/status/201?q"), "/_/status/201");
        assert_eq!(path("http://h:1"), "/");
        assert_eq!(path("*"), "*");
    }
}
