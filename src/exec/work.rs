//! Async work started by actions ([`Instruction::start`]): a future whose
//! output signal comes back to its agent, routed like any other signal.
//!
//! State changes only inside actions: the future holds no reference to the
//! state, and its result is a signal the agent processes in a later turn.
//! The work is started only when the action that started it commits (a
//! failed action starts nothing, as it emits nothing).
//!
//! Each piece of work settles exactly once, whichever comes first:
//! * its future finishes: its signal is sent to the agent;
//! * its deadline fires: the timeout signal is sent instead, and the
//!   future is dropped at its next poll (its task is woken for that);
//! * the runtime shuts down: it is cancelled the same way and listed in the
//!   shutdown report;
//! * its future panics: the panic is recorded as undelivered work.
//!
//! A result the agent refuses (stopped, full mailbox) is recorded
//! undelivered, never dropped silently. Threaded runtimes hand the future
//! to the application's spawner (`RuntimeBuilder::spawner`); deterministic
//! runtimes poll it on the driver's thread, between turns, so async work
//! replays exactly with the virtual clock.
//!
//! [`Instruction::start`]: crate::Instruction::start

use super::timers::TimerKey;
use super::timers::{Deadline, Fire};
use super::{AgentTask, Context};
use crate::signal::{Signal, SignalId};
use crate::vocab::AgentId;
use crate::vocab::report::{CancelledWork, DeliveryFailure, UndeliveredFrom};
use std::collections::HashMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::Duration;

/// A boxed future as a spawner receives it.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs a future to completion on the application's executor.
pub(crate) type Spawner = Arc<dyn Fn(BoxFuture) + Send + Sync>;

/// What an action asked to start (see the module docs).
pub(crate) struct WorkOrder {
    pub future: Pin<Box<dyn Future<Output = Signal> + Send>>,
    pub timeout: Option<(Duration, Signal)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One piece of work, shared by its future, its deadline and the registry.
struct Work {
    id: u64,
    agent: AgentId,
    started_by: SignalId,
    to: Arc<dyn AgentTask>,
    state: Mutex<WorkState>,
}

#[derive(Default)]
struct WorkState {
    settled: bool,
    waker: Option<Waker>,
    deadline: Option<TimerKey>,
    on_timeout: Option<Signal>,
}

impl Work {
    /// Settles the work if nobody did yet; returns the timeout signal and
    /// the deadline timer to cancel (`None` if it was settled already).
    fn settle(&self) -> Option<(Option<Signal>, Option<TimerKey>)> {
        let mut st = lock(&self.state);
        if st.settled {
            return None;
        }
        st.settled = true;
        let waker = st.waker.take();
        let out = (st.on_timeout.take(), st.deadline.take());
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
        Some(out)
    }

    fn deliver(&self, rt: &Context, signal: Signal) {
        if let Err(e) = super::internal(|| self.to.deliver(&self.to, signal)) {
            rt.record_undelivered(UndeliveredFrom::Work(self.agent), e.into());
        }
    }
}

impl Deadline for Work {
    fn expire(&self, rt: &Context) {
        if let Some((on_timeout, _)) = self.settle() {
            if let Some(signal) = on_timeout {
                self.deliver(rt, signal);
            }
            // Forgotten only once its signal is accepted: until then the
            // work counts as pending, so a graceful drain waits for it.
            rt.work.forget(self.id);
        }
    }
}

/// The future handed to the executor: polls the work's future unless the
/// work settled meanwhile (then it drops it and ends).
struct Run {
    work: Arc<Work>,
    future: Option<Pin<Box<dyn Future<Output = Signal> + Send>>>,
    rt: Weak<Context>,
}

impl Future for Run {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        {
            let mut st = lock(&self.work.state);
            if st.settled {
                drop(st);
                self.future = None;
                return Poll::Ready(());
            }
            if !st.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                st.waker = Some(cx.waker().clone());
            }
        }
        let Some(future) = self.future.as_mut() else {
            return Poll::Ready(());
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)));
        let result = match outcome {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(signal)) => Ok(signal),
            Err(payload) => Err(crate::vocab::ActionError::from_panic(payload)),
        };
        self.future = None;
        let Some(rt) = self.rt.upgrade() else {
            return Poll::Ready(());
        };
        if let Some((_, deadline)) = self.work.settle() {
            if let Some(id) = deadline {
                rt.timers.cancel(id);
            }
            match result {
                Ok(signal) => self.work.deliver(&rt, signal),
                Err(panic) => rt.record_undelivered(
                    UndeliveredFrom::Work(self.work.agent),
                    DeliveryFailure::WorkPanicked {
                        message: panic.text().to_owned(),
                    },
                ),
            }
            // After the delivery (see `expire`).
            rt.work.forget(self.work.id);
        }
        Poll::Ready(())
    }
}

/// A future the deterministic driver polls (see [`WorkSet::poll_local`]).
struct LocalTask {
    future: Mutex<Option<BoxFuture>>,
    woken: AtomicBool,
    /// The set's flag: some local task was woken.
    any_woken: Arc<AtomicBool>,
}

impl Wake for LocalTask {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.any_woken.store(true, Ordering::Release);
    }
}

/// The runtime's async work: where it runs, and what is in flight.
pub(crate) struct WorkSet {
    spawner: Option<Spawner>,
    deterministic: bool,
    next_id: AtomicU64,
    live: Mutex<Live>,
    /// Deterministic mode: the futures the driver polls, in start order.
    local: Mutex<Vec<Arc<LocalTask>>>,
    /// Some local future was started or woken since the last poll (the
    /// driver checks this flag, not the list, when nothing happened).
    any_woken: Arc<AtomicBool>,
}

#[derive(Default)]
struct Live {
    works: HashMap<u64, Arc<Work>, foldhash::fast::FixedState>,
    closed: bool,
}

impl WorkSet {
    pub fn new(spawner: Option<Spawner>, deterministic: bool) -> Self {
        WorkSet {
            spawner,
            deterministic,
            next_id: AtomicU64::new(1),
            live: Mutex::new(Live::default()),
            local: Mutex::new(Vec::new()),
            any_woken: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether actions can start work here (a deterministic runtime, or a
    /// threaded one with a spawner).
    pub fn can_start(&self) -> bool {
        self.deterministic || self.spawner.is_some()
    }

    /// Work in flight.
    pub fn len(&self) -> usize {
        lock(&self.live).works.len()
    }

    fn forget(&self, id: u64) {
        lock(&self.live).works.remove(&id);
    }

    /// Starts `order` for `agent` (its committed action ran for the signal
    /// `started_by`); its result goes to `to`.
    pub fn start(
        &self,
        rt: &Arc<Context>,
        agent: AgentId,
        started_by: SignalId,
        to: Arc<dyn AgentTask>,
        order: WorkOrder,
    ) {
        let work = Arc::new(Work {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            agent,
            started_by,
            to,
            state: Mutex::new(WorkState::default()),
        });
        {
            let mut live = lock(&self.live);
            if live.closed {
                // The shutdown report is written; the work never starts,
                // as if it had been cancelled with the rest.
                return;
            }
            live.works.insert(work.id, work.clone());
        }
        if let Some((after, on_timeout)) = order.timeout {
            lock(&work.state).on_timeout = Some(on_timeout);
            let due = rt
                .timers
                .now_ns()
                .saturating_add(super::timers::nanos(after));
            if let Ok(id) = rt.schedule(due, None, Fire::WorkDeadline(work.clone())) {
                lock(&work.state).deadline = Some(id);
            }
        }
        let run: BoxFuture = Box::pin(Run {
            work: work.clone(),
            future: Some(order.future),
            rt: Arc::downgrade(rt),
        });
        if self.deterministic {
            lock(&self.local).push(Arc::new(LocalTask {
                future: Mutex::new(Some(run)),
                woken: AtomicBool::new(true),
                any_woken: self.any_woken.clone(),
            }));
            self.any_woken.store(true, Ordering::Release);
        } else if let Some(spawn) = &self.spawner {
            // The spawner is application code running inside a turn: a
            // panic (say, `tokio::spawn` outside a tokio context) must not
            // unwind through the agent. The work never started; it is
            // recorded, as a panicking future would be.
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| spawn(run))) {
                let message = crate::vocab::ActionError::from_panic(payload)
                    .text()
                    .to_owned();
                if let Some((_, deadline)) = work.settle() {
                    if let Some(key) = deadline {
                        rt.timers.cancel(key);
                    }
                    self.forget(work.id);
                    rt.record_undelivered(
                        UndeliveredFrom::Work(agent),
                        DeliveryFailure::WorkPanicked {
                            message: format!("the spawner panicked: {message}"),
                        },
                    );
                }
            }
        }
    }

    /// Deterministic mode: polls every woken local future once, in start
    /// order; returns how many were polled.
    pub fn poll_local(&self) -> usize {
        if !self.any_woken.swap(false, Ordering::AcqRel) {
            return 0;
        }
        let tasks: Vec<Arc<LocalTask>> = lock(&self.local)
            .iter()
            .filter(|t| t.woken.swap(false, Ordering::AcqRel))
            .cloned()
            .collect();
        for task in &tasks {
            let waker = Waker::from(task.clone());
            let mut cx = TaskContext::from_waker(&waker);
            let mut slot = lock(&task.future);
            if let Some(future) = slot.as_mut()
                && future.as_mut().poll(&mut cx).is_ready()
            {
                *slot = None;
            }
        }
        if !tasks.is_empty() {
            lock(&self.local).retain(|t| lock(&t.future).is_some());
        }
        tasks.len()
    }

    /// Shutdown: cancels the work in flight (each future is dropped at its
    /// next poll; local ones now) and lists it; later starts do nothing.
    pub fn cancel_all(&self, rt: &Context) -> Vec<CancelledWork> {
        let works: Vec<Arc<Work>> = {
            let mut live = lock(&self.live);
            live.closed = true;
            live.works.drain().map(|(_, w)| w).collect()
        };
        let mut cancelled = Vec::with_capacity(works.len());
        for work in works {
            if let Some((_, deadline)) = work.settle() {
                if let Some(id) = deadline {
                    rt.timers.cancel(id);
                }
                cancelled.push((work.id, work.agent, work.started_by.clone()));
            }
        }
        cancelled.sort_by_key(|c| c.0);
        lock(&self.local).clear();
        cancelled
            .into_iter()
            .map(|(_, agent, started_by)| CancelledWork { agent, started_by })
            .collect()
    }
}
