//! The `status` and `health` answers, built from the instances' views.

use serde_json::{json, Value};

use crate::fsm::State;
use crate::instance::View;

/// `status`: a summary line and every instance in full.
pub fn status(views: &[View]) -> Value {
    let masters = views.iter().filter(|v| v.state == State::Master).count();
    let summary = views
        .iter()
        .map(|v| format!("{} {} (priority {})", v.name, v.state, v.effective_priority))
        .collect::<Vec<_>>()
        .join(", ");
    json!({
        "summary": if views.is_empty() { "no instances".to_string() } else { format!("{summary}; master of {masters}/{}", views.len()) },
        "instances": views,
    })
}

/// `health`: ready once every instance has started its state machine.
pub fn health(views: &[View]) -> Value {
    let waiting: Vec<&str> = views
        .iter()
        .filter(|v| !v.initialized)
        .map(|v| v.name.as_str())
        .collect();
    if waiting.is_empty() {
        json!({ "ready": true })
    } else {
        json!({ "ready": false, "reason": format!("initializing: {}", waiting.join(", ")) })
    }
}
