//! TLS: the lab's own CA, the names its TLS services answer to (some broken on purpose),
//! and each handshake shown as an event. rustls on ring; certificates made with rcgen; no
//! OpenSSL in the lab.
//!
//! ## Layout
//! - this file: [`Tls`], what a TLS service holds (the CA and the sites), made once at
//!   the start; and the key log of `--tls-keylog`.
//! - [`ca`]: the CA, kept in the data directory (or in memory with `--ephemeral`), and an
//!   intermediate under it made at each start.
//! - [`sites`]: the names and their certificates: `localhost`, and the broken names
//!   (`expired.localhost` ...) picked by SNI.
//! - [`hello`]: the ClientHello as the client sent it, and its JA4 fingerprint.
//! - [`accept`](mod@accept): one handshake, under a deadline, and its event.
//! - [`wire`]: [`Wire`], plain TCP or TLS, which the HTTP engine serves either way.
//! - [`tcp`](mod@tcp): the TLS TCP service, a TLS front on the TCP service.
//! - [`listener`]: the dashboard over HTTPS and WSS (`--dashboard-tls`).
//!
//! ## Rules
//! - The ClientHello is read by the lab first (at most 32 KiB in at most 16 records,
//!   parsed again only when a record is whole, within the handshake's 10 s), so what is
//!   not TLS (a plain HTTP request, garbage, a hello cut short) is named in the event and
//!   never reaches rustls. A plain HTTP request is answered `400` in plain HTTP, saying to
//!   use `https://`, as nginx does.
//! - A handshake that does not finish in 10 s is closed. While it runs it holds one of
//!   its service's connection slots (`--max-http-conns` for HTTPS, `--max-tcp-conns` for
//!   the TLS TCP service), so unfinished handshakes are bounded, and each holds at most
//!   its ClientHello's bytes. The dashboard's run in their own tasks, 256 at most.
//! - Responses end with `close_notify`; a client that closes without one has closed
//!   (most do), not failed.

pub mod accept;
pub mod ca;
pub mod hello;
pub mod listener;
pub mod sites;
pub mod tcp;
pub mod wire;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;

pub use accept::accept;
pub use wire::Wire;

use crate::config::Config;

/// What the lab's TLS services share: the CA and the names they answer to.
pub struct Tls {
    /// The lab's root CA.
    pub ca: ca::Ca,
    /// Where `ca.pem` is kept; none when made in memory.
    pub ca_file: Option<PathBuf>,
    /// Why the CA in the data directory could not be used (the lab then made one in
    /// memory for this run, as the store falls back to memory): for a notice.
    pub trouble: Option<String>,
    /// The names of the HTTPS service (ALPN `http/1.1`).
    pub https: sites::Sites,
    /// The names of the TLS TCP service (no ALPN).
    pub tcp: sites::Sites,
    /// The dashboard's: its good name only, and never in the key log (its token would be
    /// in a capture's reach).
    pub dashboard: sites::Sites,
}

impl Tls {
    /// Reads or makes the CA, and makes the sites' certificates.
    pub fn new(config: &Config) -> anyhow::Result<Tls> {
        let dir = (!config.ephemeral).then_some(config.data_dir.as_path());
        let (ca, ca_file, trouble) = match ca::Ca::root(dir) {
            Ok((ca, file)) => (ca, file, None),
            Err(e) => {
                let why = format!(
                    "the lab's CA in {} cannot be used ({e:#}); this run uses one made in \
                     memory, which clients must be given anew (/api/ca.pem)",
                    config.data_dir.display()
                );
                let (ca, _) = ca::Ca::root(None).context("the lab's CA")?;
                (ca, None, Some(why))
            }
        };
        let intermediate = ca.intermediate("wirelab intermediate CA", 90)?;
        let key_log = match &config.tls_keylog {
            Some(path) => Some(KeyLogFile::open(path)? as Arc<dyn rustls::KeyLog>),
            None => None,
        };
        let mut common = sites::Common {
            alpn: vec![b"http/1.1".to_vec()],
            key_log,
            extra_names: extra_names(config),
            broken: true,
        };
        let https = sites::Sites::new(&intermediate, &common).context("the lab's certificates")?;
        common.alpn.clear();
        let tcp = sites::Sites::new(&intermediate, &common).context("the lab's certificates")?;
        common.alpn = vec![b"http/1.1".to_vec()];
        common.key_log = None;
        common.broken = false;
        let dashboard =
            sites::Sites::new(&intermediate, &common).context("the lab's certificates")?;
        Ok(Tls {
            ca,
            ca_file,
            trouble,
            https,
            tcp,
            dashboard,
        })
    }
}

/// The names and addresses the good certificate is for besides `localhost`: each TLS
/// listener's address off loopback, and this machine's host name when one binds to every
/// address (`0.0.0.0`), which is how a dashboard is usually reached from elsewhere.
fn extra_names(config: &Config) -> Vec<String> {
    let mut names = Vec::new();
    let addrs = [Some(config.dashboard), config.https.0, config.tls_tcp.0];
    for ip in addrs.into_iter().flatten().map(|a| a.ip()) {
        if ip.is_unspecified() {
            if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
                names.push(host.trim().to_owned());
            }
        } else if !ip.is_loopback() {
            names.push(ip.to_string());
        }
    }
    names.retain(|n| !n.is_empty() && n != "localhost");
    names.sort();
    names.dedup();
    names
}

/// `--tls-keylog`: session secrets in the NSS key-log format, which Wireshark reads to
/// decrypt a capture.
#[derive(Debug)]
struct KeyLogFile(Mutex<File>);

impl KeyLogFile {
    fn open(path: &Path) -> anyhow::Result<Arc<KeyLogFile>> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("--tls-keylog {}", path.display()))?;
        // Whoever reads it can decrypt the sessions: an existing file others may read is
        // refused rather than appended to.
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "--tls-keylog {}: others may read it (mode {:o}); `chmod 600` it, or name a new file",
                path.display(),
                mode & 0o777
            );
        }
        Ok(Arc::new(KeyLogFile(Mutex::new(file))))
    }
}

impl rustls::KeyLog for KeyLogFile {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let line = format!("{label} {} {}\n", hex(client_random), hex(secret));
        if let Ok(mut file) = self.0.lock() {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_good_certificate_names_the_addresses_the_lab_is_reached_at() {
        let mut config = Config::for_tests();
        assert!(extra_names(&config).is_empty(), "all on loopback");
        config.dashboard = "0.0.0.0:8080".parse().unwrap();
        config.https = crate::config::ServiceAddr(Some("192.0.2.7:1443".parse().unwrap()));
        let names = extra_names(&config);
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let host = host.trim();
        if !host.is_empty() && host != "localhost" {
            assert!(names.contains(&host.to_owned()), "{names:?}");
        }
        assert!(names.contains(&"192.0.2.7".to_owned()), "{names:?}");
    }
}
