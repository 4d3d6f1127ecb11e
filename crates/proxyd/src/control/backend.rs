//! `backend.*`: runtime changes to the servers of a pool, without a reload.
//!
//! - `backend.drain pool=P server=ADDR`: no new requests or sessions (sticky clients move to
//!   another server); those in flight finish; status shows `draining` then `drained`.
//! - `backend.disable` / `backend.enable`: out of rotation (maintenance) / back in.
//! - `backend.weight pool=P server=ADDR weight=N` (1..=1000).
//! - `backend.add pool=P server=ADDR [weight=N] [max_conns=N] [backup=true]`,
//!   `backend.remove pool=P server=ADDR`: the pool is rebuilt with the server added or
//!   removed; the other servers keep their state, requests on a removed one finish.
//!
//! Each is recorded in [`crate::runtime::RuntimeChanges`] and survives a reload that leaves
//! the pool as it was.

use std::sync::Arc;

use ha_core::control::{CommandError, ErrorKind};
use serde_json::{json, Map, Value};
use tracing::info;

use crate::config;
use crate::pool::admin::AdminState;
use crate::pool::Server;
use crate::Proxyd;

/// Highest weight `backend.weight` takes.
const MAX_WEIGHT: u64 = 1000;

fn invalid(message: String) -> CommandError {
    CommandError::new(ErrorKind::InvalidArgument, message)
}

fn text<'a>(args: &'a Map<String, Value>, key: &str) -> Result<&'a str, CommandError> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("missing argument {key}=...")))
}

/// A number given as JSON number or text (hactl passes `weight=5` as a number).
fn number(args: &Map<String, Value>, key: &str) -> Result<Option<u64>, CommandError> {
    match args.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(format!("{key} must be a whole number"))),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| invalid(format!("{key} must be a whole number, not {s:?}"))),
        Some(other) => Err(invalid(format!(
            "{key} must be a whole number, not {other}"
        ))),
    }
}

fn find(proxyd: &Proxyd, pool: &str, server: &str) -> Result<Arc<Server>, CommandError> {
    let snapshot = proxyd.snapshot();
    let pool_ref = snapshot
        .pools
        .get(pool)
        .ok_or_else(|| CommandError::new(ErrorKind::NotFound, format!("no pool {pool}")))?;
    let found = pool_ref.servers().find(|s| s.address() == server).cloned();
    found.ok_or_else(|| {
        CommandError::new(
            ErrorKind::NotFound,
            format!("no server {server} in pool {pool}"),
        )
    })
}

/// `backend.drain`, `backend.disable`, `backend.enable`.
pub fn set_admin(
    proxyd: &Proxyd,
    args: &Map<String, Value>,
    admin: AdminState,
) -> Result<Value, CommandError> {
    let (pool, address) = (text(args, "pool")?, text(args, "server")?);
    let mut state = proxyd.lock_state();
    let server = find(proxyd, pool, address)?;
    server.set_admin(admin);
    let file = state.file.clone();
    state.runtime.set_admin(&file, pool, address, admin);
    info!(
        pool,
        server = address,
        admin = admin.name(),
        "server admin state set by an operator"
    );
    Ok(
        json!({ "pool": pool, "server": address, "admin": admin.name(), "in_flight": ha_core::balance::Backend::in_flight(&*server) }),
    )
}

pub fn set_weight(proxyd: &Proxyd, args: &Map<String, Value>) -> Result<Value, CommandError> {
    let (pool, address) = (text(args, "pool")?, text(args, "server")?);
    let weight =
        number(args, "weight")?.ok_or_else(|| invalid("missing argument weight=N".into()))?;
    if !(1..=MAX_WEIGHT).contains(&weight) {
        return Err(invalid(format!(
            "weight must be 1..={MAX_WEIGHT} (drain a server to take it out)"
        )));
    }
    let weight = weight as u32;
    let mut state = proxyd.lock_state();
    let server = find(proxyd, pool, address)?;
    server.set_weight(weight);
    let file = state.file.clone();
    state.runtime.set_weight(&file, pool, address, weight);
    info!(
        pool,
        server = address,
        weight,
        "server weight set by an operator"
    );
    Ok(json!({ "pool": pool, "server": address, "weight": weight }))
}

fn valid_address(address: &str) -> bool {
    address.parse::<std::net::SocketAddr>().is_ok()
        || address.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        })
}

pub fn add(proxyd: &Proxyd, args: &Map<String, Value>) -> Result<Value, CommandError> {
    let (pool, address) = (text(args, "pool")?, text(args, "server")?);
    if !valid_address(address) {
        return Err(invalid(format!("server {address:?} is not host:port")));
    }
    let weight = number(args, "weight")?.unwrap_or(1);
    if !(1..=MAX_WEIGHT).contains(&weight) {
        return Err(invalid(format!("weight must be 1..={MAX_WEIGHT}")));
    }
    let max_conns = number(args, "max_conns")?
        .map(|n| u32::try_from(n).map_err(|_| invalid("max_conns is too large".into())))
        .transpose()?;
    let backup = match args.get("backup") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(invalid(format!(
                "backup must be true or false, not {other}"
            )))
        }
    };
    let mut state = proxyd.lock_state();
    let snapshot = proxyd.snapshot();
    let existing = snapshot
        .pools
        .get(pool)
        .ok_or_else(|| CommandError::new(ErrorKind::NotFound, format!("no pool {pool}")))?;
    if existing.servers().any(|s| s.address() == address) {
        return Err(invalid(format!(
            "server {address} is already in pool {pool}"
        )));
    }
    let server = config::Server {
        address: address.to_owned(),
        weight: weight as u32,
        max_conns,
        backup,
    };
    let mut runtime = state.runtime.clone();
    runtime.add(&state.file, pool, server);
    commit(proxyd, &mut state, runtime)?;
    info!(
        pool,
        server = address,
        weight,
        "server added by an operator"
    );
    Ok(json!({ "pool": pool, "server": address, "added": true }))
}

pub fn remove(proxyd: &Proxyd, args: &Map<String, Value>) -> Result<Value, CommandError> {
    let (pool, address) = (text(args, "pool")?, text(args, "server")?);
    let mut state = proxyd.lock_state();
    let server = find(proxyd, pool, address)?;
    let snapshot = proxyd.snapshot();
    if snapshot
        .pools
        .get(pool)
        .is_some_and(|p| p.servers().count() <= 1)
    {
        return Err(CommandError::new(
            ErrorKind::Failed,
            format!("server {address} is the last of pool {pool}; add another first"),
        ));
    }
    let mut runtime = state.runtime.clone();
    runtime.remove(&state.file, pool, address);
    commit(proxyd, &mut state, runtime)?;
    let in_flight = ha_core::balance::Backend::in_flight(&*server);
    info!(
        pool,
        server = address,
        in_flight,
        "server removed by an operator"
    );
    Ok(json!({ "pool": pool, "server": address, "removed": true, "in_flight": in_flight }))
}

/// Rebuilds with `runtime`; keeps it only if that worked.
fn commit(
    proxyd: &Proxyd,
    state: &mut crate::service::State,
    runtime: crate::runtime::RuntimeChanges,
) -> Result<(), CommandError> {
    let candidate = crate::service::State {
        file: state.file.clone(),
        runtime,
    };
    proxyd
        .rebuild(&candidate)
        .map_err(|why| CommandError::new(ErrorKind::Failed, why))?;
    *state = candidate;
    Ok(())
}
