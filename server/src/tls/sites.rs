//! The names a TLS service answers to, each with the certificate (and TLS versions) its
//! name says: `localhost` (and the lab's addresses) get a good chain from the lab's CA;
//! the broken names (badssl.com's idea, on the lab's own port, chosen by SNI) each get a
//! certificate that every client rejects the way it would in the wild.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::ca::Ca;

/// How long the lab's leaf certificates are valid (they are made at each start).
const LEAF_DAYS: u64 = 90;

/// One name on a TLS service and what it serves.
pub struct Site {
    /// The name (SNI) that picks it; `localhost` is also what a client naming none, or a
    /// name the lab does not know, gets.
    pub name: &'static str,
    /// What is wrong with it, in words (empty for the good one).
    pub broken: &'static str,
    /// What a client says when it rejects it: curl's exit code and message.
    pub expect: &'static str,
    /// Its TLS settings.
    pub config: Arc<ServerConfig>,
}

/// The broken names: name, what is wrong, what curl says.
pub const BROKEN: [(&str, &str, &str); 7] = [
    (
        "expired.localhost",
        "a certificate that expired yesterday",
        "curl: (60) certificate has expired",
    ),
    (
        "not-yet-valid.localhost",
        "a certificate valid from tomorrow",
        "curl: (60) certificate is not yet valid",
    ),
    (
        "wrong-host.localhost",
        "a certificate for another name (another-host.localhost)",
        "curl: (60) no alternative certificate subject name matches",
    ),
    (
        "self-signed.localhost",
        "a self-signed certificate",
        "curl: (60) self-signed certificate",
    ),
    (
        "untrusted-root.localhost",
        "a certificate from another CA (not the lab's)",
        "curl: (60) unable to get local issuer certificate",
    ),
    (
        "incomplete-chain.localhost",
        "the leaf without its intermediate",
        "curl: (60) unable to get local issuer certificate",
    ),
    (
        "tls12-only.localhost",
        "a good certificate, but TLS 1.2 only (refuses TLS 1.3)",
        "curl --tlsv1.3: (35) alert protocol version",
    ),
];

/// Every name of a service, by name.
pub struct Sites {
    by_name: HashMap<&'static str, Site>,
    good: Site,
}

/// Settings every site shares.
pub struct Common {
    /// ALPN protocols the service speaks, most wanted first.
    pub alpn: Vec<Vec<u8>>,
    /// Where session keys go (`--tls-keylog`), if anywhere.
    pub key_log: Option<Arc<dyn rustls::KeyLog>>,
    /// More names and addresses the good certificate is for (the dashboard's address
    /// off loopback).
    pub extra_names: Vec<String>,
    /// Serve the broken names too (not on the dashboard).
    pub broken: bool,
}

impl Sites {
    /// Makes every site's certificate: the good chain from `intermediate` (under `root`),
    /// and the broken ones.
    pub fn new(intermediate: &Ca, common: &Common) -> anyhow::Result<Sites> {
        let now = SystemTime::now();
        let day = Duration::from_secs(86400);
        let chain = |leaf: CertificateDer<'static>, with_intermediate: bool| {
            let mut chain = vec![leaf];
            if with_intermediate {
                chain.push(intermediate.der.clone());
            }
            chain
        };
        let mut good_names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
        good_names.extend(common.extra_names.iter().cloned());
        let (cert, key) =
            intermediate.sign(&leaf(good_names, now - day, now + day * LEAF_DAYS as u32)?)?;
        let good = site(common, "localhost", "", "", chain(cert, true), key, false)?;

        let mut by_name = HashMap::new();
        if !common.broken {
            return Ok(Sites { by_name, good });
        }
        let other_ca = Ca::new_root("untrusted CA")?;
        for (name, broken, expect) in BROKEN {
            let names = vec![name.to_owned()];
            let valid = leaf(names.clone(), now - day, now + day * LEAF_DAYS as u32)?;
            let (certs, key, tls12) = match name {
                "expired.localhost" => {
                    let (c, k) = intermediate.sign(&leaf(names, now - day * 30, now - day)?)?;
                    (chain(c, true), k, false)
                }
                "not-yet-valid.localhost" => {
                    let (c, k) = intermediate.sign(&leaf(names, now + day, now + day * 30)?)?;
                    (chain(c, true), k, false)
                }
                "wrong-host.localhost" => {
                    let other = leaf(
                        vec!["another-host.localhost".into()],
                        now - day,
                        now + day * 30,
                    )?;
                    let (c, k) = intermediate.sign(&other)?;
                    (chain(c, true), k, false)
                }
                "self-signed.localhost" => {
                    let k = KeyPair::generate()?;
                    let c = valid.self_signed(&k)?;
                    (vec![c.der().clone()], k, false)
                }
                "untrusted-root.localhost" => {
                    let (c, k) = other_ca.sign(&valid)?;
                    (vec![c], k, false)
                }
                "incomplete-chain.localhost" => {
                    let (c, k) = intermediate.sign(&valid)?;
                    (chain(c, false), k, false)
                }
                _ => {
                    let (c, k) = intermediate.sign(&valid)?;
                    (chain(c, true), k, true)
                }
            };
            by_name.insert(name, site(common, name, broken, expect, certs, key, tls12)?);
        }
        Ok(Sites { by_name, good })
    }

    /// The site a client asking for `sni` gets (the good one for any name not listed).
    pub fn pick(&self, sni: &str) -> &Site {
        let sni = sni.trim_end_matches('.').to_ascii_lowercase();
        self.by_name.get(sni.as_str()).unwrap_or(&self.good)
    }
}

/// A leaf's parameters: for `names`, valid from `from` to `until`, for servers.
fn leaf(
    names: Vec<String>,
    from: SystemTime,
    until: SystemTime,
) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(names.clone())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names[0].as_str());
    dn.push(DnType::OrganizationName, "wirelab");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = from.into();
    params.not_after = until.into();
    Ok(params)
}

/// A site's TLS settings: its chain and key, TLS 1.3 and 1.2 (or 1.2 only), ALPN.
fn site(
    common: &Common,
    name: &'static str,
    broken: &'static str,
    expect: &'static str,
    chain: Vec<CertificateDer<'static>>,
    key: KeyPair,
    tls12_only: bool,
) -> anyhow::Result<Site> {
    // ring's provider has no post-quantum key exchange (rustls 0.23.48 deprecates it for
    // that): clients offering X25519MLKEM768 also offer X25519, which is what they get.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = common.alpn.clone();
    if let Some(log) = &common.key_log {
        config.key_log = log.clone();
    }
    Ok(Site {
        name,
        broken,
        expect,
        config: Arc::new(config),
    })
}
