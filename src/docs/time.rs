//! # Time and async: timers, the virtual clock, async callers, async work
//!
//! ## One timer queue per runtime (`src/exec/timers.rs`)
//! Every delayed thing is a timer in one queue: signals scheduled with
//! `send_after`/`send_at`/`send_interval` and the bus's `publish_*`,
//! signals actions schedule (`Instruction::send_self_after`), the deadline
//! of a pending `call_async`, and the deadline of async work.
//!
//! The queue is a `BTreeMap<(due, id), slot>` over a slab of timers.
//! Alternatives considered:
//! * a binary heap: O(log n) too, but a cancel can only mark an entry, whose
//!   memory (a ~150-byte signal) stays until it comes due; call deadlines
//!   are cancelled on nearly every call;
//! * a hierarchical wheel (tokio's): O(1), but it needs a thread ticking at
//!   its resolution even when the next timer is an hour away, and the
//!   ordering of timers within one tick is not the scheduling order;
//! * a crate: `tokio::time` and `tokio-util`'s `DelayQueue` need a tokio
//!   runtime, which the library must not require; the standalone timer
//!   crates are unmaintained.
//!
//! Firing order is (due, id): by due time, then scheduling order. The
//! threaded runtime fires from one thread that sleeps on a condvar until the
//! earliest due time, taking due timers out under the queue lock and firing
//! them (send, publish, fail a reply slot, expire work) with no lock held.
//! A deterministic runtime fires from its driver against a virtual clock:
//! `Runtime::advance(d)` moves the clock to each due time in turn and runs
//! the runtime until idle there, so a timer an action schedules at an
//! instant inside the window fires in its turn. Per target, both deliver
//! the same sequence for the same schedule (`tests/timers.rs`).
//!
//! Accounting: a timer's signal is accepted when it fires, like a `send` at
//! that moment. A refusal then is recorded as undelivered, marked with the
//! timer's id; an interval whose agent stopped is cancelled. Timers still
//! pending at shutdown are handed back in `ShutdownReport::pending_timers`.
//!
//! ## Async callers (`src/agent/asynchronous.rs`)
//! `call_async` is a future over the same reply slot a blocking `call`
//! uses; the slot holds a `Waker` beside the parked-thread handle. The
//! first poll enqueues and, if the agent is idle, runs its turn on the
//! polling thread (as `call` does), so a call to an idle agent completes
//! without a wake-up. Its timeout is a runtime timer armed only when the
//! future has to wait. A dropped future abandons its ticket: the slot is
//! reusable at once and a late answer is ignored, while the signal itself
//! stays accepted and is processed exactly once.
//!
//! `send_async` and `send_timeout` wait for mailbox space
//! (`src/exec/space.rs`). Whether senders wait is the top bit of the
//! mailbox's own pending count: a sender registers its waker, sets the bit
//! with `fetch_or` and retries; a turn learns of waiters from the
//! `fetch_sub` it makes anyway when it starts an instruction. Operations of
//! one location are totally ordered, so either the turn's decrement sees the
//! bit, or the sender's `fetch_or` reads the decremented count and its retry
//! sees the free slot: no lost wake-up, no fence, and nothing added to a
//! turn when nobody waits (`tests/loom_space.rs` checks it, and fails when
//! the bit is set with a plain store).
//!
//! ## Async work from actions (`src/exec/work.rs`)
//! `Instruction::start` queues a future with the instruction's other
//! effects; it is started only when the action commits. The future never
//! sees the state; its output is a signal sent to the agent. Work settles
//! exactly once, by whichever comes first: its result, its deadline (the
//! timeout signal is sent instead and the future is dropped at its next
//! poll), the shutdown (cancelled and listed in the report), or a panic
//! (recorded as undelivered). Threaded runtimes run it on the application's
//! spawner; deterministic runtimes poll it on the driver's thread between
//! turns, in start order, so async work replays exactly.
