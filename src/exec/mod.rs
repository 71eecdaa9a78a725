//! Execution: what agents run on, below the agents and the runtime that owns
//! them, so neither imports the other.
//!
//! * [`AgentTask`] / [`AgentAddr`]: an agent with its state type erased, as
//!   the run queue, the bus and the runtime see it.
//! * [`context`]: what an agent needs of its runtime (config, counters, the
//!   run queue, the failure hook, the undelivered list, and an [`Emit`]
//!   object for publishing emitted signals), built by the runtime.
//! * [`reply`]: the reply slot a `call`, `state()` or query waits on.
//! * [`receipt`]: told when every instruction of a delivery has settled
//!   (the NATS bridge acknowledges after the commit through it).
//! * [`claim`]: the one atomic word per agent that decides who runs it.
//! * [`run_queue`]: agents with work, waiting for a worker; a work-stealing
//!   queue per worker plus a global injector.
//! * [`idle`]: how idle workers wait: at most one spins, briefly; the others
//!   sleep (the sleep/wake protocol).
//! * [`timers`]: signals scheduled for later, and deadlines (one queue per
//!   runtime, one firing thread, or a virtual clock in deterministic mode).
//! * [`work`]: async work started by actions, run on the application's
//!   executor, its result sent back as a signal.
//! * [`listener`]: bus subscribers run on the publishing thread (callbacks,
//!   and sinks that may refuse).
//! * [`monitors`]: who watches which agent, each told once when it stops.
//! * [`reserve`]: mailbox slots reserved before an action commits, for
//!   emits that must be delivered or fail the action.
//! * [`space`]: a mailbox's pending count, whose top bit says senders wait
//!   for space; they are woken when a slot frees.
//! * [`counters`]: event counters sharded per thread, so senders and workers
//!   do not bounce one cache line per signal.
//!
//! Nothing here knows what an agent is: the run queue holds [`Runnable`]s.

pub(crate) mod claim;
pub(crate) mod context;
pub(crate) mod counters;
pub(crate) mod idle;
pub(crate) mod listener;
pub(crate) mod monitors;
pub(crate) mod receipt;
pub(crate) mod reply;
pub(crate) mod reserve;
pub(crate) mod run_queue;
pub(crate) mod space;
mod task;
pub(crate) mod timers;
pub(crate) mod work;

pub(crate) use context::{Context, ContextConfig, Emit, Refused};
pub use task::AgentAddr;
pub(crate) use task::AgentTask;

use std::sync::Arc;

/// The synchronization types [`claim`] and [`idle`] use. A module of its
/// own so the model-checking tests (`tests/loom_claim.rs`,
/// `tests/loom_idle.rs`, `tests/loom_space.rs`) can compile those files against loom's.
mod sync {
    pub use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence};
    pub use std::sync::{Condvar, Mutex, MutexGuard};

    /// Nanoseconds on a monotonic clock (the models use a clock that stands
    /// still).
    pub fn now_nanos() -> u64 {
        static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let epoch = *EPOCH.get_or_init(std::time::Instant::now);
        u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

thread_local! {
    /// This thread delivers on the runtime's behalf (a timer firing, async
    /// work's result): a delivery a graceful drain still takes.
    static INTERNAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` as a delivery on the runtime's behalf (see [`is_internal`]).
pub(crate) fn internal<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            let _ = INTERNAL.try_with(|i| i.set(self.0));
        }
    }
    let _reset = Reset(INTERNAL.try_with(|i| i.replace(true)).unwrap_or(false));
    f()
}

/// Whether this thread delivers on the runtime's behalf: a timer firing
/// or async work's result (turns are known to the agent layer).
pub(crate) fn is_internal() -> bool {
    timers::on_timer_thread() || INTERNAL.try_with(std::cell::Cell::get).unwrap_or(false)
}

/// Something a worker can run: an agent with its state type erased.
pub(crate) trait Runnable: Send + Sync + 'static {
    /// A worker (or the deterministic driver) popped this entry: claim the
    /// agent if the entry is current, serve one turn, hand it on.
    fn run_entry(self: Arc<Self>);
}
