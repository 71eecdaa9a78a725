//! How idle workers wait for work: at most one spins, the others sleep.
//!
//! Why one: on a small machine, every spinning worker is a core the
//! application's own threads (a sender, a network thread) cannot have. Two
//! workers spinning beside one busy sender on two cores meant the kernel
//! time-sliced three runnable threads over two cores, and whichever thread
//! was sliced out (the sender, or the worker that held an agent) stalled
//! for a scheduler slice, milliseconds: that was the p99 of the sustained
//! load (issue 17). So a worker that finds nothing spins only if no other
//! worker is already spinning, and only for [`SPIN_FOR`]; then it sleeps.
//! A sender that finds every worker asleep may run the agent itself
//! (`run_on_sender`, see the agent's admission) instead of paying a wake-up.
//!
//! Sleeping is a Dekker handshake, model-checked in `tests/loom_idle.rs`:
//! a sleeper counts itself in `sleepers` (before it stops counting itself
//! in `searching`), then looks at the queues once more; a pusher pushes and
//! then reads `searching` and `sleepers`. Both sides put a `SeqCst` fence
//! between their write and their read, so at least one of them sees the
//! other: either the sleeper finds the entry, or the pusher wakes it. A push
//! wakes nobody while a worker is searching: that worker finds the entry.

use super::sync::{
    AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex, MutexGuard, Ordering, fence, now_nanos,
};
use std::time::Duration;

/// How long an idle worker spins before it sleeps: about what a wake-up
/// costs on a small VM (15 to 50 µs; spinning about as long as blocking
/// costs loses at most 2x to either choice), and shorter than the gaps of
/// a paced stream of 50,000 signals a second (20 µs), so such a stream
/// does not keep a worker spinning beside its sender. Measured with
/// `loadtest -- sustained` at 5, 10, 20 and 50 µs: 50 kept both cores busy
/// at 50,000/s and put the p99 in milliseconds; 5 to 20 were within the
/// VM's noise of each other.
pub const SPIN_FOR: Duration = Duration::from_micros(10);

/// The workers' idle state: who spins, who sleeps, and the bell.
pub struct Idle {
    workers: usize,
    /// Workers spinning for work (at most one, unless two raced to start).
    searching: AtomicUsize,
    /// When the last search began ([`now_nanos`]): a search older than
    /// twice [`SPIN_FOR`] means the spinner was descheduled mid-spin.
    search_began: AtomicU64,
    /// Workers asleep, or about to sleep (counted before their last look).
    sleepers: AtomicUsize,
    stopping: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

/// What a worker that found no work may do next.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Next {
    /// Spin for work (it counts as searching until [`Idle::end_search`] or
    /// [`Idle::sleep`]).
    Spin,
    /// Another worker spins already: go to sleep.
    Sleep,
}

impl Idle {
    /// The idle state of `workers` worker threads.
    pub fn new(workers: usize) -> Self {
        Idle {
            workers,
            searching: AtomicUsize::new(0),
            search_began: AtomicU64::new(0),
            sleepers: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// A worker found its queues empty: it spins if nobody else does.
    pub fn begin_search(&self) -> Next {
        if self.searching.load(Ordering::SeqCst) > 0 {
            return Next::Sleep;
        }
        self.searching.fetch_add(1, Ordering::SeqCst);
        self.search_began.store(now_nanos(), Ordering::Relaxed);
        Next::Spin
    }

    /// A spinning worker found work (or stops).
    pub fn end_search(&self) {
        self.searching.fetch_sub(1, Ordering::SeqCst);
    }

    /// Sleeps until woken, unless `look` (the worker's last look at the
    /// queues, made after it counts as a sleeper) finds work. `searched`:
    /// whether the worker was spinning (it stops counting as searching
    /// only once it counts as a sleeper). Returns what `look` found; `None`
    /// after a wake-up or when stopping: the caller looks again.
    pub fn sleep<T>(&self, searched: bool, look: impl FnOnce() -> Option<T>) -> Option<T> {
        let guard = self.lock();
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        if searched {
            self.searching.fetch_sub(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if self.is_stopping() {
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        if let Some(found) = look() {
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            return Some(found);
        }
        let guard = self.wait(guard);
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        drop(guard);
        None
    }

    /// After a push: wakes a sleeper if nobody searches, or if the search
    /// has gone on for longer than a spin lasts: then the spinner was
    /// descheduled mid-spin (a busy small machine does that for a scheduler
    /// slice, milliseconds) and would leave the entry waiting that long.
    pub fn pushed(&self) {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) == 0 {
            return;
        }
        let searching = self.searching.load(Ordering::SeqCst);
        let stale = || {
            let began = self.search_began.load(Ordering::Relaxed);
            now_nanos().saturating_sub(began) > 2 * SPIN_FOR.as_nanos() as u64
        };
        if searching == 0 || stale() {
            // A counted sleeper holds the lock until it waits: taking it
            // here means it waits now (or found work). Notify after letting
            // go, so the woken thread does not block again on the lock.
            drop(self.lock());
            self.wake.notify_one();
        }
    }

    /// Whether every worker sleeps (none spins, none runs an agent): a
    /// sender may run the agent itself rather than wake one. A hint: a
    /// worker may wake right after; the claim decides who runs the agent.
    pub fn all_asleep(&self) -> bool {
        self.workers > 0
            && self.searching.load(Ordering::Relaxed) == 0
            && self.sleepers.load(Ordering::Relaxed) == self.workers
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Stops the workers: wakes every sleeper; `is_stopping` holds from now.
    pub fn stop(&self) {
        {
            let _guard = self.lock();
            self.stopping.store(true, Ordering::Release);
        }
        self.wake.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, ()>) -> MutexGuard<'a, ()> {
        self.wake.wait(guard).unwrap_or_else(|p| p.into_inner())
    }
}
