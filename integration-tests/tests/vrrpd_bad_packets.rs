//! Bad packets sent from a raw socket in a test namespace — malformed, wrong VRID, wrong
//! TTL, bad checksum, wrong version, from a stranger in unicast mode — are dropped, counted
//! by reason in `status` and in the metrics, and change nothing. Each of them claims priority
//! 254, so one that got through would make the master (150) step down.

use std::net::Ipv4Addr;
use std::time::Duration;

use integration_tests::netns::Lan;
use integration_tests::vrrp::{
    holders, in_netns, ipv4_datagram, send_raw, vrrp_v3, wait_for_holder, VrrpNode,
};
use integration_tests::{require_root, shared_tempdir, wait_until};

const VIP: &str = "198.18.0.100";

fn config(socket: &std::path::Path, priority: u8, peer: &str, metrics: &str) -> String {
    format!(
        "control: {{ socket: {} }}\n{metrics}log: {{ level: debug }}\ninstances:\n  - name: front\n    interface: eth0\n    vrid: 51\n    priority: {priority}\n    advert_interval: 100ms\n    unicast_peers: [{peer}]\n    virtual_addresses: [{VIP}/24]\n",
        socket.display()
    )
}

fn metrics_text(ns: &str) -> String {
    in_netns(ns, || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect("127.0.0.1:9102").expect("metrics");
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .expect("request");
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    })
}

#[test]
fn bad_packets_are_dropped_counted_by_reason_and_change_nothing() {
    if !require_root("bad_packets_are_dropped_counted_by_reason_and_change_nothing") {
        return;
    }
    let dir = shared_tempdir();
    let mut lan = Lan::new("vb");
    let a = lan.add_host("a", "198.18.0.1/24");
    let b = lan.add_host("b", "198.18.0.2/24");
    let x = lan.add_host("x", "198.18.0.9/24");
    let (sa, sb) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let metrics = "metrics: { listen: 127.0.0.1:9102 }\n";
    let node_a = VrrpNode::start(
        &lan,
        &a,
        dir.path(),
        &sa,
        &config(&sa, 150, "198.18.0.2", metrics),
    );
    let node_b = VrrpNode::start(
        &lan,
        &b,
        dir.path(),
        &sb,
        &config(&sb, 100, "198.18.0.1", ""),
    );
    let hosts = [&a, &b];
    wait_for_holder(&lan, &hosts, VIP, "a", Duration::from_secs(15));
    wait_until("b backup", Duration::from_secs(10), || {
        (node_b.state() == "backup").then_some(())
    });
    let transitions_before = node_a.transitions().len();

    let (ip_a, ip_b, ip_x) = (
        Ipv4Addr::new(198, 18, 0, 1),
        Ipv4Addr::new(198, 18, 0, 2),
        Ipv4Addr::new(198, 18, 0, 9),
    );
    let vip = [Ipv4Addr::new(198, 18, 0, 100)];
    let good = |source| vrrp_v3(source, ip_a, 51, 254, &vip);
    let mut bad_checksum = good(ip_b);
    bad_checksum[6] ^= 0xff;
    let mut too_many = good(ip_b);
    too_many[3] = 5; // five addresses announced, one present
    let mut wrong_version = good(ip_b);
    wrong_version[0] = 0x21;
    // Sent from x with b's address (b is the configured peer) so they pass the peer check.
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "truncated",
            ipv4_datagram(ip_b, ip_a, 255, &[0x31, 51, 254]),
        ),
        (
            "address_count_mismatch",
            ipv4_datagram(ip_b, ip_a, 255, &too_many),
        ),
        (
            "wrong_vrid",
            ipv4_datagram(ip_b, ip_a, 255, &vrrp_v3(ip_b, ip_a, 52, 254, &vip)),
        ),
        ("bad_ttl", ipv4_datagram(ip_b, ip_a, 64, &good(ip_b))),
        (
            "bad_checksum",
            ipv4_datagram(ip_b, ip_a, 255, &bad_checksum),
        ),
        (
            "bad_version",
            ipv4_datagram(ip_b, ip_a, 255, &wrong_version),
        ),
        (
            "foreign_unicast_peer",
            ipv4_datagram(ip_x, ip_a, 255, &good(ip_x)),
        ),
    ];
    for (reason, datagram) in cases {
        let before = node_a.dropped(reason);
        for _ in 0..3 {
            send_raw(&x, datagram.clone());
        }
        wait_until(
            &format!("a counts {reason}"),
            Duration::from_secs(10),
            || (node_a.dropped(reason) >= before + 3).then_some(()),
        );
        let text = metrics_text(&a.ns);
        let line = format!("vrrp_packets_dropped_total{{instance=\"front\",reason=\"{reason}\"}}");
        assert!(
            text.lines()
                .any(|l| l.starts_with(&line) && !l.ends_with(" 0")),
            "{line} missing or zero in:\n{text}"
        );
    }

    // Nothing changed: same master, same backup, no new transition, the VIP where it was.
    assert_eq!(node_a.state(), "master");
    assert_eq!(node_b.state(), "backup");
    assert_eq!(node_a.transitions().len(), transitions_before);
    assert_eq!(holders(&lan, &hosts, VIP), vec!["a".to_string()]);

    // A valid packet through the same path would have been heard: the checks are what held.
    send_raw(&x, ipv4_datagram(ip_b, ip_a, 255, &good(ip_b)));
    wait_until(
        "a yields to a valid priority-254 advertisement",
        Duration::from_secs(10),
        || (node_a.state() == "backup").then_some(()),
    );
}
