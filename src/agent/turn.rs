//! A turn: what the claim holder does with the agent.
//!
//! Reads waiting in the read lane are served first, then one batch (up to
//! `batch_size` instructions with `batching`, otherwise one). Each action
//! runs atomically against the state (rolled back on error or panic). When
//! an instruction has effects outside the agent (emitted or sent signals, a
//! reply, a failure to report), the committed state is published to the
//! snapshot (`fast-path`) first and the effects are delivered before the
//! next instruction starts: a caller that has its reply reads its own write,
//! and batching never reorders what other agents observe. Instructions
//! without outside effects share one publish at the end of the batch.

use super::cell::{AgentCell, CallSlot, Core, PendingFailure, lock};
use super::on_thread;
use super::{Atomicity, Undeliverable};
use crate::action::{ActionError, guarded};
use crate::agent::error::{CallError, ScheduleError, SendError, SendErrorKind};
use crate::exec::AgentAddr;
use crate::exec::reserve::{Receiver, Reservation, Reserved};
use crate::imp::observe::InstructionInfo;
use crate::instruction::pool;
use crate::instruction::{Instruction, Outbound};
use crate::signal::Signal;
use crate::signal::SignalId;
use crate::vocab::report::{DeliveryFailure, Failure, UndeliveredFrom};
use std::sync::atomic::Ordering;

/// A caller running the agent on its own thread, waiting for one reply.
pub(crate) struct Waiting<'a> {
    /// Whether the reply is there.
    pub done: &'a dyn Fn() -> bool,
    /// The caller's reply slot (its address) and ticket: marks its
    /// instruction.
    pub sink: *const (),
    pub ticket: u64,
}

impl Waiting<'_> {
    fn is_mine(&self, ins: &Instruction) -> bool {
        ins.reply.as_ref().is_some_and(|to| {
            to.ticket == self.ticket && std::sync::Arc::as_ptr(&to.sink).cast::<()>() == self.sink
        })
    }
}

impl<S, R> AgentCell<S, R>
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    /// Whether anything waits to be served (signals or reads).
    pub(super) fn has_work(&self) -> bool {
        self.mailbox.pending.get(Ordering::Acquire) > 0 || self.has_reads.load(Ordering::Acquire)
    }

    /// Serves turns on this thread while holding the claim: one turn
    /// (`caller == None`, a worker), or, for a caller, until its reply is
    /// there or nothing is left. A caller's batch ends right after the
    /// caller's own instruction (the rest stays taken for the next turn), so
    /// what a call runs does not depend on the batch size. Returns the
    /// instructions and reads served.
    pub(crate) fn run_claimed(&self, caller: Option<&Waiting<'_>>) -> usize {
        let mut core = lock(&self.core);
        let _turn = on_thread::enter(self.id);
        let mut served = 0;
        loop {
            // Work announced from here on sets the bit again, so the release
            // requeues for it; work announced before is seen below.
            self.claim.take_notified();
            let n = self.serve_reads(&mut core) + self.run_batch(&mut core, caller);
            served += n;
            match caller {
                None => break,
                Some(_) if n == 0 => break,
                Some(w) if (w.done)() => break,
                Some(_) => {}
            }
        }
        served
    }

    /// Takes up to one batch from the mailbox and runs it, one instruction
    /// at a time: execute, then, if anything of it leaves the agent (an
    /// emitted or sent signal, a reply, a failure report), publish the
    /// snapshot and deliver those, before the next instruction starts. So
    /// what an agent commits and emits is visible to others in instruction
    /// order, whatever the batch size; only instructions with no outside
    /// effect share one publish, at the end of the batch.
    fn run_batch(&self, core: &mut Core<S>, caller: Option<&Waiting<'_>>) -> usize {
        // The rest of a batch a caller's turn left behind comes first.
        // (If a stop took that rest meanwhile, the continued batch is empty.)
        let (mut single, batched) = if std::mem::take(&mut core.continue_batch) {
            (None, true)
        } else {
            let mut inbox = lock(&self.mailbox.queue);
            let n = self.rt.config.batch.min(inbox.queue.len());
            let single = if n == 1 {
                inbox.queue.pop_front()
            } else {
                None
            };
            if n > 1 {
                lock(&self.in_batch).extend(inbox.queue.drain(..n).rev());
            }
            (single, n > 1)
        };
        let pool_kind = self.rt.config.strategy.pool;
        let mut n = 0;
        // Committed since the snapshot was last published.
        let mut unpublished = false;
        // Instructions of this batch started on this thread and not yet
        // counted `processed` (a shutdown from inside an action counts them).
        let mut uncounted = on_thread::Uncounted::default();
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
            if self.mailbox.pending.take(1) {
                self.rt.space.wake(self.id.0, &self.mailbox.pending);
            }
            core.failures.clear();
            uncounted.started_one();
            let scope = self.kind.obs.instruction(&ins.origin, || InstructionInfo {
                agent: self.id.0,
                signal: ins.signal(),
                action: ins
                    .routes
                    .first()
                    .map_or("", |r| self.kind.actions.name(r.action)),
                batch_index: n,
                call: ins.is_call(),
            });
            let first = self.execute(core, &mut ins);
            n += 1;
            unpublished = true;
            let mine = caller.is_some_and(|w| w.is_mine(&ins));
            if ins.reply.is_some() || !ins.outbound.is_empty() || !core.failures.is_empty() {
                self.publish_snapshot(core);
                unpublished = false;
                self.finish(core, &mut ins, first);
                self.give_up_if_asked(core);
            }
            drop(scope);
            pool::give_back(pool_kind, ins);
            if mine {
                core.continue_batch = batched && !lock(&self.in_batch).is_empty();
                break;
            }
        }
        if n == 0 {
            return 0;
        }
        if unpublished {
            self.publish_snapshot(core);
        }
        // Counted after the publish: whoever sees the count (`wait_idle`)
        // reads a snapshot that holds every counted instruction.
        self.rt.counters.processed.add(n as u64, Ordering::Release);
        drop(uncounted);
        n
    }

    /// After an instruction committed (and the snapshot shows it): reports
    /// its failures, delivers what it emitted, and replies.
    fn finish(&self, core: &mut Core<S>, ins: &mut Instruction, first: Option<R>) {
        // Only failures report it (a virtual call for a receipt).
        let is_call = !core.failures.is_empty() && ins.is_call();
        let mut first_error = None;
        for f in core.failures.drain(..) {
            self.kind
                .obs
                .failed(self.id.0, f.route.get(), &f.error, is_call);
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
        if let Some(to) = ins.reply.take() {
            let Some(slot) = to.sink.as_any().downcast_ref::<CallSlot<R>>() else {
                // A receipt: the outcome, no value.
                to.sink.settle(to.ticket, first_error);
                return;
            };
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

    /// A commit point of the fast-path snapshot: counts the commit, and
    /// copies the state for readers if one looked since the last commit
    /// point (nobody reading costs a counter bump, not a copy). The copy is
    /// user code (the state's `Clone`): if it panics, the snapshot stays
    /// behind the count and reads use the read lane until a copy succeeds,
    /// so a read never misses a commit.
    #[inline]
    fn publish_snapshot(&self, core: &mut Core<S>) {
        if !self.view.is_snapshot() {
            return;
        }
        if self.view.wants_copy() {
            let Core { state, spare, .. } = core;
            let _ = guarded(|| {
                self.view.copy(state, spare);
                Ok(())
            });
        }
        self.view.commit();
    }

    /// Runs every resolved action of `ins`, each atomically; failures go to
    /// `core.failures`. Returns the first route's reply.
    fn execute(&self, core: &mut Core<S>, ins: &mut Instruction) -> Option<R> {
        let mut first: Option<R> = None;
        ins.can_start = self.rt.work.can_start();
        for i in 0..ins.routes.len() {
            ins.set_current(i);
            let resolved = ins.routes[i];
            let Some(action) = self.kind.actions.get(resolved.action) else {
                continue;
            };
            let mark = ins.outbound.len();
            let Core { state, undo, .. } = &mut *core;
            let outcome = match self.kind.atomicity {
                Atomicity::Rollback => {
                    // One guard around both pieces of user code: the
                    // rollback copy (the state's `Clone`) and the action.
                    let mut saved = false;
                    let outcome = guarded(|| {
                        match undo.as_mut() {
                            Some(copy) => copy.clone_from(state),
                            None => *undo = Some(state.clone()),
                        }
                        saved = true;
                        action.run(state, ins)
                    });
                    let outcome = self.reserve_required(outcome, ins, mark);
                    if outcome.is_err() {
                        match undo.as_mut() {
                            Some(copy) if saved => std::mem::swap(state, copy),
                            // The copy itself failed: the action never ran and
                            // the state is untouched; a half-done copy is
                            // discarded.
                            _ => *undo = None,
                        }
                    }
                    outcome
                }
                // No copy: an error leaves the state as the action left it;
                // a panic may have left it half changed, so the agent
                // restarts (from its initial state: the policy cannot say
                // otherwise for `InPlace`, see `AgentSpec::restart`).
                Atomicity::InPlace => {
                    let outcome = guarded(|| action.run(state, ins));
                    self.reserve_required(outcome, ins, mark)
                }
            };
            if let Err(error) = &outcome
                && error.is_panic()
            {
                if let Some(initial) = &self.kind.restart_initial {
                    restart(state, initial);
                }
                self.note_panic(core, error);
            }
            match outcome {
                Ok(reply) => {
                    if i == 0 {
                        first = reply;
                    }
                }
                Err(error) => {
                    ins.outbound.truncate(mark);
                    core.failures.push(PendingFailure {
                        route: resolved.route,
                        error,
                    });
                }
            }
        }
        first
    }

    /// After an action returned `Ok`: reserves a mailbox slot at every
    /// receiver of each required emit it made (`emit_or_fail`,
    /// `send_to_or_fail`, or every emit under `Undeliverable::FailAction`),
    /// so that delivering them after the commit cannot meet a full
    /// mailbox; if a receiver refuses, the action fails instead (the
    /// caller truncates what it emitted, which releases the slots held).
    #[inline(always)]
    fn reserve_required<T>(
        &self,
        outcome: Result<T, ActionError>,
        ins: &mut Instruction,
        mark: usize,
    ) -> Result<T, ActionError> {
        if outcome.is_ok()
            && (ins.must_deliver || self.kind.undeliverable == Undeliverable::FailAction)
            && ins.outbound.len() > mark
            && let Err(e) = self.reserve_made(ins, mark)
        {
            return Err(e);
        }
        outcome
    }

    /// The reservations of [`reserve_required`](Self::reserve_required).
    #[inline(never)]
    fn reserve_made(&self, ins: &mut Instruction, mark: usize) -> Result<(), ActionError> {
        let all = self.kind.undeliverable == Undeliverable::FailAction;
        let made: Vec<Outbound> = ins.outbound.drain(mark..).collect();
        for out in made {
            let kept = match out {
                Outbound::PublishOrFail(signal) => self.reserve_publish(signal),
                Outbound::Publish(signal) if all => self.reserve_publish(signal),
                Outbound::SendOrFail(to, signal) => reserve_send(&to, signal),
                Outbound::Send(to, signal) if all => reserve_send(&to, signal),
                other => Ok(other),
            };
            match kept {
                Ok(out) => ins.outbound.push(out),
                // The rest of `made` drops unreserved; what was reserved is
                // released when the caller truncates.
                Err(failure) => return Err(ActionError::undeliverable(failure)),
            }
        }
        Ok(())
    }

    fn reserve_publish(&self, signal: Signal) -> Result<Outbound, DeliveryFailure> {
        self.rt
            .reserve_publish(signal)
            .map(|held| Outbound::Reserved(Box::new(held)))
    }

    fn flush_outbound(&self, ins: &mut Instruction) {
        let Instruction {
            outbound, signal, ..
        } = ins;
        for out in outbound.drain(..) {
            match out {
                Outbound::SendSelfAfter(signal, delay) => {
                    let Some(me) = self.me.upgrade() else {
                        continue;
                    };
                    let due = self.rt.instant_after(delay);
                    if let Err(e) = self.rt.schedule_signal(Some(me), signal, due, None) {
                        let failure = match e {
                            ScheduleError::Stopped { agent, signal } => DeliveryFailure::Refused(
                                SendError::new(agent, SendErrorKind::Stopped, *signal),
                            ),
                            other => DeliveryFailure::ShuttingDown(Box::new(other.into_signal())),
                        };
                        self.rt
                            .record_undelivered(UndeliveredFrom::Agent(self.id), failure);
                    }
                }
                Outbound::Start(order) => {
                    let Some(me) = self.me.upgrade() else {
                        continue;
                    };
                    let started_by = signal
                        .as_ref()
                        .map_or_else(|| SignalId::from_text("unknown"), |s| s.id().clone());
                    self.rt
                        .work
                        .start(&self.rt, self.id, started_by, me, *order);
                }
                Outbound::Reserved(held) => held.deliver(&self.rt, UndeliveredFrom::Agent(self.id)),
                // Reserved when the action returned; unreserved ones cannot
                // reach here, but would be delivered as plain emits.
                Outbound::Publish(signal) | Outbound::PublishOrFail(signal) => {
                    self.rt.publish_emitted(self.id, signal)
                }
                Outbound::Send(to, signal) | Outbound::SendOrFail(to, signal) => {
                    if let Err(e) = to.send(signal) {
                        self.rt
                            .record_undelivered(UndeliveredFrom::Agent(self.id), e.into());
                    }
                }
            }
        }
    }
}

/// Reserves a slot at `to` for a required send.
fn reserve_send(to: &AgentAddr, signal: Signal) -> Result<Outbound, DeliveryFailure> {
    let slot = Reservation::take(to.task(), &signal)?;
    Ok(Outbound::Reserved(Box::new(Reserved {
        signal,
        receivers: vec![Receiver::Agent(slot)],
    })))
}

/// Replaces a state a panic may have left half changed with the spec's
/// initial state. The copy is user code too: if the initial state's own
/// `Clone` panics, the state stays as the panic left it (the failure hook
/// has seen the panic either way).
fn restart<S: Clone>(state: &mut S, initial: &S) {
    if let Ok(fresh) = guarded(|| Ok(initial.clone())) {
        *state = fresh;
    }
}
