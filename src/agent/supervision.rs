//! Supervision: what happens to an agent whose actions panic (its restart
//! policy), how it stops, and who is told (monitors).
//!
//! A panic never takes an agent down by itself: the action's changes are
//! undone (rolled back, or the state restarts from the spec's initial
//! value) and the agent keeps serving. A restart policy with a limit counts
//! panics on the runtime's clock (virtual in deterministic mode, so tests
//! of a policy replay exactly); one panic more than it allows within its
//! window stops the agent, right after the panicking instruction finished
//! (its caller has the panic as its error). The stop is an ordinary stop:
//! the mailbox closes, what was queued comes back as dead letters (kept in
//! [`Runtime::take_stopped`](crate::Runtime::take_stopped), and in the
//! shutdown report), pending calls fail with `Stopped`, the key is
//! released, and monitors are told.

use super::cell::{AgentCell, Core};
use super::{AgentStopped, Atomicity, StopReason, StopReport};
use crate::action::ActionError;
use crate::exec::AgentAddr;
use crate::signal::Signal;
use crate::vocab::report::{DeadLetterReason, UndeliveredFrom};
use std::collections::VecDeque;
use std::time::Duration;

/// Which state a panicking agent restarts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestartFrom {
    /// The state as the last successful action left it (the panicking
    /// action is rolled back). Needs [`Atomicity::Rollback`], which keeps
    /// the copy to go back to.
    LastCommitted,
    /// The spec's initial state (also for agents spawned with another
    /// starting state: keeping each agent's own would be a second copy of
    /// it per agent).
    Initial,
}

/// What an agent type does when an action panics: restart from which
/// state, and how often before it gives up and stops.
///
/// Without a policy, an agent restarts from the last committed state
/// (`Atomicity::Rollback`) or from its initial state
/// (`Atomicity::InPlace`), with no limit. A limit stops the agent on the
/// panic that exceeds it (see the module's notes in `AgentSpec::restart`).
///
/// ```
/// use agentry::{AgentSpec, Instruction, RestartPolicy, Runtime, Signal, StopReason};
/// use std::time::Duration;
///
/// let spec = AgentSpec::<u32>::new(0)
///     .on("work", |_: &mut u32, _: &mut Instruction| -> Result<(), agentry::ActionError> { panic!("bad input") })
///     .restart(RestartPolicy::from_initial().at_most(2, Duration::from_secs(60)));
/// let rt = Runtime::builder().deterministic().build()?;
/// let agent = rt.spawn(&spec)?;
/// for _ in 0..3 {
///     agent.send(Signal::new("work", "/t", "")?)?;
/// }
/// rt.run_until_idle()?;
/// assert!(agent.is_stopped()); // two restarts allowed, the third panic stops it
/// let stopped = rt.take_stopped();
/// assert!(matches!(stopped[0].reason, StopReason::RestartLimit { panics: 3, .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    from: RestartFrom,
    limit: Option<(u32, Duration)>,
}

impl RestartPolicy {
    /// Restart from the last committed state, with no limit.
    pub fn from_last_committed() -> Self {
        RestartPolicy {
            from: RestartFrom::LastCommitted,
            limit: None,
        }
    }

    /// Restart from the spec's initial state, with no limit.
    pub fn from_initial() -> Self {
        RestartPolicy {
            from: RestartFrom::Initial,
            limit: None,
        }
    }

    /// At most `restarts` restarts within any window of `within`: the panic
    /// after them stops the agent (`at_most(0, ..)`: the first panic does).
    pub fn at_most(mut self, restarts: u32, within: Duration) -> Self {
        self.limit = Some((restarts, within));
        self
    }

    /// The state it restarts from.
    pub fn restart_from(&self) -> RestartFrom {
        self.from
    }

    /// The limit: restarts allowed within a window.
    pub fn limit(&self) -> Option<(u32, Duration)> {
        self.limit
    }

    /// The policy an agent type has without one, by its atomicity.
    pub(super) fn default_for(atomicity: Atomicity) -> Self {
        match atomicity {
            Atomicity::Rollback => RestartPolicy::from_last_committed(),
            Atomicity::InPlace => RestartPolicy::from_initial(),
        }
    }
}

/// When an agent's recent panics happened, and whether its policy gave up.
#[derive(Default)]
pub(super) struct PanicLog {
    /// Runtime clock, ns, oldest first; only those within the window.
    at: VecDeque<u64>,
    /// The restart policy gave up: stop once this instruction is finished.
    give_up: Option<StopReason>,
}

/// A monitor set with [`AgentRef::monitor`](crate::AgentRef::monitor), to
/// remove it with [`AgentRef::demonitor`](crate::AgentRef::demonitor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MonitorId(pub(super) u64);

impl<S, R> AgentCell<S, R>
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    /// Counts a panic against the restart limit (on the runtime's clock);
    /// past it, marks the agent to stop once this instruction is finished.
    pub(super) fn note_panic(&self, core: &mut Core<S>, error: &ActionError) {
        let Some((restarts, within)) = self.kind.restart_limit else {
            return;
        };
        let now = self.rt.timers.now_ns();
        let window = u64::try_from(within.as_nanos()).unwrap_or(u64::MAX);
        let log = core.panics.get_or_insert_with(Box::default);
        // Panics that left the window no longer count; this one always does.
        while log
            .at
            .front()
            .is_some_and(|&at| now.saturating_sub(at) >= window)
        {
            log.at.pop_front();
        }
        log.at.push_back(now);
        let panics = u32::try_from(log.at.len()).unwrap_or(u32::MAX);
        if panics > restarts && log.give_up.is_none() {
            log.give_up = Some(StopReason::RestartLimit {
                panics,
                within,
                last_panic: error.text().to_owned(),
            });
        }
    }

    /// Stops the agent for `reason`: closes the mailbox (what was queued
    /// comes back), waits for a running instruction unless called from
    /// inside a turn, releases the key and tells the monitors. The report
    /// comes back, or, with `keep`, is kept for `Runtime::take_stopped`
    /// before any watcher is told (a watcher that hears of the stop finds
    /// the report there). `None` if it was stopped already.
    pub(super) fn stop_as(&self, reason: StopReason, keep: bool) -> Option<StopReport> {
        let dead_letters = self.close_mailbox_once(DeadLetterReason::AgentStopped)?;
        self.wait_quiet();
        let count = dead_letters.len();
        self.kind.obs.stopped(self.id.0, count);
        self.rt.deregister(self.id, self.key.as_ref());
        let report = StopReport {
            agent: self.id,
            reason: reason.clone(),
            dead_letters,
        };
        let report = if keep {
            self.rt.record_stopped(report);
            None
        } else {
            Some(report)
        };
        for (_, watcher) in self.rt.take_monitors(self.id) {
            self.tell(&watcher, reason.clone(), count);
        }
        report
    }

    /// Sends `watcher` the news that this agent stopped; a refusal is
    /// recorded as undelivered, like any emitted signal's.
    pub(super) fn tell(&self, watcher: &AgentAddr, reason: StopReason, dead_letters: usize) {
        let news = AgentStopped {
            agent: self.id.0,
            key: self.key.as_deref().map(str::to_owned),
            name: self.kind.name.as_deref().map(str::to_owned),
            reason,
            dead_letters,
        };
        let built = Signal::builder(AgentStopped::TYPE, "agentry:/agents")
            .subject(self.id.0.to_string())
            .json_data(&news)
            .build();
        // A constant type and source and serializable data: building cannot
        // fail; if it ever did, the watcher would not hear of it, so it is
        // recorded rather than dropped.
        match built {
            Ok(signal) => {
                if let Err(e) = watcher.send(signal) {
                    self.rt
                        .record_undelivered(UndeliveredFrom::Agent(self.id), e.into());
                }
            }
            Err(e) => self.rt.record_undelivered(
                UndeliveredFrom::Agent(self.id),
                crate::vocab::report::DeliveryFailure::WorkPanicked {
                    message: format!("the stop notice could not be built: {e}"),
                },
            ),
        }
    }

    /// After an instruction finished: if its panic exceeded the restart
    /// limit, the agent stops now (inside its own turn: nothing waits), and
    /// the report is kept for `Runtime::take_stopped`.
    pub(super) fn give_up_if_asked(&self, core: &mut Core<S>) {
        if let Some(reason) = core.panics.as_mut().and_then(|log| log.give_up.take()) {
            self.stop_as(reason, true);
        }
    }
}
