//! Semantic checks of proxyd's configuration, all reported at once with their key paths.

use std::collections::HashSet;
use std::net::SocketAddr;

use ha_core::config::{Problems, Validate};

use super::{Balance, Config, Pool, Protocol};

impl Validate for Config {
    fn validate(&self, p: &mut Problems) {
        self.control.validate("control", p);
        self.log.validate("log", p);
        let mut names = HashSet::new();
        let mut addresses = HashSet::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let at = format!("listeners[{i}]");
            if !names.insert(l.name.as_str()) {
                p.at(
                    format!("{at}.name"),
                    format!("listener name {:?} is used twice", l.name),
                );
            }
            match l.listen.parse::<SocketAddr>() {
                Ok(addr) if addr.port() != 0 && !addresses.insert(addr) => p.at(
                    format!("{at}.listen"),
                    format!("{addr} is already used by another listener"),
                ),
                Ok(_) => {}
                Err(_) => p.at(
                    format!("{at}.listen"),
                    format!(
                        "invalid listen address {:?}: expected IP:PORT, e.g. 0.0.0.0:80",
                        l.listen
                    ),
                ),
            }
            if let Some(limit) = &l.rate_limit {
                if !(limit.rate > 0.0 && limit.rate.is_finite()) {
                    p.at(
                        format!("{at}.rate_limit.rate"),
                        "rate must be a number of requests per second above 0",
                    );
                }
                if l.protocol != Protocol::Http {
                    p.at(
                        format!("{at}.rate_limit"),
                        "rate_limit applies to http listeners",
                    );
                }
            }
            let pool_refs = l.pool.iter().map(|pool| (format!("{at}.pool"), pool));
            let route_refs = l
                .routes
                .iter()
                .enumerate()
                .map(|(r, route)| (format!("{at}.routes[{r}].pool"), &route.pool));
            for (path, pool) in pool_refs.chain(route_refs) {
                if !self.pools.contains_key(pool) {
                    p.at(path, format!("no pool named {pool:?}"));
                }
            }
            for (r, route) in l.routes.iter().enumerate() {
                if !route.path_prefix.starts_with('/') {
                    p.at(
                        format!("{at}.routes[{r}].path_prefix"),
                        "path_prefix must start with /",
                    );
                }
            }
            match l.protocol {
                Protocol::Tcp if l.pool.is_none() => {
                    p.at(format!("{at}.pool"), "a tcp listener needs a pool")
                }
                Protocol::Tcp if !l.routes.is_empty() => p.at(
                    format!("{at}.routes"),
                    "routes apply to http listeners only",
                ),
                Protocol::Tcp if l.tls.is_some() => {
                    p.at(format!("{at}.tls"), "tls applies to http listeners")
                }
                Protocol::Http if l.pool.is_none() && l.routes.is_empty() => p.at(
                    format!("{at}.routes"),
                    "an http listener needs routes or a default pool",
                ),
                _ => {}
            }
            if let Some(tls) = &l.tls {
                if tls.certificates.is_empty() {
                    p.at(
                        format!("{at}.tls.certificates"),
                        "at least one certificate is needed",
                    );
                }
            }
            for (t, trusted) in l.accept_proxy_from.iter().enumerate() {
                if let Err(e) = trusted.parse::<crate::listener::trusted::Cidr>() {
                    p.at(format!("{at}.accept_proxy_from[{t}]"), e.to_string());
                }
            }
            if l.max_connections == Some(0) {
                p.at(format!("{at}.max_connections"), "must be at least 1");
            }
        }
        for (name, pool) in &self.pools {
            validate_pool(&format!("pools.{name}"), pool, p);
        }
    }
}

fn validate_pool(at: &str, pool: &Pool, p: &mut Problems) {
    if pool.servers.is_empty() {
        p.at(format!("{at}.servers"), "a pool needs at least one server");
    }
    for (i, s) in pool.servers.iter().enumerate() {
        if !valid_host_port(&s.address) {
            p.at(
                format!("{at}.servers[{i}].address"),
                format!(
                    "invalid server address {:?}: expected HOST:PORT, e.g. 10.0.0.11:8080",
                    s.address
                ),
            );
        }
        if s.weight == 0 || s.weight > 1000 {
            p.at(
                format!("{at}.servers[{i}].weight"),
                format!("weight {} out of range: 1 to 1000", s.weight),
            );
        }
        if s.max_conns == Some(0) {
            p.at(format!("{at}.servers[{i}].max_conns"), "must be at least 1");
        }
    }
    match pool.balance {
        Balance::Hash if pool.hash_key.is_none() => {
            p.at(format!("{at}.hash_key"), "balance: hash needs hash_key")
        }
        Balance::Sticky if pool.sticky.is_none() => {
            p.at(format!("{at}.sticky"), "balance: sticky needs sticky")
        }
        _ => {}
    }
    if let Some(key) = &pool.hash_key {
        if !key.contains('$') {
            p.at(
                format!("{at}.hash_key"),
                "hash_key needs at least one variable such as $request_uri",
            );
        } else if let Err(e) = crate::pool::hash_key::HashKey::parse(key) {
            p.at(format!("{at}.hash_key"), e.to_string());
        }
    }
    if let Some(h) = &pool.active_health {
        if parse_status_range(&h.expect_status).is_none() {
            p.at(
                format!("{at}.active_health.expect_status"),
                format!(
                    "invalid status range {:?}: expected e.g. \"200\" or \"200-399\"",
                    h.expect_status
                ),
            );
        }
        if h.rise == 0 || h.fall == 0 {
            p.at(
                format!("{at}.active_health"),
                "rise and fall must be at least 1",
            );
        }
        if h.timeout.get() > h.interval.get() {
            p.at(
                format!("{at}.active_health.timeout"),
                "timeout must not exceed interval",
            );
        }
    }
    if let Some(r) = &pool.retry {
        if r.tries == 0 {
            p.at(format!("{at}.retry.tries"), "tries must be at least 1");
        }
        if !(0.0..=1.0).contains(&r.budget) {
            p.at(
                format!("{at}.retry.budget"),
                "budget is a fraction between 0 and 1",
            );
        }
    }
    if let Some(q) = &pool.queue {
        if q.max == 0 {
            p.at(format!("{at}.queue.max"), "must be at least 1");
        }
    }
}

/// `host:port` with a non-empty host and a port number.
fn valid_host_port(address: &str) -> bool {
    if address.parse::<SocketAddr>().is_ok() {
        return true;
    }
    match address.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && port.parse::<u16>().is_ok_and(|p| p > 0)
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        }
        None => false,
    }
}

/// `200` or `200-399` → inclusive range.
pub fn parse_status_range(text: &str) -> Option<(u16, u16)> {
    let (lo, hi) = match text.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let v = text.trim().parse().ok()?;
            (v, v)
        }
    };
    ((100..600).contains(&lo) && (100..600).contains(&hi) && lo <= hi).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agreed_example_is_valid() {
        let text = include_str!("../../../../deploy/examples/proxyd.yaml");
        ha_core::config::parse::<Config>(std::path::Path::new("proxyd.yaml"), text)
            .expect("example valid");
    }

    #[test]
    fn status_ranges() {
        assert_eq!(parse_status_range("200-399"), Some((200, 399)));
        assert_eq!(parse_status_range("204"), Some((204, 204)));
        assert_eq!(parse_status_range("399-200"), None);
        assert_eq!(parse_status_range("abc"), None);
    }

    #[test]
    fn host_ports() {
        assert!(valid_host_port("10.0.0.1:80"));
        assert!(valid_host_port("app1.internal:8080"));
        assert!(valid_host_port("[::1]:80"));
        assert!(!valid_host_port("app1"));
        assert!(!valid_host_port(":80"));
        assert!(!valid_host_port("a b:80"));
    }
}
