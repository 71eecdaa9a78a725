//! State shared by a runtime's handles, agents and workers.

use crate::action::guarded;
use crate::agent::AgentId;
use crate::agent::cell::AgentTask;
use crate::bus::BusCore;
use crate::exec::counters::ShardedCounter;
use crate::exec::run_queue::RunQueue;
use crate::imp::Strategy;
use crate::runtime::report::{DeliveryFailure, Failure, Metrics, Undelivered, UndeliveredFrom};
use crate::signal::Signal;
use crossbeam::utils::CachePadded;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use crate::vocab::report::FailureHook;

/// Event counters; each on its own cache line so workers and senders do not
/// contend on one.
#[derive(Default)]
pub(crate) struct Counters {
    /// Bumped by every send and every turn: sharded per thread.
    pub accepted: ShardedCounter,
    pub processed: ShardedCounter,
    pub dead_lettered: CachePadded<AtomicU64>,
    pub failed: CachePadded<AtomicU64>,
    pub panicked: CachePadded<AtomicU64>,
    pub refused_full: CachePadded<AtomicU64>,
    pub undelivered: CachePadded<AtomicU64>,
    pub spawned: CachePadded<AtomicU64>,
}

pub(crate) struct Shared {
    pub strategy: Strategy,
    /// Signals drained per wake-up (1 without batching).
    pub batch: usize,
    pub deterministic: bool,
    pub mailbox_capacity: usize,
    pub default_timeout: Duration,
    pub undelivered_limit: usize,
    pub run_queue: RunQueue,
    pub bus: BusCore,
    pub counters: Counters,
    registry: Mutex<HashMap<AgentId, Arc<dyn AgentTask>>>,
    shutting_down: AtomicBool,
    undelivered: Mutex<Vec<Undelivered>>,
    on_failure: Option<FailureHook>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct SharedConfig {
    pub strategy: Strategy,
    pub batch: usize,
    pub deterministic: bool,
    pub mailbox_capacity: usize,
    pub default_timeout: Duration,
    pub undelivered_limit: usize,
    pub on_failure: Option<FailureHook>,
}

impl Shared {
    pub fn new(c: SharedConfig, run_queue: RunQueue) -> Self {
        Shared {
            bus: BusCore::new(c.strategy.fast_path),
            strategy: c.strategy,
            batch: c.batch,
            deterministic: c.deterministic,
            mailbox_capacity: c.mailbox_capacity,
            default_timeout: c.default_timeout,
            undelivered_limit: c.undelivered_limit,
            run_queue,
            counters: Counters::default(),
            registry: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            undelivered: Mutex::new(Vec::new()),
            on_failure: c.on_failure,
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Registers a new agent unless the runtime is shutting down.
    pub fn register(&self, id: AgentId, task: Arc<dyn AgentTask>) -> bool {
        let mut registry = lock(&self.registry);
        if self.is_shutting_down() {
            return false;
        }
        registry.insert(id, task);
        self.counters.spawned.fetch_add(1, Ordering::Relaxed);
        true
    }

    pub fn deregister(&self, id: AgentId) {
        lock(&self.registry).remove(&id);
    }

    /// Marks the runtime as shutting down and takes every live agent, in id order.
    pub fn begin_shutdown(&self) -> Vec<Arc<dyn AgentTask>> {
        let mut registry = lock(&self.registry);
        self.shutting_down.store(true, Ordering::Release);
        let mut agents: Vec<_> = registry.drain().map(|(_, a)| a).collect();
        agents.sort_by_key(|a| a.id());
        agents
    }

    pub fn report_failure(&self, failure: &Failure<'_>) {
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        if failure.error.is_panic() {
            self.counters.panicked.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(hook) = &self.on_failure {
            // A panicking hook must not take the worker down with it.
            let _ = guarded(|| {
                hook(failure);
                Ok(())
            });
        }
    }

    pub fn record_undelivered(&self, from: UndeliveredFrom, failure: DeliveryFailure) {
        self.counters.undelivered.fetch_add(1, Ordering::Relaxed);
        let mut kept = lock(&self.undelivered);
        if kept.len() < self.undelivered_limit {
            kept.push(Undelivered { from, failure });
        }
    }

    pub fn take_undelivered(&self) -> Vec<Undelivered> {
        std::mem::take(&mut *lock(&self.undelivered))
    }

    /// Publishes a signal an action emitted; failures are recorded.
    pub fn publish_emitted(self: &Arc<Self>, from: AgentId, signal: Signal) {
        match self.bus.publish(self, signal) {
            Ok(report) => {
                for failure in report.failures {
                    self.record_undelivered(UndeliveredFrom::Agent(from), failure);
                }
            }
            Err(e) => self.record_undelivered(UndeliveredFrom::Agent(from), e.into_failure()),
        }
    }

    /// Deterministic mode: runs agents on this thread until no agent has
    /// work. Agents being run further up this thread's stack cannot be
    /// claimed; their runners requeue them when they let go. Returns the
    /// instructions processed.
    pub fn drive_until_idle(&self) -> u64 {
        let before = self.counters.processed.sum();
        while self.drive_one() {}
        self.counters.processed.sum() - before
    }

    /// Deterministic mode: runs the next run-queue entry; `false` when the
    /// queue is empty.
    pub fn drive_one(&self) -> bool {
        match self.run_queue.pop() {
            Some(entry) => {
                entry.run_entry();
                true
            }
            None => false,
        }
    }

    pub fn metrics(&self) -> Metrics {
        let c = &self.counters;
        // Completions first (acquire), then acceptances: every signal counted
        // as processed or dead-lettered is then also counted as accepted, so
        // `in_flight()` never reads an already finished signal as pending nor
        // a pending one as finished.
        let processed = c.processed.sum();
        let dead_lettered = c.dead_lettered.load(Ordering::Acquire);
        Metrics {
            accepted: c.accepted.sum(),
            processed,
            dead_lettered,
            failed_actions: c.failed.load(Ordering::Relaxed),
            panicked_actions: c.panicked.load(Ordering::Relaxed),
            refused_full: c.refused_full.load(Ordering::Relaxed),
            undelivered: c.undelivered.load(Ordering::Relaxed),
            spawned: c.spawned.load(Ordering::Relaxed),
            live_agents: lock(&self.registry).len() as u64,
        }
    }
}
