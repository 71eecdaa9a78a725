//! [`Receipt`]: told once every instruction a delivery became has settled:
//! committed, failed (rolled back), or dead-lettered unprocessed.
//!
//! A `call` learns the outcome of one instruction through its typed reply
//! slot. A receipt learns it for a delivery that needs no reply: a signal
//! sent to an agent (even to a send-only action), or published to every
//! agent subscribed to its type. The NATS bridge acknowledges an imported
//! message through one, so the acknowledgement follows the commit.
//!
//! It rides the instruction's reply field as a [`ReplySink`], so the turn
//! needs no new field and no new test on its hot path: a receipt is the
//! sink that is not a typed call slot.
//!
//! Counting: the receipt starts with one hold of its own, each delivery
//! adds one before it is enqueued, and [`seal`](Receipt::seal) drops the
//! own hold once every delivery is made; whoever brings the count to zero
//! runs the callback, exactly once.

use super::reply::ReplySink;
use crate::vocab::ActionError;
use crate::vocab::error::CallError;
use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// What a receipt reports: `Ok` when every instruction committed, or the
/// first failure (an action's error, or `Stopped`/`ShutDown` for a signal
/// dead-lettered before it ran).
pub(crate) type Settled = Result<(), CallError>;

type OnSettled = Box<dyn FnOnce(Settled) + Send>;

/// Counts the instructions of one delivery until all have settled.
pub(crate) struct Receipt {
    pending: AtomicUsize,
    inner: Mutex<Inner>,
}

struct Inner {
    first_error: Option<CallError>,
    on_settled: Option<OnSettled>,
}

impl Receipt {
    /// A receipt that calls `on_settled` (on the thread that settles the
    /// last instruction) once sealed and every delivery has settled.
    pub(crate) fn new(on_settled: impl FnOnce(Settled) + Send + 'static) -> Self {
        Receipt {
            pending: AtomicUsize::new(1),
            inner: Mutex::new(Inner {
                first_error: None,
                on_settled: Some(Box::new(on_settled)),
            }),
        }
    }

    /// Counts one more instruction, before it is enqueued.
    pub(crate) fn add(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes back an [`add`](Self::add) whose delivery was refused (so
    /// never became an instruction).
    pub(crate) fn cancel(&self) {
        self.count_down();
    }

    /// Forgets the callback uncalled (the delivery was refused as a whole,
    /// and the sender was told so).
    pub(crate) fn disarm(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.on_settled = None;
    }

    /// Every delivery is made: drops the receipt's own hold.
    pub(crate) fn seal(&self) {
        self.count_down();
    }

    fn record(&self, error: CallError) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.first_error.get_or_insert(error);
    }

    fn count_down(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let (outcome, on_settled) = {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            (inner.first_error.take(), inner.on_settled.take())
        };
        if let Some(on_settled) = on_settled {
            // User code, run inside a turn: a panic must not unwind into
            // the worker (the agent would stay claimed). It is discarded,
            // as a panicking bus callback's is reported and dropped.
            let told = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                on_settled(outcome.map_or(Ok(()), Err));
            }));
            if let Err(payload) = told {
                crate::vocab::action_error::discard_panic(payload);
            }
        }
    }
}

impl ReplySink for Receipt {
    fn fail(&self, _ticket: u64, error: CallError) {
        self.record(error);
        self.count_down();
    }

    fn settle(&self, _ticket: u64, outcome: Option<ActionError>) {
        if let Some(error) = outcome {
            self.record(CallError::Action(error));
        }
        self.count_down();
    }

    fn is_receipt(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::mpsc;

    fn receipt() -> (Arc<Receipt>, mpsc::Receiver<Settled>) {
        let (tx, rx) = mpsc::channel();
        (Arc::new(Receipt::new(move |s| tx.send(s).unwrap())), rx)
    }

    #[test]
    fn settles_once_after_the_seal_and_every_instruction() {
        let (r, rx) = receipt();
        r.add();
        r.add();
        r.settle(0, None);
        r.seal();
        assert!(rx.try_recv().is_err(), "one instruction is still pending");
        r.settle(0, None);
        assert_eq!(rx.try_recv(), Ok(Ok(())));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn reports_the_first_failure() {
        let (r, rx) = receipt();
        r.add();
        r.add();
        r.add();
        r.cancel();
        r.settle(0, Some(ActionError::rejected("no")));
        r.fail(0, CallError::ShutDown);
        r.seal();
        match rx.try_recv() {
            Ok(Err(CallError::Action(e))) => assert_eq!(e.text(), "no"),
            other => panic!("expected the action's error, got {other:?}"),
        }
    }

    #[test]
    fn a_delivery_to_nobody_settles_at_the_seal() {
        let (r, rx) = receipt();
        r.seal();
        assert_eq!(rx.try_recv(), Ok(Ok(())));
    }
}
