//! What the service answers. Every target gets the seed's `Hello World\n`, except the
//! helpers under `/_/`, a prefix no ordinary page uses. Each helper is capped, so no
//! request can pin the server.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use tokio_util::sync::CancellationToken;

use super::head::Head;
use super::response::Content;

/// `/_/delay/{ms}` waits at most this long.
pub const MAX_DELAY_MS: u64 = 10_000;
/// `/_/bytes/{n}` sends at most this many bytes.
pub const MAX_BYTES: u64 = 10 * 1024 * 1024;

/// The seed's answer.
pub const HELLO: &[u8] = b"Hello World\n";

const INDEX: &str = "wirelab's HTTP helpers (every other target answers Hello World):
  /_/status/{code}  answer with that status (200-599)
  /_/delay/{ms}     wait, then answer (at most 10000 ms)
  /_/echo           send the request body back, with its content-type
  /_/bytes/{n}      send n bytes of text (at most 10 MiB)
  /_/headers        list the request headers as the server received them
";

/// A response before its headers are made.
pub struct Answer {
    /// The status line's code.
    pub status: StatusCode,
    /// The `content-type` header.
    pub content_type: Cow<'static, str>,
    /// The body.
    pub content: Content,
}

fn text_plain() -> Cow<'static, str> {
    Cow::Borrowed("text/plain")
}

/// A plain-text answer.
fn text(status: StatusCode, body: String) -> Answer {
    Answer {
        status,
        content_type: text_plain(),
        content: Content::Full(Bytes::from(body)),
    }
}

/// The seed's `200 OK`, `content-type: text/plain`, `Hello World\n`.
pub fn hello() -> Answer {
    Answer {
        status: StatusCode::OK,
        content_type: text_plain(),
        content: Content::Full(Bytes::from_static(HELLO)),
    }
}

/// 413, for a body past `--max-http-body`.
pub fn too_large(max: usize) -> Answer {
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is over the limit of {max} bytes (--max-http-body)\n"),
    )
}

/// 400, for a body that broke off or was badly chunked.
pub fn unreadable(why: &str) -> Answer {
    text(
        StatusCode::BAD_REQUEST,
        format!("the request body could not be read: {why}\n"),
    )
}

/// 408, for a body that came too slowly.
pub fn too_slow(why: &str) -> Answer {
    text(
        StatusCode::REQUEST_TIMEOUT,
        format!("the request body came too slowly: {why}\n"),
    )
}

/// Whether the answer to a request for `path` may take a while (`/_/delay`), so answers
/// waiting before it should be sent first.
pub fn waits(path: &str) -> bool {
    path.starts_with("/_/delay/")
}

/// Answers the request `head` with body `body`; `shutdown` cuts a delay short.
pub async fn answer(shutdown: &CancellationToken, head: &Head, body: &Bytes) -> Answer {
    if head.method == "CONNECT" {
        // Not a proxy: no tunnel (RFC 9110 section 9.1: 501 for a method not implemented).
        return text(
            StatusCode::NOT_IMPLEMENTED,
            "CONNECT: this service is not a proxy and opens no tunnels\n".into(),
        );
    }
    let path = head.path();
    let rest = match path.strip_prefix("/_") {
        Some("" | "/") => return text(StatusCode::OK, INDEX.into()),
        Some(rest) if rest.starts_with('/') => &rest[1..],
        _ => return hello(),
    };
    let (name, arg) = rest.split_once('/').unwrap_or((rest, ""));
    match name {
        "status" => status(arg),
        "delay" => delay(shutdown, arg).await,
        "echo" => Answer {
            status: StatusCode::OK,
            content_type: match head.header("content-type") {
                Some(t) => Cow::Owned(t.to_owned()),
                None => Cow::Borrowed("application/octet-stream"),
            },
            content: Content::Full(body.clone()),
        },
        "bytes" => match arg.parse::<u64>() {
            Ok(n) if n <= MAX_BYTES => Answer {
                status: StatusCode::OK,
                content_type: text_plain(),
                content: Content::Pattern(n),
            },
            _ => text(
                StatusCode::BAD_REQUEST,
                format!("/_/bytes/{{n}} takes a byte count up to {MAX_BYTES}, not {arg:?}\n"),
            ),
        },
        "headers" => {
            let mut out = String::new();
            for (k, v) in &head.headers {
                out.push_str(k);
                out.push_str(": ");
                out.push_str(v);
                out.push('\n');
            }
            text(StatusCode::OK, out)
        }
        _ => text(
            StatusCode::NOT_FOUND,
            format!("no helper at {path}\n\n{INDEX}"),
        ),
    }
}

fn status(arg: &str) -> Answer {
    match arg
        .parse::<u16>()
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
    {
        Some(code) if code.as_u16() >= 200 => {
            let body = match code.as_u16() {
                // These carry no body by definition.
                204 | 304 => String::new(),
                _ => format!(
                    "{} {}\n",
                    code.as_u16(),
                    code.canonical_reason().unwrap_or("")
                ),
            };
            text(code, body)
        }
        _ => text(
            StatusCode::BAD_REQUEST,
            format!("/_/status/{{code}} takes a status from 200 to 599, not {arg:?}\n"),
        ),
    }
}

async fn delay(shutdown: &CancellationToken, arg: &str) -> Answer {
    let Ok(asked) = arg.parse::<u64>() else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("/_/delay/{{ms}} takes milliseconds (at most {MAX_DELAY_MS}), not {arg:?}\n"),
        );
    };
    let ms = asked.min(MAX_DELAY_MS);
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
        _ = shutdown.cancelled() => {
            return text(StatusCode::SERVICE_UNAVAILABLE, "the lab is stopping\n".into());
        }
    }
    let capped = if asked > ms {
        format!(" (capped at {MAX_DELAY_MS} ms)")
    } else {
        String::new()
    };
    text(StatusCode::OK, format!("waited {ms} ms{capped}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head;

    fn head(target: &str) -> Head {
        let raw = format!(
            "GET {target} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nX-A: 1\r\n\r\n"
        );
        head::parse(raw.as_bytes()).unwrap().unwrap().0
    }

    async fn get(target: &str) -> Answer {
        let head = head(target);
        answer(&CancellationToken::new(), &head, &Bytes::from_static(b"{}")).await
    }

    fn body(a: &Answer) -> String {
        match &a.content {
            Content::Full(b) => String::from_utf8_lossy(b).into_owned(),
            Content::Pattern(n) => format!("pattern {n}"),
        }
    }

    #[tokio::test]
    async fn everything_outside_the_prefix_is_hello_world() {
        for target in ["/", "/index.html", "/_x", "/a/_/status/500", "/?q=1"] {
            let a = get(target).await;
            assert_eq!(
                (a.status, body(&a).as_str()),
                (StatusCode::OK, "Hello World\n"),
                "{target}"
            );
            assert_eq!(a.content_type, "text/plain");
        }
    }

    #[tokio::test]
    async fn helpers_answer_and_refuse_past_their_caps() {
        let a = get("/_/status/418").await;
        assert_eq!(
            (a.status.as_u16(), body(&a).as_str()),
            (418, "418 I'm a teapot\n")
        );
        assert_eq!(get("/_/status/204").await.content.len(), 0);
        assert_eq!(get("/_/status/100").await.status, StatusCode::BAD_REQUEST);
        assert_eq!(get("/_/status/abc").await.status, StatusCode::BAD_REQUEST);
        let echo = get("/_/echo").await;
        assert_eq!(
            (body(&echo).as_str(), &*echo.content_type),
            ("{}", "application/json")
        );
        assert_eq!(body(&get("/_/bytes/5").await), "pattern 5");
        assert_eq!(
            get("/_/bytes/10485761").await.status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            body(&get("/_/headers").await),
            "Host: h\nContent-Type: application/json\nX-A: 1\n"
        );
        assert_eq!(get("/_/nope").await.status, StatusCode::NOT_FOUND);
        assert!(body(&get("/_/").await).contains("/_/delay"));
        assert_eq!(get("/_/delay/x").await.status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn delay_waits_and_stops_with_the_lab() {
        assert_eq!(body(&get("/_/delay/1").await), "waited 1 ms\n");
        let stop = CancellationToken::new();
        stop.cancel();
        let a = answer(&stop, &head("/_/delay/99999"), &Bytes::new()).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
