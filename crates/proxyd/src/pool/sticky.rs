//! Sticky cookie persistence: the cookie names the server and is signed, so a client cannot
//! choose a server by forging it, and any load balancer holding the same secret honours it.
//!
//! The value is `<server id in hex>.<first 16 bytes of HMAC-SHA256(secret, server id) in hex>`.
//! It depends only on the server's configured address and the secret, so both nodes of a
//! pair (and a node after a restart) route a sticky client to the same server with no shared
//! state. Pure: no I/O.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept in the cookie: 128 bits is ample against forgery.
const MAC_LEN: usize = 16;

/// Signs and verifies sticky cookies for one pool.
#[derive(Clone)]
pub struct StickySigner {
    cookie: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for StickySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StickySigner")
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

impl StickySigner {
    pub fn new(cookie: impl Into<String>, secret: &[u8]) -> Self {
        Self {
            cookie: cookie.into(),
            secret: secret.to_vec(),
        }
    }

    pub fn cookie_name(&self) -> &str {
        &self.cookie
    }

    fn mac(&self, server_id: &str) -> [u8; MAC_LEN] {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.secret)
            .unwrap_or_else(|_| HmacSha256::new_from_slice(&[0]).expect("one-byte key"));
        mac.update(server_id.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// The cookie value naming `server_id`.
    pub fn value_for(&self, server_id: &str) -> String {
        format!(
            "{}.{}",
            hex(server_id.as_bytes()),
            hex(&self.mac(server_id))
        )
    }

    /// The `Set-Cookie` header value naming `server_id`.
    pub fn set_cookie(&self, server_id: &str) -> String {
        format!(
            "{}={}; Path=/; HttpOnly; SameSite=Lax",
            self.cookie,
            self.value_for(server_id)
        )
    }

    /// The server id a cookie value names, if its signature is valid.
    pub fn verify(&self, value: &str) -> Option<String> {
        let (id_hex, mac_hex) = value.split_once('.')?;
        let id = String::from_utf8(unhex(id_hex)?).ok()?;
        let given = unhex(mac_hex)?;
        let expected = self.mac(&id);
        // Constant-time comparison.
        if given.len() != expected.len() {
            return None;
        }
        let diff = given
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        (diff == 0).then_some(id)
    }

    /// The server id named by this pool's cookie among a request's `Cookie` headers.
    pub fn server_in<'a>(&self, cookie_headers: impl Iterator<Item = &'a str>) -> Option<String> {
        cookie_headers
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.cookie)
            .and_then(|(_, value)| self.verify(value.trim_matches('"')))
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 512 {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_cookie_round_trips_on_any_node_with_the_same_secret() {
        let lb1 = StickySigner::new("HASRV", b"shared secret");
        let lb2 = StickySigner::new("HASRV", b"shared secret");
        let value = lb1.value_for("10.0.0.11:8080");
        assert_eq!(lb2.verify(&value).as_deref(), Some("10.0.0.11:8080"));
    }

    #[test]
    fn forged_or_foreign_cookies_are_refused() {
        let signer = StickySigner::new("HASRV", b"secret");
        let other = StickySigner::new("HASRV", b"another secret");
        let foreign = other.value_for("10.0.0.11:8080");
        assert_eq!(signer.verify(&foreign), None);
        let genuine = signer.value_for("10.0.0.11:8080");
        let (_, mac) = genuine.split_once('.').expect("dot");
        let forged = format!("{}.{mac}", hex(b"10.0.0.12:8080"));
        assert_eq!(signer.verify(&forged), None);
        for junk in ["", ".", "zz.zz", "abc", "31.", "é.é"] {
            assert_eq!(signer.verify(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let signer = StickySigner::new("HASRV", b"k");
        let header = format!("a=1; HASRV={}; b=2", signer.value_for("s1:80"));
        assert_eq!(
            signer.server_in([header.as_str()].into_iter()).as_deref(),
            Some("s1:80")
        );
        assert_eq!(signer.server_in(["HASRVX=1"].into_iter()), None);
        assert!(signer.set_cookie("s1:80").starts_with("HASRV="));
    }
}
