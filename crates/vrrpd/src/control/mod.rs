//! vrrpd's own control commands, one per file: `vrrp.priority` and `vrrp.maintenance`
//! (both need the admin right). `status` and `health` are built in [`crate::status`].

pub mod maintenance;
pub mod priority;

use ha_core::control::CommandError;
use serde_json::{Map, Value};

/// The `instance` argument: one name, or every instance when absent.
pub(crate) fn instance_arg(args: &Map<String, Value>) -> Result<Option<String>, CommandError> {
    match args.get("instance") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) => Ok(Some(name.clone())),
        Some(other) => Err(CommandError::invalid_argument(format!(
            "instance must be a name, not {other}"
        ))),
    }
}
