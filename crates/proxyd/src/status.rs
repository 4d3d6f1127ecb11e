//! What `status` shows: per listener its bound address, per pool each server's state (up,
//! down, full, backup standing by, and why), active connections, requests and failures, and
//! a one-line `summary` for `hactl status`. Operators' runtime changes show as `runtime`
//! on the server (admin state, weight) and on the pool (servers added and removed).

use ha_core::balance::Backend;
use serde_json::{json, Value};

use crate::pool::Pool;
use crate::runtime::RuntimeChanges;
use crate::snapshot::Snapshot;

/// A pool's servers as status shows them; also counts how many are up.
pub fn pool_status(pool: &Pool, runtime: &RuntimeChanges) -> (Value, usize) {
    let primaries_up = pool.primaries.iter().any(|s| s.is_available());
    let mut up = 0;
    let servers: Vec<Value> = pool
        .servers()
        .map(|s| {
            let (mut state, mut why) = s.describe();
            if state == "up" {
                up += 1;
                if s.is_backup() && primaries_up {
                    state = "backup";
                    why = "standing by: primaries are up".to_owned();
                }
            }
            json!({
                "address": s.address(),
                "state": state,
                "why": why,
                "backup": s.is_backup(),
                "weight": s.configured_weight(),
                "runtime": runtime.server(&pool.name, s.address()),
                "active": s.in_flight(),
                "requests": s.requests(),
                "failures": s.failures(),
                "resolve_failures": s.resolve_failures(),
            })
        })
        .collect();
    (
        json!({
            "balance": format!("{:?}", pool.balance).to_lowercase(),
            "servers": servers,
            "queue": pool.queue.max().map(|max| json!({ "waiting": pool.queue.len(), "max": max })),
            "runtime": runtime.pool(&pool.name),
        }),
        up,
    )
}

pub fn status(snapshot: &Snapshot, bound: &[(String, String)], runtime: &RuntimeChanges) -> Value {
    let mut summary_parts = Vec::new();
    let mut pools = serde_json::Map::new();
    for (name, pool) in &snapshot.pools {
        let (value, up) = pool_status(pool, runtime);
        summary_parts.push(format!("{name} {up}/{} up", pool.servers().count()));
        pools.insert(name.clone(), value);
    }
    let listeners: Vec<Value> = bound
        .iter()
        .map(|(name, addr)| json!({ "name": name, "listen": addr }))
        .collect();
    json!({
        "summary": format!("{} listeners; pools: {}", listeners.len(), summary_parts.join(", ")),
        "listeners": listeners,
        "pools": pools,
    })
}
