//! The wire form of the control channel: requests, answers and error kinds.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Version of this protocol, sent in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request or answer line accepted, newline included.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// One request line.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub cmd: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub args: Map<String, Value>,
}

/// One answer line.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CommandError>,
}

impl Response {
    pub fn ok(data: Value) -> Self {
        Response {
            ok: true,
            data: Some(data),
            error: None,
        }
    }

    pub fn err(error: CommandError) -> Self {
        Response {
            ok: false,
            data: None,
            error: Some(error),
        }
    }

    pub fn into_result(self) -> Result<Value, CommandError> {
        match (self.ok, self.error) {
            (true, _) => Ok(self.data.unwrap_or(Value::Null)),
            (false, Some(e)) => Err(e),
            (false, None) => Err(CommandError::new(
                ErrorKind::Failed,
                "error answer without details",
            )),
        }
    }
}

/// What a command needs from its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone who can connect.
    Read,
    /// uid 0 or a member of the admin group.
    Admin,
}

/// Why a command failed; `kind` is stable for scripts, `message` is for people.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct CommandError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CommandError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CommandError {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The line is not a JSON request.
    BadRequest,
    /// The line is longer than [`MAX_LINE_BYTES`].
    LineTooLong,
    /// The daemon does not know this command.
    UnknownCommand,
    /// The caller may not run this command.
    Forbidden,
    /// An argument is missing or wrong.
    InvalidArgument,
    /// The named object (pool, backend, instance) does not exist.
    NotFound,
    /// The command ran and failed (e.g. a reload with an invalid file).
    Failed,
    /// The daemon is stopping.
    Unavailable,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = serde_json::to_value(self).ok();
        f.write_str(s.as_ref().and_then(Value::as_str).unwrap_or("error"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_forms() {
        let r: Request = serde_json::from_str(r#"{"cmd":"status"}"#).expect("plain");
        assert_eq!(r.cmd, "status");
        assert!(r.args.is_empty());
        let r: Request =
            serde_json::from_str(r#"{"cmd":"backend.drain","args":{"pool":"app"}}"#).expect("args");
        assert_eq!(r.args["pool"], "app");
        assert!(serde_json::from_str::<Request>(r#"{"command":"x"}"#).is_err());
    }

    #[test]
    fn answers() {
        let line = serde_json::to_string(&Response::err(CommandError::new(
            ErrorKind::Forbidden,
            "no",
        )))
        .expect("json");
        assert_eq!(
            line,
            r#"{"ok":false,"error":{"kind":"forbidden","message":"no"}}"#
        );
        assert_eq!(ErrorKind::UnknownCommand.to_string(), "unknown_command");
    }
}
