//! What the load drives: agentry, or a baseline built the way its users
//! build one (see `tokio_target.rs`, `crossbeam_target.rs`).
//!
//! Every contender has `agents` receivers holding a `u64` counter, the same
//! operations, and the same rule for a full mailbox: the sender gets the
//! message back, yields, and retries (the retry time counts in the latency).

use crate::record::Stamp;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Counters shared by the sender threads.
#[derive(Default)]
pub struct Counts {
    pub sent: AtomicU64,
    pub retries: AtomicU64,
    pub errors: AtomicU64,
    pub calls: AtomicU64,
    pub queries: AtomicU64,
    pub publishes: AtomicU64,
}

/// The operations of the load, as each contender performs them.
pub trait Target: Sync {
    /// One-way message to `agent`; `fail` routes it to a handler that fails.
    /// Retries while the mailbox is full; returns whether it was accepted.
    fn send(&self, agent: usize, stamp: Stamp, fail: bool, counts: &Counts) -> bool;
    /// Request/reply to `agent`; returns whether a reply came.
    fn call(&self, agent: usize, stamp: Stamp, timeout: Duration) -> bool;
    /// Reads `agent`'s counter; returns whether it got it.
    fn state(&self, agent: usize) -> bool;
    /// Delivers one message to every subscriber of the topic (every tenth
    /// agent); returns the deliveries refused, or `Err` if refused outright.
    fn publish(&self, stamp: Stamp) -> Result<u64, ()>;
}

/// How a run ended, in the contender's own accounting.
pub struct Outcome {
    pub reached_idle: bool,
    pub accepted: u64,
    pub processed: u64,
    pub dead_lettered: u64,
    pub failed_actions: u64,
    /// Route memo (hits, misses), agentry with `fast-path` only.
    pub memo: Option<(u64, u64)>,
}

/// The payload bytes a message carries (the stamp, then zeros).
pub fn payload(stamp: Stamp, len: usize) -> Vec<u8> {
    stamp.payload(len)
}

/// Agents subscribed to the topic: every tenth.
pub fn subscribers(agents: usize) -> impl Iterator<Item = usize> {
    (0..agents).step_by(10)
}

/// Retries `attempt` while it hands the message back as full, yielding
/// between attempts. Returns whether it was accepted.
pub fn retrying<M>(
    mut msg: M,
    counts: &Counts,
    mut attempt: impl FnMut(M) -> Result<(), Refused<M>>,
) -> bool {
    use std::sync::atomic::Ordering::Relaxed;
    loop {
        match attempt(msg) {
            Ok(()) => {
                counts.sent.fetch_add(1, Relaxed);
                return true;
            }
            Err(Refused::Full(back)) => {
                counts.retries.fetch_add(1, Relaxed);
                msg = back;
                std::thread::yield_now();
            }
            Err(Refused::Other) => {
                counts.errors.fetch_add(1, Relaxed);
                return false;
            }
        }
    }
}

/// Why a send attempt did not take the message.
pub enum Refused<M> {
    /// Full: here it is back, try again.
    Full(M),
    /// Refused for good.
    Other,
}
