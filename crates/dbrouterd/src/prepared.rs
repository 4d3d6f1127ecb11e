//! A session's prepared statements (binary protocol): the ids the client knows, mapped to the
//! ids each backend connection gave when the statement was prepared there.
//!
//! A statement is prepared where it will execute (a reader for a read, the writer for a
//! write) and prepared again, transparently, when an EXECUTE lands on a connection that has
//! not seen it (another reader, the writer inside a transaction). Clients send parameter types
//! only with the first EXECUTE (`new_params_bound_flag`); the last types are kept so that an
//! EXECUTE forwarded to a connection that never got them carries them. Each backend connection
//! holds at most `max_per_connection` statements: past that the least recently used one is
//! closed on that connection (and prepared again if used again), so a backend never reaches
//! `max_prepared_stmt_count`.

use std::collections::HashMap;

use bytes::Bytes;

use crate::classify::Classification;
use crate::protocol::ProtocolError;

/// Default bound on statements per backend connection.
pub const MAX_PER_CONNECTION: usize = 512;

#[derive(Debug, Clone)]
pub struct Statement {
    /// The COM_STMT_PREPARE payload as the client sent it.
    pub prepare: Bytes,
    pub class: Classification,
    pub params: u16,
    /// The parameter types (2 bytes each) of the last EXECUTE that bound them.
    pub param_types: Option<Vec<u8>>,
    /// (backend index, backend statement id, parameter types sent there).
    pub on: Vec<(usize, u32, bool)>,
    last_used: u64,
    /// A cursor is open or long data was sent: the statement stays on this backend.
    pub stuck_to: Option<usize>,
    /// COM_STMT_SEND_LONG_DATA went to `stuck_to` since the last EXECUTE or RESET.
    pub long_data_pending: bool,
    /// Some of that long data never reached a backend, or went with the connection that held
    /// it: the next EXECUTE must fail rather than run without it.
    pub long_data_lost: bool,
}

#[derive(Debug)]
pub struct Prepared {
    next_id: u32,
    tick: u64,
    stmts: HashMap<u32, Statement>,
    pub max_per_connection: usize,
}

impl Default for Prepared {
    fn default() -> Self {
        Prepared {
            next_id: 1,
            tick: 0,
            stmts: HashMap::new(),
            max_per_connection: MAX_PER_CONNECTION,
        }
    }
}

impl Prepared {
    /// Registers a statement prepared on `backend` as `backend_id`; returns the client's id.
    pub fn insert(
        &mut self,
        prepare: Bytes,
        class: Classification,
        params: u16,
        backend: usize,
        backend_id: u32,
    ) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.tick += 1;
        self.stmts.insert(
            id,
            Statement {
                prepare,
                class,
                params,
                param_types: None,
                on: vec![(backend, backend_id, false)],
                last_used: self.tick,
                stuck_to: None,
                long_data_pending: false,
                long_data_lost: false,
            },
        );
        id
    }

    pub fn get(&self, id: u32) -> Option<&Statement> {
        self.stmts.get(&id)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut Statement> {
        self.tick += 1;
        let tick = self.tick;
        let s = self.stmts.get_mut(&id)?;
        s.last_used = tick;
        Some(s)
    }

    pub fn remove(&mut self, id: u32) -> Option<Statement> {
        self.stmts.remove(&id)
    }

    pub fn clear(&mut self) {
        self.stmts.clear();
    }

    /// The backend's id for a statement, and whether its parameter types were sent there.
    pub fn on_backend(&self, id: u32, backend: usize) -> Option<(u32, bool)> {
        let s = self.stmts.get(&id)?;
        s.on.iter()
            .find(|(b, _, _)| *b == backend)
            .map(|(_, bid, sent)| (*bid, *sent))
    }

    pub fn add_backend(&mut self, id: u32, backend: usize, backend_id: u32) {
        if let Some(s) = self.stmts.get_mut(&id) {
            s.on.retain(|(b, _, _)| *b != backend);
            s.on.push((backend, backend_id, false));
        }
    }

    pub fn mark_types_sent(&mut self, id: u32, backend: usize) {
        if let Some(s) = self.stmts.get_mut(&id) {
            for entry in s.on.iter_mut().filter(|(b, _, _)| *b == backend) {
                entry.2 = true;
            }
        }
    }

    /// Forgets everything prepared on a backend connection the session let go of.
    pub fn forget_backend(&mut self, backend: usize) {
        for s in self.stmts.values_mut() {
            s.on.retain(|(b, _, _)| *b != backend);
            if s.stuck_to == Some(backend) {
                s.stuck_to = None;
                s.long_data_lost |= s.long_data_pending;
                s.long_data_pending = false;
            }
        }
    }

    /// Called after a statement was prepared on `backend`: when that made it hold more than
    /// `max_per_connection`, the least recently used statement there (other than `keep`, and
    /// not one whose open cursor or long data holds it there): its backend id, already
    /// forgotten for that backend. Close it there.
    pub fn evict_on(&mut self, backend: usize, keep: u32) -> Option<u32> {
        let on_backend = self
            .stmts
            .values()
            .filter(|s| s.on.iter().any(|(b, _, _)| *b == backend))
            .count();
        if on_backend <= self.max_per_connection {
            return None;
        }
        let (victim, _) = self
            .stmts
            .iter()
            .filter(|(id, s)| {
                **id != keep
                    && s.stuck_to != Some(backend)
                    && s.on.iter().any(|(b, _, _)| *b == backend)
            })
            .min_by_key(|(_, s)| s.last_used)?;
        let victim = *victim;
        let s = self.stmts.get_mut(&victim)?;
        let pos = s.on.iter().position(|(b, _, _)| *b == backend)?;
        let (_, backend_id, _) = s.on.remove(pos);
        Some(backend_id)
    }
}

/// Offsets in a COM_STMT_EXECUTE payload for a statement with `params` parameters: the
/// new-params-bound flag and the start of the types.
fn bound_flag_offset(params: u16) -> usize {
    10 + usize::from(params).div_ceil(8)
}

/// The parameter types an EXECUTE binds, if it binds them.
pub fn bound_types(payload: &[u8], params: u16) -> Option<&[u8]> {
    if params == 0 {
        return None;
    }
    let flag = bound_flag_offset(params);
    if payload.get(flag) != Some(&1) {
        return None;
    }
    payload.get(flag + 1..flag + 1 + 2 * usize::from(params))
}

/// The EXECUTE to send to a backend: the statement id rewritten and, where that backend has
/// not had the parameter types yet and the client did not send them, the cached types put in.
/// Returns the payload and whether it binds types.
pub fn execute_for_backend(
    payload: &[u8],
    params: u16,
    backend_id: u32,
    types_sent: bool,
    cached_types: Option<&[u8]>,
) -> Result<(Vec<u8>, bool), ProtocolError> {
    let mut out = payload.to_vec();
    crate::protocol::prepared::rewrite_stmt_id(&mut out, backend_id)?;
    if params == 0 {
        return Ok((out, false));
    }
    let flag = bound_flag_offset(params);
    match out.get(flag) {
        Some(1) => Ok((out, true)),
        Some(0) if !types_sent => match cached_types {
            Some(types) => {
                let mut with_types = Vec::with_capacity(out.len() + types.len());
                with_types.extend_from_slice(&out[..flag]);
                with_types.push(1);
                with_types.extend_from_slice(types);
                with_types.extend_from_slice(&out[flag + 1..]);
                Ok((with_types, true))
            }
            None => Ok((out, false)),
        },
        Some(_) => Ok((out, false)),
        None => Err(ProtocolError::Truncated {
            what: "COM_STMT_EXECUTE: new params bound flag",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;

    fn execute(id: u32, bound: bool) -> Vec<u8> {
        let mut p = vec![0x17];
        p.extend_from_slice(&id.to_le_bytes());
        p.push(0);
        p.extend_from_slice(&1u32.to_le_bytes());
        p.push(0); // null bitmap for 1 parameter
        p.push(u8::from(bound));
        if bound {
            p.extend_from_slice(&[0x08, 0x00]); // LONGLONG
        }
        p.extend_from_slice(&42u64.to_le_bytes());
        p
    }

    #[test]
    fn types_are_added_for_a_backend_that_never_got_them() {
        let first = execute(1, true);
        assert_eq!(bound_types(&first, 1), Some(&[0x08, 0x00][..]));
        let later = execute(1, false);
        let (out, binds) = execute_for_backend(&later, 1, 77, false, Some(&[0x08, 0x00])).unwrap();
        assert!(binds);
        assert_eq!(out, execute(77, true));
        let (out, binds) = execute_for_backend(&later, 1, 77, true, Some(&[0x08, 0x00])).unwrap();
        assert!(!binds);
        assert_eq!(out, execute(77, false));
    }

    #[test]
    fn the_least_recently_used_statement_is_evicted_per_backend() {
        let mut p = Prepared {
            max_per_connection: 2,
            ..Default::default()
        };
        let c = classify(b"SELECT 1");
        let a = p.insert(Bytes::new(), c, 0, 0, 100);
        let b = p.insert(Bytes::new(), c, 0, 0, 101);
        assert_eq!(p.evict_on(0, b), None, "two fit");
        p.get_mut(a);
        let third = p.insert(Bytes::new(), c, 0, 0, 102);
        assert_eq!(p.evict_on(0, third), Some(101));
        assert_eq!(p.on_backend(b, 0), None);
        assert_eq!(p.on_backend(a, 0), Some((100, false)));
        assert_eq!(p.evict_on(0, third), None);
    }

    #[test]
    fn long_data_on_a_connection_let_go_is_lost() {
        let mut p = Prepared::default();
        let c = classify(b"SELECT ?");
        let id = p.insert(Bytes::new(), c, 1, 3, 100);
        if let Some(s) = p.get_mut(id) {
            s.stuck_to = Some(3);
            s.long_data_pending = true;
        }
        p.forget_backend(2);
        assert!(!p.get(id).is_some_and(|s| s.long_data_lost));
        p.forget_backend(3);
        let s = p.get(id).expect("statement");
        assert!(s.long_data_lost && !s.long_data_pending && s.stuck_to.is_none());
    }

    #[test]
    fn a_statement_held_by_its_cursor_is_not_evicted() {
        let mut p = Prepared {
            max_per_connection: 1,
            ..Default::default()
        };
        let c = classify(b"SELECT 1");
        let cursor = p.insert(Bytes::new(), c, 0, 0, 100);
        if let Some(s) = p.get_mut(cursor) {
            s.stuck_to = Some(0);
        }
        let other = p.insert(Bytes::new(), c, 0, 0, 101);
        assert_eq!(p.evict_on(0, other), None);
        assert_eq!(p.on_backend(cursor, 0), Some((100, false)));
    }
}
