//! `hactl status`: every daemon found, in one table (or JSON), and whether all are healthy.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::call::Target;
use crate::KNOWN_DAEMONS;

/// One daemon's row.
struct Row {
    name: String,
    socket: String,
    healthy: bool,
    state: String,
    status: Option<Value>,
    detail: String,
}

/// Daemons to show: those named, else every socket in the socket directory and every daemon
/// with a configuration file; else the known daemons (all reported as not running).
fn expected(target: &Target, config_dir: &Path, named: Vec<String>) -> Vec<String> {
    if !named.is_empty() {
        return named;
    }
    let mut found = BTreeSet::new();
    let sockets = std::fs::read_dir(&target.socket_dir)
        .into_iter()
        .flatten()
        .flatten();
    let configs = std::fs::read_dir(config_dir)
        .into_iter()
        .flatten()
        .flatten();
    for entry in sockets {
        if let Some(name) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_suffix(".sock"))
        {
            found.insert(name.to_string());
        }
    }
    for entry in configs {
        if let Some(name) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_suffix(".yaml"))
        {
            if KNOWN_DAEMONS.contains(&name) {
                found.insert(name.to_string());
            }
        }
    }
    if found.is_empty() {
        return KNOWN_DAEMONS.iter().map(|s| s.to_string()).collect();
    }
    found.into_iter().collect()
}

async fn query(target: &Target, name: String) -> Row {
    let socket = target.socket(&name);
    let socket_text = socket.display().to_string();
    match target.call(&socket, "status", Map::new()).await {
        Ok(status) => {
            let ready = status
                .pointer("/health/ready")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let reason = status
                .pointer("/health/reason")
                .and_then(Value::as_str)
                .unwrap_or("");
            let summary = status
                .pointer("/service/summary")
                .and_then(Value::as_str)
                .unwrap_or("");
            Row {
                name,
                socket: socket_text,
                healthy: ready,
                state: if ready {
                    "healthy".into()
                } else {
                    "unhealthy".into()
                },
                detail: if ready || reason.is_empty() {
                    summary.to_string()
                } else {
                    reason.to_string()
                },
                status: Some(status),
            }
        }
        Err(e) => Row {
            name,
            socket: socket_text,
            healthy: false,
            state: "not running".into(),
            detail: e.to_string(),
            status: None,
        },
    }
}

pub async fn run(target: &Target, config_dir: &Path, named: Vec<String>) -> Result<bool, String> {
    let names = expected(target, config_dir, named);
    // One after the other: a handful of local sockets, each with its own timeout.
    let mut rows = Vec::new();
    for name in names {
        rows.push(query(target, name).await);
    }
    let healthy = rows.iter().all(|r| r.healthy);
    if target.json {
        let daemons: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "name": r.name, "socket": r.socket, "state": r.state, "healthy": r.healthy,
                    "status": r.status, "error": if r.status.is_none() { Some(&r.detail) } else { None },
                })
            })
            .collect();
        println!("{}", json!({ "healthy": healthy, "daemons": daemons }));
    } else {
        print_table(&rows);
    }
    Ok(healthy)
}

fn print_table(rows: &[Row]) {
    let field = |r: &Row, key: &str| -> String {
        r.status
            .as_ref()
            .and_then(|s| s.get(key))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| "-".into())
    };
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let uptime = r
                .status
                .as_ref()
                .and_then(|s| s.get("uptime_s"))
                .and_then(Value::as_u64)
                .map(format_uptime);
            [
                r.name.clone(),
                r.state.clone(),
                field(r, "pid"),
                uptime.unwrap_or_else(|| "-".into()),
                field(r, "version"),
                r.detail.clone(),
            ]
        })
        .collect();
    let header = ["DAEMON", "STATE", "PID", "UPTIME", "VERSION", "DETAIL"].map(String::from);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(table.iter()) {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(table.iter()) {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(widths.iter()) {
            line.push_str(&format!("{cell:<w$}  "));
        }
        line.push_str(&row[5]);
        println!("{}", line.trim_end());
    }
}

fn format_uptime(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}
