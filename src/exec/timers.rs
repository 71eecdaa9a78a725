//! Timers: signals scheduled for later, and the deadlines of async calls
//! and async work.
//!
//! One queue per runtime, ordered by (due time, timer id): a `BTreeMap`,
//! so finding the next due timer, scheduling and cancelling each cost
//! O(log n), and a cancelled timer frees its memory at once (a binary heap
//! with tombstones would keep it until it came due; a hashed wheel would
//! need a tick thread even when nothing is due). A hash index id -> due
//! finds a timer to cancel; an interval keeps its id and moves in the map
//! each time it fires. `benches/timers.rs` measures a firing with 10 and
//! 100,000 timers pending, and the bytes per pending timer.
//!
//! Time is nanoseconds since the runtime's origin. A threaded runtime reads
//! the real clock and fires from one thread (`agentry-timer`, started by
//! the first schedule), which sleeps on a condvar until the earliest due
//! time. A deterministic runtime reads a virtual clock that only
//! `Runtime::advance` moves; its driver fires what is due.
//!
//! Firing order is the key order in both modes: by due time, then by
//! scheduling order. Per target, a threaded and a deterministic run of the
//! same schedule therefore deliver the same sequence
//! (`tests/timers.rs` compares them).

use super::reply::ReplySink;
use super::{AgentTask, Context};
use crate::signal::Signal;
use crate::vocab::TimerId;
use crate::vocab::report::{PendingTimer, TimerTarget};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Timers the timer thread takes from the queue per lock (the rest wait for
/// the next round, so a schedule is never blocked behind a long burst).
const FIRE_BATCH: usize = 256;

/// A scheduled signal: cancel it, or ask whether it will still fire.
/// Dropping the handle does not cancel the timer (an interval then runs
/// until its agent stops or the runtime shuts down).
#[derive(Clone)]
pub struct TimerHandle {
    id: TimerId,
    rt: Weak<Context>,
}

impl TimerHandle {
    pub(crate) fn new(id: TimerId, rt: &Arc<Context>) -> Self {
        TimerHandle {
            id,
            rt: Arc::downgrade(rt),
        }
    }

    /// The timer's id (as in undelivered records and the shutdown report).
    pub fn id(&self) -> TimerId {
        self.id
    }

    /// Cancels the timer; returns whether it was still pending. An interval
    /// stops firing; a one-shot timer that already fired returns `false`
    /// (its signal was sent). A firing that raced the cancel and won is
    /// delivered.
    pub fn cancel(&self) -> bool {
        self.rt.upgrade().is_some_and(|rt| rt.timers.cancel(self.id))
    }

    /// Whether the timer will still fire.
    pub fn is_pending(&self) -> bool {
        self.rt
            .upgrade()
            .is_some_and(|rt| rt.timers.is_pending(self.id))
    }
}

impl std::fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TimerHandle({})", self.id.0)
    }
}

/// What a timer does when it fires.
pub(crate) enum Fire {
    /// Sends a signal to an agent.
    Agent {
        to: Arc<dyn AgentTask>,
        signal: Signal,
    },
    /// Publishes a signal on the bus.
    Bus { signal: Signal },
    /// An async call's deadline: fails its reply ticket with a timeout.
    CallDeadline {
        sink: Arc<dyn ReplySink>,
        ticket: u64,
        after: Duration,
    },
    /// Async work's deadline.
    WorkDeadline(Arc<dyn Deadline>),
}

/// Something that expires when its timer fires (async work).
pub(crate) trait Deadline: Send + Sync {
    fn expire(&self, rt: &Context);
}

/// A timer taken from the queue to be fired.
pub(crate) struct Due {
    pub id: TimerId,
    pub fire: Fire,
    /// An interval (it stays scheduled after this firing).
    pub repeats: bool,
}

struct Entry {
    fire: Fire,
    /// Nanoseconds; 0 for a one-shot timer.
    period: u64,
}

#[derive(Default)]
struct Queue {
    by_due: BTreeMap<(u64, u64), Entry>,
    due_of: HashMap<u64, u64, foldhash::fast::FixedState>,
    next_id: u64,
    stopped: bool,
    thread: Option<JoinHandle<()>>,
}

/// The runtime's timers (see the module docs).
pub(crate) struct Timers {
    origin: Instant,
    /// Deterministic mode: the virtual clock, in ns since `origin`.
    virtual_now: Option<AtomicU64>,
    queue: Mutex<Queue>,
    changed: Condvar,
}

fn lock(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A duration in nanoseconds, saturating (about 584 years fit).
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Timers {
    pub fn new(virtual_clock: bool) -> Self {
        Timers {
            origin: Instant::now(),
            virtual_now: virtual_clock.then(|| AtomicU64::new(0)),
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        }
    }

    /// Now, in ns since the origin (virtual in deterministic mode).
    pub fn now_ns(&self) -> u64 {
        match &self.virtual_now {
            Some(now) => now.load(Ordering::Acquire),
            None => nanos(self.origin.elapsed()),
        }
    }

    /// Now as an `Instant` (virtual in deterministic mode).
    pub fn now(&self) -> Instant {
        self.instant_at(self.now_ns())
    }

    fn instant_at(&self, ns: u64) -> Instant {
        self.origin
            .checked_add(Duration::from_nanos(ns))
            .unwrap_or(self.origin)
    }

    /// `at` in ns since the origin (an instant before it is the origin).
    pub fn ns_at(&self, at: Instant) -> u64 {
        nanos(at.saturating_duration_since(self.origin))
    }

    /// Deterministic mode: moves the virtual clock to `ns` (never back).
    pub fn set_now(&self, ns: u64) {
        if let Some(now) = &self.virtual_now {
            now.fetch_max(ns, Ordering::AcqRel);
        }
    }

    /// Schedules `fire` at `due` (ns), repeating every `period` ns if not
    /// 0. `start_thread` starts the firing thread (threaded mode) if it is
    /// not running. Hands `fire` back once the timers were stopped
    /// (shutdown).
    // The refused timer comes back whole (its signal is handed back).
    #[allow(clippy::result_large_err)]
    pub fn schedule(
        &self,
        due: u64,
        period: u64,
        fire: Fire,
        start_thread: impl FnOnce() -> Option<JoinHandle<()>>,
    ) -> Result<TimerId, Fire> {
        let mut q = lock(&self.queue);
        if q.stopped {
            return Err(fire);
        }
        if self.virtual_now.is_none() && q.thread.is_none() {
            q.thread = start_thread();
        }
        q.next_id += 1;
        let id = q.next_id;
        let earliest = q.by_due.first_key_value().is_none_or(|(k, _)| due < k.0);
        q.by_due.insert((due, id), Entry { fire, period });
        q.due_of.insert(id, due);
        drop(q);
        if earliest {
            self.changed.notify_one();
        }
        Ok(TimerId(id))
    }

    /// Cancels `id`; whether it was still pending (an interval stops
    /// firing; a one-shot timer that fired already returns `false`).
    pub fn cancel(&self, id: TimerId) -> bool {
        let mut q = lock(&self.queue);
        match q.due_of.remove(&id.0) {
            Some(due) => q.by_due.remove(&(due, id.0)).is_some(),
            None => false,
        }
    }

    /// Whether `id` will still fire.
    pub fn is_pending(&self, id: TimerId) -> bool {
        lock(&self.queue).due_of.contains_key(&id.0)
    }

    /// Pending timers.
    pub fn len(&self) -> usize {
        lock(&self.queue).due_of.len()
    }

    /// When the earliest timer is due, if any.
    pub fn next_due(&self) -> Option<u64> {
        lock(&self.queue).by_due.first_key_value().map(|(k, _)| k.0)
    }

    /// Takes up to `max` timers due at or before `now` into `out`, in
    /// firing order; an interval is rescheduled one period after the due
    /// time it fires for (fixed rate, no drift) before it is handed out, so
    /// a cancel always finds it.
    pub fn take_due(&self, now: u64, max: usize, out: &mut Vec<Due>) {
        let mut q = lock(&self.queue);
        Self::take_due_locked(&mut q, now, max, out);
    }

    fn take_due_locked(q: &mut Queue, now: u64, max: usize, out: &mut Vec<Due>) {
        for _ in 0..max {
            let Some(entry) = q.by_due.first_entry() else {
                return;
            };
            let (due, id) = *entry.key();
            if due > now {
                return;
            }
            let entry = entry.remove();
            if entry.period == 0 {
                q.due_of.remove(&id);
                out.push(Due {
                    id: TimerId(id),
                    fire: entry.fire,
                    repeats: false,
                });
                continue;
            }
            let next = due.saturating_add(entry.period);
            let fire = match &entry.fire {
                Fire::Agent { to, signal } => Fire::Agent {
                    to: to.clone(),
                    signal: signal.renewed(),
                },
                Fire::Bus { signal } => Fire::Bus {
                    signal: signal.renewed(),
                },
                // Deadlines are one-shot; an interval of one is a bug, not a schedule.
                Fire::CallDeadline { .. } | Fire::WorkDeadline(_) => {
                    q.due_of.remove(&id);
                    out.push(Due {
                        id: TimerId(id),
                        fire: entry.fire,
                        repeats: false,
                    });
                    continue;
                }
            };
            q.by_due.insert((next, id), entry);
            q.due_of.insert(id, next);
            out.push(Due {
                id: TimerId(id),
                fire,
                repeats: true,
            });
        }
    }

    /// The firing thread's loop: sleeps until the earliest timer is due,
    /// takes what is due and hands each to `fire`, until [`stop`](Self::stop).
    pub fn run(&self, mut fire: impl FnMut(Due)) {
        let mut batch = Vec::with_capacity(FIRE_BATCH);
        loop {
            {
                let mut q = lock(&self.queue);
                loop {
                    if q.stopped {
                        return;
                    }
                    let now = self.now_ns();
                    match q.by_due.first_key_value().map(|(k, _)| k.0) {
                        Some(due) if due <= now => {
                            Self::take_due_locked(&mut q, now, FIRE_BATCH, &mut batch);
                            break;
                        }
                        Some(due) => {
                            q = self
                                .changed
                                .wait_timeout(q, Duration::from_nanos(due - now))
                                .unwrap_or_else(PoisonError::into_inner)
                                .0;
                        }
                        None => {
                            q = self
                                .changed
                                .wait(q)
                                .unwrap_or_else(PoisonError::into_inner);
                        }
                    }
                }
            }
            for due in batch.drain(..) {
                fire(due);
            }
        }
    }

    /// Stops the timers (shutdown): no timer fires afterwards, later
    /// schedules are refused, and the firing thread is joined (unless this
    /// is it). Returns the signals that were still scheduled; deadlines are
    /// dropped (their calls and work are settled by the shutdown itself).
    pub fn stop(&self) -> Vec<PendingTimer> {
        let (entries, thread) = {
            let mut q = lock(&self.queue);
            q.stopped = true;
            q.due_of.clear();
            (std::mem::take(&mut q.by_due), q.thread.take())
        };
        self.changed.notify_all();
        if let Some(thread) = thread
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
        let now = self.now_ns();
        entries
            .into_iter()
            .filter_map(|((due, id), entry)| {
                let (target, signal) = match entry.fire {
                    Fire::Agent { to, signal } => (TimerTarget::Agent(to.id()), signal),
                    Fire::Bus { signal } => (TimerTarget::Bus, signal),
                    Fire::CallDeadline { .. } | Fire::WorkDeadline(_) => return None,
                };
                Some(PendingTimer {
                    id: TimerId(id),
                    target,
                    signal,
                    due_in: Duration::from_nanos(due.saturating_sub(now)),
                    period: (entry.period != 0).then(|| Duration::from_nanos(entry.period)),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bus(ty: &str) -> Fire {
        Fire::Bus {
            signal: Signal::new(ty.to_owned(), "/t", "").unwrap(),
        }
    }

    fn no_thread() -> Option<JoinHandle<()>> {
        None
    }

    fn types(out: &[Due]) -> Vec<String> {
        out.iter()
            .map(|d| match &d.fire {
                Fire::Bus { signal } => signal.ty().to_owned(),
                _ => String::new(),
            })
            .collect()
    }

    #[test]
    fn due_order_is_time_then_scheduling_order() {
        let t = Timers::new(true);
        t.schedule(20, 0, bus("c"), no_thread).ok().unwrap();
        t.schedule(10, 0, bus("a"), no_thread).ok().unwrap();
        t.schedule(10, 0, bus("b"), no_thread).ok().unwrap();
        let mut out = Vec::new();
        t.take_due(15, 10, &mut out);
        assert_eq!(types(&out), ["a", "b"]);
        out.clear();
        t.take_due(20, 10, &mut out);
        assert_eq!(types(&out), ["c"]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn an_interval_keeps_its_id_and_a_cancel_finds_it_between_firings() {
        let t = Timers::new(true);
        let id = t.schedule(5, 5, bus("tick"), no_thread).ok().unwrap();
        let mut out = Vec::new();
        t.take_due(12, 10, &mut out);
        assert_eq!(out.len(), 2, "fired at 5 and 10");
        assert!(out.iter().all(|d| d.id == id && d.repeats));
        assert_eq!(t.next_due(), Some(15));
        assert!(t.cancel(id));
        assert!(!t.cancel(id));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn stop_hands_back_pending_signals_and_refuses_more() {
        let t = Timers::new(true);
        t.schedule(50, 0, bus("late"), no_thread).ok().unwrap();
        t.set_now(20);
        let pending = t.stop();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].due_in, Duration::from_nanos(30));
        assert!(t.schedule(60, 0, bus("x"), no_thread).is_err());
    }
}
