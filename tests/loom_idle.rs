//! Model-checks the workers' idle protocol (`src/exec/idle.rs`) with loom:
//! every interleaving of workers that look for work, spin (at most one),
//! sleep and wake, and a thread that pushes work, over the real `Idle` code
//! compiled against loom's atomics, mutex and condition variable.
//!
//! Checked in every interleaving: a pushed entry is always taken (no lost
//! wake-up: if every worker slept with work queued and nobody to wake them,
//! loom reports the deadlock), by exactly one worker; `stop` releases every
//! sleeper.

/// What `idle.rs` imports from its parent: loom's types here.
mod sync {
    pub use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
    pub use loom::sync::{Condvar, Mutex, MutexGuard};

    /// A clock that stands still: a search never looks stale, so the model
    /// checks the protocol without the extra wake-ups staleness adds (an
    /// extra wake-up is always safe; a missing one is what loom looks for).
    pub fn now_nanos() -> u64 {
        0
    }
}

#[path = "../src/exec/idle.rs"]
#[allow(dead_code)]
mod idle;

use idle::{Idle, Next, Slept};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// Every interleaving with up to three preemptions (loom's recommended
/// bound: bugs almost always need fewer).
fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bounded(3, f);
}

/// The models with two workers besides the test's thread explore with two
/// preemptions: with three they take 40 s in a debug build, which CI runs
/// once per feature set.
fn model_bounded(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.check(f);
}

/// Queued entries, the idle state, and a bell for the test's main thread.
struct Pool {
    idle: Idle,
    queue: Mutex<usize>,
    taken: AtomicUsize,
    done: Mutex<usize>,
    done_bell: Condvar,
}

impl Pool {
    fn new(workers: usize) -> Self {
        Pool {
            idle: Idle::new(workers, std::time::Duration::from_micros(10)),
            queue: Mutex::new(0),
            taken: AtomicUsize::new(0),
            done: Mutex::new(0),
            done_bell: Condvar::new(),
        }
    }

    fn find(&self) -> Option<()> {
        let mut q = self.queue.lock().unwrap();
        if *q > 0 {
            *q -= 1;
            Some(())
        } else {
            None
        }
    }

    /// As `RunQueue::push`: enqueue, then let the idle state wake someone.
    fn push(&self) {
        *self.queue.lock().unwrap() += 1;
        self.idle.pushed();
    }

    fn took(&self) {
        self.taken.fetch_add(1, Ordering::SeqCst);
        *self.done.lock().unwrap() += 1;
        self.done_bell.notify_all();
    }

    /// As `RunQueue::next_for_worker`, with a spin of one look; runs until
    /// stopped.
    fn worker(&self) {
        let mut searching = false;
        loop {
            if self.idle.is_stopping() {
                if searching {
                    self.idle.end_search();
                }
                return;
            }
            if self.find().is_some() {
                if searching {
                    self.found_while_searching();
                }
                searching = false;
                self.took();
                continue;
            }
            if !searching {
                searching = self.idle.begin_search() == Next::Spin;
            }
            if searching && self.find().is_some() {
                self.found_while_searching();
                searching = false;
                self.took();
                continue;
            }
            match self.idle.sleep(searching, || self.find()) {
                Slept::Found(()) => {
                    searching = false;
                    self.took();
                }
                Slept::Woken { searching: s } => searching = s,
                Slept::Stopping => return,
            }
        }
    }

    /// As `RunQueue::found_while_searching`.
    fn found_while_searching(&self) {
        if self.idle.end_search() && *self.queue.lock().unwrap() > 0 {
            self.idle.wake_for_work();
        }
    }

    /// Blocks until `n` entries were taken (a lost wake-up blocks it
    /// forever, which loom reports as a deadlock).
    fn wait_taken(&self, n: usize) {
        let mut done = self.done.lock().unwrap();
        while *done < n {
            done = self.done_bell.wait(done).unwrap();
        }
    }
}

#[test]
fn one_worker_never_misses_a_push() {
    model(|| {
        let pool = Arc::new(Pool::new(1));
        let w = {
            let pool = pool.clone();
            thread::spawn(move || pool.worker())
        };
        pool.push();
        pool.wait_taken(1);
        pool.idle.stop();
        w.join().unwrap();
        assert_eq!(pool.taken.load(Ordering::SeqCst), 1);
        assert_eq!(*pool.queue.lock().unwrap(), 0);
    });
}

#[test]
fn two_workers_one_spinner_never_miss_a_push() {
    model_bounded(2, || {
        let pool = Arc::new(Pool::new(2));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                thread::spawn(move || pool.worker())
            })
            .collect();
        pool.push();
        pool.wait_taken(1);
        pool.idle.stop();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(pool.taken.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn pushes_from_another_thread_are_all_taken() {
    model(|| {
        let pool = Arc::new(Pool::new(1));
        let w = {
            let pool = pool.clone();
            thread::spawn(move || pool.worker())
        };
        let pusher = {
            let pool = pool.clone();
            thread::spawn(move || {
                pool.push();
                pool.push();
            })
        };
        pusher.join().unwrap();
        pool.wait_taken(2);
        pool.idle.stop();
        w.join().unwrap();
        assert_eq!(pool.taken.load(Ordering::SeqCst), 2);
    });
}

/// A second begin_search while one worker searches is told to sleep; the
/// count returns to zero when the searcher ends.
#[test]
fn at_most_one_worker_spins() {
    loom::model(|| {
        let idle = Idle::new(2, std::time::Duration::from_micros(10));
        assert_eq!(idle.begin_search(), Next::Spin);
        assert_eq!(idle.begin_search(), Next::Sleep);
        idle.end_search();
        assert_eq!(idle.begin_search(), Next::Spin);
        idle.end_search();
    });
}

/// Two entries pushed at once while one worker searches: both are taken;
/// the searcher that takes the first wakes the sleeper for the second if
/// the pushes woke nobody.
#[test]
fn two_pushes_during_a_search_are_both_taken() {
    model_bounded(2, || {
        let pool = Arc::new(Pool::new(2));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                thread::spawn(move || pool.worker())
            })
            .collect();
        pool.push();
        pool.push();
        pool.wait_taken(2);
        pool.idle.stop();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(pool.taken.load(Ordering::SeqCst), 2);
    });
}
