//! Admission: a signal is routed, wrapped in an instruction and taken into
//! the mailbox, or handed back inside a [`SendError`]. `call` also runs the
//! agent on the caller's thread when nobody else is running it.

use super::cell::{AgentCell, AgentTask, CallSlot, lock};
use super::on_thread;
use super::turn::Waiting;
use crate::agent::error::{CallError, SendError, SendErrorKind};
use crate::exec::Context;
use crate::exec::claim::Notified;
use crate::exec::reply::deadline_after;
use crate::exec::reply::pool as reply_pool;
use crate::instruction::ReplyTo;
use crate::instruction::pool;
use crate::router::memo::MemoOutcome;
use crate::signal::Signal;
use crate::vocab::report::DeadLetterReason;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// With intake not open: whether a signal sent now is refused. A shutdown
/// refuses everything; a graceful drain refuses only what comes from
/// outside the runtime, and takes what its turns, timers and async work
/// send, so the work already accepted runs to its end.
#[cold]
pub(crate) fn refuses_now(rt: &Context) -> bool {
    rt.is_shutting_down() || !(on_thread::in_any_turn() || crate::exec::is_internal())
}

impl<S, R> AgentCell<S, R>
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    /// Routes and enqueues a sent `signal`, then makes sure someone will run
    /// the agent (`me` is this agent, for the run queue): a worker, or this
    /// thread (see [`notify_sent`](Self::notify_sent)).
    pub(crate) fn accept(
        &self,
        signal: Signal,
        me: impl FnOnce() -> Arc<dyn AgentTask>,
    ) -> Result<(), SendError> {
        self.enqueue(signal, None)?;
        self.notify_sent(me);
        Ok(())
    }

    /// Announces enqueued work; schedules the agent if it was idle.
    pub(super) fn notify(&self, me: impl FnOnce() -> Arc<dyn AgentTask>) {
        if self.claim.notify() == Notified::Schedule {
            self.schedule(me);
        }
    }

    /// Announces a sent signal. If the agent was idle and every worker
    /// sleeps, runs its turn on this thread (`run_on_sender`): the claim
    /// this thread just set to "notified" becomes "running", as a worker's
    /// would when it pops the entry, so nobody else can run it meanwhile.
    fn notify_sent(&self, me: impl FnOnce() -> Arc<dyn AgentTask>) {
        if self.claim.notify() != Notified::Schedule {
            return;
        }
        if self.rt.config.run_on_sender
            && self.rt.run_queue.all_parked()
            && on_thread::may_run_for_send()
            && self.claim.claim_entry()
        {
            let started = Instant::now();
            self.run_claimed(None);
            self.release(self.has_work(), me);
            on_thread::ran_for_send(started);
            return;
        }
        self.schedule(me);
    }

    /// Routes `signal`, takes an instruction from the pool and puts it in the
    /// mailbox, without announcing it.
    #[inline]
    pub(super) fn enqueue(&self, signal: Signal, reply: Option<ReplyTo>) -> Result<(), SendError> {
        self.enqueue_as::<false>(signal, reply)
    }

    /// [`enqueue`](Self::enqueue), into a slot reserved before if
    /// `reserved` (see [`reserve_slot`](Self::reserve_slot)); the slot is
    /// used or released whatever happens.
    pub(super) fn enqueue_as<const RESERVED: bool>(
        &self,
        signal: Signal,
        reply: Option<ReplyTo>,
    ) -> Result<(), SendError> {
        let reserved = RESERVED;
        if !self.rt.intake_open() && refuses_now(&self.rt) {
            if reserved {
                self.release_slot();
            }
            return Err(self.refuse(SendErrorKind::ShuttingDown, signal));
        }
        let pool_kind = self.rt.config.strategy.pool;
        let mut ins = pool::checkout(pool_kind);
        let resolved = self.routes.load().resolve(&signal, &mut ins.routes);
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
                if reserved {
                    self.release_slot();
                }
                let kind = SendErrorKind::PredicatePanicked {
                    route: panic.route,
                    message: panic.message,
                };
                return Err(self.refuse(kind, signal));
            }
        }
        if ins.routes.is_empty() {
            pool::give_back(pool_kind, ins);
            if reserved {
                self.release_slot();
            }
            return Err(self.refuse(SendErrorKind::NoRoute, signal));
        }
        if let Some(to) = &reply {
            let first = ins.routes[0].action;
            if self.kind.actions.get(first).is_some_and(|a| !a.replies()) && !to.sink.is_receipt() {
                pool::give_back(pool_kind, ins);
                let action = self.kind.actions.name(first).to_owned();
                return Err(self.refuse(SendErrorKind::SendOnly { action }, signal));
            }
        }
        ins.load(self.id, signal);
        ins.reply = reply;
        let refused = {
            let mut inbox = lock(&self.mailbox.queue);
            if reserved {
                inbox.reserved -= 1;
            }
            if let Some(reason) = inbox.closed {
                match reason {
                    DeadLetterReason::AgentStopped => SendErrorKind::Stopped,
                    DeadLetterReason::Shutdown => SendErrorKind::ShuttingDown,
                }
            } else if !reserved
                && self.mailbox.pending.get(Ordering::Relaxed) + inbox.reserved >= self.capacity
            {
                SendErrorKind::MailboxFull {
                    capacity: self.capacity,
                }
            } else {
                // Counted before the instruction becomes visible to a runner,
                // so `processed` can never overtake `accepted`.
                self.rt.counters.accepted.add(1, Ordering::Relaxed);
                self.mailbox.pending.add_one();
                self.kind.obs.accepted();
                ins.origin.capture();
                inbox.queue.push_back(ins);
                return Ok(());
            }
        };
        // Refused: hand the signal back and return the instruction.
        if matches!(refused, SendErrorKind::MailboxFull { .. }) {
            self.rt
                .counters
                .refused_full
                .fetch_add(1, Ordering::Relaxed);
        }
        let signal = ins.take_signal();
        ins.reply = None;
        pool::give_back(pool_kind, ins);
        match signal {
            Some(signal) => Err(self.refuse(refused, signal)),
            None => unreachable!("an enqueued instruction always holds its signal"),
        }
    }

    /// Reserves a mailbox slot for `signal` (`exec::reserve`): refused as a
    /// send would be (shutting down, no route, stopped, full), otherwise
    /// the slot counts against the capacity until
    /// [`enqueue_as`](Self::enqueue_as) uses it or
    /// [`release_slot`](Self::release_slot) gives it back.
    pub(super) fn reserve_slot(&self, signal: &Signal) -> Result<(), SendErrorKind> {
        if !self.rt.intake_open() && refuses_now(&self.rt) {
            return Err(SendErrorKind::ShuttingDown);
        }
        let pool_kind = self.rt.config.strategy.pool;
        let mut ins = pool::checkout(pool_kind);
        let resolved = self.routes.load().resolve(signal, &mut ins.routes);
        let routed = !ins.routes.is_empty();
        pool::give_back(pool_kind, ins);
        match resolved {
            Err(panic) => {
                return Err(SendErrorKind::PredicatePanicked {
                    route: panic.route,
                    message: panic.message,
                });
            }
            Ok(_) if !routed => return Err(SendErrorKind::NoRoute),
            Ok(_) => {}
        }
        let mut inbox = lock(&self.mailbox.queue);
        if let Some(reason) = inbox.closed {
            return Err(match reason {
                DeadLetterReason::AgentStopped => SendErrorKind::Stopped,
                DeadLetterReason::Shutdown => SendErrorKind::ShuttingDown,
            });
        }
        if self.mailbox.pending.get(Ordering::Relaxed) + inbox.reserved >= self.capacity {
            drop(inbox);
            self.rt
                .counters
                .refused_full
                .fetch_add(1, Ordering::Relaxed);
            return Err(SendErrorKind::MailboxFull {
                capacity: self.capacity,
            });
        }
        inbox.reserved += 1;
        Ok(())
    }

    /// Gives back a reserved slot unused; wakes senders waiting for space.
    pub(super) fn release_slot(&self) {
        lock(&self.mailbox.queue).reserved -= 1;
        if self.mailbox.pending.is_waiting() {
            self.rt.space.wake(self.id.0, &self.mailbox.pending);
        }
    }

    /// The error of a refused send, reported to the observability hooks.
    #[cold]
    fn refuse(&self, kind: SendErrorKind, signal: Signal) -> SendError {
        let reason = match &kind {
            SendErrorKind::MailboxFull { .. } => "full",
            SendErrorKind::NoRoute => "no_route",
            SendErrorKind::Stopped => "stopped",
            SendErrorKind::ShuttingDown => "shutting_down",
            SendErrorKind::PredicatePanicked { .. } => "predicate_panicked",
            SendErrorKind::SendOnly { .. } => "send_only",
        };
        self.kind.obs.refused(self.id.0, reason, signal.ty());
        SendError::new(self.id, kind, signal)
    }

    pub(crate) fn send(self: &Arc<Self>, signal: Signal) -> Result<(), SendError> {
        self.accept(signal, || self.clone())
    }

    /// Enqueues `signal` with a reply slot and waits for the reply. If nobody
    /// runs the agent, the caller claims it and runs it on its own thread
    /// (nothing is scheduled and no thread is woken); otherwise it waits,
    /// claiming the agent whenever it falls idle. In deterministic mode the
    /// caller also drives other agents, one run-queue entry at a time, and
    /// returns as soon as its reply is there.
    pub(crate) fn call(
        self: &Arc<Self>,
        signal: Signal,
        timeout: Duration,
    ) -> Result<R, CallError> {
        if on_thread::is_running(self.id) {
            return Err(CallError::Reentrant { agent: self.id });
        }
        // From inside another agent's turn: that agent now waits on this
        // one; refuse a call that would close a cycle of such waits.
        let _wait = match on_thread::current() {
            Some(caller) => Some(
                self.rt
                    .begin_call_wait(caller, self.id)
                    .map_err(|agents| CallError::Cycle { agents })?,
            ),
            None => None,
        };
        let (slot, ticket) = self.start_call(signal)?;
        let deadline = deadline_after(timeout);
        let done = || slot.is_ready(ticket);
        let waiting = Waiting {
            done: &done,
            sink: Arc::as_ptr(&slot).cast::<()>(),
            ticket,
        };
        let result = if self.rt.config.deterministic {
            slot.wait(ticket, deadline, || {
                self.help(&waiting) || self.rt.drive_one()
            })
        } else {
            slot.wait(ticket, deadline, || self.help(&waiting))
        };
        let result = result.unwrap_or(Err(CallError::Timeout { after: timeout }));
        reply_pool::release(self.rt.config.strategy.pool, slot);
        result
    }

    /// Enqueues `signal` with a fresh reply ticket, then runs the agent on
    /// this thread (up to that signal) if nobody runs it, or announces it.
    /// Shared by `call` and `call_async`.
    pub(super) fn start_call(
        self: &Arc<Self>,
        signal: Signal,
    ) -> Result<(Arc<CallSlot<R>>, u64), CallError> {
        let pool_kind = self.rt.config.strategy.pool;
        let slot = reply_pool::lease::<Result<R, CallError>>(pool_kind);
        let ticket = slot.arm();
        let reply = ReplyTo {
            sink: slot.clone(),
            ticket,
        };
        if let Err(e) = self.enqueue(signal, Some(reply)) {
            reply_pool::release(pool_kind, slot);
            return Err(CallError::Send(e));
        }
        let done = || slot.is_ready(ticket);
        let waiting = Waiting {
            done: &done,
            sink: Arc::as_ptr(&slot).cast::<()>(),
            ticket,
        };
        if self.claim_inline() {
            self.run_claimed(Some(&waiting));
            self.release_inline(|| self.clone());
        } else {
            self.notify(|| self.clone());
        }
        Ok((slot, ticket))
    }

    /// Runs the agent on this thread until `done()` holds or it has no more
    /// work, if nobody else runs it. Returns whether it served anything.
    pub(super) fn help(self: &Arc<Self>, waiting: &Waiting<'_>) -> bool {
        if !self.claim_inline() {
            return false;
        }
        let served = self.run_claimed(Some(waiting));
        self.release_inline(|| self.clone());
        served > 0
    }
}
