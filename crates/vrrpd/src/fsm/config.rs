//! The per-instance parameters the state machine runs on (RFC 5798 §6.1), and their checks.

use std::net::IpAddr;
use std::time::Duration;

use crate::packet::{centis_from_interval, secs_from_interval, EncodeError, Version};

/// The longest preempt delay accepted (keepalived's limit too).
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);

/// Parameters of one virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub vrid: u8,
    /// Configured priority, 1..=255; 255 marks the address owner, which becomes master at
    /// startup and always preempts.
    pub priority: u8,
    /// Advertisement_Interval: how often we advertise as master.
    pub advert_interval: Duration,
    /// Preempt_Mode: whether a backup takes over from a lower-priority master (`nopreempt`
    /// in keepalived terms is `false`).
    pub preempt: bool,
    /// How long a backup that outranks the master waits before preempting it.
    pub preempt_delay: Duration,
    pub version: Version,
    /// Our primary address on the interface: the source of our advertisements and the tie
    /// breaker between equal priorities.
    pub primary_address: IpAddr,
    /// Accept_Mode: whether a non-owner master accepts packets addressed to the virtual
    /// addresses. The machine only carries it; the address manager applies it.
    pub accept_mode: bool,
}

impl Config {
    /// VRRPv3 with preemption on, no preempt delay and accept mode off.
    pub fn new(vrid: u8, priority: u8, advert_interval: Duration, primary_address: IpAddr) -> Self {
        Config {
            vrid,
            priority,
            advert_interval,
            preempt: true,
            preempt_delay: Duration::ZERO,
            version: Version::V3,
            primary_address,
            accept_mode: false,
        }
    }

    /// Checks the ranges the protocol imposes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vrid == 0 {
            return Err(ConfigError::ZeroVrid);
        }
        if self.priority == 0 {
            return Err(ConfigError::ZeroPriority);
        }
        if self.preempt_delay > MAX_PREEMPT_DELAY {
            return Err(ConfigError::PreemptDelayTooLong(self.preempt_delay));
        }
        match self.version {
            Version::V3 => centis_from_interval(self.advert_interval).map(drop)?,
            Version::V2 => {
                secs_from_interval(self.advert_interval).map(drop)?;
                if !self.primary_address.is_ipv4() {
                    return Err(ConfigError::V2NeedsIpv4);
                }
            }
        }
        Ok(())
    }
}

/// A parameter outside what VRRP allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("vrid 0 is reserved; use 1..=255")]
    ZeroVrid,
    #[error("priority 0 is reserved for a leaving master; use 1..=255")]
    ZeroPriority,
    #[error("preempt_delay {0:?} is longer than the 1000s allowed")]
    PreemptDelayTooLong(Duration),
    #[error("advert_interval: {0}")]
    Interval(#[from] EncodeError),
    #[error("VRRPv2 runs over IPv4 only, but the primary address is IPv6")]
    V2NeedsIpv4,
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn config() -> Config {
        Config::new(
            51,
            150,
            Duration::from_millis(100),
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
        )
    }

    #[test]
    fn defaults_are_v3_with_preemption() {
        let config = config();
        assert!(config.preempt);
        assert_eq!(config.preempt_delay, Duration::ZERO);
        assert_eq!(config.version, Version::V3);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let mut bad = config();
        bad.vrid = 0;
        assert_eq!(bad.validate(), Err(ConfigError::ZeroVrid));
        let mut bad = config();
        bad.priority = 0;
        assert_eq!(bad.validate(), Err(ConfigError::ZeroPriority));
        let mut bad = config();
        bad.preempt_delay = Duration::from_secs(1001);
        assert!(matches!(
            bad.validate(),
            Err(ConfigError::PreemptDelayTooLong(_))
        ));
        let mut bad = config();
        bad.advert_interval = Duration::from_millis(5);
        assert!(matches!(bad.validate(), Err(ConfigError::Interval(_))));
        let mut bad = config();
        bad.version = Version::V2;
        assert!(matches!(bad.validate(), Err(ConfigError::Interval(_))));
        bad.advert_interval = Duration::from_secs(1);
        assert_eq!(bad.validate(), Ok(()));
        bad.primary_address = "fe80::1".parse().unwrap_or(bad.primary_address);
        assert_eq!(bad.validate(), Err(ConfigError::V2NeedsIpv4));
    }
}
