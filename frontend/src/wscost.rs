//! The seed's "lighter headers" point in numbers: what a message costs in WebSocket
//! framing (RFC 6455: 2 to 14 bytes) against the HTTP request and response headers the
//! same message would cost if the page polled for it.

/// Framing bytes of one WebSocket frame carrying `len` payload bytes: 2, plus 2 or 8 for
/// the extended length, plus 4 for the mask a client must add.
pub fn frame_overhead(len: u64, masked: bool) -> u64 {
    let ext = match len {
        0..=125 => 0,
        126..=65_535 => 2,
        _ => 8,
    };
    2 + ext + if masked { 4 } else { 0 }
}

/// The request a browser sends to poll `/poll` on `host` over a kept-alive connection.
pub fn poll_request(host: &str) -> String {
    format!(
        "GET /poll HTTP/1.1\r\n\
         Host: {host}\r\n\
         Connection: keep-alive\r\n\
         User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n\
         Accept: application/json\r\n\
         Referer: http://{host}/\r\n\
         Accept-Encoding: gzip, deflate, br, zstd\r\n\
         Accept-Language: en-US,en;q=0.9\r\n\
         \r\n"
    )
}

/// The response headers that would carry a `len`-byte message back.
pub fn poll_response(len: u64) -> String {
    format!(
        "HTTP/1.1 200 OK\r\n\
         content-type: application/json\r\n\
         content-length: {len}\r\n\
         date: Tue, 24 Nov 2026 21:18:03 GMT\r\n\
         keep-alive: timeout=5\r\n\
         \r\n"
    )
}

/// The comparison for some traffic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cost {
    /// Messages counted (both ways).
    pub messages: u64,
    /// What WebSocket framing cost them.
    pub ws_bytes: u64,
    /// What HTTP headers would have cost, one poll (request and response) per message.
    pub http_bytes: u64,
}

impl Cost {
    /// How many times lighter WebSocket was (0 when nothing was sent).
    pub fn ratio(&self) -> f64 {
        if self.ws_bytes == 0 {
            0.0
        } else {
            self.http_bytes as f64 / self.ws_bytes as f64
        }
    }
}

/// The cost of one message of `len` bytes each way (server to client unmasked, client
/// to server masked).
pub fn per_message(len: u64, host: &str) -> (u64, u64, u64) {
    let http = (poll_request(host).len() + poll_response(len).len()) as u64;
    (frame_overhead(len, false), frame_overhead(len, true), http)
}

/// The cost of traffic counted as frames and payload bytes each way (the server's
/// WebSocket counters). Frame sizes are taken as the average of each direction, which
/// is exact unless sizes straddle 126 or 65,536 bytes.
pub fn from_counters(
    frames_in: u64,
    bytes_in: u64,
    frames_out: u64,
    bytes_out: u64,
    host: &str,
) -> Cost {
    let avg = |bytes: u64, frames: u64| bytes.checked_div(frames).unwrap_or(0);
    let (avg_in, avg_out) = (avg(bytes_in, frames_in), avg(bytes_out, frames_out));
    let ws = frames_in * frame_overhead(avg_in, true) + frames_out * frame_overhead(avg_out, false);
    let req = poll_request(host).len() as u64;
    let http = frames_in * (req + poll_response(0).len() as u64)
        + frames_out * (req + poll_response(avg_out).len() as u64);
    Cost {
        messages: frames_in + frames_out,
        ws_bytes: ws,
        http_bytes: http,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_2_to_14_bytes() {
        assert_eq!(frame_overhead(0, false), 2);
        assert_eq!(frame_overhead(125, false), 2);
        assert_eq!(frame_overhead(126, false), 4);
        assert_eq!(frame_overhead(65_535, true), 8);
        assert_eq!(frame_overhead(65_536, false), 10);
        assert_eq!(frame_overhead(1 << 40, true), 14);
    }

    #[test]
    fn polling_costs_hundreds_of_bytes_a_message() {
        let (down, up, http) = per_message(20, "127.0.0.1:8080");
        assert_eq!((down, up), (2, 6));
        assert!((350..700).contains(&http), "{http}");
        assert!(poll_request("h").ends_with("\r\n\r\n"));
    }

    #[test]
    fn counters_give_a_ratio() {
        let c = from_counters(10, 200, 90, 9000, "127.0.0.1:8080");
        assert_eq!(c.messages, 100);
        assert_eq!(c.ws_bytes, 10 * 6 + 90 * 2);
        assert!(c.ratio() > 100.0, "{}", c.ratio());
        assert_eq!(from_counters(0, 0, 0, 0, "h").ratio(), 0.0);
    }
}
