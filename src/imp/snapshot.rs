//! How `state()` and read-only queries see an agent's committed state.
//!
//! * [`StateView::Mailbox`] (plain): there is no copy; a read is a message
//!   answered by the agent between instructions.
//! * [`StateView::Snapshot`] (`fast-path`): an `arc-swap` cell holds the last
//!   committed state. The agent publishes before any effect of an
//!   instruction leaves it (an emitted or sent signal, a reply, a failure
//!   report), so whoever learns of a commit reads it; instructions without
//!   outside effects share one publish at the end of a batch. Readers load
//!   it on their own thread without touching the mailbox.
//!
//! Publishing reuses the previous snapshot's allocation when no reader still
//! holds it (`Arc::get_mut` + `clone_from`), so a warm agent publishes without
//! allocating. A publish that fails (the state's `Clone` panicked) marks the
//! snapshot stale: reads then go through the mailbox until the next publish
//! succeeds, so a read never misses a commit.

use arc_swap::ArcSwap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The read side of an agent's state.
pub enum StateView<S> {
    /// Reads go through the mailbox.
    Mailbox,
    /// Reads load the last published snapshot (unless it is stale).
    Snapshot {
        /// The last published state.
        cell: ArcSwap<S>,
        /// Set when a publish failed: the cell is older than the state.
        stale: AtomicBool,
    },
}

impl<S: Clone> StateView<S> {
    /// The view for a new agent whose committed state is `initial`.
    pub fn new(fast_path: bool, initial: &S) -> Self {
        if fast_path {
            StateView::Snapshot {
                cell: ArcSwap::from_pointee(initial.clone()),
                stale: AtomicBool::new(false),
            }
        } else {
            StateView::Mailbox
        }
    }

    /// Whether reads are answered from a snapshot.
    #[inline]
    pub fn is_snapshot(&self) -> bool {
        matches!(self, StateView::Snapshot { .. })
    }

    /// The last committed state, if this view keeps an up-to-date snapshot.
    #[inline]
    pub fn load(&self) -> Option<Arc<S>> {
        match self {
            StateView::Snapshot { cell, stale } if !stale.load(Ordering::Acquire) => {
                Some(cell.load_full())
            }
            _ => None,
        }
    }

    /// Runs `f` on the last committed state without taking a reference count
    /// (`None`: read through the mailbox instead).
    #[inline]
    pub fn with<T>(&self, f: impl FnOnce(&S) -> T) -> Option<T> {
        match self {
            StateView::Snapshot { cell, stale } if !stale.load(Ordering::Acquire) => {
                Some(f(&cell.load()))
            }
            _ => None,
        }
    }

    /// Records that a publish failed: reads bypass the snapshot until the
    /// next successful publish. Called before the batch's replies go out.
    pub fn mark_stale(&self) {
        if let StateView::Snapshot { stale, .. } = self {
            stale.store(true, Ordering::Release);
        }
    }

    /// Publishes `state` as the committed state. `spare` carries the previous
    /// snapshot between publishes so its allocation can be reused.
    #[inline]
    pub fn publish(&self, state: &S, spare: &mut Option<Arc<S>>) {
        let StateView::Snapshot { cell, stale } = self else {
            return;
        };
        let next = match spare.take() {
            Some(mut arc) => match Arc::get_mut(&mut arc) {
                Some(slot) => {
                    slot.clone_from(state);
                    arc
                }
                None => Arc::new(state.clone()),
            },
            None => Arc::new(state.clone()),
        };
        *spare = Some(cell.swap(next));
        if stale.load(Ordering::Relaxed) {
            stale.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_publishes_and_reuses_the_spare() {
        let view = StateView::new(true, &vec![1u8]);
        let mut spare = None;
        view.publish(&vec![2], &mut spare);
        assert_eq!(*view.load().unwrap(), vec![2]);
        let spare_ptr = Arc::as_ptr(spare.as_ref().unwrap());
        view.publish(&vec![3], &mut spare);
        assert_eq!(view.with(|s| s.clone()), Some(vec![3]));
        // The previous spare became the published snapshot: no new allocation.
        assert_eq!(Arc::as_ptr(&view.load().unwrap()), spare_ptr);
    }

    #[test]
    fn a_stale_snapshot_is_bypassed_until_the_next_publish() {
        let view = StateView::new(true, &1u32);
        view.mark_stale();
        assert_eq!(view.load(), None);
        assert_eq!(view.with(|s| *s), None);
        view.publish(&2, &mut None);
        assert_eq!(view.load().as_deref(), Some(&2));
    }

    #[test]
    fn mailbox_view_has_no_snapshot() {
        let view = StateView::new(false, &5u32);
        view.publish(&6, &mut None);
        assert!(view.load().is_none() && !view.is_snapshot());
    }
}
