//! proxyd's own control commands (beyond ha-core's hello, health, status and reload): the
//! upgrade handoff and runtime changes to servers. Every one of them changes state, so all
//! are `Access::Admin`; ha-core refuses other callers (and logs and counts the refusal).

use ha_core::control::{Access, CommandError, ErrorKind};
use serde_json::{json, Map, Value};

use crate::Proxyd;

pub const COMMANDS: &[(&str, Access)] = &[("upgrade.handoff", Access::Admin)];

pub fn call(proxyd: &Proxyd, cmd: &str, args: &Map<String, Value>) -> Result<Value, CommandError> {
    let _ = args;
    match cmd {
        "upgrade.handoff" => proxyd
            .start_handoff()
            .map(|path| json!({ "socket": path.display().to_string() }))
            .map_err(|why| CommandError::new(ErrorKind::Failed, why)),
        _ => Err(CommandError::new(
            ErrorKind::UnknownCommand,
            format!("unknown command {cmd}"),
        )),
    }
}
