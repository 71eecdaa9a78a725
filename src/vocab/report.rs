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

/// Called for every signal recorded as undelivered (an emit or send an
/// action made that could not be delivered after it committed, a timer's
/// or async work's signal that was refused), on the thread that found it
/// undeliverable, before it is kept in the undelivered list. Must not
/// block for long.
pub type UndeliveredHook = Arc<dyn Fn(&Undelivered) + Send + Sync>;

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

/// What [`AgentRef::stop`](crate::AgentRef::stop) hands back, and what a
/// restart policy that gave up leaves in
/// [`Runtime::take_stopped`](crate::Runtime::take_stopped): every signal
/// that was accepted but not processed.
#[derive(Debug)]
pub struct StopReport {
    /// The stopped agent.
    pub agent: AgentId,
    /// Why it stopped.
    pub reason: StopReason,
    /// Signals still queued when the agent stopped, in queue order.
    pub dead_letters: Vec<DeadLetter>,
}

/// Why an agent stopped.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// [`AgentRef::stop`](crate::AgentRef::stop) was called.
    Stopped,
    /// Its actions panicked more often than its restart policy allows
    /// (`AgentSpec::restart`): `panics` panics within `within`.
    RestartLimit {
        /// Panics counted in the window, the last one included.
        panics: u32,
        /// The policy's window.
        #[serde(with = "duration_ms")]
        within: Duration,
        /// The last panic's message.
        last_panic: String,
    },
    /// The agent had stopped already when the monitor was set (as
    /// Erlang's `noproc`): the reason it stopped then is not kept.
    AlreadyStopped,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Stopped => write!(f, "stopped"),
            StopReason::RestartLimit {
                panics,
                within,
                last_panic,
            } => write!(
                f,
                "gave up after {panics} panics within {within:?} (restart policy); last: {last_panic}"
            ),
            StopReason::AlreadyStopped => write!(f, "had stopped before the monitor was set"),
        }
    }
}

/// What a monitor's watcher receives (as JSON data of a signal of type
/// [`AgentStopped::TYPE`]) when the agent it watches stops; read it with
/// `ins.json::<AgentStopped>()`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AgentStopped {
    /// The agent that stopped.
    pub agent: u64,
    /// Its key, if it was spawned under one.
    pub key: Option<String>,
    /// Its spec's name, if it had one.
    pub name: Option<String>,
    /// Why it stopped.
    #[serde(flatten)]
    pub reason: StopReason,
    /// Signals it handed back unprocessed (in the stop report).
    pub dead_letters: usize,
}

impl AgentStopped {
    /// The type of the signal a watcher receives.
    pub const TYPE: &'static str = "agentry.agent.stopped";
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
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
    /// A subscriber of the runtime's own (the NATS export's buffer)
    /// refused the signal, e.g. because it is full; the signal is inside.
    SinkRefused {
        /// The subscription.
        subscription: SubscriptionId,
        /// Why it refused.
        reason: String,
        /// The signal.
        signal: Box<Signal>,
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
            DeliveryFailure::SinkRefused {
                subscription,
                reason,
                signal,
            } => write!(
                f,
                "subscription {subscription:?} refused `{}`: {reason}",
                signal.ty()
            ),
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

impl std::error::Error for DeliveryFailure {}

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
