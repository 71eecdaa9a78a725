//! The run queue: agents with work, waiting for a worker (or for the
//! deterministic driver).
//!
//! Work stealing, as in tokio's and rayon's schedulers (built from
//! `crossbeam-deque`): each worker owns a FIFO deque; an agent scheduled from
//! a worker thread (a signal an action sent, a requeue after a turn) goes to
//! that worker's deque, one scheduled from any other thread to the global
//! queue. An idle worker takes from its own deque, then from the global
//! queue, then steals from the others. No lock is taken on the way.
//!
//! The global queue is a preallocated lock-free ring (`crossbeam`'s
//! `ArrayQueue`) with a locked overflow list for bursts beyond it: unlike
//! `crossbeam-deque`'s `Injector`, which allocates a block per 63 entries,
//! a warm ring allocates nothing, so a warm runtime dispatches without
//! touching the allocator. Entries go to the overflow list only while it
//! is not empty, so the global queue stays first-in first-out.
//!
//! Idle workers wait as [`idle`](super::idle) says: at most one spins, for
//! a short while, the others sleep; a push wakes a sleeper only when nobody
//! spins.

use super::Runnable;
use super::idle::{Idle, Next, Slept};
use crossbeam::deque::{Steal, Stealer, Worker};
use crossbeam::queue::ArrayQueue;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Entries the global ring holds before the overflow list takes the rest.
const RING: usize = 1024;

/// One run-queue entry.
pub(crate) type Entry = Arc<dyn Runnable>;

static NEXT_QUEUE: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// The deque of the worker running on this thread: (queue id, deque).
    static LOCAL: RefCell<Option<(usize, Worker<Entry>)>> = const { RefCell::new(None) };
}

pub(crate) struct RunQueue {
    id: usize,
    /// No workers: one thread drives, so the overflow list is the whole
    /// queue (a lock nobody contends, no fence, nobody to wake).
    deterministic: bool,
    ring: ArrayQueue<Entry>,
    overflow: Mutex<VecDeque<Entry>>,
    overflowed: AtomicBool,
    stealers: Vec<Stealer<Entry>>,
    idle: Idle,
}

/// How a spin ended.
enum Spin {
    Found(Entry),
    Stopping,
    Nothing,
}

/// The part of the run queue a worker thread owns.
pub(crate) struct WorkerQueue {
    index: usize,
    deque: Worker<Entry>,
}

impl RunQueue {
    /// A run queue for `workers` worker threads (0: deterministic, only the
    /// injector) and the deques those workers will own.
    pub fn new(workers: usize, idle_spin: std::time::Duration) -> (RunQueue, Vec<WorkerQueue>) {
        let deques: Vec<Worker<Entry>> = (0..workers).map(|_| Worker::new_fifo()).collect();
        let stealers = deques.iter().map(Worker::stealer).collect();
        let queue = RunQueue {
            id: NEXT_QUEUE.fetch_add(1, Ordering::Relaxed),
            deterministic: workers == 0,
            ring: ArrayQueue::new(if workers == 0 { 1 } else { RING }),
            overflow: Mutex::new(VecDeque::new()),
            overflowed: AtomicBool::new(false),
            stealers,
            idle: Idle::new(workers, idle_spin),
        };
        let owned = deques
            .into_iter()
            .enumerate()
            .map(|(index, deque)| WorkerQueue { index, deque })
            .collect();
        (queue, owned)
    }

    /// Enqueues an agent that has work.
    pub fn push(&self, entry: Entry) {
        if self.idle.is_stopping() {
            return;
        }
        if self.deterministic {
            self.lock_overflow().push_back(entry);
            return;
        }
        let entry = LOCAL
            .try_with(|local| match &*local.borrow() {
                Some((id, deque)) if *id == self.id => {
                    deque.push(entry);
                    None
                }
                _ => Some(entry),
            })
            .unwrap_or_else(|_| None);
        if let Some(entry) = entry {
            self.push_global(entry);
        }
        // Wake a sleeper only if no worker is searching: a searching worker
        // finds the entry itself, and a wake-up is a syscall for the pusher
        // and tens of microseconds for the woken thread.
        self.idle.pushed();
    }

    /// Whether every worker sleeps (a hint; see [`Idle::all_parked`]).
    #[inline]
    pub fn all_parked(&self) -> bool {
        !self.deterministic && self.idle.all_parked()
    }

    fn lock_overflow(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.overflow.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push_global(&self, entry: Entry) {
        let entry = if self.overflowed.load(Ordering::Acquire) {
            entry
        } else {
            match self.ring.push(entry) {
                Ok(()) => return,
                Err(entry) => entry,
            }
        };
        let mut overflow = self.lock_overflow();
        overflow.push_back(entry);
        self.overflowed.store(true, Ordering::Release);
    }

    /// Whether no entry waits anywhere (a hint while workers run; exact in
    /// deterministic mode, where only the driving thread touches it).
    pub fn is_empty(&self) -> bool {
        if self.deterministic {
            return self.lock_overflow().is_empty();
        }
        !self.has_queued_work()
    }

    /// Takes the next entry of the global queue, if any (also the
    /// deterministic driver's queue).
    pub fn pop(&self) -> Option<Entry> {
        if self.deterministic {
            return self.lock_overflow().pop_front();
        }
        if let Some(e) = self.ring.pop() {
            return Some(e);
        }
        if !self.overflowed.load(Ordering::Acquire) {
            return None;
        }
        let mut overflow = self.lock_overflow();
        let e = overflow.pop_front();
        if overflow.is_empty() {
            self.overflowed.store(false, Ordering::Release);
        }
        // Another thread emptied the list meanwhile: look at the ring again.
        e.or_else(|| self.ring.pop())
    }

    /// Runs on a worker thread: installs its deque for [`push`](Self::push)
    /// and returns entries until the queue stops.
    pub fn work(&self, mine: WorkerQueue, mut run: impl FnMut(Entry)) {
        let index = mine.index;
        let _ = LOCAL.try_with(|l| *l.borrow_mut() = Some((self.id, mine.deque)));
        while let Some(entry) = self.next_for_worker(index) {
            run(entry);
        }
        // The deque's remaining entries are drained by `stop` via the stealers.
        let _ = LOCAL.try_with(|l| l.borrow_mut().take());
    }

    fn find(&self, index: usize) -> Option<Entry> {
        LOCAL
            .try_with(|l| {
                let l = l.borrow();
                let (_, deque) = l.as_ref()?;
                deque
                    .pop()
                    .or_else(|| self.pop())
                    .or_else(|| self.steal(index, deque))
            })
            .ok()
            .flatten()
    }

    /// Takes half of another worker's deque (one to run now, the rest into
    /// this worker's deque), so a worker that ran dry catches up at once.
    fn steal(&self, index: usize, deque: &Worker<Entry>) -> Option<Entry> {
        let n = self.stealers.len();
        for k in 1..n {
            let victim = &self.stealers[(index + k) % n];
            loop {
                match victim.steal_batch_and_pop(deque) {
                    Steal::Success(e) => return Some(e),
                    Steal::Empty => break,
                    Steal::Retry => {}
                }
            }
        }
        None
    }

    fn next_for_worker(&self, index: usize) -> Option<Entry> {
        // Whether this worker counts as searching: it began a search, or a
        // wake-up counted it so.
        let mut searching = false;
        loop {
            if self.idle.is_stopping() {
                if searching {
                    self.idle.end_search();
                }
                return None;
            }
            if let Some(e) = self.find(index) {
                if searching {
                    self.found_while_searching();
                }
                return Some(e);
            }
            if !searching {
                searching = self.idle.begin_search() == Next::Spin;
            }
            if searching {
                match self.spin(index) {
                    Spin::Found(e) => {
                        self.found_while_searching();
                        return Some(e);
                    }
                    Spin::Stopping => {
                        self.idle.end_search();
                        return None;
                    }
                    Spin::Nothing => {}
                }
            }
            match self.idle.sleep(searching, || self.find(index)) {
                Slept::Found(e) => return Some(e),
                Slept::Woken { searching: s } => searching = s,
                Slept::Stopping => return None,
            }
        }
    }

    /// A searching worker found an entry: it stops searching, and if it was
    /// the last searcher and more work is queued, wakes a sleeper for it (a
    /// push during the search woke nobody).
    fn found_while_searching(&self) {
        if self.idle.end_search() && self.has_queued_work() {
            self.idle.wake_for_work();
        }
    }

    /// Whether any queue holds an entry (a hint: racy, never blocking).
    fn has_queued_work(&self) -> bool {
        !self.ring.is_empty()
            || self.overflowed.load(Ordering::Acquire)
            || self.stealers.iter().any(|s| !s.is_empty())
    }

    /// Looks for work for up to the idle spin (the clock is read every 64
    /// looks; a look is a few atomic loads).
    fn spin(&self, index: usize) -> Spin {
        let started = Instant::now();
        loop {
            for _ in 0..64 {
                if self.idle.is_stopping() {
                    return Spin::Stopping;
                }
                if let Some(e) = self.find(index) {
                    return Spin::Found(e);
                }
                std::hint::spin_loop();
            }
            if started.elapsed() >= self.idle.spin_for() {
                return Spin::Nothing;
            }
        }
    }

    /// Stops handing out work and wakes every sleeping worker.
    pub fn stop(&self) {
        self.idle.stop();
    }

    /// Drops every queued entry (after the workers are joined): entries hold
    /// agents, which hold the runtime, which holds this queue.
    pub fn drain(&self) {
        while self.pop().is_some() {}
        for s in &self.stealers {
            while !matches!(s.steal(), Steal::Empty) {}
        }
    }
}
