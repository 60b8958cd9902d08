//! A TLS handshake told the way `curl -v` and `openssl s_client` tell theirs: what the
//! client offered, what was chosen, the certificate served, or why it failed.

use std::fmt::Write;

use wirelab_shared::TlsHandshake;

use crate::fmt;

/// One line for the timeline.
pub fn summary(x: &TlsHandshake) -> String {
    let name = if x.sni.is_empty() { "(no SNI)" } else { &x.sni };
    match &x.error {
        Some(e) => format!(
            "{name}: failed after {}: {e}",
            fmt::duration_us(x.handshake_us)
        ),
        None => format!(
            "{name}: {} {}, ALPN {}, {}",
            x.version,
            x.cipher,
            or_none(&x.alpn_chosen),
            fmt::duration_us(x.handshake_us)
        ),
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "none" } else { s }
}

/// The whole handshake, for the detail pane.
pub fn verbose(x: &TlsHandshake) -> String {
    let mut out = String::new();
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    let _ = writeln!(
        out,
        "* TLS handshake on {} from {} (connection #{}), {}",
        x.service,
        x.peer,
        x.conn,
        fmt::duration_us(x.handshake_us)
    );
    if !x.ja4.is_empty() {
        let _ = writeln!(out, "* ClientHello (JA4 {}):", x.ja4);
        for (what, v) in [
            ("server name (SNI)", std::slice::from_ref(&x.sni)),
            ("ALPN", &x.alpn[..]),
            ("versions", &x.versions[..]),
            ("cipher suites", &x.ciphers[..]),
            ("groups", &x.groups[..]),
            ("key shares", &x.key_shares[..]),
            ("signature algorithms", &x.sig_algs[..]),
        ] {
            let v: Vec<String> = v.iter().filter(|s| !s.is_empty()).cloned().collect();
            let _ = writeln!(out, "*   {what}: {}", list(&v));
        }
    }
    if !x.cert.is_empty() {
        let _ = writeln!(out, "* Server certificate: {}", x.cert);
    }
    match &x.error {
        Some(e) => {
            let _ = writeln!(out, "* Handshake failed: {e}");
        }
        None => {
            let _ = writeln!(out, "* SSL connection using {} / {}", x.version, x.cipher);
            let _ = writeln!(out, "* ALPN: server accepted {}", or_none(&x.alpn_chosen));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_handshake_says_why_and_a_good_one_what_was_chosen() {
        let mut x = TlsHandshake {
            service: "https".into(),
            conn: 3,
            sni: "expired.localhost".into(),
            alpn: vec!["h2".into(), "http/1.1".into()],
            ja4: "t13d".into(),
            handshake_us: 1500,
            error: Some("the client rejected the certificate: certificate expired".into()),
            ..TlsHandshake::default()
        };
        assert!(summary(&x).starts_with("expired.localhost: failed after"));
        let v = verbose(&x);
        assert!(v.contains("*   ALPN: h2, http/1.1\n"), "{v}");
        assert!(v.contains("* Handshake failed: the client rejected"), "{v}");
        x.error = None;
        x.version = "TLSv1.3".into();
        x.cipher = "TLS13_AES_128_GCM_SHA256".into();
        assert!(verbose(&x).contains("* SSL connection using TLSv1.3 / TLS13_AES_128_GCM_SHA256"));
        assert!(summary(&x).contains("ALPN none"));
    }
}
