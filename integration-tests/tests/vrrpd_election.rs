//! Elections on a LAN of namespaces: the highest priority becomes master, and from then on
//! exactly one node holds the virtual address at every check.

use std::time::Duration;

use integration_tests::netns::{Host, Lan};
use integration_tests::vrrp::{fetch, holders, vrrpd_config, wait_for_holder, Responder, VrrpNode};
use integration_tests::{require_root, shared_tempdir};

const VIP: &str = "198.18.0.100";

fn start_nodes(
    lan: &mut Lan,
    dir: &std::path::Path,
    priorities: &[u8],
) -> (Vec<Host>, Vec<VrrpNode>) {
    let hosts: Vec<Host> = priorities
        .iter()
        .enumerate()
        .map(|(i, _)| lan.add_host(&format!("n{i}"), &format!("198.18.0.{}/24", i + 1)))
        .collect();
    let nodes = hosts
        .iter()
        .zip(priorities)
        .map(|(host, priority)| {
            let socket = dir.join(format!("{}.sock", host.name));
            let yaml = vrrpd_config(&socket, *priority, "300ms", &format!("{VIP}/24"), "");
            VrrpNode::start(lan, host, dir, &socket, &yaml)
        })
        .collect();
    (hosts, nodes)
}

/// Samples for `period`: exactly `expected` holds the VIP at every check.
fn assert_single_holder_for(lan: &Lan, hosts: &[&Host], expected: &str, period: Duration) {
    let end = std::time::Instant::now() + period;
    while std::time::Instant::now() < end {
        assert_eq!(holders(lan, hosts, VIP), vec![expected.to_string()]);
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn elect(test: &str, priorities: &[u8], winner: usize) {
    if !require_root(test) {
        return;
    }
    let dir = shared_tempdir();
    let mut lan = Lan::new("ve");
    let client = lan.add_host("client", "198.18.0.200/24");
    let (hosts, nodes) = start_nodes(&mut lan, dir.path(), priorities);
    let refs: Vec<&Host> = hosts.iter().collect();
    let expected = hosts[winner].name.clone();
    wait_for_holder(&lan, &refs, VIP, &expected, Duration::from_secs(15));
    assert_single_holder_for(&lan, &refs, &expected, Duration::from_secs(2));
    for (i, node) in nodes.iter().enumerate() {
        let want = if i == winner { "master" } else { "backup" };
        assert_eq!(node.state(), want, "node {i}");
    }
    let backup = &nodes[(winner + 1) % nodes.len()];
    assert_eq!(
        backup.instance()["master_address"].as_str(),
        Some(hosts[winner].ip())
    );
    let _responders: Vec<Responder> = hosts.iter().map(|h| Responder::start(h, 8080)).collect();
    integration_tests::wait_until(
        "client reaches the master on the VIP",
        Duration::from_secs(10),
        || (fetch(&client, VIP, 8080).as_deref() == Some(expected.as_str())).then_some(()),
    );
}

#[test]
fn two_nodes_elect_the_highest_priority() {
    elect("two_nodes_elect_the_highest_priority", &[100, 150], 1);
}

#[test]
fn three_nodes_elect_the_highest_priority() {
    elect(
        "three_nodes_elect_the_highest_priority",
        &[100, 200, 150],
        1,
    );
}
