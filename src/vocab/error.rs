//! Errors of sending to, calling, querying and spawning agents. In the
//! vocabulary because reply slots, addresses and reports name them.

use super::{ActionError, AgentId};
use crate::router::{RouteError, RouteId};
use crate::signal::{Signal, Text};
use std::error::Error;
use std::fmt;
use std::time::Duration;

/// Why a signal was refused at an agent's door. The signal is handed back
/// inside the [`SendError`]: a refused signal is never lost.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// The bounded mailbox holds `capacity` signals already (backpressure).
    MailboxFull {
        /// The mailbox's capacity.
        capacity: usize,
    },
    /// The agent was stopped.
    Stopped,
    /// The runtime is shutting down.
    ShuttingDown,
    /// No route of the agent matches the signal's type.
    NoRoute,
    /// A route predicate panicked while the signal was being routed.
    PredicatePanicked {
        /// The route whose predicate panicked.
        route: RouteId,
        /// The panic message.
        message: String,
    },
    /// A `call` whose first route runs a send-only action (registered
    /// with `AgentSpec::send_action` or `on_send`): it has no reply to
    /// give, so the call is refused before anything runs. Use `send`.
    SendOnly {
        /// The send-only action.
        action: String,
    },
}

/// A signal refused by an agent, with the signal handed back.
#[derive(Clone, PartialEq)]
pub struct SendError {
    agent: AgentId,
    kind: SendErrorKind,
    signal: Box<Signal>,
}

impl SendError {
    pub(crate) fn new(agent: AgentId, kind: SendErrorKind, signal: Signal) -> Self {
        SendError {
            agent,
            kind,
            signal: Box::new(signal),
        }
    }

    /// Why the signal was refused.
    pub fn kind(&self) -> &SendErrorKind {
        &self.kind
    }

    /// The agent that refused it.
    pub fn agent(&self) -> AgentId {
        self.agent
    }

    /// The refused signal.
    pub fn signal(&self) -> &Signal {
        &self.signal
    }

    /// Takes the refused signal back (e.g. to retry it).
    pub fn into_signal(self) -> Signal {
        *self.signal
    }

    /// Whether retrying later may succeed (the mailbox was only full).
    pub fn is_full(&self) -> bool {
        matches!(self.kind, SendErrorKind::MailboxFull { .. })
    }
}

impl fmt::Debug for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("agent", &self.agent)
            .field("kind", &self.kind)
            .field("signal_type", &self.signal.ty())
            .field("signal_id", &self.signal.id())
            .finish()
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (agent, ty) = (self.agent, self.signal.ty());
        match &self.kind {
            SendErrorKind::MailboxFull { capacity } => write!(
                f,
                "{agent}'s mailbox is full ({capacity} signals); the `{ty}` signal is handed back: retry later, slow the sender, or raise the mailbox capacity"
            ),
            SendErrorKind::Stopped => {
                write!(f, "{agent} is stopped; the `{ty}` signal is handed back")
            }
            SendErrorKind::ShuttingDown => {
                write!(
                    f,
                    "the runtime is shutting down; the `{ty}` signal sent to {agent} is handed back"
                )
            }
            SendErrorKind::NoRoute => write!(
                f,
                "{agent} has no route matching type `{ty}`; add a route for it or send it elsewhere (the signal is handed back)"
            ),
            SendErrorKind::PredicatePanicked { route, message } => write!(
                f,
                "the predicate of {route} on {agent} panicked while routing `{ty}`: {message} (the signal is handed back)"
            ),
            SendErrorKind::SendOnly { action } => write!(
                f,
                "`{ty}` is routed on {agent} to the send-only action `{action}`, which has no reply: `send` it instead of calling (the signal is handed back)"
            ),
        }
    }
}

impl Error for SendError {}

/// Why a [`call`](crate::AgentRef::call) did not produce a reply.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CallError {
    /// The agent refused the signal; it is inside.
    Send(SendError),
    /// An action failed (returned an error or panicked); its state change was
    /// rolled back.
    Action(ActionError),
    /// No reply within the timeout. The instruction may still run later; its
    /// reply will then be dropped.
    Timeout {
        /// The timeout that passed.
        after: Duration,
    },
    /// The agent was stopped before processing the signal; the signal is in
    /// the stop report's dead letters.
    Stopped {
        /// The stopped agent.
        agent: AgentId,
    },
    /// The runtime shut down before processing the signal; the signal is in
    /// the shutdown report's dead letters.
    ShutDown,
    /// The call was made from code running inside the same agent's turn (its
    /// own action, or a bus callback run while it was delivering): it could
    /// never be answered, so it is refused at once instead of timing out.
    Reentrant {
        /// The agent that was called from inside itself.
        agent: AgentId,
    },
    /// The call was made from inside an agent's action, and the called agent
    /// is itself waiting, directly or through others, on a call to the
    /// calling agent: the call would close a cycle in which every agent
    /// waits for the next, forever. Refused at once (nothing was enqueued).
    Cycle {
        /// The agents of the cycle, from the caller to the one that waits
        /// on the caller.
        agents: Vec<AgentId>,
    },
    /// A call to an agent in another process (the NATS bridge's
    /// `RemoteAgent::call`) could not reach it or understand its answer:
    /// nobody serves the name, the connection is down, or the reply did
    /// not decode. Whether the signal ran is unknown.
    Remote {
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Send(e) => write!(f, "call refused: {e}"),
            CallError::Action(e) => write!(f, "call failed: {e}"),
            CallError::Timeout { after } => write!(
                f,
                "no reply within {after:?}; the signal may still be processed later (raise the timeout or check the agent's load)"
            ),
            CallError::Stopped { agent } => write!(
                f,
                "{agent} was stopped before processing the call; its signal is in the stop report's dead letters"
            ),
            CallError::ShutDown => write!(
                f,
                "the runtime shut down before processing the call; its signal is in the shutdown report's dead letters"
            ),
            CallError::Reentrant { agent } => write!(
                f,
                "{agent} was called from inside its own turn, which would wait forever; use `Instruction::send_to` or read the state directly"
            ),
            CallError::Cycle { agents } => {
                write!(f, "call refused: it would close a cycle of calls (")?;
                for a in agents {
                    write!(f, "{a} -> ")?;
                }
                match agents.first() {
                    Some(first) => write!(f, "{first}")?,
                    None => write!(f, "?")?,
                }
                write!(
                    f,
                    ") in which each agent waits for the next forever; send instead of calling on one side"
                )
            }
            CallError::Remote { reason } => write!(f, "remote call failed: {reason}"),
        }
    }
}

impl Error for CallError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CallError::Send(e) => Some(e),
            CallError::Action(e) => Some(e),
            _ => None,
        }
    }
}

impl From<SendError> for CallError {
    fn from(e: SendError) -> Self {
        CallError::Send(e)
    }
}

/// Why `state()` or a query did not produce an answer.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum QueryError {
    /// No query route of the agent matches the signal's type.
    NoRoute {
        /// The agent queried.
        agent: AgentId,
        /// The signal's type.
        ty: Text,
    },
    /// The query action returned an error or panicked.
    Action(ActionError),
    /// No answer within the timeout.
    Timeout {
        /// The timeout that passed.
        after: Duration,
    },
    /// Asked from code running inside the same agent's turn; read the state
    /// the action was given instead.
    Reentrant {
        /// The agent queried from inside itself.
        agent: AgentId,
    },
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::NoRoute { agent, ty } => {
                write!(
                    f,
                    "{agent} has no query route matching type `{ty}`; register one with `AgentSpec::query`"
                )
            }
            QueryError::Action(e) => write!(f, "query failed: {e}"),
            QueryError::Timeout { after } => {
                write!(f, "no answer within {after:?}; the agent is busy")
            }
            QueryError::Reentrant { agent } => write!(
                f,
                "{agent} was queried from inside its own turn; use the state the action was given"
            ),
        }
    }
}

impl Error for QueryError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            QueryError::Action(e) => Some(e),
            _ => None,
        }
    }
}

/// Why an agent could not be spawned.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SpawnError {
    /// The runtime is shutting down.
    ShuttingDown,
    /// A route of the spec is invalid (bad pattern, priority or action name).
    Route(RouteError),
    /// Two actions (or queries) of the spec share a name.
    DuplicateAction {
        /// The name registered twice.
        name: Text,
    },
    /// The spec's mailbox capacity is zero.
    ZeroCapacity,
    /// `Runtime::spawn_keyed`: a running agent holds the key already.
    KeyTaken {
        /// The key.
        key: String,
        /// The agent that holds it.
        holder: AgentId,
    },
    /// The spec's restart policy cannot be honoured (see
    /// `AgentSpec::restart`).
    Restart(&'static str),
}

/// Why [`Runtime::lookup`](crate::Runtime::lookup) found no agent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LookupError {
    /// No running agent was spawned under the key (never, or it stopped).
    NotFound {
        /// The key.
        key: String,
    },
    /// An agent holds the key, but its state or reply type is not the one
    /// asked for.
    WrongType {
        /// The key.
        key: String,
        /// The handle type asked for.
        expected: &'static str,
    },
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::NotFound { key } => {
                write!(
                    f,
                    "no running agent has the key `{key}` (never spawned, or stopped)"
                )
            }
            LookupError::WrongType { key, expected } => write!(
                f,
                "the agent with the key `{key}` is not an `{expected}`: its spec has another state or reply type"
            ),
        }
    }
}

impl Error for LookupError {}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::ShuttingDown => write!(f, "cannot spawn: the runtime is shutting down"),
            SpawnError::Route(e) => write!(f, "cannot spawn: {e}"),
            SpawnError::DuplicateAction { name } => {
                write!(
                    f,
                    "cannot spawn: the action name `{name}` is registered twice in the spec"
                )
            }
            SpawnError::ZeroCapacity => {
                write!(f, "cannot spawn: a mailbox needs a capacity of at least 1")
            }
            SpawnError::KeyTaken { key, holder } => write!(
                f,
                "cannot spawn: the key `{key}` is held by {holder}, which is running (look it up with `Runtime::lookup`, or stop it first)"
            ),
            SpawnError::Restart(why) => write!(f, "cannot spawn: {why}"),
        }
    }
}

impl Error for SpawnError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SpawnError::Route(e) => Some(e),
            _ => None,
        }
    }
}

impl From<RouteError> for SpawnError {
    fn from(e: RouteError) -> Self {
        SpawnError::Route(e)
    }
}

/// Why a signal could not be scheduled (`send_after`, `send_at`,
/// `send_interval`, and the bus's `publish_*` forms). The signal is inside.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The runtime is shutting down.
    ShuttingDown(Box<Signal>),
    /// The target agent was stopped.
    Stopped {
        /// The stopped agent.
        agent: AgentId,
        /// The signal.
        signal: Box<Signal>,
    },
    /// `send_interval` with a zero period would fire without end at one
    /// instant.
    ZeroPeriod(Box<Signal>),
}

impl ScheduleError {
    /// The signal that was not scheduled.
    pub fn into_signal(self) -> Signal {
        match self {
            ScheduleError::ShuttingDown(s) | ScheduleError::ZeroPeriod(s) => *s,
            ScheduleError::Stopped { signal, .. } => *signal,
        }
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::ShuttingDown(s) => {
                write!(
                    f,
                    "cannot schedule `{}`: the runtime is shutting down",
                    s.ty()
                )
            }
            ScheduleError::Stopped { agent, signal } => {
                write!(f, "cannot schedule `{}`: {agent} was stopped", signal.ty())
            }
            ScheduleError::ZeroPeriod(s) => write!(
                f,
                "cannot schedule `{}` every 0 s: an interval needs a period above zero",
                s.ty()
            ),
        }
    }
}

impl Error for ScheduleError {}
