//! What an agent needs of its runtime, shared by the runtime's handles,
//! agents and workers: config values, counters, the run queue, the agent
//! registry, the failure hook and the undelivered list. The runtime builds
//! it; the one thing above this layer it reaches, publishing a signal an
//! action emitted, goes through an [`Emit`] object (the bus).

use super::counters::ShardedCounter;
use super::monitors::Monitors;
use super::reserve::Reserved;
use super::run_queue::RunQueue;
use super::space::SpaceWaiters;
use super::timers::{Due, Fire, TimerHandle, TimerKey, Timers, nanos};
use super::work::{Spawner, WorkSet};
use super::{AgentAddr, AgentTask};
use crate::imp::Strategy;
use crate::signal::{Signal, Text};
use crate::vocab::AgentId;
use crate::vocab::action_error::guarded;
use crate::vocab::error::{CallError, ScheduleError, SendErrorKind};
use crate::vocab::report::{
    DeliveryFailure, Failure, FailureHook, Metrics, StopReport, Undelivered, UndeliveredFrom,
    UndeliveredHook,
};
use crossbeam::utils::CachePadded;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

thread_local! {
    /// Inline claims this thread holds (deterministic mode), so a driver
    /// inside a call never waits for itself.
    static INLINE_HERE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

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

/// Publishes a signal an action emitted (once its instruction committed)
/// or a timer fired; undeliverable copies go to
/// [`Context::record_undelivered`], marked with `from`.
pub(crate) trait Emit: Send + Sync {
    fn emit(&self, rt: &Context, from: UndeliveredFrom, signal: Signal);
    /// Resolves `signal`'s subscribers now and reserves a slot at each
    /// subscribed agent (`exec::reserve`); refuses as a publish would
    /// (nobody subscribed, shutting down) or when any agent refuses.
    fn reserve(&self, rt: &Context, signal: Signal) -> Result<Reserved, DeliveryFailure>;
}

pub(crate) struct Context {
    /// What the runtime was built with.
    pub config: ContextConfig,
    pub run_queue: RunQueue,
    pub counters: Counters,
    /// Scheduled signals and deadlines.
    pub timers: Timers,
    /// Async work actions started.
    pub work: WorkSet,
    emitter: Arc<dyn Emit>,
    registry: Mutex<HashMap<AgentId, Arc<dyn AgentTask>>>,
    /// Agents spawned under a key (see [`register`](Self::register)).
    keys: RwLock<HashMap<Text, Arc<dyn AgentTask>>>,
    /// Threads waiting for an agent's running turn to end (stop, shutdown),
    /// and where they wait: a release notifies only when someone waits.
    quiet_waiters: AtomicUsize,
    /// Deterministic mode: agents a caller or reader holds on its own
    /// thread (see [`drive_until_idle`](Self::drive_until_idle)).
    inline_claims: AtomicUsize,
    quiet: Mutex<()>,
    quieted: Condvar,
    shutting_down: AtomicBool,
    /// [`OPEN`], [`DRAINING`] or [`CLOSED`]: whether signals from outside
    /// the runtime are taken (one load on the send path).
    intake: AtomicU8,
    undelivered: Mutex<Vec<Undelivered>>,
    /// Senders waiting for mailbox space (`send_async`, `send_timeout`).
    pub space: SpaceWaiters,
    /// Who watches which agent.
    monitors: Monitors<AgentAddr>,
    /// Agents their restart policy stopped, with their dead letters, until
    /// taken (`Runtime::take_stopped`) or handed back at shutdown.
    stopped: Mutex<Vec<StopReport>>,
    /// Calls made from inside an agent's turn and not yet answered: caller
    /// agent -> called agent (an agent's turn waits on one call at a time).
    call_waits: Mutex<HashMap<AgentId, AgentId>>,
}

/// Intake states (see `Context::intake`).
const OPEN: u8 = 0;
const DRAINING: u8 = 1;
const CLOSED: u8 = 2;

/// Why [`Context::register`] refused an agent.
pub(crate) enum Refused {
    ShuttingDown,
    /// The key is held by this agent.
    KeyTaken(AgentId),
}

/// A call from inside `from`'s turn to another agent, registered in the
/// waits-for map until dropped.
pub(crate) struct CallWait<'a> {
    rt: &'a Context,
    from: AgentId,
}

impl Drop for CallWait<'_> {
    fn drop(&mut self) {
        lock(&self.rt.call_waits).remove(&self.from);
    }
}

/// How many waits a cycle check follows: longer chains are not checked
/// (a cycle of more than 64 agents calling each other is not a design).
const MAX_CALL_CHAIN: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct ContextConfig {
    pub strategy: Strategy,
    /// Signals drained per wake-up (1 without batching).
    pub batch: usize,
    pub deterministic: bool,
    pub mailbox_capacity: usize,
    pub default_timeout: Duration,
    pub undelivered_limit: usize,
    pub on_failure: Option<FailureHook>,
    pub on_undelivered: Option<UndeliveredHook>,
    /// A sender may run an idle agent when every worker sleeps.
    pub run_on_sender: bool,
    /// Where async work started by actions runs (threaded mode).
    pub spawner: Option<Spawner>,
}

impl Context {
    /// Registers that `from`'s turn waits on a call to `to`, unless `to`
    /// waits (through a chain of calls) on `from`: then the call would close
    /// a cycle, and the agents of that cycle come back instead. The check
    /// and the registration happen under one lock, so of two calls that
    /// would close a cycle together, the second is refused.
    pub fn begin_call_wait(
        &self,
        from: AgentId,
        to: AgentId,
    ) -> Result<CallWait<'_>, Vec<AgentId>> {
        let mut waits = lock(&self.call_waits);
        let mut chain = vec![from, to];
        let mut at = to;
        for _ in 0..MAX_CALL_CHAIN {
            match waits.get(&at) {
                Some(&next) if next == from => return Err(chain),
                Some(&next) => {
                    chain.push(next);
                    at = next;
                }
                None => break,
            }
        }
        waits.insert(from, to);
        Ok(CallWait { rt: self, from })
    }

    pub fn new(c: ContextConfig, run_queue: RunQueue, emitter: Arc<dyn Emit>) -> Self {
        let timers = Timers::new(c.deterministic);
        let work = WorkSet::new(c.spawner.clone(), c.deterministic);
        Context {
            emitter,
            config: c,
            timers,
            work,
            run_queue,
            counters: Counters::default(),
            registry: Mutex::new(HashMap::new()),
            keys: RwLock::new(HashMap::new()),
            quiet_waiters: AtomicUsize::new(0),
            inline_claims: AtomicUsize::new(0),
            quiet: Mutex::new(()),
            quieted: Condvar::new(),
            shutting_down: AtomicBool::new(false),
            intake: AtomicU8::new(OPEN),
            undelivered: Mutex::new(Vec::new()),
            space: SpaceWaiters::default(),
            call_waits: Mutex::new(HashMap::new()),
            monitors: Monitors::default(),
            stopped: Mutex::new(Vec::new()),
        }
    }

    /// After a runner let go of an agent: wakes the threads waiting for
    /// some agent to go quiet, if any (one `SeqCst` load otherwise).
    #[inline]
    pub fn released(&self) {
        if self.quiet_waiters.load(Ordering::SeqCst) > 0 {
            let _guard = lock(&self.quiet);
            self.quieted.notify_all();
        }
    }

    /// Blocks until `is_running()` is false, woken by [`released`](Self::released).
    pub fn wait_until_quiet(&self, is_running: impl Fn() -> bool) {
        self.quiet_waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = lock(&self.quiet);
        while is_running() {
            guard = self
                .quieted
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(guard);
        self.quiet_waiters.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Whether every sender is taken (no drain or shutdown has begun).
    #[inline]
    pub fn intake_open(&self) -> bool {
        self.intake.load(Ordering::Acquire) == OPEN
    }

    /// A graceful shutdown begins: from now on only the runtime's own
    /// threads of work (turns, timers, async work) may send. `false` if a
    /// drain or shutdown had begun already.
    pub fn begin_drain(&self) -> bool {
        self.intake
            .compare_exchange(OPEN, DRAINING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Registers a new agent (under `key`, if given), unless the runtime
    /// is shutting down or the key is taken.
    pub fn register(
        &self,
        id: AgentId,
        task: Arc<dyn AgentTask>,
        key: Option<&Text>,
    ) -> Result<(), Refused> {
        let mut registry = lock(&self.registry);
        if self.is_shutting_down() {
            return Err(Refused::ShuttingDown);
        }
        if let Some(key) = key {
            let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
            match keys.entry(key.clone()) {
                std::collections::hash_map::Entry::Occupied(held) => {
                    return Err(Refused::KeyTaken(held.get().id()));
                }
                std::collections::hash_map::Entry::Vacant(free) => {
                    free.insert(task.clone());
                }
            }
        }
        registry.insert(id, task);
        self.counters.spawned.fetch_add(1, Ordering::Relaxed);
        crate::imp::observe::live_agents(registry.len());
        Ok(())
    }

    /// Removes a stopped agent, and its key if it still holds it.
    pub fn deregister(&self, id: AgentId, key: Option<&Text>) {
        let mut registry = lock(&self.registry);
        registry.remove(&id);
        if let Some(key) = key {
            let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
            if keys.get(key).is_some_and(|held| held.id() == id) {
                keys.remove(key);
            }
        }
        crate::imp::observe::live_agents(registry.len());
    }

    /// The agent spawned under `key`, if it runs.
    pub fn by_key(&self, key: &str) -> Option<Arc<dyn AgentTask>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Agents registered under a key.
    pub fn keyed_len(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Marks the runtime as shutting down and takes every live agent, in id order.
    pub fn begin_shutdown(&self) -> Vec<Arc<dyn AgentTask>> {
        let mut registry = lock(&self.registry);
        self.shutting_down.store(true, Ordering::Release);
        self.intake.store(CLOSED, Ordering::Release);
        let mut agents: Vec<_> = registry.drain().map(|(_, a)| a).collect();
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        crate::imp::observe::live_agents(0);
        agents.sort_by_key(|a| a.id());
        agents
    }

    pub fn report_failure(&self, failure: &Failure<'_>) {
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        if failure.error.is_panic() {
            self.counters.panicked.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(hook) = &self.config.on_failure {
            // A panicking hook must not take the worker down with it.
            let _ = guarded(|| {
                hook(failure);
                Ok(())
            });
        }
    }

    pub fn record_undelivered(&self, from: UndeliveredFrom, failure: DeliveryFailure) {
        self.counters.undelivered.fetch_add(1, Ordering::Relaxed);
        crate::imp::observe::undelivered(&from, &failure);
        let undelivered = Undelivered { from, failure };
        if let Some(hook) = &self.config.on_undelivered {
            // A panicking hook must not take the delivering thread down.
            let _ = guarded(|| {
                hook(&undelivered);
                Ok(())
            });
        }
        let mut kept = lock(&self.undelivered);
        if kept.len() < self.config.undelivered_limit {
            kept.push(undelivered);
        }
    }

    /// Adds a monitor of `watched` by `watcher`; returns its id.
    pub fn add_monitor(&self, watched: AgentId, watcher: AgentAddr) -> u64 {
        self.monitors.add(watched.0, watcher)
    }

    /// Removes monitor `id` of `watched`; whether it was there.
    pub fn remove_monitor(&self, watched: AgentId, id: u64) -> bool {
        self.monitors.remove(watched.0, id)
    }

    /// Takes the watchers of `watched` (it stopped).
    pub fn take_monitors(&self, watched: AgentId) -> Vec<(u64, AgentAddr)> {
        self.monitors.take(watched.0)
    }

    /// Drops every monitor (shutdown: nobody is told, and the watchers'
    /// addresses would keep agents alive).
    pub fn clear_monitors(&self) {
        self.monitors.clear();
    }

    /// Keeps the report of an agent its restart policy stopped.
    pub fn record_stopped(&self, report: StopReport) {
        lock(&self.stopped).push(report);
    }

    pub fn take_stopped(&self) -> Vec<StopReport> {
        std::mem::take(&mut *lock(&self.stopped))
    }

    pub fn take_undelivered(&self) -> Vec<Undelivered> {
        std::mem::take(&mut *lock(&self.undelivered))
    }

    /// Reserves delivery of a signal an action emits and requires to be
    /// delivered (see `exec::reserve`).
    pub fn reserve_publish(&self, signal: Signal) -> Result<Reserved, DeliveryFailure> {
        self.emitter.reserve(self, signal)
    }

    /// Publishes a signal an action emitted; failures are recorded.
    pub fn publish_emitted(&self, from: AgentId, signal: Signal) {
        self.emitter
            .emit(self, UndeliveredFrom::Agent(from), signal);
    }

    /// Schedules `fire` `delay` from now (virtual in deterministic mode),
    /// repeating every `period` if given; starts the timer thread of a
    /// threaded runtime at the first schedule. Hands `fire` back during
    /// shutdown.
    // The refused timer comes back whole (its signal is handed back).
    #[allow(clippy::result_large_err)]
    pub fn schedule(
        self: &Arc<Self>,
        due: u64,
        period: Option<Duration>,
        fire: Fire,
    ) -> Result<TimerKey, Fire> {
        let period = period.map_or(0, nanos);
        self.timers.schedule(due, period, fire, || {
            let rt = Arc::downgrade(self);
            std::thread::Builder::new()
                .name("agentry-timer".into())
                .spawn(move || {
                    if let Some(rt) = rt.upgrade() {
                        let timers = &rt.timers;
                        // A panic (a waker's, a bus callback's is caught
                        // already) must not end the thread every timer and
                        // call deadline depends on.
                        timers.run(|due| {
                            if let Err(payload) =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    rt.fire(due)
                                }))
                            {
                                crate::vocab::action_error::discard_panic(payload);
                            }
                        });
                    }
                })
                .ok()
        })
    }

    /// Schedules `signal` for `target` (an agent, or the bus when `None`)
    /// at `due`, repeating every `period` if given.
    pub fn schedule_signal(
        self: &Arc<Self>,
        target: Option<Arc<dyn AgentTask>>,
        signal: Signal,
        due: Instant,
        period: Option<Duration>,
    ) -> Result<TimerHandle, ScheduleError> {
        if period.is_some_and(|p| p.is_zero()) {
            return Err(ScheduleError::ZeroPeriod(Box::new(signal)));
        }
        if let Some(to) = &target
            && to.is_closed()
        {
            return Err(ScheduleError::Stopped {
                agent: to.id(),
                signal: Box::new(signal),
            });
        }
        let fire = match target {
            Some(to) => Fire::Agent { to, signal },
            None => Fire::Bus { signal },
        };
        let refused = |fire| match fire {
            Fire::Agent { signal, .. } | Fire::Bus { signal } => {
                ScheduleError::ShuttingDown(Box::new(signal))
            }
            Fire::CallDeadline { .. } | Fire::WorkDeadline(_) => {
                unreachable!("a signal timer holds a signal")
            }
        };
        if self.is_shutting_down() {
            return Err(refused(fire));
        }
        let due = self.timers.ns_at(due);
        match self.schedule(due, period, fire) {
            Ok(id) => Ok(TimerHandle::new(id, self)),
            Err(fire) => Err(refused(fire)),
        }
    }

    /// `delay` from the runtime's now (virtual in deterministic mode).
    pub fn instant_after(&self, delay: Duration) -> Instant {
        let now = self.timers.now();
        now.checked_add(delay)
            .unwrap_or_else(|| super::reply::deadline_after(delay).max(now))
    }

    /// Fires one timer: a signal is sent or published like any other
    /// (accepted now, or recorded undelivered with the timer's id); an
    /// interval whose agent stopped is cancelled.
    pub fn fire(&self, due: Due) {
        super::internal(|| self.fire_now(due));
    }

    fn fire_now(&self, due: Due) {
        let from = UndeliveredFrom::Timer(due.key.id);
        match due.fire {
            Fire::Agent { to, signal } => {
                if let Err(e) = to.deliver(&to, signal) {
                    let gone = matches!(
                        e.kind(),
                        SendErrorKind::Stopped | SendErrorKind::ShuttingDown
                    );
                    if due.repeats && gone {
                        self.timers.cancel(due.key);
                    }
                    self.record_undelivered(from, e.into());
                }
            }
            Fire::Bus { signal } => self.emitter.emit(self, from, signal),
            Fire::CallDeadline {
                sink,
                ticket,
                after,
            } => sink.fail(ticket, CallError::Timeout { after }),
            Fire::WorkDeadline(work) => work.expire(self),
        }
    }

    /// Deterministic mode: fires every timer due at the virtual now, in
    /// firing order; returns how many fired.
    pub fn fire_due(&self) -> usize {
        let now = self.timers.now_ns();
        let mut n = 0;
        while let Some(due) = self.timers.take_one_due(now) {
            self.fire(due);
            n += 1;
        }
        n
    }

    /// Deterministic mode: fires what is due now and runs until no agent
    /// has work and nothing more is due (an action may schedule at now);
    /// returns the instructions processed.
    pub fn settle(&self) -> u64 {
        let before = self.counters.processed.sum();
        self.settle_here();
        self.counters.processed.sum() - before
    }

    fn settle_here(&self) {
        loop {
            let mark = self.timers.schedules();
            let fired = self.fire_due();
            self.drive_all();
            // Work the turns started (or woke) is polled before idle.
            let polled = self.work.poll_local();
            // Timers the turns scheduled at this instant fire before idle
            // (looked for only if anything was scheduled).
            if fired == 0
                && polled == 0
                && (self.timers.schedules() == mark || self.fire_due() == 0)
            {
                return;
            }
        }
    }

    /// Deterministic mode: moves the virtual clock forward by `by`, one due
    /// time at a time, settling the runtime at each (so a timer an action
    /// schedules meanwhile fires in its turn); returns the instructions
    /// processed.
    pub fn advance(&self, by: Duration) -> u64 {
        let before = self.counters.processed.sum();
        let target = self.timers.now_ns().saturating_add(nanos(by));
        self.settle_here();
        while let Some(due) = self.timers.next_due().filter(|&due| due <= target) {
            self.timers.set_now(due);
            self.settle_here();
        }
        // Nothing is due up to `target` now (each settle fired what its own
        // turns scheduled at its instant): moving the clock is all that is left.
        self.timers.set_now(target);
        self.counters.processed.sum() - before
    }

    /// Deterministic mode: runs agents on this thread until no agent has
    /// work. Agents being run further up this thread's stack cannot be
    /// claimed; their runners requeue them when they let go. Returns the
    /// instructions processed.
    pub fn drive_until_idle(&self) -> u64 {
        let before = self.counters.processed.sum();
        self.drive_all();
        self.counters.processed.sum() - before
    }

    /// [`drive_until_idle`](Self::drive_until_idle) without the count.
    fn drive_all(&self) {
        loop {
            while self.drive_one() {}
            // A reader or caller on another thread may hold an agent it
            // claimed inline, with signals sent meanwhile (their notify saw
            // it running and pushed no entry); its release requeues the
            // agent. Idle means no work is left, so wait for that release
            // rather than return with signals unprocessed.
            let here = INLINE_HERE.with(std::cell::Cell::get);
            if self.inline_claims.load(Ordering::SeqCst) <= here || self.metrics().in_flight() == 0
            {
                break;
            }
            std::thread::yield_now();
        }
    }

    /// Deterministic mode: this thread claimed an agent to run it inline.
    pub fn inline_claimed(&self) {
        if self.config.deterministic {
            INLINE_HERE.with(|n| n.set(n.get() + 1));
            self.inline_claims.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Deterministic mode: ... and released it, requeueing it if needed.
    pub fn inline_released(&self) {
        if self.config.deterministic {
            self.inline_claims.fetch_sub(1, Ordering::SeqCst);
            INLINE_HERE.with(|n| n.set(n.get() - 1));
        }
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
