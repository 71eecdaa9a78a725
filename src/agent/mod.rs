//! Agents: state plus routes to actions, behind a bounded mailbox.
//!
//! Describe an agent type once with an [`AgentSpec`] (initial state, named
//! actions, routes, read-only queries) and spawn as many agents from it as you
//! like with [`Runtime::spawn`](crate::Runtime::spawn): they share the
//! compiled actions and route table, and an idle agent costs a few hundred
//! bytes and no thread. An [`AgentRef`] is the typed handle: `send`, `call`,
//! `state`, `query`, `stop`, and run-time route changes. An [`AgentAddr`] is
//! the untyped one, for sending from actions and the bus.

mod admission;
pub(crate) use admission::refuses_now;
mod asynchronous;
pub(crate) mod cell;
mod close;
pub mod error;
mod on_thread;
pub(crate) use on_thread::running_instructions;
mod read_lane;
pub(crate) mod route_cell;
pub(crate) mod routes;
mod supervision;
mod turn;
pub use supervision::{MonitorId, RestartFrom, RestartPolicy};

use crate::action::{Action, ActionSet, Handler, Query};
pub use crate::exec::AgentAddr;
use crate::exec::timers::TimerHandle;
use crate::router::{Pattern, Priority, RouteError, RouteId, Router};
use crate::signal::{Signal, Text};
pub use crate::vocab::AgentId;
use crate::vocab::error::ScheduleError;
pub use crate::vocab::report::{AgentStopped, StopReason, StopReport};
use cell::{AgentCell, AgentKind, AgentTask};
use error::{CallError, QueryError, SendError, SpawnError};
use routes::{ActionTarget, RouteTable};
pub use routes::{Predicate, RouteSpec};
use std::fmt;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The description of an agent type: initial state, named actions, routes to
/// them, and read-only queries. Spawn any number of agents from one spec.
///
/// `S` is the state; `R` the reply type of its actions and queries.
///
/// The state's `Clone` is part of the contract: the runtime copies the state
/// before each action (the rollback copy) and, with `fast-path`, after each
/// batch (the snapshot). It should not panic. If it does, the runtime
/// contains it: a panic taking the rollback copy fails that action run as a
/// panic (state untouched, agent serving, nothing lost); a panic taking the
/// snapshot makes reads bypass the snapshot until the next commit; a panic
/// copying the state for a `state()` read is that read's error. In
/// `Runtime::spawn` it reaches the caller, as a panic in `Vec::clone` would.
///
/// ```
/// use agentry::{ActionError, AgentSpec, Instruction, RouteSpec, Runtime, Signal};
///
/// #[derive(Clone, Default)]
/// struct Stock { units: u32 }
///
/// let spec = AgentSpec::<Stock, u32>::new(Stock::default())
///     .action("add", |s: &mut Stock, _: &mut Instruction| { s.units += 1; Ok(s.units) })
///     .action("take", |s: &mut Stock, _: &mut Instruction| {
///         s.units = s.units.checked_sub(1).ok_or_else(|| ActionError::rejected("out of stock"))?;
///         Ok(s.units)
///     })
///     .route("stock.added", "add")
///     .route_spec(RouteSpec::new("stock.taken", "take").priority(5))
///     .query("stock.level", |s: &Stock, _: &Signal| Ok(s.units));
///
/// let rt = Runtime::builder().deterministic().build()?;
/// let agent = rt.spawn(&spec)?;
/// let added = Signal::new("stock.added", "/warehouse", "")?;
/// assert_eq!(agent.call(added, std::time::Duration::from_secs(1))?, 1);
/// let level = Signal::new("stock.level", "/warehouse", "")?;
/// assert_eq!(agent.query(level)?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AgentSpec<S, R = ()> {
    initial: S,
    name: Option<Text>,
    actions: Vec<(Text, Handler<S, R>)>,
    routes: Vec<RouteSpec>,
    queries: Vec<QueryDecl<S, R>>,
    mailbox_capacity: Option<usize>,
    atomicity: Atomicity,
    restart: Option<RestartPolicy>,
    undeliverable: Undeliverable,
    /// Compiled once per route-memo setting (index: `fast_path as usize`).
    compiled: [OnceLock<Compiled<S, R>>; 2],
}

/// How an agent undoes a failed action: the choice between atomic actions
/// and a per-signal cost that does not grow with the state.
///
/// | | an action returns an error | an action panics | cost per action |
/// |---|---|---|---|
/// | `Rollback` (default) | state as before the action | state as before the action | one `clone_from` of the state |
/// | `InPlace` | state as the action left it | the agent restarts from the spec's initial state | none |
///
/// In both modes nothing a failed action emitted or sent leaves the agent,
/// its caller gets the error and the failure hook sees it, and the agent
/// keeps serving. `Rollback` copies the state before every action, so its
/// cost grows with the state unless the state clones cheaply: a state built
/// on persistent collections (`imbl`, `rpds`; clone is O(1), a change copies
/// one path) keeps atomic actions at a near-constant cost (README, "Large
/// states"). `InPlace` suits actions that check before they change (return
/// the error first, mutate after) over a large plain state; a panic
/// discards the half-changed state instead of serving it. The restart state
/// is the spec's initial value, also for agents spawned with
/// [`Runtime::spawn_with_state`](crate::Runtime::spawn_with_state): keeping
/// each agent's starting state would be a second copy of it per agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Atomicity {
    /// Copy the state before each action; restore it on error or panic.
    #[default]
    Rollback,
    /// No copy: an error leaves the state as the action left it; a panic
    /// restarts the agent from the spec's initial state.
    InPlace,
}

/// What an agent type's emits and sends do when they cannot be delivered
/// (a receiver's mailbox is full or it stopped, nobody subscribes).
///
/// | | the action | the signal |
/// |---|---|---|
/// | `Record` (default) | commits; its caller gets its reply | counted, kept in `Runtime::take_undelivered`, given to the `on_undelivered` hook |
/// | `FailAction` | fails and is undone; its caller gets an `Undeliverable` error | not sent (nothing the action emitted is) |
///
/// `FailAction` makes every `emit` and `send_to` of the agent type behave
/// as [`Instruction::emit_or_fail`](crate::Instruction::emit_or_fail) and
/// [`Instruction::send_to_or_fail`](crate::Instruction::send_to_or_fail): each receiver reserves a mailbox slot
/// when the action returns, before it commits. It costs a route lookup and
/// a lock per receiver at that moment; signals scheduled with
/// `send_self_after` and async work's results are not covered (they are
/// accepted later, when they fire).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Undeliverable {
    /// Commit the action; record the signal as undelivered.
    #[default]
    Record,
    /// Fail the action (undone, its caller gets the error).
    FailAction,
}

/// A query as declared: pattern, priority, handler.
type QueryDecl<S, R> = (Text, i32, Arc<dyn Query<S, R>>);
type Compiled<S, R> = Result<Arc<AgentKind<S, R>>, SpawnError>;

impl<S, R> AgentSpec<S, R>
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    /// A spec whose agents start with (a clone of) `initial`.
    pub fn new(initial: S) -> Self {
        AgentSpec {
            initial,
            name: None,
            actions: Vec::new(),
            routes: Vec::new(),
            queries: Vec::new(),
            mailbox_capacity: None,
            atomicity: Atomicity::Rollback,
            restart: None,
            undeliverable: Undeliverable::Record,
            compiled: [OnceLock::new(), OnceLock::new()],
        }
    }

    /// A name for diagnostics.
    pub fn name(mut self, name: impl Into<Text>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Registers an action under `name`; routes refer to it by name. Its
    /// `R` is the reply of a [`call`](AgentRef::call) routed to it first.
    pub fn action(mut self, name: impl Into<Text>, action: impl Action<S, R>) -> Self {
        self.actions
            .push((name.into(), Handler::Reply(Arc::new(action))));
        self
    }

    /// Registers a send-only action under `name`: it returns `()` whatever
    /// the agent's reply type, for signals that are sent, never called (a
    /// reset, a tick, a notification). A `call` whose first route runs it
    /// is refused at once with [`SendErrorKind::SendOnly`](crate::SendErrorKind::SendOnly)
    /// (the signal handed back, nothing run), so no call site needs a
    /// placeholder reply or an `unreachable!()`.
    pub fn send_action(mut self, name: impl Into<Text>, action: impl Action<S, ()>) -> Self {
        self.actions
            .push((name.into(), Handler::SendOnly(Arc::new(action))));
        self
    }

    /// Routes signals whose type matches `pattern` to the action `action`.
    pub fn route(self, pattern: impl Into<Text>, action: impl Into<Text>) -> Self {
        self.route_spec(RouteSpec::new(pattern, action))
    }

    /// Adds a route with priority and/or predicate.
    pub fn route_spec(mut self, route: RouteSpec) -> Self {
        self.routes.push(route);
        self
    }

    /// Registers `action` and routes `pattern` to it in one step (the action
    /// is named after the pattern, with `#2`, `#3`... if the name is taken).
    pub fn on(self, pattern: impl Into<Text>, action: impl Action<S, R>) -> Self {
        let pattern = pattern.into();
        let name = self.free_name(&pattern);
        self.action(name.clone(), action).route(pattern, name)
    }

    /// [`on`](Self::on) for a send-only action (see
    /// [`send_action`](Self::send_action)): it returns `()`.
    ///
    /// ```
    /// use agentry::{AgentSpec, Instruction, Runtime, SendErrorKind, Signal, CallError};
    ///
    /// // Calls get a `u32`; the reset route is for sends and returns nothing.
    /// let spec = AgentSpec::<u32, u32>::new(0)
    ///     .on("hits.add", |n: &mut u32, _: &mut Instruction| { *n += 1; Ok(*n) })
    ///     .on_send("hits.reset", |n: &mut u32, _: &mut Instruction| { *n = 0; Ok(()) });
    /// let rt = Runtime::builder().deterministic().build()?;
    /// let hits = rt.spawn(&spec)?;
    /// assert_eq!(hits.call(Signal::new("hits.add", "/t", "")?, None)?, 1);
    /// hits.send(Signal::new("hits.reset", "/t", "")?)?;
    /// let refused = hits.call(Signal::new("hits.reset", "/t", "")?, None).unwrap_err();
    /// assert!(matches!(refused, CallError::Send(ref e) if matches!(e.kind(), SendErrorKind::SendOnly { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_send(self, pattern: impl Into<Text>, action: impl Action<S, ()>) -> Self {
        let pattern = pattern.into();
        let name = self.free_name(&pattern);
        self.send_action(name.clone(), action).route(pattern, name)
    }

    /// `pattern`, or `pattern#2`, `pattern#3`... if an action has the name.
    fn free_name(&self, pattern: &Text) -> Text {
        let taken = |n: &str| self.actions.iter().any(|(name, _)| name.as_str() == n);
        if !taken(pattern) {
            return pattern.clone();
        }
        let k = (2..)
            .find(|k| !taken(&format!("{pattern}#{k}")))
            .unwrap_or(2);
        Text::from(format!("{pattern}#{k}"))
    }

    /// Registers a read-only query for signal types matching `pattern`,
    /// answered by [`AgentRef::query`] (the most specific match answers).
    pub fn query(mut self, pattern: impl Into<Text>, query: impl Query<S, R>) -> Self {
        self.queries.push((pattern.into(), 0, Arc::new(query)));
        self
    }

    /// Mailbox capacity of agents spawned from this spec (default: the
    /// runtime's).
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = Some(capacity);
        self
    }

    /// How a failed action's changes are undone (default
    /// [`Atomicity::Rollback`]); see [`Atomicity`] for the trade-off.
    pub fn atomicity(mut self, atomicity: Atomicity) -> Self {
        self.atomicity = atomicity;
        self
    }

    /// What an agent does when an action panics: restart from the last
    /// committed or the initial state, at most so many times within a
    /// window, then stop (see [`RestartPolicy`] and the notes of
    /// [`Runtime::take_stopped`](crate::Runtime::take_stopped)). Without
    /// one, a panic restarts the agent as its [`Atomicity`] says, with no
    /// limit. Errors an action returns are answers, not crashes: only
    /// panics count. `RestartFrom::LastCommitted` needs
    /// `Atomicity::Rollback` (`InPlace` keeps no copy to go back to);
    /// spawning refuses the pair with [`SpawnError::Restart`].
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = Some(policy);
        self
    }

    /// What this type's emits and sends do when they cannot be delivered
    /// (default [`Undeliverable::Record`]); see [`Undeliverable`].
    pub fn undeliverable(mut self, choice: Undeliverable) -> Self {
        self.undeliverable = choice;
        self
    }

    pub(crate) fn initial(&self) -> &S {
        &self.initial
    }

    pub(crate) fn capacity_override(&self) -> Option<usize> {
        self.mailbox_capacity
    }

    /// Compiles the spec once per route-memo setting; agents share the result.
    pub(crate) fn compiled(&self, fast_path: bool) -> Result<Arc<AgentKind<S, R>>, SpawnError> {
        self.compiled[usize::from(fast_path)]
            .get_or_init(|| self.compile(fast_path).map(Arc::new))
            .clone()
    }

    fn compile(&self, fast_path: bool) -> Result<AgentKind<S, R>, SpawnError> {
        if self.mailbox_capacity == Some(0) {
            return Err(SpawnError::ZeroCapacity);
        }
        let mut actions = ActionSet::default();
        for (name, action) in &self.actions {
            if !actions.register(name.clone(), action.clone()) {
                return Err(SpawnError::DuplicateAction { name: name.clone() });
            }
        }
        let mut router = Router::new();
        for route in &self.routes {
            let (pattern, priority) = route.parts()?;
            let action =
                actions
                    .index_of(route.action())
                    .ok_or_else(|| RouteError::UnknownAction {
                        pattern: route.pattern().to_owned(),
                        action: route.action().to_owned(),
                    })?;
            router.insert(
                pattern,
                priority,
                ActionTarget {
                    action,
                    predicate: route.predicate(),
                },
            );
        }
        let mut query_router = Router::new();
        let mut queries = Vec::with_capacity(self.queries.len());
        for (i, (pattern, priority, query)) in self.queries.iter().enumerate() {
            let pattern = Pattern::parse(pattern).map_err(RouteError::from)?;
            let priority = Priority::new(*priority)?;
            query_router.insert(pattern, priority, i as u32);
            queries.push(query.clone());
        }
        let restart = self
            .restart
            .unwrap_or(RestartPolicy::default_for(self.atomicity));
        let restart_initial = match (restart.restart_from(), self.atomicity) {
            (RestartFrom::Initial, _) => Some(self.initial.clone()),
            (RestartFrom::LastCommitted, Atomicity::Rollback) => None,
            (RestartFrom::LastCommitted, Atomicity::InPlace) => {
                return Err(SpawnError::Restart(
                    "a restart from the last committed state needs `Atomicity::Rollback` (`InPlace` keeps no copy to go back to); use `RestartPolicy::from_initial()`",
                ));
            }
        };
        Ok(AgentKind {
            obs: crate::imp::observe::KindObs::new(self.name.as_deref()),
            atomicity: self.atomicity,
            restart_initial,
            restart_limit: restart.limit(),
            undeliverable: self.undeliverable,
            name: self.name.clone(),
            actions,
            queries,
            routes: Arc::new(RouteTable::new(router, fast_path)),
            query_routes: RouteTable::new(query_router, fast_path),
        })
    }
}

impl<S, R> fmt::Debug for AgentSpec<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentSpec")
            .field("name", &self.name)
            .field(
                "actions",
                &self.actions.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("routes", &self.routes)
            .field(
                "queries",
                &self.queries.iter().map(|(p, _, _)| p).collect::<Vec<_>>(),
            )
            .field("mailbox_capacity", &self.mailbox_capacity)
            .finish()
    }
}

/// Route-memo counters of one agent (`fast-path`; zero without it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoStats {
    /// Sends whose type was found in the memo.
    pub hits: u64,
    /// Sends whose type was looked up in the trie and memoized.
    pub misses: u64,
}

/// A route installed on a running agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// The route's id (for [`AgentRef::remove_route`]).
    pub id: RouteId,
    /// Its pattern.
    pub pattern: String,
    /// The action it runs.
    pub action: String,
    /// Its priority.
    pub priority: i8,
}

/// The typed handle of a running agent. Cheap to clone; every method is safe
/// to call from any thread.
pub struct AgentRef<S, R = ()> {
    cell: Arc<AgentCell<S, R>>,
}

impl<S, R> Clone for AgentRef<S, R> {
    fn clone(&self) -> Self {
        AgentRef {
            cell: self.cell.clone(),
        }
    }
}

impl<S, R> fmt::Debug for AgentRef<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentRef")
            .field("id", &self.cell.id())
            .field("name", &self.cell.kind.name)
            .finish()
    }
}

impl<S, R> AgentRef<S, R>
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    pub(crate) fn from_cell(cell: Arc<AgentCell<S, R>>) -> Self {
        AgentRef { cell }
    }

    pub(crate) fn task(&self) -> Arc<dyn AgentTask> {
        self.cell.clone()
    }

    /// The agent's id.
    pub fn id(&self) -> AgentId {
        self.cell.id()
    }

    /// The spec's name, if it had one.
    pub fn name(&self) -> Option<&str> {
        self.cell.kind.name.as_deref()
    }

    /// The key it was spawned under
    /// ([`Runtime::spawn_keyed`](crate::Runtime::spawn_keyed)), if any.
    pub fn key(&self) -> Option<&str> {
        self.cell.key.as_deref()
    }

    pub(crate) fn key_text(&self) -> Option<&Text> {
        self.cell.key.as_ref()
    }

    /// Sends `signal` (fire and forget). It is routed now, on this thread;
    /// refused signals come back inside the error (full mailbox, no route,
    /// stopped agent, shutdown). Signals from one sender are processed in
    /// send order. It returns without running the action, unless the
    /// runtime was built with
    /// [`run_on_sender`](crate::RuntimeBuilder::run_on_sender) and every
    /// worker sleeps: then this thread may run the agent's turn itself.
    pub fn send(&self, signal: Signal) -> Result<(), SendError> {
        self.cell.send(signal)
    }

    /// Sends `signal` as [`send`](Self::send) does, and calls `on_settled`
    /// once its instruction has settled: `Ok(())` after it committed, or
    /// the action's error (its state change rolled back), or
    /// `Stopped`/`ShutDown` if it was dead-lettered before it ran. It works
    /// with send-only actions and needs no reply value: what a sender that
    /// must acknowledge after the commit needs (the NATS bridge's import
    /// acknowledges through it). `on_settled` runs on the thread that
    /// settled the instruction, so it should be quick (send on a channel).
    /// On `Err` it is dropped uncalled.
    ///
    /// ```
    /// use agentry::{AgentSpec, Runtime, Signal};
    /// use std::sync::mpsc;
    ///
    /// let rt = Runtime::builder().deterministic().build()?;
    /// let counter = rt.spawn(&AgentSpec::<u64>::new(0).on_send("tick", |n: &mut u64, _: &mut _| {
    ///     *n += 1;
    ///     Ok(())
    /// }))?;
    /// let (done, settled) = mpsc::channel();
    /// counter.send_settled(Signal::new("tick", "/clock", "")?, move |outcome| {
    ///     done.send(outcome).unwrap();
    /// })?;
    /// rt.run_until_idle()?;
    /// assert_eq!(settled.try_recv()?, Ok(()));
    /// assert_eq!(*counter.state()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_settled(
        &self,
        signal: Signal,
        on_settled: impl FnOnce(Result<(), CallError>) + Send + 'static,
    ) -> Result<(), SendError> {
        self.addr().send_settled(signal, on_settled)
    }

    /// Sends `signal` and waits up to `timeout` for the reply of its first
    /// route's action (or the first error of any of its actions); `None`
    /// waits for the runtime's
    /// [`default_timeout`](crate::RuntimeBuilder::default_timeout), a
    /// `Duration` for that long. If the agent is idle, the action runs on
    /// this thread: no thread is woken. In deterministic mode the runtime is
    /// driven until idle instead and the timeout does not apply.
    pub fn call(
        &self,
        signal: Signal,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<R, CallError> {
        self.cell.call(signal, self.timeout(timeout.into()))
    }

    fn timeout(&self, timeout: Option<Duration>) -> Duration {
        timeout.unwrap_or(self.cell.rt.config.default_timeout)
    }

    /// The async form of [`call`](Self::call): a future that sends `signal`
    /// when first polled and resolves to the reply, or to
    /// [`CallError::Timeout`] after `timeout` (`None`: the runtime's
    /// default timeout). Works on any executor (no
    /// runtime of its own; the timeout is one of this runtime's timers).
    ///
    /// If the agent is idle, the first poll runs the action on the polling
    /// thread, as `call` does, and completes: no task or thread is woken.
    /// Otherwise the future waits without blocking its thread and is woken
    /// by the turn that answers; `timeout` counts from then (a turn run in
    /// the first poll is not interrupted). Polled again after it completed,
    /// it stays pending (a fused future). Dropping it after the first poll abandons
    /// the reply, not the signal: the signal is processed exactly once
    /// (accepted = processed + dead-lettered still holds) and the reply
    /// slot is reused safely. Dropped before its first poll, it sends
    /// nothing. In deterministic mode the first poll drives the runtime
    /// until the reply is there.
    ///
    /// ```
    /// use agentry::{AgentSpec, Instruction, Runtime, Signal};
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::builder().workers(1).build()?;
    /// let echo = rt.spawn(&AgentSpec::<(), String>::new(()).on("echo", |_: &mut (), ins: &mut Instruction| {
    ///     Ok(ins.text()?.to_owned())
    /// }))?;
    /// let tokio_rt = tokio::runtime::Builder::new_current_thread().build()?;
    /// let reply = tokio_rt.block_on(echo.call_async(Signal::new("echo", "/t", "hi")?, Duration::from_secs(5)))?;
    /// assert_eq!(reply, "hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call_async(
        &self,
        signal: Signal,
        timeout: impl Into<Option<Duration>>,
    ) -> impl Future<Output = Result<R, CallError>> + Send + 'static {
        let timeout = self.timeout(timeout.into());
        asynchronous::CallFuture::new(self.cell.clone(), signal, timeout)
    }

    /// The async form of [`send`](Self::send) that waits for mailbox space
    /// instead of refusing with `MailboxFull` (backpressure without a retry
    /// loop); every other refusal (no route, stopped, shutting down) comes
    /// back at once, with the signal inside. Sends when first polled;
    /// dropped while waiting, it sends nothing.
    pub fn send_async(
        &self,
        signal: Signal,
    ) -> impl Future<Output = Result<(), SendError>> + Send + 'static {
        asynchronous::SendFuture::new(self.cell.clone(), signal)
    }

    /// [`send`](Self::send) for threads: waits up to `timeout` for mailbox
    /// space (parked, woken when a slot frees) instead of refusing at once;
    /// after `timeout` the `MailboxFull` error hands the signal back.
    pub fn send_timeout(&self, signal: Signal, timeout: Duration) -> Result<(), SendError> {
        self.cell.send_timeout(signal, timeout)
    }

    /// Sends `signal` to this agent `delay` from now (the runtime's clock:
    /// virtual in deterministic mode, see
    /// [`Runtime::advance`](crate::Runtime::advance)). The signal is
    /// accepted when the timer fires, like a `send` at that moment; a
    /// refusal then (full mailbox, stopped agent) is recorded as
    /// undelivered with the timer's id, and if the runtime shuts down first
    /// the signal comes back in the shutdown report's `pending_timers`.
    /// Nothing is dropped silently. The handle cancels. Stopping the agent
    /// does not cancel its timers: each fires into the stopped agent and is
    /// recorded undelivered (an interval then ends); cancel them first if
    /// that record is not wanted.
    pub fn send_after(
        &self,
        signal: Signal,
        delay: Duration,
    ) -> Result<TimerHandle, ScheduleError> {
        let due = self.cell.rt.instant_after(delay);
        self.send_at(signal, due)
    }

    /// Sends `signal` to this agent at `at` (an instant already past fires
    /// at once); see [`send_after`](Self::send_after). In deterministic
    /// mode, take instants from [`Runtime::now`](crate::Runtime::now).
    pub fn send_at(&self, signal: Signal, at: Instant) -> Result<TimerHandle, ScheduleError> {
        if !self.cell.rt.intake_open() && refuses_now(&self.cell.rt) {
            return Err(ScheduleError::ShuttingDown(Box::new(signal)));
        }
        self.cell
            .rt
            .schedule_signal(Some(self.task()), signal, at, None)
    }

    /// Sends a copy of `signal` to this agent every `period`, the first one
    /// `period` from now, until the handle cancels it, the agent stops or
    /// the runtime shuts down. Fixed rate: each firing is due one period
    /// after the previous one was due, so a late firing does not shift the
    /// next, and firings missed while the timer thread was held up (a
    /// suspended process, a slow bus callback) are delivered at once, in a
    /// burst. Each copy gets a fresh id (each firing is a new event).
    /// Otherwise as [`send_after`](Self::send_after).
    pub fn send_interval(
        &self,
        signal: Signal,
        period: Duration,
    ) -> Result<TimerHandle, ScheduleError> {
        let due = self.cell.rt.instant_after(period);
        if !self.cell.rt.intake_open() && refuses_now(&self.cell.rt) {
            return Err(ScheduleError::ShuttingDown(Box::new(signal)));
        }
        self.cell
            .rt
            .schedule_signal(Some(self.task()), signal, due, Some(period))
    }

    /// [`send_interval`](Self::send_interval) with the first firing at
    /// `start` instead of one period from now (as tokio's `interval_at`).
    pub fn send_interval_at(
        &self,
        signal: Signal,
        start: Instant,
        period: Duration,
    ) -> Result<TimerHandle, ScheduleError> {
        if !self.cell.rt.intake_open() && refuses_now(&self.cell.rt) {
            return Err(ScheduleError::ShuttingDown(Box::new(signal)));
        }
        self.cell
            .rt
            .schedule_signal(Some(self.task()), signal, start, Some(period))
    }

    /// The committed state: includes every instruction that completed before
    /// this call began, never a partly applied one. Works on stopped agents
    /// (their final state). With `fast-path` it is a snapshot load on this
    /// thread; without, a read message the agent answers between instructions.
    pub fn state(&self) -> Result<Arc<S>, QueryError> {
        self.cell.state()
    }

    /// Runs the query registered for `signal`'s type against the committed
    /// state (same consistency as [`state`](Self::state)).
    pub fn query(&self, signal: Signal) -> Result<R, QueryError> {
        self.cell.query(signal)
    }

    /// Stops the agent: later sends are refused, and every signal not yet
    /// started is handed back in the report, in send order (pending calls
    /// fail with [`CallError::Stopped`]). That includes the rest of a batch a
    /// worker has already taken, so batching never changes what a stop
    /// returns. The instruction running at that moment completes before
    /// `stop` returns, so the state is final afterwards, except when `stop`
    /// is called from inside an action (of this agent or another): then it
    /// does not wait, since the agent it would wait for may be waiting for
    /// it. Stopping twice returns an empty report.
    pub fn stop(&self) -> StopReport {
        self.cell
            .stop_as(StopReason::Stopped, false)
            .unwrap_or_else(|| StopReport {
                agent: self.id(),
                reason: StopReason::Stopped,
                dead_letters: Vec::new(),
            })
    }

    /// Has `watcher` told when this agent stops (by [`stop`](Self::stop) or
    /// by its restart policy giving up): it receives a signal of type
    /// [`AgentStopped::TYPE`] (`agentry.agent.stopped`, subject: this
    /// agent's id) whose JSON data is an [`AgentStopped`] (who, why, how
    /// many signals came back); route that type on the watcher. If this
    /// agent has stopped already, the watcher is told at once, with
    /// [`StopReason::AlreadyStopped`]. Each monitor tells once. A runtime
    /// shutdown tells nobody (every agent stops then). A watcher that
    /// cannot take the notice (full, stopped) has it recorded as
    /// undelivered, as any emitted signal.
    ///
    /// ```
    /// use agentry::{AgentSpec, AgentStopped, Instruction, Runtime, Signal, StopReason};
    ///
    /// let rt = Runtime::builder().deterministic().build()?;
    /// let worker = rt.spawn(&AgentSpec::<()>::new(()).on("job", |_: &mut (), _: &mut Instruction| Ok(())))?;
    /// let watcher = rt.spawn(&AgentSpec::<Vec<AgentStopped>>::new(Vec::new())
    ///     .on(AgentStopped::TYPE, |seen: &mut Vec<AgentStopped>, ins: &mut Instruction| {
    ///         seen.push(ins.json()?);
    ///         Ok(())
    ///     }))?;
    /// worker.monitor(&watcher);
    /// worker.stop();
    /// rt.run_until_idle()?;
    /// assert_eq!(watcher.state()?[0].reason, StopReason::Stopped);
    /// assert_eq!(watcher.state()?[0].agent, worker.id().get());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn monitor(&self, watcher: impl Into<AgentAddr>) -> MonitorId {
        let watcher = watcher.into();
        let id = self.cell.rt.add_monitor(self.id(), watcher.clone());
        // Stopped before the monitor was in place: whoever removes it tells
        // (this thread, or the stop that took it), so it tells once.
        if self.is_stopped() && self.cell.rt.remove_monitor(self.id(), id) {
            self.cell.tell(&watcher, StopReason::AlreadyStopped, 0);
        }
        MonitorId(id)
    }

    /// Removes a monitor; whether it was still set (a monitor that has told
    /// is gone).
    pub fn demonitor(&self, monitor: MonitorId) -> bool {
        self.cell.rt.remove_monitor(self.id(), monitor.0)
    }

    /// Whether the agent was stopped (or its runtime shut down).
    pub fn is_stopped(&self) -> bool {
        self.cell.is_stopped()
    }

    /// Signals waiting in the mailbox.
    pub fn mailbox_len(&self) -> usize {
        self.cell.mailbox_len()
    }

    /// The mailbox capacity.
    pub fn mailbox_capacity(&self) -> usize {
        self.cell.capacity()
    }

    /// The untyped address, for [`Instruction::send_to`](crate::Instruction::send_to)
    /// and bus subscriptions.
    pub fn addr(&self) -> AgentAddr {
        AgentAddr::new(self.task())
    }

    /// Adds a route at run time. Signals sent afterwards use it; signals
    /// already accepted keep the routes they were resolved with.
    pub fn add_route(&self, route: RouteSpec) -> Result<RouteId, RouteError> {
        let (pattern, priority) = route.parts()?;
        let action = self
            .cell
            .kind
            .actions
            .index_of(route.action())
            .ok_or_else(|| RouteError::UnknownAction {
                pattern: route.pattern().to_owned(),
                action: route.action_text().to_string(),
            })?;
        let target = ActionTarget {
            action,
            predicate: route.predicate(),
        };
        Ok(self.cell.routes.insert(pattern, priority, target))
    }

    /// Removes a route at run time.
    pub fn remove_route(&self, id: RouteId) -> Result<(), RouteError> {
        self.cell.routes.remove(id)
    }

    /// The routes installed now, in registration order.
    pub fn routes(&self) -> Vec<RouteInfo> {
        let table = self.cell.routes.load();
        table
            .router
            .iter()
            .map(|r| RouteInfo {
                id: r.id(),
                pattern: r.pattern().as_str().to_owned(),
                action: self
                    .cell
                    .kind
                    .actions
                    .names()
                    .nth(r.target().action as usize)
                    .unwrap_or("")
                    .to_owned(),
                priority: r.priority().get(),
            })
            .collect()
    }

    /// Route-memo hit/miss counters (`fast-path`).
    pub fn memo_stats(&self) -> MemoStats {
        MemoStats {
            hits: self.cell.memo_hits.load(Ordering::Relaxed),
            misses: self.cell.memo_misses.load(Ordering::Relaxed),
        }
    }
}

impl<S, R> From<&AgentRef<S, R>> for AgentAddr
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    fn from(a: &AgentRef<S, R>) -> Self {
        a.addr()
    }
}
