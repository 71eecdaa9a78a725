//! [`SeenIds`]: the signal ids an agent has applied lately, so a
//! redelivered signal is recognised and skipped (effectively once).

use crate::signal::SignalId;
use imbl::{HashSet, Vector};

/// The last `capacity` signal ids an agent applied, oldest forgotten first.
///
/// Keep it in the agent's state and ask [`first_time`](Self::first_time)
/// before applying a signal. Because it is part of the state, recording an
/// id commits with the change it guards and rolls back with it when the
/// action fails, so a failed attempt does not mark the signal as seen.
/// The ids live in persistent collections (`imbl`): under the default
/// `Atomicity::Rollback` the runtime keeps a copy of the state for each
/// action, and that copy is O(1) here, whatever the capacity (with
/// `std` collections it was a copy of every id, per signal).
/// Size it to cover the redelivery horizon: the ids that can come back are
/// those delivered but not yet acknowledged (at most the import's
/// `max_ack_pending`), plus any the producer republished after a lost
/// acknowledgement outside JetStream's duplicate window.
///
/// ```
/// use agentry::nats::SeenIds;
/// use agentry::Signal;
///
/// let mut seen = SeenIds::new(1024);
/// let order = Signal::new("order.placed", "/shop", "{}")?;
/// assert!(seen.first_time(order.id()));
/// assert!(!seen.first_time(order.id()), "a redelivery is recognised");
/// # Ok::<(), agentry::SignalError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SeenIds {
    capacity: usize,
    order: Vector<SignalId>,
    set: HashSet<SignalId>,
}

impl Default for SeenIds {
    /// Remembers [`SeenIds::DEFAULT_CAPACITY`] ids.
    fn default() -> Self {
        SeenIds::new(SeenIds::DEFAULT_CAPACITY)
    }
}

impl SeenIds {
    /// Twice an import's default `max_ack_pending`.
    pub const DEFAULT_CAPACITY: usize = 16_384;

    /// Remembers up to `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        SeenIds {
            capacity: capacity.max(1),
            order: Vector::new(),
            set: HashSet::new(),
        }
    }

    /// Records `id`; `true` if it was not among the remembered ids.
    pub fn first_time(&mut self, id: &SignalId) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.set.remove(&oldest);
        }
        self.order.push_back(id.clone());
        self.set.insert(id.clone());
        true
    }

    /// Whether `id` is remembered.
    pub fn contains(&self, id: &SignalId) -> bool {
        self.set.contains(id)
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_beyond_capacity() {
        let ids: Vec<SignalId> = (0..3)
            .map(|i| SignalId::from_text(format!("id-{i}")))
            .collect();
        let mut seen = SeenIds::new(2);
        assert!(seen.first_time(&ids[0]));
        assert!(seen.first_time(&ids[1]));
        assert!(seen.first_time(&ids[2]));
        assert_eq!(seen.len(), 2);
        assert!(!seen.contains(&ids[0]));
        assert!(!seen.first_time(&ids[2]));
        assert!(seen.first_time(&ids[0]), "forgotten, so new again");
    }

    #[test]
    fn the_default_forgets_too() {
        let mut seen = SeenIds::default();
        for i in 0..SeenIds::DEFAULT_CAPACITY + 10 {
            seen.first_time(&SignalId::from_text(format!("id-{i}")));
        }
        assert_eq!(seen.len(), SeenIds::DEFAULT_CAPACITY);
    }
}
