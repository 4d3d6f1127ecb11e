//! Routes of an HTTP listener: by Host and path prefix to a pool, first match wins, then the
//! listener's default pool. Pure.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Listener;
use crate::pool::Pool;

#[derive(Debug)]
struct Route {
    /// Lower-case host without port; `None` for `*`.
    host: Option<String>,
    path_prefix: String,
    pool: Arc<Pool>,
}

#[derive(Debug, Default)]
pub struct Routes {
    routes: Vec<Route>,
    default: Option<Arc<Pool>>,
}

impl Routes {
    /// The routes of `listener`; pool names were checked by validation (unknown ones are skipped).
    pub fn build(listener: &Listener, pools: &BTreeMap<String, Arc<Pool>>) -> Self {
        let routes = listener
            .routes
            .iter()
            .filter_map(|r| {
                Some(Route {
                    host: (r.host != "*").then(|| r.host.to_ascii_lowercase()),
                    path_prefix: r.path_prefix.clone(),
                    pool: Arc::clone(pools.get(&r.pool)?),
                })
            })
            .collect();
        let default = listener.pool.as_ref().and_then(|p| pools.get(p)).cloned();
        Self { routes, default }
    }

    /// The pool for a request to `host` (may carry a port) and `path`.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<&Arc<Pool>> {
        let host = host.map(strip_port);
        self.routes
            .iter()
            .find(|r| {
                path.starts_with(&r.path_prefix)
                    && r.host
                        .as_deref()
                        .is_none_or(|want| host.is_some_and(|h| h.eq_ignore_ascii_case(want)))
            })
            .map(|r| &r.pool)
            .or(self.default.as_ref())
    }
}

/// `example.com:8080` → `example.com`; `[::1]:80` → `[::1]`.
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
    }

    #[tokio::test]
    async fn first_match_wins_then_the_default() {
        let yaml = "servers: [{address: '127.0.0.1:1'}]";
        let c: crate::config::Pool = serde_yaml::from_str(yaml).expect("pool");
        let mut pools = BTreeMap::new();
        for name in ["api", "www", "fallback"] {
            pools.insert(
                name.to_owned(),
                Arc::new(Pool::build(name, &c).expect("pool")),
            );
        }
        let listener: Listener = serde_yaml::from_str(
            "{name: web, protocol: http, listen: '127.0.0.1:1', pool: fallback, routes: [\
             {host: api.example, path_prefix: /v1, pool: api}, {host: '*', path_prefix: /static, pool: www}]}",
        )
        .expect("listener");
        let routes = Routes::build(&listener, &pools);
        let name = |h: Option<&str>, p: &str| routes.find(h, p).map(|pool| pool.name.clone());
        assert_eq!(
            name(Some("API.example:80"), "/v1/x").as_deref(),
            Some("api")
        );
        assert_eq!(name(Some("other"), "/v1/x").as_deref(), Some("fallback"));
        assert_eq!(name(None, "/static/a").as_deref(), Some("www"));
        assert_eq!(name(Some("api.example"), "/").as_deref(), Some("fallback"));
    }
}
