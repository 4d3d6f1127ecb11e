//! Operating vrrpd over its control socket: `vrrp.maintenance` and `vrrp.priority` move the
//! VIP away and back; `reload` adds and removes instances without disturbing the unchanged
//! one.

use std::time::Duration;

use integration_tests::netns::Lan;
use integration_tests::vrrp::{holders, vrrpd_config, wait_for_holder, VrrpNode};
use integration_tests::{require_root, shared_tempdir, wait_until};

const VIP: &str = "198.18.0.100";

#[test]
fn maintenance_and_priority_move_the_vip_and_back() {
    if !require_root("maintenance_and_priority_move_the_vip_and_back") {
        return;
    }
    let dir = shared_tempdir();
    let mut lan = Lan::new("vc");
    let a = lan.add_host("a", "198.18.0.1/24");
    let b = lan.add_host("b", "198.18.0.2/24");
    let (sa, sb) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let node_a = VrrpNode::start(
        &lan,
        &a,
        dir.path(),
        &sa,
        &vrrpd_config(&sa, 150, "100ms", "198.18.0.100/24", ""),
    );
    let _node_b = VrrpNode::start(
        &lan,
        &b,
        dir.path(),
        &sb,
        &vrrpd_config(&sb, 100, "100ms", "198.18.0.100/24", ""),
    );
    let hosts = [&a, &b];
    wait_for_holder(&lan, &hosts, VIP, "a", Duration::from_secs(15));

    let answer =
        node_a.request(r#"{"cmd":"vrrp.maintenance","args":{"instance":"front","on":true}}"#);
    assert_eq!(answer["ok"], true, "{answer}");
    wait_for_holder(&lan, &hosts, VIP, "b", Duration::from_secs(10));
    assert_eq!(node_a.instance()["maintenance"], true);
    assert_eq!(
        node_a.transitions().last().map(|t| t["reason"].clone()),
        Some("operator".into())
    );
    node_a.request(r#"{"cmd":"vrrp.maintenance","args":{"on":false}}"#);
    wait_for_holder(&lan, &hosts, VIP, "a", Duration::from_secs(10));

    let answer =
        node_a.request(r#"{"cmd":"vrrp.priority","args":{"instance":"front","priority":50}}"#);
    assert_eq!(answer["ok"], true, "{answer}");
    wait_for_holder(&lan, &hosts, VIP, "b", Duration::from_secs(10));
    let i = node_a.instance();
    assert_eq!(
        (i["base_priority"].clone(), i["state"].clone()),
        (50.into(), "backup".into())
    );
    node_a.request(r#"{"cmd":"vrrp.priority","args":{"instance":"front","priority":null}}"#);
    wait_for_holder(&lan, &hosts, VIP, "a", Duration::from_secs(10));

    let refused = node_a.request(r#"{"cmd":"vrrp.priority","args":{"priority":0}}"#);
    assert_eq!(refused["ok"], false, "{refused}");
    let unknown =
        node_a.request(r#"{"cmd":"vrrp.maintenance","args":{"instance":"nope","on":true}}"#);
    assert_eq!(unknown["ok"], false, "{unknown}");
}

#[test]
fn reload_adds_and_removes_instances_without_disturbing_the_others() {
    if !require_root("reload_adds_and_removes_instances_without_disturbing_the_others") {
        return;
    }
    let dir = shared_tempdir();
    let mut lan = Lan::new("vr");
    let a = lan.add_host("a", "198.18.0.1/24");
    let socket = dir.path().join("a.sock");
    let base = vrrpd_config(&socket, 150, "100ms", "198.18.0.100/24", "");
    let node = VrrpNode::start(&lan, &a, dir.path(), &socket, &base);
    wait_for_holder(&lan, &[&a], VIP, "a", Duration::from_secs(15));
    let before = node.transitions().len();

    let second = "  - name: back\n    interface: eth0\n    vrid: 52\n    priority: 150\n    advert_interval: 100ms\n    virtual_addresses: [198.18.0.101/24]\n";
    std::fs::write(dir.path().join("a.yaml"), format!("{base}{second}")).expect("write");
    let answer = node.request(r#"{"cmd":"reload"}"#);
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["data"]["added"], serde_json::json!(["back"]));
    assert_eq!(answer["data"]["unchanged"], serde_json::json!(["front"]));
    wait_for_holder(&lan, &[&a], "198.18.0.101", "a", Duration::from_secs(15));
    assert_eq!(node.transitions().len(), before, "front was disturbed");
    assert_eq!(node.state(), "master");

    std::fs::write(dir.path().join("a.yaml"), &base).expect("write");
    let answer = node.request(r#"{"cmd":"reload"}"#);
    assert_eq!(
        answer["data"]["removed"],
        serde_json::json!(["back"]),
        "{answer}"
    );
    wait_until("back's VIP removed", Duration::from_secs(10), || {
        holders(&lan, &[&a], "198.18.0.101")
            .is_empty()
            .then_some(())
    });
    assert_eq!(holders(&lan, &[&a], VIP), vec!["a".to_string()]);
    assert_eq!(node.transitions().len(), before, "front was disturbed");
}

#[test]
fn a_vip_left_by_a_crash_is_removed_at_startup() {
    if !require_root("a_vip_left_by_a_crash_is_removed_at_startup") {
        return;
    }
    let dir = shared_tempdir();
    let mut lan = Lan::new("vx");
    let a = lan.add_host("a", "198.18.0.1/24");
    let b = lan.add_host("b", "198.18.0.2/24");
    let (sa, sb) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let _node_a = VrrpNode::start(
        &lan,
        &a,
        dir.path(),
        &sa,
        &vrrpd_config(&sa, 150, "100ms", "198.18.0.100/24", ""),
    );
    wait_for_holder(&lan, &[&a, &b], VIP, "a", Duration::from_secs(15));
    // What a vrrpd killed with SIGKILL while master leaves behind.
    lan.exec(
        &b.ns,
        &["ip", "addr", "add", "198.18.0.100/24", "dev", "eth0"],
    );
    assert_eq!(holders(&lan, &[&b], VIP), vec!["b".to_string()]);

    let node_b = VrrpNode::start(
        &lan,
        &b,
        dir.path(),
        &sb,
        &vrrpd_config(&sb, 100, "100ms", "198.18.0.100/24", ""),
    );
    assert_eq!(
        holders(&lan, &[&b], VIP),
        Vec::<String>::new(),
        "left-over VIP kept"
    );
    assert_eq!(node_b.state(), "backup");
    wait_for_holder(&lan, &[&a, &b], VIP, "a", Duration::from_secs(5));
}
