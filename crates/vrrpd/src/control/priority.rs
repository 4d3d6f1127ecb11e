//! `vrrp.priority {"instance": "front", "priority": 90}`: overrides an instance's configured
//! priority until the next reload or restart; `"priority": null` restores the configured one.
//! Tracking weights still apply on top.

use ha_core::control::CommandError;
use serde_json::{Map, Value};

/// The parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetPriority {
    pub instance: Option<String>,
    pub priority: Option<u8>,
}

pub fn parse(args: &Map<String, Value>) -> Result<SetPriority, CommandError> {
    let instance = super::instance_arg(args)?;
    let priority = match args.get("priority") {
        None => {
            return Err(CommandError::invalid_argument(
                "priority is required: 1..255, or null for the configured one",
            ))
        }
        Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(p @ 1..=255) => Some(p as u8),
            _ => {
                return Err(CommandError::invalid_argument(format!(
                    "priority {v} out of range: 1..255"
                )))
            }
        },
    };
    Ok(SetPriority { instance, priority })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn priority_is_checked() {
        let ok = parse(&args(json!({"instance": "front", "priority": 90}))).expect("valid");
        assert_eq!(ok.priority, Some(90));
        assert_eq!(ok.instance.as_deref(), Some("front"));
        assert_eq!(
            parse(&args(json!({"priority": null}))).map(|p| p.priority),
            Ok(None)
        );
        assert!(parse(&args(json!({"priority": 0}))).is_err());
        assert!(parse(&args(json!({"priority": 256}))).is_err());
        assert!(parse(&args(json!({}))).is_err());
    }
}
