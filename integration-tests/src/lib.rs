//! Scenario helpers for the end-to-end tests: where the built binaries are, starting a daemon
//! from a config written for the test and stopping it whatever happens, waiting for conditions
//! with a deadline, and the root check for tests that need namespaces or raw sockets.
//!
//! Every test owns its temporary directory, sockets and ports, so tests run in parallel.

pub mod backend;
pub mod certificate;
pub mod child;
pub mod daemon;
pub mod dbrouter_tls;
pub mod https_load;
pub mod mariadb;
pub mod mysql8_backend;
pub mod mysql_client;
pub mod mysql_raw;
pub mod netns;
pub mod stack;
pub mod vrrp;
pub mod wait;
pub mod watchdog;

use std::path::PathBuf;

pub use daemon::{Daemon, DaemonKind};
pub use wait::wait_until;

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A binary of the workspace, built by `cargo build --workspace --bins` (which `make test`
/// runs before the tests).
pub fn bin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (make test does) before the tests",
        path.display()
    );
    path
}

/// Whether a test that needs root may run. Under `CI=true` a missing root is a failure; outside
/// CI the test is skipped, loudly.
pub fn require_root(test: &str) -> bool {
    watchdog::watch();
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} needs root (network namespaces, raw sockets, changing uid) and CI=true: run the suite as root");
    }
    eprintln!("\n*** SKIPPED {test}: needs root; run the suite as root to include it ***\n");
    false
}

/// A fresh temporary directory that other users may traverse (sockets in it are reached by
/// tests that drop to `nobody`).
pub fn shared_tempdir() -> tempfile::TempDir {
    watchdog::watch();
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("ha-it-")
        .tempdir()
        .expect("temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod tempdir");
    dir
}
