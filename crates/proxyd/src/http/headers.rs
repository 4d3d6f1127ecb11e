//! Request and response headers on their way through: hop-by-hop headers removed (RFC 9110
//! §7.6.1, and every header the `Connection` header names), and the client's identity added
//! as `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` and RFC 7239 `Forwarded`.
//! Pure functions over a `HeaderMap`, and the forwarding headers written as bytes for a request
//! head that goes out as such ([`put_forwarded`]).

use std::net::IpAddr;

use bytes::{BufMut, BytesMut};
use hyper::header::{
    Entry, HeaderMap, HeaderName, HeaderValue, CONNECTION, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION,
    TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Headers that describe one connection, never forwarded (besides `Connection` itself).
const HOP_BY_HOP: [HeaderName; 7] = [
    KEEP_ALIVE,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    PROXY_CONNECTION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
];

/// Removes hop-by-hop headers. `Upgrade` is removed too unless `keep_upgrade` (a WebSocket or
/// other upgrade being passed through, which needs `Connection: upgrade` and `Upgrade`).
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none: one pass over the names is cheaper than a removal each.
    let any = headers
        .keys()
        .any(|k| k == CONNECTION || k == UPGRADE || HOP_BY_HOP.contains(k));
    if !any {
        if keep_upgrade {
            headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        }
        return;
    }
    if let Entry::Occupied(entry) = headers.entry(CONNECTION) {
        let (_, values) = entry.remove_entry_mult();
        let values: Vec<HeaderValue> = values.collect();
        for name in values
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        {
            if !(keep_upgrade && name == UPGRADE) {
                headers.remove(name);
            }
        }
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

/// Who the client is, as proxyd saw it; built once per connection, so that forwarding a
/// request copies a ready-made address text instead of formatting it. Kept inline (no
/// allocation): it lives as long as the connection, idle ones included.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: IpAddr,
    /// `http` or `https`.
    pub proto: &'static str,
    /// The address as text (`X-Forwarded-For`): `text[..len]`.
    text: [u8; IP_TEXT_MAX],
    len: u8,
}

/// The longest address text (`ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`).
const IP_TEXT_MAX: usize = 45;

impl ClientInfo {
    pub fn new(ip: IpAddr, proto: &'static str) -> Self {
        let mut text = [0u8; IP_TEXT_MAX];
        let mut rest = &mut text[..];
        let len = match std::io::Write::write_fmt(&mut rest, format_args!("{ip}")) {
            Ok(()) => IP_TEXT_MAX - rest.len(),
            Err(_) => {
                text[..7].copy_from_slice(b"unknown");
                7
            }
        };
        Self {
            ip,
            proto,
            text,
            len: len as u8,
        }
    }

    /// The address as text, as `X-Forwarded-For` carries it.
    pub fn ip_text(&self) -> &[u8] {
        &self.text[..usize::from(self.len)]
    }

    /// `for=<node>;proto=<proto>`, the node quoted and bracketed for IPv6 (RFC 7239 §6).
    fn put_node<B: BufMut>(&self, out: &mut B) {
        out.put_slice(b"for=");
        match self.ip {
            IpAddr::V4(_) => out.put_slice(self.ip_text()),
            IpAddr::V6(_) => {
                out.put_slice(b"\"[");
                out.put_slice(self.ip_text());
                out.put_slice(b"]\"");
            }
        }
        out.put_slice(b";proto=");
        out.put_slice(self.proto.as_bytes());
    }
}

/// Appends the client to `X-Forwarded-For` and `Forwarded`; sets `X-Forwarded-Proto` and
/// `X-Forwarded-Host` (from `host`, the Host the client asked for).
pub fn add_forwarded(headers: &mut HeaderMap, client: &ClientInfo, host: Option<&HeaderValue>) {
    if let Ok(ip) = HeaderValue::from_bytes(client.ip_text()) {
        append_list(headers, X_FORWARDED_FOR, &ip);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(client.proto));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    let mut element = Vec::with_capacity(64);
    put_forwarded_element(&mut element, client, forwarded_host(host));
    if let Ok(element) = HeaderValue::from_bytes(&element) {
        append_list(headers, FORWARDED, &element);
    }
}

/// The Host to name in `Forwarded`, if it is plain enough to be written there.
fn forwarded_host(host: Option<&HeaderValue>) -> Option<&[u8]> {
    host.map(HeaderValue::as_bytes).filter(|h| {
        h.iter()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(b))
    })
}

/// `for=<node>;proto=<proto>[;host=<host>]`.
fn put_forwarded_element<B: BufMut>(out: &mut B, client: &ClientInfo, host: Option<&[u8]>) {
    client.put_node(out);
    if let Some(host) = host {
        out.put_slice(b";host=");
        if host.contains(&b':') {
            out.put_u8(b'"');
            out.put_slice(host);
            out.put_u8(b'"');
        } else {
            out.put_slice(host);
        }
    }
}

/// Whether `name` is one of the headers [`put_forwarded`] writes (from the client's values).
pub fn is_forwarded(name: &HeaderName) -> bool {
    name == X_FORWARDED_FOR
        || name == X_FORWARDED_PROTO
        || name == X_FORWARDED_HOST
        || name == FORWARDED
}

/// The forwarding headers [`add_forwarded`] would set, written as header lines after the
/// request's other headers (those [`is_forwarded`] names are left out of them): the client's
/// `X-Forwarded-For` and `Forwarded` with proxyd's element appended, its own
/// `X-Forwarded-Proto` and `X-Forwarded-Host`.
pub fn put_forwarded(
    out: &mut BytesMut,
    headers: &HeaderMap,
    client: &ClientInfo,
    host: Option<&HeaderValue>,
) {
    put_list_line(out, &X_FORWARDED_FOR, headers, |out| {
        out.put_slice(client.ip_text());
    });
    out.put_slice(b"x-forwarded-proto: ");
    out.put_slice(client.proto.as_bytes());
    out.put_slice(b"\r\n");
    if let Some(host) = host {
        out.put_slice(b"x-forwarded-host: ");
        out.put_slice(host.as_bytes());
        out.put_slice(b"\r\n");
    }
    let host = forwarded_host(host);
    put_list_line(out, &FORWARDED, headers, |out| {
        put_forwarded_element(out, client, host);
    });
}

/// `name: <what came in>, <item>` (or just the item).
fn put_list_line(
    out: &mut BytesMut,
    name: &HeaderName,
    headers: &HeaderMap,
    item: impl FnOnce(&mut BytesMut),
) {
    out.put_slice(name.as_str().as_bytes());
    out.put_slice(b": ");
    for value in headers.get_all(name) {
        if !value.is_empty() {
            out.put_slice(value.as_bytes());
            out.put_slice(b", ");
        }
    }
    item(out);
    out.put_slice(b"\r\n");
}

fn append_list(headers: &mut HeaderMap, name: HeaderName, item: &HeaderValue) {
    match headers.entry(name) {
        Entry::Vacant(entry) => {
            entry.insert(item.clone());
        }
        Entry::Occupied(mut entry) => {
            let existing = entry.get().as_bytes();
            if existing.is_empty() {
                entry.insert(item.clone());
                return;
            }
            let mut combined = Vec::with_capacity(existing.len() + 2 + item.len());
            combined.extend_from_slice(existing);
            combined.extend_from_slice(b", ");
            combined.extend_from_slice(item.as_bytes());
            if let Ok(value) = HeaderValue::from_bytes(&combined) {
                entry.insert(value);
            }
        }
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
    fn every_address_text_fits_inline() {
        for ip in [
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:255.255.255.255",
            "255.255.255.255",
            "::",
        ] {
            let client = ClientInfo::new(ip.parse().expect("ip"), "http");
            assert_eq!(client.ip_text(), ip.as_bytes());
        }
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
            &ClientInfo::new("192.0.2.1".parse().expect("ip"), "https"),
            Some(&HeaderValue::from_static("www.example:8443")),
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
    fn forwarded_lines_say_what_add_forwarded_sets() {
        let mut h = map(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
            ("x-forwarded-proto", "gopher"),
        ]);
        let client = ClientInfo::new("192.0.2.1".parse().expect("ip"), "https");
        let host = HeaderValue::from_static("www.example:8443");
        let mut out = BytesMut::new();
        put_forwarded(&mut out, &h, &client, Some(&host));
        assert_eq!(
            std::str::from_utf8(&out).expect("utf-8"),
            "x-forwarded-for: 203.0.113.9, 192.0.2.1\r\nx-forwarded-proto: https\r\n\
             x-forwarded-host: www.example:8443\r\n\
             forwarded: for=203.0.113.9, for=192.0.2.1;proto=https;host=\"www.example:8443\"\r\n"
        );
        add_forwarded(&mut h, &client, Some(&host));
        assert_eq!(
            h["forwarded"],
            "for=203.0.113.9, for=192.0.2.1;proto=https;host=\"www.example:8443\""
        );
        assert!(is_forwarded(&X_FORWARDED_HOST) && !is_forwarded(&CONNECTION));
    }

    #[test]
    fn ipv6_clients_are_quoted_in_forwarded() {
        let mut h = HeaderMap::new();
        add_forwarded(
            &mut h,
            &ClientInfo::new("2001:db8::1".parse().expect("ip"), "http"),
            None,
        );
        assert_eq!(h["forwarded"], "for=\"[2001:db8::1]\";proto=http");
    }
}
