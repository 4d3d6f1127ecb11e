//! The namespace LAN the cross-host tests are built on: hosts reach each other through the
//! bridge, a cut link isolates a host, and nothing is left behind.

use integration_tests::netns::Lan;
use integration_tests::require_root;

#[test]
fn hosts_reach_each_other_until_a_link_is_cut() {
    if !require_root("hosts_reach_each_other_until_a_link_is_cut") {
        return;
    }
    let names;
    {
        let mut lan = Lan::new("lan");
        let a = lan.add_host("a", "198.18.0.1/24");
        let b = lan.add_host("b", "198.18.0.2/24");
        assert_eq!(lan.addresses(&a), vec!["198.18.0.1/24".to_string()]);
        assert!(lan.ping(&a, b.ip()), "a cannot reach b");
        lan.set_link(&b, false);
        assert!(!lan.ping(&a, b.ip()), "b still reachable with its link cut");
        lan.set_link(&b, true);
        integration_tests::wait_until(
            "b reachable again",
            std::time::Duration::from_secs(10),
            || lan.ping(&a, b.ip()).then_some(()),
        );
        names = vec![a.ns.clone(), b.ns.clone()];
    }
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let list = String::from_utf8_lossy(&list.stdout);
    for ns in names {
        assert!(!list.contains(&ns), "{ns} left behind");
    }
}
