//! Self-signed TLS certificates made by `openssl` for the tests that talk HTTPS to proxyd,
//! and the certificate a TLS listener actually presents.

use crate::child::{OutputWithin, QUICK};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

/// A P-256 certificate for `name` (CN and DNS SAN), valid two days, written to
/// `dir/<name>.crt` and `dir/<name>.key`; returns the two paths. Given to a client as its
/// CA (`curl --cacert`), it trusts exactly this certificate.
pub fn self_signed(dir: &Path, name: &str) -> (String, String) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args([
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            &format!("subjectAltName=DNS:{name}"),
        ])
        .output_within(QUICK)
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert.display().to_string(), key.display().to_string())
}

/// The PEM of the certificate `addr` presents to a client asking for `sni`
/// (`openssl s_client`), or `None` when no handshake completed.
pub fn presented(addr: SocketAddr, sni: &str) -> Option<String> {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            sni,
        ])
        .stdin(Stdio::null())
        .output_within(QUICK)
        .ok()?;
    pem_block(&String::from_utf8_lossy(&out.stdout))
}

/// The first `CERTIFICATE` PEM block of `text`, trimmed.
pub fn pem_block(text: &str) -> Option<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = text.find(BEGIN)?;
    let end = start + text[start..].find(END)? + END.len();
    Some(text[start..end].to_string())
}
