//! What the current thread is doing: the agents whose turns it is running
//! (a call or read from inside an agent's own turn could never be answered,
//! so it is refused).

use super::AgentId;
use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    static STACK: RefCell<Vec<AgentId>> = const { RefCell::new(Vec::new()) };
    /// Instructions started on this thread (in all nested turns) and not
    /// yet counted `processed`.
    static RUNNING: Cell<u64> = const { Cell::new(0) };
    /// When this thread may next run an agent for a `send` of its own.
    static NEXT_SENDER_RUN: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The least a sender waits between two turns it runs for its sends: sends
/// closer together than this are a flood, which the workers should take.
const SENDER_RUN_GAP: Duration = Duration::from_micros(5);

/// Whether this thread may run an agent's turn for a `send` it made: not
/// from inside a turn, not on a timer thread (a slow action would hold every
/// timer back), and not before its pause after the last one ended.
#[inline]
pub(super) fn may_run_for_send() -> bool {
    !in_any_turn()
        && !crate::exec::timers::on_timer_thread()
        && NEXT_SENDER_RUN
            .try_with(|next| next.get().is_none_or(|at| Instant::now() >= at))
            .unwrap_or(false)
}

/// Records a turn this thread ran for a send, from `started` to now: the
/// next may start after a pause as long as this turn (at least
/// [`SENDER_RUN_GAP`]), so a sender spends at most about half its time
/// running agents.
pub(super) fn ran_for_send(started: Instant) {
    let now = Instant::now();
    let pause = now.duration_since(started).max(SENDER_RUN_GAP);
    let _ = NEXT_SENDER_RUN.try_with(|next| next.set(Some(now + pause)));
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

/// The agent whose turn this thread runs innermost, if any.
pub(super) fn current() -> Option<AgentId> {
    if !in_any_turn() {
        return None;
    }
    STACK
        .try_with(|s| s.borrow().last().copied())
        .ok()
        .flatten()
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

/// Instructions a turn on this thread started and has not yet counted
/// `processed` (it counts a batch at once, after its snapshot publish);
/// dropping it (also when unwinding) takes them off the thread's count.
#[derive(Default)]
pub(super) struct Uncounted(u64);

impl Uncounted {
    #[inline]
    pub(super) fn started_one(&mut self) {
        self.0 += 1;
        let _ = RUNNING.try_with(|r| r.set(r.get() + 1));
    }
}

impl Drop for Uncounted {
    fn drop(&mut self) {
        let n = self.0;
        let _ = RUNNING.try_with(|r| r.set(r.get().saturating_sub(n)));
    }
}

/// Instructions started on this thread and not yet counted `processed`:
/// what a shutdown requested from inside an action counts as processed
/// (the batch around that action finishes right after it returns, on this
/// thread; the rest of it was handed back as dead letters).
pub(crate) fn running_instructions() -> u64 {
    RUNNING.try_with(Cell::get).unwrap_or(0)
}
