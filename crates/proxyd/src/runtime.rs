//! Changes an operator made at run time over the control channel (`backend.drain`,
//! `backend.disable`, `backend.enable`, `backend.weight`, `backend.add`, `backend.remove`),
//! kept beside the file's configuration.
//!
//! Servers added or removed are an overlay on the file: the running pools are built from
//! [`RuntimeChanges::overlay`] of it. Admin states and weights are set on the live servers
//! and recorded here, so a rebuilt pool gets them back ([`RuntimeChanges::apply`]). A reload
//! keeps a pool's changes when the file leaves that pool as it was when they were made, and
//! drops them (the file wins) when it changes the pool. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::config::{self, Config};
use crate::pool::admin::AdminState;
use crate::snapshot::Snapshot;

/// What was changed on one server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerChange {
    pub admin: Option<AdminState>,
    pub weight: Option<u32>,
}

#[derive(Debug, Clone, Default)]
struct PoolChanges {
    /// The file's pool when the first change was made.
    base: Option<config::Pool>,
    added: Vec<config::Server>,
    removed: BTreeSet<String>,
    servers: BTreeMap<String, ServerChange>,
}

impl PoolChanges {
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.servers.is_empty()
    }
}

#[derive(Debug, Clone, Default)]
pub struct RuntimeChanges {
    pools: BTreeMap<String, PoolChanges>,
}

impl RuntimeChanges {
    /// Drops the changes of every pool the new file changed or removed; returns those pools.
    pub fn rebase(&mut self, file: &Config) -> Vec<String> {
        let mut dropped = Vec::new();
        self.pools.retain(|name, changes| {
            let keep = file.pools.get(name) == changes.base.as_ref();
            if !keep {
                dropped.push(name.clone());
            }
            keep
        });
        dropped
    }

    /// The file with the servers added and removed at run time.
    pub fn overlay(&self, file: &Config) -> Config {
        let mut config = file.clone();
        for (name, changes) in &self.pools {
            if let Some(pool) = config.pools.get_mut(name) {
                pool.servers
                    .retain(|s| !changes.removed.contains(&s.address));
                pool.servers.extend(changes.added.iter().cloned());
            }
        }
        config
    }

    /// Sets the recorded admin states and weights on the servers of `snapshot`.
    pub fn apply(&self, snapshot: &Snapshot) {
        for (name, changes) in &self.pools {
            let Some(pool) = snapshot.pools.get(name) else {
                continue;
            };
            for server in pool.servers() {
                let change = changes.servers.get(server.address());
                if let Some(admin) = change.and_then(|c| c.admin) {
                    server.set_admin(admin);
                }
                if let Some(weight) = change.and_then(|c| c.weight) {
                    server.set_weight(weight);
                }
            }
        }
    }

    fn pool_mut(&mut self, pool: &str, file: &Config) -> &mut PoolChanges {
        let changes = self.pools.entry(pool.to_owned()).or_default();
        if changes.base.is_none() {
            changes.base = file.pools.get(pool).cloned();
        }
        changes
    }

    fn tidy(&mut self, pool: &str) {
        if self.pools.get(pool).is_some_and(PoolChanges::is_empty) {
            self.pools.remove(pool);
        }
    }

    /// Records an admin state; `Ready` clears the change.
    pub fn set_admin(&mut self, file: &Config, pool: &str, server: &str, admin: AdminState) {
        let changes = self.pool_mut(pool, file);
        let entry = changes.servers.entry(server.to_owned()).or_default();
        entry.admin = (admin != AdminState::Ready).then_some(admin);
        if *entry == ServerChange::default() {
            changes.servers.remove(server);
        }
        self.tidy(pool);
    }

    pub fn set_weight(&mut self, file: &Config, pool: &str, server: &str, weight: u32) {
        let changes = self.pool_mut(pool, file);
        changes.servers.entry(server.to_owned()).or_default().weight = Some(weight);
    }

    /// Adds a server (or takes back the removal of a server of the file).
    pub fn add(&mut self, file: &Config, pool: &str, server: config::Server) {
        let changes = self.pool_mut(pool, file);
        if !changes.removed.remove(&server.address) {
            changes.added.push(server);
        }
        self.tidy(pool);
    }

    /// Removes a server; its admin state and weight changes go with it.
    pub fn remove(&mut self, file: &Config, pool: &str, server: &str) {
        let changes = self.pool_mut(pool, file);
        let before = changes.added.len();
        changes.added.retain(|s| s.address != server);
        if changes.added.len() == before {
            changes.removed.insert(server.to_owned());
        }
        changes.servers.remove(server);
        self.tidy(pool);
    }

    /// The changes as JSON, for a new binary taking over ([`crate::upgrade`]). A pool's base is
    /// carried as its debug form, enough to tell whether the new process's file left it alone.
    pub fn export(&self) -> Value {
        let pools: Vec<Value> = self
            .pools
            .iter()
            .map(|(name, c)| {
                json!({
                    "pool": name,
                    "base": format!("{:?}", c.base),
                    "added": c.added.iter().map(|s| json!({
                        "address": s.address, "weight": s.weight, "max_conns": s.max_conns, "backup": s.backup,
                    })).collect::<Vec<_>>(),
                    "removed": c.removed,
                    "servers": c.servers.iter().map(|(address, change)| json!({
                        "address": address,
                        "admin": change.admin.map(AdminState::name),
                        "weight": change.weight,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!(pools)
    }

    /// The changes [`export`](Self::export)ed by the old process, for the pools `file` leaves
    /// as they were there; returns them with the pools whose changes were dropped.
    pub fn import(exported: &Value, file: &Config) -> (Self, Vec<String>) {
        let mut changes = Self::default();
        let mut dropped = Vec::new();
        for p in exported.as_array().into_iter().flatten() {
            let Some(name) = p["pool"].as_str() else {
                continue;
            };
            let base = file.pools.get(name).cloned();
            if p["base"].as_str() != Some(format!("{base:?}").as_str()) {
                dropped.push(name.to_owned());
                continue;
            }
            let mut pool = PoolChanges {
                base,
                ..Default::default()
            };
            for s in p["added"].as_array().into_iter().flatten() {
                if let Ok(server) = serde_json::from_value::<config::Server>(s.clone()) {
                    pool.added.push(server);
                }
            }
            for r in p["removed"].as_array().into_iter().flatten() {
                if let Some(address) = r.as_str() {
                    pool.removed.insert(address.to_owned());
                }
            }
            for s in p["servers"].as_array().into_iter().flatten() {
                let Some(address) = s["address"].as_str() else {
                    continue;
                };
                let change = ServerChange {
                    admin: s["admin"].as_str().and_then(AdminState::from_name),
                    weight: s["weight"].as_u64().and_then(|w| u32::try_from(w).ok()),
                };
                pool.servers.insert(address.to_owned(), change);
            }
            changes.pools.insert(name.to_owned(), pool);
        }
        (changes, dropped)
    }

    /// The change to one server, for status.
    pub fn server(&self, pool: &str, server: &str) -> Option<Value> {
        let change = self.pools.get(pool)?.servers.get(server)?;
        Some(json!({
            "admin": change.admin.map(AdminState::name),
            "weight": change.weight,
        }))
    }

    /// A pool's added and removed servers, for status.
    pub fn pool(&self, pool: &str) -> Option<Value> {
        let changes = self.pools.get(pool)?;
        Some(json!({
            "added": changes.added.iter().map(|s| s.address.clone()).collect::<Vec<_>>(),
            "removed": changes.removed.iter().cloned().collect::<Vec<_>>(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(servers: &str) -> Config {
        serde_yaml::from_str(&format!("pools:\n  app:\n    servers: {servers}\n")).expect("config")
    }

    fn server(address: &str) -> config::Server {
        serde_yaml::from_str(&format!("{{address: '{address}'}}")).expect("server")
    }

    #[test]
    fn added_and_removed_servers_overlay_the_file() {
        let f = file("[{address: '127.0.0.1:1'}, {address: '127.0.0.1:2'}]");
        let mut r = RuntimeChanges::default();
        r.add(&f, "app", server("127.0.0.1:3"));
        r.remove(&f, "app", "127.0.0.1:1");
        let addresses: Vec<String> = r.overlay(&f).pools["app"]
            .servers
            .iter()
            .map(|s| s.address.clone())
            .collect();
        assert_eq!(addresses, ["127.0.0.1:2", "127.0.0.1:3"]);
        // Undoing both leaves no change at all.
        r.remove(&f, "app", "127.0.0.1:3");
        r.add(&f, "app", server("127.0.0.1:1"));
        assert!(r.pool("app").is_none());
    }

    #[test]
    fn changes_survive_a_reload_that_leaves_the_pool_unchanged_only() {
        let f = file("[{address: '127.0.0.1:1'}]");
        let mut r = RuntimeChanges::default();
        r.set_admin(&f, "app", "127.0.0.1:1", AdminState::Drain);
        assert!(r.rebase(&f).is_empty());
        assert!(r.server("app", "127.0.0.1:1").is_some());
        let changed = file("[{address: '127.0.0.1:1', weight: 3}]");
        assert_eq!(r.rebase(&changed), ["app"]);
        assert!(r.server("app", "127.0.0.1:1").is_none());
    }

    #[test]
    fn changes_travel_to_a_new_process_for_the_pools_its_file_leaves_alone() {
        let f = file("[{address: '127.0.0.1:1'}, {address: '127.0.0.1:2'}]");
        let mut r = RuntimeChanges::default();
        r.set_admin(&f, "app", "127.0.0.1:1", AdminState::Drain);
        r.set_weight(&f, "app", "127.0.0.1:2", 7);
        r.add(&f, "app", server("127.0.0.1:3"));
        let exported = r.export();
        let (back, dropped) = RuntimeChanges::import(&exported, &f);
        assert!(dropped.is_empty());
        assert_eq!(back.export(), exported);
        let changed = file("[{address: '127.0.0.1:1'}]");
        let (none, dropped) = RuntimeChanges::import(&exported, &changed);
        assert_eq!(dropped, ["app"]);
        assert!(none.pool("app").is_none());
    }

    #[test]
    fn enable_clears_the_admin_change() {
        let f = file("[{address: '127.0.0.1:1'}]");
        let mut r = RuntimeChanges::default();
        r.set_admin(&f, "app", "127.0.0.1:1", AdminState::Disabled);
        r.set_admin(&f, "app", "127.0.0.1:1", AdminState::Ready);
        assert!(r.pool("app").is_none());
    }
}
