//! [`ReplySlot`]: where a `call`, `state()` or query waits for its answer.
//!
//! A slot is armed with a fresh ticket for each request; the answer is only
//! accepted for the current ticket, so a slot can be reused (pooled) even
//! while a late answer to an earlier, timed-out request is still in flight.
//! The waiter spins, then yields, then parks: waking a parked thread costs tens
//! of microseconds on small VMs, so a round trip that is answered quickly must
//! never park: the park and wake-up would cost more than the round trip itself.

use crate::vocab::error::CallError;
use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// Spin/yield rounds before a waiter parks.
const SPIN_ROUNDS: u32 = 64;
/// Longest single park; the waiter re-checks the deadline and helps in between.
const PARK_SLICE: Duration = Duration::from_millis(1);

/// The instant `timeout` from now, saturating: a timeout too large for the
/// clock (e.g. `Duration::MAX`) means "wait as long as it takes" instead of
/// overflowing.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    /// A century: later than anything a caller can mean, early enough for
    /// every platform clock.
    const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    let now = Instant::now();
    now.checked_add(timeout.min(FOREVER))
        .or_else(|| now.checked_add(Duration::from_secs(24 * 60 * 60)))
        .unwrap_or(now)
}

/// A one-answer-per-ticket mailbox for a single waiting thread.
pub struct ReplySlot<V> {
    ready: AtomicU64,
    inner: Mutex<Inner<V>>,
}

struct Inner<V> {
    ticket: u64,
    value: Option<V>,
    waiter: Option<Thread>,
    /// An async waiter (`call_async`).
    waker: Option<Waker>,
}

impl<V> Default for ReplySlot<V> {
    fn default() -> Self {
        ReplySlot {
            ready: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                ticket: 0,
                value: None,
                waiter: None,
                waker: None,
            }),
        }
    }
}

impl<V: Send> ReplySlot<V> {
    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a new request: returns its ticket and forgets any earlier answer.
    pub fn arm(&self) -> u64 {
        let mut inner = self.lock();
        inner.ticket += 1;
        inner.value = None;
        inner.waiter = None;
        inner.waker = None;
        inner.ticket
    }

    /// Delivers the answer for `ticket`; returns `false` (dropping `value`) if
    /// the request was abandoned or already answered.
    pub fn fulfil(&self, ticket: u64, value: V) -> bool {
        let (waiter, waker) = {
            let mut inner = self.lock();
            if inner.ticket != ticket || inner.value.is_some() {
                return false;
            }
            inner.value = Some(value);
            self.ready.store(ticket, Ordering::Release);
            (inner.waiter.take(), inner.waker.take())
        };
        if let Some(t) = waiter {
            t.unpark();
        }
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// Whether the answer for `ticket` has arrived.
    pub fn is_ready(&self, ticket: u64) -> bool {
        self.ready.load(Ordering::Acquire) == ticket
    }

    /// Takes the answer for `ticket` if it has arrived.
    pub fn take(&self, ticket: u64) -> Option<V> {
        if !self.is_ready(ticket) {
            return None;
        }
        let mut inner = self.lock();
        if inner.ticket == ticket {
            inner.value.take()
        } else {
            None
        }
    }

    /// Abandons `ticket`: a later answer is dropped. Returns the answer if it
    /// arrived before the request was abandoned.
    pub fn abandon(&self, ticket: u64) -> Option<V> {
        let mut inner = self.lock();
        if inner.ticket != ticket {
            return None;
        }
        let value = inner.value.take();
        inner.ticket += 1;
        inner.waiter = None;
        inner.waker = None;
        value
    }

    /// The async form of waiting: the answer for `ticket` if it arrived,
    /// otherwise registers `waker` (woken by [`fulfil`](Self::fulfil)).
    /// `Ready(None)`: the ticket is no longer current.
    pub fn poll(&self, ticket: u64, waker: &Waker) -> Poll<Option<V>> {
        let mut inner = self.lock();
        if inner.ticket != ticket {
            return Poll::Ready(None);
        }
        if let Some(v) = inner.value.take() {
            return Poll::Ready(Some(v));
        }
        if !inner.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            inner.waker = Some(waker.clone());
        }
        Poll::Pending
    }

    /// Waits for the answer to `ticket` until `deadline`. Between checks it
    /// calls `help`, which may do the work that produces the answer on this
    /// thread (returns whether it did anything). `None` means the deadline
    /// passed; the ticket is then abandoned.
    pub fn wait(
        &self,
        ticket: u64,
        deadline: Instant,
        mut help: impl FnMut() -> bool,
    ) -> Option<V> {
        let mut rounds = 0u32;
        loop {
            if let Some(v) = self.take(ticket) {
                return Some(v);
            }
            if help() {
                rounds = 0;
                continue;
            }
            if rounds < SPIN_ROUNDS {
                if rounds < 16 {
                    for _ in 0..(1u32 << rounds.min(6)) {
                        std::hint::spin_loop();
                    }
                } else {
                    thread::yield_now();
                }
                rounds += 1;
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return self.abandon(ticket);
            }
            {
                let mut inner = self.lock();
                if inner.ticket != ticket || inner.value.is_some() {
                    continue;
                }
                inner.waiter = Some(thread::current());
            }
            thread::park_timeout((deadline - now).min(PARK_SLICE));
        }
    }
}

/// A call's reply slot with its type erased, so a pooled, non-generic
/// instruction can carry it and non-generic code can fail it.
pub trait ReplySink: Send + Sync {
    /// Fails the request `ticket` with `error` (e.g. the signal was dead-lettered).
    fn fail(&self, ticket: u64, error: CallError);
    /// The instruction committed (`None`) or its action failed: called
    /// instead of a typed answer when the sink is not a call's slot (a
    /// [`Receipt`](super::receipt::Receipt)).
    fn settle(&self, _ticket: u64, _outcome: Option<crate::vocab::ActionError>) {}
    /// Whether the sink wants no reply value, only the outcome (so a
    /// send-only action may take it).
    fn is_receipt(&self) -> bool {
        false
    }
    /// For downcasting to the typed slot.
    fn as_any(&self) -> &dyn Any;
}

impl<R: Send + 'static> ReplySink for ReplySlot<Result<R, CallError>> {
    fn fail(&self, ticket: u64, error: CallError) {
        self.fulfil(ticket, Err(error));
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Reply slots from the pool of a [`PoolKind`](crate::imp::PoolKind), typed
/// (the seam in `imp::reply` is generic over the slot).
pub(crate) mod pool {
    use super::ReplySlot;
    use crate::imp::{PoolKind, reply as seam};
    use std::sync::Arc;

    /// A reply slot for one request; arm it before use.
    #[inline]
    pub fn lease<V: Send + 'static>(kind: PoolKind) -> Arc<ReplySlot<V>> {
        seam::lease(kind)
    }

    /// Hands a slot back once its request is over.
    #[inline]
    pub fn release<V: Send + 'static>(kind: PoolKind, slot: Arc<ReplySlot<V>>) {
        seam::release(kind, slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_huge_timeout_saturates_instead_of_overflowing() {
        let far = deadline_after(Duration::MAX);
        assert!(far > Instant::now() + Duration::from_secs(365 * 24 * 60 * 60));
        let near = deadline_after(Duration::from_millis(5));
        assert!(near <= Instant::now() + Duration::from_millis(5));
    }

    #[test]
    fn an_answer_reaches_the_waiter_across_threads() {
        let slot = Arc::new(ReplySlot::<u32>::default());
        let t = slot.arm();
        let s2 = slot.clone();
        let h = thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            assert!(s2.fulfil(t, 7));
        });
        let got = slot.wait(t, Instant::now() + Duration::from_secs(10), || false);
        h.join().unwrap();
        assert_eq!(got, Some(7));
    }

    #[test]
    fn a_late_answer_to_an_abandoned_ticket_is_dropped() {
        let slot = ReplySlot::<u32>::default();
        let t1 = slot.arm();
        assert_eq!(slot.wait(t1, Instant::now(), || false), None);
        assert!(!slot.fulfil(t1, 1), "abandoned ticket accepted an answer");
        let t2 = slot.arm();
        assert!(slot.fulfil(t2, 2));
        assert!(!slot.fulfil(t2, 3), "second answer accepted");
        assert_eq!(slot.take(t2), Some(2));
    }

    #[test]
    fn help_runs_until_the_answer_appears() {
        let slot = ReplySlot::<u32>::default();
        let t = slot.arm();
        let mut calls = 0;
        let got = slot.wait(t, Instant::now() + Duration::from_secs(10), || {
            calls += 1;
            if calls == 3 {
                slot.fulfil(t, 9);
            }
            true
        });
        assert_eq!((got, calls), (Some(9), 3));
    }
}
