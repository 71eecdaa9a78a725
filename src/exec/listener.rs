//! [`Listener`]: a bus subscriber that runs on the publishing thread: a
//! user's callback, which cannot refuse (a panic is reported), or a
//! [`Sink`], which may refuse with a reason when it is full (the NATS
//! export's buffer); the refusal is reported like a full mailbox. A sink
//! can also hold room ahead for a required emit, as a mailbox reserves a
//! slot (`exec::reserve`).

use crate::signal::Signal;
use crate::vocab::SubscriptionId;
use crate::vocab::report::DeliveryFailure;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// A callback subscriber.
pub type Callback = Arc<dyn Fn(&Signal) + Send + Sync>;

/// A subscriber that may refuse a signal, saying why.
pub(crate) trait Sink: Send + Sync {
    /// Takes `signal`, or says why not.
    fn offer(&self, signal: &Signal) -> Result<(), String>;
    /// Holds room for `signal`, filled with it after the emitting action
    /// commits (released if it is dropped unfilled), or says why not.
    fn reserve(&self, signal: &Signal) -> Result<Box<dyn SinkSlot>, String>;
}

/// Room a [`Sink`] holds for one signal.
pub(crate) trait SinkSlot: Send {
    /// Puts `signal` (the one the room was held for) in it.
    fn fill(self: Box<Self>, signal: &Signal) -> Result<(), String>;
}

/// A sink made of a closure: it cannot hold room ahead, so its "slot"
/// offers the signal when filled (a refusal then is recorded as
/// undelivered).
pub(crate) struct ClosureSink(pub Arc<SinkFn>);

/// The closure of a [`ClosureSink`].
pub(crate) type SinkFn = dyn Fn(&Signal) -> Result<(), String> + Send + Sync;

impl Sink for ClosureSink {
    fn offer(&self, signal: &Signal) -> Result<(), String> {
        (self.0)(signal)
    }

    fn reserve(&self, _signal: &Signal) -> Result<Box<dyn SinkSlot>, String> {
        Ok(Box::new(ClosureSink(self.0.clone())))
    }
}

impl SinkSlot for ClosureSink {
    fn fill(self: Box<Self>, signal: &Signal) -> Result<(), String> {
        (self.0)(signal)
    }
}

/// A subscriber run on the publishing thread.
#[derive(Clone)]
pub(crate) enum Listener {
    Callback(Callback),
    Sink(Arc<dyn Sink>),
}

/// What a listener holds for a required emit until the commit.
pub(crate) enum Held {
    Callback(Callback),
    Slot(Box<dyn SinkSlot>),
}

impl Listener {
    /// Hands `signal` over; a panic or a refusal comes back as the failure
    /// to report (the signal inside, for a refusal). A callback costs what
    /// calling it under `catch_unwind` costs; the rest is out of line.
    #[inline(always)]
    pub(crate) fn offer(
        &self,
        subscription: SubscriptionId,
        signal: &Signal,
    ) -> Option<DeliveryFailure> {
        match self {
            Listener::Callback(callback) => {
                match catch_unwind(AssertUnwindSafe(|| callback(signal))) {
                    Ok(()) => None,
                    Err(payload) => Some(panicked(subscription, payload)),
                }
            }
            Listener::Sink(sink) => settle(subscription, signal, || sink.offer(signal)),
        }
    }

    /// Holds room for `signal` (a sink's reservation; a callback always
    /// takes it), or the refusal to report.
    pub(crate) fn reserve(
        &self,
        subscription: SubscriptionId,
        signal: &Signal,
    ) -> Result<Held, DeliveryFailure> {
        match self {
            Listener::Callback(callback) => Ok(Held::Callback(callback.clone())),
            Listener::Sink(sink) => match catch_unwind(AssertUnwindSafe(|| sink.reserve(signal))) {
                Ok(Ok(slot)) => Ok(Held::Slot(slot)),
                Ok(Err(reason)) => Err(refused(subscription, reason, signal)),
                Err(payload) => Err(panicked(subscription, payload)),
            },
        }
    }
}

impl Held {
    /// Delivers `signal` into what was held; the failure to record, if any.
    pub(crate) fn deliver(
        self,
        subscription: SubscriptionId,
        signal: &Signal,
    ) -> Option<DeliveryFailure> {
        match self {
            Held::Callback(callback) => Listener::Callback(callback).offer(subscription, signal),
            Held::Slot(slot) => settle(subscription, signal, || slot.fill(signal)),
        }
    }
}

#[cold]
#[inline(never)]
fn panicked(
    subscription: SubscriptionId,
    payload: Box<dyn std::any::Any + Send>,
) -> DeliveryFailure {
    DeliveryFailure::CallbackPanicked {
        subscription,
        message: crate::vocab::ActionError::from_panic(payload)
            .text()
            .to_owned(),
    }
}

#[cold]
fn refused(subscription: SubscriptionId, reason: String, signal: &Signal) -> DeliveryFailure {
    DeliveryFailure::SinkRefused {
        subscription,
        reason,
        signal: Box::new(signal.clone()),
    }
}

/// Runs a sink's `offer` or `fill` under `catch_unwind`.
#[inline(never)]
fn settle(
    subscription: SubscriptionId,
    signal: &Signal,
    hand_over: impl FnOnce() -> Result<(), String>,
) -> Option<DeliveryFailure> {
    match catch_unwind(AssertUnwindSafe(hand_over)) {
        Ok(Ok(())) => None,
        Ok(Err(reason)) => Some(refused(subscription, reason, signal)),
        Err(payload) => Some(panicked(subscription, payload)),
    }
}
