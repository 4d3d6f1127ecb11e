//! dbrouterd's configuration: the shape of `shared/config/dbrouterd.yaml` (listeners, users,
//! backends, monitor, pools, failover), parsed by ha-core's loader and checked by [`Validate`].

pub mod change;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use ha_core::config::{ControlConfig, Duration, LogConfig, MetricsConfig, Workers};
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub workers: Workers,
    #[serde(default)]
    pub control: ControlConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub listeners: Vec<Listener>,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub backends: Vec<Backend>,
    pub monitor: Monitor,
    #[serde(default)]
    pub pools: BTreeMap<String, Pool>,
    #[serde(default)]
    pub failover: Failover,
    /// TLS from dbrouterd to the database servers (sessions' and the monitor's connections).
    #[serde(default)]
    pub backend_tls: BackendTls,
    /// The RSA private key (PEM) `caching_sha2_password` clients without TLS encrypt their
    /// password for; without it a 2048-bit pair is generated when first needed.
    #[serde(default)]
    pub rsa_private_key: Option<PathBuf>,
}

/// A password kept out of logs and `Debug` output.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<secret>\"")
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub name: String,
    /// `IP:PORT`.
    pub listen: String,
    pub pool: String,
    /// TLS for this listener's clients (CLIENT_SSL offered in the greeting).
    #[serde(default)]
    pub tls: Option<ListenerTls>,
}

/// A listener's `tls` section: `{ cert: FILE, key: FILE, require: false }`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Refuse clients that do not switch to TLS (ERROR 3159).
    #[serde(default)]
    pub require: bool,
}

/// A database user: the same name and password as on the servers.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    #[serde(default)]
    pub password: Option<Secret>,
    /// `*` + 40 hex digits, the `mysql_native_password` hash (clients can log in; dbrouterd can
    /// reach backends as this user only when it knows the password itself).
    #[serde(default)]
    pub password_hash: Option<Secret>,
    /// Only over TLS (MySQL's `REQUIRE SSL`, ProxySQL's `use_ssl`): a login without TLS is
    /// refused with ERROR 1045 even with the right password.
    #[serde(default)]
    pub require_tls: bool,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The primary: takes writes while writable.
    Writer,
    /// The second master, kept read_only until a failover.
    Standby,
    Replica,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    pub name: String,
    /// `host:port`.
    pub address: String,
    pub role: Role,
    /// The name its certificate must carry under `backend_tls.mode: verify_identity` (and the
    /// SNI sent); the host of `address` when not given.
    #[serde(default)]
    pub tls_name: Option<String>,
}

/// `backend_tls`: whether and how dbrouterd's connections to the servers use TLS, with the
/// modes of MySQL's `--ssl-mode`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackendTls {
    #[serde(default)]
    pub mode: BackendTlsMode,
    /// PEM CA certificates the servers' certificates must chain to (`verify_ca`,
    /// `verify_identity`).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// A client certificate chain and its key, for accounts that `REQUIRE X509`.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BackendTlsMode {
    /// Plain TCP.
    #[default]
    Disabled,
    /// TLS when the server offers it, plain otherwise; the certificate is not checked.
    Preferred,
    /// TLS or no connection; the certificate is not checked.
    Required,
    /// TLS with a certificate that chains to `ca`, whatever name it carries.
    VerifyCa,
    /// TLS with a certificate that chains to `ca` and names the server (`tls_name`).
    VerifyIdentity,
}

impl BackendTlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendTlsMode::Disabled => "disabled",
            BackendTlsMode::Preferred => "preferred",
            BackendTlsMode::Required => "required",
            BackendTlsMode::VerifyCa => "verify_ca",
            BackendTlsMode::VerifyIdentity => "verify_identity",
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    pub user: String,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default = "half_second")]
    pub interval: Duration,
    #[serde(default = "one_second")]
    pub timeout: Duration,
    #[serde(default = "two")]
    pub rise: u32,
    #[serde(default = "three")]
    pub fall: u32,
    #[serde(default = "five_seconds")]
    pub max_replication_lag: Duration,
}

fn half_second() -> Duration {
    Duration::from_millis(500)
}
fn one_second() -> Duration {
    Duration::from_secs(1)
}
fn two_seconds() -> Duration {
    Duration::from_secs(2)
}
fn five_seconds() -> Duration {
    Duration::from_secs(5)
}
fn two() -> u32 {
    2
}
fn three() -> u32 {
    3
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    RoundRobin,
    #[default]
    LeastConn,
    RandomTwo,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NoReader {
    #[default]
    Writer,
    Error,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Writes {
    #[default]
    Allow,
    /// Never reaches a writer: writes get an error.
    Refuse,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReadYourWrites {
    #[default]
    Off,
    /// Wait on the replica for the GTID of the session's last write.
    Causal,
    /// Read from the writer for `window` after a write.
    WriterWindow,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReadYourWritesConfig {
    #[serde(default)]
    pub mode: ReadYourWrites,
    #[serde(default)]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub window: Option<Duration>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPool {
    #[serde(default = "max_per_backend")]
    pub max_per_backend: usize,
    #[serde(default)]
    pub min_idle: usize,
    #[serde(default = "sixty_seconds")]
    pub idle_timeout: Duration,
    #[serde(default = "two_seconds")]
    pub checkout_timeout: Duration,
    /// Prepared statements a session keeps open on one backend connection; past that the
    /// least recently used is closed there (and prepared again when used again).
    #[serde(default = "max_prepared_per_connection")]
    pub max_prepared_per_connection: usize,
}

fn max_per_backend() -> usize {
    200
}
fn max_prepared_per_connection() -> usize {
    crate::prepared::MAX_PER_CONNECTION
}
fn sixty_seconds() -> Duration {
    Duration::from_secs(60)
}

impl Default for ConnectionPool {
    fn default() -> Self {
        ConnectionPool {
            max_per_backend: max_per_backend(),
            min_idle: 0,
            idle_timeout: sixty_seconds(),
            checkout_timeout: two_seconds(),
            max_prepared_per_connection: max_prepared_per_connection(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// In order of preference: the first healthy writable one takes writes.
    #[serde(default)]
    pub writers: Vec<String>,
    #[serde(default)]
    pub readers: Vec<String>,
    #[serde(default)]
    pub balance: Balance,
    #[serde(default)]
    pub reads_when_no_reader: NoReader,
    #[serde(default)]
    pub read_your_writes: ReadYourWritesConfig,
    #[serde(default)]
    pub connection_pool: ConnectionPool,
    #[serde(default)]
    pub writes: Writes,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Failover {
    #[serde(default)]
    pub auto: bool,
    #[serde(default = "three")]
    pub confirm_checks: u32,
    #[serde(default = "yes")]
    pub fence_old_writer: bool,
    /// How long a write waits for a writer while there is none (during a failover or
    /// switchover) before it fails.
    #[serde(default = "ten_seconds")]
    pub hold_writes: Duration,
    /// How long a switchover waits for open transactions on the old writer to finish, and
    /// for the standby to catch up, before it gives up (and the old writer stays writer).
    #[serde(default = "ten_seconds")]
    pub switchover_timeout: Duration,
    /// How long a failover waits for the standby to apply what it received from the dead
    /// writer before it promotes it anyway.
    #[serde(default = "thirty_seconds")]
    pub catchup_timeout: Duration,
    /// The replication account, for making the old writer a replica of the new one after a
    /// switchover (replicas keep their own credentials when repointed). Without it the old
    /// writer is only made read-only.
    #[serde(default)]
    pub replication_user: Option<String>,
    #[serde(default)]
    pub replication_password: Option<Secret>,
    /// Make a server that a topology change left behind (an old writer back after a
    /// failover, a replica that was down during it) a replica of the writer again, when it
    /// holds no transaction the writer lacks. Needs the replication account. Off by default,
    /// as MaxScale's `auto_rejoin`.
    #[serde(default)]
    pub auto_rejoin: bool,
    /// `MASTER_SSL=1` in every `CHANGE MASTER` dbrouterd issues (failover, switchover,
    /// rejoin), as MaxScale's `replication_master_ssl`: replication between the servers over
    /// TLS. Off: the servers keep their own setting (off for one that never replicated).
    #[serde(default)]
    pub replication_ssl: bool,
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}
fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

fn yes() -> bool {
    true
}

impl Default for Failover {
    fn default() -> Self {
        Failover {
            auto: false,
            confirm_checks: three(),
            fence_old_writer: true,
            hold_writes: ten_seconds(),
            switchover_timeout: ten_seconds(),
            catchup_timeout: thirty_seconds(),
            replication_user: None,
            replication_password: None,
            auto_rejoin: false,
            replication_ssl: false,
        }
    }
}
