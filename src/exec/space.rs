//! Senders waiting for mailbox space (`send_async`, `send_timeout`).
//!
//! A sender that finds a mailbox full registers a waker and then tries
//! again; a turn that takes an instruction out of a mailbox (a slot frees)
//! wakes the mailbox's registered senders. Each agent counts its waiting
//! senders in a [`SpaceCount`], so a turn looks at the registry only when
//! someone waits: one fence and one load per instruction otherwise.
//!
//! No lost wake-up: the sender increments the count, then re-reads the
//! queue count; the turn decrements the queue count, then reads the
//! waiter count; a `SeqCst` fence on both sides means at least one of them
//! sees the other's write, so the sender either finds the free slot in its
//! retry or is woken. `tests/loom_space.rs` model-checks this file.

use super::sync::{AtomicUsize, Mutex, Ordering, fence};
use std::collections::HashMap;
use std::task::Waker;

/// One agent's count of senders waiting for space.
#[derive(Default)]
pub(crate) struct SpaceCount(AtomicUsize);

/// The runtime's waiting senders, per agent (by the agent's numeric id).
#[derive(Default)]
pub(crate) struct SpaceWaiters {
    wakers: Mutex<HashMap<u64, Vec<Waker>>>,
}

impl SpaceWaiters {
    /// Registers `waker` for `agent`'s mailbox. The caller must try its
    /// send again afterwards: a slot freed before this registration is
    /// seen by that retry, one freed after it wakes `waker`.
    pub fn register(&self, agent: u64, count: &SpaceCount, waker: &Waker) {
        {
            let mut wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
            wakers.entry(agent).or_default().push(waker.clone());
            count.0.fetch_add(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
    }

    /// After a slot of `agent`'s mailbox was freed (its queue count
    /// decremented) or the mailbox closed: wakes its waiting senders, if any.
    #[inline]
    pub fn freed(&self, agent: u64, count: &SpaceCount) {
        fence(Ordering::SeqCst);
        if count.0.load(Ordering::SeqCst) != 0 {
            self.wake_all(agent, count);
        }
    }

    #[cold]
    fn wake_all(&self, agent: u64, count: &SpaceCount) {
        let wakers = {
            let mut map = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
            let wakers = map.remove(&agent).unwrap_or_default();
            count.0.fetch_sub(wakers.len(), Ordering::SeqCst);
            wakers
        };
        for w in wakers {
            w.wake();
        }
    }
}
