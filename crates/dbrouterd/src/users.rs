//! The configured database users: what clients are checked against and what dbrouterd logs
//! in to backends with.
//!
//! A user configured with a cleartext `password` can be verified with any plugin and can log
//! in to any backend at any time (pool warm-up included). A user configured with only its
//! `password_hash` (`*HEX`, the mysql_native_password hash) is verified with
//! mysql_native_password; verifying recovers SHA1(password), which is what dbrouterd then uses
//! to log in to backends as that user, so its pools fill only after the user's first login.
//! Secrets never appear in `Debug` output or logs.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use crate::config::User;
use crate::protocol::auth::{Credential, NativePasswordHash, PasswordSha1};

/// What dbrouterd answers a backend's challenge with.
#[derive(Clone)]
pub enum BackendSecret {
    Password(Vec<u8>),
    /// SHA1(password), recovered from a client's mysql_native_password login.
    Sha1(PasswordSha1),
}

impl fmt::Debug for BackendSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackendSecret(..)")
    }
}

pub struct UserEntry {
    pub name: String,
    pub credential: Credential,
    /// Logins without TLS are refused.
    pub require_tls: bool,
    learned: Mutex<Option<PasswordSha1>>,
}

impl UserEntry {
    /// The secret for backend logins, if known yet.
    pub fn backend_secret(&self) -> Option<BackendSecret> {
        match &self.credential {
            Credential::Password(pw) => Some(BackendSecret::Password(pw.clone())),
            Credential::NativeHash(_) => self
                .learned
                .lock()
                .ok()
                .and_then(|g| *g)
                .map(BackendSecret::Sha1),
        }
    }

    /// Checks a mysql_native_password response to `scramble`, remembering SHA1(password) for
    /// hash-only users.
    pub fn verify_native(&self, scramble: &[u8], response: &[u8]) -> bool {
        match &self.credential {
            Credential::NativeHash(hash) => match hash.verify(scramble, response) {
                Some(sha1) => {
                    if let Ok(mut learned) = self.learned.lock() {
                        *learned = Some(sha1);
                    }
                    true
                }
                None => false,
            },
            other => other.verify_native(scramble, response),
        }
    }
}

/// Users by name.
#[derive(Default)]
pub struct Users {
    by_name: HashMap<Vec<u8>, std::sync::Arc<UserEntry>>,
}

impl Users {
    pub fn from_config(users: &[User]) -> Self {
        let mut by_name = HashMap::new();
        for u in users {
            let credential = match (&u.password, &u.password_hash) {
                (Some(pw), _) => Credential::Password(pw.0.as_bytes().to_vec()),
                (None, Some(hash)) => match NativePasswordHash::parse(&hash.0) {
                    Ok(h) => Credential::NativeHash(h),
                    // Validation rejects such files; never let a bad hash match anything.
                    Err(_) => continue,
                },
                (None, None) => continue,
            };
            by_name.insert(
                u.name.as_bytes().to_vec(),
                std::sync::Arc::new(UserEntry {
                    name: u.name.clone(),
                    credential,
                    require_tls: u.require_tls,
                    learned: Mutex::new(None),
                }),
            );
        }
        Users { by_name }
    }

    pub fn get(&self, name: &[u8]) -> Option<std::sync::Arc<UserEntry>> {
        self.by_name.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::protocol::auth::scramble_native;

    #[test]
    fn a_hash_only_user_learns_its_backend_secret_at_login() {
        let users = Users::from_config(&[User {
            name: "report".into(),
            password: None,
            password_hash: Some(Secret("*791C51FBA9525165285F44C57F2B3F5E11DDE6AC".into())),
            require_tls: false,
        }]);
        let user = users.get(b"report").expect("user");
        assert!(user.backend_secret().is_none());
        let scramble = [7u8; 20];
        let response = scramble_native(&scramble, b"reportpw").expect("response");
        assert!(!user.verify_native(&scramble, b"wrong response......"));
        assert!(user.verify_native(&scramble, &response));
        assert!(matches!(
            user.backend_secret(),
            Some(BackendSecret::Sha1(_))
        ));
    }
}
