//! Model-checks the claim protocol (`src/exec/claim.rs`) with loom: every
//! interleaving of senders (some running the agent themselves, as
//! `run_on_sender` does), a caller that runs the agent inline, and a
//! worker, over the real `Claim` code compiled against loom's atomics, a
//! mailbox under a lock (as the agent's), and a run queue of entries.
//!
//! Checked in every interleaving: no two threads run the agent at once (no
//! double run); every enqueued message is processed exactly once once the
//! remaining run-queue entries are served (no lost wake-up); the agent ends
//! idle.

/// What `claim.rs` imports from its parent: loom's atomics here.
mod sync {
    pub use loom::sync::atomic::{AtomicU8, Ordering};
}

#[path = "../src/exec/claim.rs"]
#[allow(dead_code)]
mod claim;

use claim::{Claim, Notified, Released};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use std::collections::VecDeque;

/// Explores every interleaving with up to three preemptions (four passes too, in 4 s of release build; CI runs every feature set in debug, so three) (loom's
/// recommended bound: bugs almost always need fewer; unbounded, the
/// three-thread models take hours).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

struct Agent {
    claim: Claim,
    mailbox: Mutex<VecDeque<u32>>,
    /// Run-queue entries for this agent (each a token).
    queue: Mutex<usize>,
    running: AtomicBool,
    processed: AtomicUsize,
}

impl Agent {
    fn new() -> Self {
        Agent {
            claim: Claim::new(),
            mailbox: Mutex::new(VecDeque::new()),
            queue: Mutex::new(0),
            running: AtomicBool::new(false),
            processed: AtomicUsize::new(0),
        }
    }

    /// `send`: enqueue, then notify; schedule if the agent was idle.
    fn send(&self, msg: u32) {
        self.mailbox.lock().unwrap().push_back(msg);
        if self.claim.notify() == Notified::Schedule {
            *self.queue.lock().unwrap() += 1;
        }
    }

    /// A turn by the claim holder: drain, then release (requeue if needed).
    fn run_claimed(&self) {
        assert!(
            !self.running.swap(true, Ordering::SeqCst),
            "two threads run the agent"
        );
        loop {
            self.claim.take_notified();
            let batch: Vec<u32> = self.mailbox.lock().unwrap().drain(..).collect();
            if batch.is_empty() {
                break;
            }
            self.processed.fetch_add(batch.len(), Ordering::SeqCst);
        }
        self.running.store(false, Ordering::SeqCst);
        let left_over = !self.mailbox.lock().unwrap().is_empty();
        if self.claim.release(left_over) == Released::Requeue {
            *self.queue.lock().unwrap() += 1;
        }
    }

    /// `call`: enqueue, then run inline if nobody runs the agent, otherwise
    /// notify.
    fn call(&self, msg: u32) {
        self.mailbox.lock().unwrap().push_back(msg);
        if self.claim.claim_inline() {
            self.run_claimed();
        } else if self.claim.notify() == Notified::Schedule {
            *self.queue.lock().unwrap() += 1;
        }
    }

    /// `send` with `run_on_sender` when every worker sleeps: a sender whose
    /// notify found the agent idle turns its "notified" into "running"
    /// itself instead of pushing an entry (as a worker would on popping
    /// it); if that fails, it pushes the entry after all.
    fn send_and_run(&self, msg: u32) {
        self.mailbox.lock().unwrap().push_back(msg);
        if self.claim.notify() == Notified::Schedule {
            if self.claim.claim_entry() {
                self.run_claimed();
            } else {
                *self.queue.lock().unwrap() += 1;
            }
        }
    }

    /// A worker: pops one entry, runs the agent if the entry is current.
    fn work_once(&self) -> bool {
        let popped = {
            let mut q = self.queue.lock().unwrap();
            if *q == 0 {
                false
            } else {
                *q -= 1;
                true
            }
        };
        if popped && self.claim.claim_entry() {
            self.run_claimed();
        }
        popped
    }

    /// After the threads: serve what is queued; everything must get done.
    fn finish(&self, sent: usize) {
        while self.work_once() {}
        assert_eq!(
            self.processed.load(Ordering::SeqCst),
            sent,
            "a message was lost"
        );
        assert!(self.mailbox.lock().unwrap().is_empty());
        assert!(!self.claim.is_running());
        // Idle: a fresh notify must schedule.
        assert_eq!(self.claim.notify(), Notified::Schedule);
    }
}

/// Runs `f` on a new thread with its own handle to `agent`.
fn on_thread(
    agent: &Arc<Agent>,
    f: impl FnOnce(&Agent) + Send + 'static,
) -> thread::JoinHandle<()> {
    let agent = agent.clone();
    thread::spawn(move || f(&agent))
}

#[test]
fn a_sender_and_a_worker_lose_no_wake_up() {
    model(|| {
        let agent = Arc::new(Agent::new());
        agent.send(1);
        let worker = on_thread(&agent, |agent| {
            agent.work_once();
            agent.work_once();
        });
        agent.send(2);
        worker.join().unwrap();
        agent.finish(2);
    });
}

#[test]
fn an_inline_caller_a_sender_and_a_worker_never_double_run() {
    model(|| {
        let agent = Arc::new(Agent::new());
        agent.send(1);
        let worker = on_thread(&agent, |agent| {
            agent.work_once();
        });
        let sender = on_thread(&agent, |agent| agent.send(2));
        agent.call(3);
        worker.join().unwrap();
        sender.join().unwrap();
        agent.finish(3);
    });
}

#[test]
fn two_inline_callers_share_the_agent() {
    model(|| {
        let agent = Arc::new(Agent::new());
        let other = on_thread(&agent, |agent| agent.call(1));
        agent.call(2);
        other.join().unwrap();
        agent.finish(2);
    });
}

#[test]
fn a_sender_that_runs_the_agent_a_caller_and_a_worker_never_double_run() {
    model(|| {
        let agent = Arc::new(Agent::new());
        agent.send(1);
        let worker = on_thread(&agent, |agent| {
            agent.work_once();
        });
        let sender = on_thread(&agent, |agent| agent.send_and_run(2));
        agent.call(3);
        worker.join().unwrap();
        sender.join().unwrap();
        agent.finish(3);
    });
}

#[test]
fn two_senders_that_run_the_agent_lose_nothing() {
    model(|| {
        let agent = Arc::new(Agent::new());
        let other = on_thread(&agent, |agent| agent.send_and_run(1));
        agent.send_and_run(2);
        other.join().unwrap();
        agent.finish(2);
    });
}
