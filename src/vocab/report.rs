//! What the runtime hands back: dead letters, undelivered emits, failures.
//! In the vocabulary because agents and the bus produce them and the
//! runtime collects them.

use super::error::SendError;
use super::{ActionError, AgentId, SubscriptionId, TimerId};
use crate::router::RouteId;
use crate::signal::Signal;
use crate::signal::SignalId;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Called for every failed action run (error or panic), on the thread that
/// ran it. Must not block for long.
pub type FailureHook = Arc<dyn Fn(&Failure<'_>) + Send + Sync>;

/// Why an accepted signal was not processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeadLetterReason {
    /// Its agent was stopped while it was queued.
    AgentStopped,
    /// The runtime shut down while it was queued.
    Shutdown,
}

/// An accepted signal that was not processed, handed back.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    /// The agent it was queued at.
    pub agent: AgentId,
    /// The signal.
    pub signal: Signal,
    /// Why it was not processed.
    pub reason: DeadLetterReason,
    /// Whether a caller was waiting for it (that caller got an error).
    pub was_call: bool,
}

/// Why a delivery of a published or emitted signal failed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum DeliveryFailure {
    /// The subscribed agent refused it (the copy is inside).
    Refused(SendError),
    /// A callback subscriber panicked.
    CallbackPanicked {
        /// The subscription.
        subscription: SubscriptionId,
        /// The panic message.
        message: String,
    },
    /// Nobody subscribes to the signal's type (the signal is inside).
    NoSubscribers(Box<Signal>),
    /// The runtime was shutting down (the signal is inside).
    ShuttingDown(Box<Signal>),
    /// Async work an action started panicked: it produced no signal.
    WorkPanicked {
        /// The panic message.
        message: String,
    },
    /// Publishes nested too deep on one thread (the signal is inside); see
    /// `PublishError::TooDeep`.
    TooDeep {
        /// The nesting limit.
        limit: usize,
        /// The signal.
        signal: Box<Signal>,
    },
}

impl fmt::Display for DeliveryFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryFailure::Refused(e) => e.fmt(f),
            DeliveryFailure::CallbackPanicked {
                subscription,
                message,
            } => {
                write!(f, "bus callback {subscription:?} panicked: {message}")
            }
            DeliveryFailure::NoSubscribers(s) => write!(f, "no subscriber for `{}`", s.ty()),
            DeliveryFailure::ShuttingDown(s) => {
                write!(f, "runtime shutting down; `{}` not delivered", s.ty())
            }
            DeliveryFailure::WorkPanicked { message } => {
                write!(f, "async work panicked and produced no signal: {message}")
            }
            DeliveryFailure::TooDeep { limit, signal } => write!(
                f,
                "publishes nested {limit} deep on one thread; `{}` not delivered",
                signal.ty()
            ),
        }
    }
}

impl From<SendError> for DeliveryFailure {
    fn from(e: SendError) -> Self {
        DeliveryFailure::Refused(e)
    }
}

/// Who emitted a signal that could not be delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UndeliveredFrom {
    /// An action of this agent (via `Instruction::emit`/`send_to`).
    Agent(AgentId),
    /// A timer, when it fired (`send_after`, `send_interval`,
    /// `Bus::publish_after`, ...).
    Timer(TimerId),
    /// Async work an action of this agent started
    /// ([`Instruction::start`](crate::Instruction::start)): its result
    /// signal, or its timeout signal.
    Work(AgentId),
}

/// A signal emitted by an action that could not be delivered after the action
/// committed. The action's caller had already been answered, so it is kept
/// here (bounded; see `Runtime::take_undelivered`) and counted.
#[derive(Clone, Debug, PartialEq)]
pub struct Undelivered {
    /// The emitter.
    pub from: UndeliveredFrom,
    /// What went wrong (the signal is inside).
    pub failure: DeliveryFailure,
}

/// An action failure, as given to the runtime's failure hook.
#[derive(Debug)]
pub struct Failure<'a> {
    /// The agent whose action failed.
    pub agent: AgentId,
    /// The route that selected the action.
    pub route: RouteId,
    /// The signal being processed.
    pub signal: &'a Signal,
    /// The error (or caught panic).
    pub error: &'a ActionError,
    /// Whether a caller gets this error as its reply (otherwise only this hook
    /// and the counters see it).
    pub call: bool,
}

/// Counter totals since the runtime started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Signals accepted into mailboxes.
    pub accepted: u64,
    /// Accepted signals processed (successfully or not).
    pub processed: u64,
    /// Accepted signals handed back unprocessed (stop or shutdown).
    pub dead_lettered: u64,
    /// Action runs that failed (including panics).
    pub failed_actions: u64,
    /// Action runs that panicked.
    pub panicked_actions: u64,
    /// Sends refused because a mailbox was full.
    pub refused_full: u64,
    /// Emitted signals that could not be delivered.
    pub undelivered: u64,
    /// Agents spawned.
    pub spawned: u64,
    /// Agents running now.
    pub live_agents: u64,
}

impl Metrics {
    /// Accepted signals neither processed nor dead-lettered yet.
    pub fn in_flight(&self) -> u64 {
        self.accepted
            .saturating_sub(self.processed)
            .saturating_sub(self.dead_lettered)
    }
}

/// Where a scheduled signal goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerTarget {
    /// An agent (`AgentRef::send_after` and friends).
    Agent(AgentId),
    /// The bus (`Bus::publish_after` and friends).
    Bus,
}

/// A scheduled signal that had not fired when the runtime shut down, handed
/// back in the [`ShutdownReport`](crate::ShutdownReport). It was never
/// accepted (a timer signal is accepted when it fires), so it is in no
/// counter.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingTimer {
    /// The timer.
    pub id: TimerId,
    /// Where it would have gone.
    pub target: TimerTarget,
    /// The signal (for an interval, the template each firing copies).
    pub signal: Signal,
    /// How long after the shutdown it would have fired.
    pub due_in: Duration,
    /// The period, for an interval.
    pub period: Option<Duration>,
}

/// Async work an action started that had not finished when the runtime shut
/// down: it was cancelled (its future dropped, its result never sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelledWork {
    /// The agent whose action started it.
    pub agent: AgentId,
    /// The id of the signal whose action started it.
    pub started_by: SignalId,
}
