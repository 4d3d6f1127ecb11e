//! Pools of servers and everything a pool is configured with: algorithm, health checks,
//! retries, timeouts, keep-alive, queue.

use ha_core::config::Duration;
use serde::{Deserialize, Deserializer};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    #[serde(default)]
    pub balance: Balance,
    /// Key template for `balance: hash`, e.g. `$request_uri` or `$remote_addr$http_x_user`.
    #[serde(default)]
    pub hash_key: Option<String>,
    #[serde(default)]
    pub sticky: Option<Sticky>,
    pub servers: Vec<Server>,
    #[serde(default)]
    pub passive_health: Option<PassiveHealth>,
    #[serde(default)]
    pub active_health: Option<ActiveHealth>,
    #[serde(default)]
    pub slow_start: Option<Duration>,
    #[serde(default)]
    pub retry: Option<Retry>,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub keepalive: Keepalive,
    #[serde(default)]
    pub queue: Option<Queue>,
    #[serde(default)]
    pub proxy_protocol: ProxyProtocol,
    /// How often a server given by host name is resolved again (nginx's `resolver valid=`).
    #[serde(default = "thirty_seconds")]
    pub resolve_interval: Duration,
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    #[default]
    RoundRobin,
    LeastConn,
    RandomTwo,
    IpHash,
    Hash,
    Sticky,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sticky {
    #[serde(default = "sticky_cookie")]
    pub cookie: String,
    /// File holding the key that signs the cookie; both load balancers must share it.
    pub secret_file: std::path::PathBuf,
}

fn sticky_cookie() -> String {
    "HASRV".into()
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// `host:port`; a host name is re-resolved periodically.
    pub address: String,
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default)]
    pub max_conns: Option<u32>,
    #[serde(default)]
    pub backup: bool,
}

fn one() -> u32 {
    1
}

/// What counts as a failure of a server, for passive health and retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Connect error, reset, or an invalid answer.
    Error,
    Timeout,
    /// This HTTP status.
    Http(u16),
}

impl<'de> Deserialize<'de> for FailureKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "error" => Ok(FailureKind::Error),
            "timeout" => Ok(FailureKind::Timeout),
            other => other
                .strip_prefix("http_")
                .and_then(|code| code.parse::<u16>().ok())
                .filter(|code| (400..600).contains(code))
                .map(FailureKind::Http)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "invalid failure kind {s:?}: expected error, timeout or http_4xx/http_5xx (e.g. http_502)"
                    ))
                }),
        }
    }
}

fn default_failures() -> Vec<FailureKind> {
    vec![FailureKind::Error, FailureKind::Timeout]
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PassiveHealth {
    #[serde(default = "one")]
    pub max_fails: u32,
    #[serde(default = "ten_seconds")]
    pub fail_timeout: Duration,
    #[serde(default = "default_failures")]
    pub on: Vec<FailureKind>,
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    Http,
    Tcp,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ActiveHealth {
    pub kind: CheckKind,
    #[serde(default = "health_path")]
    pub path: String,
    #[serde(default = "get")]
    pub method: String,
    /// `200`, or a range `200-399`.
    #[serde(default = "ok_range")]
    pub expect_status: String,
    #[serde(default)]
    pub expect_body: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default = "two_seconds")]
    pub interval: Duration,
    #[serde(default = "one_second")]
    pub timeout: Duration,
    #[serde(default = "two")]
    pub rise: u32,
    #[serde(default = "three")]
    pub fall: u32,
}

fn health_path() -> String {
    "/".into()
}
fn get() -> String {
    "GET".into()
}
fn ok_range() -> String {
    "200-399".into()
}
fn two_seconds() -> Duration {
    Duration::from_secs(2)
}
fn one_second() -> Duration {
    Duration::from_secs(1)
}
fn two() -> u32 {
    2
}
fn three() -> u32 {
    3
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    #[serde(default = "three")]
    pub tries: u32,
    /// Total time limit across tries (0 = none).
    #[serde(default)]
    pub timeout: Option<Duration>,
    #[serde(default = "default_failures")]
    pub on: Vec<FailureKind>,
    /// Retry non-idempotent requests even after part of them was sent.
    #[serde(default)]
    pub non_idempotent: bool,
    /// Retries at most this fraction of requests (HAProxy's/Envoy's retry budget).
    #[serde(default = "retry_budget")]
    pub budget: f64,
}

fn retry_budget() -> f64 {
    0.2
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    #[serde(default = "one_second")]
    pub connect: Duration,
    #[serde(default = "sixty_seconds")]
    pub read: Duration,
    #[serde(default = "sixty_seconds")]
    pub send: Duration,
}

fn sixty_seconds() -> Duration {
    Duration::from_secs(60)
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: one_second(),
            read: sixty_seconds(),
            send: sixty_seconds(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Keepalive {
    #[serde(default = "max_idle")]
    pub max_idle: usize,
    /// Kept shorter than the servers' own idle timeout, so proxyd closes first.
    #[serde(default = "idle_timeout")]
    pub idle_timeout: Duration,
}

fn max_idle() -> usize {
    32
}
fn idle_timeout() -> Duration {
    Duration::from_secs(4)
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            max_idle: max_idle(),
            idle_timeout: idle_timeout(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    pub max: usize,
    #[serde(default = "two_seconds")]
    pub timeout: Duration,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocol {
    #[default]
    Off,
    V1,
    V2,
}
