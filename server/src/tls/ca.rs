//! The lab's certificate authority: made at the first start into the data directory
//! (`ca.pem`, and `ca.key` readable by its owner only), kept across restarts; with
//! `--ephemeral`, made in memory for the run. An intermediate CA under it is made at each
//! start, and signs every certificate the lab serves, so chains look as they do in the
//! wild (and one can be served incomplete on purpose).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

/// The start of the lab root's name (its end: part of its key's hash).
const ROOT: &str = "wirelab CA";

/// How long the root is valid: ten years from its making.
const ROOT_DAYS: u64 = 3650;

/// A certificate authority: its certificate, and what signs with it.
pub struct Ca {
    /// Its certificate, PEM (what `/api/ca.pem` serves).
    pub pem: String,
    /// Its certificate, DER.
    pub der: CertificateDer<'static>,
    /// Its subject's common name.
    pub name: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// The lab's root: read from `dir` (made there at the first start), or made in memory
    /// when `dir` is none. Where it lives is returned with it.
    pub fn root(dir: Option<&Path>) -> anyhow::Result<(Ca, Option<PathBuf>)> {
        let Some(dir) = dir else {
            return Ok((Ca::new_root(ROOT)?, None));
        };
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
        let redo = || {
            format!(
                "remove {} and {} to make a new CA (clients trusting the old one must be \
                 given the new one)",
                cert_path.display(),
                key_path.display()
            )
        };
        if cert_path.exists() || key_path.exists() {
            let key = std::fs::read_to_string(&key_path)
                .with_context(|| format!("reading {}; {}", key_path.display(), redo()))?;
            let pem = std::fs::read_to_string(&cert_path)
                .with_context(|| format!("reading {}; {}", cert_path.display(), redo()))?;
            let key = KeyPair::from_pem(&key).with_context(|| {
                format!(
                    "{} holds no key rcgen reads; {}",
                    key_path.display(),
                    redo()
                )
            })?;
            let der = CertificateDer::from_pem_slice(pem.as_bytes()).with_context(|| {
                format!("{} holds no certificate; {}", cert_path.display(), redo())
            })?;
            // The certificate carries its key's SubjectPublicKeyInfo as is: a certificate
            // and a key that do not belong together would sign chains no client verifies.
            let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
            if !der.windows(spki.len()).any(|w| w == spki.as_slice()) {
                anyhow::bail!(
                    "{} is not the certificate of the key in {}; {}",
                    cert_path.display(),
                    key_path.display(),
                    redo()
                );
            }
            let name = name_for(ROOT, &key);
            let params = root_params(&name);
            return Ok((
                Ca {
                    pem,
                    der,
                    name,
                    issuer: Issuer::new(params, key),
                },
                Some(cert_path),
            ));
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca = Ca::new_root(ROOT)?;
        // Each written aside and renamed into place: a crash leaves no half-written file.
        let key = ca.issuer.key().serialize_pem();
        let (key_tmp, cert_tmp) = (dir.join(".ca.key.tmp"), dir.join(".ca.pem.tmp"));
        let _ = std::fs::remove_file(&key_tmp);
        write_private(&key_tmp, key.as_bytes())
            .with_context(|| format!("writing {}", key_tmp.display()))?;
        std::fs::write(&cert_tmp, &ca.pem)
            .with_context(|| format!("writing {}", cert_tmp.display()))?;
        std::fs::rename(&key_tmp, &key_path)
            .with_context(|| format!("writing {}", key_path.display()))?;
        std::fs::rename(&cert_tmp, &cert_path)
            .with_context(|| format!("writing {}", cert_path.display()))?;
        Ok((ca, Some(cert_path)))
    }

    /// A new self-signed root. Its name carries part of its key's hash, so two labs' roots
    /// (or the lab's and the untrusted one it serves on purpose) never share a name.
    pub fn new_root(prefix: &str) -> anyhow::Result<Ca> {
        let key = KeyPair::generate()?;
        let name = name_for(prefix, &key);
        let mut params = root_params(&name);
        params.not_before = (SystemTime::now() - Duration::from_secs(3600)).into();
        params.not_after = (SystemTime::now() + Duration::from_secs(ROOT_DAYS * 86400)).into();
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            pem: cert.pem(),
            der: cert.der().clone(),
            name,
            issuer: Issuer::new(params, key),
        })
    }

    /// An intermediate CA under this one, valid for `days`.
    pub fn intermediate(&self, name: &str, days: u64) -> anyhow::Result<Ca> {
        let key = KeyPair::generate()?;
        let mut params = root_params(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.not_before = (SystemTime::now() - Duration::from_secs(3600)).into();
        params.not_after = (SystemTime::now() + Duration::from_secs(days * 86400)).into();
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Ca {
            pem: cert.pem(),
            der: cert.der().clone(),
            name: name.to_owned(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Signs a leaf for `params` with a new key: the certificate and its key.
    pub fn sign(
        &self,
        params: &CertificateParams,
    ) -> anyhow::Result<(CertificateDer<'static>, KeyPair)> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.der().clone(), key))
    }

    /// The SHA-256 fingerprint of its certificate, as `openssl x509 -fingerprint -sha256`
    /// prints it (`AB:CD:...`).
    pub fn fingerprint(&self) -> String {
        Sha256::digest(&self.der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// A root's name, from its key (so a root read back from disk gets the name it was made
/// with).
fn name_for(prefix: &str, key: &KeyPair) -> String {
    let hash = Sha256::digest(rcgen::PublicKeyData::der_bytes(key));
    format!("{prefix} {}", &hex(&hash)[..8])
}

/// A CA's parameters: its name, `CA:TRUE`, and the key usages a CA needs.
fn root_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, "wirelab");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_root_is_made_once_into_the_directory_and_read_back() {
        let dir = std::env::temp_dir().join(format!("wirelab-ca-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (made, at) = Ca::root(Some(&dir)).unwrap();
        assert_eq!(at, Some(dir.join("ca.pem")));
        let mode = std::fs::metadata(dir.join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key is its owner's only");
        let (read, _) = Ca::root(Some(&dir)).unwrap();
        assert_eq!(read.der, made.der, "the same root across restarts");
        assert_eq!(read.name, made.name);
        // Another CA's key with this certificate: refused, not used.
        let (_, other) = {
            let other_dir = dir.join("other");
            let made = Ca::root(Some(&other_dir)).unwrap();
            (
                made,
                std::fs::read_to_string(other_dir.join("ca.key")).unwrap(),
            )
        };
        let mine = std::fs::read_to_string(dir.join("ca.key")).unwrap();
        std::fs::write(dir.join("ca.key"), &other).unwrap();
        let err = Ca::root(Some(&dir)).err().unwrap();
        assert!(
            format!("{err:#}").contains("is not the certificate of the key"),
            "{err:#}"
        );
        std::fs::write(dir.join("ca.key"), mine).unwrap();
        assert!(Ca::root(Some(&dir)).is_ok());
        std::fs::write(dir.join("ca.key"), "not a key").unwrap();
        let err = Ca::root(Some(&dir)).err().unwrap();
        assert!(format!("{err:#}").contains("to make a new CA"), "{err:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
