//! Semantic checks of dbrouterd's configuration, reported all at once.

use std::collections::HashSet;
use std::net::SocketAddr;

use ha_core::config::{Problems, Validate};

use super::{Config, ReadYourWrites, Writes};

impl Validate for Config {
    fn validate(&self, p: &mut Problems) {
        self.control.validate("control", p);
        self.log.validate("log", p);
        let mut listener_names = HashSet::new();
        for (i, l) in self.listeners.iter().enumerate() {
            if !listener_names.insert(l.name.as_str()) {
                p.at(
                    format!("listeners[{i}].name"),
                    format!("listener name {:?} is used twice", l.name),
                );
            }
            if l.listen.parse::<SocketAddr>().is_err() {
                p.at(
                    format!("listeners[{i}].listen"),
                    format!("invalid listen address {:?}: expected IP:PORT", l.listen),
                );
            }
            if let Some(tls) = &l.tls {
                for (key, path) in [("cert", &tls.cert), ("key", &tls.key)] {
                    if path.as_os_str().is_empty() {
                        p.at(format!("listeners[{i}].tls.{key}"), "needs a file path");
                    }
                }
            }
            if !self.pools.contains_key(&l.pool) {
                p.at(
                    format!("listeners[{i}].pool"),
                    format!("no pool named {:?}", l.pool),
                );
            }
        }
        let mut users = HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            if !users.insert(u.name.as_str()) {
                p.at(
                    format!("users[{i}].name"),
                    format!("user {:?} is listed twice", u.name),
                );
            }
            match (&u.password, &u.password_hash) {
                (Some(_), Some(_)) => p.at(
                    format!("users[{i}]"),
                    "give either password or password_hash, not both",
                ),
                (None, None) => p.at(
                    format!("users[{i}]"),
                    "a user needs a password or a password_hash",
                ),
                (None, Some(h)) if !is_native_hash(&h.0) => p.at(
                    format!("users[{i}].password_hash"),
                    "expected a mysql_native_password hash: * followed by 40 hex digits",
                ),
                _ => {}
            }
        }
        let mut backends = HashSet::new();
        for (i, b) in self.backends.iter().enumerate() {
            if !backends.insert(b.name.as_str()) {
                p.at(
                    format!("backends[{i}].name"),
                    format!("backend {:?} is listed twice", b.name),
                );
            }
            let host_port = b
                .address
                .rsplit_once(':')
                .is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok());
            if !host_port {
                p.at(
                    format!("backends[{i}].address"),
                    format!("invalid address {:?}: expected HOST:PORT", b.address),
                );
            }
        }
        self.backend_tls.validate(p);
        if self.monitor.password.is_none() && self.monitor.password_file.is_none() {
            p.at("monitor", "the monitor needs password or password_file");
        }
        if self.monitor.rise == 0 || self.monitor.fall == 0 {
            p.at("monitor", "rise and fall must be at least 1");
        }
        if self.monitor.interval.get().is_zero() {
            p.at("monitor.interval", "must be more than 0");
        }
        if self.failover.confirm_checks == 0 {
            p.at("failover.confirm_checks", "must be at least 1");
        }
        if self.failover.replication_user.is_some() != self.failover.replication_password.is_some()
        {
            p.at(
                "failover",
                "replication_user and replication_password go together",
            );
        }
        if self.failover.auto_rejoin && self.failover.replication_user.is_none() {
            p.at(
                "failover.auto_rejoin",
                "needs replication_user and replication_password (the account a rejoined server replicates with)",
            );
        }
        if self.failover.auto
            && !self
                .backends
                .iter()
                .any(|b| b.role == crate::config::Role::Standby)
            && self
                .backends
                .iter()
                .filter(|b| b.role == crate::config::Role::Writer)
                .count()
                < 2
        {
            p.at(
                "failover.auto",
                "automatic failover needs a backend with role standby (or a second writer)",
            );
        }
        for (name, pool) in &self.pools {
            let at = format!("pools.{name}");
            for (kind, list) in [("writers", &pool.writers), ("readers", &pool.readers)] {
                for (k, b) in list.iter().enumerate() {
                    if !backends.contains(b.as_str()) {
                        p.at(
                            format!("{at}.{kind}[{k}]"),
                            format!("no backend named {b:?}"),
                        );
                    }
                }
            }
            if pool.writes == Writes::Refuse && !pool.writers.is_empty() {
                p.at(
                    format!("{at}.writers"),
                    "a pool with writes: refuse must not list writers",
                );
            }
            if pool.writers.is_empty() && pool.readers.is_empty() {
                p.at(&at, "a pool needs writers or readers");
            }
            if pool.read_your_writes.mode == ReadYourWrites::WriterWindow
                && pool.read_your_writes.window.is_none()
            {
                p.at(
                    format!("{at}.read_your_writes.window"),
                    "mode writer_window needs a window, e.g. 2s",
                );
            }
            if pool.connection_pool.max_per_backend == 0 {
                p.at(
                    format!("{at}.connection_pool.max_per_backend"),
                    "must be at least 1",
                );
            }
            if pool.connection_pool.max_prepared_per_connection == 0 {
                p.at(
                    format!("{at}.connection_pool.max_prepared_per_connection"),
                    "must be at least 1",
                );
            }
            if pool.connection_pool.min_idle > pool.connection_pool.max_per_backend {
                p.at(
                    format!("{at}.connection_pool.min_idle"),
                    "must not exceed max_per_backend",
                );
            }
        }
    }
}

impl super::BackendTls {
    fn validate(&self, p: &mut Problems) {
        use super::BackendTlsMode as Mode;
        let verifies = matches!(self.mode, Mode::VerifyCa | Mode::VerifyIdentity);
        match (&self.ca, verifies) {
            (None, true) => p.at(
                "backend_tls.ca",
                format!(
                    "mode {} checks the servers' certificates against a CA: give its PEM file",
                    self.mode.as_str()
                ),
            ),
            // MySQL's client quietly verifies when given a CA under REQUIRED; say it instead.
            (Some(_), false) => p.at(
                "backend_tls.ca",
                format!(
                    "mode {} does not check certificates; use verify_ca or verify_identity to \
                     check them against this CA",
                    self.mode.as_str()
                ),
            ),
            _ => {}
        }
        if self.cert.is_some() != self.key.is_some() {
            p.at("backend_tls", "cert and key go together");
        }
        let empty = [("ca", &self.ca), ("cert", &self.cert), ("key", &self.key)]
            .into_iter()
            .filter(|(_, f)| f.as_ref().is_some_and(|f| f.as_os_str().is_empty()));
        for (key, _) in empty {
            p.at(format!("backend_tls.{key}"), "needs a file path");
        }
    }
}

fn is_native_hash(h: &str) -> bool {
    h.len() == 41 && h.starts_with('*') && h[1..].chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agreed_example_is_valid() {
        let text = include_str!("../../../../deploy/examples/dbrouterd.yaml");
        ha_core::config::parse::<Config>(std::path::Path::new("dbrouterd.yaml"), text)
            .expect("example valid");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let text = include_str!("../../../../deploy/examples/dbrouterd.yaml");
        let c = ha_core::config::parse::<Config>(std::path::Path::new("dbrouterd.yaml"), text)
            .expect("valid");
        let dump = format!("{c:?}");
        assert!(!dump.contains("apppw"), "password leaked into Debug output");
    }

    #[test]
    fn listener_tls_is_read_and_checked() {
        let text = include_str!("../../../../deploy/examples/dbrouterd.yaml");
        let path = std::path::Path::new("dbrouterd.yaml");
        let listener = text
            .lines()
            .find(|l| l.trim_start().starts_with("- { name:") && l.contains("listen:"))
            .expect("a listener line");
        let with_tls = listener.replace(
            " }",
            ", tls: { cert: /etc/ha/db.crt, key: /etc/ha/db.key, require: true } }",
        );
        let c = ha_core::config::parse::<Config>(path, &text.replace(listener, &with_tls))
            .expect("tls listener valid");
        let tls = c.listeners[0].tls.as_ref().expect("tls");
        assert!(tls.require);
        assert_eq!(tls.cert, std::path::Path::new("/etc/ha/db.crt"));
        let empty = listener.replace(" }", ", tls: { cert: \"\", key: /k } }");
        let err = ha_core::config::parse::<Config>(path, &text.replace(listener, &empty))
            .expect_err("empty cert path");
        assert!(err.to_string().contains("tls.cert"), "{err}");
        let unknown = listener.replace(" }", ", tls: { cert: /c, key: /k, ca: /x } }");
        assert!(ha_core::config::parse::<Config>(path, &text.replace(listener, &unknown)).is_err());
    }

    #[test]
    fn backend_tls_is_read_and_checked() {
        let text = include_str!("../../../../deploy/examples/dbrouterd.yaml");
        let path = std::path::Path::new("dbrouterd.yaml");
        let with = |section: &str| format!("{text}\nbackend_tls: {section}\n");
        let c = ha_core::config::parse::<Config>(path, text).expect("valid");
        assert_eq!(c.backend_tls.mode, super::super::BackendTlsMode::Disabled);
        let c = ha_core::config::parse::<Config>(
            path,
            &with("{ mode: verify_identity, ca: /etc/ha/db-ca.pem }"),
        )
        .expect("verify_identity with a CA");
        assert_eq!(
            c.backend_tls.mode,
            super::super::BackendTlsMode::VerifyIdentity
        );
        for (section, complaint) in [
            ("{ mode: verify_ca }", "backend_tls.ca"),
            (
                "{ mode: required, ca: /etc/ha/db-ca.pem }",
                "backend_tls.ca",
            ),
            (
                "{ mode: required, cert: /c.pem }",
                "cert and key go together",
            ),
            (
                "{ mode: preferred, key: \"\", cert: /c }",
                "backend_tls.key",
            ),
            ("{ mode: sometimes }", "mode"),
        ] {
            let err = ha_core::config::parse::<Config>(path, &with(section)).expect_err(section);
            assert!(err.to_string().contains(complaint), "{section}: {err}");
        }
    }

    #[test]
    fn failover_settings_are_checked() {
        let text = include_str!("../../../../deploy/examples/dbrouterd.yaml");
        let path = std::path::Path::new("dbrouterd.yaml");
        let half = text.replace("failover:\n", "failover:\n  replication_user: repl\n");
        let err = ha_core::config::parse::<Config>(path, &half).expect_err("user without password");
        assert!(err.to_string().contains("replication_password"), "{err}");
        let no_standby = text.replace("role: standby", "role: replica");
        let err = ha_core::config::parse::<Config>(path, &no_standby).expect_err("no standby");
        assert!(err.to_string().contains("failover.auto"), "{err}");
        let rejoin = text.replace("failover:\n", "failover:\n  auto_rejoin: true\n");
        let err = ha_core::config::parse::<Config>(path, &rejoin).expect_err("rejoin, no account");
        assert!(err.to_string().contains("failover.auto_rejoin"), "{err}");
    }
}
