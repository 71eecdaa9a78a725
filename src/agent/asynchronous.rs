//! Async callers: `call_async`, `send_async`, and the blocking
//! `send_timeout` for threads. Executor-agnostic: only `std::task` wakers.
//!
//! * A call's future enqueues its signal at its first poll. If the agent is
//!   idle it runs the agent's turn right there, as a blocking `call` does,
//!   so a call to an idle agent completes in its first poll: no thread or
//!   task is woken. Otherwise its waker waits in the reply slot, woken by
//!   the turn that answers, and its deadline is a runtime timer (armed only
//!   then, so an answered-at-once call costs no timer).
//! * Dropping a call's future after its signal was accepted abandons the
//!   reply ticket: the signal is still processed exactly once (accounting
//!   unchanged), its reply is dropped, the slot is reused safely (tickets),
//!   and the deadline timer is cancelled.
//! * A send's future waits for mailbox space: a turn that frees a slot of
//!   a mailbox with waiting senders wakes them (see
//!   `Context::wait_for_space`); every other refusal is returned at once.
//! * In a deterministic runtime both drive the runtime in their poll, as
//!   the blocking forms do, so they complete in their first poll.

use super::cell::{AgentCell, CallSlot};
use super::on_thread;
use super::turn::Waiting;
use crate::agent::error::{CallError, SendError};
use crate::exec::reply::pool as reply_pool;
use crate::exec::timers::TimerKey;
use crate::exec::timers::{Fire, nanos};
use crate::signal::Signal;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// The future of [`AgentRef::call_async`](crate::AgentRef::call_async).
pub(super) struct CallFuture<S, R: Send + 'static> {
    cell: Arc<AgentCell<S, R>>,
    timeout: Duration,
    state: CallState<R>,
}

enum CallState<R> {
    Unsent(Signal),
    Waiting {
        slot: Arc<CallSlot<R>>,
        ticket: u64,
        deadline: Option<TimerKey>,
    },
    Done,
}

impl<S, R> CallFuture<S, R>
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    pub(super) fn new(cell: Arc<AgentCell<S, R>>, signal: Signal, timeout: Duration) -> Self {
        CallFuture {
            cell,
            timeout,
            state: CallState::Unsent(signal),
        }
    }

    /// Enqueues the signal with a fresh reply ticket and runs the agent
    /// here if it is idle (deterministic: drives the runtime until the
    /// reply is there).
    fn start(&mut self, signal: Signal) -> Result<(), CallError> {
        let cell = &self.cell;
        if on_thread::is_running(cell.id) {
            return Err(CallError::Reentrant { agent: cell.id });
        }
        let (slot, ticket) = cell.start_call(signal)?;
        let done = || slot.is_ready(ticket);
        let waiting = Waiting {
            done: &done,
            sink: Arc::as_ptr(&slot).cast::<()>(),
            ticket,
        };
        if cell.rt.config.deterministic {
            while !slot.is_ready(ticket) && (cell.help(&waiting) || cell.rt.drive_one()) {}
        }
        self.state = CallState::Waiting {
            slot,
            ticket,
            deadline: None,
        };
        Ok(())
    }
}

impl<S, R> Future for CallFuture<S, R>
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    type Output = Result<R, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let CallState::Done = this.state {
            // Polled after it completed: stays pending, as a fused future.
            return Poll::Pending;
        }
        if let CallState::Unsent(_) = this.state {
            let CallState::Unsent(signal) = std::mem::replace(&mut this.state, CallState::Done)
            else {
                return Poll::Ready(Err(CallError::ShutDown));
            };
            if let Err(e) = this.start(signal) {
                return Poll::Ready(Err(e));
            }
        }
        let cell = &this.cell;
        let CallState::Waiting {
            slot,
            ticket,
            deadline,
        } = &mut this.state
        else {
            return Poll::Pending;
        };
        let ticket = *ticket;
        // Help the agent along if it fell idle with our signal queued.
        if !slot.is_ready(ticket) {
            let done = || slot.is_ready(ticket);
            let waiting = Waiting {
                done: &done,
                sink: Arc::as_ptr(slot).cast::<()>(),
                ticket,
            };
            cell.help(&waiting);
        }
        let answer = match slot.poll(ticket, cx.waker()) {
            Poll::Ready(answer) => answer,
            Poll::Pending => {
                if deadline.is_none() {
                    let due = cell.rt.timers.now_ns().saturating_add(nanos(this.timeout));
                    let fire = Fire::CallDeadline {
                        sink: slot.clone(),
                        ticket,
                        after: this.timeout,
                    };
                    *deadline = cell.rt.schedule(due, None, fire).ok();
                }
                return Poll::Pending;
            }
        };
        if let Some(id) = deadline.take() {
            cell.rt.timers.cancel(id);
        }
        let CallState::Waiting { slot, .. } = std::mem::replace(&mut this.state, CallState::Done)
        else {
            return Poll::Ready(Err(CallError::ShutDown));
        };
        reply_pool::release(cell.rt.config.strategy.pool, slot);
        Poll::Ready(answer.unwrap_or(Err(CallError::Timeout {
            after: this.timeout,
        })))
    }
}

impl<S, R: Send + 'static> Drop for CallFuture<S, R> {
    fn drop(&mut self) {
        // Dropped while waiting: the signal stays accepted and is processed;
        // its reply is abandoned (the ticket makes a late answer a no-op).
        if let CallState::Waiting {
            slot,
            ticket,
            deadline,
        } = &mut self.state
        {
            slot.abandon(*ticket);
            if let Some(id) = deadline.take() {
                self.cell.rt.timers.cancel(id);
            }
        }
    }
}

/// The future of [`AgentRef::send_async`](crate::AgentRef::send_async).
pub(super) struct SendFuture<S, R> {
    cell: Arc<AgentCell<S, R>>,
    signal: Option<Signal>,
}

impl<S, R> SendFuture<S, R> {
    pub(super) fn new(cell: Arc<AgentCell<S, R>>, signal: Signal) -> Self {
        SendFuture {
            cell,
            signal: Some(signal),
        }
    }
}

impl<S, R> AgentCell<S, R>
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    /// One attempt of a waiting send: `Ready` unless the mailbox is full;
    /// on a full mailbox registers `waker` and tries once more (a slot
    /// freed in between is then seen). A deterministic runtime is driven
    /// until the mailbox has room instead.
    fn try_send_or_wait(
        self: &Arc<Self>,
        signal: Signal,
        waker: &Waker,
    ) -> Result<Result<(), SendError>, Signal> {
        let signal = match self.send(signal) {
            Err(e) if e.is_full() => e.into_signal(),
            done => return Ok(done),
        };
        if self.rt.config.deterministic && !on_thread::in_any_turn() {
            self.rt.drive_until_idle();
            return Ok(self.send(signal));
        }
        self.rt
            .space
            .register(self.id.0, &self.mailbox.pending, waker);
        match self.send(signal) {
            Err(e) if e.is_full() => Err(e.into_signal()),
            Err(e) => {
                // Closed meanwhile: nobody will free a slot, so take the
                // registration back out (and wake any other waiter).
                self.rt.space.wake(self.id.0, &self.mailbox.pending);
                Ok(Err(e))
            }
            done => Ok(done),
        }
    }

    /// Sends, waiting up to `timeout` for mailbox space (parking this
    /// thread between attempts).
    pub(super) fn send_timeout(
        self: &Arc<Self>,
        signal: Signal,
        timeout: Duration,
    ) -> Result<(), SendError> {
        let deadline = crate::exec::reply::deadline_after(timeout);
        let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let mut signal = signal;
        loop {
            match self.try_send_or_wait(signal, &waker) {
                Ok(done) => return done,
                Err(back) => signal = back,
            }
            let now = Instant::now();
            if now >= deadline {
                return self.send(signal);
            }
            std::thread::park_timeout(deadline - now);
        }
    }
}

impl<S, R> Future for SendFuture<S, R>
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    type Output = Result<(), SendError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(signal) = this.signal.take() else {
            // Polled after it completed: stays pending, as a fused future.
            return Poll::Pending;
        };
        match this.cell.try_send_or_wait(signal, cx.waker()) {
            Ok(done) => Poll::Ready(done),
            Err(back) => {
                this.signal = Some(back);
                Poll::Pending
            }
        }
    }
}

/// Wakes a parked thread (`send_timeout`).
struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}
