//! A ClientHello as the client sent it: read from the first handshake records on a
//! connection, before rustls sees them, so the event shows what was offered in the
//! client's order (rustls keeps only what it needs), and so the JA4 fingerprint can be
//! taken (it needs the raw cipher and extension lists).
//!
//! JA4 is FoxIO's TLS client fingerprint (github.com/FoxIO-LLC/ja4, `technical_details/
//! JA4.md`): `t13d1516h2_8daaf6152771_e5627efa2ab1` is TCP, TLS 1.3, an SNI given, 15
//! cipher suites, 16 extensions, ALPN `h2`; then the first 12 hex digits of the SHA-256 of
//! the sorted cipher suites, and of the sorted extensions (but SNI and ALPN) followed by
//! the signature algorithms in the client's order. GREASE values are left out everywhere.

use rustls::{CipherSuite, NamedGroup, ProtocolVersion, SignatureScheme};
use sha2::{Digest, Sha256};

/// The largest ClientHello read (a post-quantum key share makes Chromium's about 1.8 KB).
pub const MAX_HELLO: usize = 32 << 10;

/// The longest record TLS allows (2^14 bytes, and 256 of expansion).
const MAX_RECORD: usize = 16384 + 256;

/// The most records a ClientHello may span (real clients send one).
pub const MAX_RECORDS: usize = 16;

/// The most bytes held while waiting for one ClientHello: the largest, in the most
/// records' headers.
pub const MAX_BUFFER: usize = MAX_HELLO + MAX_RECORDS * 5;

/// What a client offered in its ClientHello.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hello {
    /// The server name it asked for (SNI), empty when none.
    pub sni: String,
    /// It sent the SNI extension (JA4's `d`), whatever was in it.
    pub has_sni: bool,
    /// The first ALPN value's bytes as sent (JA4 takes its first and last characters,
    /// or hex digits).
    pub alpn_first: Vec<u8>,
    /// ALPN protocols, in its order.
    pub alpn: Vec<String>,
    /// The TLS versions it offers (supported_versions; else its legacy version), GREASE
    /// left out.
    pub versions: Vec<u16>,
    /// Cipher suites in its order, GREASE included (shown as such).
    pub ciphers: Vec<u16>,
    /// Extension types in its order.
    pub extensions: Vec<u16>,
    /// Supported groups, in its order.
    pub groups: Vec<u16>,
    /// The groups it sent a key share for.
    pub key_shares: Vec<u16>,
    /// Signature algorithms, in its order.
    pub sig_algs: Vec<u16>,
    /// The `legacy_version` field (0x0303 from any TLS 1.2 or 1.3 client).
    pub legacy_version: u16,
}

/// What the first bytes on a TLS port turned out to be.
#[derive(Debug, PartialEq)]
pub enum Read {
    /// Not enough yet: read more.
    More,
    /// A whole ClientHello, in the first `len` bytes.
    Hello(Box<Hello>, usize),
    /// Not a ClientHello; why, in words.
    Not(String),
}

/// Reads a ClientHello from the start of what a client sent. `More` only while `buf` is
/// shorter than [`MAX_BUFFER`]: so what a client may make the lab hold is bounded, however
/// it splits its records.
pub fn read(buf: &[u8]) -> Read {
    match gather(buf) {
        Read::More if buf.len() >= MAX_BUFFER => {
            Read::Not("no whole ClientHello in its first 32 KiB".into())
        }
        read => read,
    }
}

/// How long `buf` must be before [`read`] can say more than it did: the end of the record
/// it ends in (its header first); its length when it ends at a record's end. Reading again only then keeps a hello sent a byte at a
/// time from costing a parse per byte.
pub fn wanted(buf: &[u8]) -> usize {
    let mut at = 0;
    for _ in 0..=MAX_RECORDS {
        if buf.len() == at {
            return at; // every record so far is whole: `read` may say something now
        }
        let Some(header) = buf.get(at..at + 5) else {
            return at + 5;
        };
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if header[0] != 22 || header[1] != 3 || len == 0 || len > MAX_RECORD {
            return 0; // no handshake record: `read` says so now
        }
        let end = at + 5 + len;
        if buf.len() < end {
            return end.min(MAX_BUFFER);
        }
        at = end;
    }
    0 // past the most records: `read` says so now
}

/// [`read`], but for the bound.
fn gather(buf: &[u8]) -> Read {
    // The handshake message, gathered from the records it spans.
    let mut message = Vec::new();
    let mut at = 0;
    let mut records = 0;
    loop {
        let Some(header) = buf.get(at..at + 5) else {
            return more_or_not(buf);
        };
        records += 1;
        if records > MAX_RECORDS {
            return Read::Not(format!("a ClientHello in more than {MAX_RECORDS} records"));
        }
        if header[0] != 22 {
            return Read::Not(not_tls(buf));
        }
        if header[1] != 3 {
            return Read::Not(format!(
                "a record of version {}.{}: not TLS",
                header[1], header[2]
            ));
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_RECORD {
            return Read::Not(format!("a handshake record of {len} bytes"));
        }
        let Some(fragment) = buf.get(at + 5..at + 5 + len) else {
            return Read::More;
        };
        message.extend_from_slice(fragment);
        at += 5 + len;
        if message.len() >= 4 {
            if message[0] != 1 {
                return Read::Not(format!(
                    "a handshake message of type {} where a ClientHello (1) comes first",
                    message[0]
                ));
            }
            let want = 4
                + (usize::from(message[1]) << 16 | usize::from(message[2]) << 8)
                + usize::from(message[3]);
            if message.len() >= want {
                return match parse(&message[4..want]) {
                    Some(hello) => Read::Hello(Box::new(hello), at),
                    None => Read::Not("a ClientHello that does not parse".into()),
                };
            }
            if want > MAX_HELLO {
                return Read::Not(format!("a ClientHello of {want} bytes"));
            }
        }
    }
}

/// Too short to tell: more, unless what there is already says it is no TLS.
fn more_or_not(buf: &[u8]) -> Read {
    match buf.first() {
        Some(&b) if b != 22 => Read::Not(not_tls(buf)),
        _ => Read::More,
    }
}

/// Words for the first bytes of something that is not TLS.
fn not_tls(buf: &[u8]) -> String {
    if plain_http(buf) {
        return "a plain HTTP request on the TLS port".into();
    }
    let shown: String = buf.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("bytes that are not TLS (starting {shown})")
}

/// The first bytes look like an HTTP/1 request line (`GET /`, `POST /` ...).
pub fn plain_http(buf: &[u8]) -> bool {
    let method = buf.iter().take_while(|b| b.is_ascii_uppercase()).count();
    (3..=7).contains(&method) && buf.get(method) == Some(&b' ')
}

/// A byte cursor over the ClientHello's body.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    /// A vector with a one- or two-byte length in front.
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// The u16 values of a list.
fn u16s(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .collect()
}

/// Parses a ClientHello's body (after the handshake header).
fn parse(body: &[u8]) -> Option<Hello> {
    let mut c = Cur(body);
    let mut hello = Hello {
        legacy_version: c.u16()?,
        ..Hello::default()
    };
    c.take(32)?; // random
    c.vec8()?; // legacy session id
    hello.ciphers = u16s(c.vec16()?);
    c.vec8()?; // compression methods
    let mut exts = Cur(if c.0.is_empty() { &[] } else { c.vec16()? });
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let mut data = Cur(exts.vec16()?);
        hello.extensions.push(kind);
        match kind {
            0 => {
                hello.has_sni = true;
                let mut list = Cur(data.vec16()?);
                while !list.0.is_empty() {
                    let name_type = list.u8()?;
                    let name = list.vec16()?;
                    if name_type == 0 && hello.sni.is_empty() {
                        hello.sni = String::from_utf8_lossy(name).into_owned();
                    }
                }
            }
            16 => {
                let mut list = Cur(data.vec16()?);
                while !list.0.is_empty() {
                    let value = list.vec8()?;
                    if hello.alpn.is_empty() {
                        hello.alpn_first = value.to_vec();
                    }
                    hello.alpn.push(String::from_utf8_lossy(value).into_owned());
                }
            }
            43 => hello.versions = u16s(data.vec8()?),
            10 => hello.groups = u16s(data.vec16()?),
            13 => hello.sig_algs = u16s(data.vec16()?),
            51 => {
                let mut list = Cur(data.vec16()?);
                while !list.0.is_empty() {
                    hello.key_shares.push(list.u16()?);
                    list.vec16()?;
                }
            }
            _ => {}
        }
    }
    hello.versions.retain(|v| !grease(*v));
    if hello.versions.is_empty() {
        hello.versions.push(hello.legacy_version);
    }
    Some(hello)
}

/// A GREASE value (RFC 8701): `0x?a?a` with both bytes equal.
pub fn grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

impl Hello {
    /// The JA4 fingerprint (over TCP).
    pub fn ja4(&self) -> String {
        let version = match self.versions.iter().max().copied().unwrap_or(0) {
            0x0304 => "13",
            0x0303 => "12",
            0x0302 => "11",
            0x0301 => "10",
            0x0300 => "s3",
            _ => "00",
        };
        let ciphers: Vec<u16> = self
            .ciphers
            .iter()
            .copied()
            .filter(|c| !grease(*c))
            .collect();
        let exts: Vec<u16> = self
            .extensions
            .iter()
            .copied()
            .filter(|e| !grease(*e))
            .collect();
        let alpn = match self.alpn_first.as_slice() {
            [] => "00".to_owned(),
            [first, .., last] if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() => {
                format!("{}{}", *first as char, *last as char)
            }
            [only] if only.is_ascii_alphanumeric() => format!("{0}{0}", *only as char),
            bytes => {
                // The first and last hex digits of the value's hex.
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                format!("{}{}", &hex[..1], &hex[hex.len() - 1..])
            }
        };
        let a = format!(
            "t{version}{}{:02}{:02}{alpn}",
            if self.has_sni { 'd' } else { 'i' },
            ciphers.len().min(99),
            exts.len().min(99),
        );
        let mut sorted_ciphers = ciphers;
        sorted_ciphers.sort_unstable();
        let mut sorted_exts: Vec<u16> = exts.into_iter().filter(|e| *e != 0 && *e != 16).collect();
        sorted_exts.sort_unstable();
        let sigs: Vec<u16> = self
            .sig_algs
            .iter()
            .copied()
            .filter(|s| !grease(*s))
            .collect();
        let mut c = hex_list(&sorted_exts);
        if !sigs.is_empty() {
            c.push('_');
            c.push_str(&hex_list(&sigs));
        }
        format!(
            "{a}_{}_{}",
            hash12(&hex_list(&sorted_ciphers), sorted_ciphers.is_empty()),
            hash12(&c, sorted_exts.is_empty()),
        )
    }

    /// The offered versions by name (`TLSv1.3`).
    pub fn version_names(&self) -> Vec<String> {
        self.versions.iter().map(|v| version_name(*v)).collect()
    }
    pub fn cipher_names(&self) -> Vec<String> {
        names(&self.ciphers, |v| CipherSuite::from(v).as_str())
    }
    pub fn group_names(&self) -> Vec<String> {
        names(&self.groups, |v| NamedGroup::from(v).as_str())
    }
    pub fn key_share_names(&self) -> Vec<String> {
        names(&self.key_shares, |v| NamedGroup::from(v).as_str())
    }
    pub fn sig_alg_names(&self) -> Vec<String> {
        names(&self.sig_algs, |v| SignatureScheme::from(v).as_str())
    }
}

/// A TLS version's name, as `openssl s_client` says it (`TLSv1.3`).
pub fn version_name(v: u16) -> String {
    match v {
        0x0304 => "TLSv1.3".into(),
        0x0303 => "TLSv1.2".into(),
        0x0302 => "TLSv1.1".into(),
        0x0301 => "TLSv1".into(),
        0x0300 => "SSLv3".into(),
        _ => ProtocolVersion::from(v)
            .as_str()
            .map_or_else(|| format!("0x{v:04x}"), str::to_owned),
    }
}

/// Names for code points: rustls's, `GREASE`, or the number in hex.
fn names(values: &[u16], name: impl Fn(u16) -> Option<&'static str>) -> Vec<String> {
    values
        .iter()
        .map(|&v| match name(v) {
            _ if grease(v) => "GREASE".to_owned(),
            Some(n) => n.to_owned(),
            None => format!("0x{v:04x}"),
        })
        .collect()
}

fn hex_list(values: &[u16]) -> String {
    let mut s = String::with_capacity(values.len() * 5);
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("{v:04x}"));
    }
    s
}

/// The first 12 hex digits of SHA-256, or twelve zeros for an empty list (JA4's rule).
fn hash12(s: &str, empty: bool) -> String {
    if empty {
        return "000000000000".into();
    }
    let digest = Sha256::digest(s.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello record with these lists (ciphers, and extensions as type + body).
    fn record(ciphers: &[u16], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([7; 32]);
        body.push(0);
        body.extend(((ciphers.len() * 2) as u16).to_be_bytes());
        for c in ciphers {
            body.extend(c.to_be_bytes());
        }
        body.extend([1, 0]);
        let mut e = Vec::new();
        for (kind, data) in exts {
            e.extend(kind.to_be_bytes());
            e.extend((data.len() as u16).to_be_bytes());
            e.extend(data);
        }
        body.extend((e.len() as u16).to_be_bytes());
        body.extend(e);
        let mut msg = vec![1, 0];
        msg.extend((body.len() as u16).to_be_bytes());
        msg.extend(body);
        let mut rec = vec![22, 3, 1];
        rec.extend((msg.len() as u16).to_be_bytes());
        rec.extend(msg);
        rec
    }

    fn list16(items: &[u16]) -> Vec<u8> {
        let mut v = ((items.len() * 2) as u16).to_be_bytes().to_vec();
        for i in items {
            v.extend(i.to_be_bytes());
        }
        v
    }

    /// JA4's own example (its technical details): Chrome's ClientHello, with these cipher
    /// suites, extensions and signature algorithms, is `t13d1516h2_8daaf6152771_e5627efa2ab1`.
    #[test]
    fn ja4_of_the_specs_example() {
        let ciphers = [
            0x1a1a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
            0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let sni = {
            let mut v = vec![0, 14, 0, 0, 11];
            v.extend(b"example.com");
            v
        };
        let alpn = vec![
            0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
        ];
        let sigs = list16(&[
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
        ]);
        let versions = vec![6, 0x3a, 0x3a, 3, 4, 3, 3];
        let exts = vec![
            (0x2a2a, vec![]),
            (0x0000, sni),
            (0x0017, vec![]),
            (0xff01, vec![0]),
            (0x000a, list16(&[0x2a2a, 0x001d, 0x0017, 0x0018])),
            (0x000b, vec![1, 0]),
            (0x0023, vec![]),
            (0x0010, alpn),
            (0x0005, vec![1, 0, 0, 0, 0]),
            (0x000d, sigs),
            (0x0012, vec![]),
            (0x0033, vec![0, 5, 0x2a, 0x2a, 0, 1, 0]),
            (0x002d, vec![1, 1]),
            (0x002b, versions),
            (0x001b, vec![2, 0, 2]),
            (0x4469, vec![0, 3, 2, b'h', b'2']),
            (0x0015, vec![0; 8]),
            (0x3a3a, vec![0]),
        ];
        let rec = record(&ciphers, &exts);
        let Read::Hello(hello, len) = read(&rec) else {
            panic!("not read: {:?}", read(&rec));
        };
        assert_eq!(len, rec.len());
        assert_eq!(hello.sni, "example.com");
        assert_eq!(hello.alpn, ["h2", "http/1.1"]);
        assert_eq!(hello.versions, [0x0304, 0x0303]);
        assert_eq!(hello.key_shares, [0x2a2a]);
        assert_eq!(hello.ja4(), "t13d1516h2_8daaf6152771_e5627efa2ab1");
        assert_eq!(
            hello.cipher_names()[..2],
            ["GREASE", "TLS13_AES_128_GCM_SHA256"]
        );
        assert_eq!(hello.version_names(), ["TLSv1.3", "TLSv1.2"]);
    }

    #[test]
    fn a_hello_in_pieces_asks_for_more_and_across_records_is_gathered() {
        let rec = record(&[0x1301], &[(0x002b, vec![2, 3, 4])]);
        for cut in [0, 1, 4, 5, 20, rec.len() - 1] {
            assert_eq!(read(&rec[..cut]), Read::More, "cut at {cut}");
        }
        // The same message split over two records.
        let msg = &rec[5..];
        let mut two = vec![22, 3, 1, 0, 10];
        two.extend(&msg[..10]);
        two.extend([22, 3, 1]);
        two.extend(((msg.len() - 10) as u16).to_be_bytes());
        two.extend(&msg[10..]);
        let Read::Hello(hello, len) = read(&two) else {
            panic!("not gathered");
        };
        assert_eq!((hello.versions.as_slice(), len), (&[0x0304][..], two.len()));
        assert_eq!(
            hello.ja4(),
            format!(
                "t13i010100_{}_{}",
                hash12("1301", false),
                hash12("002b", false)
            )
        );
    }

    #[test]
    fn a_hello_spread_over_endless_tiny_records_is_refused_at_the_bound() {
        // A 10,000-byte ClientHello, one byte per record: refused at the 17th record.
        let mut buf = Vec::new();
        for b in [1, 0, 0x27, 0x10] {
            buf.extend([22, 3, 1, 0, 1, b]);
        }
        while buf.len() < 6 * MAX_RECORDS {
            buf.extend([22, 3, 1, 0, 1, 0]);
        }
        assert_eq!(read(&buf), Read::More);
        buf.extend([22, 3, 1, 0, 1, 0]);
        assert!(matches!(read(&buf), Read::Not(w) if w.contains("16 records")));
        // Two records as long as records go, for a 32,000-byte hello: held up to the
        // bound, then refused.
        let mut big = vec![22, 3, 1, 0x41, 0x00, 1, 0, 0x7d, 0x00];
        big.resize(5 + 0x4100, 7);
        big.extend([22, 3, 1, 0x41, 0x00]);
        big.resize(MAX_BUFFER - 1, 7);
        assert_eq!(read(&big), Read::More);
        big.push(7);
        assert!(matches!(read(&big), Read::Not(w) if w.contains("32 KiB")));
    }

    #[test]
    fn what_is_wanted_is_the_next_records_end() {
        let rec = record(&[0x1301], &[(0x002b, vec![2, 3, 4])]);
        assert_eq!(wanted(&[]), 0);
        assert_eq!(wanted(&rec[..3]), 5);
        assert_eq!(wanted(&rec[..5]), rec.len());
        assert_eq!(wanted(&rec[..rec.len() - 1]), rec.len());
        assert_eq!(wanted(&rec), rec.len(), "whole: read it now");
    }

    /// JA4's ALPN characters, by the spec's rule: first and last characters when both
    /// are alphanumeric, else the first and last hex digits of the value; `00` for none.
    #[test]
    fn ja4s_alpn_characters_follow_the_spec() {
        for (value, want) in [
            (&b"h2"[..], "h2"),
            (b"http/1.1", "h1"),
            (b"h", "hh"),
            (b"\xab", "ab"),
            (b"\xab\xcd", "ad"),
            (b"\x30\xab", "3b"),
        ] {
            let hello = Hello {
                alpn_first: value.to_vec(),
                alpn: vec![String::from_utf8_lossy(value).into_owned()],
                versions: vec![0x0304],
                ..Hello::default()
            };
            assert_eq!(&hello.ja4()[8..10], want, "{value:?}");
        }
        let none = Hello {
            versions: vec![0x0303],
            ..Hello::default()
        };
        assert!(none.ja4().starts_with("t12i000000"), "{}", none.ja4());
        // The SNI extension with no name in it still makes `d`.
        let rec = record(&[0x1301], &[(0x0000, vec![0, 0])]);
        let Read::Hello(h, _) = read(&rec) else {
            panic!()
        };
        assert!(h.ja4().starts_with("t12d"), "{}", h.ja4());
    }

    #[test]
    fn what_is_not_a_hello_is_named() {
        assert_eq!(
            read(b"GET / HTTP/1.1\r\n"),
            Read::Not("a plain HTTP request on the TLS port".into())
        );
        assert!(matches!(read(b"\x00\x01garbage"), Read::Not(w) if w.contains("0001676172")));
        assert!(
            matches!(read(&[22, 3, 1, 0, 4, 2, 0, 0, 0]), Read::Not(w) if w.contains("type 2"))
        );
        assert!(
            matches!(read(&[22, 3, 1, 0, 4, 1, 0, 0, 0]), Read::Not(w) if w.contains("does not parse"))
        );
        assert!(matches!(read(&[22, 3, 1, 0xff, 0xff]), Read::Not(w) if w.contains("65535")));
    }
}
