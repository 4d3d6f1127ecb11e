//! `caching_sha2_password` beyond the fast path: the AuthMoreData exchange of its full
//! authentication, for both sides dbrouterd plays.
//!
//! After the client's fast-auth scramble the server answers AuthMoreData (`0x01` + data):
//! `0x03` fast auth succeeded (an OK follows), `0x04` perform full authentication. Full
//! authentication needs the cleartext password:
//! - over TLS the client sends it as it is, NUL-terminated;
//! - without TLS the client asks for the server's RSA public key (a packet holding `0x02`), the
//!   server answers AuthMoreData with the key in PEM, and the client sends
//!   RSA-OAEP(SHA-1)((password + NUL) XOR scramble), the scramble repeated over the length.
//!
//! dbrouterd does both sides: as a client of backends ([`encrypt_password`] for the RSA path)
//! and as a server for its own clients ([`ServerKey`], holding the key pair it hands out and
//! decrypts with).

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};

/// The AuthMoreData packet's first byte.
pub const AUTH_MORE_DATA: u8 = 0x01;
/// The client asks for the server's public key.
pub const REQUEST_PUBLIC_KEY: u8 = 0x02;
/// AuthMoreData `0x03`: the fast path succeeded.
pub const FAST_AUTH_SUCCESS: u8 = 0x03;
/// AuthMoreData `0x04`: send the cleartext password (TLS) or ask for the key (RSA).
pub const PERFORM_FULL_AUTH: u8 = 0x04;

/// What a server's AuthMoreData packet during `caching_sha2_password` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoreData<'a> {
    FastAuthSuccess,
    PerformFullAuth,
    /// Anything else: a public key in answer to [`REQUEST_PUBLIC_KEY`], or data we do not know.
    Other(&'a [u8]),
}

impl<'a> MoreData<'a> {
    /// Reads an AuthMoreData payload (with its leading `0x01`); `None` for any other packet.
    pub fn parse(payload: &'a [u8]) -> Option<Self> {
        let (&first, data) = payload.split_first()?;
        if first != AUTH_MORE_DATA {
            return None;
        }
        Some(match data {
            [FAST_AUTH_SUCCESS] => Self::FastAuthSuccess,
            [PERFORM_FULL_AUTH] => Self::PerformFullAuth,
            other => Self::Other(other),
        })
    }
}

/// Why the password could not be encrypted for a backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RsaError {
    #[error("the server's public key is not an RSA public key in PEM (SPKI or PKCS#1)")]
    BadKey,
    #[error("the password is too long for the server's RSA key")]
    TooLong,
}

/// The cleartext as sent over TLS: the password and a NUL.
pub fn cleartext_response(password: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(password.len() + 1);
    out.extend_from_slice(password);
    out.push(0);
    out
}

/// Reads the cleartext a client sent over TLS: up to the first NUL (clients send one; a
/// missing one is tolerated, as the server does).
pub fn parse_cleartext(payload: &[u8]) -> &[u8] {
    match payload.iter().position(|&b| b == 0) {
        Some(end) => &payload[..end],
        None => payload,
    }
}

/// (password + NUL) XOR scramble, the scramble repeated as needed: what is RSA-encrypted.
pub fn xor_with_scramble(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    let mut out = cleartext_response(password);
    if !scramble.is_empty() {
        for (b, s) in out.iter_mut().zip(scramble.iter().cycle()) {
            *b ^= s;
        }
    }
    out
}

/// Parses the public key a server sent in PEM: `BEGIN PUBLIC KEY` (what MySQL sends) or
/// `BEGIN RSA PUBLIC KEY`.
pub fn parse_public_key(pem: &[u8]) -> Result<RsaPublicKey, RsaError> {
    let text = std::str::from_utf8(pem).map_err(|_| RsaError::BadKey)?;
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    RsaPublicKey::from_public_key_pem(text)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(text))
        .map_err(|_| RsaError::BadKey)
}

/// The RSA full-authentication response: RSA-OAEP(SHA-1) of the password XOR the scramble,
/// with the key the server sent in PEM.
pub fn encrypt_password(pem: &[u8], password: &[u8], scramble: &[u8]) -> Result<Vec<u8>, RsaError> {
    let key = parse_public_key(pem)?;
    let plain = xor_with_scramble(password, scramble);
    key.encrypt(&mut rand::thread_rng(), Oaep::new::<sha1::Sha1>(), &plain)
        .map_err(|_| RsaError::TooLong)
}

/// The size of the key pair dbrouterd generates when none is configured (MySQL's default).
pub const GENERATED_KEY_BITS: usize = 2048;

/// Why a configured private key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerKeyError {
    #[error("not an RSA private key in PEM (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`)")]
    NotAKey,
    #[error("the key has {0} bits; at least 1024 are needed")]
    TooSmall(usize),
    #[error("cannot generate an RSA key pair: {0}")]
    Generate(String),
    #[error("cannot write the public key: {0}")]
    Public(String),
}

/// dbrouterd's own key pair for `caching_sha2_password` clients without TLS: the public half
/// is sent in PEM to a client that asks for it, the private half decrypts its password.
pub struct ServerKey {
    private: RsaPrivateKey,
    public_pem: String,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerKey({} bits)", self.bits())
    }
}

impl ServerKey {
    /// Reads a private key in PEM, PKCS#8 or PKCS#1.
    pub fn from_pem(pem: &str) -> Result<Self, ServerKeyError> {
        let private = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| ServerKeyError::NotAKey)?;
        Self::new(private)
    }

    /// A fresh key pair of `bits` bits (slow: a quarter of a second for 2048 bits in an
    /// optimized build; run it off the session threads).
    pub fn generate(bits: usize) -> Result<Self, ServerKeyError> {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), bits)
            .map_err(|e| ServerKeyError::Generate(e.to_string()))?;
        Self::new(private)
    }

    fn new(private: RsaPrivateKey) -> Result<Self, ServerKeyError> {
        let bits = rsa::traits::PublicKeyParts::size(&private) * 8;
        if bits < 1024 {
            return Err(ServerKeyError::TooSmall(bits));
        }
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| ServerKeyError::Public(e.to_string()))?;
        Ok(ServerKey {
            private,
            public_pem,
        })
    }

    pub fn bits(&self) -> usize {
        rsa::traits::PublicKeyParts::size(&self.private) * 8
    }

    /// The public key as MySQL sends it: `BEGIN PUBLIC KEY` PEM.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// The password a client encrypted with [`encrypt_password`]: decrypted, XORed with the
    /// scramble again, without its NUL. `None` when it does not decrypt with this key.
    pub fn decrypt_password(&self, ciphertext: &[u8], scramble: &[u8]) -> Option<Vec<u8>> {
        // Blinded: the exponentiation's timing does not depend on what a client sent. The
        // `rsa` crate's arithmetic is not constant-time (RUSTSEC-2023-0071), so TLS remains
        // the better way for these logins (docs/configuration.md).
        let plain = self
            .private
            .decrypt_blinded(
                &mut rand::thread_rng(),
                Oaep::new::<sha1::Sha1>(),
                ciphertext,
            )
            .ok()?;
        if scramble.is_empty() {
            return None;
        }
        let sent: Vec<u8> = plain
            .iter()
            .zip(scramble.iter().cycle())
            .map(|(b, s)| b ^ s)
            .collect();
        // The client added a NUL before it XORed; a missing one is tolerated, as over TLS.
        let password = parse_cleartext(&sent).to_vec();
        Some(password)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway 1024-bit key for these tests only (generated with `openssl genpkey`), so the
    /// tests need no slow key generation.
    const TEST_KEY: &str = include_str!("caching_sha2_test_key.pem");

    fn test_server_key() -> &'static ServerKey {
        static KEY: std::sync::OnceLock<ServerKey> = std::sync::OnceLock::new();
        KEY.get_or_init(|| ServerKey::from_pem(TEST_KEY).expect("test key"))
    }

    fn keys() -> (RsaPrivateKey, String) {
        let private = RsaPrivateKey::from_pkcs8_pem(TEST_KEY).expect("test key");
        let public = rsa::pkcs8::EncodePublicKey::to_public_key_pem(
            &private.to_public_key(),
            rsa::pkcs8::LineEnding::LF,
        )
        .expect("public PEM");
        (private, public)
    }

    #[test]
    fn more_data_is_read() {
        assert_eq!(MoreData::parse(&[1, 3]), Some(MoreData::FastAuthSuccess));
        assert_eq!(MoreData::parse(&[1, 4]), Some(MoreData::PerformFullAuth));
        assert_eq!(MoreData::parse(&[1, b'-']), Some(MoreData::Other(b"-")));
        assert_eq!(MoreData::parse(&[0, 4]), None);
        assert_eq!(MoreData::parse(&[]), None);
    }

    #[test]
    fn our_key_decrypts_what_a_client_encrypted_with_its_public_half() {
        let key = ServerKey::from_pem(TEST_KEY).expect("PKCS#8 key");
        assert_eq!(key.bits(), 1024);
        assert!(key.public_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
        let scramble = b"abcdefghijklmnopqrst";
        for password in [&b"reportpw"[..], b"", &[b'x'; 60]] {
            let sent =
                encrypt_password(key.public_pem().as_bytes(), password, scramble).expect("encrypt");
            assert_eq!(
                key.decrypt_password(&sent, scramble).as_deref(),
                Some(password)
            );
        }
        // Another scramble gives another password (the check then fails); garbage is None.
        let sent =
            encrypt_password(key.public_pem().as_bytes(), b"reportpw", scramble).expect("encrypt");
        assert_ne!(
            key.decrypt_password(&sent, b"ABCDEFGHIJKLMNOPQRST")
                .as_deref(),
            Some(&b"reportpw"[..])
        );
        assert_eq!(key.decrypt_password(b"reportpw\0", scramble), None);
        assert_eq!(key.decrypt_password(&[0u8; 128], scramble), None);
        assert_eq!(key.decrypt_password(&[], scramble), None);
    }

    #[test]
    fn private_keys_in_both_pem_forms_and_bad_ones() {
        let private = RsaPrivateKey::from_pkcs8_pem(TEST_KEY).expect("test key");
        let pkcs1 =
            rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_pem(&private, LineEnding::LF).expect("pkcs1");
        let key = ServerKey::from_pem(&pkcs1).expect("PKCS#1 key");
        assert_eq!(key.bits(), 1024);
        assert_eq!(
            ServerKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .err(),
            Some(ServerKeyError::NotAKey)
        );
        assert_eq!(
            ServerKey::from_pem(key.public_pem()).err(),
            Some(ServerKeyError::NotAKey),
            "a public key is not a private key"
        );
    }

    #[test]
    fn the_server_recovers_the_password_it_was_sent() {
        let (private, public) = keys();
        let scramble = b"abcdefghijklmnopqrst";
        let sent = encrypt_password(public.as_bytes(), b"apppw", scramble).expect("encrypt");
        assert_eq!(sent.len(), 128);
        let plain = private
            .decrypt(Oaep::new::<sha1::Sha1>(), &sent)
            .expect("decrypt");
        let recovered = xor_with_scramble(&plain[..plain.len() - 1], scramble);
        // XOR twice gives back the password; its NUL was XORed with the scramble too.
        assert_eq!(&recovered[..5], b"apppw");
        assert_eq!(plain.last(), Some(&scramble[5]), "NUL XOR scramble");
    }

    #[test]
    fn the_scramble_repeats_over_long_passwords() {
        let out = xor_with_scramble(&[0u8; 25], &[1, 2, 3]);
        assert_eq!(out.len(), 26);
        assert_eq!(&out[..7], &[1, 2, 3, 1, 2, 3, 1]);
        assert_eq!(xor_with_scramble(b"ab", &[]), b"ab\0");
    }

    #[test]
    fn keys_in_both_pem_forms_and_bad_keys() {
        let (private, public) = keys();
        assert!(parse_public_key(public.as_bytes()).is_ok());
        let mut with_nul = public.clone().into_bytes();
        with_nul.push(0);
        assert!(
            parse_public_key(&with_nul).is_ok(),
            "a trailing NUL is fine"
        );
        let pkcs1 = rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_pem(
            &private.to_public_key(),
            rsa::pkcs8::LineEnding::LF,
        )
        .expect("pkcs1");
        assert!(parse_public_key(pkcs1.as_bytes()).is_ok());
        assert_eq!(parse_public_key(b"garbage"), Err(RsaError::BadKey));
        assert_eq!(parse_public_key(&[0xFF, 0xFE]), Err(RsaError::BadKey));
        // OAEP-SHA1 with a 1024-bit key holds at most 128 - 42 = 86 bytes.
        assert_eq!(
            encrypt_password(public.as_bytes(), &[b'x'; 100], b"s"),
            Err(RsaError::TooLong)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// What a server or client sends during full authentication never panics a decoder.
        #[test]
        fn arbitrary_auth_data_gives_a_value_or_an_error(
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        ) {
            let _ = MoreData::parse(&payload);
            let _ = parse_cleartext(&payload);
            let _ = test_server_key().decrypt_password(&payload, b"scramble");
            proptest::prop_assert!(encrypt_password(&payload, b"pw", b"scramble").is_err());
        }

        /// The server, XORing again with the scramble, gets the password and its NUL back.
        #[test]
        fn xor_with_the_scramble_is_its_own_inverse(
            password in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
            scramble in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..40),
        ) {
            let sent = xor_with_scramble(&password, &scramble);
            let back: Vec<u8> = sent.iter().zip(scramble.iter().cycle()).map(|(b, s)| b ^ s).collect();
            proptest::prop_assert_eq!(back, cleartext_response(&password));
        }
    }

    #[test]
    fn cleartext_stops_at_the_nul() {
        assert_eq!(parse_cleartext(b"pw\0"), b"pw");
        assert_eq!(parse_cleartext(b"pw"), b"pw");
        assert_eq!(parse_cleartext(b"\0"), b"");
        assert_eq!(cleartext_response(b"pw"), b"pw\0");
    }
}
