//! Timers: signals scheduled for later, and the deadlines of async calls
//! and async work.
//!
//! One queue per runtime, ordered by (due time, timer id): a `BTreeMap`,
//! so finding the next due timer, scheduling and cancelling each cost
//! O(log n), and a cancelled timer frees its memory at once (a binary heap
//! with tombstones would keep it until it came due; a hashed wheel would
//! need a tick thread even when nothing is due). The map holds slot
//! numbers; the timers themselves (signal, target, period) sit in a slab
//! whose free slots are reused, so an insert in the map moves 4-byte values,
//! not 150-byte timers, and a handle finds its timer by slot (checked
//! against the id) without a second index. An interval keeps its id and
//! slot and moves in the map each time it fires. `benches/timers.rs` and
//! the iai `timer_fire` rows measure a firing with 10 and 100,000 timers
//! pending; `tests/memory.rs` the bytes per pending timer.
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
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A timer as the runtime holds it: its public id and its slab slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    pub id: TimerId,
    slot: u32,
}

/// A scheduled signal: cancel it, or ask whether it will still fire.
/// Dropping the handle does not cancel the timer (an interval then runs
/// until its agent stops or the runtime shuts down).
#[derive(Clone)]
pub struct TimerHandle {
    key: TimerKey,
    rt: Weak<Context>,
}

impl TimerHandle {
    pub(crate) fn new(key: TimerKey, rt: &Arc<Context>) -> Self {
        TimerHandle {
            key,
            rt: Arc::downgrade(rt),
        }
    }

    /// The timer's id (as in undelivered records and the shutdown report).
    pub fn id(&self) -> TimerId {
        self.key.id
    }

    /// Cancels the timer; returns whether it was still pending. An interval
    /// stops firing; a one-shot timer that already fired returns `false`
    /// (its signal was sent). A firing that raced the cancel and won is
    /// delivered.
    pub fn cancel(&self) -> bool {
        self.rt
            .upgrade()
            .is_some_and(|rt| rt.timers.cancel(self.key))
    }

    /// Whether the timer will still fire.
    pub fn is_pending(&self) -> bool {
        self.rt
            .upgrade()
            .is_some_and(|rt| rt.timers.is_pending(self.key))
    }
}

impl std::fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TimerHandle({})", self.key.id.0)
    }
}

thread_local! {
    /// Set on the timer thread: it must never run an agent's turn itself
    /// (`run_on_sender`), or one slow action would hold every timer back.
    static ON_TIMER_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is a runtime's timer thread.
pub(crate) fn on_timer_thread() -> bool {
    ON_TIMER_THREAD
        .try_with(std::cell::Cell::get)
        .unwrap_or(false)
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

impl Fire {
    /// A signal timer (not an internal deadline).
    fn is_signal(&self) -> bool {
        matches!(self, Fire::Agent { .. } | Fire::Bus { .. })
    }

    /// The next firing of an interval: the same target, a fresh copy of the
    /// signal (deadlines are one-shot: `None`).
    fn again(&self) -> Option<Fire> {
        match self {
            Fire::Agent { to, signal } => Some(Fire::Agent {
                to: to.clone(),
                signal: signal.renewed(),
            }),
            Fire::Bus { signal } => Some(Fire::Bus {
                signal: signal.renewed(),
            }),
            Fire::CallDeadline { .. } | Fire::WorkDeadline(_) => None,
        }
    }
}

/// Something that expires when its timer fires (async work).
pub(crate) trait Deadline: Send + Sync {
    fn expire(&self, rt: &Context);
}

/// A timer taken from the queue to be fired.
pub(crate) struct Due {
    pub key: TimerKey,
    pub fire: Fire,
    /// An interval (it stays scheduled after this firing).
    pub repeats: bool,
}

struct Entry {
    fire: Fire,
    /// Nanoseconds; 0 for a one-shot timer.
    period: u64,
}

/// A slab slot: the timer in it (if any), its id and its due time.
struct Slot {
    id: u64,
    due: u64,
    entry: Option<Entry>,
}

#[derive(Default)]
struct Queue {
    /// (due, id) -> slot, in firing order.
    by_due: BTreeMap<(u64, u64), u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Signal timers pending (deadlines of calls and work not counted).
    signals: usize,
    next_id: u64,
    stopped: bool,
    /// A graceful shutdown's last phase: nothing fires, schedules are
    /// still taken (they come back in the report).
    held: bool,
    /// The firing thread has taken a timer and not finished firing it.
    firing: bool,
    thread: Option<JoinHandle<()>>,
}

impl Queue {
    fn slot_of(&mut self, key: TimerKey) -> Option<&mut Slot> {
        self.slots
            .get_mut(key.slot as usize)
            .filter(|s| s.id == key.id.0 && s.entry.is_some())
    }

    /// Takes the earliest timer if it is due at `now`.
    fn take_one_due(&mut self, now: u64) -> Option<Due> {
        let (&(due, id), &slot) = self.by_due.first_key_value()?;
        if due > now {
            return None;
        }
        self.by_due.pop_first();
        let key = TimerKey {
            id: TimerId(id),
            slot,
        };
        let s = self.slots.get_mut(slot as usize)?;
        let again = s
            .entry
            .as_ref()
            .filter(|e| e.period != 0)
            .and_then(|e| e.fire.again());
        let period = s.entry.as_ref().map_or(0, |e| e.period);
        // Fixed rate: one period after the due time it fires for. An
        // interval whose next firing would pass the clock's end fires a last
        // time (so `advance(Duration::MAX)` ends).
        match (again, due.checked_add(period)) {
            (Some(fire), Some(next)) => {
                s.due = next;
                self.by_due.insert((next, id), slot);
                Some(Due {
                    key,
                    fire,
                    repeats: true,
                })
            }
            _ => {
                let entry = s.entry.take()?;
                self.free.push(slot);
                if entry.fire.is_signal() {
                    self.signals -= 1;
                }
                Some(Due {
                    key,
                    fire: entry.fire,
                    repeats: false,
                })
            }
        }
    }
}

/// The runtime's timers (see the module docs).
pub(crate) struct Timers {
    origin: Instant,
    /// Deterministic mode: the virtual clock, in ns since `origin`.
    virtual_now: Option<AtomicU64>,
    queue: Mutex<Queue>,
    changed: Condvar,
    /// The last id handed out (a copy of `Queue::next_id` readable without
    /// the lock): whether anything was scheduled since a given moment.
    scheduled: AtomicU64,
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
            scheduled: AtomicU64::new(0),
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
    ) -> Result<TimerKey, Fire> {
        let mut q = lock(&self.queue);
        if q.stopped {
            return Err(fire);
        }
        if self.virtual_now.is_none() && q.thread.is_none() {
            q.thread = start_thread();
        }
        q.next_id += 1;
        let id = q.next_id;
        self.scheduled.store(id, Ordering::Relaxed);
        if fire.is_signal() {
            q.signals += 1;
        }
        let entry = Some(Entry { fire, period });
        let slot = match q.free.pop() {
            Some(slot) => {
                if let Some(s) = q.slots.get_mut(slot as usize) {
                    *s = Slot { id, due, entry };
                }
                slot
            }
            None => {
                q.slots.push(Slot { id, due, entry });
                u32::try_from(q.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let earliest = q.by_due.first_key_value().is_none_or(|(k, _)| due < k.0);
        q.by_due.insert((due, id), slot);
        drop(q);
        if earliest {
            self.changed.notify_one();
        }
        Ok(TimerKey {
            id: TimerId(id),
            slot,
        })
    }

    /// Cancels the timer; whether it was still pending (an interval stops
    /// firing; a one-shot timer that fired already returns `false`).
    pub fn cancel(&self, key: TimerKey) -> bool {
        let mut q = lock(&self.queue);
        let Some(s) = q.slot_of(key) else {
            return false;
        };
        let due = s.due;
        let signal = s.entry.take().is_some_and(|e| e.fire.is_signal());
        q.by_due.remove(&(due, key.id.0));
        q.free.push(key.slot);
        if signal {
            q.signals -= 1;
        }
        true
    }

    /// Whether the timer will still fire.
    pub fn is_pending(&self, key: TimerKey) -> bool {
        lock(&self.queue).slot_of(key).is_some()
    }

    /// Signal timers pending (intervals count once; the deadlines of
    /// async calls and work are not counted).
    pub fn len(&self) -> usize {
        lock(&self.queue).signals
    }

    /// A mark that changes whenever a timer is scheduled (no lock).
    pub fn schedules(&self) -> u64 {
        self.scheduled.load(Ordering::Relaxed)
    }

    /// Everything in the queue, deadlines included.
    pub fn queued(&self) -> usize {
        lock(&self.queue).by_due.len()
    }

    /// When the earliest timer is due, if any.
    pub fn next_due(&self) -> Option<u64> {
        lock(&self.queue).by_due.first_key_value().map(|(k, _)| k.0)
    }

    /// Takes the earliest timer if it is due at or before `now`. An
    /// interval is rescheduled before it is handed out, so a cancel always
    /// finds it.
    pub fn take_one_due(&self, now: u64) -> Option<Due> {
        let mut q = lock(&self.queue);
        if q.held {
            return None;
        }
        q.take_one_due(now)
    }

    /// Holds every timer (a graceful shutdown, once its drain is idle):
    /// nothing fires from now on, and what is scheduled meanwhile is kept
    /// for [`halt`](Self::halt) to hand back. Waits until a firing in
    /// progress has finished (its signal is then accepted), unless called
    /// on the timer thread itself, or until `deadline`.
    pub fn hold(&self, deadline: Instant) {
        let mut q = lock(&self.queue);
        q.held = true;
        while q.firing && !on_timer_thread() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            q = self
                .changed
                .wait_timeout(q, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The firing thread's loop: sleeps until the earliest timer is due,
    /// then takes due timers one at a time and hands each to `fire`, until
    /// [`halt`](Self::halt). One at a time, so that a halt (or a cancel)
    /// between two firings is seen before the next: no timer is ever out
    /// of the queue and unfired when the shutdown writes its report.
    pub fn run(&self, mut fire: impl FnMut(Due)) {
        ON_TIMER_THREAD.with(|t| t.set(true));
        loop {
            let due = {
                let mut q = lock(&self.queue);
                if std::mem::take(&mut q.firing) {
                    // A graceful shutdown's `hold` may wait for this.
                    self.changed.notify_all();
                }
                loop {
                    if q.stopped {
                        return;
                    }
                    if q.held {
                        q = self.changed.wait(q).unwrap_or_else(PoisonError::into_inner);
                        continue;
                    }
                    let now = self.now_ns();
                    match q.by_due.first_key_value().map(|(k, _)| k.0) {
                        Some(due) if due <= now => match q.take_one_due(now) {
                            Some(taken) => {
                                q.firing = true;
                                break taken;
                            }
                            None => continue,
                        },
                        Some(due) => {
                            q = self
                                .changed
                                .wait_timeout(q, Duration::from_nanos(due - now))
                                .unwrap_or_else(PoisonError::into_inner)
                                .0;
                        }
                        None => {
                            q = self.changed.wait(q).unwrap_or_else(PoisonError::into_inner);
                        }
                    }
                }
            };
            fire(due);
        }
    }

    /// Stops the timers (shutdown): no timer fires afterwards and later
    /// schedules are refused. Returns the signals that were still
    /// scheduled, in firing order (deadlines are dropped: the shutdown
    /// settles their calls and work itself), and the firing thread, which
    /// the shutdown joins once every mailbox is closed (a call made on the
    /// timer thread, by a bus callback, must fail before anyone waits for
    /// that thread).
    pub fn halt(&self) -> (Vec<PendingTimer>, Option<JoinHandle<()>>) {
        let (order, mut slots, thread) = {
            let mut q = lock(&self.queue);
            q.stopped = true;
            q.free.clear();
            q.signals = 0;
            (
                std::mem::take(&mut q.by_due),
                std::mem::take(&mut q.slots),
                q.thread.take(),
            )
        };
        self.changed.notify_all();
        let now = self.now_ns();
        let pending = order
            .into_iter()
            .filter_map(|((due, id), slot)| {
                let entry = slots.get_mut(slot as usize)?.entry.take()?;
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
            .collect();
        (pending, thread)
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

    fn take_due(t: &Timers, now: u64, out: &mut Vec<Due>) {
        while let Some(d) = t.take_one_due(now) {
            out.push(d);
        }
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
        take_due(&t, 15, &mut out);
        assert_eq!(types(&out), ["a", "b"]);
        out.clear();
        take_due(&t, 20, &mut out);
        assert_eq!(types(&out), ["c"]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn an_interval_keeps_its_id_and_a_cancel_finds_it_between_firings() {
        let t = Timers::new(true);
        let id = t.schedule(5, 5, bus("tick"), no_thread).ok().unwrap();
        let mut out = Vec::new();
        take_due(&t, 12, &mut out);
        assert_eq!(out.len(), 2, "fired at 5 and 10");
        assert!(out.iter().all(|d| d.key == id && d.repeats));
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
        let (pending, _) = t.halt();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].due_in, Duration::from_nanos(30));
        assert!(t.schedule(60, 0, bus("x"), no_thread).is_err());
    }
}
