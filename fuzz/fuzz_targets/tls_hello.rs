//! The first bytes on a TLS port, read as the lab reads them before rustls does
//! (`wirelab::tls::hello::read`), and the JA4 of what parsed.
//!
//! Checked beyond "no panic":
//! - "more" only below the bound (what a client makes the lab hold is bounded), and then
//!   `wanted` never asks for fewer bytes than there are;
//! - a whole hello's length lies within the input; the hello alone reads the same, and a
//!   byte less is still "more";
//! - its JA4 has JA4's shape: `t` + version + `d`/`i` + two two-digit counts + two ALPN
//!   characters, then two 12-digit hex hashes;
//! - the versions offered are never empty, and hold no GREASE (but a legacy version
//!   standing alone, as sent).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirelab::tls::hello::{self, MAX_BUFFER, Read};

fuzz_target!(|data: &[u8]| {
    match hello::read(data) {
        Read::More => {
            assert!(data.len() < MAX_BUFFER, "more at {} bytes", data.len());
            assert!(hello::wanted(data) >= data.len() || hello::wanted(data) == 0);
        }
        Read::Not(why) => assert!(!why.is_empty()),
        Read::Hello(h, len) => {
            assert!(len <= data.len(), "len {len} of {}", data.len());
            assert_eq!(hello::read(&data[..len]), Read::Hello(h.clone(), len));
            if len - 1 < MAX_BUFFER {
                assert_eq!(hello::read(&data[..len - 1]), Read::More);
            }
            let ja4 = h.ja4();
            let parts: Vec<&str> = ja4.split('_').collect();
            assert_eq!(parts.len(), 3, "{ja4}");
            assert_eq!(parts[0].len(), 10, "{ja4}");
            assert!(parts[0].starts_with('t'), "{ja4}");
            for hash in &parts[1..] {
                assert!(
                    hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{ja4}"
                );
            }
            assert!(!h.versions.is_empty());
            // supported_versions without GREASE, or else the legacy version as sent.
            assert!(
                h.versions == [h.legacy_version] || h.versions.iter().all(|v| !hello::grease(*v)),
                "{:?}",
                h.versions
            );
            let _ = (
                h.cipher_names(),
                h.group_names(),
                h.sig_alg_names(),
                h.version_names(),
            );
        }
    }
});
