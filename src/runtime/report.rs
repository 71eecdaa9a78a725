//! What the runtime hands back: dead letters, undelivered emits, failures,
//! and the shutdown report.

pub use crate::vocab::report::{
    CancelledWork, DeadLetter, DeadLetterReason, DeliveryFailure, Failure, Metrics, PendingTimer,
    TimerTarget, Undelivered, UndeliveredFrom,
};

/// What [`Runtime::shutdown`](crate::Runtime::shutdown) hands back.
///
/// Accounting is exact: `metrics.accepted == metrics.processed +
/// metrics.dead_lettered`. `dead_letters` holds the signals dead-lettered by
/// the shutdown itself; those of earlier `stop()` calls were handed back by
/// those calls.
#[derive(Debug)]
pub struct ShutdownReport {
    /// Final counters.
    pub metrics: Metrics,
    /// Every signal that was queued when the runtime shut down.
    pub dead_letters: Vec<DeadLetter>,
    /// Emitted signals that could not be delivered (kept ones; the count is
    /// in `metrics.undelivered`).
    pub undelivered: Vec<Undelivered>,
    /// Scheduled signals that had not fired, in firing order. A timer
    /// signal is accepted when it fires, so these are in no counter.
    pub pending_timers: Vec<PendingTimer>,
    /// Async work started by actions that had not finished: cancelled
    /// (its future dropped, its result never sent), in start order.
    pub cancelled_work: Vec<CancelledWork>,
    /// Agents their restart policy stopped, not taken with
    /// [`Runtime::take_stopped`](crate::Runtime::take_stopped); their
    /// dead letters are here, not in `dead_letters`.
    pub stopped: Vec<crate::vocab::report::StopReport>,
    /// How the drain of a [`shutdown_graceful`](crate::Runtime::shutdown_graceful)
    /// went (`None` for a plain `shutdown`).
    pub drain: Option<Drain>,
}

/// How the drain before a graceful shutdown went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drain {
    /// Whether it got to idle (nothing in flight, no async work pending)
    /// before its timeout; if not, what was left is in the report's dead
    /// letters and cancelled work.
    pub idle: bool,
    /// How long the drain took.
    pub took: std::time::Duration,
}
