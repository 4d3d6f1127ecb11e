//! Forwarding a command to a backend connection and relaying its answer to the client, and
//! what happens when the connection breaks: before any byte reached the client the caller
//! decides (a read may run elsewhere, anything else is reported as lost, inside a transaction
//! as a lost transaction); after, the client connection must close. Also the per-backend counts
//! of open transactions and writes in flight that a switchover waits on.

use std::sync::atomic::Ordering;

use tracing::warn;

use super::{Disconnect, Forwarded, Session};
use crate::pool::RelayError;
use crate::protocol::response::{ResponseKind, Summary};
use crate::protocol::ErrPacket;
use crate::stats::ErrorKind;

impl Session {
    /// Sends `payload` on backend `index` (attached) and relays the response to the client.
    /// A backend error before any byte reached the client is reported to it as an ERR; after
    /// that the client connection must close.
    pub async fn forward(
        &mut self,
        index: usize,
        payload: &[u8],
        kind: ResponseKind,
    ) -> Result<Option<Summary>, Disconnect> {
        match self.try_forward(index, payload, kind).await? {
            Some(Forwarded::Answered(summary)) => Ok(Some(summary)),
            Some(Forwarded::Lost {
                backend,
                in_transaction,
            }) => {
                self.send_lost(&backend, in_transaction).await?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Tells the client its statement was lost with the backend connection.
    pub async fn send_lost(
        &mut self,
        backend: &str,
        in_transaction: bool,
    ) -> Result<(), Disconnect> {
        let err = if in_transaction {
            ErrPacket::transaction_lost(backend)
        } else {
            ErrPacket::lost_connection(backend)
        };
        self.client.send_err(&err).await?;
        Ok(())
    }

    /// Like [`Session::forward`], but a connection lost before any byte reached the client is
    /// handed back to the caller (which may retry a read elsewhere) instead of reported.
    pub async fn try_forward(
        &mut self,
        index: usize,
        payload: &[u8],
        kind: ResponseKind,
    ) -> Result<Option<Forwarded>, Disconnect> {
        let Some(attached) = self.backends[index].as_mut() else {
            return Ok(None);
        };
        let conn = &mut attached.pooled.conn;
        let sent = conn.send_command(payload).await;
        let result = match sent {
            Ok(()) => conn.relay(kind, &mut self.client).await,
            Err(e) => Err(RelayError::Backend(e)),
        };
        match result {
            Ok(summary) => {
                if summary.error.is_some() {
                    self.shared.stats.error(ErrorKind::Statement);
                }
                Ok(Some(Forwarded::Answered(summary)))
            }
            Err(RelayError::Client(_)) => Err(Disconnect),
            Err(RelayError::Backend(e)) => {
                self.shared.stats.error(ErrorKind::Backend);
                let node = self.shared.topology.nodes[index].clone();
                warn!(backend = %node.name, error = %e, "backend connection lost");
                node.record_connect(false);
                let in_transaction = self.state.transaction_on == Some(index);
                self.detach(index);
                if self.client.relayed > 0 {
                    return Err(Disconnect);
                }
                Ok(Some(Forwarded::Lost {
                    backend: node.name.clone(),
                    in_transaction,
                }))
            }
        }
    }

    /// Keeps the backends' open-transaction counts (which a switchover waits on) in step
    /// with where this session has a transaction open.
    pub fn count_transaction(&mut self) {
        let now = self.state.transaction_on;
        if now == self.counted_transaction {
            return;
        }
        let nodes = &self.shared.topology.nodes;
        if let Some(n) = self.counted_transaction.and_then(|i| nodes.get(i)) {
            n.open_transactions.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(n) = now.and_then(|i| nodes.get(i)) {
            n.open_transactions.fetch_add(1, Ordering::Relaxed);
        }
        self.counted_transaction = now;
    }

    /// Counts this session's statement as a write in flight on the writer `index`.
    pub fn begin_write(&mut self, index: usize) {
        if self.writing == Some(index) {
            return;
        }
        self.end_write();
        if let Some(n) = self.shared.topology.nodes.get(index) {
            n.writes_in_flight.fetch_add(1, Ordering::SeqCst);
            self.writing = Some(index);
        }
    }

    /// The statement counted by [`Session::begin_write`] is over.
    pub fn end_write(&mut self) {
        if let Some(n) = self
            .writing
            .take()
            .and_then(|i| self.shared.topology.nodes.get(i))
        {
            n.writes_in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
