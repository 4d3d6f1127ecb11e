//! Where a statement runs: the routing decision ([`crate::router::decide`]) turned into an
//! attached backend connection. Writes wait for a confirmed writer (during a failover or
//! switchover there is none for a moment) and, outside a transaction, try again while the
//! writer cannot be reached; reads take the session's reader while it stays in rotation, else
//! the balancer's pick, skipping readers that cannot be reached; a read whose backend broke
//! before answering may run again ([`Session::may_retry`]).

use std::time::{Duration, Instant};

use tracing::{debug, trace};

use super::command::Routed;
use super::Session;
use crate::classify::Classification;
use crate::protocol::ErrPacket;
use crate::router::{decide, Target};

impl Session {
    /// Picks the backend for `c`, attached and up to date.
    pub async fn route(&mut self, c: &Classification) -> Result<Routed, ErrPacket> {
        let decision = decide(c, &self.view());
        let (index, rule) = match decision.target {
            Target::Writer | Target::All => (self.attach_writer().await?, decision.rule),
            Target::Same(i) => (i, decision.rule),
            Target::Reader => (self.attach_reader().await?, decision.rule),
            Target::CausalReader => self.causal_reader().await?,
        };
        self.attach(index).await?;
        trace!(rule, backend = %self.shared.topology.nodes[index].name, "routed");
        Ok(Routed { index, rule })
    }

    fn writer_or_default(&self) -> Result<usize, ErrPacket> {
        self.router.writer().map(|w| w.index)
    }

    /// The writer, attached. While there is none (a failover or switchover in progress) the
    /// statement waits up to `failover.hold_writes`; outside a transaction a writer that
    /// cannot be reached is retried until then, so that a change of writer shows as latency,
    /// not as an error. Nothing is sent before the writer is confirmed writable.
    async fn attach_writer(&mut self) -> Result<usize, ErrPacket> {
        let started = Instant::now();
        loop {
            let index = self.router.wait_writer().await?.index;
            // Counted first, then checked: a switchover that cleared the writer meanwhile
            // either sees this write and waits for it, or this session sees no writer.
            self.begin_write(index);
            if self.router.writer().map(|w| w.index).ok() != Some(index) {
                self.end_write();
                continue;
            }
            let attached = self.attach(index).await.map(|_| ());
            match attached {
                Ok(_) => return Ok(index),
                Err(err)
                    if self.state.transaction_on.is_some()
                        || started.elapsed() >= self.router.hold_writes() =>
                {
                    self.end_write();
                    return Err(err);
                }
                Err(_) => {
                    // The monitor will take this writer out (or fail over); wait for it.
                    self.end_write();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// A reader: the one the session already holds while it is usable, else the balancer's
    /// pick; one that cannot be reached is skipped for the next.
    pub(super) async fn attach_reader(&mut self) -> Result<usize, ErrPacket> {
        let held = (0..self.backends.len()).find(|&i| {
            self.backends[i].is_some()
                && self.router.is_reader(i)
                && self.shared.topology.nodes[i].can_read()
        });
        let mut tried = Vec::new();
        if let Some(i) = held {
            // Its connection may have broken while idle: then a fresh one, or another reader.
            if self.attach(i).await.is_ok() {
                return Ok(i);
            }
            tried.push(i);
        }
        loop {
            let index = self.router.reader(&tried)?.index;
            match self.attach(index).await {
                Ok(_) => return Ok(index),
                Err(err) if tried.contains(&index) => return Err(err),
                Err(_) => tried.push(index),
            }
        }
    }

    /// A reader that has applied the session's last write, or the writer if none does within
    /// the configured timeout.
    async fn causal_reader(&mut self) -> Result<(usize, &'static str), ErrPacket> {
        let index = self.attach_reader().await?;
        let Some(gtid) = self.state.last_gtid.clone() else {
            return Ok((index, "read_your_writes.causal"));
        };
        let is_writer = self.router.writer().is_ok_and(|w| w.index == index);
        let valid = gtid
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b',');
        let timeout = self
            .router
            .config
            .read_your_writes
            .timeout
            .map(|t| t.get())
            .unwrap_or(Duration::from_secs(1));
        let Some(attached) = self.backends[index].as_mut() else {
            return Ok((index, "read_your_writes.causal"));
        };
        if is_writer || attached.gtid_seen.as_deref() == Some(gtid.as_str()) {
            return Ok((index, "read_your_writes.causal"));
        }
        if valid {
            let sql = format!(
                "SELECT MASTER_GTID_WAIT('{gtid}', {:.3})",
                timeout.as_secs_f64()
            );
            match attached.pooled.conn.query_scalar(sql.as_bytes()).await {
                Ok(Some(v)) if v == b"0" => {
                    attached.gtid_seen = Some(gtid);
                    return Ok((index, "read_your_writes.causal"));
                }
                Ok(_) => {}
                Err(e) => {
                    debug!(error = %e, "causal wait failed");
                    self.detach(index);
                }
            }
        }
        Ok((self.writer_or_default()?, "read_your_writes.causal_timeout"))
    }

    /// A statement whose backend broke before answering may run again: a read routed by the
    /// balancer, outside a transaction, a few times at most.
    pub fn may_retry(&self, c: &Classification, attempts: u32) -> bool {
        const MAX_ATTEMPTS: u32 = 3;
        attempts < MAX_ATTEMPTS
            && self.state.transaction_on.is_none()
            && matches!(
                decide(c, &self.view()).target,
                Target::Reader | Target::CausalReader
            )
    }
}
