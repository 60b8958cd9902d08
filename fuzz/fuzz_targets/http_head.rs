//! A request head, parsed as the HTTP service parses it (`wirelab::http::head::parse`,
//! httparse plus the lab's framing rules).
//!
//! Checked beyond "no panic":
//! - a complete head's length lies within the input and within `HEAD_LIMIT`, and ends at
//!   the blank line; the head alone parses to the same head, and a shorter prefix is
//!   still incomplete;
//! - the head written out again (request line, headers as kept, blank line) parses to the
//!   same head, its length exactly the bytes written;
//! - what the framing says agrees with the headers (chunked only in HTTP/1.1, a length
//!   never 0), and the path is a part of the target;
//! - a refusal carries one of the statuses the service sends, and keeps the head only
//!   for a framing refusal (400 or 501);
//! - "incomplete" only while the input fits in `HEAD_LIMIT`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirelab::http::head::{self, Framing, HEAD_LIMIT, Head};

fuzz_target!(|data: &[u8]| {
    match head::parse(data) {
        Ok(Some((head, len))) => complete(data, &head, len),
        Ok(None) => assert!(data.len() <= HEAD_LIMIT, "incomplete past the limit"),
        Err(m) => {
            assert!(
                matches!(m.status, 0 | 400 | 414 | 431 | 501),
                "status {}: {}",
                m.status,
                m.detail
            );
            if m.head.is_some() {
                assert!(matches!(m.status, 400 | 501), "{m:?}");
            }
            if matches!(m.status, 414 | 431) && m.detail.contains("larger") {
                assert!(data.len() > HEAD_LIMIT, "too large at {} bytes", data.len());
            }
        }
    }
});

fn complete(data: &[u8], head: &Head, len: usize) {
    assert!(
        len <= data.len() && len <= HEAD_LIMIT,
        "len {len} of {}",
        data.len()
    );
    assert_eq!(data[len - 1], b'\n', "a head ends with its blank line");

    // The head alone is the same head; one byte less is not yet a head.
    let (again, again_len) = head::parse(&data[..len])
        .expect("the head alone parses")
        .expect("the head alone is complete");
    assert_eq!(again_len, len);
    same(head, &again);
    assert!(
        matches!(head::parse(&data[..len - 1]), Ok(None)),
        "a prefix of a complete head is incomplete"
    );

    // Written out again, it reads the same, and consumes exactly what was written.
    let mut raw = format!("{} {} HTTP/1.{}\r\n", head.method, head.target, head.minor).into_bytes();
    for (name, value) in &head.headers {
        raw.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    if raw.len() <= HEAD_LIMIT {
        let (written, written_len) = head::parse(&raw)
            .unwrap_or_else(|m| panic!("written out again, refused: {m:?}"))
            .expect("written out again, complete");
        assert_eq!(written_len, raw.len());
        same(head, &written);
    }

    match head.framing {
        Framing::Chunked => assert_eq!(head.minor, 1, "chunked only in HTTP/1.1"),
        Framing::Length(n) => assert!(n > 0),
        Framing::None => {}
    }
    if head.minor == 0 {
        assert!(!head.expect_continue, "no 100-continue in HTTP/1.0");
    }
    let path = head.path();
    assert!(
        head.target.contains(path) || path == "/",
        "{path:?} of {:?}",
        head.target
    );
}

fn same(a: &Head, b: &Head) {
    assert_eq!(
        (&a.method, &a.target, a.minor, &a.headers),
        (&b.method, &b.target, b.minor, &b.headers)
    );
    assert_eq!(
        (a.framing, a.keep_alive, a.expect_continue),
        (b.framing, b.keep_alive, b.expect_continue)
    );
}
