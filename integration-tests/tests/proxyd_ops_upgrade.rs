//! proxyd's binary upgrade: a new process takes the listening sockets of the running one
//! (SCM_RIGHTS over its control socket's side channel), and the old one drains and exits.
//! Plain HTTP and TLS listeners (HTTP/1.1 and HTTP/2) alike.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration_tests::backend::{get, Backend, Load, Proxyd};
use integration_tests::certificate;
use integration_tests::https_load::{self, Target};
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

/// `config` plus a listener `slow` to a pool of its own on `slow`.
fn config_with_slow(a: &Backend, b: &Backend, slow: &Backend) -> String {
    format!(
        "listeners:\n  - {{ name: web, protocol: http, listen: 127.0.0.1:0, pool: app }}\n\
         \x20 - {{ name: slow, protocol: http, listen: 127.0.0.1:0, pool: slow }}\n\
         pools:\n  app:\n    servers: [{{ address: {} }}, {{ address: {} }}]\n\
         \x20 slow:\n    servers: [{{ address: {} }}]\n",
        a.addr, b.addr, slow.addr
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

/// Waits until `new` (started by [`upgrade`]) answers on the control socket; fails at once,
/// with its log, if it exits instead.
fn wait_for_new_process(proxyd: &Proxyd, new: &mut Guard, dir: &std::path::Path) {
    let new_pid = new.0.id();
    wait_until(
        "the new process to answer on the control socket",
        Duration::from_secs(20),
        || {
            if let Ok(Some(status)) = new.0.try_wait() {
                panic!(
                    "proxyd --upgrade exited with {status}: {}",
                    std::fs::read_to_string(dir.join("proxyd-new.log")).unwrap_or_default()
                );
            }
            (status_pid(proxyd) == Some(u64::from(new_pid))).then_some(())
        },
    );
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
    let slow = Backend::http("slow");
    let proxyd = Proxyd::start(dir.path(), &config_with_slow(&a, &b, &slow));
    let addr = proxyd.addr("web");
    let slow_addr = proxyd.addr("slow");
    let old_pid = proxyd.daemon.pid();

    // A request in flight on the old process through the upgrade.
    slow.set_hold(true);
    let in_flight = std::thread::spawn(move || get(slow_addr, "/", &[]));
    wait_until(
        "the slow request in flight",
        Duration::from_secs(10),
        || (slow.requests() == 1).then_some(()),
    );
    let load = Load::start(addr, 4);
    load.wait_for_more(200);
    let mut new = upgrade(&proxyd, dir.path());
    wait_for_new_process(&proxyd, &mut new, dir.path());
    load.wait_for_more(200);
    // The old process drains: it stays for the request it still serves, then goes.
    assert!(
        !exited(old_pid),
        "the old process left with a request in flight"
    );
    slow.set_hold(false);
    let reply = in_flight.join().expect("client").expect("reply");
    assert_eq!(reply.status, 200, "{reply:?}");
    wait_until("the old process to exit", Duration::from_secs(20), || {
        exited(old_pid).then_some(())
    });
    load.wait_for_more(200);
    let report = load.stop();
    report.assert_no_failure();
    // The same addresses, served by the new process alone.
    let status = proxyd.status();
    let listening: Vec<&str> = status["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["listen"].as_str())
        .collect();
    assert!(listening.contains(&addr.to_string().as_str()), "{status}");
    assert!(
        listening.contains(&slow_addr.to_string().as_str()),
        "{status}"
    );
    assert_eq!(get(slow_addr, "/", &[]).expect("get").status, 200);
    let old_log = proxyd.daemon.log_text();
    assert!(
        old_log.contains("listening sockets handed over"),
        "{old_log}"
    );
    let _ = new.0.kill();
}

/// Kills a process the test caused to start (by pid) when the test ends.
struct PidGuard(u32);

impl Drop for PidGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0 as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[test]
fn sigusr2_makes_the_running_proxyd_start_its_successor() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let b = Backend::http("b");
    let proxyd = Proxyd::start(dir.path(), &config(&a, &b));
    let addr = proxyd.addr("web");
    let old_pid = proxyd.daemon.pid();
    let load = Load::start(addr, 2);
    load.wait_for_more(100);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old_pid as i32),
        nix::sys::signal::Signal::SIGUSR2,
    )
    .expect("SIGUSR2");
    let new_pid = wait_until("a new process to serve", Duration::from_secs(20), || {
        status_pid(&proxyd).filter(|pid| *pid != u64::from(old_pid))
    });
    let _guard = PidGuard(new_pid as u32);
    wait_until("the old process to exit", Duration::from_secs(20), || {
        exited(old_pid).then_some(())
    });
    load.wait_for_more(100);
    let report = load.stop();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
}

#[test]
fn a_second_upgrade_replaces_the_first_new_process_too_and_runtime_changes_travel() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let b = Backend::http("b");
    let proxyd = Proxyd::start(dir.path(), &config(&a, &b));
    let addr = proxyd.addr("web");
    // A runtime change travels with the sockets.
    let drain = format!(
        r#"{{"cmd":"backend.drain","args":{{"pool":"app","server":"{}"}}}}"#,
        b.addr
    );
    let answer = proxyd.daemon.request(&drain);
    assert!(answer.contains("\"ok\":true"), "{answer}");
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
    assert_eq!(proxyd.server_state("app", b.addr), "drained");
    for _ in 0..5 {
        let reply = get(addr, "/", &[]).expect("get");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-server"), Some("a"));
    }
}

/// Two TLS listeners with the same certificate: `web` to `a` and `b`, `slow` to `slow`.
fn tls_config(cert: &str, key: &str, a: &Backend, b: &Backend, slow: &Backend) -> String {
    let tls = format!("tls: {{ certificates: [{{ cert: {cert}, key: {key} }}] }}");
    format!(
        "listeners:\n  - {{ name: web, protocol: http, listen: 127.0.0.1:0, pool: app, {tls} }}\n\
         \x20 - {{ name: slow, protocol: http, listen: 127.0.0.1:0, pool: slow, {tls} }}\n\
         pools:\n  app:\n    servers: [{{ address: {} }}, {{ address: {} }}]\n\
         \x20 slow:\n    servers: [{{ address: {} }}]\n",
        a.addr, b.addr, slow.addr
    )
}

#[test]
fn binary_upgrade_under_https_and_http2_load_fails_no_request_and_keeps_the_certificate() {
    let dir = shared_tempdir();
    let name = "upgrade.test";
    let (cert, key) = certificate::self_signed(dir.path(), name);
    let a = Backend::http("a");
    let b = Backend::http("b");
    let slow = Backend::http("slow");
    let proxyd = Proxyd::start(dir.path(), &tls_config(&cert, &key, &a, &b, &slow));
    let web = Target {
        addr: proxyd.addr("web"),
        name: name.into(),
        cacert: cert.clone(),
    };
    let slow_target = Target {
        addr: proxyd.addr("slow"),
        ..web.clone()
    };
    let old_pid = proxyd.daemon.pid();

    // An HTTP/2 stream in flight on the old process through the upgrade.
    slow.set_hold(true);
    let in_flight = std::thread::spawn(move || slow_target.curl("2", "/", 1));
    wait_until(
        "the slow HTTP/2 request in flight",
        Duration::from_secs(10),
        || (slow.requests() == 1).then_some(()),
    );
    let load = https_load::start(&web, 4);
    load.wait_for_more(50);
    let mut new = upgrade(&proxyd, dir.path());
    wait_for_new_process(&proxyd, &mut new, dir.path());
    // Briefly: the old process holds the stream only for --stop-timeout (5 s).
    load.wait_for_more(20);
    assert!(
        !exited(old_pid),
        "the old process left with an HTTP/2 stream in flight"
    );
    slow.set_hold(false);
    let answer = in_flight.join().expect("client");
    assert_eq!(answer, Ok(vec!["200 2".to_string()]));
    wait_until("the old process to exit", Duration::from_secs(20), || {
        exited(old_pid).then_some(())
    });
    load.wait_for_more(50);
    let report = load.stop();
    report.assert_no_failure();

    // The new process alone, on the same addresses, with the same certificate.
    let own = std::fs::read_to_string(&cert).expect("certificate");
    for target in [
        &web,
        &Target {
            addr: proxyd.addr("slow"),
            ..web.clone()
        },
    ] {
        assert_eq!(
            certificate::presented(target.addr, name),
            certificate::pem_block(&own),
            "the certificate {} presents",
            target.addr
        );
        for version in ["2", "1.1"] {
            assert_eq!(
                target.curl(version, "/", 2),
                Ok(vec![format!("200 {version}"); 2])
            );
        }
    }
    let old_log = proxyd.daemon.log_text();
    assert!(
        old_log.contains("listening sockets handed over"),
        "{old_log}"
    );
    let _ = new.0.kill();
}
