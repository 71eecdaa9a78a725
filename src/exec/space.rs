//! A mailbox's count of pending signals, and the senders waiting for
//! space in it (`send_async`, `send_timeout`).
//!
//! A sender that finds a mailbox full registers a waker and then tries
//! again; a turn that takes an instruction out of a mailbox (a slot frees)
//! wakes the mailbox's registered senders. Whether anyone waits is one bit
//! of the mailbox's own count, [`Pending`]: the decrement a turn makes
//! anyway returns it, so a turn with nobody waiting pays nothing at all.
//!
//! No lost wake-up: the sender sets the bit (a read-modify-write of the
//! count) after registering its waker, then retries; the turn's decrement is
//! a read-modify-write of the same count. Such operations on one location
//! are totally ordered and each reads the latest value: either the
//! decrement comes after the bit was set (the turn sees it and wakes the
//! sender), or the bit-setting reads the decremented count (the retry sees
//! the free slot). `tests/loom_space.rs` model-checks this file, and fails
//! when the bit is set with a plain store.

use super::sync::{AtomicUsize, Mutex, Ordering};
use std::collections::HashMap;
use std::task::Waker;

/// The bit of [`Pending`] that says senders wait for space.
const WAITING: usize = 1 << (usize::BITS - 1);

/// Accepted signals not yet started (queued, or in a batch a worker has
/// taken), plus the "senders waiting" bit.
pub(crate) struct Pending(AtomicUsize);

impl Default for Pending {
    fn default() -> Self {
        Pending(AtomicUsize::new(0))
    }
}

impl Pending {
    /// The count.
    #[inline]
    pub fn get(&self, order: Ordering) -> usize {
        self.0.load(order) & !WAITING
    }

    /// Whether senders wait for space.
    #[inline]
    pub fn is_waiting(&self) -> bool {
        self.0.load(Ordering::Acquire) & WAITING != 0
    }

    /// One more accepted signal.
    #[inline]
    pub fn add_one(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` signals left the count (started, or handed back by a close);
    /// returns whether senders wait for space.
    #[inline]
    #[must_use]
    pub fn take(&self, n: usize) -> bool {
        self.0.fetch_sub(n, Ordering::AcqRel) & WAITING != 0
    }
}

/// The runtime's waiting senders, per agent (by the agent's numeric id).
#[derive(Default)]
pub(crate) struct SpaceWaiters {
    wakers: Mutex<HashMap<u64, Vec<Waker>>>,
}

impl SpaceWaiters {
    /// Registers `waker` for `agent`'s mailbox. The caller must try its
    /// send again afterwards: a slot freed before this registration is
    /// seen by that retry, one freed after it wakes `waker`.
    pub fn register(&self, agent: u64, pending: &Pending, waker: &Waker) {
        let mut wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
        wakers.entry(agent).or_default().push(waker.clone());
        pending.0.fetch_or(WAITING, Ordering::AcqRel);
    }

    /// Wakes every sender waiting for `agent`'s mailbox (a slot was freed,
    /// or the mailbox closed) and clears the bit.
    #[cold]
    pub fn wake(&self, agent: u64, pending: &Pending) {
        let wakers = {
            let mut map = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
            pending.0.fetch_and(!WAITING, Ordering::AcqRel);
            map.remove(&agent).unwrap_or_default()
        };
        for w in wakers {
            w.wake();
        }
    }
}
