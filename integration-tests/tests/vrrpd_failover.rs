//! Failover on a LAN of namespaces, seen from a client reaching a service on the VIP: the
//! master's link cut, a graceful stop (SIGTERM) and the death of a tracked daemon each move
//! the address to the backup, and the old master never keeps it.

use std::time::Duration;

use integration_tests::netns::{Host, Lan};
use integration_tests::vrrp::{
    fetch, holders, vrrpd_config, wait_for_holder, HealthStandIn, Responder, VrrpNode,
};
use integration_tests::{require_root, shared_tempdir, wait_until};

const VIP: &str = "198.18.0.100";
const PORT: u16 = 8080;

struct Pair {
    lan: Lan,
    a: Host,
    b: Host,
    client: Host,
}

fn pair(tag: &str) -> Pair {
    let mut lan = Lan::new(tag);
    let a = lan.add_host("a", "198.18.0.1/24");
    let b = lan.add_host("b", "198.18.0.2/24");
    let client = lan.add_host("client", "198.18.0.200/24");
    Pair { lan, a, b, client }
}

fn client_reaches(p: &Pair, name: &str) {
    wait_until(
        &format!("client reaches {name} on the VIP"),
        Duration::from_secs(10),
        || (fetch(&p.client, VIP, PORT).as_deref() == Some(name)).then_some(()),
    );
}

#[test]
fn link_cut_moves_the_vip_and_the_client_follows_through_updated_arp() {
    if !require_root("link_cut_moves_the_vip_and_the_client_follows_through_updated_arp") {
        return;
    }
    let dir = shared_tempdir();
    let p = pair("vl");
    let (sa, sb) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let a = VrrpNode::start(
        &p.lan,
        &p.a,
        dir.path(),
        &sa,
        &vrrpd_config(&sa, 150, "200ms", "198.18.0.100/24", ""),
    );
    let b = VrrpNode::start(
        &p.lan,
        &p.b,
        dir.path(),
        &sb,
        &vrrpd_config(&sb, 100, "200ms", "198.18.0.100/24", ""),
    );
    let hosts = [&p.a, &p.b];
    let _ra = Responder::start(&p.a, PORT);
    let _rb = Responder::start(&p.b, PORT);
    wait_for_holder(&p.lan, &hosts, VIP, "a", Duration::from_secs(15));
    client_reaches(&p, "a"); // the client's ARP entry now points at a

    p.lan.set_link(&p.a, false);
    wait_until("b master", Duration::from_secs(10), || {
        (b.state() == "master").then_some(())
    });
    wait_for_holder(&p.lan, &hosts, VIP, "b", Duration::from_secs(10));
    client_reaches(&p, "b");
    assert_eq!(a.state(), "fault", "a lost its carrier");

    p.lan.set_link(&p.a, true);
    wait_for_holder(&p.lan, &hosts, VIP, "a", Duration::from_secs(15));
    wait_until("one master, a", Duration::from_secs(10), || {
        (a.state() == "master" && b.state() == "backup").then_some(())
    });
    client_reaches(&p, "a");
    for _ in 0..20 {
        assert_eq!(
            holders(&p.lan, &hosts, VIP),
            vec!["a".to_string()],
            "split brain left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_on_the_master_hands_over_in_about_the_skew_time() {
    if !require_root("sigterm_on_the_master_hands_over_in_about_the_skew_time") {
        return;
    }
    let dir = shared_tempdir();
    let p = pair("vt");
    let (sa, sb) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    // A 1 s interval makes the difference plain: skew 0.61 s against a 3.61 s master-down.
    let mut a = VrrpNode::start(
        &p.lan,
        &p.a,
        dir.path(),
        &sa,
        &vrrpd_config(&sa, 150, "1s", "198.18.0.100/24", ""),
    );
    let b = VrrpNode::start(
        &p.lan,
        &p.b,
        dir.path(),
        &sb,
        &vrrpd_config(&sb, 100, "1s", "198.18.0.100/24", ""),
    );
    let hosts = [&p.a, &p.b];
    let _rb = Responder::start(&p.b, PORT);
    wait_for_holder(&p.lan, &hosts, VIP, "a", Duration::from_secs(20));
    wait_until("b has heard a", Duration::from_secs(10), || {
        (b.instance()["master_address"].as_str() == Some("198.18.0.1")).then_some(())
    });

    a.stop();
    assert_eq!(
        holders(&p.lan, &hosts[..1], VIP),
        Vec::<String>::new(),
        "VIP left on a"
    );
    wait_for_holder(&p.lan, &hosts, VIP, "b", Duration::from_secs(10));
    client_reaches(&p, "b");
    let last = b.transitions().last().cloned().unwrap_or_default();
    assert_eq!(last["to"], "master");
    assert_eq!(last["reason"], "priority_zero_heard", "{last}");
    let a_log = a.log_text();
    assert!(a_log.contains("to=init reason=shutdown"), "{a_log}");
}

#[test]
fn tracked_daemon_killed_on_the_master_moves_the_vip() {
    if !require_root("tracked_daemon_killed_on_the_master_moves_the_vip") {
        return;
    }
    let dir = shared_tempdir();
    let p = pair("vd");
    let (sa, sb) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let (pa, pb) = (
        dir.path().join("proxyd-a.sock"),
        dir.path().join("proxyd-b.sock"),
    );
    let mut proxyd_a = HealthStandIn::start(&pa);
    let _proxyd_b = HealthStandIn::start(&pb);
    let track = |socket: &std::path::Path| {
        format!(
            "    track:\n      - daemon: {{ name: proxyd, socket: {}, interval: 50ms, timeout: 40ms, fall: 2, rise: 2, weight: -100 }}\n",
            socket.display()
        )
    };
    let a = VrrpNode::start(
        &p.lan,
        &p.a,
        dir.path(),
        &sa,
        &vrrpd_config(&sa, 150, "100ms", "198.18.0.100/24", &track(&pa)),
    );
    let b = VrrpNode::start(
        &p.lan,
        &p.b,
        dir.path(),
        &sb,
        &vrrpd_config(&sb, 100, "100ms", "198.18.0.100/24", &track(&pb)),
    );
    let hosts = [&p.a, &p.b];
    let _ra = Responder::start(&p.a, PORT);
    let _rb = Responder::start(&p.b, PORT);
    wait_for_holder(&p.lan, &hosts, VIP, "a", Duration::from_secs(15));
    client_reaches(&p, "a");
    assert_eq!(a.instance()["effective_priority"], 150);

    proxyd_a.kill();
    wait_for_holder(&p.lan, &hosts, VIP, "b", Duration::from_secs(10));
    assert_eq!(b.state(), "master");
    client_reaches(&p, "b");
    let instance = a.instance();
    assert_eq!(instance["state"], "backup");
    assert_eq!(instance["effective_priority"], 50);
    let check = &instance["checks"][1];
    assert_eq!(check["name"], "proxyd");
    assert_eq!(check["up"], false);
}
