//! What a reload may not change: the parts of the file that are built once at start and that
//! the running daemon cannot swap. The backends are the topology the monitor, the failover
//! epochs and every session's backend indexes depend on; the monitor's credentials are its
//! login; the session threads, the control socket, the metrics listener and the log are set
//! up by ha-core at start. A reload that touches any of them is refused whole (the caller
//! keeps the running configuration) with every such change named.
//!
//! Pure: two configurations in, the list of changes that need a restart out.

use super::{Backend, Config};

/// Every change from `running` to `new` that only a restart can apply, each said in words an
/// operator can act on. Empty: the new file can be applied live.
pub fn needing_restart(running: &Config, new: &Config) -> Vec<String> {
    let mut changes = backend_changes(&running.backends, &new.backends);
    let (old_m, new_m) = (&running.monitor, &new.monitor);
    if old_m.user != new_m.user {
        changes.push(format!(
            "monitor.user changed ({} to {})",
            old_m.user, new_m.user
        ));
    }
    if old_m.password != new_m.password || old_m.password_file != new_m.password_file {
        changes.push("monitor.password / password_file changed".into());
    }
    let fixed = [
        ("workers", running.workers != new.workers),
        ("control", running.control != new.control),
        ("metrics", running.metrics != new.metrics),
        ("log", running.log != new.log),
        ("backend_tls", running.backend_tls != new.backend_tls),
        (
            "rsa_private_key",
            running.rsa_private_key != new.rsa_private_key,
        ),
    ];
    for (section, changed) in fixed {
        if changed {
            changes.push(format!("{section} changed"));
        }
    }
    changes
}

/// Backends added, removed, reordered or changed (address, role).
fn backend_changes(old: &[Backend], new: &[Backend]) -> Vec<String> {
    let mut changes = Vec::new();
    for b in old {
        match new.iter().find(|n| n.name == b.name) {
            None => changes.push(format!("backend {} removed", b.name)),
            Some(n) if n.address != b.address => changes.push(format!(
                "backend {} address changed ({} to {})",
                b.name, b.address, n.address
            )),
            Some(n) if n.role != b.role => changes.push(format!(
                "backend {} role changed ({:?} to {:?})",
                b.name, b.role, n.role
            )),
            Some(n) if n.tls_name != b.tls_name => {
                changes.push(format!("backend {} tls_name changed", b.name))
            }
            Some(_) => {}
        }
    }
    for n in new {
        if !old.iter().any(|b| b.name == n.name) {
            changes.push(format!("backend {} added", n.name));
        }
    }
    let names = |list: &[Backend]| list.iter().map(|b| b.name.clone()).collect::<Vec<_>>();
    if changes.is_empty() && names(old) != names(new) {
        changes.push("backends reordered".into());
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let yaml = format!(
            "backends:\n  - {{ name: db1, address: 10.0.0.1:3306, role: writer }}\n  - {{ name: db2, address: 10.0.0.2:3306, role: replica }}\nmonitor: {{ user: monitor, password: pw }}\npools:\n  p: {{ writers: [db1], readers: [db2] }}\n{extra}"
        );
        ha_core::config::parse(std::path::Path::new("test.yaml"), &yaml)
            .expect("test config parses")
    }

    #[test]
    fn pools_users_listeners_monitor_timing_and_failover_apply_live() {
        let old = config("");
        let mut new = config("failover: { auto: false, hold_writes: 3s }\n");
        new.monitor.interval = ha_core::config::Duration::from_millis(100);
        new.monitor.rise = 5;
        new.users.push(crate::config::User {
            name: "u".into(),
            password: Some(crate::config::Secret("p".into())),
            password_hash: None,
            require_tls: false,
        });
        assert!(needing_restart(&old, &new).is_empty());
    }

    #[test]
    fn a_changed_backend_address_is_named() {
        let old = config("");
        let mut new = config("");
        new.backends[1].address = "10.0.0.9:3306".into();
        assert_eq!(
            needing_restart(&old, &new),
            vec!["backend db2 address changed (10.0.0.2:3306 to 10.0.0.9:3306)"]
        );
    }

    #[test]
    fn added_removed_and_reordered_backends_are_named() {
        let old = config("");
        let mut new = config("");
        new.backends[1].name = "db3".into();
        assert_eq!(
            needing_restart(&old, &new),
            vec!["backend db2 removed", "backend db3 added"]
        );
        let mut swapped = config("");
        swapped.backends.swap(0, 1);
        assert_eq!(needing_restart(&old, &swapped), vec!["backends reordered"]);
    }

    #[test]
    fn monitor_credentials_and_role_need_a_restart() {
        let old = config("");
        let mut new = config("");
        new.monitor.user = "other".into();
        new.monitor.password = Some(crate::config::Secret("x".into()));
        new.backends[1].role = crate::config::Role::Standby;
        let changes = needing_restart(&old, &new);
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert!(
            changes.iter().all(|c| !c.contains("x\"")),
            "no secret shown"
        );
    }

    #[test]
    fn the_client_rsa_key_needs_a_restart() {
        let old = config("");
        let mut new = config("");
        new.rsa_private_key = Some("/etc/ha/dbrouterd-rsa.pem".into());
        assert_eq!(needing_restart(&old, &new), ["rsa_private_key changed"]);
    }
}
