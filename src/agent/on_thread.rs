//! What the current thread is doing: the agents whose turns it is running
//! (a call or read from inside an agent's own turn could never be answered,
//! so it is refused).

use super::AgentId;
use std::cell::{Cell, RefCell};

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    static STACK: RefCell<Vec<AgentId>> = const { RefCell::new(Vec::new()) };
}

/// Marks `id` as running on this thread until the returned guard drops (also
/// when unwinding).
#[must_use]
pub(super) fn enter(id: AgentId) -> Turn {
    let _ = STACK.try_with(|s| s.borrow_mut().push(id));
    let _ = DEPTH.try_with(|d| d.set(d.get() + 1));
    Turn(())
}

/// A turn in progress on this thread (see [`enter`]).
pub(super) struct Turn(());

impl Drop for Turn {
    fn drop(&mut self) {
        let _ = STACK.try_with(|s| s.borrow_mut().pop());
        let _ = DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Whether this thread is running any agent's turn.
#[inline]
pub(super) fn in_any_turn() -> bool {
    DEPTH.try_with(Cell::get).unwrap_or(0) != 0
}

/// Whether this thread is running `id` (a plain counter answers the common
/// case, a thread that runs no agent, without touching the stack).
#[inline]
pub(super) fn is_running(id: AgentId) -> bool {
    in_any_turn()
        && STACK
            .try_with(|s| s.borrow().contains(&id))
            .unwrap_or(false)
}
