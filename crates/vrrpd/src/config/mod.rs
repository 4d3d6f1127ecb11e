//! vrrpd's configuration: the shape of `shared/config/vrrpd.yaml` (instances, their tracking
//! and notification, sync groups), parsed by ha-core's loader and checked by [`Validate`].

mod validate;

pub use validate::parse_cidr;

use std::net::IpAddr;
use std::path::PathBuf;

use ha_core::config::{ControlConfig, Duration, LogConfig, MetricsConfig};
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub control: ControlConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub instances: Vec<Instance>,
    #[serde(default)]
    pub sync_groups: Vec<SyncGroup>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    /// 1..=255; 255 means this node owns the addresses.
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// 3 (RFC 5798) or 2 (RFC 3768).
    #[serde(default = "default_version")]
    pub version: u8,
    #[serde(default = "default_interval")]
    pub advert_interval: Duration,
    #[serde(default = "yes")]
    pub preempt: bool,
    #[serde(default)]
    pub preempt_delay: Duration,
    /// Unicast peers instead of multicast; only their packets are accepted.
    #[serde(default)]
    pub unicast_peers: Option<Vec<IpAddr>>,
    /// VRRPv3 over IPv4: whether the checksum covers the IPv4 pseudo-header.
    #[serde(default)]
    pub v3_ipv4_checksum: ChecksumMode,
    /// `ADDRESS/PREFIX`.
    pub virtual_addresses: Vec<String>,
    #[serde(default)]
    pub garp: Garp,
    /// Each item a one-key map: `- daemon: {...}`.
    #[serde(
        default,
        deserialize_with = "serde_yaml::with::singleton_map_recursive::deserialize"
    )]
    pub track: Vec<Track>,
    #[serde(default)]
    pub notify: Option<Notify>,
}

fn default_priority() -> u8 {
    100
}
fn default_version() -> u8 {
    3
}
fn default_interval() -> Duration {
    Duration::from_secs(1)
}
fn yes() -> bool {
    true
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumMode {
    /// keepalived's default.
    #[default]
    WithPseudoHeader,
    /// Cisco's and Juniper's reading (RFC 9568).
    WithoutPseudoHeader,
}

/// Gratuitous ARP / unsolicited NA on becoming master.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Garp {
    #[serde(default = "garp_repeat")]
    pub repeat: u32,
    #[serde(default = "garp_interval")]
    pub interval: Duration,
    /// Re-send periodically while master (off when absent).
    #[serde(default)]
    pub refresh: Option<Duration>,
}

fn garp_repeat() -> u32 {
    5
}
fn garp_interval() -> Duration {
    Duration::from_millis(10)
}

impl Default for Garp {
    fn default() -> Self {
        Garp {
            repeat: garp_repeat(),
            interval: garp_interval(),
            refresh: None,
        }
    }
}

/// One tracked check: `- daemon: {...}`, `- script: {...}` or `- interface: {...}`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Track {
    Daemon(TrackDaemon),
    Script(TrackScript),
    Interface(TrackInterface),
}

/// Another daemon's `health` over its control socket, at a millisecond interval.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrackDaemon {
    pub name: String,
    pub socket: PathBuf,
    #[serde(default = "track_interval")]
    pub interval: Duration,
    #[serde(default = "track_timeout")]
    pub timeout: Duration,
    #[serde(default = "two")]
    pub fall: u32,
    #[serde(default = "two")]
    pub rise: u32,
    /// Added to the priority while failing; 0 puts the instance in Fault.
    #[serde(default)]
    pub weight: i32,
}

/// A command run at an interval; exit status 0 is success.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrackScript {
    pub name: String,
    pub command: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default = "default_interval")]
    pub interval: Duration,
    #[serde(default = "script_timeout")]
    pub timeout: Duration,
    #[serde(default = "two")]
    pub fall: u32,
    #[serde(default = "two")]
    pub rise: u32,
    #[serde(default)]
    pub weight: i32,
}

/// A link: down puts the instance in Fault (or adds `weight` when given).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrackInterface {
    pub name: String,
    #[serde(default)]
    pub weight: i32,
}

fn track_interval() -> Duration {
    Duration::from_millis(50)
}
fn track_timeout() -> Duration {
    Duration::from_millis(40)
}
fn script_timeout() -> Duration {
    Duration::from_millis(500)
}
fn two() -> u32 {
    2
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// Run on every transition with arguments: instance state priority.
    #[serde(default)]
    pub script: Option<PathBuf>,
    /// Control sockets told of every transition.
    #[serde(default)]
    pub sockets: Vec<PathBuf>,
    #[serde(default = "notify_timeout")]
    pub timeout: Duration,
}

fn notify_timeout() -> Duration {
    Duration::from_secs(5)
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SyncGroup {
    pub name: String,
    pub instances: Vec<String>,
}
