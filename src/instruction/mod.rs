//! [`Instruction`]: one routed signal on its way through an agent.
//!
//! An instruction carries the signal (the input), the actions its routes
//! resolved to (in route order), the caller's reply slot for a `call`, and the
//! signals the actions emit (held back until the instruction commits). Actions
//! see it as `&mut Instruction`: they read the input and context and emit
//! follow-up signals through it.
//!
//! Instruction objects are the unit the `pooling` feature recycles: with it,
//! they come from a free list and are cleared in place on return, keeping the
//! capacity of their buffers (see `imp::pool`; `instruction::pool` is that pool typed).

pub(crate) mod pool;

use crate::exec::AgentAddr;
use crate::exec::reply::ReplySink;
use crate::exec::reserve::Reserved;
use crate::exec::work::WorkOrder;
use crate::imp::observe::Origin;
use crate::imp::pool::{Magazine, Pools, Recycle};
use crate::router::RouteId;
use crate::signal::{Payload, Signal, SignalId};
use crate::vocab::{ActionError, AgentId};
use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Buffers larger than this are shrunk when an instruction is recycled, so a
/// rare huge fan-out does not pin memory in the pool.
const KEEP_CAPACITY: usize = 32;

/// One routed signal being executed by an agent's actions.
///
/// ```
/// use agentry::{ActionError, AgentSpec, Instruction, Runtime, Signal};
///
/// // An action reads its input from the instruction and may emit signals,
/// // which are published on the bus once the action has committed.
/// let spec = AgentSpec::<u64, u64>::new(0).on("order.paid", |total: &mut u64, ins: &mut Instruction| {
///     *total += ins.data().len() as u64;
///     let shipped = Signal::builder("order.ship", "/billing").build().map_err(ActionError::failed)?;
///     ins.emit(shipped);
///     Ok(*total)
/// });
/// # let rt = Runtime::builder().deterministic().build().unwrap();
/// # let a = rt.spawn(&spec).unwrap();
/// # let _ = rt.bus().subscribe("order.ship", |_s: &Signal| {});
/// # a.send(Signal::new("order.paid", "/shop", "xyz").unwrap()).unwrap();
/// # rt.run_until_idle().unwrap();
/// # assert_eq!(*a.state().unwrap(), 3);
/// ```
pub struct Instruction {
    pub(crate) signal: Option<Signal>,
    pub(crate) routes: Vec<Resolved>,
    current: u32,
    pub(crate) reply: Option<ReplyTo>,
    pub(crate) outbound: Vec<Outbound>,
    agent: AgentId,
    /// Whether the runtime can run async work (`start`).
    pub(crate) can_start: bool,
    /// An action asked for a required emit (`emit_or_fail`, `send_to_or_fail`).
    pub(crate) must_deliver: bool,
    /// The sender's span and the accept time (features `tracing`, `metrics`).
    pub(crate) origin: Origin,
}

/// A route resolved to an action of the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub action: u32,
    pub route: RouteId,
}

/// A signal an action emitted, delivered after its instruction commits
/// (or work it started, or a signal it scheduled, started after it commits).
pub(crate) enum Outbound {
    Publish(Signal),
    Send(AgentAddr, Signal),
    /// A signal to this agent, after a delay.
    SendSelfAfter(Signal, Duration),
    /// Async work whose result comes back to this agent (boxed: it is
    /// rare, and the emit variants' size is what every batch moves).
    Start(Box<WorkOrder>),
    /// A publish that must be delivered or fail the action (reserved when
    /// the action returns; see `exec::reserve`).
    PublishOrFail(Signal),
    /// A send that must be delivered or fail the action.
    SendOrFail(AgentAddr, Signal),
    /// A required emit with its receivers' slots reserved.
    Reserved(Box<Reserved>),
}

/// Where a `call`'s answer goes.
pub(crate) struct ReplyTo {
    pub sink: Arc<dyn ReplySink>,
    pub ticket: u64,
}

impl ReplyTo {
    /// A caller waiting for a reply, not a receipt waiting for the outcome.
    pub(crate) fn is_caller(&self) -> bool {
        !self.sink.is_receipt()
    }
}

impl Instruction {
    /// An empty instruction, as the pool hands it out.
    pub(crate) fn blank() -> Self {
        Instruction {
            signal: None,
            routes: Vec::new(),
            current: 0,
            reply: None,
            outbound: Vec::new(),
            agent: AgentId(0),
            can_start: false,
            must_deliver: false,
            origin: Origin::default(),
        }
    }

    /// Clears in place for reuse, keeping (bounded) buffer capacity.
    pub(crate) fn recycle(&mut self) {
        self.signal = None;
        self.reply = None;
        self.current = 0;
        self.agent = AgentId(0);
        self.must_deliver = false;
        self.origin.clear();
        self.routes.clear();
        self.outbound.clear();
        if self.routes.capacity() > KEEP_CAPACITY {
            self.routes.shrink_to(KEEP_CAPACITY);
        }
        if self.outbound.capacity() > KEEP_CAPACITY {
            self.outbound.shrink_to(KEEP_CAPACITY);
        }
    }

    /// Whether this instruction holds nothing (as handed out by a pool).
    #[cfg(test)]
    pub(crate) fn is_blank(&self) -> bool {
        self.signal.is_none()
            && self.reply.is_none()
            && self.routes.is_empty()
            && self.outbound.is_empty()
    }

    pub(crate) fn load(&mut self, agent: AgentId, signal: Signal) {
        self.agent = agent;
        self.signal = Some(signal);
    }

    pub(crate) fn set_current(&mut self, index: usize) {
        self.current = u32::try_from(index).unwrap_or(u32::MAX);
    }

    pub(crate) fn take_signal(&mut self) -> Option<Signal> {
        self.signal.take()
    }

    /// The signal being processed.
    pub fn signal(&self) -> &Signal {
        // Invariant: an instruction reaches user code only while loaded.
        self.signal.as_ref().unwrap_or_else(|| empty_signal())
    }

    /// The signal's payload.
    pub fn data(&self) -> &Payload {
        self.signal().data()
    }

    /// The payload as UTF-8 text, or an
    /// [`invalid_input`](ActionError::invalid_input) error saying where it
    /// is not UTF-8. No data reads as `""`.
    pub fn text(&self) -> Result<&str, ActionError> {
        std::str::from_utf8(self.data()).map_err(|e| {
            ActionError::invalid_input(format!(
                "the data of signal `{}` is not UTF-8 text: {e}",
                self.ty()
            ))
        })
    }

    /// The payload parsed as JSON into a `T`, or an
    /// [`invalid_input`](ActionError::invalid_input) error naming `T` and
    /// what serde_json found wrong. Text `"1.50"` parses as a number too:
    /// the content type is not checked.
    ///
    /// ```
    /// # use agentry::{AgentSpec, Instruction, Runtime, Signal};
    /// #[derive(serde::Deserialize)]
    /// struct Order { qty: u32 }
    /// let spec = AgentSpec::<u32, u32>::new(0).on("order.placed", |n: &mut u32, ins: &mut Instruction| {
    ///     *n += ins.json::<Order>()?.qty;
    ///     Ok(*n)
    /// });
    /// # let rt = Runtime::builder().deterministic().build().unwrap();
    /// # let a = rt.spawn(&spec).unwrap();
    /// let order = Signal::json("order.placed", "/shop", &serde_json::json!({"qty": 3}))?;
    /// # let timeout = std::time::Duration::from_secs(5);
    /// assert_eq!(a.call(order, timeout)?, 3);
    /// let err = a.call(Signal::new("order.placed", "/shop", "three")?, timeout).unwrap_err();
    /// assert!(err.to_string().contains("Order"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ActionError> {
        let signal = self.signal();
        if !signal.has_data() {
            return Err(ActionError::invalid_input(format!(
                "signal `{}` carries no data, expected JSON for a `{}`",
                signal.ty(),
                std::any::type_name::<T>()
            )));
        }
        serde_json::from_slice(signal.data()).map_err(|e| {
            ActionError::invalid_input(format!(
                "the data of signal `{}` is not JSON for a `{}`: {e}",
                signal.ty(),
                std::any::type_name::<T>()
            ))
        })
    }

    /// The signal's type.
    pub fn ty(&self) -> &str {
        self.signal().ty()
    }

    /// The signal's id.
    pub fn signal_id(&self) -> &SignalId {
        self.signal().id()
    }

    /// The signal's source.
    pub fn source(&self) -> &str {
        self.signal().source()
    }

    /// The correlation id: the `correlationid` extension if the signal has
    /// a string one, else the signal's own id. Put it on follow-up signals
    /// to tie a chain of work together.
    pub fn correlation_id(&self) -> String {
        match self.signal().extension("correlationid") {
            Some(crate::signal::ExtensionValue::String(s)) => s.to_string(),
            _ => self.signal().id().to_string(),
        }
    }

    /// The agent executing this instruction.
    pub fn agent(&self) -> AgentId {
        self.agent
    }

    /// The route whose action is running.
    pub fn route(&self) -> Option<RouteId> {
        self.routes.get(self.current as usize).map(|r| r.route)
    }

    /// Whether a caller is waiting for this instruction's reply (`call`).
    /// A sender told when it settles (`send_settled`, the NATS import)
    /// is not a caller.
    pub fn is_call(&self) -> bool {
        self.reply.as_ref().is_some_and(ReplyTo::is_caller)
    }

    /// Publishes `signal` on the runtime's bus once this action commits.
    /// If the action fails, nothing it emitted is sent. A copy a subscriber
    /// refuses then (full mailbox, stopped), or a signal nobody subscribes
    /// to, cannot undo the committed action: it is counted, kept in
    /// [`Runtime::take_undelivered`](crate::Runtime::take_undelivered) and
    /// given to the
    /// [`on_undelivered`](crate::RuntimeBuilder::on_undelivered) hook. To
    /// have it fail the action instead, use
    /// [`emit_or_fail`](Self::emit_or_fail) (or
    /// [`AgentSpec::undeliverable`](crate::AgentSpec::undeliverable) for
    /// every emit of an agent type).
    pub fn emit(&mut self, signal: Signal) {
        self.outbound.push(Outbound::Publish(signal));
    }

    /// Sends `signal` to the agent `to` once this action commits. If the
    /// action fails, nothing it emitted is sent. A refused delivery (full
    /// mailbox, stopped agent) is counted and kept in the runtime's
    /// undelivered list, never dropped silently.
    pub fn send_to(&mut self, to: &AgentAddr, signal: Signal) {
        self.outbound.push(Outbound::Send(to.clone(), signal));
    }

    /// [`emit`](Self::emit), but delivery is required: when the action
    /// returns `Ok`, before it commits, every agent subscribed to the
    /// signal's type reserves a mailbox slot for it; if any refuses (full,
    /// stopped) or nobody subscribes, the action fails instead, with an
    /// [`Undeliverable`](crate::ActionErrorKind::Undeliverable) error
    /// whose `source()` is the [`DeliveryFailure`](crate::DeliveryFailure)
    /// (signal inside): its state changes are undone (as for any failed
    /// action under the agent's [`Atomicity`](crate::Atomicity)), nothing
    /// it emitted is sent, and a caller gets the error. Subscribers are
    /// the ones at the time the action returns.
    ///
    /// The one case a reservation cannot cover: a receiver stopped (or the
    /// runtime shut down) in the microseconds between the commit and the
    /// delivery; that copy is recorded as undelivered and goes to the
    /// [`on_undelivered`](crate::RuntimeBuilder::on_undelivered) hook.
    ///
    /// ```
    /// use agentry::{ActionErrorKind, AgentSpec, CallError, Instruction, Runtime, Signal};
    ///
    /// let rt = Runtime::builder().deterministic().build()?;
    /// let audit = rt.spawn(&AgentSpec::<u32>::new(0).mailbox_capacity(1)
    ///     .on("audit.denied", |n: &mut u32, _: &mut Instruction| { *n += 1; Ok(()) }))?;
    /// rt.bus().subscribe_agent("audit.**", &audit.addr())?;
    /// let limiter = rt.spawn(&AgentSpec::<u32, u32>::new(0).on("req", |denied: &mut u32, ins: &mut Instruction| {
    ///     *denied += 1;
    ///     ins.emit_or_fail(Signal::new("audit.denied", "/limiter", "")?);
    ///     Ok(*denied)
    /// }))?;
    /// assert_eq!(limiter.call(Signal::new("req", "/t", "")?, None)?, 1); // audit has room
    /// let err = limiter.call(Signal::new("req", "/t", "")?, None).unwrap_err(); // audit is full
    /// assert!(matches!(err, CallError::Action(ref e) if e.kind() == ActionErrorKind::Undeliverable));
    /// assert_eq!(*limiter.state()?, 1); // the second request was undone
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn emit_or_fail(&mut self, signal: Signal) {
        self.must_deliver = true;
        self.outbound.push(Outbound::PublishOrFail(signal));
    }

    /// [`send_to`](Self::send_to), but delivery is required: `to` reserves
    /// a mailbox slot when the action returns, or the action fails and is
    /// undone (see [`emit_or_fail`](Self::emit_or_fail)).
    pub fn send_to_or_fail(&mut self, to: &AgentAddr, signal: Signal) {
        self.must_deliver = true;
        self.outbound.push(Outbound::SendOrFail(to.clone(), signal));
    }

    /// Sends `signal` to this agent `delay` after this action commits (the
    /// runtime's clock: virtual in deterministic mode): a retry, a reminder,
    /// a periodic step that reschedules itself. If the action fails,
    /// nothing is scheduled. Accounted as
    /// [`AgentRef::send_after`](crate::AgentRef::send_after) (a scheduling
    /// refused by a shutdown is recorded as undelivered).
    pub fn send_self_after(&mut self, signal: Signal, delay: Duration) {
        self.outbound.push(Outbound::SendSelfAfter(signal, delay));
    }

    /// Starts async work once this action commits: `work` runs on the
    /// runtime's executor (see
    /// [`RuntimeBuilder::spawner`](crate::RuntimeBuilder::spawner); a
    /// deterministic runtime polls it itself), and the signal it produces
    /// is sent to this agent, routed like any other. The state changes only
    /// in the action that receives that signal, so atomicity holds: the
    /// future cannot touch the state, and a failed action starts nothing.
    ///
    /// If the runtime shuts down first, the work is cancelled (its future
    /// dropped) and listed in the shutdown report's `cancelled_work`. If
    /// the agent stopped meanwhile, its signal is recorded as undelivered.
    ///
    /// Fails (an error for the action to return) when the runtime has no
    /// spawner.
    pub fn start(
        &mut self,
        work: impl Future<Output = Signal> + Send + 'static,
    ) -> Result<(), ActionError> {
        self.start_order(WorkOrder {
            future: Box::pin(work),
            timeout: None,
        })
    }

    /// [`start`](Self::start) with a deadline: if `work` has not finished
    /// `timeout` after the action committed, it is cancelled (its future
    /// dropped at its next poll) and `on_timeout` is sent to this agent
    /// instead. Exactly one of the two signals arrives.
    pub fn start_with_timeout(
        &mut self,
        work: impl Future<Output = Signal> + Send + 'static,
        timeout: Duration,
        on_timeout: Signal,
    ) -> Result<(), ActionError> {
        self.start_order(WorkOrder {
            future: Box::pin(work),
            timeout: Some((timeout, on_timeout)),
        })
    }

    fn start_order(&mut self, order: WorkOrder) -> Result<(), ActionError> {
        if !self.can_start {
            return Err(ActionError::message(
                "async work needs an executor: build the runtime with `RuntimeBuilder::spawner`",
            ));
        }
        self.outbound.push(Outbound::Start(Box::new(order)));
        Ok(())
    }
}

fn empty_signal() -> &'static Signal {
    static EMPTY: std::sync::OnceLock<Signal> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| {
        Signal::builder("agentry.empty", "agentry:")
            .id("empty")
            .build()
            .unwrap_or_else(|_| unreachable!("a constant, valid signal"))
    })
}

impl Recycle for Instruction {
    fn blank() -> Self {
        Instruction::blank()
    }

    fn recycle(&mut self) {
        Instruction::recycle(self)
    }

    fn pools() -> &'static Pools<Self> {
        static POOLS: Pools<Instruction> = Pools::new();
        &POOLS
    }

    fn magazine() -> &'static std::thread::LocalKey<Magazine<Self>> {
        thread_local! {
            static LOCAL: Magazine<Instruction> = const { RefCell::new(Vec::new()) };
        }
        &LOCAL
    }
}

impl std::fmt::Debug for Instruction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instruction")
            .field("agent", &self.agent)
            .field("signal", &self.signal)
            .field("routes", &self.routes)
            .field("is_call", &self.reply.is_some())
            .field("outbound", &self.outbound.len())
            .finish()
    }
}
