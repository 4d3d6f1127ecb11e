//! `vrrp.maintenance {"instance": "front", "on": true}`: forces an instance (or every
//! instance, without `instance`) to Backup and keeps it there, so an operator can move the
//! VIPs away before working on a node; `"on": false` releases it.

use ha_core::control::CommandError;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetMaintenance {
    pub instance: Option<String>,
    pub on: bool,
}

pub fn parse(args: &Map<String, Value>) -> Result<SetMaintenance, CommandError> {
    let instance = super::instance_arg(args)?;
    let on = args
        .get("on")
        .and_then(Value::as_bool)
        .ok_or_else(|| CommandError::invalid_argument("on is required: true or false"))?;
    Ok(SetMaintenance { instance, on })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn on_is_required() {
        let args = json!({"on": true}).as_object().cloned().unwrap_or_default();
        assert_eq!(
            parse(&args),
            Ok(SetMaintenance {
                instance: None,
                on: true
            })
        );
        let args = json!({"on": "yes"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(parse(&args).is_err());
    }
}
