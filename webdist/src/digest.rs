//! trunk's two digests: the content hash in output file names, and the SRI integrity value.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha384};

/// trunk's cache-busting hash: seahash of the bytes, in lowercase hex without padding.
pub(crate) fn file_hash(bytes: &[u8]) -> String {
    format!("{:x}", seahash::hash(bytes))
}

/// An SRI `integrity` value as trunk writes it by default: `sha384-` and the base64 digest.
pub(crate) fn sri(bytes: &[u8]) -> String {
    format!("sha384-{}", STANDARD.encode(Sha384::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sri_of_a_known_text() {
        // `printf 'alert(1)' | openssl dgst -sha384 -binary | base64`
        assert_eq!(
            sri(b"alert(1)"),
            "sha384-HT2E9NfWiuQ/w1PRai+hTyqW16NIoCGA/m8VQDUopfAtcz6YQjtsMmQd5uRbVDpW"
        );
    }
}
