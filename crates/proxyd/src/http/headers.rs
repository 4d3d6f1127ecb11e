//! Request and response headers on their way through: hop-by-hop headers removed (RFC 9110
//! §7.6.1, and every header the `Connection` header names), and the client's identity added
//! as `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` and RFC 7239 `Forwarded`.
//! Pure functions over a `HeaderMap`.

use std::net::IpAddr;

use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, UPGRADE};

/// Headers that describe one connection, never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
];

/// Removes hop-by-hop headers. `Upgrade` is removed too unless `keep_upgrade` (a WebSocket or
/// other upgrade being passed through, which needs `Connection: upgrade` and `Upgrade`).
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .filter(|name| !(keep_upgrade && name == UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(UPGRADE);
    }
}

/// Whether a request asks for a protocol upgrade (WebSocket and others).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Who the client is, as proxyd saw it.
#[derive(Debug, Clone, Copy)]
pub struct ClientInfo<'a> {
    pub ip: IpAddr,
    /// `http` or `https`.
    pub proto: &'static str,
    /// The Host the client asked for, if any.
    pub host: Option<&'a str>,
}

/// Appends the client to `X-Forwarded-For` and `Forwarded`; sets `X-Forwarded-Proto` and
/// `X-Forwarded-Host`.
pub fn add_forwarded(headers: &mut HeaderMap, client: &ClientInfo<'_>) {
    let ip = client.ip.to_string();
    append_list(headers, "x-forwarded-for", &ip);
    if let Ok(value) = HeaderValue::from_str(client.proto) {
        headers.insert("x-forwarded-proto", value);
    }
    if let Some(host) = client.host.and_then(|h| HeaderValue::from_str(h).ok()) {
        headers.insert("x-forwarded-host", host);
    }
    let node = match client.ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(_) => format!("\"[{ip}]\""),
    };
    let mut element = format!("for={node};proto={}", client.proto);
    if let Some(host) = client.host {
        if host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        {
            element.push_str(";host=");
            if host.contains(':') {
                element.push('"');
                element.push_str(host);
                element.push('"');
            } else {
                element.push_str(host);
            }
        }
    }
    append_list(headers, "forwarded", &element);
}

fn append_list(headers: &mut HeaderMap, name: &'static str, item: &str) {
    let combined = match headers.get(name).and_then(|v| v.to_str().ok()) {
        Some(existing) if !existing.is_empty() => format!("{existing}, {item}"),
        _ => item.to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&combined) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_removed() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-kept", "yes"),
        ]);
        remove_hop_by_hop(&mut h, false);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-kept"]);
    }

    #[test]
    fn an_upgrade_keeps_upgrade_and_connection_upgrade() {
        let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(is_upgrade(&h));
        remove_hop_by_hop(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
        assert!(!is_upgrade(&map(&[("upgrade", "websocket")])));
    }

    #[test]
    fn forwarded_headers_are_appended_to_what_came_in() {
        let mut h = map(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        add_forwarded(
            &mut h,
            &ClientInfo {
                ip: "192.0.2.1".parse().expect("ip"),
                proto: "https",
                host: Some("www.example:8443"),
            },
        );
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 192.0.2.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "www.example:8443");
        assert_eq!(
            h["forwarded"],
            "for=203.0.113.9, for=192.0.2.1;proto=https;host=\"www.example:8443\""
        );
    }

    #[test]
    fn ipv6_clients_are_quoted_in_forwarded() {
        let mut h = HeaderMap::new();
        add_forwarded(
            &mut h,
            &ClientInfo {
                ip: "2001:db8::1".parse().expect("ip"),
                proto: "http",
                host: None,
            },
        );
        assert_eq!(h["forwarded"], "for=\"[2001:db8::1]\";proto=http");
    }
}
