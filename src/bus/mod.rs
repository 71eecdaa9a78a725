//! Publish/subscribe inside the process.
//!
//! Subscribers (agents or callbacks) register type patterns; [`Bus::publish`]
//! fans a signal out to every match, in route order (most specific first, then
//! priority, then subscription order). Delivery to an agent has exactly the
//! guarantees of [`AgentRef::send`](crate::AgentRef::send): a subscriber whose
//! mailbox is full refuses its copy, and the copy comes back in the
//! [`PublishReport`], never dropped. With `zero-copy`, all copies share one
//! payload buffer.
//!
//! Callbacks run synchronously on the publishing thread (for signals emitted
//! by actions: the thread running the emitting agent, after its batch
//! committed). A panicking callback is reported, not propagated.

use crate::agent::route_cell::RouteCell;
use crate::agent::routes::RouteTable;
use crate::exec::reserve::{Receiver, Reservation, Reserved};
use crate::exec::timers::TimerHandle;
use crate::exec::{AgentAddr, Context, Emit};
use crate::router::{Priority, RouteError, Router};
use crate::signal::Signal;
use crate::vocab::error::ScheduleError;
use crate::vocab::report::{DeliveryFailure, UndeliveredFrom};
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::exec::listener::Callback;
use crate::exec::listener::{ClosureSink, Listener, Sink};
use crate::exec::receipt::Receipt;
use crate::vocab::error::CallError;

pub use crate::vocab::SubscriptionId;

#[derive(Clone)]
pub(crate) enum Subscriber {
    Agent(AgentAddr),
    Callback(Listener),
}

/// The bus's routing state, shared by all handles of one runtime.
pub(crate) struct BusCore {
    table: RouteCell<Subscriber>,
    fast_path: bool,
}

impl BusCore {
    pub fn new(fast_path: bool) -> Self {
        BusCore {
            table: RouteCell::new(Arc::new(RouteTable::new(Router::new(), fast_path))),
            fast_path,
        }
    }

    /// Drops every subscription (shutdown: breaks agent/runtime cycles).
    pub fn clear(&self) {
        self.table.clear(self.fast_path);
    }

    /// Fans `signal` out to every matching subscriber.
    pub fn publish(&self, rt: &Context, signal: Signal) -> Result<PublishReport, PublishError> {
        self.publish_counted(rt, signal, None)
    }

    /// [`publish`](Self::publish), with every delivery to an agent counted
    /// by `receipt` (told when each has settled).
    #[inline(always)]
    pub(crate) fn publish_counted(
        &self,
        rt: &Context,
        signal: Signal,
        receipt: Option<&Arc<Receipt>>,
    ) -> Result<PublishReport, PublishError> {
        if !rt.intake_open() && crate::agent::refuses_now(rt) {
            return Err(PublishError::ShuttingDown(Box::new(signal)));
        }
        let Some(_nested) = Nested::enter() else {
            return Err(PublishError::TooDeep {
                limit: MAX_PUBLISH_DEPTH,
                signal: Box::new(signal),
            });
        };
        let table = self.table.load();
        let mut slots = crate::router::scratch::take();
        table.candidates(signal.type_text(), &mut slots);
        if slots.is_empty() {
            crate::router::scratch::put(slots);
            return Err(PublishError::NoSubscribers(Box::new(signal)));
        }
        // The original signal goes to the last agent subscriber when no
        // callback follows it; every other agent gets a clone.
        let last_agent = slots.iter().rposition(|s| {
            matches!(
                table.router.slot(*s).map(|r| r.target()),
                Some(Subscriber::Agent(_))
            )
        });
        let callbacks_after = last_agent.is_some_and(|last| {
            slots[last + 1..].iter().any(|s| {
                matches!(
                    table.router.slot(*s).map(|r| r.target()),
                    Some(Subscriber::Callback(_))
                )
            })
        });
        let mut report = PublishReport {
            delivered: 0,
            failures: Vec::new(),
        };
        let mut original = Some(signal);
        for (i, &slot) in slots.iter().enumerate() {
            let Some(route) = table.router.slot(slot) else {
                continue;
            };
            let Some(signal) = original.as_ref() else {
                break;
            };
            match route.target() {
                Subscriber::Agent(addr) => {
                    let copy = if Some(i) == last_agent && !callbacks_after {
                        original.take()
                    } else {
                        Some(signal.clone())
                    };
                    if let Some(copy) = copy {
                        let sent = match receipt {
                            None => addr.send(copy),
                            Some(receipt) => addr.send_counted(copy, receipt),
                        };
                        match sent {
                            Ok(()) => report.delivered += 1,
                            Err(e) => report.failures.push(DeliveryFailure::Refused(e)),
                        }
                    }
                }
                Subscriber::Callback(listener) => {
                    match listener.offer(SubscriptionId(route.id()), signal) {
                        None => report.delivered += 1,
                        Some(failure) => report.failures.push(failure),
                    }
                }
            }
        }
        crate::router::scratch::put(slots);
        Ok(report)
    }
}

impl Emit for BusCore {
    fn reserve(&self, rt: &Context, signal: Signal) -> Result<Reserved, DeliveryFailure> {
        if !rt.intake_open() && crate::agent::refuses_now(rt) {
            return Err(DeliveryFailure::ShuttingDown(Box::new(signal)));
        }
        let table = self.table.load();
        let mut slots = crate::router::scratch::take();
        table.candidates(signal.type_text(), &mut slots);
        let mut receivers = Vec::with_capacity(slots.len());
        let mut refused = None;
        for &slot in slots.iter() {
            let Some(route) = table.router.slot(slot) else {
                continue;
            };
            match route.target() {
                Subscriber::Agent(addr) => match Reservation::take(addr.task(), &signal) {
                    Ok(held) => receivers.push(Receiver::Agent(held)),
                    Err(failure) => {
                        refused = Some(failure);
                        break;
                    }
                },
                Subscriber::Callback(listener) => {
                    match listener.reserve(SubscriptionId(route.id()), &signal) {
                        Ok(held) => {
                            receivers.push(Receiver::Listener(SubscriptionId(route.id()), held))
                        }
                        Err(failure) => {
                            refused = Some(failure);
                            break;
                        }
                    }
                }
            }
        }
        crate::router::scratch::put(slots);
        // On a refusal the slots held so far are released as `receivers`
        // drops.
        match refused {
            Some(failure) => Err(failure),
            None if receivers.is_empty() => Err(DeliveryFailure::NoSubscribers(Box::new(signal))),
            None => Ok(Reserved { signal, receivers }),
        }
    }

    fn emit(&self, rt: &Context, from: UndeliveredFrom, signal: Signal) {
        match self.publish(rt, signal) {
            Ok(report) => {
                for failure in report.failures {
                    rt.record_undelivered(from, failure);
                }
            }
            Err(e) => rt.record_undelivered(from, e.into_failure()),
        }
    }
}

/// The outcome of a publish that reached at least one subscriber.
#[derive(Debug, Default, PartialEq)]
#[must_use = "a publish report may hold signals that were not delivered"]
pub struct PublishReport {
    /// Subscribers that accepted the signal.
    pub delivered: usize,
    /// Subscribers that did not, each with the reason (refused copies are
    /// inside).
    pub failures: Vec<DeliveryFailure>,
}

impl PublishReport {
    /// Whether every matching subscriber accepted the signal.
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
    }
}

/// A publish that reached nobody; the signal is handed back.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PublishError {
    /// No subscription matches the signal's type.
    NoSubscribers(Box<Signal>),
    /// The runtime is shutting down.
    ShuttingDown(Box<Signal>),
    /// A bus callback published, whose callback published, and so on,
    /// [`MAX_PUBLISH_DEPTH`] deep on one thread: this publish would go one
    /// deeper, and is refused so that a cascade cannot overflow the stack.
    TooDeep {
        /// The limit, [`MAX_PUBLISH_DEPTH`].
        limit: usize,
        /// The signal, handed back.
        signal: Box<Signal>,
    },
}

/// How deep publishes may nest on one thread (a callback that publishes
/// runs its subscribers' callbacks inside its own publish). Deeper ones are
/// refused with [`PublishError::TooDeep`]; 64 levels use a few tens of KiB
/// of stack, far below the 2 MiB a spawned thread gets.
pub const MAX_PUBLISH_DEPTH: usize = 64;

thread_local! {
    /// Publishes in progress on this thread.
    static PUBLISH_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One level of publish nesting, left when dropped (also when unwinding).
struct Nested;

impl Nested {
    /// Enters one more level, unless that would pass the limit.
    fn enter() -> Option<Nested> {
        PUBLISH_DEPTH
            .try_with(|d| {
                (d.get() < MAX_PUBLISH_DEPTH).then(|| {
                    d.set(d.get() + 1);
                    Nested
                })
            })
            .ok()
            .flatten()
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        let _ = PUBLISH_DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
    }
}

impl PublishError {
    /// The signal that was not published.
    pub fn into_signal(self) -> Signal {
        match self {
            PublishError::NoSubscribers(s)
            | PublishError::ShuttingDown(s)
            | PublishError::TooDeep { signal: s, .. } => *s,
        }
    }

    pub(crate) fn into_failure(self) -> DeliveryFailure {
        match self {
            PublishError::NoSubscribers(s) => DeliveryFailure::NoSubscribers(s),
            PublishError::ShuttingDown(s) => DeliveryFailure::ShuttingDown(s),
            PublishError::TooDeep { limit, signal } => DeliveryFailure::TooDeep { limit, signal },
        }
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::NoSubscribers(s) => write!(
                f,
                "no subscription matches type `{}`; the signal is handed back",
                s.ty()
            ),
            PublishError::ShuttingDown(s) => write!(
                f,
                "the runtime is shutting down; the `{}` signal is handed back",
                s.ty()
            ),
            PublishError::TooDeep { limit, signal } => write!(
                f,
                "bus callbacks published {limit} levels deep on one thread; the `{}` signal is handed back (publish it from outside the callback, or send it to an agent)",
                signal.ty()
            ),
        }
    }
}

impl Error for PublishError {}

/// A handle to a runtime's bus. Cheap to clone.
///
/// ```
/// use agentry::{AgentSpec, Instruction, Runtime, Signal};
/// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
///
/// let rt = Runtime::builder().deterministic().build()?;
/// let audit = rt.spawn(&AgentSpec::<Vec<String>>::new(Vec::new())
///     .on("order.**", |log: &mut Vec<String>, ins: &mut Instruction| { log.push(ins.ty().to_owned()); Ok(()) }))?;
/// let seen = Arc::new(AtomicUsize::new(0));
/// let bus = rt.bus();
/// bus.subscribe_agent("order.**", &audit.addr())?;
/// let s = seen.clone();
/// bus.subscribe("order.*.created", move |_sig: &Signal| { s.fetch_add(1, Ordering::Relaxed); })?;
///
/// let report = bus.publish(Signal::new("order.item.created", "/shop", "")?)?;
/// assert_eq!(report.delivered, 2);
/// rt.run_until_idle()?;
/// assert_eq!(*audit.state()?, vec!["order.item.created".to_string()]);
/// assert_eq!(seen.load(Ordering::Relaxed), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Bus {
    core: Arc<BusCore>,
    rt: Arc<Context>,
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("subscriptions", &self.subscriptions())
            .finish()
    }
}

impl Bus {
    pub(crate) fn new(core: Arc<BusCore>, rt: Arc<Context>) -> Self {
        Bus { core, rt }
    }

    fn add(
        &self,
        pattern: &str,
        priority: i32,
        subscriber: Subscriber,
    ) -> Result<SubscriptionId, RouteError> {
        let pattern = crate::router::Pattern::parse(pattern)?;
        let priority = Priority::new(priority)?;
        Ok(SubscriptionId(
            self.core.table.insert(pattern, priority, subscriber),
        ))
    }

    /// Calls `callback` (on the publishing thread) for every published signal
    /// whose type matches `pattern`.
    pub fn subscribe(
        &self,
        pattern: &str,
        callback: impl Fn(&Signal) + Send + Sync + 'static,
    ) -> Result<SubscriptionId, RouteError> {
        self.add(
            pattern,
            0,
            Subscriber::Callback(Listener::Callback(Arc::new(callback))),
        )
    }

    /// As [`subscribe`](Self::subscribe), for a callback that may refuse
    /// a signal with a reason (a bounded buffer that is full; the NATS
    /// export is one). A refusal is reported as a full mailbox is, with
    /// the signal inside ([`DeliveryFailure::SinkRefused`]): in the
    /// [`PublishReport`] of a publish, or as undelivered for an action's
    /// emit. A sink cannot reserve room ahead, so for an
    /// [`emit_or_fail`](crate::Instruction::emit_or_fail) it counts as
    /// accepting, and a refusal after the commit is recorded as
    /// undelivered.
    pub fn subscribe_sink(
        &self,
        pattern: &str,
        sink: impl Fn(&Signal) -> Result<(), String> + Send + Sync + 'static,
    ) -> Result<SubscriptionId, RouteError> {
        self.subscribe_reserving(pattern, Arc::new(ClosureSink(Arc::new(sink))))
    }

    /// Subscribes a sink of the crate's own that can hold room ahead (the
    /// NATS export), so a required emit into it fails the action when it
    /// is full instead of being recorded undelivered after the commit.
    pub(crate) fn subscribe_reserving(
        &self,
        pattern: &str,
        sink: Arc<dyn Sink>,
    ) -> Result<SubscriptionId, RouteError> {
        self.add(pattern, 0, Subscriber::Callback(Listener::Sink(sink)))
    }

    /// Delivers every published signal whose type matches `pattern` to
    /// `agent`, where its own routes pick the actions.
    pub fn subscribe_agent(
        &self,
        pattern: &str,
        agent: &AgentAddr,
    ) -> Result<SubscriptionId, RouteError> {
        self.add(pattern, 0, Subscriber::Agent(agent.clone()))
    }

    /// As [`subscribe_agent`](Self::subscribe_agent), with a priority in
    /// -100..=100 deciding the order among equally specific subscriptions.
    pub fn subscribe_agent_with_priority(
        &self,
        pattern: &str,
        priority: i32,
        agent: &AgentAddr,
    ) -> Result<SubscriptionId, RouteError> {
        self.add(pattern, priority, Subscriber::Agent(agent.clone()))
    }

    /// Removes a subscription.
    pub fn unsubscribe(&self, id: SubscriptionId) -> Result<(), RouteError> {
        self.core.table.remove(id.0)
    }

    /// Fans `signal` out to every matching subscriber. `Err` hands the
    /// signal back when nobody matched (or the runtime is shutting down);
    /// otherwise the report lists per-subscriber refusals with their copies.
    pub fn publish(&self, signal: Signal) -> Result<PublishReport, PublishError> {
        self.core.publish(&self.rt, signal)
    }

    /// [`publish`](Self::publish), and calls `on_settled` once every agent
    /// that accepted a copy has settled it: `Ok(())` when each copy's
    /// instruction committed, or the first failure (an action's error,
    /// its state change rolled back, or `Stopped`/`ShutDown` for a copy
    /// dead-lettered before it ran). Callbacks run during the publish, so
    /// they are done before it returns. Copies the report lists as refused
    /// are not waited for. On `Err` nothing was delivered and `on_settled`
    /// is dropped uncalled.
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
    /// rt.bus().subscribe_agent("tick", &counter.addr())?;
    /// let (done, settled) = mpsc::channel();
    /// let report = rt.bus().publish_settled(Signal::new("tick", "/clock", "")?, move |outcome| {
    ///     done.send(outcome).unwrap();
    /// })?;
    /// assert!(report.is_complete());
    /// assert!(settled.try_recv().is_err(), "not processed yet");
    /// rt.run_until_idle()?;
    /// assert_eq!(settled.try_recv()?, Ok(()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_settled(
        &self,
        signal: Signal,
        on_settled: impl FnOnce(Result<(), CallError>) + Send + 'static,
    ) -> Result<PublishReport, PublishError> {
        let receipt = Arc::new(Receipt::new(on_settled));
        let published = self.publish_counted(signal, &receipt);
        if published.is_err() {
            receipt.disarm();
        }
        receipt.seal();
        published
    }

    /// [`publish`](Self::publish), with every delivery to an agent counted
    /// by `receipt`, which the caller seals.
    pub(crate) fn publish_counted(
        &self,
        signal: Signal,
        receipt: &Arc<Receipt>,
    ) -> Result<PublishReport, PublishError> {
        self.core.publish_counted(&self.rt, signal, Some(receipt))
    }

    /// Publishes `signal` `delay` from now (the runtime's clock: virtual in
    /// deterministic mode). It is published when the timer fires, from the
    /// timer thread (deterministic: the driver); bus callbacks then run on
    /// that thread. Deliveries that fail then are recorded as undelivered
    /// with the timer's id; if the runtime shuts down first, the signal
    /// comes back in the shutdown report's `pending_timers`.
    pub fn publish_after(
        &self,
        signal: Signal,
        delay: Duration,
    ) -> Result<TimerHandle, ScheduleError> {
        let due = self.rt.instant_after(delay);
        self.publish_at(signal, due)
    }

    /// Publishes `signal` at `at`; see [`publish_after`](Self::publish_after).
    pub fn publish_at(&self, signal: Signal, at: Instant) -> Result<TimerHandle, ScheduleError> {
        if !self.rt.intake_open() && crate::agent::refuses_now(&self.rt) {
            return Err(ScheduleError::ShuttingDown(Box::new(signal)));
        }
        self.rt.schedule_signal(None, signal, at, None)
    }

    /// Publishes a copy of `signal` (each with a fresh id) every `period`,
    /// the first one `period` from now, until the handle cancels it or the
    /// runtime shuts down; fixed rate, as
    /// [`AgentRef::send_interval`](crate::AgentRef::send_interval).
    pub fn publish_interval(
        &self,
        signal: Signal,
        period: Duration,
    ) -> Result<TimerHandle, ScheduleError> {
        let due = self.rt.instant_after(period);
        if !self.rt.intake_open() && crate::agent::refuses_now(&self.rt) {
            return Err(ScheduleError::ShuttingDown(Box::new(signal)));
        }
        self.rt.schedule_signal(None, signal, due, Some(period))
    }

    /// [`publish_interval`](Self::publish_interval) with the first firing
    /// at `start`.
    pub fn publish_interval_at(
        &self,
        signal: Signal,
        start: Instant,
        period: Duration,
    ) -> Result<TimerHandle, ScheduleError> {
        if !self.rt.intake_open() && crate::agent::refuses_now(&self.rt) {
            return Err(ScheduleError::ShuttingDown(Box::new(signal)));
        }
        self.rt.schedule_signal(None, signal, start, Some(period))
    }

    /// Active subscriptions.
    pub fn subscriptions(&self) -> usize {
        self.core.table.load().router.len()
    }
}
