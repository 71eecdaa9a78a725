//! Senders waiting for mailbox space (`send_async`, `send_timeout`).
//!
//! A sender that finds a mailbox full registers a waker and then tries
//! again; a turn that takes an instruction out of a mailbox (a slot frees)
//! wakes the mailbox's registered senders. Each agent counts its waiting
//! senders in a [`SpaceCount`], so a turn looks at the registry only when
//! someone waits: one uncontended read-modify-write per instruction otherwise.
//!
//! No lost wake-up: the sender increments the waiter count (an acquire
//! RMW), then re-reads the queue count in its retry; the turn decrements
//! the queue count, then reads the waiter count with an RMW (`fetch_add(0)`,
//! release). RMWs on one location read the latest value, so either the
//! turn's read comes after the sender's increment (it sees the waiter and
//! wakes it), or the sender's increment reads from the turn's RMW and
//! synchronizes with it (the retry then sees the freed slot). No fence is
//! needed on either side. `tests/loom_space.rs` model-checks this file.

use super::sync::{AtomicUsize, Mutex, Ordering};
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
            count.0.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// After a slot of `agent`'s mailbox was freed (its queue count
    /// decremented) or the mailbox closed: wakes its waiting senders, if any.
    #[inline]
    pub fn freed(&self, agent: u64, count: &SpaceCount) {
        if count.0.fetch_add(0, Ordering::AcqRel) != 0 {
            self.wake_all(agent, count);
        }
    }

    #[cold]
    fn wake_all(&self, agent: u64, count: &SpaceCount) {
        let wakers = {
            let mut map = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
            let wakers = map.remove(&agent).unwrap_or_default();
            count.0.fetch_sub(wakers.len(), Ordering::AcqRel);
            wakers
        };
        for w in wakers {
            w.wake();
        }
    }
}
