//! TLS termination with rustls: each listener's certificates loaded from PEM files, the one
//! served chosen by SNI (the first whose certificate is valid for the name the client asked
//! for, else the first), TLS 1.2 and 1.3, ALPN offering h2 and http/1.1.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::pki_types::ServerName;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::config::Tls;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Pem(#[from] ha_core::tls::PemError),
    #[error("{file}: unsupported private key: {source}")]
    Key { file: String, source: rustls::Error },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

#[derive(Debug)]
struct SniResolver {
    /// Each certificate with its end-entity DER, to test names against.
    keys: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let by_name = hello.server_name().and_then(|name| {
            let name = ServerName::try_from(name).ok()?;
            self.keys.iter().find(|key| {
                key.end_entity_cert().is_ok_and(|der| {
                    webpki::EndEntityCert::try_from(der)
                        .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
                })
            })
        });
        by_name.or_else(|| self.keys.first()).cloned()
    }
}

fn load_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let pem = ha_core::tls::load(cert, key)?;
    let signing = ring::sign::any_supported_type(&pem.key).map_err(|source| TlsError::Key {
        file: key.display().to_string(),
        source,
    })?;
    Ok(CertifiedKey::new(pem.chain, signing))
}

/// The acceptor for a listener's `tls` section.
pub fn acceptor(tls: &Tls) -> Result<TlsAcceptor, TlsError> {
    let keys = tls
        .certificates
        .iter()
        .map(|c| load_key(&c.cert, &c.key).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SniResolver { keys }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
