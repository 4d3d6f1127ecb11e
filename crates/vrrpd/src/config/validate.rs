//! Semantic checks of vrrpd's configuration ("lint"), reported all at once.

use std::collections::HashSet;
use std::net::IpAddr;

use ha_core::config::{Problems, Validate};

use super::{Config, Instance, Track};

impl Validate for Config {
    fn validate(&self, p: &mut Problems) {
        self.control.validate("control", p);
        self.log.validate("log", p);
        let mut names = HashSet::new();
        let mut vrids = HashSet::new();
        for (i, inst) in self.instances.iter().enumerate() {
            let at = format!("instances[{i}]");
            if !names.insert(inst.name.as_str()) {
                p.at(
                    format!("{at}.name"),
                    format!("instance name {:?} is used twice", inst.name),
                );
            }
            let family_v6 = inst
                .virtual_addresses
                .first()
                .and_then(|a| parse_cidr(a))
                .map(|(ip, _)| ip.is_ipv6());
            if !vrids.insert((inst.interface.as_str(), inst.vrid, family_v6)) {
                p.at(
                    format!("{at}.vrid"),
                    format!("vrid {} is used twice on {}", inst.vrid, inst.interface),
                );
            }
            validate_instance(&at, inst, p);
        }
        for (g, group) in self.sync_groups.iter().enumerate() {
            for (k, member) in group.instances.iter().enumerate() {
                if !names.contains(member.as_str()) {
                    p.at(
                        format!("sync_groups[{g}].instances[{k}]"),
                        format!("no instance named {member:?}"),
                    );
                }
            }
        }
    }
}

fn validate_instance(at: &str, inst: &Instance, p: &mut Problems) {
    if inst.vrid == 0 {
        p.at(format!("{at}.vrid"), "vrid must be 1..255");
    }
    if inst.priority == 0 {
        p.at(
            format!("{at}.priority"),
            "priority must be 1..255 (0 is reserved for a master that stops)",
        );
    }
    let interval = inst.advert_interval.get();
    match inst.version {
        3 => {
            let cs = interval.as_millis();
            if !(10..=40950).contains(&cs) || !cs.is_multiple_of(10) {
                p.at(
                    format!("{at}.advert_interval"),
                    format!(
                        "VRRPv3 interval {} out of range: 10ms..40950ms in whole centiseconds",
                        inst.advert_interval
                    ),
                );
            }
        }
        2 => {
            if interval.subsec_nanos() != 0 || !(1..=255).contains(&interval.as_secs()) {
                p.at(
                    format!("{at}.advert_interval"),
                    format!(
                        "VRRPv2 interval {} out of range: whole seconds 1s..255s",
                        inst.advert_interval
                    ),
                );
            }
        }
        v => p.at(
            format!("{at}.version"),
            format!("version {v} unknown: 3 or 2"),
        ),
    }
    if inst.virtual_addresses.is_empty() {
        p.at(
            format!("{at}.virtual_addresses"),
            "at least one virtual address is needed",
        );
    }
    let mut families = HashSet::new();
    for (k, vip) in inst.virtual_addresses.iter().enumerate() {
        match parse_cidr(vip) {
            Some((ip, _)) => {
                families.insert(ip.is_ipv6());
                if ip.is_ipv6() && inst.version == 2 {
                    p.at(
                        format!("{at}.virtual_addresses[{k}]"),
                        "VRRPv2 carries IPv4 addresses only",
                    );
                }
            }
            None => p.at(
                format!("{at}.virtual_addresses[{k}]"),
                format!("invalid address {vip:?}: expected ADDRESS/PREFIX, e.g. 198.18.0.100/24"),
            ),
        }
    }
    if families.len() > 1 {
        p.at(
            format!("{at}.virtual_addresses"),
            "IPv4 and IPv6 addresses need separate instances",
        );
    }
    for (k, problem) in vips_outside_the_interface(inst) {
        p.at(format!("{at}.virtual_addresses[{k}]"), problem);
    }
    if let Some(peers) = &inst.unicast_peers {
        if peers.is_empty() {
            p.at(
                format!("{at}.unicast_peers"),
                "the unicast peer list is empty: no advertisement would reach anyone",
            );
        }
    }
    if inst.garp.repeat == 0 {
        p.at(format!("{at}.garp.repeat"), "must be at least 1");
    }
    for (t, track) in inst.track.iter().enumerate() {
        let (rise, fall, interval, timeout, kind) = match track {
            Track::Daemon(d) => (d.rise, d.fall, Some(d.interval), Some(d.timeout), "daemon"),
            Track::Script(s) => (s.rise, s.fall, Some(s.interval), Some(s.timeout), "script"),
            Track::Interface(_) => (1, 1, None, None, "interface"),
        };
        if rise == 0 || fall == 0 {
            p.at(
                format!("{at}.track[{t}].{kind}"),
                "rise and fall must be at least 1",
            );
        }
        if let (Some(interval), Some(timeout)) = (interval, timeout) {
            if timeout.get() > interval.get() {
                p.at(
                    format!("{at}.track[{t}].{kind}.timeout"),
                    "timeout must not exceed interval",
                );
            }
        }
    }
}

/// VIPs in no subnet of their interface: no neighbour would reach them there. Checked only
/// when the interface exists on this host (a file is often checked elsewhere first) and is
/// not a loopback (VIPs on `lo` are the direct-routing pattern, and have no subnet).
fn vips_outside_the_interface(inst: &Instance) -> Vec<(usize, String)> {
    use crate::addresses::netlink::Netlink;
    let Ok(index) = Netlink::index(&inst.interface) else {
        return Vec::new();
    };
    let Ok(mut netlink) = Netlink::open() else {
        return Vec::new();
    };
    if netlink.link(index).map(|l| l.loopback).unwrap_or(true) {
        return Vec::new();
    }
    let Ok(present) = netlink.addresses(index) else {
        return Vec::new();
    };
    let subnets: Vec<(IpAddr, u8)> = present.iter().map(|a| (a.address, a.prefix)).collect();
    inst.virtual_addresses
        .iter()
        .enumerate()
        .filter_map(|(k, text)| {
            let (vip, _) = parse_cidr(text)?;
            let inside = subnets
                .iter()
                .any(|(net, prefix)| in_subnet(vip, *net, *prefix));
            (!inside).then(|| {
                let list: Vec<String> = subnets.iter().map(|(a, p)| format!("{a}/{p}")).collect();
                (
                    k,
                    format!(
                        "{vip} is in no subnet of {} (its addresses: {})",
                        inst.interface,
                        if list.is_empty() {
                            "none".to_string()
                        } else {
                            list.join(", ")
                        }
                    ),
                )
            })
        })
        .collect()
}

/// Whether `ip` is inside `network/prefix` (same family).
pub fn in_subnet(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// `198.18.0.100/24` → (address, prefix length).
pub fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, p.parse::<u8>().ok()?),
        None => (text, if text.contains(':') { 128 } else { 32 }),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv6() { 128 } else { 32 };
    (prefix <= max).then_some((ip, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agreed_example_is_valid() {
        let text = include_str!("../../../../deploy/examples/vrrpd.yaml");
        ha_core::config::parse::<Config>(std::path::Path::new("vrrpd.yaml"), text)
            .expect("example valid");
    }

    #[test]
    fn lint_finds_each_mistake() {
        let text = "instances:\n  - { name: a, interface: lo, vrid: 1, advert_interval: 5ms, unicast_peers: [], virtual_addresses: [10.0.0.1/33] }\n";
        let errors = ha_core::config::parse::<Config>(std::path::Path::new("v.yaml"), text)
            .expect_err("three")
            .0;
        let paths: Vec<String> = errors.iter().map(|e| e.path.to_string()).collect();
        assert!(
            paths.contains(&"instances[0].advert_interval".to_string()),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"instances[0].unicast_peers".to_string()),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"instances[0].virtual_addresses[0]".to_string()),
            "{paths:?}"
        );
    }

    #[test]
    fn subnets() {
        let ip = |t: &str| t.parse::<IpAddr>().unwrap_or(IpAddr::V4([0; 4].into()));
        assert!(in_subnet(ip("198.18.0.100"), ip("198.18.0.1"), 24));
        assert!(!in_subnet(ip("198.18.1.100"), ip("198.18.0.1"), 24));
        assert!(in_subnet(ip("10.1.2.3"), ip("192.0.2.1"), 0));
        assert!(in_subnet(ip("fd00::100"), ip("fd00::2"), 64));
        assert!(!in_subnet(ip("fd01::100"), ip("fd00::2"), 64));
        assert!(!in_subnet(ip("fd00::100"), ip("198.18.0.1"), 0));
    }

    #[test]
    fn a_vip_outside_every_subnet_of_an_existing_interface_is_reported() {
        // Runs against this host's first non-loopback interface with an IPv4 address, if any.
        use crate::addresses::netlink::Netlink;
        let Ok(mut netlink) = Netlink::open() else {
            return;
        };
        let candidate = (1..64u32).find_map(|index| {
            let link = netlink.link(index).ok()?;
            let address = netlink
                .addresses(index)
                .ok()?
                .into_iter()
                .find(|a| a.address.is_ipv4())?;
            let mut name = [0u8; libc::IF_NAMESIZE];
            // SAFETY: if_indextoname writes at most IF_NAMESIZE bytes into `name`.
            let found = unsafe { libc::if_indextoname(index, name.as_mut_ptr().cast()) };
            let name = std::ffi::CStr::from_bytes_until_nul(&name)
                .ok()?
                .to_str()
                .ok()?
                .to_string();
            (!link.loopback && !found.is_null()).then_some((name, address))
        });
        let Some((interface, address)) = candidate else {
            return;
        };
        let text = format!(
            "instances:\n  - {{ name: a, interface: {interface}, vrid: 1, virtual_addresses: [{}/{}, 203.0.113.77/24] }}\n",
            address.address, address.prefix
        );
        let errors = ha_core::config::parse::<Config>(std::path::Path::new("v.yaml"), &text)
            .expect_err("outside VIP")
            .0;
        let paths: Vec<String> = errors.iter().map(|e| e.path.to_string()).collect();
        assert_eq!(paths, vec!["instances[0].virtual_addresses[1]".to_string()]);
    }

    #[test]
    fn cidr() {
        assert_eq!(parse_cidr("198.18.0.100/24").map(|(_, p)| p), Some(24));
        assert!(parse_cidr("fd00::1/64").is_some());
        assert!(parse_cidr("1.2.3.4/40").is_none());
    }
}
