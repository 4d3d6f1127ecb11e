//! proxyd's own control commands (beyond ha-core's hello, health, status and reload): the
//! upgrade handoff and runtime changes to servers ([`backend`]). Every one of them changes
//! state, so all are `Access::Admin`; ha-core refuses other callers (and logs and counts
//! the refusal).

pub mod backend;

use ha_core::control::{Access, CommandError, ErrorKind};
use serde_json::{json, Map, Value};

use crate::pool::admin::AdminState;
use crate::Proxyd;

pub const COMMANDS: &[(&str, Access)] = &[
    ("upgrade.handoff", Access::Admin),
    ("backend.drain", Access::Admin),
    ("backend.disable", Access::Admin),
    ("backend.enable", Access::Admin),
    ("backend.weight", Access::Admin),
    ("backend.add", Access::Admin),
    ("backend.remove", Access::Admin),
];

pub fn call(proxyd: &Proxyd, cmd: &str, args: &Map<String, Value>) -> Result<Value, CommandError> {
    match cmd {
        "upgrade.handoff" => proxyd
            .start_handoff()
            .map(|path| json!({ "socket": path.display().to_string() }))
            .map_err(|why| CommandError::new(ErrorKind::Failed, why)),
        "backend.drain" => backend::set_admin(proxyd, args, AdminState::Drain),
        "backend.disable" => backend::set_admin(proxyd, args, AdminState::Disabled),
        "backend.enable" => backend::set_admin(proxyd, args, AdminState::Ready),
        "backend.weight" => backend::set_weight(proxyd, args),
        "backend.add" => backend::add(proxyd, args),
        "backend.remove" => backend::remove(proxyd, args),
        _ => Err(CommandError::new(
            ErrorKind::UnknownCommand,
            format!("unknown command {cmd}"),
        )),
    }
}
