//! Stop and shutdown: the mailbox closes, and every signal not yet started
//! (queued, or the rest of a batch being run) is handed back as a dead
//! letter, in send order; a pending call fails with a typed error.

use super::cell::{AgentCell, lock};
use super::on_thread;
use crate::agent::error::CallError;
use crate::instruction::pool;
use crate::vocab::report::{DeadLetter, DeadLetterReason};
use std::sync::atomic::Ordering;

impl<S, R> AgentCell<S, R>
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    /// Closes the mailbox and hands back everything not yet started.
    pub(super) fn close_mailbox(&self, reason: DeadLetterReason) -> Vec<DeadLetter> {
        self.close_mailbox_once(reason).unwrap_or_default()
    }

    /// [`close_mailbox`](Self::close_mailbox); `None` if it was closed
    /// already (by another stop, or the shutdown).
    pub(super) fn close_mailbox_once(&self, reason: DeadLetterReason) -> Option<Vec<DeadLetter>> {
        let drained = {
            let mut inbox = lock(&self.mailbox.queue);
            if inbox.closed.is_some() {
                return None;
            }
            inbox.closed = Some(reason);
            self.closed.store(true, Ordering::Release);
            // The rest of a running batch comes first: it was queued earlier.
            let rest = std::mem::take(&mut *lock(&self.in_batch));
            let mut drained = std::mem::take(&mut inbox.queue);
            for ins in rest {
                drained.push_front(ins);
            }
            // Exactly what was taken: an instruction a runner popped just
            // before is still counted, and its runner uncounts it.
            let waiting = self.mailbox.pending.take(drained.len());
            (drained, waiting)
        };
        let (drained, waiting) = drained;
        // Senders waiting for space retry and see the closed mailbox.
        if waiting {
            self.rt.space.wake(self.id.0, &self.mailbox.pending);
        }
        let pool_kind = self.rt.config.strategy.pool;
        let mut letters = Vec::with_capacity(drained.len());
        for mut ins in drained {
            let was_call = ins.is_call();
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
        let reason = match reason {
            DeadLetterReason::AgentStopped => "stopped",
            DeadLetterReason::Shutdown => "shutdown",
        };
        self.kind
            .obs
            .dead_lettered(self.id.0, letters.len(), reason);
        Some(letters)
    }

    /// Waits until no thread runs the agent (the instruction in progress
    /// finishes), woken by the runner's release. A thread inside any turn
    /// does not wait: the agent it waits for might be waiting for it (two
    /// agents stopping each other).
    pub(super) fn wait_quiet(&self) {
        if on_thread::in_any_turn() {
            return;
        }
        self.rt.wait_until_quiet(|| self.claim.is_running());
    }
}
