//! A TLS handshake told the way `curl -v` and `openssl s_client` tell theirs: what the
//! client offered, what was chosen, the certificate served, or why it failed. (Written
//! with `push_str`, not `format!`: each formatting call costs the wasm its own code.)

use wirelab_shared::TlsHandshake;

use crate::fmt;

/// One line for the timeline.
pub fn summary(x: &TlsHandshake) -> String {
    let mut out = String::from(if x.sni.is_empty() { "(no SNI)" } else { &x.sni });
    match &x.error {
        Some(e) => {
            out.push_str(": failed: ");
            out.push_str(e);
        }
        None => {
            for part in [
                ": ",
                &x.version,
                " ",
                &x.cipher,
                ", ALPN ",
                or_none(&x.alpn_chosen),
            ] {
                out.push_str(part);
            }
        }
    }
    out.push_str(", ");
    out.push_str(&fmt::duration_us(x.handshake_us));
    out
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "none" } else { s }
}

/// The whole handshake, for the detail pane.
pub fn verbose(x: &TlsHandshake) -> String {
    let mut out = String::new();
    let mut line = |parts: &[&str]| {
        out.push_str("* ");
        for p in parts {
            out.push_str(p);
        }
        out.push('\n');
    };
    let conn = x.conn.to_string();
    line(&[
        "TLS handshake on ",
        &x.service,
        " from ",
        &x.peer,
        " (connection #",
        &conn,
        ")",
    ]);
    if !x.ja4.is_empty() {
        line(&["ClientHello, JA4 ", &x.ja4]);
        line(&["  server name (SNI): ", or_none(&x.sni)]);
        for (what, v) in [
            ("ALPN", &x.alpn),
            ("versions", &x.versions),
            ("cipher suites", &x.ciphers),
            ("groups", &x.groups),
            ("key shares", &x.key_shares),
            ("signature algorithms", &x.sig_algs),
        ] {
            line(&["  ", what, ": ", or_none(&v.join(", "))]);
        }
    }
    if !x.cert.is_empty() {
        line(&["Server certificate: ", &x.cert]);
    }
    match &x.error {
        Some(e) => line(&["Handshake failed: ", e]),
        None => {
            line(&["SSL connection using ", &x.version, " / ", &x.cipher]);
            line(&["ALPN: server accepted ", or_none(&x.alpn_chosen)]);
        }
    }
    line(&["Handshake time: ", &fmt::duration_us(x.handshake_us)]);
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
        assert!(summary(&x).starts_with("expired.localhost: failed: the client rejected"));
        let v = verbose(&x);
        assert!(v.contains("*   ALPN: h2, http/1.1\n"), "{v}");
        assert!(v.contains("* Handshake failed: the client rejected"), "{v}");
        assert!(v.contains("(connection #3)"), "{v}");
        x.error = None;
        x.version = "TLSv1.3".into();
        x.cipher = "TLS13_AES_128_GCM_SHA256".into();
        assert!(verbose(&x).contains("* SSL connection using TLSv1.3 / TLS13_AES_128_GCM_SHA256"));
        assert!(summary(&x).contains("ALPN none"));
    }
}
