//! Prepared statement commands (binary protocol): PREPARE where the statement will run,
//! EXECUTE routed by the statement's class (prepared again on a connection that has not seen
//! it), SEND_LONG_DATA, RESET, CLOSE and cursor FETCH kept on the statement's connection.
//! The bookkeeping (id mapping, cached parameter types, LRU) is in [`crate::prepared`].

use bytes::Bytes;
use tracing::debug;

use super::command::Routed;
use super::{Disconnect, Forwarded, Session};
use crate::classify::classify_with;
use crate::prepared::{bound_types, execute_for_backend};
use crate::protocol::packet::encode_packet;
use crate::protocol::prepared::{
    encode_stmt_close, prepare_text, rewrite_stmt_id, statement_id, StmtExecuteHeader,
    StmtPrepareOk,
};
use crate::protocol::response::ResponseKind;
use crate::protocol::ErrPacket;

/// ER_UNKNOWN_STMT_HANDLER.
fn unknown_statement(id: u32, command: &str) -> ErrPacket {
    ErrPacket::new(
        1243,
        b"HY000",
        format!("Unknown prepared statement handler ({id}) given to {command}"),
    )
}

/// Long data sent for the statement did not all reach the backend that would run it.
fn long_data_lost(id: u32) -> ErrPacket {
    ErrPacket::new(
        crate::protocol::err::codes::LOST_CONNECTION,
        b"HY000",
        format!(
            "Long data for prepared statement ({id}) was lost with its backend connection; \
             send it again"
        ),
    )
}

impl Session {
    pub(super) async fn stmt_prepare(&mut self, payload: Bytes) -> Result<(), Disconnect> {
        let text = match prepare_text(&payload) {
            Ok(t) => t,
            Err(e) => {
                self.client
                    .send_err(&ErrPacket::from_protocol_error(&e))
                    .await?;
                return Ok(());
            }
        };
        let c = classify_with(text, self.state.dialect());
        let routed = match self.route(&c).await {
            Ok(r) => r,
            Err(err) => {
                self.client.send_err(&err).await?;
                return Ok(());
            }
        };
        let Some(attached) = self.backends[routed.index].as_mut() else {
            return Ok(());
        };
        let conn = &mut attached.pooled.conn;
        let packets = match conn.send_command(&payload).await {
            Ok(()) => conn.read_prepare_response().await,
            Err(e) => Err(e),
        };
        let mut packets = match packets {
            Ok(p) => p,
            Err(e) => {
                self.detach(routed.index);
                self.client
                    .send_err(&ErrPacket::lost_connection(&e.to_string()))
                    .await?;
                return Ok(());
            }
        };
        if let Some(ok) = packets
            .first()
            .and_then(|p| StmtPrepareOk::parse(&p.payload).ok())
        {
            let id = self.stmts.insert(
                payload.clone(),
                c,
                ok.num_params,
                routed.index,
                ok.statement_id,
            );
            self.evict(routed.index, id).await;
            let mut first = packets[0].payload.to_vec();
            if let Some(field) = first.get_mut(1..5) {
                field.copy_from_slice(&id.to_le_bytes());
            }
            packets[0].payload = Bytes::from(first);
        }
        let mut out = Vec::new();
        for p in &packets {
            encode_packet(&p.payload, p.sequence_id, &mut out);
        }
        self.client.send_framed(&out).await?;
        Ok(())
    }

    /// Closes the least recently used statement on `index` when it holds too many.
    async fn evict(&mut self, index: usize, keep: u32) {
        if let Some(backend_id) = self.stmts.evict_on(index, keep) {
            if let Some(a) = self.backends[index].as_mut() {
                let mut close = Vec::with_capacity(5);
                encode_stmt_close(backend_id, &mut close);
                if a.pooled.conn.send_command(&close).await.is_err() {
                    self.detach(index);
                }
            }
        }
    }

    /// Makes sure statement `id` is prepared on backend `index` (attached); returns its
    /// backend id and whether the parameter types were sent there.
    async fn ensure_prepared(&mut self, id: u32, index: usize) -> Result<(u32, bool), ErrPacket> {
        if let Some(found) = self.stmts.on_backend(id, index) {
            return Ok(found);
        }
        let prepare = self
            .stmts
            .get(id)
            .map(|s| s.prepare.clone())
            .ok_or_else(|| unknown_statement(id, "mysqld_stmt_execute"))?;
        let attached = self.backends[index]
            .as_mut()
            .ok_or_else(|| ErrPacket::lost_connection("detached"))?;
        let conn = &mut attached.pooled.conn;
        let packets = match conn.send_command(&prepare).await {
            Ok(()) => conn.read_prepare_response().await,
            Err(e) => Err(e),
        };
        let first = match packets {
            Ok(p) => p.into_iter().next(),
            Err(e) => {
                self.detach(index);
                return Err(ErrPacket::lost_connection(&e.to_string()));
            }
        };
        let first = first.ok_or_else(|| ErrPacket::lost_connection("empty prepare response"))?;
        match StmtPrepareOk::parse(&first.payload) {
            Ok(ok) => {
                debug!(
                    statement = id,
                    backend = index,
                    "prepared again on another connection"
                );
                self.stmts.add_backend(id, index, ok.statement_id);
                self.evict(index, id).await;
                Ok((ok.statement_id, false))
            }
            Err(_) => Err(ErrPacket::parse(&first.payload)
                .unwrap_or_else(|e| ErrPacket::from_protocol_error(&e))),
        }
    }

    /// Where statement `id` runs now (outside a transaction elsewhere): where its long data
    /// went; where its last cursor was opened while that backend still takes reads (a drained
    /// or failed one is left, the abandoned cursor closing with the statement or the
    /// connection); else routed by its class.
    async fn route_statement(&mut self, id: u32, command: &str) -> Result<Routed, ErrPacket> {
        let stmt = self
            .stmts
            .get(id)
            .ok_or_else(|| unknown_statement(id, command))?;
        let (class, stuck, long_data) = (stmt.class, stmt.stuck_to, stmt.long_data_pending);
        let nodes = &self.shared.topology.nodes;
        let holds = |index: usize| long_data || nodes.get(index).is_some_and(|n| n.can_read());
        if let Some(index) = stuck.filter(|&i| self.state.transaction_on.is_none() && holds(i)) {
            self.attach(index).await?;
            return Ok(Routed {
                index,
                rule: "prepared.same_connection",
            });
        }
        self.route(&class).await
    }

    pub(super) async fn stmt_execute(&mut self, payload: &[u8]) -> Result<(), Disconnect> {
        let (id, header) = match (statement_id(payload), StmtExecuteHeader::parse(payload)) {
            (Ok(id), Ok(h)) => (id, h),
            (Err(e), _) | (_, Err(e)) => {
                self.client
                    .send_err(&ErrPacket::from_protocol_error(&e))
                    .await?;
                return Ok(());
            }
        };
        if let Some(stmt) = self.stmts.get_mut(id) {
            if let Some(types) = bound_types(payload, stmt.params) {
                stmt.param_types = Some(types.to_vec());
            }
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            let class = match self.stmts.get(id) {
                Some(stmt) => stmt.class,
                None => {
                    self.client
                        .send_err(&unknown_statement(id, "mysqld_stmt_execute"))
                        .await?;
                    return Ok(());
                }
            };
            let prepared = match self.route_statement(id, "mysqld_stmt_execute").await {
                Ok(routed) => self
                    .ensure_prepared(id, routed.index)
                    .await
                    .map(|found| (routed, found)),
                Err(e) => Err(e),
            };
            let (routed, (backend_id, types_sent)) = match prepared {
                Ok(x) => x,
                Err(err)
                    if err.code == crate::protocol::err::codes::LOST_CONNECTION
                        && self.may_retry(&class, attempts) =>
                {
                    continue
                }
                Err(err) => {
                    self.client.send_err(&err).await?;
                    return Ok(());
                }
            };
            let Some(stmt) = self.stmts.get(id) else {
                return Ok(());
            };
            if stmt.long_data_lost {
                self.drop_long_data(id).await;
                self.client.send_err(&long_data_lost(id)).await?;
                return Ok(());
            }
            let params = stmt.params;
            let out = execute_for_backend(
                payload,
                params,
                backend_id,
                types_sent,
                stmt.param_types.as_deref(),
            );
            let (out, binds) = match out {
                Ok(x) => x,
                Err(e) => {
                    self.client
                        .send_err(&ErrPacket::from_protocol_error(&e))
                        .await?;
                    return Ok(());
                }
            };
            let kind = if header.opens_cursor() {
                ResponseKind::Cursor
            } else {
                ResponseKind::Query
            };
            let summary = match self.try_forward(routed.index, &out, kind).await? {
                Some(Forwarded::Answered(summary)) => Some(summary),
                Some(Forwarded::Lost {
                    backend,
                    in_transaction,
                }) => {
                    if !in_transaction && self.may_retry(&class, attempts) {
                        continue;
                    }
                    self.send_lost(&backend, in_transaction).await?;
                    None
                }
                None => None,
            };
            if binds {
                self.stmts.mark_types_sent(id, routed.index);
            }
            if let Some(stmt) = self.stmts.get_mut(id) {
                stmt.stuck_to = header.opens_cursor().then_some(routed.index);
                stmt.long_data_pending = false;
            }
            if let Some(summary) = summary {
                self.after(&routed, &class, &summary);
                self.fetch_gtid(routed.index).await;
            }
            return Ok(());
        }
    }

    /// COM_STMT_SEND_LONG_DATA has no answer: data that cannot reach the statement's backend
    /// is remembered as lost, and the next EXECUTE fails instead of running without it.
    pub(super) async fn stmt_send_long_data(&mut self, payload: &[u8]) -> Result<(), Disconnect> {
        let Ok(id) = statement_id(payload) else {
            return Ok(());
        };
        if !self.send_long_data(id, payload).await {
            if let Some(stmt) = self.stmts.get_mut(id) {
                stmt.long_data_lost = true;
            }
        }
        Ok(())
    }

    /// Sends long data where statement `id` runs (and keeps it there); whether it went out.
    async fn send_long_data(&mut self, id: u32, payload: &[u8]) -> bool {
        let Ok(routed) = self.route_statement(id, "mysqld_stmt_send_long_data").await else {
            return false;
        };
        let Ok((backend_id, _)) = self.ensure_prepared(id, routed.index).await else {
            return false;
        };
        let mut out = payload.to_vec();
        if rewrite_stmt_id(&mut out, backend_id).is_err() {
            return false;
        }
        let Some(a) = self.backends[routed.index].as_mut() else {
            return false;
        };
        if a.pooled.conn.send_command(&out).await.is_err() {
            self.detach(routed.index);
            return false;
        }
        if let Some(stmt) = self.stmts.get_mut(id) {
            stmt.stuck_to = Some(routed.index);
            stmt.long_data_pending = true;
        }
        true
    }

    /// Starts statement `id`'s long data afresh after some was lost: the statement is closed
    /// where the rest may be (and prepared again there when next used).
    async fn drop_long_data(&mut self, id: u32) {
        let Some(stmt) = self.stmts.get_mut(id) else {
            return;
        };
        stmt.long_data_lost = false;
        stmt.long_data_pending = false;
        let Some(index) = stmt.stuck_to.take() else {
            return;
        };
        let Some(pos) = stmt.on.iter().position(|(b, _, _)| *b == index) else {
            return;
        };
        let (_, backend_id, _) = stmt.on.remove(pos);
        if let Some(a) = self.backends[index].as_mut() {
            let mut close = Vec::with_capacity(5);
            encode_stmt_close(backend_id, &mut close);
            if a.pooled.conn.send_command(&close).await.is_err() {
                self.detach(index);
            }
        }
    }

    /// COM_STMT_CLOSE has no answer: close it on every backend connection that has it.
    pub(super) async fn stmt_close(&mut self, payload: &[u8]) {
        let Ok(id) = statement_id(payload) else {
            return;
        };
        let Some(stmt) = self.stmts.remove(id) else {
            return;
        };
        for (index, backend_id, _) in stmt.on {
            if let Some(a) = self.backends.get_mut(index).and_then(Option::as_mut) {
                let mut close = Vec::with_capacity(5);
                encode_stmt_close(backend_id, &mut close);
                if a.pooled.conn.send_command(&close).await.is_err() {
                    self.detach(index);
                }
            }
        }
    }

    pub(super) async fn stmt_reset(&mut self, payload: &[u8]) -> Result<(), Disconnect> {
        self.on_own_backend(payload, "mysqld_stmt_reset", ResponseKind::Single)
            .await?;
        if let Some(stmt) = statement_id(payload)
            .ok()
            .and_then(|id| self.stmts.get_mut(id))
        {
            stmt.stuck_to = None;
            stmt.long_data_pending = false;
            stmt.long_data_lost = false;
        }
        Ok(())
    }

    pub(super) async fn stmt_fetch(&mut self, payload: &[u8]) -> Result<(), Disconnect> {
        self.on_own_backend(payload, "mysqld_stmt_fetch", ResponseKind::Fetch)
            .await
    }

    /// Forwards a statement command to the connection the statement is held on.
    async fn on_own_backend(
        &mut self,
        payload: &[u8],
        command: &str,
        kind: ResponseKind,
    ) -> Result<(), Disconnect> {
        let id = match statement_id(payload) {
            Ok(id) => id,
            Err(e) => {
                self.client
                    .send_err(&ErrPacket::from_protocol_error(&e))
                    .await?;
                return Ok(());
            }
        };
        let Some(stmt) = self.stmts.get(id) else {
            self.client
                .send_err(&unknown_statement(id, command))
                .await?;
            return Ok(());
        };
        let target = stmt.stuck_to.or_else(|| {
            stmt.on
                .iter()
                .map(|(b, _, _)| *b)
                .find(|b| self.backends[*b].is_some())
        });
        let Some(index) = target else {
            if kind == ResponseKind::Single {
                self.client.send_ok(self.state.status).await?;
            } else {
                self.client
                    .send_err(&unknown_statement(id, command))
                    .await?;
            }
            return Ok(());
        };
        let Some((backend_id, _)) = self.stmts.on_backend(id, index) else {
            self.client
                .send_err(&unknown_statement(id, command))
                .await?;
            return Ok(());
        };
        let mut out = payload.to_vec();
        if rewrite_stmt_id(&mut out, backend_id).is_err() {
            return Ok(());
        }
        self.forward(index, &out, kind).await?;
        Ok(())
    }
}
