//! Value types every daemon's configuration uses, and the sections they all share:
//! `control`, `metrics` and `log`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// A duration written as a string with a unit: `150ms`, `2s`, `1m`, `1h`, `500us`.
/// A bare number is refused, so nobody wonders whether `5` meant seconds or milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }
    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }
    pub fn get(self) -> std::time::Duration {
        self.0
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0.as_micros();
        if us.is_multiple_of(1_000_000) {
            write!(f, "{}s", us / 1_000_000)
        } else if us.is_multiple_of(1000) {
            write!(f, "{}ms", us / 1000)
        } else {
            write!(f, "{us}us")
        }
    }
}

/// Parses `150ms`, `2s`, `1.5s`, `1m`, `1h`, `250us`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || {
        format!("invalid duration {text:?}: expected a number and a unit (us, ms, s, m, h), e.g. \"150ms\"")
    };
    if number.is_empty() {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(bad()),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs > 1e9 {
        return Err(format!("duration {text:?} is out of range"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

impl FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(Duration)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(f64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
            Raw::Number(n) => Err(serde::de::Error::custom(format!(
                "invalid duration {n}: give a unit, e.g. \"{n}s\" or \"{n}ms\""
            ))),
        }
    }
}

/// Worker threads: `auto` (one per core) or a number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Workers {
    #[default]
    Auto,
    Count(usize),
}

impl Workers {
    pub fn resolve(self) -> usize {
        match self {
            Workers::Auto => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            Workers::Count(n) => n.max(1),
        }
    }
}

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) if s == "auto" => Ok(Workers::Auto),
            Raw::Number(n) if (1..=1024).contains(&n) => Ok(Workers::Count(n as usize)),
            Raw::Text(s) => Err(serde::de::Error::custom(format!(
                "invalid workers {s:?}: expected \"auto\" or a number from 1 to 1024"
            ))),
            Raw::Number(n) => Err(serde::de::Error::custom(format!(
                "invalid workers {n}: expected \"auto\" or a number from 1 to 1024"
            ))),
        }
    }
}

/// `control`: the daemon's control socket.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Socket path; default `/run/ha/<daemon>.sock`.
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// Members of this group (and root) may change state.
    #[serde(default)]
    pub admin_group: Option<String>,
    /// Group owning the socket (who may connect at all, and so read); default: `admin_group`.
    #[serde(default)]
    pub group: Option<String>,
    /// An idle connection is closed after this long.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Duration,
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: None,
            admin_group: None,
            group: None,
            idle_timeout: default_idle_timeout(),
        }
    }
}

impl ControlConfig {
    pub fn socket_path(&self, daemon: &str) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/run/ha/{daemon}.sock")))
    }
}

/// `metrics`: where `/metrics` is served; absent or `listen: off` disables it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(default, deserialize_with = "listen_or_off")]
    pub listen: Option<SocketAddr>,
}

fn listen_or_off<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let raw: Option<String> = Option::deserialize(d)?;
    match raw.as_deref() {
        None | Some("off") | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!(
                "invalid listen address {s:?}: expected IP:PORT, e.g. 127.0.0.1:9101"
            ))
        }),
    }
}

/// `log`: level and format of the daemon's own log (RUST_LOG overrides the level).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default = "default_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
}

fn default_level() -> String {
    "info".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_level(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogConfig {
    pub fn validate(&self, at: &str, problems: &mut super::Problems) {
        const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];
        if tracing_level_ok(&self.level, &LEVELS).is_err() {
            problems.at(
                format!("{at}.level"),
                format!(
                    "invalid level {:?}: expected one of {}",
                    self.level,
                    LEVELS.join(", ")
                ),
            );
        }
    }
}

fn tracing_level_ok(level: &str, levels: &[&str]) -> Result<(), ()> {
    // A filter directive such as "info,proxyd=debug" is accepted as well as a bare level.
    let first = level.split(',').next().unwrap_or("");
    if levels.contains(&first) || first.contains('=') {
        Ok(())
    } else {
        Err(())
    }
}

impl ControlConfig {
    pub fn validate(&self, at: &str, problems: &mut super::Problems) {
        if let Some(s) = &self.socket {
            if !s.is_absolute() {
                problems.at(format!("{at}.socket"), "socket path must be absolute");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("150ms"),
            Ok(std::time::Duration::from_millis(150))
        );
        assert_eq!(parse_duration("2s"), Ok(std::time::Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(std::time::Duration::from_secs(60)));
        assert_eq!(
            parse_duration("1.5s"),
            Ok(std::time::Duration::from_millis(1500))
        );
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("3 parsecs").is_err());
        assert_eq!(Duration::from_millis(1500).to_string(), "1500ms");
        assert_eq!(Duration::from_secs(2).to_string(), "2s");
    }
}
