//! `hactl call` and `hactl reload`: one command to one daemon, its answer printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ha_core::control::{ClientError, ControlClient};
use serde_json::{Map, Value};

/// Where and how to reach daemons.
pub struct Target {
    pub socket_dir: PathBuf,
    pub timeout: Duration,
    pub json: bool,
}

impl Target {
    /// `proxyd` → `<socket_dir>/proxyd.sock`; a path is taken as it is.
    pub fn socket(&self, daemon: &str) -> PathBuf {
        if daemon.contains('/') {
            PathBuf::from(daemon)
        } else {
            self.socket_dir.join(format!("{daemon}.sock"))
        }
    }

    pub async fn call(
        &self,
        socket: &Path,
        cmd: &str,
        args: Map<String, Value>,
    ) -> Result<Value, ClientError> {
        ControlClient::call_once(socket, cmd, args, self.timeout).await
    }
}

/// `key=value` pairs → JSON arguments.
pub fn parse_args(args: &[String]) -> Result<Map<String, Value>, String> {
    let mut map = Map::new();
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(format!("argument {arg:?} is not key=value"));
        };
        let typed = match serde_json::from_str::<Value>(value) {
            Ok(
                v @ (Value::Number(_)
                | Value::Bool(_)
                | Value::Null
                | Value::Array(_)
                | Value::Object(_)),
            ) => v,
            _ => Value::String(value.to_string()),
        };
        map.insert(key.to_string(), typed);
    }
    Ok(map)
}

pub async fn run(
    target: &Target,
    daemon: &str,
    cmd: &str,
    args: &[String],
) -> Result<bool, String> {
    let args = parse_args(args)?;
    let socket = target.socket(daemon);
    match target.call(&socket, cmd, args).await {
        Ok(data) => {
            if target.json {
                println!("{}", serde_json::json!({ "ok": true, "data": data }));
            } else {
                print_value(&data);
            }
            Ok(true)
        }
        Err(e) => {
            if target.json {
                println!(
                    "{}",
                    serde_json::json!({ "ok": false, "error": e.to_string() })
                );
            } else if let ClientError::Command(error) = &e {
                eprintln!("{daemon}: {cmd} failed ({}): {}", error.kind, error.message);
            } else {
                eprintln!("{daemon}: {cmd} failed: {e}");
            }
            Ok(false)
        }
    }
}

fn print_value(data: &Value) {
    match data {
        Value::String(s) => println!("{s}"),
        Value::Null => println!("ok"),
        other => println!(
            "{}",
            serde_json::to_string_pretty(other).unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_arguments_are_typed() {
        let args = parse_args(&[
            "pool=app".into(),
            "weight=5".into(),
            "force=true".into(),
            "name=01".into(),
        ])
        .expect("valid");
        assert_eq!(args["pool"], "app");
        assert_eq!(args["weight"], 5);
        assert_eq!(args["force"], true);
        assert!(parse_args(&["oops".into()]).is_err());
    }
}
