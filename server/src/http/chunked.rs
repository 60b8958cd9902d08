//! A chunked request body (RFC 9112 section 7.1), decoded as it arrives: each call takes
//! what the read buffer holds and leaves what belongs to the next request. Chunk
//! extensions are skipped; trailer fields are read, checked and discarded; the size line,
//! the extensions of a body and the trailer section are bounded.
//!
//! Strict where a lenient reading lets two parsers disagree on where a request ends
//! (request smuggling): a size line needs hex digits and its extensions must follow RFC
//! 9112's grammar (as strict llhttp reads them), every line ends in CRLF (a bare CR or LF,
//! or any other control byte, is an error), and a trailer line must be a header field.
//! Each line is scanned once, however it arrives.

use bytes::{Buf, BytesMut};

use super::head::HEAD_LIMIT;

/// The longest chunk-size line (with its extensions) accepted.
const SIZE_LINE_LIMIT: usize = 4096;
/// Chunk extensions accepted over one body, in bytes (they are not body bytes, so
/// `--max-http-body` does not bound them).
const EXTENSIONS_LIMIT: usize = 16 * 1024;
/// Trailer fields accepted.
const TRAILERS_MAX: usize = 100;

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
    /// Bytes at the front of the buffer already scanned for the end of the current line.
    scanned: usize,
    /// Bytes of chunk extensions read so far.
    extensions: usize,
    /// Bytes and fields of trailer section read so far.
    trailers: usize,
    trailer_fields: usize,
}

impl Default for Chunked {
    fn default() -> Chunked {
        Chunked {
            state: State::Size,
            scanned: 0,
            extensions: 0,
            trailers: 0,
            trailer_fields: 0,
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
                State::Size => {
                    let Some(len) = self.line(buf, SIZE_LINE_LIMIT, "a chunk-size line")? else {
                        return Ok(false);
                    };
                    let (size, ext) = chunk_size(&buf[..len])
                        .ok_or_else(|| format!("an invalid chunk-size line {:?}", line(buf)))?;
                    self.extensions += ext;
                    if self.extensions > EXTENSIONS_LIMIT {
                        return Err(format!(
                            "chunk extensions over {EXTENSIONS_LIMIT} bytes in one body"
                        ));
                    }
                    buf.advance(len + 2);
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::Data(size)
                    };
                }
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
                    let room = HEAD_LIMIT.saturating_sub(self.trailers);
                    let Some(len) = self.line(buf, room, "trailers")? else {
                        return Ok(false);
                    };
                    if len == 0 {
                        buf.advance(2);
                        self.state = State::Done;
                        continue;
                    }
                    if !is_field_line(&buf[..len]) {
                        return Err(format!(
                            "a trailer line that is not a field {:?}",
                            line(buf)
                        ));
                    }
                    self.trailer_fields += 1;
                    if self.trailer_fields > TRAILERS_MAX {
                        return Err(format!("more than {TRAILERS_MAX} trailer fields"));
                    }
                    self.trailers += len + 2;
                    buf.advance(len + 2);
                }
                State::Done => return Ok(true),
            }
        }
    }
}

impl Chunked {
    /// The length of the line at the front of `buf` (without its CRLF) once it is whole;
    /// `None` while it is not. Bytes already scanned are not scanned again. A line over
    /// `limit`, a bare CR or LF, or another control byte (but tab) is an error.
    fn line(&mut self, buf: &[u8], limit: usize, what: &str) -> Result<Option<usize>, String> {
        for (i, &b) in buf.iter().enumerate().skip(self.scanned) {
            match b {
                b'\n' if i > 0 && buf[i - 1] == b'\r' => {
                    self.scanned = 0;
                    return Ok(Some(i - 1));
                }
                b'\r' => match buf.get(i + 1) {
                    Some(b'\n') => {}
                    None => break, // its LF may come next
                    Some(_) => return Err(format!("{what}: a bare CR (lines end in CRLF)")),
                },
                b'\n' => return Err(format!("{what}: a bare LF (lines end in CRLF)")),
                b'\t' => {}
                0..=0x1f | 0x7f => return Err(format!("{what}: a control byte 0x{b:02x}")),
                _ => {}
            }
            if i >= limit {
                return Err(format!("{what} longer than {limit} bytes"));
            }
        }
        // Everything but a trailing CR is known to be clean.
        self.scanned = buf.len() - usize::from(buf.last() == Some(&b'\r'));
        if self.scanned > limit {
            return Err(format!("{what} longer than {limit} bytes"));
        }
        Ok(None)
    }
}

/// A chunk-size line (without CRLF): 1 to 16 hex digits, then extensions as RFC 9112
/// section 7.1.1 writes them, or nothing. Its size and the bytes of its extensions.
fn chunk_size(line: &[u8]) -> Option<(u64, usize)> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return None;
    }
    let hex = std::str::from_utf8(&line[..digits]).ok()?;
    let size = u64::from_str_radix(hex, 16).ok()?;
    let rest = &line[digits..];
    extensions(rest).then_some((size, rest.len()))
}

/// Whether `s` is `*( BWS ";" BWS name [ BWS "=" BWS value ] )`, a name being a token and
/// a value a token or a quoted string (as strict llhttp reads it): not `2;`, not a blank
/// after the size with nothing behind it, not an unclosed quote.
fn extensions(s: &[u8]) -> bool {
    let blanks = |i: usize| {
        i + s[i..]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count()
    };
    let token = |i: usize| i + s[i..].iter().take_while(|b| is_tchar(**b)).count();
    let mut i = 0;
    while i < s.len() {
        i = blanks(i);
        if s.get(i) != Some(&b';') {
            return false; // a blank at the end, or something else than an extension
        }
        i = blanks(i + 1);
        let name_end = token(i);
        if name_end == i {
            return false;
        }
        i = name_end;
        let after = blanks(i);
        if s.get(after) != Some(&b'=') {
            continue;
        }
        i = blanks(after + 1);
        let value_end = match s.get(i) {
            Some(b'"') => match quoted_end(&s[i..]) {
                Some(len) => i + len,
                None => return false,
            },
            _ => token(i),
        };
        if value_end == i {
            return false;
        }
        i = value_end;
    }
    true
}

/// The length of the quoted string at the start of `s` (RFC 9110 section 5.6.4), quotes
/// included; `None` when it does not close. (Control bytes were refused already.)
fn quoted_end(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Some(i + 1),
            b'\\' => i += 2, // a quoted pair: the next byte, whatever it is
            _ => i += 1,
        }
    }
    None
}

/// Whether a trailer line is a header field: a token, a colon, then a value (control
/// bytes were refused already).
fn is_field_line(line: &[u8]) -> bool {
    let name = line.iter().take_while(|b| is_tchar(**b)).count();
    name > 0 && line.get(name) == Some(&b':')
}

/// A token character (RFC 9110 5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
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

    /// Shapes a lenient parser reads one way and a strict one another (request
    /// smuggling): every one is an error, whatever the split.
    #[test]
    fn ambiguous_chunking_is_refused() {
        let cases: [&[u8]; 10] = [
            b"\r\n\r\nGET / HTTP/1.1\r\n\r\n", // a size line with no digits
            b" \r\n\r\n",
            b";x\r\n\r\n",
            b"2;\nxx\r\nhi\r\n0\r\n\r\n",    // a bare LF in an extension
            b"2\nhi\r\n0\r\n\r\n",           // a bare LF ending the size line
            b"2\rhi\r\n0\r\n\r\n",           // a bare CR
            b"0\r\nGET /x HTTP/1.1\r\n\r\n", // a request line as a trailer
            b"0\r\nX-A: 1\nX-B: 2\r\n\r\n",  // a bare LF in the trailers
            b"0\r\n: empty name\r\n\r\n",
            b"10000000000000000\r\n", // 17 hex digits
        ];
        for raw in cases {
            for step in [1, 2, 5, raw.len()] {
                assert!(
                    decode(raw, step).is_err(),
                    "{:?} step {step}",
                    String::from_utf8_lossy(raw)
                );
            }
        }
        let many = format!("0\r\n{}\r\n", "A: 1\r\n".repeat(TRAILERS_MAX + 1));
        assert!(
            decode(many.as_bytes(), 4096)
                .unwrap_err()
                .contains("trailer fields")
        );
        let exts = format!("1;{}\r\nx\r\n", "e".repeat(4000)).repeat(5);
        assert!(
            decode(exts.as_bytes(), 4096)
                .unwrap_err()
                .contains("extensions")
        );
        // Extensions as strict llhttp reads them (its request corpus).
        for bad in [
            &b"2;\r\naa\r\n0\r\n\r\n"[..],       // no name after the semicolon
            b"a \r\n0123456789\r\n0\r\n\r\n",    // a blank, then nothing
            b"5;a=\"b; c\r\nhello\r\n0\r\n\r\n", // a quote that never closes
            b"2 xyz\r\naa\r\n0\r\n\r\n",         // no semicolon before the extension
            b"2;a=\r\naa\r\n0\r\n\r\n",          // no value after `=`
            b"2;a;\r\naa\r\n0\r\n\r\n",          // a trailing semicolon
        ] {
            assert!(
                decode(bad, 3).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let quoted = b"5;a=\"I \\\"q\\\"; \\x\";b ; c = d\r\nhello\r\n0\r\n\r\n";
        assert_eq!(decode(quoted, 2).unwrap().0, "hello");
        // Blanks before an extension, tabs in values, hex in either case: fine.
        let ok = b"a \t;n=v\r\n0123456789\r\nA\r\n0123456789\r\n0\r\nX-T: a\tb\r\n\r\n";
        assert_eq!(decode(ok, 3).unwrap().0.len(), 20);
    }

    #[test]
    fn a_dribbled_line_is_scanned_once() {
        let mut d = Chunked::default();
        let (mut buf, mut out) = (BytesMut::new(), BytesMut::new());
        buf.extend_from_slice(b"0\r\n");
        assert!(!d.decode(&mut buf, &mut out).unwrap());
        for _ in 0..1000 {
            buf.extend_from_slice(b"a");
            assert!(!d.decode(&mut buf, &mut out).unwrap());
            assert_eq!(d.scanned, buf.len(), "only the new byte was looked at");
        }
    }
}
