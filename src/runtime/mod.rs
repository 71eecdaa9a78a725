//! The runtime: worker threads, the run queue, spawning, the bus, shutdown.
//!
//! A threaded runtime multiplexes any number of agents over a few worker
//! threads. A deterministic runtime has no threads at all: the caller drives
//! it with [`Runtime::run_until_idle`], which makes tests and instruction-count
//! benchmarks independent of scheduling.

pub mod report;

use crate::agent::cell::AgentCell;
use crate::agent::error::{LookupError, SpawnError};
use crate::agent::{AgentAddr, AgentId, AgentRef, AgentSpec, StopReport};
use crate::bus::{Bus, BusCore};
use crate::exec::run_queue::{RunQueue, WorkerQueue};
pub use crate::exec::timers::TimerHandle;
pub use crate::exec::work::BoxFuture;
use crate::exec::work::Spawner;
use crate::exec::{Context, ContextConfig, Refused};
use crate::imp::Strategy;
use crate::signal::Text;
pub use crate::vocab::report::{FailureHook, UndeliveredHook};
use report::{DeadLetterReason, Metrics, ShutdownReport, Undelivered};
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

static NEXT_AGENT_ID: AtomicU64 = AtomicU64::new(1);

/// Why a runtime could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// `workers(0)`: use `deterministic()` for a runtime without threads.
    ZeroWorkers,
    /// `mailbox_capacity(0)`.
    ZeroMailboxCapacity,
    /// `batch_size(0)`.
    ZeroBatchSize,
    /// The operating system refused to start a worker thread.
    SpawnThread(std::io::Error),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroWorkers => write!(
                f,
                "a threaded runtime needs at least one worker; use `deterministic()` for a runtime without threads"
            ),
            BuildError::ZeroMailboxCapacity => write!(f, "mailbox capacity must be at least 1"),
            BuildError::ZeroBatchSize => write!(f, "batch size must be at least 1"),
            BuildError::SpawnThread(e) => write!(f, "could not start a worker thread: {e}"),
        }
    }
}

impl Error for BuildError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BuildError::SpawnThread(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a runtime operation was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunError {
    /// `run_until_idle` is for deterministic runtimes (threaded ones run by
    /// themselves; use `wait_idle`).
    NotDeterministic,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::NotDeterministic => write!(
                f,
                "run_until_idle drives a deterministic runtime; this one has worker threads (use wait_idle)"
            ),
        }
    }
}

impl Error for RunError {}

/// Configures a [`Runtime`].
///
/// ```
/// use std::time::Duration;
/// let rt = agentry::Runtime::builder()
///     .workers(2)
///     .mailbox_capacity(4096)
///     .batch_size(64)
///     .default_timeout(Duration::from_secs(2))
///     .build()?;
/// # rt.shutdown();
/// # Ok::<(), agentry::BuildError>(())
/// ```
#[derive(Clone)]
pub struct RuntimeBuilder {
    workers: usize,
    mailbox_capacity: usize,
    batch_size: usize,
    deterministic: bool,
    default_timeout: Duration,
    undelivered_limit: usize,
    strategy: Strategy,
    on_failure: Option<FailureHook>,
    on_undelivered: Option<UndeliveredHook>,
    run_on_sender: bool,
    idle_spin: Duration,
    spawner: Option<Spawner>,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder {
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            mailbox_capacity: 1024,
            batch_size: 64,
            deterministic: false,
            default_timeout: Duration::from_secs(5),
            undelivered_limit: 65_536,
            strategy: Strategy::from_features(),
            on_failure: None,
            on_undelivered: None,
            run_on_sender: false,
            idle_spin: crate::exec::idle::SPIN_FOR,
            spawner: None,
        }
    }
}

impl fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("workers", &self.workers)
            .field("mailbox_capacity", &self.mailbox_capacity)
            .field("batch_size", &self.batch_size)
            .field("deterministic", &self.deterministic)
            .field("default_timeout", &self.default_timeout)
            .field("strategy", &self.strategy)
            .field("run_on_sender", &self.run_on_sender)
            .field("idle_spin", &self.idle_spin)
            .field("spawner", &self.spawner.is_some())
            .finish()
    }
}

impl RuntimeBuilder {
    /// Worker threads (default: the number of CPUs). Agents are multiplexed
    /// over them; no agent has a thread of its own.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Default mailbox capacity of each agent (default 1024). A full mailbox
    /// refuses signals and hands them back (backpressure).
    pub fn mailbox_capacity(mut self, n: usize) -> Self {
        self.mailbox_capacity = n;
        self
    }

    /// Signals a worker drains from one mailbox per wake-up (default 64).
    /// Takes effect with the `batching` feature; without it every wake-up
    /// processes one signal.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// No worker threads: the caller drives the runtime with
    /// [`Runtime::run_until_idle`] (and `call` drives it until idle).
    pub fn deterministic(mut self) -> Self {
        self.deterministic = true;
        self
    }

    /// Timeout of `state()`, `query()`, and of `call` and `call_async` given
    /// `None` as their timeout (default 5 s).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// Undelivered emitted signals kept for [`Runtime::take_undelivered`]
    /// (default 65,536); beyond it they are only counted.
    pub fn undelivered_limit(mut self, n: usize) -> Self {
        self.undelivered_limit = n;
        self
    }

    /// Called for every failed action run (error or panic), including those
    /// of plain `send`s whose failure no caller sees.
    pub fn on_failure(
        mut self,
        hook: impl Fn(&report::Failure<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_failure = Some(Arc::new(hook));
        self
    }

    /// Called for every signal recorded as undelivered: a signal an action
    /// emitted or sent (`Instruction::emit`, `send_to`) that no receiver
    /// took after the action committed (a full mailbox, a stopped agent,
    /// no subscriber), and a timer's or async work's signal refused when it
    /// fired. It runs on the thread that found the signal undeliverable,
    /// right after the commit, before the next instruction of the emitting
    /// agent starts; the signal is inside (retry it, log it, alert). Each
    /// is also counted in `Metrics::undelivered` and kept in
    /// [`Runtime::take_undelivered`] (up to `undelivered_limit`).
    ///
    /// To have an undeliverable emit fail its action instead (state rolled
    /// back, the caller gets the error), see
    /// [`Instruction::emit_or_fail`](crate::Instruction::emit_or_fail) and
    /// [`AgentSpec::undeliverable`](crate::AgentSpec::undeliverable).
    pub fn on_undelivered(
        mut self,
        hook: impl Fn(&report::Undelivered) + Send + Sync + 'static,
    ) -> Self {
        self.on_undelivered = Some(Arc::new(hook));
        self
    }

    /// Whether `send` may run the agent on the sending thread when every
    /// worker sleeps (default: no).
    ///
    /// Waking a sleeping worker costs 15 to 50 µs on a small VM, and a
    /// worker spinning beside the sender takes a core the application may
    /// need; a sender that finds every worker asleep and the agent idle
    /// runs the agent's turn itself instead, as `call` already does, and
    /// nobody is woken. It never happens from inside an action (a signal
    /// an action sends is always queued), and a sending thread spends at
    /// most about half its time this way: after running a turn it hands
    /// the next signals to the workers for at least as long as that turn
    /// took (at least 5 µs, so a flood of sends wakes the workers).
    ///
    /// What changes for the sender: `send` can take as long as the action,
    /// and the action runs on the sending thread. A sender that holds a
    /// lock which the agent's action also takes would deadlock on itself;
    /// turn this off for such a sender's runtime. Results never change:
    /// the claim decides who runs the agent, whoever that is.
    pub fn run_on_sender(mut self, yes: bool) -> Self {
        self.run_on_sender = yes;
        self
    }

    /// How long an idle worker looks for work before it sleeps (default
    /// 10 µs); at most one worker spins at a time.
    ///
    /// Longer catches more work without a wake-up (15 to 40 µs on a small
    /// VM) but keeps a core busy that the application's own threads may
    /// need: on a 2-core VM, 50 µs gave a paced 50,000 signals/s load a p99
    /// in milliseconds (its sender and a spinning worker filled both cores),
    /// while it raised two workers' throughput on many busy agents from
    /// 1.35-1.40x to 1.46x of one worker's. With cores to spare, a longer
    /// spin is the better choice. `Duration::ZERO`: a few looks, then sleep.
    pub fn idle_spin(mut self, spin: Duration) -> Self {
        self.idle_spin = spin;
        self
    }

    /// Where async work started by actions
    /// ([`Instruction::start`](crate::Instruction::start)) runs in a
    /// threaded runtime: a function that runs a future to completion on the
    /// application's executor. With tokio:
    ///
    /// ```
    /// # let tokio_rt = tokio::runtime::Runtime::new().unwrap();
    /// let handle = tokio_rt.handle().clone();
    /// let rt = agentry::Runtime::builder()
    ///     .spawner(move |work| { handle.spawn(work); })
    ///     .build()?;
    /// # rt.shutdown();
    /// # Ok::<(), agentry::BuildError>(())
    /// ```
    ///
    /// Without one, `Instruction::start` fails the action with a message
    /// saying so. A deterministic runtime ignores it: its driver polls the
    /// work itself, between turns, so async work replays exactly.
    pub fn spawner(mut self, spawn: impl Fn(BoxFuture) + Send + Sync + 'static) -> Self {
        self.spawner = Some(Arc::new(spawn));
        self
    }

    /// Chooses the implementation of each optimization seam explicitly
    /// instead of from the cargo features (tests and benchmarks use this to
    /// run the plain and optimized runtimes side by side).
    #[doc(hidden)]
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Starts the runtime.
    pub fn build(self) -> Result<Runtime, BuildError> {
        if !self.deterministic && self.workers == 0 {
            return Err(BuildError::ZeroWorkers);
        }
        if self.mailbox_capacity == 0 {
            return Err(BuildError::ZeroMailboxCapacity);
        }
        if self.batch_size == 0 {
            return Err(BuildError::ZeroBatchSize);
        }
        let threads = if self.deterministic { 0 } else { self.workers };
        let (run_queue, worker_queues) = RunQueue::new(threads, self.idle_spin);
        let bus = Arc::new(BusCore::new(self.strategy.fast_path));
        let shared = Arc::new(Context::new(
            ContextConfig {
                strategy: self.strategy,
                batch: if self.strategy.batching {
                    self.batch_size
                } else {
                    1
                },
                deterministic: self.deterministic,
                mailbox_capacity: self.mailbox_capacity,
                default_timeout: self.default_timeout,
                undelivered_limit: self.undelivered_limit,
                on_failure: self.on_failure,
                on_undelivered: self.on_undelivered,
                run_on_sender: self.run_on_sender && !self.deterministic,
                spawner: self.spawner,
            },
            run_queue,
            bus.clone(),
        ));
        let mut runtime = Runtime {
            shared: shared.clone(),
            bus,
            workers: Vec::new(),
            shut_down: false,
        };
        for (i, mine) in worker_queues.into_iter().enumerate() {
            {
                let shared = shared.clone();
                let handle = std::thread::Builder::new()
                    .name(format!("agentry-worker-{i}"))
                    .spawn(move || worker_loop(&shared, mine))
                    .map_err(BuildError::SpawnThread)?;
                runtime.workers.push(handle);
            }
        }
        Ok(runtime)
    }
}

fn worker_loop(shared: &Context, mine: WorkerQueue) {
    shared.run_queue.work(mine, |entry| {
        // Every piece of user code an agent runs is already guarded; this is
        // the last line, so that a bug can never take a worker thread down.
        if let Err(payload) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| entry.run_entry()))
        {
            crate::vocab::action_error::discard_panic(payload);
        }
    });
}

/// What [`Runtime::run_steps`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steps {
    /// Agent turns run (at most the bound).
    pub turns: u64,
    /// Instructions processed by those turns.
    pub processed: u64,
    /// No agent has work left: a further step would do nothing.
    pub idle: bool,
}

/// An in-process runtime for agents. Owns its worker threads; dropping it
/// shuts it down (use [`shutdown`](Runtime::shutdown) to get the report).
///
/// ```
/// use agentry::{AgentSpec, Instruction, Runtime, Signal};
///
/// let rt = Runtime::builder().workers(2).build()?;
/// let counter = rt.spawn(&AgentSpec::<u64, u64>::new(0).on("tick", |n: &mut u64, _: &mut Instruction| {
///     *n += 1;
///     Ok(*n)
/// }))?;
/// for _ in 0..10 {
///     counter.send(Signal::new("tick", "/clock", "")?)?;
/// }
/// let n = counter.call(Signal::new("tick", "/clock", "")?, std::time::Duration::from_secs(5))?;
/// assert_eq!(n, 11); // per-sender FIFO: the ten sends ran first
/// let report = rt.shutdown();
/// assert_eq!(report.metrics.accepted, report.metrics.processed + report.metrics.dead_lettered);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Runtime {
    shared: Arc<Context>,
    bus: Arc<BusCore>,
    workers: Vec<JoinHandle<()>>,
    shut_down: bool,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.workers.len())
            .field("deterministic", &self.shared.config.deterministic)
            .field("strategy", &self.shared.config.strategy)
            .finish()
    }
}

impl Runtime {
    /// A builder with defaults (threaded, one worker per CPU).
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// Spawns an agent from `spec` with a clone of its initial state.
    pub fn spawn<S, R>(&self, spec: &AgentSpec<S, R>) -> Result<AgentRef<S, R>, SpawnError>
    where
        S: Clone + Send + Sync + 'static,
        R: Send + 'static,
    {
        self.spawn_with_state(spec, spec.initial().clone())
    }

    /// Spawns an agent from `spec` starting from `state`.
    pub fn spawn_with_state<S, R>(
        &self,
        spec: &AgentSpec<S, R>,
        state: S,
    ) -> Result<AgentRef<S, R>, SpawnError>
    where
        S: Clone + Send + Sync + 'static,
        R: Send + 'static,
    {
        self.spawn_inner(spec, state, None)
    }

    /// Spawns an agent from `spec` under `key` (a user id, an order
    /// number), to be found again with [`lookup`](Self::lookup); the key is
    /// released when the agent stops, so a stopped agent's key can be
    /// spawned again. Refused with [`SpawnError::KeyTaken`] while a running
    /// agent holds the key (no agent replaces another silently).
    ///
    /// ```
    /// use agentry::{AgentSpec, Instruction, LookupError, Runtime, Signal};
    ///
    /// let rt = Runtime::builder().deterministic().build()?;
    /// let spec = AgentSpec::<u32, u32>::new(0).on("hit", |n: &mut u32, _: &mut Instruction| { *n += 1; Ok(*n) });
    /// rt.spawn_keyed(&spec, "user-17")?;
    /// let user = rt.lookup::<u32, u32>("user-17")?;            // typed handle back
    /// assert_eq!(user.call(Signal::new("hit", "/api", "")?, None)?, 1);
    /// user.stop();
    /// assert!(matches!(rt.lookup::<u32, u32>("user-17"), Err(LookupError::NotFound { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_keyed<S, R>(
        &self,
        spec: &AgentSpec<S, R>,
        key: impl AsRef<str>,
    ) -> Result<AgentRef<S, R>, SpawnError>
    where
        S: Clone + Send + Sync + 'static,
        R: Send + 'static,
    {
        self.spawn_inner(
            spec,
            spec.initial().clone(),
            Some(Text::copy_from(key.as_ref())),
        )
    }

    /// [`spawn_keyed`](Self::spawn_keyed) starting from `state`.
    pub fn spawn_keyed_with_state<S, R>(
        &self,
        spec: &AgentSpec<S, R>,
        key: impl AsRef<str>,
        state: S,
    ) -> Result<AgentRef<S, R>, SpawnError>
    where
        S: Clone + Send + Sync + 'static,
        R: Send + 'static,
    {
        self.spawn_inner(spec, state, Some(Text::copy_from(key.as_ref())))
    }

    fn spawn_inner<S, R>(
        &self,
        spec: &AgentSpec<S, R>,
        state: S,
        key: Option<Text>,
    ) -> Result<AgentRef<S, R>, SpawnError>
    where
        S: Clone + Send + Sync + 'static,
        R: Send + 'static,
    {
        if self.shared.is_shutting_down() {
            return Err(SpawnError::ShuttingDown);
        }
        let kind = spec.compiled(self.shared.config.strategy.fast_path)?;
        let capacity = spec
            .capacity_override()
            .unwrap_or(self.shared.config.mailbox_capacity);
        let id = AgentId(NEXT_AGENT_ID.fetch_add(1, Ordering::Relaxed));
        let cell = Arc::new_cyclic(|me| {
            AgentCell::new(
                id,
                self.shared.clone(),
                kind,
                state,
                capacity,
                key,
                me.clone(),
            )
        });
        let agent = AgentRef::from_cell(cell);
        match self.shared.register(id, agent.task(), agent.key_text()) {
            Ok(()) => Ok(agent),
            Err(Refused::ShuttingDown) => Err(SpawnError::ShuttingDown),
            Err(Refused::KeyTaken(holder)) => Err(SpawnError::KeyTaken {
                key: agent.key().unwrap_or_default().to_owned(),
                holder,
            }),
        }
    }

    /// The running agent spawned under `key`, as a typed handle; one hash
    /// lookup (O(1) in the number of keys). A key is held from
    /// [`spawn_keyed`](Self::spawn_keyed) until its agent stops (by
    /// [`AgentRef::stop`], by its restart policy giving up, or at
    /// shutdown).
    pub fn lookup<S, R>(&self, key: &str) -> Result<AgentRef<S, R>, LookupError>
    where
        S: Clone + Send + Sync + 'static,
        R: Send + 'static,
    {
        let task = self
            .shared
            .by_key(key)
            .ok_or_else(|| LookupError::NotFound {
                key: key.to_owned(),
            })?;
        task.as_any()
            .downcast::<AgentCell<S, R>>()
            .map(AgentRef::from_cell)
            .map_err(|_| LookupError::WrongType {
                key: key.to_owned(),
                expected: std::any::type_name::<AgentRef<S, R>>(),
            })
    }

    /// The untyped address of the running agent spawned under `key`
    /// (for [`Instruction::send_to`](crate::Instruction::send_to) and bus
    /// subscriptions), whatever its types.
    pub fn lookup_addr(&self, key: &str) -> Option<AgentAddr> {
        self.shared.by_key(key).map(AgentAddr::new)
    }

    /// Running agents spawned under a key.
    pub fn keyed_agents(&self) -> usize {
        self.shared.keyed_len()
    }

    /// The publish/subscribe bus.
    pub fn bus(&self) -> Bus {
        Bus::new(self.bus.clone(), self.shared.clone())
    }

    /// Deterministic mode: processes until no agent has work, on this
    /// thread; returns the number of instructions processed. Timers due at
    /// the virtual [`now`](Self::now) fire first (and any an action
    /// schedules at that instant), and async work started by actions is
    /// polled; the virtual clock does not move (see
    /// [`advance`](Self::advance)).
    ///
    /// Work that never ends (two agents sending to each other forever, or
    /// an async work future that keeps waking itself) never leaves this
    /// function; drive such a runtime in bounded steps with
    /// [`run_steps`](Self::run_steps).
    pub fn run_until_idle(&self) -> Result<u64, RunError> {
        if !self.shared.config.deterministic {
            return Err(RunError::NotDeterministic);
        }
        Ok(self.shared.settle())
    }

    /// Deterministic mode: moves the virtual clock forward by `by`, firing
    /// every timer due on the way in due order (ties in scheduling order)
    /// and running the runtime until idle at each due time, so a timer an
    /// action schedules meanwhile fires in its turn. Returns the
    /// instructions processed. A test of time-driven agents runs in
    /// microseconds and replays exactly:
    ///
    /// ```
    /// use agentry::{AgentSpec, Instruction, Runtime, Signal};
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::builder().deterministic().build()?;
    /// let ticks = rt.spawn(&AgentSpec::<u32>::new(0).on("tick", |n: &mut u32, _: &mut Instruction| {
    ///     *n += 1;
    ///     Ok(())
    /// }))?;
    /// let every_second = ticks.send_interval(Signal::new("tick", "/clock", "")?, Duration::from_secs(1))?;
    /// rt.advance(Duration::from_secs(60))?; // an hour would take no longer
    /// assert_eq!(*ticks.state()?, 60);
    /// every_second.cancel();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn advance(&self, by: Duration) -> Result<u64, RunError> {
        if !self.shared.config.deterministic {
            return Err(RunError::NotDeterministic);
        }
        Ok(self.shared.advance(by))
    }

    /// The runtime's clock: the real `Instant::now()` in a threaded
    /// runtime; in a deterministic one, the virtual clock (the instant the
    /// runtime was built plus everything [`advance`](Self::advance) moved
    /// it), which `send_at` and `publish_at` read too.
    pub fn now(&self) -> Instant {
        self.shared.timers.now()
    }

    /// Signals scheduled and not yet fired (intervals count once; the
    /// deadlines of async calls and async work are not counted).
    pub fn pending_timers(&self) -> usize {
        self.shared.timers.len()
    }

    /// Everything in the timer queue, including the deadlines of pending
    /// async calls and async work (tests check that a dropped future takes
    /// its deadline with it).
    #[doc(hidden)]
    pub fn timer_queue_len(&self) -> usize {
        self.shared.timers.queued()
    }

    /// Async work started by actions and not yet settled.
    pub fn pending_work(&self) -> usize {
        self.shared.work.len()
    }

    /// Deterministic mode: runs at most `max_turns` agent turns (a turn is
    /// one run-queue entry served: its agent takes one batch from its
    /// mailbox; an entry whose agent a `call` or a read already served does
    /// nothing), in run-queue order, on this thread, and says whether the
    /// runtime is idle afterwards.
    /// Calling it again continues where it stopped, in the same order as
    /// one `run_until_idle` would have run; this is how a test drives
    /// endless work (a ping-pong, a ticking agent) for a bounded time.
    pub fn run_steps(&self, max_turns: u64) -> Result<Steps, RunError> {
        if !self.shared.config.deterministic {
            return Err(RunError::NotDeterministic);
        }
        let before = self.shared.counters.processed.sum();
        let mut turns = 0;
        self.shared.fire_due();
        self.shared.work.poll_local();
        while turns < max_turns && self.shared.drive_one() {
            turns += 1;
        }
        Ok(Steps {
            turns,
            processed: self.shared.counters.processed.sum() - before,
            idle: self.shared.run_queue.is_empty(),
        })
    }

    /// Threaded mode: waits until every accepted signal has been processed
    /// or dead-lettered (in-flight count zero) or `timeout` passes; returns
    /// whether it got there. Timers not yet fired and async work not yet
    /// finished are not in flight (nothing of theirs was accepted yet).
    /// Deterministic mode: same as `run_until_idle`.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        self.settle_until(crate::exec::reply::deadline_after(timeout), || {
            self.metrics().in_flight() == 0
        })
    }

    /// Runs the runtime until idle and tells whether `done` holds
    /// (deterministic), or waits until `done` holds or `deadline` passes
    /// (threaded). The wait polls with a backoff from 50 µs to 5 ms: the
    /// counters it reads are sharded per thread, and a wake-up on every
    /// processed signal would tax the send path for a rare waiter.
    fn settle_until(&self, deadline: Instant, done: impl Fn() -> bool) -> bool {
        if self.shared.config.deterministic {
            self.shared.settle();
            return done();
        }
        let mut pause = Duration::from_micros(50);
        loop {
            if done() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// Counter totals since start.
    pub fn metrics(&self) -> Metrics {
        self.shared.metrics()
    }

    /// Takes the kept undelivered emitted signals (see [`Undelivered`]).
    pub fn take_undelivered(&self) -> Vec<Undelivered> {
        self.shared.take_undelivered()
    }

    /// Takes the reports of agents that their restart policy stopped
    /// ([`AgentSpec::restart`]): why, and the signals they handed back
    /// (counted dead-lettered, so accepted = processed + dead-lettered
    /// holds). Those not taken come back in the shutdown report's
    /// `stopped`.
    pub fn take_stopped(&self) -> Vec<StopReport> {
        self.shared.take_stopped()
    }

    /// Whether this runtime has no worker threads.
    pub fn is_deterministic(&self) -> bool {
        self.shared.config.deterministic
    }

    /// The implementation choices of this runtime.
    #[doc(hidden)]
    pub fn strategy(&self) -> Strategy {
        self.shared.config.strategy
    }

    /// Stops the runtime at once: refuses new work, lets every worker finish
    /// the batch in hand, joins the workers, and hands back every accepted
    /// signal that was not processed (dead letters), every timer that had
    /// not fired and the async work it cancelled. To finish queued work
    /// first, use [`shutdown_graceful`](Self::shutdown_graceful).
    pub fn shutdown(mut self) -> ShutdownReport {
        self.shutdown_inner(None)
    }

    /// The graceful shutdown, in one call: stops intake from outside (a
    /// `send`, `call`, `publish` or timer scheduling from a thread that is
    /// not running an agent is refused with `ShuttingDown`, its signal
    /// handed back), keeps
    /// running what was accepted, including everything that work sends on
    /// (signals actions emit or send, timers that fire, results of async
    /// work), until nothing is in flight and no async work is pending or
    /// `timeout` passes, then shuts down as [`shutdown`](Self::shutdown)
    /// does: whatever is still queued then comes back as dead letters, and
    /// timers that had not fired in `pending_timers`. The report's `drain`
    /// says whether it got to idle and how long it took.
    ///
    /// A periodic timer does not hold the drain up (its signal is accepted
    /// only when it fires, and is processed like any other meanwhile); it
    /// comes back in `pending_timers`. In deterministic mode the drain runs
    /// the runtime until idle at the current virtual time (the clock does
    /// not move), so `timeout` does not apply.
    ///
    /// ```
    /// use agentry::{AgentSpec, Instruction, Runtime, Signal};
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::builder().workers(2).build()?;
    /// let counter = rt.spawn(&AgentSpec::<u64>::new(0).on("tick", |n: &mut u64, _: &mut Instruction| {
    ///     *n += 1;
    ///     Ok(())
    /// }))?;
    /// for _ in 0..1000 {
    ///     counter.send(Signal::new("tick", "/t", "")?)?;
    /// }
    /// let report = rt.shutdown_graceful(Duration::from_secs(10));
    /// assert!(report.drain.is_some_and(|d| d.idle));
    /// assert!(report.dead_letters.is_empty());             // every tick ran
    /// assert_eq!(*counter.state()?, 1000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_graceful(mut self, timeout: Duration) -> ShutdownReport {
        let started = Instant::now();
        let deadline = crate::exec::reply::deadline_after(timeout);
        let idle = self.shared.begin_drain() && self.drain_until(deadline) && {
            // Idle: hold the timers (a firing in progress finishes and its
            // signal is accepted; later ones come back in the report, as do
            // timers scheduled from here on), then run what that last
            // firing delivered, so that no timer races the shutdown.
            self.shared.timers.hold(deadline);
            self.drain_until(deadline)
        };
        let took = started.elapsed();
        self.shutdown_inner(Some(report::Drain { idle, took }))
    }

    /// Runs (deterministic) or waits (threaded) until nothing is in flight
    /// and no async work is pending, or `deadline`.
    fn drain_until(&self, deadline: Instant) -> bool {
        self.settle_until(deadline, || {
            self.metrics().in_flight() == 0 && self.shared.work.len() == 0
        })
    }

    fn shutdown_inner(&mut self, drain: Option<report::Drain>) -> ShutdownReport {
        self.shut_down = true;
        let agents = self.shared.begin_shutdown();
        // No timer fires once the shutdown has begun (the timer thread
        // fires one timer at a time and checks between two): what was
        // scheduled comes back in the report, never half delivered. The
        // thread is joined below, once the mailboxes are closed.
        let (pending_timers, timer_thread) = self.shared.timers.halt();
        self.shared.run_queue.stop();
        // Close every mailbox first: each queued signal comes back as a dead
        // letter and each pending call fails, so no turn still running (on
        // a worker, or on a caller's thread) can be waiting for a reply that
        // the shutdown would never let come.
        let mut dead_letters = Vec::new();
        for agent in &agents {
            dead_letters.extend(agent.close(DeadLetterReason::Shutdown));
        }
        // Workers finish the instruction they run, then stop. A shutdown
        // requested from inside an action on a worker does not wait for its
        // own thread (it could not: that thread is the one waiting); the
        // worker stops when this action's turn ends.
        let me = std::thread::current().id();
        for worker in self.workers.drain(..) {
            if worker.thread().id() != me {
                let _ = worker.join();
            }
        }
        // Callers helping an agent along finish the instruction they run
        // (from inside a turn this does not wait; see `AgentRef::stop`).
        for agent in &agents {
            agent.quiesce();
        }
        // The timer thread finishes the firing in hand (a bus callback may
        // be running on it), unless this is it.
        if let Some(thread) = timer_thread
            && thread.thread().id() != me
        {
            let _ = thread.join();
        }
        // Async work is cancelled once no turn runs any more, so work that
        // the last turns started is cancelled and listed too.
        let cancelled_work = self.shared.work.cancel_all(&self.shared);
        // Break the reference cycles agent -> runtime -> bus -> agent (and
        // watched -> watcher through monitors; nobody is told at shutdown).
        self.bus.clear();
        self.shared.clear_monitors();
        self.shared.run_queue.drain();
        drop(agents);
        let mut metrics = self.shared.metrics();
        // Instructions running on this thread (a shutdown from inside an
        // action) finish after this returns; they are no dead letters, so
        // they count as processed, and accepted = processed + dead-lettered
        // holds in the report.
        metrics.processed += crate::agent::running_instructions();
        crate::imp::observe::shutdown(
            metrics.accepted,
            metrics.processed,
            metrics.dead_lettered,
            pending_timers.len(),
        );
        ShutdownReport {
            metrics,
            dead_letters,
            undelivered: self.shared.take_undelivered(),
            pending_timers,
            cancelled_work,
            stopped: self.shared.take_stopped(),
            drain,
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if !self.shut_down {
            let _ = self.shutdown_inner(None);
        }
    }
}
