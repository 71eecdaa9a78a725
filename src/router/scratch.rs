//! Per-thread scratch buffers for lookup results, lent out for the length of
//! one lookup, so routing a signal does not allocate. Lookups nest (a bus
//! publish holds one buffer while each agent delivery routes with another),
//! so a few buffers are kept: one per nesting level, up to [`KEPT`].

use super::RouteSlot;
use std::cell::RefCell;

/// Buffers kept per thread for nested lookups: deeper nesting allocates.
const KEPT_NESTED: usize = 4;

thread_local! {
    /// The outermost lookup's buffer (the common case: one `mem::take`).
    static BUF: RefCell<Vec<RouteSlot>> = const { RefCell::new(Vec::new()) };
    /// Buffers for lookups made while `BUF` is lent out.
    static NESTED: RefCell<Vec<Vec<RouteSlot>>> = const { RefCell::new(Vec::new()) };
}

/// Borrows one of this thread's buffers (empty).
pub(crate) fn take() -> Vec<RouteSlot> {
    let v = BUF
        .try_with(|b| std::mem::take(&mut *b.borrow_mut()))
        .unwrap_or_default();
    if v.capacity() != 0 {
        return v;
    }
    NESTED
        .try_with(|n| n.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or(v)
}

/// Returns a buffer for the next lookup on this thread.
pub(crate) fn put(mut v: Vec<RouteSlot>) {
    if v.capacity() == 0 {
        return;
    }
    v.clear();
    let _ = BUF.try_with(|b| {
        let mut b = b.borrow_mut();
        if b.capacity() == 0 {
            *b = v;
        } else {
            drop(b);
            let _ = NESTED.try_with(|n| {
                let mut nested = n.borrow_mut();
                if nested.len() < KEPT_NESTED {
                    nested.push(v);
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_lookups_reuse_their_buffers() {
        let mut outer = take();
        outer.reserve(8);
        let mut inner = take();
        inner.reserve(8);
        let (outer_ptr, inner_ptr) = (outer.as_ptr(), inner.as_ptr());
        put(inner);
        put(outer);
        // The same two allocations come back, in either order.
        let (a, b) = (take(), take());
        let mut got = [a.as_ptr(), b.as_ptr()];
        got.sort();
        let mut want = [outer_ptr, inner_ptr];
        want.sort();
        assert_eq!(got, want);
        assert!(a.is_empty() && b.is_empty());
    }
}
