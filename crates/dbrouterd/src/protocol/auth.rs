//! Authentication scrambles: `mysql_native_password` and the fast path of
//! `caching_sha2_password`, computed (as a client, towards backends) and verified (as a server,
//! for our clients).
//!
//! `mysql_native_password`: response = SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
//! The server stores only SHA1(SHA1(password)), written `*` + 40 upper-case hex digits (what
//! `PASSWORD()` printed and `mysql.user` holds; the config's `password_hash`). Verifying with
//! it recovers SHA1(password) from the response, and that is enough to answer any later
//! `mysql_native_password` challenge ([`scramble_native_from_sha1`]).
//!
//! `caching_sha2_password` fast auth: response = SHA256(password) XOR
//! SHA256(SHA256(SHA256(password)) + scramble). Its full authentication needs the cleartext
//! password (over TLS or RSA): see [`super::caching_sha2`].
//!
//! What the proxy can log in to backends with, per configured user:
//! - a cleartext `password`: any plugin, any time (pool warm-up included);
//! - only a `password_hash`: `mysql_native_password` only, and only after that user's client
//!   has logged in to the proxy (the SHA1(password) comes from its response). Backends whose
//!   account uses `caching_sha2_password` need the cleartext password.

use std::fmt;

use rand::RngCore;
use sha1::{Digest, Sha1};
use sha2::Sha256;

pub const NATIVE_PASSWORD: &str = "mysql_native_password";
pub const CACHING_SHA2_PASSWORD: &str = "caching_sha2_password";

/// Length of the scramble dbrouterd sends in its greeting.
pub const SCRAMBLE_LEN: usize = 20;

/// A server scramble (nonce): 20 bytes of 7-bit ASCII without NUL or `$`, like the server's
/// own (clients treat it as a C string in places).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Scramble([u8; SCRAMBLE_LEN]);

impl Scramble {
    pub fn generate<R: RngCore + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; SCRAMBLE_LEN];
        rng.fill_bytes(&mut bytes);
        for b in &mut bytes {
            *b &= 0x7F;
            if *b == 0 || *b == b'$' {
                *b += 1;
            }
        }
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; SCRAMBLE_LEN] {
        &self.0
    }
}

impl fmt::Debug for Scramble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scramble(..)")
    }
}

/// SHA1(password): the secret a `mysql_native_password` client proves it knows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PasswordSha1([u8; 20]);

impl PasswordSha1 {
    pub fn from_password(password: &[u8]) -> Self {
        Self(Sha1::digest(password).into())
    }
}

impl fmt::Debug for PasswordSha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordSha1(..)")
    }
}

/// The stored form of a `mysql_native_password`: SHA1(SHA1(password)).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NativePasswordHash([u8; 20]);

/// A `password_hash` that is not `*` followed by 40 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password hash must be '*' followed by 40 hex digits (mysql_native_password)")]
pub struct BadPasswordHash;

impl NativePasswordHash {
    pub fn from_password(password: &[u8]) -> Self {
        Self::from_sha1(&PasswordSha1::from_password(password))
    }

    pub fn from_sha1(sha1: &PasswordSha1) -> Self {
        Self(Sha1::digest(sha1.0).into())
    }

    /// Parses `*791C51FBA9525165285F44C57F2B3F5E11DDE6AC` (either case).
    pub fn parse(text: &str) -> Result<Self, BadPasswordHash> {
        let hex = text.strip_prefix('*').ok_or(BadPasswordHash)?.as_bytes();
        if hex.len() != 40 {
            return Err(BadPasswordHash);
        }
        let digit = |c: u8| char::from(c).to_digit(16).ok_or(BadPasswordHash);
        let mut out = [0u8; 20];
        for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = (digit(pair[0])? << 4 | digit(pair[1])?) as u8;
        }
        Ok(Self(out))
    }

    /// Checks a client's `mysql_native_password` response to `scramble`. On success returns
    /// SHA1(password), with which the proxy can answer backends' challenges for this user.
    /// An empty response (the empty password) never matches a hash.
    pub fn verify(&self, scramble: &[u8], response: &[u8]) -> Option<PasswordSha1> {
        let response: &[u8; 20] = response.try_into().ok()?;
        let mask = sha1_concat(scramble, &self.0);
        let candidate = PasswordSha1(xor(response, &mask));
        let matches = constant_time_eq(&Sha1::digest(candidate.0).into(), &self.0);
        matches.then_some(candidate)
    }
}

impl fmt::Display for NativePasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

impl fmt::Debug for NativePasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NativePasswordHash({self})")
    }
}

/// A configured user's secret: the cleartext password or only its native hash.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Password(Vec<u8>),
    NativeHash(NativePasswordHash),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Credential::Password(..)"),
            Self::NativeHash(hash) => write!(f, "Credential::NativeHash({hash})"),
        }
    }
}

impl Credential {
    /// Checks a `mysql_native_password` response. An empty password is answered with an empty
    /// response, as the server does.
    pub fn verify_native(&self, scramble: &[u8], response: &[u8]) -> bool {
        match self {
            Self::Password(pw) if pw.is_empty() => response.is_empty(),
            Self::Password(pw) => NativePasswordHash::from_password(pw)
                .verify(scramble, response)
                .is_some(),
            Self::NativeHash(hash) => hash.verify(scramble, response).is_some(),
        }
    }

    /// The cleartext, when configured (needed for `caching_sha2_password` backends).
    pub fn cleartext(&self) -> Option<&[u8]> {
        match self {
            Self::Password(pw) => Some(pw),
            Self::NativeHash(_) => None,
        }
    }
}

/// The `mysql_native_password` response to `scramble`; `None` for the empty password, whose
/// response is empty.
pub fn scramble_native(scramble: &[u8], password: &[u8]) -> Option<[u8; 20]> {
    if password.is_empty() {
        return None;
    }
    Some(scramble_native_from_sha1(
        scramble,
        &PasswordSha1::from_password(password),
    ))
}

/// The `mysql_native_password` response from SHA1(password) alone.
pub fn scramble_native_from_sha1(scramble: &[u8], sha1: &PasswordSha1) -> [u8; 20] {
    let stage2: [u8; 20] = Sha1::digest(sha1.0).into();
    xor(&sha1.0, &sha1_concat(scramble, &stage2))
}

/// The `caching_sha2_password` fast-auth response; `None` for the empty password.
pub fn scramble_caching_sha2(scramble: &[u8], password: &[u8]) -> Option<[u8; 32]> {
    if password.is_empty() {
        return None;
    }
    let stage1: [u8; 32] = Sha256::digest(password).into();
    let stage2: [u8; 32] = Sha256::digest(stage1).into();
    let mut hasher = Sha256::new();
    hasher.update(stage2);
    hasher.update(scramble);
    Some(xor(&stage1, &hasher.finalize().into()))
}

/// Checks a `caching_sha2_password` fast-auth response against the cleartext password.
pub fn verify_caching_sha2(scramble: &[u8], password: &[u8], response: &[u8]) -> bool {
    match scramble_caching_sha2(scramble, password) {
        None => response.is_empty(),
        Some(expected) => <&[u8; 32]>::try_from(response)
            .is_ok_and(|response| constant_time_eq(response, &expected)),
    }
}

fn sha1_concat(a: &[u8], b: &[u8]) -> [u8; 20] {
    let mut hasher = Sha1::new();
    hasher.update(a);
    hasher.update(b);
    hasher.finalize().into()
}

fn xor<const N: usize>(a: &[u8; N], b: &[u8; N]) -> [u8; N] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// Compares without an early exit, so timing does not tell how many bytes matched.
fn constant_time_eq<const N: usize>(a: &[u8; N], b: &[u8; N]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    const REPORT_HASH: &str = "*791C51FBA9525165285F44C57F2B3F5E11DDE6AC";

    #[test]
    fn reportpw_hashes_to_the_configured_hash() {
        let hash = NativePasswordHash::from_password(b"reportpw");
        assert_eq!(hash.to_string(), REPORT_HASH);
        assert_eq!(NativePasswordHash::parse(REPORT_HASH), Ok(hash));
        assert_eq!(
            NativePasswordHash::parse(&REPORT_HASH.to_lowercase()),
            Ok(hash)
        );
    }

    #[test]
    fn bad_hashes_are_rejected() {
        for bad in [
            "",
            "*",
            "791C51FBA9525165285F44C57F2B3F5E11DDE6AC",
            "*791C",
            "*ZZ1C51FBA9525165285F44C57F2B3F5E11DDE6AC",
        ] {
            assert_eq!(
                NativePasswordHash::parse(bad),
                Err(BadPasswordHash),
                "{bad}"
            );
        }
    }

    #[test]
    fn native_scramble_matches_the_reference_codec() {
        let scramble = Scramble::generate(&mut StdRng::seed_from_u64(7));
        let ours = scramble_native(scramble.as_bytes(), b"apppw").unwrap();
        let theirs = mysql_common::scramble::scramble_native(scramble.as_bytes(), b"apppw");
        assert_eq!(Some(ours), theirs);
        assert_eq!(scramble_native(scramble.as_bytes(), b""), None);
    }

    #[test]
    fn verifies_against_cleartext_and_hash_and_recovers_sha1() {
        let scramble = Scramble::generate(&mut StdRng::seed_from_u64(1));
        let s = scramble.as_bytes();
        let response = scramble_native(s, b"reportpw").unwrap();
        let hash = Credential::NativeHash(NativePasswordHash::parse(REPORT_HASH).unwrap());
        assert!(hash.verify_native(s, &response));
        assert!(Credential::Password(b"reportpw".to_vec()).verify_native(s, &response));
        assert!(!Credential::Password(b"wrong".to_vec()).verify_native(s, &response));
        assert!(!hash.verify_native(s, &response[..19]));
        assert!(!hash.verify_native(s, b""));

        // The recovered SHA1 answers a backend's different challenge correctly.
        let sha1 = NativePasswordHash::parse(REPORT_HASH)
            .unwrap()
            .verify(s, &response)
            .unwrap();
        let backend = Scramble::generate(&mut StdRng::seed_from_u64(2));
        assert_eq!(
            Some(scramble_native_from_sha1(backend.as_bytes(), &sha1)),
            scramble_native(backend.as_bytes(), b"reportpw")
        );
    }

    #[test]
    fn empty_password_uses_an_empty_response() {
        let empty = Credential::Password(Vec::new());
        assert!(empty.verify_native(b"12345678901234567890", b""));
        assert!(!empty.verify_native(b"12345678901234567890", &[0; 20]));
    }

    #[test]
    fn caching_sha2_fast_auth_matches_the_reference_and_verifies() {
        let scramble = Scramble::generate(&mut StdRng::seed_from_u64(3));
        let s = scramble.as_bytes();
        let ours = scramble_caching_sha2(s, b"apppw").unwrap();
        assert_eq!(
            Some(ours),
            mysql_common::scramble::scramble_sha256(s, b"apppw")
        );
        assert!(verify_caching_sha2(s, b"apppw", &ours));
        assert!(!verify_caching_sha2(s, b"other", &ours));
        assert!(!verify_caching_sha2(s, b"apppw", &ours[..31]));
    }

    #[test]
    fn scrambles_are_printable_without_nul_or_dollar() {
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..200 {
            let s = Scramble::generate(&mut rng);
            assert!(s
                .as_bytes()
                .iter()
                .all(|&b| (1..0x80).contains(&b) && b != b'$'));
        }
        assert_eq!(
            format!("{:?}", Credential::Password(b"x".to_vec())),
            "Credential::Password(..)"
        );
    }
}
