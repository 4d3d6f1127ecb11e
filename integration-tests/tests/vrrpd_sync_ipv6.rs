//! Sync groups and IPv6: instances of a sync group fail over together when one of them
//! faults, and a VRRPv3 instance over IPv6 elects its master and moves its address.

use std::time::Duration;

use integration_tests::netns::{Host, Lan};
use integration_tests::vrrp::{HealthStandIn, VrrpNode};
use integration_tests::{require_root, shared_tempdir, wait_until};

fn holds(lan: &Lan, host: &Host, family: &str, address: &str) -> bool {
    let out = lan.exec(
        &host.ns,
        &["ip", "-o", family, "addr", "show", "dev", "eth0"],
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .any(|w| w.split('/').next() == Some(address))
}

fn wait_held(lan: &Lan, on: &Host, off: &Host, family: &str, address: &str) {
    wait_until(
        &format!("{address} on {} only", on.name),
        Duration::from_secs(15),
        || (holds(lan, on, family, address) && !holds(lan, off, family, address)).then_some(()),
    );
}

#[test]
fn a_sync_group_fails_over_together_when_one_member_faults() {
    if !require_root("a_sync_group_fails_over_together_when_one_member_faults") {
        return;
    }
    let dir = shared_tempdir();
    let mut lan = Lan::new("vs");
    let a = lan.add_host("a", "198.18.0.1/24");
    let b = lan.add_host("b", "198.18.0.2/24");
    let start = |host: &Host, priority: u8, stand_in: &std::path::Path| {
        let socket = dir.path().join(format!("{}.sock", host.name));
        let yaml = format!(
            "control: {{ socket: {} }}\nlog: {{ level: debug }}\ninstances:\n  - {{ name: front, interface: eth0, vrid: 51, priority: {priority}, advert_interval: 100ms, virtual_addresses: [198.18.0.100/24] }}\n  - name: back\n    interface: eth0\n    vrid: 52\n    priority: {priority}\n    advert_interval: 100ms\n    virtual_addresses: [198.18.0.101/24]\n    track:\n      - daemon: {{ name: app, socket: {}, interval: 50ms, timeout: 40ms, fall: 2, rise: 2, weight: 0 }}\nsync_groups:\n  - {{ name: lb, instances: [front, back] }}\n",
            socket.display(),
            stand_in.display()
        );
        VrrpNode::start(&lan, host, dir.path(), &socket, &yaml)
    };
    let (da, db) = (dir.path().join("app-a.sock"), dir.path().join("app-b.sock"));
    let mut app_a = HealthStandIn::start(&da);
    let _app_b = HealthStandIn::start(&db);
    let node_a = start(&a, 150, &da);
    let _node_b = start(&b, 100, &db);
    wait_held(&lan, &a, &b, "-4", "198.18.0.100");
    wait_held(&lan, &a, &b, "-4", "198.18.0.101");

    // Only "back" tracks the app; "front" goes along because they are a sync group.
    app_a.kill();
    wait_held(&lan, &b, &a, "-4", "198.18.0.101");
    wait_held(&lan, &b, &a, "-4", "198.18.0.100");
    let status = node_a.request(r#"{"cmd":"status"}"#);
    let instances = status["data"]["service"]["instances"].clone();
    let front = instances
        .as_array()
        .and_then(|l| l.iter().find(|i| i["name"] == "front").cloned())
        .unwrap_or_default();
    assert_eq!(front["state"], "fault", "{front}");
    assert_eq!(
        front["faults"],
        serde_json::json!(["sync_group"]),
        "{front}"
    );
}

#[test]
fn ipv6_instances_elect_and_move_the_address() {
    if !require_root("ipv6_instances_elect_and_move_the_address") {
        return;
    }
    let dir = shared_tempdir();
    let mut lan = Lan::new("v6");
    let a = lan.add_host("a", "198.18.0.1/24");
    let b = lan.add_host("b", "198.18.0.2/24");
    // IPv6 from the benchmarking range (RFC 5180), the IPv6 sibling of 198.18.0.0/15.
    for (host, address) in [(&a, "2001:2::1/64"), (&b, "2001:2::2/64")] {
        lan.exec(
            &host.ns,
            &["ip", "-6", "addr", "add", address, "dev", "eth0", "nodad"],
        );
    }
    // The link-local address must have finished duplicate address detection.
    for host in [&a, &b] {
        wait_until("link-local address ready", Duration::from_secs(15), || {
            let out = lan.exec(
                &host.ns,
                &[
                    "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link",
                ],
            );
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            (text.contains("fe80") && !text.contains("tentative")).then_some(())
        });
    }
    let config = |socket: &std::path::Path, priority: u8| {
        format!(
            "control: {{ socket: {} }}\nlog: {{ level: debug }}\ninstances:\n  - {{ name: front, interface: eth0, vrid: 51, priority: {priority}, advert_interval: 100ms, virtual_addresses: [\"2001:2::100/64\"] }}\n",
            socket.display()
        )
    };
    let (sa, sb) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let mut node_a = VrrpNode::start(&lan, &a, dir.path(), &sa, &config(&sa, 150));
    let node_b = VrrpNode::start(&lan, &b, dir.path(), &sb, &config(&sb, 100));
    wait_held(&lan, &a, &b, "-6", "2001:2::100");
    wait_until("b hears a over IPv6", Duration::from_secs(10), || {
        let i = node_b.instance();
        (i["state"] == "backup" && i["counters"]["adverts_received"].as_u64().unwrap_or(0) > 0)
            .then_some(())
    });
    node_a.stop();
    wait_held(&lan, &b, &a, "-6", "2001:2::100");
    assert_eq!(
        node_b.transitions().last().map(|t| t["reason"].clone()),
        Some("priority_zero_heard".into())
    );
}
