//! proxyd's binary upgrade: a new process takes the listening sockets of the running one
//! (SCM_RIGHTS over its control socket's side channel), and the old one drains and exits.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration_tests::backend::{Backend, Load, Proxyd};
use integration_tests::{bin, shared_tempdir, wait_until};

/// A process started by the test, killed when the test ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `pid` has exited (gone, or a zombie its parent has not reaped yet).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

fn config(a: &Backend, b: &Backend) -> String {
    format!(
        "listeners:\n  - {{ name: web, protocol: http, listen: 127.0.0.1:0, pool: app }}\n\
         pools:\n  app:\n    servers: [{{ address: {} }}, {{ address: {} }}]\n",
        a.addr, b.addr
    )
}

fn upgrade(proxyd: &Proxyd, dir: &std::path::Path) -> Guard {
    let log = std::fs::File::create(dir.join("proxyd-new.log")).expect("log");
    let child = Command::new(bin("proxyd"))
        .arg("--upgrade")
        .arg("-c")
        .arg(&proxyd.daemon.config)
        .arg("--stop-timeout")
        .arg("5s")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn proxyd --upgrade");
    Guard(child)
}

fn status_pid(proxyd: &Proxyd) -> Option<u64> {
    let answer =
        integration_tests::daemon::control_line(&proxyd.daemon.socket, r#"{"cmd":"status"}"#)
            .ok()?;
    let value: serde_json::Value = serde_json::from_str(&answer).ok()?;
    value["data"]["pid"].as_u64()
}

#[test]
fn binary_upgrade_during_load_fails_no_request_and_the_old_process_exits() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let b = Backend::http("b");
    let proxyd = Proxyd::start(dir.path(), &config(&a, &b));
    let addr = proxyd.addr("web");
    let old_pid = proxyd.daemon.pid();

    let load = Load::start(addr, 4);
    load.wait_for_more(200);
    let mut new = upgrade(&proxyd, dir.path());
    let new_pid = new.0.id();
    wait_until(
        "the new process to answer on the control socket",
        Duration::from_secs(20),
        || {
            if let Ok(Some(status)) = new.0.try_wait() {
                panic!(
                    "proxyd --upgrade exited with {status}: {}",
                    std::fs::read_to_string(dir.path().join("proxyd-new.log")).unwrap_or_default()
                );
            }
            (status_pid(&proxyd) == Some(u64::from(new_pid))).then_some(())
        },
    );
    wait_until("the old process to exit", Duration::from_secs(20), || {
        exited(old_pid).then_some(())
    });
    load.wait_for_more(200);
    let report = load.stop();
    assert!(
        report.failures.is_empty(),
        "{} failed of {}: {:?}",
        report.failures.len(),
        report.ok + report.failures.len() as u64,
        &report.failures[..report.failures.len().min(10)]
    );
    // The same address, served by the new process alone.
    let status = proxyd.status();
    assert_eq!(
        status["listeners"][0]["listen"],
        addr.to_string(),
        "{status}"
    );
    let old_log = proxyd.daemon.log_text();
    assert!(
        old_log.contains("listening sockets handed over"),
        "{old_log}"
    );
    let _ = new.0.kill();
}

#[test]
fn a_second_upgrade_replaces_the_first_new_process_too() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let b = Backend::http("b");
    let proxyd = Proxyd::start(dir.path(), &config(&a, &b));
    let addr = proxyd.addr("web");
    let mut pids = vec![proxyd.daemon.pid()];
    let mut guards = Vec::new();
    for _ in 0..2 {
        let guard = upgrade(&proxyd, dir.path());
        let pid = guard.0.id();
        wait_until("the new process to serve", Duration::from_secs(20), || {
            (status_pid(&proxyd) == Some(u64::from(pid))).then_some(())
        });
        let previous = *pids.last().expect("pid");
        wait_until(
            "the previous process to exit",
            Duration::from_secs(20),
            || exited(previous).then_some(()),
        );
        pids.push(pid);
        guards.push(guard);
    }
    // One generation left, serving.
    assert!(pids[..2].iter().all(|p| exited(*p)));
    assert!(!exited(pids[2]));
    let reply = integration_tests::backend::get(addr, "/", &[]).expect("get");
    assert_eq!(reply.status, 200);
}
