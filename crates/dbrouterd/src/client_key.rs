//! The RSA key pair `caching_sha2_password` clients without TLS encrypt their password with,
//! as MySQL's `caching_sha2_password_private_key_path`. Needed only for users configured with
//! a `password_hash` (the fast path needs the cleartext, which dbrouterd then does not have).
//!
//! `rsa_private_key` names a PEM file read at start; without it dbrouterd generates a 2048-bit
//! pair the first time a client needs one (off the session threads) and keeps it until it
//! stops, as MySQL generates its own at first start. If that ever fails, such clients are
//! switched to `mysql_native_password` instead.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::OnceCell;
use tracing::{info, warn};

use crate::protocol::caching_sha2::{ServerKey, GENERATED_KEY_BITS};

#[derive(Default)]
pub struct ClientKey {
    key: OnceCell<Option<Arc<ServerKey>>>,
}

impl ClientKey {
    /// The configured key (read now: a file that cannot be used stops the start with its
    /// name), or one generated when first needed.
    pub fn load(path: Option<&Path>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(ClientKey::default());
        };
        let what = |e: &dyn std::fmt::Display| format!("rsa_private_key {}: {e}", path.display());
        let pem = std::fs::read_to_string(path).map_err(|e| what(&e))?;
        let key = ServerKey::from_pem(&pem).map_err(|e| what(&e))?;
        Ok(ClientKey {
            key: OnceCell::new_with(Some(Some(Arc::new(key)))),
        })
    }

    /// The key pair; generated on the first call when none was configured (callers wait for
    /// it). `None` when generating failed.
    pub async fn get(&self) -> Option<Arc<ServerKey>> {
        self.key
            .get_or_init(|| async {
                let generated =
                    tokio::task::spawn_blocking(|| ServerKey::generate(GENERATED_KEY_BITS))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|key| key.map_err(|e| e.to_string()));
                match generated {
                    Ok(key) => {
                        info!(
                            bits = key.bits(),
                            "generated an RSA key pair for caching_sha2_password clients without TLS"
                        );
                        Some(Arc::new(key))
                    }
                    Err(e) => {
                        warn!(error = %e, "no RSA key pair: caching_sha2_password clients without TLS get mysql_native_password");
                        None
                    }
                }
            })
            .await
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_key_file() -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(
            &mut f,
            include_str!("protocol/caching_sha2_test_key.pem").as_bytes(),
        )
        .expect("write");
        f
    }

    #[tokio::test]
    async fn a_configured_key_is_used_as_it_is() {
        let f = test_key_file();
        let key = ClientKey::load(Some(f.path())).expect("load");
        assert_eq!(key.get().await.map(|k| k.bits()), Some(1024));
    }

    #[test]
    fn a_bad_key_file_is_named() {
        let e = ClientKey::load(Some(Path::new("/nonexistent/dbrouterd.key")))
            .err()
            .expect("missing file");
        assert!(
            e.starts_with("rsa_private_key /nonexistent/dbrouterd.key: "),
            "{e}"
        );
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut f, b"not a key").expect("write");
        let e = ClientKey::load(Some(f.path())).err().expect("garbage");
        assert!(e.contains("not an RSA private key"), "{e}");
    }

    #[tokio::test]
    async fn without_a_file_one_pair_is_generated_and_kept() {
        let key = ClientKey::load(None).expect("load");
        let (a, b) = tokio::join!(key.get(), key.get());
        let (a, b) = (a.expect("generated"), b.expect("generated"));
        assert_eq!(a.bits(), GENERATED_KEY_BITS);
        assert!(Arc::ptr_eq(&a, &b), "one pair for every caller");
    }
}
