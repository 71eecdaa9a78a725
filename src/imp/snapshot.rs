//! How `state()` and read-only queries see an agent's committed state.
//!
//! * [`StateView::Mailbox`] (plain): there is no copy; a read is a message
//!   answered by the agent between instructions.
//! * [`StateView::Snapshot`] (`fast-path`): an `arc-swap` cell holds a copy
//!   of a committed state, stamped with the commit it shows. At each commit
//!   point (before any effect of an instruction leaves the agent; once per
//!   batch for instructions without outside effects) the agent bumps its
//!   commit count, and copies the state into the cell only if a reader
//!   looked since the last commit point. A reader answers from the cell on
//!   its own thread when the cell shows the latest commit, and otherwise
//!   goes through the read lane, which serves it from the live state and
//!   refreshes the cell. So nobody reading costs a counter bump per commit
//!   point, not a copy of the state; readers keep getting copies while they
//!   keep reading; and a read never misses a commit.
//!
//! Publishing reuses the previous snapshot's allocation when no reader still
//! holds it (`Arc::get_mut` + `clone_from`), so a warm agent publishes without
//! allocating. A copy that panics (the state's `Clone`) leaves the cell's
//! stamp behind the commit count, so reads use the read lane until the next
//! copy succeeds.

use super::stamp::Stamps;
use arc_swap::ArcSwap;
use std::sync::Arc;

/// The read side of an agent's state.
pub enum StateView<S> {
    /// Reads go through the mailbox.
    Mailbox,
    /// Reads load the snapshot when it shows the latest commit.
    Snapshot(Snapshot<S>),
}

/// A copy of a committed state and the commit it shows.
pub struct Snapshot<S> {
    /// The last copied state.
    cell: ArcSwap<S>,
    /// Which commit the cell shows, and whether a reader wants copies.
    stamps: Stamps,
}

impl<S: Clone> StateView<S> {
    /// The view for a new agent whose committed state is `initial`.
    pub fn new(fast_path: bool, initial: &S) -> Self {
        if fast_path {
            StateView::Snapshot(Snapshot {
                cell: ArcSwap::from_pointee(initial.clone()),
                stamps: Stamps::new(),
            })
        } else {
            StateView::Mailbox
        }
    }

    /// Whether reads may be answered from a snapshot.
    #[inline]
    pub fn is_snapshot(&self) -> bool {
        matches!(self, StateView::Snapshot(_))
    }

    /// The snapshot, if it shows the latest commit (`None`: read through
    /// the read lane). A commit point that completed before this call is
    /// seen: its count was stored before its effects left the agent.
    #[inline]
    fn current(&self) -> Option<&Snapshot<S>> {
        let StateView::Snapshot(snap) = self else {
            return None;
        };
        snap.stamps.current().then_some(snap)
    }

    /// The last committed state, if the snapshot shows it.
    #[inline]
    pub fn load(&self) -> Option<Arc<S>> {
        self.current().map(|snap| snap.cell.load_full())
    }

    /// Runs `f` on the last committed state without taking a reference count
    /// (`None`: read through the read lane instead).
    #[inline]
    pub fn with<T>(&self, f: impl FnOnce(&S) -> T) -> Option<T> {
        self.current().map(|snap| f(&snap.cell.load()))
    }

    /// A commit point, by the claim holder: whether a reader asked for a
    /// copy since the last one. Call [`copy`](Self::copy) if so (guarded:
    /// it runs the state's `Clone`), then [`commit`](Self::commit) whatever
    /// happened.
    #[inline]
    pub fn wants_copy(&self) -> bool {
        match self {
            StateView::Snapshot(snap) => snap.stamps.take_wanted(),
            StateView::Mailbox => false,
        }
    }

    /// Copies `state` into the cell, stamped with the commit about to be
    /// counted. `spare` carries the previous snapshot between copies so its
    /// allocation can be reused.
    #[inline]
    pub fn copy(&self, state: &S, spare: &mut Option<Arc<S>>) {
        let StateView::Snapshot(snap) = self else {
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
        *spare = Some(snap.cell.swap(next));
        snap.stamps.copied();
    }

    /// Counts a commit point (after [`copy`](Self::copy), if any): from
    /// here on a snapshot without this commit is not served.
    #[inline]
    pub fn commit(&self) {
        if let StateView::Snapshot(snap) = self {
            snap.stamps.commit();
        }
    }

    /// Publishes a copy the read lane just made of the live state (no
    /// commit point: the claim holder serves reads between instructions).
    pub fn refresh(&self, copy: Arc<S>) {
        if let StateView::Snapshot(snap) = self {
            snap.cell.store(copy);
            snap.stamps.refreshed();
        }
    }

    /// Whether the snapshot is behind the live state (the read lane then
    /// refreshes it).
    pub fn is_behind(&self) -> bool {
        match self {
            StateView::Snapshot(snap) => snap.stamps.is_behind(),
            StateView::Mailbox => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit point as the agent runs it.
    fn commit(view: &StateView<Vec<u8>>, state: &Vec<u8>, spare: &mut Option<Arc<Vec<u8>>>) {
        if view.wants_copy() {
            view.copy(state, spare);
        }
        view.commit();
    }

    #[test]
    fn nobody_reading_costs_no_copy_and_a_read_is_never_stale() {
        let view = StateView::new(true, &vec![1u8]);
        let mut spare = None;
        commit(&view, &vec![2], &mut spare);
        // Nobody had read: no copy, so the snapshot is behind and unserved.
        assert!(spare.is_none() && view.is_behind());
        assert_eq!(view.load(), None);
        // That read asked for copies: the next commit point makes one.
        commit(&view, &vec![3], &mut spare);
        assert_eq!(*view.load().unwrap(), vec![3]);
        assert_eq!(view.with(|s| s.clone()), Some(vec![3]));
        // Read since: the next copy reuses the previous snapshot's allocation.
        let spare_ptr = Arc::as_ptr(spare.as_ref().unwrap());
        commit(&view, &vec![4], &mut spare);
        assert_eq!(Arc::as_ptr(&view.load().unwrap()), spare_ptr);
    }

    #[test]
    fn a_failed_copy_leaves_the_snapshot_unserved_until_a_refresh() {
        let view = StateView::new(true, &vec![1u8]);
        assert!(view.load().is_some());
        // The copy panicked: only the commit is counted.
        assert!(view.wants_copy());
        view.commit();
        assert_eq!(view.load(), None);
        view.refresh(Arc::new(vec![2]));
        assert_eq!(view.load().as_deref(), Some(&vec![2]));
    }

    #[test]
    fn mailbox_view_has_no_snapshot() {
        let view = StateView::new(false, &5u32);
        assert!(!view.wants_copy());
        view.commit();
        assert!(view.load().is_none() && !view.is_snapshot() && !view.is_behind());
    }
}
