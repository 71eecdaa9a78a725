//! The agent itself: mailbox, state, and the serving loop that turns queued
//! instructions into committed state.
//!
//! Concurrency protocol (one agent):
//! * `mailbox` (a mutex around a `VecDeque`) is where senders enqueue.
//! * `core` (a mutex around the state) is held by whoever runs the agent: a
//!   worker, the deterministic driver, or a caller helping its own `call`
//!   along. Holding it is what makes execution serial per agent.
//! * `scheduled` says the agent is in the run queue (or its runner will check
//!   for more work before leaving). A sender that flips it from false to true
//!   enqueues the agent; a runner clears it and re-checks `queued` after
//!   releasing `core`. Both sides use `SeqCst`, so one of them always sees the
//!   other's work: no lost wake-up.
//!
//! * `in_batch` holds the not-yet-started rest of a batch (with `batching`),
//!   last instruction first, so taking the next one is a `pop`.
//!   The runner moves a batch there from the mailbox under the mailbox lock
//!   and takes one instruction at a time, so `close` (a stop or shutdown, from
//!   inside the batch or from another thread) hands those back exactly as it
//!   hands back what is still in the mailbox: batching never changes which
//!   signals a stop returns. Lock order: `mailbox`, then `in_batch`.
//!
//! Reads (`state()` and query actions) without `fast-path` are messages in a
//! separate read lane, served before the next instruction starts: they see
//! every instruction that completed and none that is half done. With
//! `fast-path` they are answered on the caller's thread from the snapshot the
//! agent publishes after each batch, before it replies.

use crate::action::{ActionError, ActionSet, Query, guarded};
use crate::agent::AgentId;
use crate::agent::error::{CallError, QueryError, SendError, SendErrorKind};
use crate::agent::reply::ReplySlot;
use crate::agent::reply::deadline_after;
use crate::agent::routes::{ActionTarget, RouteTable};
use crate::imp::memo::MemoOutcome;
use crate::imp::{pool, reply as reply_pool, snapshot::StateView};
use crate::instruction::{Instruction, Outbound, ReplyTo};
use crate::router::RouteId;
use crate::runtime::report::{DeadLetter, DeadLetterReason, Failure, UndeliveredFrom};
use crate::runtime::shared::Shared;
use crate::signal::{Signal, Text};
use arc_swap::ArcSwap;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

/// An agent type, compiled once from its spec and shared by its agents.
pub(crate) struct AgentKind<S, R> {
    pub name: Option<Text>,
    pub actions: ActionSet<S, R>,
    pub queries: Vec<Arc<dyn Query<S, R>>>,
    pub routes: Arc<RouteTable<ActionTarget>>,
    pub query_routes: RouteTable<u32>,
}

/// The run-queue face of an agent, with its state type erased.
pub(crate) trait AgentTask: Send + Sync + 'static {
    fn id(&self) -> AgentId;
    /// Serves one batch. With `blocking: false` it gives up if the agent is
    /// being run elsewhere (a frame further up this thread, in deterministic
    /// mode) and hands itself back.
    fn run(self: Arc<Self>, blocking: bool) -> Option<Arc<dyn AgentTask>>;
    /// Waits until no other thread is running the agent (shutdown accounting).
    fn quiesce(&self);
    /// Routes and enqueues `signal`; `me` is this agent, to be scheduled.
    fn deliver(&self, me: &Arc<dyn AgentTask>, signal: Signal) -> Result<(), SendError>;
    /// Closes the mailbox and hands back everything still queued.
    fn close(&self, reason: DeadLetterReason) -> Vec<DeadLetter>;
    /// Whether the agent has been stopped (or shut down).
    fn is_closed(&self) -> bool;
}

pub(crate) struct AgentCell<S, R> {
    id: AgentId,
    pub(crate) rt: Arc<Shared>,
    pub(crate) kind: Arc<AgentKind<S, R>>,
    pub(crate) routes: ArcSwap<RouteTable<ActionTarget>>,
    pub(crate) route_writer: Mutex<()>,
    scheduled: AtomicBool,
    queued: AtomicUsize,
    closed: AtomicBool,
    mailbox: Mutex<Mailbox>,
    /// The rest of the batch being run, in reverse (see the module docs).
    in_batch: Mutex<Vec<Box<Instruction>>>,
    reads: Mutex<Vec<ReadJob<S, R>>>,
    has_reads: AtomicBool,
    core: Mutex<Core<S, R>>,
    view: StateView<S>,
    capacity: usize,
    pub(crate) memo_hits: AtomicU64,
    pub(crate) memo_misses: AtomicU64,
}

struct Mailbox {
    queue: VecDeque<Box<Instruction>>,
    closed: Option<DeadLetterReason>,
}

struct Core<S, R> {
    state: S,
    /// The state before the running action, to roll back to on failure.
    undo: Option<S>,
    /// The previous snapshot, reused by the next publish (`fast-path`).
    spare: Option<Arc<S>>,
    /// Per executed instruction of the current batch: the first route's reply.
    results: Vec<Option<R>>,
    /// The batch's failed action runs, reported (failure hook, counters) after
    /// the snapshot is published, in instruction order.
    failures: Vec<PendingFailure>,
}

/// An action run that failed, waiting to be reported after the batch commits.
struct PendingFailure {
    /// The instruction's position in the batch.
    index: usize,
    route: RouteId,
    error: ActionError,
}

type StateSlot<S> = ReplySlot<Result<Arc<S>, QueryError>>;
type QuerySlot<R> = ReplySlot<Result<R, QueryError>>;
type CallSlot<R> = ReplySlot<Result<R, CallError>>;

enum ReadJob<S, R> {
    State(Arc<StateSlot<S>>, u64),
    Query {
        index: u32,
        signal: Signal,
        slot: Arc<QuerySlot<R>>,
        ticket: u64,
    },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Agents being run by this thread (innermost last): a call or read from
/// inside an agent's own turn could never be answered, so it is refused.
mod running {
    use super::*;
    use std::cell::Cell;
    thread_local! {
        static DEPTH: Cell<usize> = const { Cell::new(0) };
        static STACK: RefCell<Vec<AgentId>> = const { RefCell::new(Vec::new()) };
    }
    /// Marks `id` as running on this thread until the returned guard drops
    /// (also when unwinding).
    #[must_use]
    pub fn enter(id: AgentId) -> Turn {
        let _ = STACK.try_with(|s| s.borrow_mut().push(id));
        let _ = DEPTH.try_with(|d| d.set(d.get() + 1));
        Turn(())
    }
    pub struct Turn(());
    impl Drop for Turn {
        fn drop(&mut self) {
            let _ = STACK.try_with(|s| s.borrow_mut().pop());
            let _ = DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
        }
    }
    /// Whether this thread is running any agent's turn.
    #[inline]
    pub fn any() -> bool {
        DEPTH.try_with(Cell::get).unwrap_or(0) != 0
    }
    /// Whether this thread is running `id` (a plain counter answers the
    /// common case, a thread that runs no agent, without touching the stack).
    #[inline]
    pub fn contains(id: AgentId) -> bool {
        DEPTH.try_with(Cell::get).unwrap_or(0) != 0
            && STACK
                .try_with(|s| s.borrow().contains(&id))
                .unwrap_or(false)
    }
}

/// The batch buffer of the current thread, lent out for the length of a run
/// (a nested run on the same thread gets a fresh one).
mod batch_buffer {
    use super::*;
    thread_local! {
        static BUF: RefCell<Vec<Box<Instruction>>> = const { RefCell::new(Vec::new()) };
    }
    pub fn take() -> Vec<Box<Instruction>> {
        BUF.try_with(|b| std::mem::take(&mut *b.borrow_mut()))
            .unwrap_or_default()
    }
    pub fn put(v: Vec<Box<Instruction>>) {
        debug_assert!(v.is_empty());
        let _ = BUF.try_with(|b| {
            let mut b = b.borrow_mut();
            if b.capacity() < v.capacity() {
                *b = v;
            }
        });
    }
}

impl<S, R> AgentCell<S, R> {
    pub(crate) fn id(&self) -> AgentId {
        self.id
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

impl<S, R> AgentCell<S, R>
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    pub(crate) fn new(
        id: AgentId,
        rt: Arc<Shared>,
        kind: Arc<AgentKind<S, R>>,
        state: S,
        capacity: usize,
    ) -> Self {
        let view = StateView::new(rt.strategy.fast_path, &state);
        AgentCell {
            id,
            routes: ArcSwap::new(kind.routes.clone()),
            kind,
            route_writer: Mutex::new(()),
            scheduled: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            mailbox: Mutex::new(Mailbox {
                queue: VecDeque::new(),
                closed: None,
            }),
            in_batch: Mutex::new(Vec::new()),
            reads: Mutex::new(Vec::new()),
            has_reads: AtomicBool::new(false),
            core: Mutex::new(Core {
                state,
                undo: None,
                spare: None,
                results: Vec::new(),
                failures: Vec::new(),
            }),
            view,
            capacity,
            memo_hits: AtomicU64::new(0),
            memo_misses: AtomicU64::new(0),
            rt,
        }
    }

    /// Routes `signal`, takes an instruction from the pool and enqueues it.
    pub(crate) fn accept(
        &self,
        signal: Signal,
        reply: Option<ReplyTo>,
        me: impl FnOnce() -> Arc<dyn AgentTask>,
    ) -> Result<(), SendError> {
        if self.rt.is_shutting_down() {
            return Err(SendError::new(self.id, SendErrorKind::ShuttingDown, signal));
        }
        let pool_kind = self.rt.strategy.pool;
        let mut ins = pool::checkout(pool_kind);
        let resolved = {
            let table = self.routes.load();
            let mut slots = crate::router::scratch::take();
            let resolved = table.resolve(&signal, &mut slots, &mut ins.routes);
            crate::router::scratch::put(slots);
            resolved
        };
        match resolved {
            Ok(MemoOutcome::Hit) => {
                self.memo_hits.fetch_add(1, Ordering::Relaxed);
            }
            Ok(MemoOutcome::Miss) => {
                self.memo_misses.fetch_add(1, Ordering::Relaxed);
            }
            Ok(MemoOutcome::Off) => {}
            Err(panic) => {
                pool::give_back(pool_kind, ins);
                let kind = SendErrorKind::PredicatePanicked {
                    route: panic.route,
                    message: panic.message,
                };
                return Err(SendError::new(self.id, kind, signal));
            }
        }
        if ins.routes.is_empty() {
            pool::give_back(pool_kind, ins);
            return Err(SendError::new(self.id, SendErrorKind::NoRoute, signal));
        }
        ins.load(self.id, signal);
        ins.reply = reply;
        let refused = {
            let mut mailbox = lock(&self.mailbox);
            if let Some(reason) = mailbox.closed {
                Some(match reason {
                    DeadLetterReason::AgentStopped => SendErrorKind::Stopped,
                    DeadLetterReason::Shutdown => SendErrorKind::ShuttingDown,
                })
            } else if mailbox.queue.len() >= self.capacity {
                Some(SendErrorKind::MailboxFull {
                    capacity: self.capacity,
                })
            } else {
                // Counted before the instruction becomes visible to a runner,
                // so `processed` can never overtake `accepted`.
                self.rt.counters.accepted.fetch_add(1, Ordering::Relaxed);
                mailbox.queue.push_back(ins);
                self.queued.store(mailbox.queue.len(), Ordering::SeqCst);
                drop(mailbox);
                self.schedule(me);
                return Ok(());
            }
        };
        // Refused: hand the signal back and return the instruction.
        let kind = refused.unwrap_or(SendErrorKind::Stopped);
        if matches!(kind, SendErrorKind::MailboxFull { .. }) {
            self.rt
                .counters
                .refused_full
                .fetch_add(1, Ordering::Relaxed);
        }
        let signal = ins.take_signal();
        ins.reply = None;
        pool::give_back(pool_kind, ins);
        match signal {
            Some(signal) => Err(SendError::new(self.id, kind, signal)),
            None => unreachable_signal(),
        }
    }

    fn schedule(&self, me: impl FnOnce() -> Arc<dyn AgentTask>) {
        if !self.scheduled.swap(true, Ordering::SeqCst) {
            self.rt.scheduler.push(me());
        }
    }

    fn has_work(&self) -> bool {
        self.queued.load(Ordering::SeqCst) > 0 || self.has_reads.load(Ordering::SeqCst)
    }

    /// After a run: clear `scheduled`, then re-check for work that arrived
    /// meanwhile (see the module docs).
    fn after_run(&self, me: impl FnOnce() -> Arc<dyn AgentTask>) {
        self.scheduled.store(false, Ordering::SeqCst);
        if self.has_work() && !self.closed.load(Ordering::SeqCst) {
            self.schedule(me);
        }
    }

    /// Serves one batch if the agent is free (or, `blocking`, once it is).
    fn take_turn(&self, blocking: bool) -> bool {
        let acquired = if blocking {
            Some(lock(&self.core))
        } else {
            try_lock(&self.core)
        };
        let Some(mut core) = acquired else {
            return false;
        };
        let _turn = running::enter(self.id);
        self.serve(&mut core, None);
        true
    }

    /// A caller waiting for `done` runs the agent on its own thread if no one
    /// else is (no thread wake-up on the common path). Returns whether it did
    /// any work.
    fn help(self: &Arc<Self>, done: &dyn Fn() -> bool) -> bool {
        let Some(mut core) = try_lock(&self.core) else {
            return false;
        };
        let turn = running::enter(self.id);
        let served = self.serve(&mut core, Some(done));
        drop(turn);
        drop(core);
        if self.has_work() && !self.closed.load(Ordering::SeqCst) {
            let me = self.clone();
            self.schedule(move || me);
        }
        served > 0
    }

    /// Serves reads and batches: one batch (`done == None`, a worker's turn)
    /// or until `done()` holds. Returns instructions + reads served.
    fn serve(&self, core: &mut Core<S, R>, done: Option<&dyn Fn() -> bool>) -> usize {
        let mut served = self.serve_reads(core);
        loop {
            let n = self.run_batch(core);
            served += n + self.serve_reads(core);
            match done {
                _ if n == 0 => break,
                None => break,
                Some(done) if done() => break,
                Some(_) => {}
            }
        }
        served
    }

    /// Takes up to one batch from the mailbox, executes it, publishes the
    /// committed state, then reports failures and delivers emitted signals
    /// and replies, instruction by instruction.
    fn run_batch(&self, core: &mut Core<S, R>) -> usize {
        let mut done = batch_buffer::take();
        let (mut single, batched) = {
            let mut mailbox = lock(&self.mailbox);
            let n = self.rt.batch.min(mailbox.queue.len());
            let single = if n == 1 {
                mailbox.queue.pop_front()
            } else {
                None
            };
            if n > 1 {
                lock(&self.in_batch).extend(mailbox.queue.drain(..n).rev());
            }
            self.queued.store(mailbox.queue.len(), Ordering::SeqCst);
            (single, n > 1)
        };
        core.results.clear();
        core.failures.clear();
        loop {
            // A batch is taken from `in_batch` one instruction at a time, so
            // that a stop meanwhile takes the rest (the guard is released
            // before the instruction runs).
            let next = match single.take() {
                Some(ins) => Some(ins),
                None if batched => lock(&self.in_batch).pop(),
                None => None,
            };
            let Some(mut ins) = next else { break };
            let first = self.execute(core, done.len(), &mut ins);
            core.results.push(first);
            done.push(ins);
        }
        let n = done.len();
        if n == 0 {
            batch_buffer::put(done);
            return 0;
        }
        self.publish_snapshot(core);
        // Last first, so each instruction's failures are `pop`s off the end.
        core.failures.reverse();
        for (index, (ins, first)) in done.iter_mut().zip(core.results.drain(..)).enumerate() {
            let is_call = ins.reply.is_some();
            let mut first_error = None;
            while let Some(f) = core.failures.pop_if(|f| f.index == index) {
                self.rt.report_failure(&Failure {
                    agent: self.id,
                    route: f.route,
                    signal: ins.signal(),
                    error: &f.error,
                    call: is_call,
                });
                first_error.get_or_insert(f.error);
            }
            self.flush_outbound(ins);
            if let Some(to) = ins.reply.take()
                && let Some(slot) = to.sink.as_any().downcast_ref::<CallSlot<R>>()
            {
                let result = match (first_error, first) {
                    (Some(e), _) => Err(e),
                    (None, Some(reply)) => Ok(reply),
                    (None, None) => Err(ActionError::message(
                        "the signal's route resolved to no action",
                    )),
                };
                slot.fulfil(to.ticket, result.map_err(CallError::Action));
            }
        }
        let pool_kind = self.rt.strategy.pool;
        for ins in done.drain(..) {
            pool::give_back(pool_kind, ins);
        }
        batch_buffer::put(done);
        self.rt
            .counters
            .processed
            .fetch_add(n as u64, Ordering::Release);
        n
    }

    /// Publishes the committed state to the fast-path snapshot. Cloning the
    /// state runs user code: if it panics, the snapshot is marked stale and
    /// reads go through the read lane until a publish succeeds, so a read
    /// never misses a commit.
    fn publish_snapshot(&self, core: &mut Core<S, R>) {
        if !self.view.is_snapshot() {
            return;
        }
        let Core { state, spare, .. } = core;
        let published = guarded(|| {
            self.view.publish(state, spare);
            Ok(())
        });
        if published.is_err() {
            self.view.mark_stale();
        }
    }

    /// Runs every resolved action of `ins`, each atomically; failures go to
    /// `core.failures` under `index`. Returns the first route's reply.
    fn execute(&self, core: &mut Core<S, R>, index: usize, ins: &mut Instruction) -> Option<R> {
        let mut first: Option<R> = None;
        for i in 0..ins.routes.len() {
            ins.set_current(i);
            let resolved = ins.routes[i];
            let Some(action) = self.kind.actions.get(resolved.action) else {
                continue;
            };
            let mark = ins.outbound.len();
            let Core { state, undo, .. } = &mut *core;
            // One guard around both pieces of user code: the rollback copy
            // (the state's `Clone`) and the action.
            let mut saved = false;
            let outcome = guarded(|| {
                match undo.as_mut() {
                    Some(copy) => copy.clone_from(state),
                    None => *undo = Some(state.clone()),
                }
                saved = true;
                action.run(state, ins)
            });
            if outcome.is_err() {
                match undo.as_mut() {
                    Some(copy) if saved => std::mem::swap(state, copy),
                    // The copy itself failed: the action never ran and the
                    // state is untouched; a half-done copy is discarded.
                    _ => *undo = None,
                }
            }
            match outcome {
                Ok(reply) => {
                    if i == 0 {
                        first = Some(reply);
                    }
                }
                Err(error) => {
                    ins.outbound.truncate(mark);
                    core.failures.push(PendingFailure {
                        index,
                        route: resolved.route,
                        error,
                    });
                }
            }
        }
        first
    }

    fn flush_outbound(&self, ins: &mut Instruction) {
        for out in ins.outbound.drain(..) {
            match out {
                Outbound::Publish(signal) => self.rt.publish_emitted(self.id, signal),
                Outbound::Send(to, signal) => {
                    if let Err(e) = to.send(signal) {
                        self.rt
                            .record_undelivered(UndeliveredFrom::Agent(self.id), e.into());
                    }
                }
            }
        }
    }

    fn serve_reads(&self, core: &mut Core<S, R>) -> usize {
        if !self.has_reads.load(Ordering::SeqCst) {
            return 0;
        }
        let jobs = {
            let mut reads = lock(&self.reads);
            self.has_reads.store(false, Ordering::SeqCst);
            std::mem::take(&mut *reads)
        };
        let n = jobs.len();
        for job in jobs {
            match job {
                ReadJob::State(slot, ticket) => {
                    // The state's `Clone` is user code: a panic is the read's error.
                    let copy = guarded(|| Ok(Arc::new(core.state.clone())));
                    slot.fulfil(ticket, copy.map_err(QueryError::Action));
                }
                ReadJob::Query {
                    index,
                    signal,
                    slot,
                    ticket,
                } => {
                    slot.fulfil(ticket, self.run_query(index, &core.state, &signal));
                }
            }
        }
        n
    }

    fn run_query(&self, index: u32, state: &S, signal: &Signal) -> Result<R, QueryError> {
        match self.kind.queries.get(index as usize) {
            Some(q) => guarded(|| q.query(state, signal)).map_err(QueryError::Action),
            None => Err(QueryError::NoRoute {
                agent: self.id,
                ty: signal.type_text().clone(),
            }),
        }
    }

    // ----- the public operations (AgentRef forwards here) -----

    pub(crate) fn call(
        self: &Arc<Self>,
        signal: Signal,
        timeout: Duration,
    ) -> Result<R, CallError> {
        if running::contains(self.id) {
            return Err(CallError::Reentrant { agent: self.id });
        }
        let pool_kind = self.rt.strategy.pool;
        let slot = reply_pool::lease::<Result<R, CallError>>(pool_kind);
        let ticket = slot.arm();
        let reply = ReplyTo {
            sink: slot.clone(),
            ticket,
        };
        let me = self.clone();
        if let Err(e) = self.accept(signal, Some(reply), move || me) {
            reply_pool::release(pool_kind, slot);
            return Err(CallError::Send(e));
        }
        let deadline = deadline_after(timeout);
        let result = if self.rt.deterministic {
            // Driving processes the call unless another thread holds this
            // agent for the moment (e.g. serving a read): then drive again.
            slot.wait(ticket, deadline, || self.rt.drive_until_idle() > 0)
        } else {
            let done = || slot.is_ready(ticket);
            slot.wait(ticket, deadline, || self.help(&done))
        };
        let result = result.unwrap_or(Err(CallError::Timeout { after: timeout }));
        reply_pool::release(pool_kind, slot);
        result
    }

    pub(crate) fn state(self: &Arc<Self>) -> Result<Arc<S>, QueryError> {
        if running::contains(self.id) {
            return Err(QueryError::Reentrant { agent: self.id });
        }
        if let Some(snapshot) = self.view.load() {
            return Ok(snapshot);
        }
        let pool_kind = self.rt.strategy.pool;
        let slot = reply_pool::lease::<Result<Arc<S>, QueryError>>(pool_kind);
        let ticket = slot.arm();
        self.push_read(ReadJob::State(slot.clone(), ticket));
        let result = self.await_read(&slot, ticket);
        reply_pool::release(pool_kind, slot);
        result
    }

    pub(crate) fn query(self: &Arc<Self>, signal: Signal) -> Result<R, QueryError> {
        if running::contains(self.id) {
            return Err(QueryError::Reentrant { agent: self.id });
        }
        let mut slots = Vec::new();
        self.kind
            .query_routes
            .candidates(signal.type_text(), &mut slots);
        let Some(&first) = slots.first() else {
            return Err(QueryError::NoRoute {
                agent: self.id,
                ty: signal.type_text().clone(),
            });
        };
        let Some(index) = self
            .kind
            .query_routes
            .router
            .slot(first)
            .map(|r| *r.target())
        else {
            return Err(QueryError::NoRoute {
                agent: self.id,
                ty: signal.type_text().clone(),
            });
        };
        if let Some(answer) = self
            .view
            .with(|state| self.run_query(index, state, &signal))
        {
            return answer;
        }
        let pool_kind = self.rt.strategy.pool;
        let slot = reply_pool::lease::<Result<R, QueryError>>(pool_kind);
        let ticket = slot.arm();
        self.push_read(ReadJob::Query {
            index,
            signal,
            slot: slot.clone(),
            ticket,
        });
        let result = self.await_read(&slot, ticket);
        reply_pool::release(pool_kind, slot);
        result
    }

    fn push_read(&self, job: ReadJob<S, R>) {
        lock(&self.reads).push(job);
        self.has_reads.store(true, Ordering::SeqCst);
    }

    /// Waits for a read: serves the read lane itself whenever the agent is
    /// not running elsewhere (always, in deterministic mode), so a read never
    /// needs a worker to wake up.
    fn await_read<T: Send>(
        &self,
        slot: &ReplySlot<Result<T, QueryError>>,
        ticket: u64,
    ) -> Result<T, QueryError> {
        let timeout = self.rt.default_timeout;
        let help = || match try_lock(&self.core) {
            Some(mut core) => self.serve_reads(&mut core) > 0,
            None => false,
        };
        slot.wait(ticket, deadline_after(timeout), help)
            .unwrap_or(Err(QueryError::Timeout { after: timeout }))
    }

    pub(crate) fn send(self: &Arc<Self>, signal: Signal) -> Result<(), SendError> {
        let me = self.clone();
        self.accept(signal, None, move || me)
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub(crate) fn mailbox_len(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }
}

fn unreachable_signal() -> ! {
    unreachable!("an enqueued instruction always holds its signal")
}

impl<S, R> AgentTask for AgentCell<S, R>
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    fn id(&self) -> AgentId {
        self.id
    }

    fn run(self: Arc<Self>, blocking: bool) -> Option<Arc<dyn AgentTask>> {
        if !self.take_turn(blocking) {
            return Some(self);
        }
        let me = self.clone();
        self.after_run(move || me);
        None
    }

    fn quiesce(&self) {
        // A thread inside an agent's turn does not wait: the agent it waits
        // for might be waiting for it (two agents stopping each other).
        if !running::any() {
            drop(lock(&self.core));
        }
    }

    fn deliver(&self, me: &Arc<dyn AgentTask>, signal: Signal) -> Result<(), SendError> {
        self.accept(signal, None, || me.clone())
    }

    fn close(&self, reason: DeadLetterReason) -> Vec<DeadLetter> {
        let drained = {
            let mut mailbox = lock(&self.mailbox);
            if mailbox.closed.is_some() {
                return Vec::new();
            }
            mailbox.closed = Some(reason);
            self.closed.store(true, Ordering::SeqCst);
            self.queued.store(0, Ordering::SeqCst);
            // The rest of a running batch comes first: it was queued earlier.
            let rest = std::mem::take(&mut *lock(&self.in_batch));
            let mut drained = std::mem::take(&mut mailbox.queue);
            for ins in rest {
                drained.push_front(ins);
            }
            drained
        };
        let pool_kind = self.rt.strategy.pool;
        let mut letters = Vec::with_capacity(drained.len());
        for mut ins in drained {
            let was_call = ins.reply.is_some();
            if let Some(to) = ins.reply.take() {
                let error = match reason {
                    DeadLetterReason::AgentStopped => CallError::Stopped { agent: self.id },
                    DeadLetterReason::Shutdown => CallError::ShutDown,
                };
                to.sink.fail(to.ticket, error);
            }
            if let Some(signal) = ins.take_signal() {
                letters.push(DeadLetter {
                    agent: self.id,
                    signal,
                    reason,
                    was_call,
                });
            }
            pool::give_back(pool_kind, ins);
        }
        self.rt
            .counters
            .dead_lettered
            .fetch_add(letters.len() as u64, Ordering::Release);
        letters
    }

    fn is_closed(&self) -> bool {
        self.is_stopped()
    }
}
