//! A steady load of HTTPS requests to a proxyd TLS listener, half of the clients speaking
//! HTTP/2 and half HTTP/1.1, through `curl`: each run of curl sends its requests on one
//! kept-alive connection, a few on some clients (many handshakes) and many on others
//! (connections that live through whatever the test does to proxyd, say a GOAWAY).
//! Every answer other than a 200 in the expected HTTP version, and every curl error (a
//! reset, a refused connection, a failed certificate check), is a failure.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::backend::Load;

/// Requests one curl run sends on its connection: short runs, and long ones.
const REQUESTS_PER_CONNECTION: [usize; 2] = [5, 100];

/// Where and how the load connects: the listener's address, the name asked for (SNI and
/// `Host`), and the certificate the client trusts (and nothing else).
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub name: String,
    pub cacert: String,
}

impl Target {
    /// One curl run of `requests` GETs of `path` on one connection in `version`
    /// (`"2"` or `"1.1"`); returns per request the status and version, as curl's `-w`
    /// prints them (`"200 2"`), or curl's error.
    pub fn curl(&self, version: &str, path: &str, requests: usize) -> Result<Vec<String>, String> {
        let flag = if version == "2" {
            "--http2"
        } else {
            "--http1.1"
        };
        let url = format!("https://{}:{}{path}", self.name, self.addr.port());
        let mut command = Command::new("curl");
        command
            .args(["-sS", "--max-time", "20", flag, "--cacert", &self.cacert])
            .arg("--resolve")
            .arg(format!(
                "{}:{}:{}",
                self.name,
                self.addr.port(),
                self.addr.ip()
            ))
            .args(["-w", "%{http_code} %{http_version}\\n"]);
        for _ in 0..requests {
            command.args(["-o", "/dev/null", &url]);
        }
        let out = command.output().map_err(|e| format!("curl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "curl {flag} exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect())
    }
}

/// `clients` curl clients, the even ones on HTTP/2, the odd ones on HTTP/1.1; clients 0 and 1
/// make short runs of curl, 2 and 3 long ones, and so on. Waits for progress up to 30 s.
pub fn start(target: &Target, clients: usize) -> Load {
    Load::of_clients(clients, Duration::from_secs(30), |i| {
        let target = target.clone();
        let version = if i % 2 == 0 { "2" } else { "1.1" };
        let requests = REQUESTS_PER_CONNECTION[i / 2 % 2];
        let expected = format!("200 {version}");
        move || match target.curl(version, "/", requests) {
            Ok(lines) => lines
                .into_iter()
                .map(|line| {
                    if line == expected {
                        Ok(())
                    } else {
                        Err(format!("expected {expected}, got {line}"))
                    }
                })
                .collect(),
            Err(e) => vec![Err(e)],
        }
    })
}
