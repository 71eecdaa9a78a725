//! What the current thread is doing: the agents whose turns it is running
//! (a call or read from inside an agent's own turn could never be answered,
//! so it is refused), and the batch buffer it lends to turns.

use super::AgentId;
use crate::instruction::Instruction;
use std::cell::{Cell, RefCell};

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    static STACK: RefCell<Vec<AgentId>> = const { RefCell::new(Vec::new()) };
    static BATCH: RefCell<Vec<Box<Instruction>>> = const { RefCell::new(Vec::new()) };
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

/// The thread's batch buffer, lent out for the length of a turn (a nested
/// turn on the same thread gets a fresh one).
pub(super) fn take_batch_buffer() -> Vec<Box<Instruction>> {
    BATCH
        .try_with(|b| std::mem::take(&mut *b.borrow_mut()))
        .unwrap_or_default()
}

/// Gives the batch buffer back (empty), keeping the larger allocation.
pub(super) fn put_batch_buffer(v: Vec<Box<Instruction>>) {
    debug_assert!(v.is_empty());
    let _ = BATCH.try_with(|b| {
        let mut b = b.borrow_mut();
        if b.capacity() < v.capacity() {
            *b = v;
        }
    });
}
