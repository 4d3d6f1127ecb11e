//! The configuration files of the stack's daemons, in the agreed shapes: what an operator would
//! write for two load balancers, two application servers with a dbrouterd sidecar each, and the
//! four database servers.

use std::path::Path;

use super::db::NsDatabases;
use super::{ADVERT_INTERVAL, APP_PORT, DBROUTER_PORT, HTTP_PORT, VIP};
use crate::netns::Host;

/// proxyd's configuration on a load balancer: the two app servers, health-checked, GETs retried.
pub fn proxyd_config(run: &Path, apps: &[Host]) -> String {
    let servers: String = apps
        .iter()
        .map(|h| format!("      - {{ address: \"{}:{APP_PORT}\" }}\n", h.ip()))
        .collect();
    format!(
        "workers: 2
control: {{ socket: {run}/proxyd.sock }}
metrics: {{ listen: 127.0.0.1:9101 }}
log: {{ level: info }}
access_log: {{ enabled: true, format: json, path: {run}/../proxyd-access.log }}
listeners:
  - {{ name: web, protocol: http, listen: \"0.0.0.0:{HTTP_PORT}\", pool: app }}
pools:
  app:
    balance: round_robin
    servers:
{servers}    passive_health: {{ max_fails: 1, fail_timeout: 2s, on: [error, timeout] }}
    active_health: {{ kind: http, path: /healthz, expect_status: \"200-299\", interval: 500ms, timeout: 500ms, rise: 2, fall: 3 }}
    retry: {{ tries: 3, timeout: 8s, on: [error, timeout, http_502, http_503, http_504], non_idempotent: false }}
    timeouts: {{ connect: 500ms, read: 6s, send: 6s }}
",
        run = run.display()
    )
}

/// vrrpd's configuration on a load balancer: the VIP, tracking the local proxyd natively (a dead
/// proxyd fails each check at once, its socket refusing; the 100 ms timeout and three failures
/// in a row are for a slow one, so a busy machine never moves the VIP by mistake), and
/// telling it of every transition (`vrrp.transition`, shown in proxyd's status).
///
/// Both load balancers have the same priority, so a master stays master until something fails
/// (an equal priority never preempts): a failed proxyd drops its node to priority 1 and the other
/// node, preempting, takes over at the next advertisement; once repaired, the node waits as backup
/// instead of taking the VIP back (which would be a second, needless move).
pub fn vrrpd_config(run: &Path) -> String {
    format!(
        "control: {{ socket: {run}/vrrpd.sock }}
metrics: {{ listen: 127.0.0.1:9102 }}
log: {{ level: info }}
instances:
  - name: front
    interface: eth0
    vrid: 51
    priority: 100
    advert_interval: {ADVERT_INTERVAL}
    preempt: true
    virtual_addresses: [{VIP}/24]
    track:
      - daemon: {{ name: proxyd, socket: {run}/proxyd.sock, interval: 100ms, timeout: 100ms, fall: 3, rise: 3, weight: -100 }}
    notify: {{ sockets: [{run}/proxyd.sock] }}
",
        run = run.display()
    )
}

/// dbrouterd's configuration on an application server: the four servers, reads to replicas.
pub fn dbrouterd_config(run: &Path, db: &NsDatabases) -> String {
    let role = |name: &str| match name {
        "primary" => "writer",
        "standby" => "standby",
        _ => "replica",
    };
    let backends: String = db
        .nodes
        .iter()
        .map(|n| {
            format!(
                "  - {{ name: {}, address: \"{}\", role: {} }}\n",
                n.backend,
                n.address(),
                role(n.name)
            )
        })
        .collect();
    format!(
        "workers: 2
control: {{ socket: {run}/dbrouterd.sock }}
metrics: {{ listen: 127.0.0.1:9103 }}
log: {{ level: info }}
listeners:
  - {{ name: app, listen: \"127.0.0.1:{DBROUTER_PORT}\", pool: app }}
users:
  - {{ name: app, password: apppw }}
backends:
{backends}monitor: {{ user: monitor, password: monitorpw, interval: 200ms, timeout: 1s, rise: 2, fall: 3, max_replication_lag: 5s }}
pools:
  app: {{ writers: [db1, db2], readers: [db3, db4], balance: round_robin, reads_when_no_reader: writer }}
failover: {{ auto: true, confirm_checks: 3, fence_old_writer: true, replication_user: repl, replication_password: replpw, auto_rejoin: true }}
",
        run = run.display()
    )
}
