//! Counters for `hactl status` and the metrics endpoint: sessions, backend connections,
//! queries routed per class and backend, errors by kind.
//!
//! The per-query counters are resolved once per backend and class at start, so the hot path
//! increments a counter it already holds instead of looking up label values.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use serde_json::{json, Value};

use crate::topology::Topology;

/// What a routed statement was, for the per-class counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryClass {
    Read,
    Write,
    Transaction,
    Session,
    Other,
}

impl QueryClass {
    pub const ALL: [QueryClass; 5] = [
        QueryClass::Read,
        QueryClass::Write,
        QueryClass::Transaction,
        QueryClass::Session,
        QueryClass::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QueryClass::Read => "read",
            QueryClass::Write => "write",
            QueryClass::Transaction => "transaction",
            QueryClass::Session => "session",
            QueryClass::Other => "other",
        }
    }
}

/// Kinds of errors counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A client sent something that is not valid protocol.
    Protocol,
    /// Login refused.
    Auth,
    /// A backend could not be reached or broke.
    Backend,
    /// No backend could take the statement, or the checkout timed out.
    NoBackend,
    /// A backend answered a statement with an ERR (relayed to the client unchanged).
    Statement,
}

impl ErrorKind {
    const ALL: [ErrorKind; 5] = [
        ErrorKind::Protocol,
        ErrorKind::Auth,
        ErrorKind::Backend,
        ErrorKind::NoBackend,
        ErrorKind::Statement,
    ];

    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Protocol => "protocol",
            ErrorKind::Auth => "auth",
            ErrorKind::Backend => "backend",
            ErrorKind::NoBackend => "no_backend",
            ErrorKind::Statement => "statement",
        }
    }
}

pub struct Stats {
    pub sessions: IntGauge,
    pub sessions_total: IntCounter,
    queries: Vec<Vec<IntCounter>>,
    connections: Vec<IntGauge>,
    errors: Vec<IntCounter>,
    backend_names: Vec<String>,
}

impl Stats {
    pub fn register(registry: &Registry, topology: &Topology) -> Result<Self, prometheus::Error> {
        let sessions = IntGauge::new("dbrouterd_sessions", "Client sessions open")?;
        let sessions_total =
            IntCounter::new("dbrouterd_sessions_total", "Client sessions accepted")?;
        let queries = IntCounterVec::new(
            Opts::new(
                "dbrouterd_queries_total",
                "Statements routed, by class and backend",
            ),
            &["class", "backend"],
        )?;
        let connections = IntGaugeVec::new(
            Opts::new(
                "dbrouterd_backend_connections",
                "Backend connections open (pooled and in use)",
            ),
            &["backend"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new("dbrouterd_errors_total", "Errors, by kind"),
            &["kind"],
        )?;
        registry.register(Box::new(sessions.clone()))?;
        registry.register(Box::new(sessions_total.clone()))?;
        registry.register(Box::new(queries.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        let names: Vec<String> = topology.nodes.iter().map(|n| n.name.clone()).collect();
        Ok(Stats {
            sessions,
            sessions_total,
            queries: names
                .iter()
                .map(|b| {
                    QueryClass::ALL
                        .iter()
                        .map(|c| queries.with_label_values(&[c.as_str(), b]))
                        .collect()
                })
                .collect(),
            connections: names
                .iter()
                .map(|b| connections.with_label_values(&[b]))
                .collect(),
            errors: ErrorKind::ALL
                .iter()
                .map(|k| errors.with_label_values(&[k.as_str()]))
                .collect(),
            backend_names: names,
        })
    }

    pub fn query(&self, backend: usize, class: QueryClass) {
        if let Some(c) = self
            .queries
            .get(backend)
            .and_then(|b| b.get(class as usize))
        {
            c.inc();
        }
    }

    /// Statements routed to backend `index` so far, all classes.
    pub fn backend_queries(&self, index: usize) -> u64 {
        self.queries
            .get(index)
            .map(|b| b.iter().map(IntCounter::get).sum())
            .unwrap_or(0)
    }

    pub fn error(&self, kind: ErrorKind) {
        if let Some(c) = self.errors.get(kind as usize) {
            c.inc();
        }
    }

    pub fn connection_opened(&self, backend: usize, delta: i64) {
        if let Some(g) = self.connections.get(backend) {
            g.add(delta);
        }
    }

    /// The counters as JSON for `status`.
    pub fn snapshot(&self) -> Value {
        let backends: serde_json::Map<String, Value> = self
            .backend_names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let per_class: serde_json::Map<String, Value> = QueryClass::ALL
                    .iter()
                    .map(|c| {
                        (
                            c.as_str().to_string(),
                            json!(self.queries[i][*c as usize].get()),
                        )
                    })
                    .collect();
                (
                    name.clone(),
                    json!({"connections": self.connections[i].get(), "queries": per_class}),
                )
            })
            .collect();
        let errors: serde_json::Map<String, Value> = ErrorKind::ALL
            .iter()
            .map(|k| {
                (
                    k.as_str().to_string(),
                    json!(self.errors[*k as usize].get()),
                )
            })
            .collect();
        json!({
            "sessions": self.sessions.get(),
            "sessions_total": self.sessions_total.get(),
            "backends": backends,
            "errors": errors,
        })
    }
}
