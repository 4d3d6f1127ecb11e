//! Self-signed TLS certificates made by `openssl` for the tests that talk HTTPS to proxyd,
//! and the certificate a TLS listener actually presents.

use crate::child::{OutputWithin, QUICK};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A P-256 certificate for `name` (CN and DNS SAN), valid two days, written to
/// `dir/<name>.crt` and `dir/<name>.key`; returns the two paths. Given to a client as its
/// CA (`curl --cacert`), it trusts exactly this certificate.
pub fn self_signed(dir: &Path, name: &str) -> (String, String) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        &path_text(&key),
        "-out",
        &path_text(&cert),
        "-subj",
        &format!("/CN={name}"),
        "-addext",
        &format!("subjectAltName=DNS:{name}"),
    ]);
    (path_text(&cert), path_text(&key))
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

/// A certificate authority of the test's own, made by `openssl` in a directory: it issues
/// server and client certificates that a verifying peer given [`TestCa::cert`] accepts.
pub struct TestCa {
    /// The CA's certificate (PEM), what a verifying peer trusts.
    pub cert: PathBuf,
    key: PathBuf,
    dir: PathBuf,
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output_within(QUICK)
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

impl TestCa {
    /// A P-256 CA named `name`, valid two days, as `dir/<name>.pem` and `dir/<name>.key`.
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &path_text(&key),
            "-out",
            &path_text(&cert),
        ]);
        TestCa {
            cert,
            key,
            dir: dir.to_path_buf(),
        }
    }

    /// A P-256 certificate with common name `cn` and `alt_names` (`IP:127.0.0.1,DNS:localhost`),
    /// for server and client use, signed by this CA: `dir/<file>.pem` and `dir/<file>-key.pem`.
    pub fn issue(&self, file: &str, cn: &str, alt_names: &str) -> (PathBuf, PathBuf) {
        let cert = self.dir.join(format!("{file}.pem"));
        let key = self.dir.join(format!("{file}-key.pem"));
        let csr = self.dir.join(format!("{file}.csr"));
        let ext = self.dir.join(format!("{file}.ext"));
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={alt_names}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
            ),
        )
        .expect("write the extensions file");
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &path_text(&key),
            "-out",
            &path_text(&csr),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &path_text(&csr),
            "-CA",
            &path_text(&self.cert),
            "-CAkey",
            &path_text(&self.key),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &path_text(&ext),
            "-out",
            &path_text(&cert),
        ]);
        (cert, key)
    }
}
