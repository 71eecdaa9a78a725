//! The run queue: agents with work, waiting for a worker (or for the
//! deterministic driver).
//!
//! A worker that finds the queue empty spins, then yields, then sleeps on a
//! condition variable. Waking a sleeping thread costs tens of microseconds on
//! small VMs, so the spin phase is what keeps a busy runtime fast; the sleep
//! is what keeps an idle one from burning a core.

use crate::agent::cell::AgentTask;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// Empty-queue checks (spinning, then yielding) before a worker sleeps.
const IDLE_SPINS: u32 = 200;

pub(crate) struct Scheduler {
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Queue length, readable without the lock by spinning workers.
    len: AtomicUsize,
}

struct Queue {
    tasks: VecDeque<Arc<dyn AgentTask>>,
    sleepers: usize,
    stopping: bool,
}

impl Scheduler {
    pub fn new() -> Self {
        Scheduler {
            queue: Mutex::new(Queue {
                tasks: VecDeque::new(),
                sleepers: 0,
                stopping: false,
            }),
            ready: Condvar::new(),
            len: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enqueues an agent that has work.
    pub fn push(&self, task: Arc<dyn AgentTask>) {
        let mut q = self.lock();
        if q.stopping {
            return;
        }
        q.tasks.push_back(task);
        self.len.store(q.tasks.len(), Ordering::Release);
        if q.sleepers > 0 {
            self.ready.notify_one();
        }
    }

    /// Takes the next agent, if any (the deterministic driver).
    pub fn pop(&self) -> Option<Arc<dyn AgentTask>> {
        let mut q = self.lock();
        let task = q.tasks.pop_front();
        self.len.store(q.tasks.len(), Ordering::Release);
        task
    }

    /// The next agent for a worker; `None` once the scheduler stops.
    pub fn next_for_worker(&self) -> Option<Arc<dyn AgentTask>> {
        for round in 0..IDLE_SPINS {
            if self.len.load(Ordering::Acquire) > 0 {
                if let Some(task) = self.pop() {
                    return Some(task);
                }
            } else if round < 32 {
                for _ in 0..(4 << round.min(5)) {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
        }
        let mut q = self.lock();
        loop {
            if q.stopping {
                return None;
            }
            if let Some(task) = q.tasks.pop_front() {
                self.len.store(q.tasks.len(), Ordering::Release);
                return Some(task);
            }
            q.sleepers += 1;
            q = self.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
            q.sleepers -= 1;
        }
    }

    /// Stops handing out work and wakes every sleeping worker.
    pub fn stop(&self) {
        let mut q = self.lock();
        q.stopping = true;
        q.tasks.clear();
        self.len.store(0, Ordering::Release);
        self.ready.notify_all();
    }
}
