//! The pool's queue (HAProxy's `maxqueue` and `timeout queue`): when every server that is
//! up has reached its `max_conns`, a request waits for one of them to finish instead of
//! failing at once, up to `queue.timeout`; at most `queue.max` wait, and a request beyond
//! that, or one that waited too long, is answered 503.
//!
//! Waiters sleep on a `Notify` that each server of the pool pokes when a request on it ends
//! ([`super::InFlight`]'s drop). Without a `queue:` key nothing waits and nothing is poked.
//! Across a reload the new pool keeps the old one's waiters and wake-up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ha_core::balance::Backend;
use tokio::sync::Notify;

use super::admin::AdminState;
use super::{Pool, Server};
use crate::config;

#[derive(Debug)]
pub struct Queue {
    /// `(max, timeout)` when the pool has a queue.
    settings: Option<(usize, Duration)>,
    waiting: Arc<AtomicUsize>,
    released: Arc<Notify>,
}

/// Why no server could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Every server is down, drained or already tried (or full with no queue).
    NoServer,
    /// Every server is full and the queue too.
    QueueFull,
    /// Waited `queue.timeout` without a server becoming free.
    QueueTimeout,
}

impl Queue {
    pub fn new(c: Option<&config::Queue>, previous: Option<&Queue>) -> Self {
        Self {
            settings: c.map(|q| (q.max, q.timeout.get())),
            waiting: previous.map_or_else(Default::default, |p| Arc::clone(&p.waiting)),
            released: previous.map_or_else(Default::default, |p| Arc::clone(&p.released)),
        }
    }

    /// What a server pokes when a request on it ends (only when there is a queue).
    pub fn release_handle(&self) -> Option<Arc<Notify>> {
        self.settings.map(|_| Arc::clone(&self.released))
    }

    /// Requests waiting now.
    pub fn len(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configured bound, if any.
    pub fn max(&self) -> Option<usize> {
        self.settings.map(|(max, _)| max)
    }
}

/// One waiter, counted while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Up, in service, and at its `max_conns`.
fn is_full(server: &Server) -> bool {
    server.admin() == AdminState::Ready && server.is_healthy() && !server.is_available()
}

impl Pool {
    /// [`Pool::pick`], waiting in the queue when every server that is up is full.
    pub async fn acquire(
        &self,
        hash: Option<u64>,
        cookie_server: Option<&str>,
        tried: &[Arc<Server>],
    ) -> Result<Arc<Server>, Unavailable> {
        if let Some(server) = self.pick(hash, cookie_server, tried) {
            return Ok(server);
        }
        let Some((max, timeout)) = self.queue.settings else {
            return Err(Unavailable::NoServer);
        };
        if !self.servers().any(|s| is_full(s)) {
            return Err(Unavailable::NoServer);
        }
        if self.queue.waiting.fetch_add(1, Ordering::Relaxed) >= max {
            self.queue.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(Unavailable::QueueFull);
        }
        let _waiting = Waiting(&self.queue.waiting);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let released = self.queue.released.notified();
            tokio::pin!(released);
            // Registered before looking again, so a release in between is not missed.
            released.as_mut().enable();
            if let Some(server) = self.pick(hash, cookie_server, tried) {
                return Ok(server);
            }
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                return Err(Unavailable::QueueTimeout);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(yaml: &str) -> Arc<Pool> {
        let c: config::Pool = serde_yaml::from_str(yaml).expect("pool yaml");
        Arc::new(Pool::build("p", &c).expect("pool"))
    }

    #[tokio::test]
    async fn a_full_pool_queues_up_to_max_then_refuses_and_a_release_serves_the_queue() {
        let p =
            pool("servers: [{address: '127.0.0.1:1', max_conns: 1}]\nqueue: {max: 1, timeout: 5s}");
        let first = p
            .acquire(None, None, &[])
            .await
            .expect("free server")
            .begin();
        let waiter = {
            let p = Arc::clone(&p);
            tokio::spawn(async move { p.acquire(None, None, &[]).await.map(|s| s.begin()) })
        };
        while p.queue.is_empty() {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            p.acquire(None, None, &[]).await.err(),
            Some(Unavailable::QueueFull)
        );
        drop(first);
        let second = waiter.await.expect("join").expect("served from the queue");
        assert_eq!(p.queue.len(), 0);
        drop(second);
    }

    #[tokio::test]
    async fn a_waiter_gives_up_after_the_queue_timeout() {
        let p = pool(
            "servers: [{address: '127.0.0.1:1', max_conns: 1}]\nqueue: {max: 5, timeout: 100ms}",
        );
        let _busy = p.acquire(None, None, &[]).await.expect("free").begin();
        assert_eq!(
            p.acquire(None, None, &[]).await.err(),
            Some(Unavailable::QueueTimeout)
        );
        assert_eq!(p.queue.len(), 0);
    }

    #[tokio::test]
    async fn without_a_queue_a_full_pool_answers_at_once() {
        let p = pool("servers: [{address: '127.0.0.1:1', max_conns: 1}]");
        let _busy = p.acquire(None, None, &[]).await.expect("free").begin();
        assert_eq!(
            p.acquire(None, None, &[]).await.err(),
            Some(Unavailable::NoServer)
        );
    }
}
