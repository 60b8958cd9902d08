//! An HTTP exchange told the way `curl -v` tells it (`> ` request lines, `< ` response
//! lines, then the bodies), and as a `curl` command that sends the same request again.

use std::fmt::Write;

use wirelab_shared::{HttpExchange, Payload};

use crate::fmt;

/// The reason phrase for a status code (empty when unknown).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        418 => "I'm a teapot",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// The value of the first header named `name` (case-insensitive).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn body_text(out: &mut String, body: &Payload, size: u64) {
    if size == 0 && body.data.is_empty() {
        return;
    }
    if body.is_text() {
        out.push_str(&body.data);
        if !body.data.ends_with('\n') {
            out.push('\n');
        }
    } else {
        let _ = writeln!(
            out,
            "[{} of binary data]",
            fmt::size(body.bytes().len() as u64)
        );
    }
    if body.cut > 0 {
        let _ = writeln!(out, "[{} more not captured]", fmt::size(body.cut));
    }
}

/// The exchange as `curl -v` prints it.
pub fn verbose(x: &HttpExchange) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "> {} {} {}", x.method, x.target, x.version);
    for (k, v) in &x.headers {
        let _ = writeln!(out, "> {k}: {v}");
    }
    out.push_str(">\n");
    body_text(&mut out, &x.body, x.body_size);
    let _ = writeln!(out, "< {} {} {}", x.version, x.status, reason(x.status));
    for (k, v) in &x.resp_headers {
        let _ = writeln!(out, "< {k}: {v}");
    }
    out.push_str("<\n");
    body_text(&mut out, &x.resp_body, x.resp_size);
    out
}

/// Quotes a word for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The URL the request went to: `http://` + its Host header (or `fallback_host`) + target.
pub fn url(x: &HttpExchange, fallback_host: &str) -> String {
    let host = header(&x.headers, "host").unwrap_or(fallback_host);
    if x.target.starts_with("http://") || x.target.starts_with("https://") {
        x.target.clone()
    } else {
        format!("http://{host}{}", x.target)
    }
}

/// A `curl` command that sends the same request.
pub fn command(x: &HttpExchange, fallback_host: &str) -> String {
    let mut parts: Vec<String> = vec!["curl".into(), "-v".into()];
    if x.version == "HTTP/1.0" {
        parts.push("--http1.0".into());
    }
    let has_body = !x.body.data.is_empty();
    match x.method.as_str() {
        "GET" if !has_body => {}
        "HEAD" => parts.push("--head".into()),
        "POST" if has_body => {}
        m => {
            parts.push("-X".into());
            parts.push(shell_quote(m));
        }
    }
    parts.push(shell_quote(&url(x, fallback_host)));
    for (k, v) in &x.headers {
        let skip = ["host", "content-length", "transfer-encoding", "connection"];
        if skip.iter().any(|s| k.eq_ignore_ascii_case(s)) {
            continue;
        }
        parts.push("-H".into());
        parts.push(shell_quote(&format!("{k}: {v}")));
    }
    let mut prefix = String::new();
    if has_body {
        parts.push("--data-binary".into());
        if x.body.is_text() {
            parts.push(shell_quote(&x.body.data));
        } else {
            let escaped: String = x
                .body
                .bytes()
                .iter()
                .map(|b| format!("\\x{b:02x}"))
                .collect();
            prefix = format!("printf '%b' '{escaped}' | ");
            parts.push("@-".into());
        }
    }
    format!("{prefix}{}", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get() -> HttpExchange {
        HttpExchange {
            method: "GET".into(),
            target: "/".into(),
            version: "HTTP/1.1".into(),
            headers: vec![
                ("Host".into(), "127.0.0.1:1337".into()),
                ("User-Agent".into(), "curl/8.5.0".into()),
                ("Accept".into(), "*/*".into()),
            ],
            status: 200,
            resp_headers: vec![
                ("content-type".into(), "text/plain".into()),
                ("content-length".into(), "12".into()),
            ],
            resp_body: Payload::capture(b"Hello World\n", 1024),
            resp_size: 12,
            ..Default::default()
        }
    }

    #[test]
    fn verbose_reads_like_curl() {
        assert_eq!(
            verbose(&get()),
            "> GET / HTTP/1.1\n> Host: 127.0.0.1:1337\n> User-Agent: curl/8.5.0\n> Accept: */*\n>\n\
             < HTTP/1.1 200 OK\n< content-type: text/plain\n< content-length: 12\n<\nHello World\n"
        );
        let mut x = get();
        x.resp_body = Payload::capture(&[0xff; 10], 4);
        x.resp_size = 10;
        assert!(verbose(&x).ends_with("<\n[4 B of binary data]\n[6 B more not captured]\n"));
    }

    #[test]
    fn commands_quote_for_the_shell() {
        assert_eq!(
            command(&get(), "x"),
            "curl -v http://127.0.0.1:1337/ -H 'User-Agent: curl/8.5.0' -H 'Accept: */*'"
        );
        let mut x = get();
        x.method = "POST".into();
        x.target = "/_/echo?a=1&b=2".into();
        x.body = Payload::capture(b"it's", 64);
        x.headers = vec![];
        assert_eq!(
            command(&x, "127.0.0.1:1337"),
            r"curl -v 'http://127.0.0.1:1337/_/echo?a=1&b=2' --data-binary 'it'\''s'"
        );
        x.method = "PUT".into();
        x.body = Payload::capture(&[0, 0xff], 64);
        assert_eq!(
            command(&x, "h"),
            r"printf '%b' '\x00\xff' | curl -v -X PUT 'http://h/_/echo?a=1&b=2' --data-binary @-"
        );
        assert_eq!(shell_quote(""), "''");
        assert_eq!(reason(404), "Not Found");
    }
}
