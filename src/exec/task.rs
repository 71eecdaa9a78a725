//! The task trait: an agent with its state type erased, as the run queue, the
//! bus and the runtime see it, and [`AgentAddr`], its public face.

use super::Runnable;
use super::receipt::Receipt;
use crate::signal::Signal;
use crate::vocab::AgentId;
use crate::vocab::error::{CallError, SendError, SendErrorKind};
use crate::vocab::report::{DeadLetter, DeadLetterReason};
use std::fmt;
use std::sync::Arc;

/// The runtime's face of an agent, with its state type erased.
pub(crate) trait AgentTask: Runnable {
    fn id(&self) -> AgentId;
    /// Waits until no other thread is running the agent (stop and shutdown
    /// accounting); returns at once on a thread that is inside a turn.
    fn quiesce(&self);
    /// Routes and enqueues `signal`; `me` is this agent, to be scheduled.
    fn deliver(&self, me: &Arc<dyn AgentTask>, signal: Signal) -> Result<(), SendError>;
    /// Closes the mailbox and hands back everything still queued.
    fn close(&self, reason: DeadLetterReason) -> Vec<DeadLetter>;
    /// Whether the agent has been stopped (or shut down).
    fn is_closed(&self) -> bool;
    /// Reserves a mailbox slot for `signal` (see `exec::reserve`): routes
    /// it, and counts the slot against the capacity until it is used or
    /// released.
    fn reserve(&self, signal: &Signal) -> Result<(), SendErrorKind>;
    /// Releases a reserved slot unused.
    fn unreserve(&self);
    /// Enqueues `signal` into a slot reserved before; releases the slot
    /// whatever happens.
    fn deliver_reserved(&self, me: &Arc<dyn AgentTask>, signal: Signal) -> Result<(), SendError>;
    /// Routes and enqueues `signal` with `receipt` counting it, told once
    /// its instruction has settled (committed, failed or dead-lettered).
    fn deliver_settled(
        &self,
        me: &Arc<dyn AgentTask>,
        signal: Signal,
        receipt: &Arc<Receipt>,
    ) -> Result<(), SendError>;
    /// The agent as `Any`, for a typed handle back (lookup by key).
    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync>;
}

/// The untyped address of an agent: send signals to it without knowing its
/// state type (from actions, or to subscribe it to the bus).
#[derive(Clone)]
pub struct AgentAddr {
    task: Arc<dyn AgentTask>,
}

impl AgentAddr {
    pub(crate) fn new(task: Arc<dyn AgentTask>) -> Self {
        AgentAddr { task }
    }

    /// The agent's id.
    pub fn id(&self) -> AgentId {
        self.task.id()
    }

    pub(crate) fn task(&self) -> &Arc<dyn AgentTask> {
        &self.task
    }

    /// Sends `signal`; as [`AgentRef::send`](crate::AgentRef::send).
    pub fn send(&self, signal: Signal) -> Result<(), SendError> {
        self.task.deliver(&self.task, signal)
    }

    /// Sends `signal` with `receipt` counting it until it has settled.
    pub(crate) fn send_counted(
        &self,
        signal: Signal,
        receipt: &Arc<Receipt>,
    ) -> Result<(), SendError> {
        self.task.deliver_settled(&self.task, signal, receipt)
    }

    /// Sends `signal`, and calls `on_settled` once its instruction has
    /// settled; as [`AgentRef::send_settled`](crate::AgentRef::send_settled).
    pub fn send_settled(
        &self,
        signal: Signal,
        on_settled: impl FnOnce(Result<(), CallError>) + Send + 'static,
    ) -> Result<(), SendError> {
        let receipt = Arc::new(Receipt::new(on_settled));
        let sent = self.send_counted(signal, &receipt);
        if sent.is_err() {
            receipt.disarm();
        }
        receipt.seal();
        sent
    }

    /// Whether the agent was stopped.
    pub fn is_stopped(&self) -> bool {
        self.task.is_closed()
    }
}

impl fmt::Debug for AgentAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentAddr({})", self.id().0)
    }
}
