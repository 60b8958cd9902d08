//! An HTTP exchange told the way `curl -v` tells it (`> ` request lines, `< ` response
//! lines, then the bodies), and as a `curl` command that sends the same request again.

use std::fmt::Write;

use wirelab_shared::{HttpExchange, Payload};

use crate::fmt;

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
    if x.status == 0 {
        out.push_str("* Empty reply from server\n");
        return out;
    }
    // The status line as sent (an empty reason leaves its space, as on the wire).
    let _ = writeln!(out, "< {} {} {}", x.resp_version, x.status, x.resp_reason);
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
    parts.push(shell_quote(&x.url(fallback_host)));
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
            resp_version: "HTTP/1.1".into(),
            resp_reason: "OK".into(),
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
    fn the_status_line_is_the_one_sent() {
        // An HTTP/1.0 request answered in 1.1, with a reason no table in the page knew.
        let mut x = get();
        x.version = "HTTP/1.0".into();
        (x.status, x.resp_reason) = (422, "Unprocessable Entity".into());
        let text = verbose(&x);
        assert!(text.starts_with("> GET / HTTP/1.0\n"), "{text}");
        assert!(
            text.contains("\n< HTTP/1.1 422 Unprocessable Entity\n"),
            "{text}"
        );
        // No answer at all: curl's words for it.
        x.status = 0;
        assert!(verbose(&x).ends_with(">\n* Empty reply from server\n"));
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
    }
}
