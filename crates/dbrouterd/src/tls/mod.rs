//! TLS for clients: a listener's certificate and key loaded from PEM files into a rustls
//! acceptor (TLS 1.2 and 1.3, no client certificates), and the stream a session reads and
//! writes whether or not the client switched to TLS ([`ClientStream`]). TLS towards the
//! servers is [`backend`].
//!
//! A MySQL client asks for TLS inside the protocol: it answers the greeting with an
//! SSLRequest, then starts the TLS handshake on the same socket, and the connection phase
//! goes on inside TLS (see `session::handshake`).

pub mod backend;
pub(crate) mod stream;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::ring;
use tokio_rustls::TlsAcceptor;

use crate::config::ListenerTls;

pub use stream::{ClientStream, Rewind, Switching};

/// How long a client that asked for TLS has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Pem(#[from] ha_core::tls::PemError),
    #[error("certificate {cert} and key {key} do not make a TLS configuration: {source}")]
    Config {
        cert: String,
        key: String,
        source: rustls::Error,
    },
}

/// A listener's TLS: the acceptor, and whether clients must use it.
#[derive(Clone)]
pub struct ServerTls {
    pub acceptor: TlsAcceptor,
    /// Plain-text clients are refused (ER_SECURE_TRANSPORT_REQUIRED).
    pub require: bool,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("require", &self.require)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads the listener's `tls` section (the daemon does not start when this fails).
    pub fn load(tls: &ListenerTls) -> Result<Self, TlsError> {
        Ok(ServerTls {
            acceptor: acceptor(&tls.cert, &tls.key)?,
            require: tls.require,
        })
    }
}

/// An acceptor serving the certificate chain in `cert` with the private key in `key`.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let ha_core::tls::CertAndKey {
        chain,
        key: key_der,
    } = ha_core::tls::load(cert, key)?;
    let config_error = |source| TlsError::Config {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        source,
    };
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(config_error)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        let Err(err) = acceptor(&missing, &missing) else {
            panic!("a missing file must fail");
        };
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        let Err(err) = acceptor(&empty, &empty) else {
            panic!("an empty file must fail");
        };
        assert!(
            matches!(
                err,
                TlsError::Pem(ha_core::tls::PemError::NoCertificate { .. })
            ),
            "{err}"
        );
    }
}
