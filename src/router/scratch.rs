//! A per-thread scratch buffer for lookup results, lent out for the length of
//! one lookup (a nested lookup on the same thread, e.g. from a bus callback,
//! gets a fresh one), so routing a signal does not allocate.

use super::RouteSlot;
use std::cell::RefCell;

thread_local! {
    static BUF: RefCell<Vec<RouteSlot>> = const { RefCell::new(Vec::new()) };
}

/// Borrows this thread's buffer (empty).
pub(crate) fn take() -> Vec<RouteSlot> {
    BUF.try_with(|b| std::mem::take(&mut *b.borrow_mut()))
        .unwrap_or_default()
}

/// Returns the buffer, keeping the larger of the two capacities.
pub(crate) fn put(mut v: Vec<RouteSlot>) {
    v.clear();
    let _ = BUF.try_with(|b| {
        let mut b = b.borrow_mut();
        if b.capacity() < v.capacity() {
            *b = v;
        }
    });
}
