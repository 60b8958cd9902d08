//! Who may use `/ws` and `/api`: the Origin check against cross-site WebSocket
//! hijacking, and the token when the lab has one.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;

/// A browser page may connect only from the lab's own origin or an allowed one. No
/// Origin header means no browser page is asking, and passes.
#[allow(clippy::result_large_err)]
pub fn check_origin(app: &App, headers: &HeaderMap) -> Result<(), Response> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let same = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| !host.is_empty() && o.eq_ignore_ascii_case(host));
    if same || app.config.allow_origins.iter().any(|o| o == origin) {
        return Ok(());
    }
    tracing::warn!(origin, host, "refused a WebSocket from a foreign origin");
    Err((
        StatusCode::FORBIDDEN,
        format!("origin {origin} may not use this lab (allow it with --allow-origin {origin})\n"),
    )
        .into_response())
}

/// When the lab has a token, `?token=` or `Authorization: Bearer` must carry it.
#[allow(clippy::result_large_err)]
pub fn check_token(app: &App, headers: &HeaderMap, query: Option<&str>) -> Result<(), Response> {
    let Some(expected) = &app.token else {
        return Ok(());
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let given = query.or(bearer).unwrap_or("");
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err((
            StatusCode::UNAUTHORIZED,
            "this lab needs its token: open the URL it printed at start (…/?token=…)\n",
        )
            .into_response())
    }
}

/// Compares without an early exit, so timing does not tell how much of a guess was right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new random token: 128 bits from the OS, as hex.
pub fn generate_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(wirelab_shared::payload::hex_encode(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly_and_are_random() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        let (a, b) = (generate_token().unwrap(), generate_token().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
