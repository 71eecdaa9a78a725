//! The agent itself: what it holds, and how the other files of this module
//! share it.
//!
//! One file per job:
//! * `admission.rs`: routing a signal and taking it into the mailbox
//!   (`send`, `call`), or handing it back (full, stopped, shutting down).
//! * `turn.rs`: a turn: take a batch, run each action atomically, commit;
//!   before an instruction's effects leave the agent, publish the snapshot,
//!   then report failures, deliver emits and the reply.
//! * `read_lane.rs`: `state()` and queries (from the snapshot with
//!   `fast-path`, otherwise as messages served between instructions).
//! * `close.rs`: stop and shutdown: close the mailbox, hand back the rest.
//! * `on_thread.rs`: what this thread is running (reentrancy).
//!
//! ## Concurrency protocol
//! Who runs the agent is decided by one atomic word, the
//! [`Claim`](crate::exec::claim::Claim) (idle / notified / running): a worker
//! that pops the agent's run-queue entry, a caller helping its own `call`
//! along, and the deterministic driver all claim it the same way, and
//! whoever loses leaves instead of waiting. A sender enqueues under the
//! mailbox lock and then notifies the claim, which tells it whether to push
//! a run-queue entry.
//!
//! ## Lock order
//! `mailbox`, then `in_batch` (`close` takes both; everything else takes one
//! at a time). `core` is only ever locked by the claim holder, so it is
//! never contended; `reads` is a leaf. No lock is held while user code runs,
//! except `core`, which only the running thread holds.

use super::AgentId;
use super::route_cell::RouteCell;
use super::routes::{ActionTarget, RouteTable};
use crate::action::{ActionError, ActionSet, Query};
use crate::agent::error::{CallError, QueryError, SendError};
pub(crate) use crate::exec::AgentTask;
use crate::exec::claim::{Claim, Released};
use crate::exec::receipt::Receipt;
use crate::exec::reply::ReplySlot;
use crate::exec::space::Pending;
use crate::exec::{Context, Runnable};
use crate::imp::observe::KindObs;
use crate::imp::snapshot::StateView;
use crate::instruction::{Instruction, ReplyTo};
use crate::router::RouteId;
use crate::signal::{Signal, Text};
use crate::vocab::report::{DeadLetter, DeadLetterReason};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// An agent type, compiled once from its spec and shared by its agents.
pub(crate) struct AgentKind<S, R> {
    /// Spans and metrics of this agent type (features `tracing`, `metrics`).
    pub obs: KindObs,
    /// How a failed action is undone.
    pub atomicity: super::Atomicity,
    /// The state a panicking action restarts from when the restart policy
    /// says `Initial` (`None`: the last committed state).
    pub restart_initial: Option<S>,
    /// What an emit that cannot be delivered does.
    pub undeliverable: super::Undeliverable,
    /// Restarts allowed within a window; one more panic stops the agent.
    pub restart_limit: Option<(u32, std::time::Duration)>,
    pub name: Option<Text>,
    pub actions: ActionSet<S, R>,
    pub queries: Vec<Arc<dyn Query<S, R>>>,
    pub routes: Arc<RouteTable<ActionTarget>>,
    pub query_routes: RouteTable<u32>,
}

pub(crate) struct AgentCell<S, R> {
    pub(super) id: AgentId,
    /// The key it was spawned under (`Runtime::spawn_keyed`).
    pub(crate) key: Option<Text>,
    pub(crate) rt: Arc<Context>,
    pub(crate) kind: Arc<AgentKind<S, R>>,
    pub(crate) routes: RouteCell<ActionTarget>,
    /// Who runs the agent (see the module docs).
    pub(super) claim: Claim,
    pub(super) closed: AtomicBool,
    /// What senders touch: the queue and its count. Not cache-padded: 128
    /// bytes of padding per agent would cost more (memory per idle agent)
    /// than the false sharing it saves.
    pub(super) mailbox: Mailbox,
    /// The rest of the batch being run, last first (so the next is a `pop`).
    /// Separate from the mailbox so that a stop can take it while a turn
    /// runs: batching never changes which signals a stop hands back.
    pub(super) in_batch: Mutex<Vec<Box<Instruction>>>,
    pub(super) reads: Mutex<Vec<ReadJob<S, R>>>,
    pub(super) has_reads: AtomicBool,
    /// The state; locked only by the claim holder.
    pub(super) core: Mutex<Core<S>>,
    pub(super) view: StateView<S>,
    pub(super) capacity: usize,
    pub(crate) memo_hits: AtomicU64,
    /// Deterministic mode only: this agent's entries in the run queue, so
    /// that a caller or reader that ran it inline does not give it a second
    /// entry (see [`release_inline`](Self::release_inline)).
    entries: AtomicUsize,
    pub(crate) memo_misses: AtomicU64,
    /// This agent, for what outlives a turn (async work, timers an action
    /// schedules); weak, so the agent does not keep itself alive.
    pub(super) me: Weak<Self>,
}

pub(super) struct Mailbox {
    pub queue: Mutex<Inbox>,
    /// Accepted and not yet started (queued or in a taken batch): what the
    /// capacity rule counts, identically with and without batching.
    /// With the bit that says senders wait for space (`exec::space`).
    pub pending: Pending,
}

pub(super) struct Inbox {
    pub queue: VecDeque<Box<Instruction>>,
    pub closed: Option<DeadLetterReason>,
    /// Slots reserved for required emits of actions not yet committed
    /// (`exec::reserve`): counted against the capacity with `pending`.
    pub reserved: usize,
}

pub(super) struct Core<S> {
    pub state: S,
    /// The state before the running action, to roll back to on failure.
    pub undo: Option<S>,
    /// The previous snapshot, reused by the next publish (`fast-path`).
    pub spare: Option<Arc<S>>,
    /// The failed action runs of the instruction being finished.
    pub failures: Vec<PendingFailure>,
    /// A caller's turn ended its batch early: the next turn continues the
    /// rest in `in_batch` before taking anything new (kept here, where only
    /// the claim holder looks, instead of locking `in_batch` every turn).
    pub continue_batch: bool,
    /// Restart-limit bookkeeping, allocated at the first panic of an agent
    /// whose policy has a limit (an idle agent pays one pointer).
    pub panics: Option<Box<super::supervision::PanicLog>>,
}

/// An action run that failed, reported when its instruction is finished.
pub(super) struct PendingFailure {
    pub route: RouteId,
    pub error: ActionError,
}

pub(super) type StateSlot<S> = ReplySlot<Result<Arc<S>, QueryError>>;
pub(super) type QuerySlot<R> = ReplySlot<Result<R, QueryError>>;
pub(super) type CallSlot<R> = ReplySlot<Result<R, CallError>>;

/// A read waiting in the read lane.
pub(super) enum ReadJob<S, R> {
    State(Arc<StateSlot<S>>, u64),
    Query {
        index: u32,
        signal: Signal,
        slot: Arc<QuerySlot<R>>,
        ticket: u64,
    },
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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
        rt: Arc<Context>,
        kind: Arc<AgentKind<S, R>>,
        state: S,
        capacity: usize,
        key: Option<Text>,
        me: Weak<Self>,
    ) -> Self {
        let view = StateView::new(rt.config.strategy.fast_path, &state);
        AgentCell {
            id,
            key,
            routes: RouteCell::new(kind.routes.clone()),
            kind,
            claim: Claim::new(),
            closed: AtomicBool::new(false),
            mailbox: Mailbox {
                queue: Mutex::new(Inbox {
                    queue: VecDeque::new(),
                    closed: None,
                    reserved: 0,
                }),
                pending: Pending::default(),
            },
            in_batch: Mutex::new(Vec::new()),
            reads: Mutex::new(Vec::new()),
            has_reads: AtomicBool::new(false),
            core: Mutex::new(Core {
                state,
                undo: None,
                spare: None,
                failures: Vec::new(),
                continue_batch: false,
                panics: None,
            }),
            view,
            capacity,
            memo_hits: AtomicU64::new(0),
            entries: AtomicUsize::new(0),
            memo_misses: AtomicU64::new(0),
            me,
            rt,
        }
    }

    /// Pushes a run-queue entry for this agent.
    pub(super) fn schedule(&self, me: impl FnOnce() -> Arc<dyn AgentTask>) {
        if self.rt.config.deterministic {
            self.entries.fetch_add(1, Ordering::SeqCst);
        }
        let entry: Arc<dyn Runnable> = me();
        self.rt.run_queue.push(entry);
    }

    /// Lets go of a claim a caller or reader took on its own thread.
    ///
    /// In deterministic mode an agent that still has an entry in the run
    /// queue keeps it and gets no second one: its turns stay where its work
    /// put them. Otherwise a read, which claims the agent only without
    /// `fast-path`, would add an entry and move the agent's next turn, and
    /// the order of turns (hence which emitted signal meets a full mailbox,
    /// and in which order an agent hears from several senders) would depend
    /// on the features. The claim is released first and the entries counted
    /// after (both `SeqCst`, against the driver's count-then-claim in
    /// [`run_entry`](Runnable::run_entry)): an entry the driver popped and
    /// dropped as stale while this thread held the claim (a reader on
    /// another thread) is then seen as gone, and replaced. Threaded mode
    /// cannot tell, so it requeues as usual.
    pub(super) fn release_inline(&self, me: impl FnOnce() -> Arc<dyn AgentTask>) {
        if !self.rt.config.deterministic {
            self.release(self.has_work(), me);
            return;
        }
        let released = self.claim.release(self.has_work());
        if released == Released::Requeue && self.entries.load(Ordering::SeqCst) == 0 {
            self.schedule(me);
        }
        // After the requeue: a driver waiting for this release (see
        // `run_entry`, `drive_until_idle`) then finds the entry.
        self.rt.released();
        self.rt.inline_released();
    }

    /// Claims the agent to run it on this thread (a caller or a reader),
    /// unless someone runs it; pair with [`release_inline`](Self::release_inline).
    pub(super) fn claim_inline(&self) -> bool {
        let claimed = self.claim.claim_inline();
        if claimed {
            self.rt.inline_claimed();
        }
        claimed
    }

    /// Lets go of the claim; requeues the agent if work is waiting.
    pub(super) fn release(&self, left_over: bool, me: impl FnOnce() -> Arc<dyn AgentTask>) {
        let released = self.claim.release(left_over);
        self.rt.released();
        if released == Released::Requeue {
            self.schedule(me);
        }
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Signals accepted and not yet started.
    pub(crate) fn mailbox_len(&self) -> usize {
        self.mailbox.pending.get(Ordering::Acquire)
    }
}

impl<S, R> Runnable for AgentCell<S, R>
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    fn run_entry(self: Arc<Self>) {
        if self.rt.config.deterministic {
            self.entries.fetch_sub(1, Ordering::SeqCst);
        }
        if !self.claim.claim_entry() {
            // Stale: whoever claimed it hands it on. In deterministic mode
            // that is a reader or caller on another thread holding it inline:
            // wait for its release, which requeues the agent if work is left
            // (it sees this entry gone), so `run_until_idle` does not return
            // with the agent's signals unprocessed.
            if self.rt.config.deterministic
                && self.claim.is_running()
                && !super::on_thread::is_running(self.id)
            {
                self.rt.wait_until_quiet(|| self.claim.is_running());
            }
            return;
        }
        self.run_claimed(None);
        let me = self.clone();
        self.release(self.has_work(), move || me);
    }
}

impl<S, R> AgentTask for AgentCell<S, R>
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    fn id(&self) -> AgentId {
        self.id
    }

    fn quiesce(&self) {
        self.wait_quiet();
    }

    fn deliver(&self, me: &Arc<dyn AgentTask>, signal: Signal) -> Result<(), SendError> {
        self.accept(signal, || me.clone())
    }

    fn close(&self, reason: DeadLetterReason) -> Vec<DeadLetter> {
        self.close_mailbox(reason)
    }

    fn is_closed(&self) -> bool {
        self.is_stopped()
    }

    fn reserve(&self, signal: &Signal) -> Result<(), crate::agent::error::SendErrorKind> {
        self.reserve_slot(signal)
    }

    fn unreserve(&self) {
        self.release_slot();
    }

    fn deliver_reserved(&self, me: &Arc<dyn AgentTask>, signal: Signal) -> Result<(), SendError> {
        self.enqueue_as::<true>(signal, None)?;
        self.notify(|| me.clone());
        Ok(())
    }

    fn deliver_settled(
        &self,
        me: &Arc<dyn AgentTask>,
        signal: Signal,
        receipt: &Arc<Receipt>,
    ) -> Result<(), SendError> {
        receipt.add();
        let to = ReplyTo {
            sink: receipt.clone(),
            ticket: 0,
        };
        if let Err(refused) = self.enqueue(signal, Some(to)) {
            receipt.cancel();
            return Err(refused);
        }
        self.notify(|| me.clone());
        Ok(())
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}
