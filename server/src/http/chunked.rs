//! A chunked request body (RFC 9112 section 7.1), decoded as it arrives: each call takes
//! what the read buffer holds and leaves what belongs to the next request. Chunk
//! extensions are skipped; trailer fields are read and discarded; the size line and the
//! trailer section are bounded.

use bytes::{Buf, BytesMut};

use super::head::HEAD_LIMIT;

/// The longest chunk-size line (with its extensions) accepted.
const SIZE_LINE_LIMIT: usize = 4096;

/// Where the decoder is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes to go.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
    /// The body has ended.
    Done,
}

/// The decoder of one chunked body.
#[derive(Debug)]
pub struct Chunked {
    state: State,
    /// Bytes of trailer section read so far.
    trailers: usize,
}

impl Default for Chunked {
    fn default() -> Chunked {
        Chunked {
            state: State::Size,
            trailers: 0,
        }
    }
}

impl Chunked {
    /// Decodes from `buf` (consuming what it decodes) into `out`. `Ok(true)` once the
    /// body has ended, `Ok(false)` when `buf` ran out first; the error says what is wrong
    /// with the chunking.
    pub fn decode(&mut self, buf: &mut BytesMut, out: &mut BytesMut) -> Result<bool, String> {
        loop {
            match self.state {
                State::Size => match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        buf.advance(used);
                        self.state = if size == 0 {
                            State::Trailers
                        } else {
                            State::Data(size)
                        };
                    }
                    Ok(httparse::Status::Partial) if buf.len() > SIZE_LINE_LIMIT => {
                        return Err(format!(
                            "a chunk-size line longer than {SIZE_LINE_LIMIT} bytes"
                        ));
                    }
                    Ok(httparse::Status::Partial) => return Ok(false),
                    Err(_) => return Err(format!("an invalid chunk-size line {:?}", line(buf))),
                },
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(false);
                    }
                    let n = left.min(buf.len() as u64) as usize;
                    out.extend_from_slice(&buf[..n]);
                    buf.advance(n);
                    self.state = match left - n as u64 {
                        0 => State::DataEnd,
                        left => State::Data(left),
                    };
                }
                State::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(false);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err("a chunk's data is not followed by CRLF".into());
                    }
                    buf.advance(2);
                    self.state = State::Size;
                }
                State::Trailers => {
                    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
                        if self.trailers + buf.len() > HEAD_LIMIT {
                            return Err(format!("trailers larger than {HEAD_LIMIT} bytes"));
                        }
                        return Ok(false);
                    };
                    buf.advance(end + 2);
                    self.trailers += end + 2;
                    if end == 0 {
                        self.state = State::Done;
                    } else if self.trailers > HEAD_LIMIT {
                        return Err(format!("trailers larger than {HEAD_LIMIT} bytes"));
                    }
                }
                State::Done => return Ok(true),
            }
        }
    }
}

/// The start of `buf`'s first line, for an error message.
fn line(buf: &[u8]) -> String {
    let end = buf
        .iter()
        .position(|b| *b == b'\n')
        .unwrap_or(buf.len())
        .min(32);
    String::from_utf8_lossy(&buf[..end]).trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `raw` fed `step` bytes at a time; returns the body and what was left.
    fn decode(raw: &[u8], step: usize) -> Result<(String, String), String> {
        let mut d = Chunked::default();
        let (mut buf, mut out) = (BytesMut::new(), BytesMut::new());
        for piece in raw.chunks(step) {
            buf.extend_from_slice(piece);
            if d.decode(&mut buf, &mut out)? {
                let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                return Ok((s(&out), s(&buf)));
            }
        }
        Err("unfinished".into())
    }

    #[test]
    fn chunks_extensions_and_trailers_at_any_split() {
        let raw = b"6;name=value\r\nhello \r\n5 ; x\r\nworld\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\nGET";
        for step in [1, 2, 3, 7, raw.len()] {
            let (body, rest) = decode(raw, step).unwrap();
            assert_eq!(body, "hello world", "step {step}");
            // What follows the body stays for the next request (all of it once fed).
            assert!("GET".starts_with(&rest), "step {step}: {rest:?}");
        }
        assert_eq!(
            decode(b"A\r\n0123456789\r\n0\r\n\r\n", 4).unwrap().0,
            "0123456789"
        );
    }

    #[test]
    fn bad_chunking_is_an_error() {
        let e = decode(b"zz\r\nhello\r\n0\r\n\r\n", 64).unwrap_err();
        assert!(e.contains("chunk-size"), "{e}");
        let e = decode(b"2\r\nhello\r\n0\r\n\r\n", 64).unwrap_err();
        assert!(e.contains("CRLF"), "{e}");
        let long = format!("1;{}\r\n", "x".repeat(2 * SIZE_LINE_LIMIT));
        assert!(decode(long.as_bytes(), 64).unwrap_err().contains("longer"));
        let trailers = format!("0\r\nX: {}\r\n\r\n", "a".repeat(HEAD_LIMIT));
        assert!(
            decode(trailers.as_bytes(), 1024)
                .unwrap_err()
                .contains("trailers")
        );
        assert_eq!(decode(b"5\r\nhel", 64).unwrap_err(), "unfinished");
    }
}
