//! Interoperability with the real keepalived (Debian's package), VRRPv3 and VRRPv2, with
//! keepalived as master and as backup: the two elect one master, hear each other's
//! advertisements without drops, and hand the address over when the master stops.

use std::time::Duration;

use integration_tests::netns::Lan;
use integration_tests::vrrp::{vrrpd_config, wait_for_holder, Keepalived, VrrpNode};
use integration_tests::{require_root, shared_tempdir, wait_until};

const VIP: &str = "198.18.0.100";

/// vrrpd's interval and keepalived's `advert_int` for a version.
fn intervals(version: u8) -> (&'static str, &'static str) {
    match version {
        2 => ("1s", "1"),
        _ => ("100ms", "0.1"),
    }
}

fn keepalived_master(test: &str, version: u8) {
    if !require_root(test) {
        return;
    }
    let dir = shared_tempdir();
    let mut lan = Lan::new("vk");
    let v = lan.add_host("v", "198.18.0.1/24");
    let k = lan.add_host("k", "198.18.0.2/24");
    let (ours, theirs) = intervals(version);
    let socket = dir.path().join("v.sock");
    let extra = format!("    version: {version}\n");
    let node = VrrpNode::start(
        &lan,
        &v,
        dir.path(),
        &socket,
        &vrrpd_config(&socket, 100, ours, "198.18.0.100/24", &extra),
    );
    let mut keepalived = Keepalived::start(&k, dir.path(), version, 200, theirs, "198.18.0.100/24");
    let hosts = [&v, &k];
    wait_for_holder(&lan, &hosts, VIP, "k", Duration::from_secs(30));
    wait_until("vrrpd follows keepalived", Duration::from_secs(15), || {
        let i = node.instance();
        (i["state"] == "backup" && i["master_address"] == "198.18.0.2").then_some(())
    });
    let i = node.instance();
    assert!(i["counters"]["adverts_received"].as_u64().unwrap_or(0) > 0);
    assert_eq!(node.dropped("bad_checksum"), 0, "{i}");
    assert_eq!(node.dropped("bad_version"), 0, "{i}");

    keepalived.stop();
    wait_for_holder(&lan, &hosts, VIP, "v", Duration::from_secs(20));
    assert_eq!(node.state(), "master");
}

fn keepalived_backup(test: &str, version: u8) {
    if !require_root(test) {
        return;
    }
    let dir = shared_tempdir();
    let mut lan = Lan::new("vk");
    let v = lan.add_host("v", "198.18.0.1/24");
    let k = lan.add_host("k", "198.18.0.2/24");
    let (ours, theirs) = intervals(version);
    let socket = dir.path().join("v.sock");
    let extra = format!("    version: {version}\n");
    let mut node = VrrpNode::start(
        &lan,
        &v,
        dir.path(),
        &socket,
        &vrrpd_config(&socket, 200, ours, "198.18.0.100/24", &extra),
    );
    let keepalived = Keepalived::start(&k, dir.path(), version, 100, theirs, "198.18.0.100/24");
    let hosts = [&v, &k];
    wait_for_holder(&lan, &hosts, VIP, "v", Duration::from_secs(30));
    // keepalived has had time to run its own master-down timer: it must have stayed backup.
    let settle = if version == 2 { 5 } else { 2 };
    let end = std::time::Instant::now() + Duration::from_secs(settle);
    while std::time::Instant::now() < end {
        assert_eq!(
            integration_tests::vrrp::holders(&lan, &hosts, VIP),
            vec!["v".to_string()],
            "keepalived took the VIP while vrrpd is master:\n{}",
            keepalived.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(node.state(), "master");

    // Our priority-0 advertisement makes keepalived take over.
    node.stop();
    wait_for_holder(&lan, &hosts, VIP, "k", Duration::from_secs(20));
}

#[test]
fn keepalived_v3_master_and_vrrpd_backup() {
    keepalived_master("keepalived_v3_master_and_vrrpd_backup", 3);
}

#[test]
fn keepalived_v3_backup_and_vrrpd_master() {
    keepalived_backup("keepalived_v3_backup_and_vrrpd_master", 3);
}

#[test]
fn keepalived_v2_master_and_vrrpd_backup() {
    keepalived_master("keepalived_v2_master_and_vrrpd_backup", 2);
}

#[test]
fn keepalived_v2_backup_and_vrrpd_master() {
    keepalived_backup("keepalived_v2_backup_and_vrrpd_master", 2);
}
