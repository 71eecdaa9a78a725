//! How idle workers wait for work: at most one spins, the others sleep.
//!
//! Why one: on a small machine, every spinning worker is a core the
//! application's own threads (a sender, a network thread) cannot have. Two
//! workers spinning beside one busy sender on two cores meant the kernel
//! time-sliced three runnable threads over two cores, and whichever thread
//! was sliced out (the sender, or the worker that held an agent) stalled
//! for a scheduler slice, milliseconds: that was the p99 of the sustained
//! load (issue 17). So a worker that finds nothing spins only if no other
//! worker is already spinning, and only briefly ([`SPIN_FOR`] by default);
//! then it sleeps.
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

/// How long an idle worker spins before it sleeps, by default: about what
/// a wake-up costs on a small VM (15 to 40 µs measured; spinning about as
/// long as blocking costs loses at most 2x to either choice), and shorter
/// than the gaps of a paced stream of 50,000 signals a second (20 µs), so
/// such a stream does not keep a worker spinning beside its sender. The
/// trade-off, measured on a 2-core VM: at 50 µs, `loadtest -- sustained`
/// kept both cores busy and put its p99 in milliseconds; at 10 µs the
/// `scaling` bench's two workers reach 1.35-1.40x one worker's throughput
/// against 1.46x at 50 µs. `RuntimeBuilder::idle_spin` changes it.
pub const SPIN_FOR: Duration = Duration::from_micros(10);

/// The workers' idle state: who spins, who sleeps, and the bell.
pub struct Idle {
    workers: usize,
    /// How long a worker spins before it sleeps.
    spin_for: Duration,
    /// Workers spinning for work (at most one, unless two raced to start).
    searching: AtomicUsize,
    /// When the last search began ([`now_nanos`]): a search older than
    /// twice the spin means the spinner was descheduled mid-spin.
    search_began: AtomicU64,
    /// Workers asleep, or about to sleep (counted before their last look).
    /// Changed only under `lock`.
    sleepers: AtomicUsize,
    /// Wake-ups sent and not yet taken by a woken sleeper: each one counts
    /// in `searching` for the worker it wakes, so the pushes that follow
    /// do not wake a second worker while the first is still waking up
    /// (tens of microseconds on a VM). Changed only under `lock`.
    notified: AtomicUsize,
    stopping: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

/// How [`Idle::sleep`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Slept<T> {
    /// The last look found work.
    Found(T),
    /// Woken (or a spurious wake-up); `searching`: the wake-up counted the
    /// worker as searching, which it now is (it ends that with
    /// [`Idle::end_search`] or the next [`Idle::sleep`]).
    Woken { searching: bool },
    /// The runtime stops.
    Stopping,
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
    /// The idle state of `workers` worker threads that spin for `spin_for`.
    pub fn new(workers: usize, spin_for: Duration) -> Self {
        Idle {
            workers,
            spin_for,
            searching: AtomicUsize::new(0),
            search_began: AtomicU64::new(0),
            sleepers: AtomicUsize::new(0),
            notified: AtomicUsize::new(0),
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

    /// A searching worker found work (or stops). Returns whether it was the
    /// last searcher: then, if work is still queued, it should
    /// [`wake_for_work`](Self::wake_for_work), because a push made while it
    /// was searching woke nobody (the fence orders this decrement before
    /// the caller's look at the queues, against the pusher's push and its
    /// read of `searching`).
    pub fn end_search(&self) -> bool {
        let last = self.searching.fetch_sub(1, Ordering::SeqCst) == 1;
        fence(Ordering::SeqCst);
        last
    }

    /// Sleeps until woken, unless `look` (the worker's last look at the
    /// queues, made after it counts as a sleeper) finds work. `searched`:
    /// whether the worker was searching (it stops counting as searching
    /// only once it counts as a sleeper).
    pub fn sleep<T>(&self, searched: bool, look: impl FnOnce() -> Option<T>) -> Slept<T> {
        let guard = self.lock();
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        if searched {
            self.searching.fetch_sub(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if self.is_stopping() {
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            return Slept::Stopping;
        }
        if let Some(found) = look() {
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            return Slept::Found(found);
        }
        let guard = self.wait(guard);
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        // Take a wake-up's searching count if one is waiting (a spurious
        // wake-up may take it first; then the notified thread finds none,
        // and either way the count ends with a worker that looks).
        let searching = self.notified.load(Ordering::Relaxed) > 0;
        if searching {
            self.notified.fetch_sub(1, Ordering::Relaxed);
        }
        drop(guard);
        if self.is_stopping() {
            if searching {
                self.end_search();
            }
            return Slept::Stopping;
        }
        Slept::Woken { searching }
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
        if self.searching.load(Ordering::SeqCst) == 0 || self.search_is_stale() {
            self.wake_one();
        }
    }

    /// A searcher that found work and was the last one saw more work
    /// queued: wakes a sleeper for it.
    pub fn wake_for_work(&self) {
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            self.wake_one();
        }
    }

    fn search_is_stale(&self) -> bool {
        let began = self.search_began.load(Ordering::Relaxed);
        now_nanos().saturating_sub(began) > 2 * self.spin_nanos()
    }

    /// Wakes a sleeper that no earlier wake-up is on its way to, counting it
    /// as searching from now. Under the lock every counted sleeper waits
    /// (its last look is made holding the lock), so `sleepers - notified`
    /// sleepers wait for nobody.
    fn wake_one(&self) {
        let guard = self.lock();
        if self.sleepers.load(Ordering::Relaxed) <= self.notified.load(Ordering::Relaxed) {
            return;
        }
        self.notified.fetch_add(1, Ordering::Relaxed);
        self.searching.fetch_add(1, Ordering::SeqCst);
        self.search_began.store(now_nanos(), Ordering::Relaxed);
        // Notify after letting go, so the woken thread does not block
        // again on the lock.
        drop(guard);
        self.wake.notify_one();
    }

    /// Whether every worker sleeps (none spins, none runs an agent): a
    /// sender may run the agent itself rather than wake one. A hint: a
    /// worker may wake right after; the claim decides who runs the agent.
    pub fn all_parked(&self) -> bool {
        self.workers > 0
            && self.searching.load(Ordering::Relaxed) == 0
            && self.sleepers.load(Ordering::Relaxed) == self.workers
    }

    /// How long a worker spins before it sleeps.
    pub fn spin_for(&self) -> Duration {
        self.spin_for
    }

    fn spin_nanos(&self) -> u64 {
        u64::try_from(self.spin_for.as_nanos()).unwrap_or(u64::MAX)
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
