//! `max_per_backend`: how many connections one logical pool keeps open to one backend, idle or
//! in use, across all its users and wire formats, as ProxySQL's `max_connections` counts every
//! connection to a server. Each open connection holds a [`Permit`]; a checkout that finds none
//! free closes another user's idle connection to make room ([`Limit::close_one_idle`]) or waits.
//!
//! A reload changes the size in place ([`Limit::resize`]): growing adds permits at once;
//! shrinking forgets the free ones now and each one given back until the new size holds, so
//! the connections in use never add up to the old and the new limit together.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::ConnPool;

pub struct Limit {
    permits: Arc<Semaphore>,
    /// Permits to forget as they come back: what a shrink could not take from the free ones.
    debt: AtomicUsize,
    size: Mutex<usize>,
    /// Told when a connection goes idle or a permit comes back: a waiting checkout looks again.
    changed: Notify,
    /// Checkouts waiting on `changed` (none: nothing to tell, no lock taken).
    waiting: AtomicUsize,
    /// The pools (one per user and wire format) drawing on this limit.
    pools: Mutex<Vec<Weak<ConnPool>>>,
}

/// Room for one open connection; given back when dropped.
pub struct Permit {
    permit: Option<OwnedSemaphorePermit>,
    limit: Arc<Limit>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            if self.limit.take_debt() {
                permit.forget();
            } else {
                drop(permit);
                self.limit.notify();
            }
        }
    }
}

impl Limit {
    pub fn new(size: usize) -> Arc<Self> {
        Arc::new(Limit {
            permits: Arc::new(Semaphore::new(size)),
            debt: AtomicUsize::new(0),
            size: Mutex::new(size),
            changed: Notify::new(),
            waiting: AtomicUsize::new(0),
            pools: Mutex::new(Vec::new()),
        })
    }

    /// Wakes the waiting checkouts, if any: a connection went idle or a permit came back.
    pub(super) fn notify(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.changed.notify_waiters();
        }
    }

    /// Runs `look` until it finds something, waking when [`Limit::notify`] is called, until
    /// `deadline`; `None` at the deadline. Each look happens after the waiter is registered, so
    /// a notification between two looks is never lost.
    pub(super) async fn wait_for<T>(
        &self,
        deadline: std::time::Instant,
        mut look: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let found = async {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if let Some(found) = look() {
                    return Some(found);
                }
                tokio::time::timeout_at(deadline.into(), changed)
                    .await
                    .ok()?;
            }
        }
        .await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        found
    }

    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        Some(Permit {
            permit: Some(permit),
            limit: self.clone(),
        })
    }

    /// Connections open now (idle and in use), as far as the permits tell.
    pub fn in_use(&self) -> usize {
        let size = self.size.lock().map(|s| *s).unwrap_or(0);
        (size + self.debt.load(Ordering::Acquire)).saturating_sub(self.permits.available_permits())
    }

    /// A new size, from a reload.
    pub fn resize(&self, new: usize) {
        let Ok(mut size) = self.size.lock() else {
            return;
        };
        if new >= *size {
            let mut grow = new - *size;
            // Owed permits are cancelled first: they were never given back.
            let _ = self
                .debt
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |debt| {
                    let paid = debt.min(grow);
                    Some(debt - paid)
                })
                .map(|debt| grow -= debt.min(grow));
            self.permits.add_permits(grow);
            self.notify();
        } else {
            let shrink = *size - new;
            let forgotten = self.permits.forget_permits(shrink);
            self.debt.fetch_add(shrink - forgotten, Ordering::AcqRel);
        }
        *size = new;
    }

    fn take_debt(&self) -> bool {
        self.debt
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1))
            .is_ok()
    }

    pub(super) fn register(&self, pool: &Arc<ConnPool>) {
        if let Ok(mut pools) = self.pools.lock() {
            pools.retain(|p| p.strong_count() > 0);
            pools.push(Arc::downgrade(pool));
        }
    }

    /// Closes the longest-idle connection of another pool drawing on this limit (another user
    /// or wire format), giving its permit back; whether there was one.
    pub(super) fn close_one_idle(&self, except: &ConnPool) -> bool {
        let pools: Vec<Arc<ConnPool>> = match self.pools.lock() {
            Ok(pools) => pools.iter().filter_map(Weak::upgrade).collect(),
            Err(_) => return false,
        };
        pools
            .iter()
            .filter(|p| !std::ptr::eq(Arc::as_ptr(p), except))
            .any(|p| p.close_oldest_idle())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_come_back_when_dropped() {
        let limit = Limit::new(2);
        let a = limit.try_acquire().expect("first");
        let b = limit.try_acquire().expect("second");
        assert!(limit.try_acquire().is_none(), "two at most");
        assert_eq!(limit.in_use(), 2);
        drop(a);
        assert_eq!(limit.in_use(), 1);
        assert!(limit.try_acquire().is_some());
        drop(b);
        assert_eq!(limit.in_use(), 0);
    }

    #[test]
    fn a_smaller_size_holds_once_the_connections_in_use_come_back() {
        let limit = Limit::new(4);
        let held: Vec<Permit> = (0..3)
            .map(|_| limit.try_acquire().expect("permit"))
            .collect();
        limit.resize(1);
        assert!(
            limit.try_acquire().is_none(),
            "three in use, one allowed: nothing new"
        );
        let mut held = held.into_iter();
        drop(held.next());
        drop(held.next());
        assert!(limit.try_acquire().is_none(), "still one in use");
        drop(held.next());
        let one = limit.try_acquire().expect("room for one");
        assert!(limit.try_acquire().is_none(), "and only one");
        drop(one);
        assert_eq!(limit.in_use(), 0);
    }

    #[test]
    fn growing_cancels_what_a_shrink_still_owed() {
        let limit = Limit::new(3);
        let held: Vec<Permit> = (0..3)
            .map(|_| limit.try_acquire().expect("permit"))
            .collect();
        limit.resize(1); // owes 2
        limit.resize(2); // owes 1
        drop(held);
        let a = limit.try_acquire().expect("first of two");
        let b = limit.try_acquire().expect("second of two");
        assert!(limit.try_acquire().is_none(), "two at most");
        limit.resize(5);
        let more: Vec<Permit> = (0..3)
            .map(|_| limit.try_acquire().expect("grown"))
            .collect();
        assert!(limit.try_acquire().is_none(), "five at most");
        drop((a, b, more));
        assert_eq!(limit.in_use(), 0);
    }

    #[tokio::test]
    async fn a_waiting_checkout_wakes_when_a_permit_comes_back_and_gives_up_at_its_deadline() {
        let limit = Limit::new(1);
        let held = limit.try_acquire().expect("permit");
        let soon = std::time::Instant::now() + std::time::Duration::from_millis(50);
        assert!(
            limit.wait_for(soon, || limit.try_acquire()).await.is_none(),
            "nothing came back before the deadline"
        );
        let waiter = {
            let limit = limit.clone();
            tokio::spawn(async move {
                let later = std::time::Instant::now() + std::time::Duration::from_secs(30);
                limit
                    .wait_for(later, || limit.try_acquire())
                    .await
                    .is_some()
            })
        };
        tokio::task::yield_now().await;
        drop(held);
        assert!(
            waiter.await.expect("waiter"),
            "woken by the permit given back"
        );
    }
}
