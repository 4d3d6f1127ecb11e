//! One access-log line: what is recorded per HTTP request or TCP session, and its text and
//! JSON forms. Pure.

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

/// A request (`kind` `http`) or TCP session (`tcp`) as it ended.
#[derive(Debug, Clone)]
pub struct Entry {
    pub time: SystemTime,
    pub kind: &'static str,
    pub client: SocketAddr,
    pub listener: String,
    /// HTTP: `METHOD host path`; TCP: empty.
    pub route: String,
    pub pool: Option<String>,
    pub server: Option<String>,
    /// HTTP status; 0 for a TCP session.
    pub status: u16,
    /// HTTP: body bytes sent to the client (counted as they go; the declared length for
    /// proxyd's own short answers); TCP: bytes to the client.
    pub bytes_out: Option<u64>,
    /// TCP: bytes from the client.
    pub bytes_in: Option<u64>,
    /// HTTP: from the request head to the answer's last byte handed to the client (or its
    /// abort); TCP: the whole session.
    pub duration: Duration,
    /// HTTP: the server's part of `duration` (the last attempt).
    pub upstream: Option<Duration>,
    pub retries: u32,
}

/// `2026-11-27T11:40:00.123Z` (UTC), without a date-time crate.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl Entry {
    pub fn text(&self) -> String {
        let mut line = format!(
            "{} {} client={} listener={}",
            rfc3339(self.time),
            self.kind,
            self.client,
            self.listener
        );
        if !self.route.is_empty() {
            let _ = write!(line, " route=\"{}\"", self.route.replace('"', "%22"));
        }
        let _ = write!(
            line,
            " pool={} server={} status={}",
            self.pool.as_deref().unwrap_or("-"),
            self.server.as_deref().unwrap_or("-"),
            self.status
        );
        if let Some(n) = self.bytes_in {
            let _ = write!(line, " bytes_in={n}");
        }
        match self.bytes_out {
            Some(n) => {
                let _ = write!(line, " bytes_out={n}");
            }
            None => line.push_str(" bytes_out=-"),
        }
        let _ = write!(line, " duration_ms={}", ms(self.duration));
        if let Some(upstream) = self.upstream {
            let _ = write!(line, " upstream_ms={}", ms(upstream));
        }
        let _ = write!(line, " retries={}", self.retries);
        line
    }

    pub fn json(&self) -> String {
        json!({
            "time": rfc3339(self.time),
            "kind": self.kind,
            "client": self.client.to_string(),
            "listener": self.listener,
            "route": self.route,
            "pool": self.pool,
            "server": self.server,
            "status": self.status,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "duration_ms": ms(self.duration),
            "upstream_ms": self.upstream.map(ms),
            "retries": self.retries,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789); // a leap day
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.789Z");
    }

    #[test]
    fn a_line_has_every_field_in_both_forms() {
        let e = Entry {
            time: UNIX_EPOCH,
            kind: "http",
            client: "10.0.0.1:5000".parse().expect("addr"),
            listener: "web".into(),
            route: "GET example.com /a\"b".into(),
            pool: Some("app".into()),
            server: Some("10.0.0.11:8080".into()),
            status: 200,
            bytes_out: Some(12),
            bytes_in: None,
            duration: Duration::from_micros(1500),
            upstream: Some(Duration::from_millis(1)),
            retries: 1,
        };
        assert_eq!(
            e.text(),
            "1970-01-01T00:00:00.000Z http client=10.0.0.1:5000 listener=web route=\"GET example.com /a%22b\" \
             pool=app server=10.0.0.11:8080 status=200 bytes_out=12 duration_ms=1.5 upstream_ms=1 retries=1"
        );
        let v: serde_json::Value = serde_json::from_str(&e.json()).expect("json");
        assert_eq!(v["server"], "10.0.0.11:8080");
        assert_eq!(v["retries"], 1);
        assert_eq!(v["duration_ms"], 1.5);
    }
}
