//! Deliveries reserved before an action commits, for emits that must not
//! be lost (`Instruction::emit_or_fail`, `AgentSpec::undeliverable`).
//!
//! An emit is delivered after its action commits, so a refusal then (a
//! full mailbox) can no longer undo the action. A required emit is
//! therefore checked when the action returns, before the commit: each
//! receiving agent reserves a mailbox slot (the reservation counts against
//! its capacity exactly as a queued signal does, so no other sender can
//! take that room meanwhile), and if any receiver refuses, the action fails
//! and is undone instead. After the commit the signal goes into the
//! reserved slots. A reservation an undone action leaves behind is
//! released when dropped.
//!
//! What a reservation cannot hold: the receiver being stopped (or the
//! runtime shutting down) between the commit and the delivery, a few
//! microseconds later; that delivery is recorded as undelivered (and the
//! `on_undelivered` hook sees it), as any emit's would be.

use super::listener::Held;
use super::{AgentTask, Context};
use crate::signal::Signal;
use crate::vocab::SubscriptionId;
use crate::vocab::error::SendError;
use crate::vocab::report::{DeliveryFailure, UndeliveredFrom};
use std::sync::Arc;

/// One mailbox slot held at an agent; released when dropped unused.
pub(crate) struct Reservation {
    to: Arc<dyn AgentTask>,
    held: bool,
}

impl Reservation {
    /// Reserves a slot at `to` for `signal` (routed now, to refuse a signal
    /// the agent has no route for).
    pub fn take(to: &Arc<dyn AgentTask>, signal: &Signal) -> Result<Self, DeliveryFailure> {
        to.reserve(signal).map_err(|kind| {
            DeliveryFailure::Refused(SendError::new(to.id(), kind, signal.clone()))
        })?;
        Ok(Reservation {
            to: to.clone(),
            held: true,
        })
    }

    /// Delivers `signal` into the reserved slot.
    fn deliver(mut self, signal: Signal) -> Result<(), DeliveryFailure> {
        self.held = false;
        self.to
            .deliver_reserved(&self.to, signal)
            .map_err(DeliveryFailure::Refused)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held {
            self.to.unreserve();
        }
    }
}

/// A receiver of a reserved delivery: an agent's slot, or what a bus
/// listener holds (a callback cannot refuse; a sink held room; a panic, or
/// a refusal of a sink that cannot hold room ahead, is recorded).
pub(crate) enum Receiver {
    Agent(Reservation),
    Listener(SubscriptionId, Held),
}

/// A signal with its receivers reserved, delivered after the commit.
pub(crate) struct Reserved {
    pub signal: Signal,
    pub receivers: Vec<Receiver>,
}

impl Reserved {
    /// Delivers to every receiver in order (the last agent gets the
    /// signal itself, the others copies); what fails is recorded.
    pub fn deliver(self, rt: &Context, from: UndeliveredFrom) {
        let Reserved { signal, receivers } = self;
        let last = receivers.len().saturating_sub(1);
        let mut original = Some(signal);
        for (i, receiver) in receivers.into_iter().enumerate() {
            let Some(signal) = original.as_ref() else {
                break;
            };
            let failure = match receiver {
                Receiver::Agent(slot) => {
                    let copy = if i == last {
                        original.take()
                    } else {
                        Some(signal.clone())
                    };
                    copy.and_then(|copy| slot.deliver(copy).err())
                }
                Receiver::Listener(subscription, held) => held.deliver(subscription, signal),
            };
            if let Some(failure) = failure {
                rt.record_undelivered(from, failure);
            }
        }
    }
}
