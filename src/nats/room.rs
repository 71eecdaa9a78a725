//! [`ExportRoom`]: waiting for room in an export's buffer, instead of
//! retrying a refused publish in a loop.
//!
//! A producer that outruns JetStream has its publishes refused
//! ([`DeliveryFailure::SinkRefused`](crate::DeliveryFailure::SinkRefused),
//! the signal handed back). Retrying at once spins on a core the server and
//! the export need: in the bench's one-way row (`cargo bench --features nats
//! --bench nats -- --rows batched --spin`) the spinning publisher took 0.91
//! CPU-s for 200,000 signals and the row ran at 72.8k signals/s; waiting
//! here, 0.15 CPU-s and 84.7k. Sleeping a fixed time leaves the buffer to
//! run dry meanwhile. A wait here ends when `at_least` slots are free:
//! asking for a good part of the buffer (a quarter, say) gives the export a
//! run to publish and the producer a run to fill, one wake-up per run
//! rather than per signal.
//!
//! The wait takes the slots it counts as they free up and gives them all
//! back when it ends, so while it lasts other publishers see the buffer as
//! full (a required emit into it fails its action, as into a full buffer).

use super::outgoing::Outgoing;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A handle that waits for room in an [`Export`](super::Export)'s buffer;
/// from [`Export::room`](super::Export::room). Cheap to clone, and it does
/// not keep the export alive.
#[derive(Clone, Debug)]
pub struct ExportRoom {
    buffer: mpsc::WeakSender<Outgoing>,
    capacity: usize,
}

/// Why a wait for room ended without it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomError {
    /// The export is stopped (or dropped): it takes nothing any more.
    Stopped,
    /// The time given to [`ExportRoom::wait`] passed first.
    TimedOut,
}

impl fmt::Display for RoomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RoomError::Stopped => "the export is stopped",
            RoomError::TimedOut => "no room in the export's buffer within the time given",
        })
    }
}

impl std::error::Error for RoomError {}

impl ExportRoom {
    pub(super) fn new(buffer: mpsc::WeakSender<Outgoing>, capacity: usize) -> Self {
        ExportRoom { buffer, capacity }
    }

    /// The buffer's size ([`ExportOptions::buffer`](super::ExportOptions::buffer)).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Resolves once `at_least` signals fit in the buffer (clamped to
    /// `1..=capacity`). The room is not kept: publish into it, and wait
    /// again if a publish is still refused (another producer or waiter may
    /// have taken it first).
    ///
    /// While the wait lasts it holds the slots freed so far (up to
    /// `at_least`), so other publishers and required emits into this export
    /// see the buffer as full until it ends: ask for a part of the buffer
    /// (a quarter, say), not all of it.
    pub async fn ready(&self, at_least: usize) -> Result<(), RoomError> {
        let buffer = self.buffer.upgrade().ok_or(RoomError::Stopped)?;
        let wanted = at_least.clamp(1, self.capacity);
        // Taken and dropped at once: the count of free slots is what we
        // waited for.
        buffer
            .reserve_many(wanted)
            .await
            .map(drop)
            .map_err(|_| RoomError::Stopped)
    }

    /// [`ready`](Self::ready) for a thread outside async code: blocks the
    /// calling thread (parked, not spinning) for at most `timeout`. Use
    /// `ready` in async code: on a current-thread runtime's own thread the
    /// export cannot make room while this blocks, and the wait times out.
    pub fn wait(&self, at_least: usize, timeout: Duration) -> Result<(), RoomError> {
        // Unconstrained: on a runtime thread whose task budget is spent,
        // tokio would defer the wake-up to a scheduler that is not running
        // while this thread is parked.
        let ready = tokio::task::unconstrained(self.ready(at_least));
        block_on_for(ready, timeout).unwrap_or(Err(RoomError::TimedOut))
    }
}

/// Polls `future` on this thread, parking between polls, until it is ready
/// or `timeout` passes (`None`). Any executor's future will do: the waker
/// unparks this thread.
fn block_on_for<F: Future>(future: F, timeout: Duration) -> Option<F::Output> {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let deadline = Instant::now().checked_add(timeout);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        // A wake-up that came before the park makes it return at once;
        // a spurious return only costs another poll.
        match deadline {
            None => std::thread::park(),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                std::thread::park_timeout(left);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_for_returns_a_ready_value_and_times_out_a_pending_one() {
        assert_eq!(block_on_for(async { 7 }, Duration::ZERO), Some(7));
        assert_eq!(
            block_on_for(std::future::pending::<()>(), Duration::from_millis(5)),
            None
        );
    }

    #[test]
    fn block_on_for_is_woken_from_another_thread() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sender = std::thread::spawn(move || tx.send(42).unwrap());
        assert_eq!(block_on_for(rx, Duration::from_secs(60)), Some(Ok(42)));
        sender.join().unwrap();
    }
}
