//! Tracking scripts and notify scripts: a failing check script (run as `nobody`) lowers the
//! master's priority so the VIP moves; notify scripts get `instance state priority` for every
//! transition, in order.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use integration_tests::netns::Lan;
use integration_tests::vrrp::{vrrpd_config, wait_for_holder, VrrpNode};
use integration_tests::{require_root, shared_tempdir, wait_until};

const VIP: &str = "198.18.0.100";

fn executable(path: &std::path::Path, body: &str) {
    std::fs::write(path, body).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn a_failing_check_script_moves_the_vip_and_notify_scripts_see_every_transition() {
    if !require_root("a_failing_check_script_moves_the_vip_and_notify_scripts_see_every_transition")
    {
        return;
    }
    let dir = shared_tempdir();
    let mut lan = Lan::new("vs");
    let a = lan.add_host("a", "198.18.0.1/24");
    let b = lan.add_host("b", "198.18.0.2/24");
    let flag = dir.path().join("app-ok");
    std::fs::write(&flag, "").expect("flag");
    let check = dir.path().join("check.sh");
    executable(
        &check,
        &format!(
            "#!/bin/sh\n[ \"$(id -un)\" = nobody ] && test -e {}\n",
            flag.display()
        ),
    );
    let notes = dir.path().join("notes");
    let notify = dir.path().join("notify.sh");
    executable(
        &notify,
        &format!("#!/bin/sh\necho \"$1 $2 $3\" >> {}\n", notes.display()),
    );
    let extra = format!(
        "    track:\n      - script: {{ name: app, command: {}, user: nobody, interval: 100ms, timeout: 90ms, fall: 1, rise: 1, weight: -100 }}\n    notify: {{ script: {} }}\n",
        check.display(),
        notify.display()
    );
    let (sa, sb) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let node_a = VrrpNode::start(
        &lan,
        &a,
        dir.path(),
        &sa,
        &vrrpd_config(&sa, 150, "100ms", "198.18.0.100/24", &extra),
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

    std::fs::remove_file(&flag).expect("remove flag");
    wait_for_holder(&lan, &hosts, VIP, "b", Duration::from_secs(10));
    assert_eq!(node_a.instance()["effective_priority"], 50);

    std::fs::write(&flag, "").expect("flag");
    wait_for_holder(&lan, &hosts, VIP, "a", Duration::from_secs(10));
    wait_until(
        "notify script ran for every transition",
        Duration::from_secs(10),
        || {
            let text = std::fs::read_to_string(&notes).unwrap_or_default();
            (text.lines().count() >= 4).then_some(text)
        },
    );
    let text = std::fs::read_to_string(&notes).unwrap_or_default();
    let states: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(states, ["backup", "master", "backup", "master"], "{text}");
    assert!(text.lines().all(|l| l.starts_with("front ")), "{text}");
}
