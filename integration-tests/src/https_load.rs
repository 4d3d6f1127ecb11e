//! A steady load of HTTPS requests to a proxyd TLS listener, half of the clients speaking
//! HTTP/2 and half HTTP/1.1, through `curl`: each run of curl sends its requests on one
//! kept-alive connection, a few on some clients (many handshakes) and many on others
//! (connections that live through whatever the test does to proxyd, say a GOAWAY).
//! Every answer other than a 200 in the expected HTTP version, and every curl error (a
//! reset, a refused connection, a failed certificate check), is a failure.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::backend::LoadReport;

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

pub struct HttpsLoad {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    threads: Vec<JoinHandle<Vec<String>>>,
}

impl HttpsLoad {
    /// `clients` threads, the even ones on HTTP/2, the odd ones on HTTP/1.1; clients 0 and 1
    /// make short runs of curl, 2 and 3 long ones, and so on.
    pub fn start(target: &Target, clients: usize) -> HttpsLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let threads = (0..clients)
            .map(|i| {
                let (stop, ok, target) = (Arc::clone(&stop), Arc::clone(&ok), target.clone());
                let version = if i % 2 == 0 { "2" } else { "1.1" };
                let requests = REQUESTS_PER_CONNECTION[i / 2 % 2];
                std::thread::spawn(move || {
                    let expected = format!("200 {version}");
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        match target.curl(version, "/", requests) {
                            Ok(lines) => {
                                for line in lines {
                                    if line == expected {
                                        ok.fetch_add(1, Ordering::SeqCst);
                                    } else {
                                        failures.push(format!("expected {expected}, got {line}"));
                                    }
                                }
                            }
                            Err(e) => failures.push(e),
                        }
                    }
                    failures
                })
            })
            .collect();
        HttpsLoad { stop, ok, threads }
    }

    /// Requests answered 200 so far.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }

    /// Waits until `more` further requests succeeded (at most 30 s).
    pub fn wait_for_more(&self, more: u64) {
        let target = self.ok() + more;
        crate::wait_until(
            "the HTTPS load to make progress",
            Duration::from_secs(30),
            || (self.ok() >= target).then_some(()),
        );
    }

    pub fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        let mut failures = Vec::new();
        for t in self.threads {
            failures.extend(
                t.join()
                    .unwrap_or_else(|_| vec!["client thread panicked".into()]),
            );
        }
        LoadReport {
            ok: self.ok.load(Ordering::SeqCst),
            failures,
        }
    }
}
