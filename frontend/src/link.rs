//! The push channel's connection logic that needs no browser: the state shown in
//! `#conn-state`, the reconnect backoff, and the URLs built from the page's location.

/// Where the connection to `/ws` is.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum ConnStatus {
    /// Opening the socket.
    #[default]
    Connecting,
    /// Open.
    Connected,
    /// Closed; the next attempt starts at `at_ms` (the browser's `Date.now()`).
    Reconnecting { at_ms: f64 },
}

impl ConnStatus {
    /// The exact text of `#conn-state` at `now_ms`: `connecting`, `connected` or
    /// `reconnecting in Ns` (whole seconds, rounded up, at least 1).
    pub fn label(&self, now_ms: f64) -> String {
        match self {
            ConnStatus::Connecting => "connecting".to_owned(),
            ConnStatus::Connected => "connected".to_owned(),
            ConnStatus::Reconnecting { at_ms } => {
                let secs = ((at_ms - now_ms) / 1000.0).ceil().max(1.0) as u64;
                format!("reconnecting in {secs}s")
            }
        }
    }
}

/// First reconnect delay.
pub const BACKOFF_FIRST_MS: f64 = 500.0;
/// Longest reconnect delay.
pub const BACKOFF_MAX_MS: f64 = 10_000.0;

/// The delay before reconnect attempt `attempt` (0 for the first): 0.5 s doubling up to
/// 10 s, times a jitter between 0.8 and 1.2 drawn from `random` (0 to 1) so that many
/// pages cut off together do not come back in the same instant; never above 10 s.
pub fn backoff_ms(attempt: u32, random: f64) -> f64 {
    let base = (BACKOFF_FIRST_MS * 2f64.powi(attempt.min(16) as i32)).min(BACKOFF_MAX_MS);
    (base * (0.8 + 0.4 * random.clamp(0.0, 1.0)))
        .round()
        .min(BACKOFF_MAX_MS)
}

/// Event flushes that cost less than this (parse excluded: hand-over, reduce, render and
/// effects) run on every animation frame.
pub const FLUSH_CHEAP_MS: f64 = 4.0;
/// The longest pause between two event flushes, however costly the last one was.
pub const FLUSH_GAP_MAX_MS: f64 = 250.0;

/// How long to leave the main thread alone after an event flush that took `cost_ms`
/// before the next one: nothing when it was cheap, else twice its cost (at most
/// [`FLUSH_GAP_MAX_MS`]). So under a flood the page applies and renders bigger batches less
/// often instead of spending every frame on them: its flushes take at most about a third
/// of the main thread, and input, layout and paint keep the rest.
pub fn flush_gap_ms(cost_ms: f64) -> f64 {
    if cost_ms.is_nan() || cost_ms < FLUSH_CHEAP_MS {
        0.0
    } else {
        (2.0 * cost_ms).min(FLUSH_GAP_MAX_MS)
    }
}

/// The value of `name` in a query string (`?a=1&token=x`), percent-decoded.
pub fn query_param(search: &str, name: &str) -> Option<String> {
    search
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query value.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The push channel's URL for a page at `page_protocol` (`http:` or `https:`) and
/// `host`: `ws[s]://host/ws`, with `since` to resume and the page's token passed on.
pub fn ws_url(page_protocol: &str, host: &str, since: Option<u64>, token: Option<&str>) -> String {
    let scheme = if page_protocol == "https:" {
        "wss"
    } else {
        "ws"
    };
    let mut url = format!("{scheme}://{host}/ws");
    let mut sep = '?';
    if let Some(since) = since {
        url.push_str(&format!("{sep}since={since}"));
        sep = '&';
    }
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        url.push_str(&format!("{sep}token={}", percent_encode(token)));
    }
    url
}

/// Adds the page's token to an API path that may already have a query.
pub fn with_token(path: &str, token: Option<&str>) -> String {
    match token.filter(|t| !t.is_empty()) {
        Some(t) => {
            let sep = if path.contains('?') { '&' } else { '?' };
            format!("{path}{sep}token={}", percent_encode(t))
        }
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cheap_flushes_run_every_frame_and_costly_ones_leave_room() {
        assert_eq!(flush_gap_ms(0.0), 0.0);
        assert_eq!(flush_gap_ms(FLUSH_CHEAP_MS - 0.1), 0.0);
        assert_eq!(flush_gap_ms(10.0), 20.0);
        assert_eq!(flush_gap_ms(1e6), FLUSH_GAP_MAX_MS);
        assert_eq!(flush_gap_ms(f64::NAN), 0.0);
    }

    #[test]
    fn labels_are_exact() {
        assert_eq!(ConnStatus::Connecting.label(0.0), "connecting");
        assert_eq!(ConnStatus::Connected.label(0.0), "connected");
        let r = ConnStatus::Reconnecting { at_ms: 10_500.0 };
        assert_eq!(r.label(10_000.0), "reconnecting in 1s");
        assert_eq!(r.label(2_000.0), "reconnecting in 9s");
        assert_eq!(r.label(20_000.0), "reconnecting in 1s");
    }

    #[test]
    fn backoff_doubles_to_ten_seconds_with_jitter() {
        assert_eq!(backoff_ms(0, 0.5), 500.0);
        assert_eq!(backoff_ms(1, 0.5), 1000.0);
        assert_eq!(backoff_ms(4, 0.5), 8000.0);
        assert_eq!(backoff_ms(5, 0.5), 10_000.0);
        assert_eq!(backoff_ms(60, 1.0), 10_000.0);
        assert_eq!(backoff_ms(0, 0.0), 400.0);
        assert_eq!(backoff_ms(0, 1.0), 600.0);
        assert_eq!(backoff_ms(3, 0.0), 3200.0);
    }

    #[test]
    fn urls_carry_since_and_token() {
        assert_eq!(
            ws_url("http:", "127.0.0.1:8080", None, None),
            "ws://127.0.0.1:8080/ws"
        );
        assert_eq!(
            ws_url("https:", "lab.example", Some(42), Some("a b&c")),
            "wss://lab.example/ws?since=42&token=a%20b%26c"
        );
        assert_eq!(ws_url("http:", "h", None, Some("t")), "ws://h/ws?token=t");
        assert_eq!(ws_url("http:", "h", None, Some("")), "ws://h/ws");
        assert_eq!(
            with_token("/api/events?limit=5", Some("t")),
            "/api/events?limit=5&token=t"
        );
        assert_eq!(with_token("/api/events", None), "/api/events");
    }

    #[test]
    fn query_params_decode() {
        assert_eq!(
            query_param("?token=a%20b&x=1", "token").as_deref(),
            Some("a b")
        );
        assert_eq!(
            query_param("?x=1&token=abc", "token").as_deref(),
            Some("abc")
        );
        assert_eq!(query_param("?flag", "flag").as_deref(), Some(""));
        assert_eq!(query_param("", "token"), None);
        assert_eq!(query_param("?t=100%", "t").as_deref(), Some("100%"));
    }
}
