//! The claim protocol: one atomic word per agent says who may run it.
//!
//! Two bits, so four states:
//!
//! | state                 | meaning                                                        |
//! |-----------------------|----------------------------------------------------------------|
//! | `0` (idle)            | no work announced, nobody runs it                              |
//! | `NOTIFIED`            | work announced; a run-queue entry exists and nobody runs it    |
//! | `RUNNING`             | one thread runs it (a worker, a helping caller, the driver)    |
//! | `RUNNING \| NOTIFIED` | running, and work arrived that the runner may not have seen     |
//!
//! Transitions (every one a single compare-and-swap on the word):
//! * [`notify`](Claim::notify), by whoever just enqueued work (a signal or a
//!   read): idle → `NOTIFIED` (the notifier then pushes a run-queue entry) or
//!   `RUNNING` → `RUNNING | NOTIFIED` (the runner will see it). Already
//!   notified: nothing to do.
//! * [`claim_entry`](Claim::claim_entry), by a worker or the driver that popped a run-queue
//!   entry: `NOTIFIED` → `RUNNING`. Any other state means the entry is stale
//!   (someone else claimed the agent meanwhile and will hand it on): drop it.
//! * [`claim_inline`](Claim::claim_inline), by a caller that wants to run the agent on its own
//!   thread: idle or `NOTIFIED` → `RUNNING`. Taking a `NOTIFIED` agent leaves
//!   its run-queue entry stale, which is harmless (see above).
//! * [`release`](Claim::release), by the runner: to idle when nothing was announced
//!   and nothing is left over, otherwise to `NOTIFIED` (the releaser pushes a
//!   new run-queue entry).
//!
//! Why this is enough: a runner only ever goes idle through a CAS that fails
//! if `NOTIFIED` was set while it ran, so work enqueued before a notify is
//! either seen by the current runner or makes the releaser requeue the agent
//! (no lost wake-up). Only a `NOTIFIED → RUNNING` or `idle → RUNNING` CAS
//! starts a run, so two threads never run one agent (no double run), and no
//! thread ever blocks on an agent that someone else runs: it either claims
//! it or leaves. The mailbox's own lock orders a notifier's enqueue with the
//! runner's drain, which is what lets [`notify`](Claim::notify) return early on a plain
//! load. `tests/loom_claim.rs` model-checks these properties.

use super::sync::{AtomicU8, Ordering};

const RUNNING: u8 = 0b01;
const NOTIFIED: u8 = 0b10;

/// What a notifier must do after [`Claim::notify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notified {
    /// The agent was idle: push one run-queue entry for it.
    Schedule,
    /// A runner or an existing run-queue entry will see the work.
    Covered,
}

/// What a runner must do after [`Claim::release`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Released {
    /// Nothing left: the agent is idle.
    Idle,
    /// Work is waiting: push one run-queue entry for it.
    Requeue,
}

/// The per-agent claim word.
pub struct Claim {
    state: AtomicU8,
}

impl Claim {
    /// A claim on an idle agent.
    pub fn new() -> Self {
        Claim {
            state: AtomicU8::new(0),
        }
    }

    /// Announces work enqueued just before (under the mailbox lock).
    #[inline]
    pub fn notify(&self) -> Notified {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            if cur & NOTIFIED != 0 {
                return Notified::Covered;
            }
            match self.state.compare_exchange_weak(
                cur,
                cur | NOTIFIED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) if cur & RUNNING != 0 => return Notified::Covered,
                Ok(_) => return Notified::Schedule,
                Err(actual) => cur = actual,
            }
        }
    }

    /// A worker (or the driver) popped a run-queue entry: claims the agent if
    /// the entry is current. `false`: the entry is stale, drop it.
    #[inline]
    pub fn claim_entry(&self) -> bool {
        self.state
            .compare_exchange(NOTIFIED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// A caller claims the agent to run it on its own thread, unless someone
    /// runs it already.
    #[inline]
    pub fn claim_inline(&self) -> bool {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            if cur & RUNNING != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                cur,
                RUNNING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The runner lets go. `left_over`: it knows work is still queued (a
    /// batch limit, or work it saw but did not serve).
    #[inline]
    pub fn release(&self, left_over: bool) -> Released {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            debug_assert!(cur & RUNNING != 0, "release without a claim");
            let (next, outcome) = if left_over || cur & NOTIFIED != 0 {
                (NOTIFIED, Released::Requeue)
            } else {
                (0, Released::Idle)
            };
            // `SeqCst`: a thread waiting for the agent to go quiet counts
            // itself, then reads `is_running`; the releaser lets go, then
            // reads that count (a Dekker pair, see `wait_quiet`).
            match self
                .state
                .compare_exchange_weak(cur, next, Ordering::SeqCst, Ordering::Acquire)
            {
                Ok(_) => return outcome,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Clears a `NOTIFIED` seen while running, before the runner looks for
    /// more work itself (so a notify after this look is not lost: it sets the
    /// bit again). Returns whether it was set.
    #[inline]
    pub fn take_notified(&self) -> bool {
        // A stale "not set" only costs a spurious requeue at release.
        self.state.load(Ordering::Relaxed) & NOTIFIED != 0
            && self.state.fetch_and(!NOTIFIED, Ordering::AcqRel) & NOTIFIED != 0
    }

    /// Whether some thread runs the agent right now.
    #[inline]
    pub fn is_running(&self) -> bool {
        self.state.load(Ordering::SeqCst) & RUNNING != 0
    }
}
