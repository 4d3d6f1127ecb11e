//! TLS from dbrouterd to the database servers (`backend_tls`), with the modes of MySQL's
//! `--ssl-mode`: `preferred` and `required` encrypt without checking the certificate,
//! `verify_ca` checks that it chains to the configured CA, `verify_identity` also that it names
//! the server (the backend's `tls_name`, or the host of its address). A client certificate is
//! presented when configured (accounts that `REQUIRE X509`).
//!
//! The switch happens inside the MySQL protocol: dbrouterd answers the server's greeting with
//! an SSLRequest, runs the TLS handshake on the same socket, and sends its login inside TLS
//! (see `pool::conn`).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use crate::config::{BackendTls as Settings, BackendTlsMode};

#[derive(Debug, thiserror::Error)]
pub enum BackendTlsError {
    #[error("backend_tls: {0}")]
    Pem(#[from] ha_core::tls::PemError),
    #[error("backend_tls.ca {file}: {source}")]
    Ca { file: String, source: rustls::Error },
    #[error("backend_tls: the CA certificates do not make a verifier: {0}")]
    Verifier(String),
    #[error("backend_tls: {0}")]
    Config(rustls::Error),
}

/// What a backend connection needs for TLS: the mode and a connector built from the files.
#[derive(Clone)]
pub struct BackendTls {
    pub mode: BackendTlsMode,
    pub connector: TlsConnector,
}

impl std::fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendTls")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl BackendTls {
    /// Reads the files of the `backend_tls` section; `None` when TLS is disabled.
    pub fn load(settings: &Settings) -> Result<Option<Arc<Self>>, BackendTlsError> {
        if settings.mode == BackendTlsMode::Disabled {
            return Ok(None);
        }
        let provider = Arc::new(ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (settings.mode, &settings.ca) {
            (BackendTlsMode::VerifyCa | BackendTlsMode::VerifyIdentity, Some(ca)) => {
                let mut roots = RootCertStore::empty();
                for cert in ha_core::tls::certificates(ca)? {
                    roots.add(cert).map_err(|source| BackendTlsError::Ca {
                        file: ca.display().to_string(),
                        source,
                    })?;
                }
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| BackendTlsError::Verifier(e.to_string()))?;
                if settings.mode == BackendTlsMode::VerifyCa {
                    Arc::new(ChainOnly(webpki))
                } else {
                    webpki
                }
            }
            // Validation refuses a verify mode without a CA; encrypt-only otherwise.
            _ => Arc::new(AnyCertificate(provider.clone())),
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(BackendTlsError::Config)?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&settings.cert, &settings.key) {
            (Some(cert), Some(key)) => {
                let pair = ha_core::tls::load(cert, key)?;
                builder
                    .with_client_auth_cert(pair.chain, pair.key)
                    .map_err(BackendTlsError::Config)?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Some(Arc::new(BackendTls {
            mode: settings.mode,
            connector: TlsConnector::from(Arc::new(config)),
        })))
    }

    /// Whether a server that does not offer TLS is refused (every mode but `preferred`).
    pub fn required(&self) -> bool {
        self.mode != BackendTlsMode::Preferred
    }
}

/// The name a backend's certificate must carry: `tls_name`, or the host of `address`
/// (`host:port`, `[v6]:port`). `None` when that is not a valid DNS name or IP address.
pub fn server_name(address: &str, tls_name: Option<&str>) -> Option<ServerName<'static>> {
    let host = match tls_name {
        Some(name) => name,
        None => {
            let (host, _) = address.rsplit_once(':')?;
            host.trim_start_matches('[').trim_end_matches(']')
        }
    };
    ServerName::try_from(host.to_string()).ok()
}

/// `preferred` and `required`: any certificate; the handshake's signatures are still checked,
/// so the session key is the server's.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify_ca`: the chain must lead to the CA; the name in the certificate is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_to_verify_is_tls_name_or_the_host_of_the_address() {
        let name = |a: &str, t: Option<&str>| server_name(a, t).map(|n| n.to_str().into_owned());
        assert_eq!(
            name("db1.example:3306", None).as_deref(),
            Some("db1.example")
        );
        assert_eq!(name("10.0.1.11:3306", None).as_deref(), Some("10.0.1.11"));
        assert_eq!(name("[fd00::11]:3306", None).as_deref(), Some("fd00::11"));
        assert_eq!(
            name("10.0.1.11:3306", Some("db1.internal")).as_deref(),
            Some("db1.internal")
        );
        assert_eq!(name("no port", None), None);
        assert_eq!(name("x:1", Some("bad name!")), None);
    }

    #[test]
    fn disabled_needs_nothing_and_a_missing_ca_is_named() {
        assert!(BackendTls::load(&Settings::default())
            .expect("disabled")
            .is_none());
        let required = BackendTls::load(&Settings {
            mode: BackendTlsMode::Required,
            ..Settings::default()
        })
        .expect("required needs no file")
        .expect("enabled");
        assert!(required.required());
        let err = BackendTls::load(&Settings {
            mode: BackendTlsMode::VerifyCa,
            ca: Some("/nonexistent/ca.pem".into()),
            ..Settings::default()
        })
        .expect_err("missing CA file");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
