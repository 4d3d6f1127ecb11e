//! The PEM files of TLS: a certificate chain and its private key, read the same way by every
//! daemon that terminates TLS (proxyd's HTTPS listeners, dbrouterd's MySQL clients) or presents
//! a client certificate, and the CA certificates a client trusts; errors name the file.

use std::path::Path;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file} holds no PEM certificate")]
    NoCertificate { file: String },
    #[error("{file} holds no PEM private key")]
    NoKey { file: String },
}

/// A certificate chain (end entity first) and its private key.
#[derive(Debug)]
pub struct CertAndKey {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

fn read(file: &Path) -> Result<Vec<u8>, PemError> {
    std::fs::read(file).map_err(|source| PemError::Read {
        file: file.display().to_string(),
        source,
    })
}

/// Every PEM certificate in `file` (a chain, or the CAs a client trusts); at least one.
pub fn certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let pem = read(file)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| PemError::Read {
            file: file.display().to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(PemError::NoCertificate {
            file: file.display().to_string(),
        });
    }
    Ok(certs)
}

/// Reads the chain in `cert` and the first private key (PKCS#8, PKCS#1 or SEC1) in `key`.
pub fn load(cert: &Path, key: &Path) -> Result<CertAndKey, PemError> {
    let chain = certificates(cert)?;
    let key_pem = read(key)?;
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| PemError::Read {
            file: key.display().to_string(),
            source,
        })?
        .ok_or_else(|| PemError::NoKey {
            file: key.display().to_string(),
        })?;
    Ok(CertAndKey {
        chain,
        key: key_der,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        let err = load(&missing, &missing).expect_err("a missing file must fail");
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        let err = load(&empty, &empty).expect_err("an empty file must fail");
        assert!(matches!(err, PemError::NoCertificate { .. }), "{err}");
    }
}
