//! # One agent's concurrency protocol
//!
//! An agent (`AgentCell`, `src/agent/cell.rs`) is shared by every thread that
//! holds its handle: senders, the workers, callers helping their own `call`,
//! readers. What each piece of it is for:
//!
//! | field | kind | guards / means |
//! |---|---|---|
//! | `claim` | `AtomicU8` (`src/exec/claim.rs`) | **who runs the agent**: idle, notified (a run-queue entry exists), running, running + notified |
//! | `mailbox.queue` | `Mutex` | the queue of routed instructions and the `closed` reason; senders push under it after the capacity and `closed` checks |
//! | `mailbox.pending` | `AtomicUsize` | accepted and not yet started (queued or in a taken batch): what the capacity rule counts |
//! | `in_batch` | `Mutex` | the taken, not yet started rest of a batch, last instruction first |
//! | `core` | `Mutex` | the state, its rollback copy, the spare snapshot, the batch's results and failures; locked only by the claim holder, so never contended |
//! | `reads`, `has_reads` | `Mutex` + `AtomicBool` | the read lane: `state()` and queries waiting for the agent (no `fast-path`, or a stale snapshot) |
//! | `closed` | `AtomicBool` | stopped or shut down (mirrors `mailbox.queue.closed`) |
//! | `routes` | `RouteCell`: `ArcSwap` + a writer `Mutex` | the route table: senders load it without locking; `add_route`/`remove_route` serialize on the writer lock, bring the spare copy (one change behind) up to date, apply the change, empty its route memo and swap it in (`agent::route_cell`) |
//! | `view` | `StateView` | the `fast-path` snapshot ([`snapshot`](super::snapshot)) |
//!
//! ## The claim: one word decides who runs the agent
//! Every runner claims the agent through the same atomic word, with one
//! compare-and-swap, and whoever loses leaves instead of waiting:
//! * a **worker** that pops the agent's run-queue entry claims
//!   `notified → running`; any other state means the entry is stale
//!   (someone else claimed the agent and will hand it on) and is dropped;
//! * a **caller** of `call` enqueues its signal and claims `idle or notified
//!   → running`: if it wins, it runs the agent on its own thread until its
//!   reply is there (its batch ends at its own instruction) — nothing is
//!   scheduled and no thread is woken; if it loses, it notifies and waits,
//!   trying the claim again whenever it looks;
//! * a **reader** in the read lane claims the same way and serves only the
//!   lane;
//! * the **deterministic driver** pops entries like a worker.
//!
//! A sender enqueues under `mailbox.queue`, then notifies the claim: `idle →
//! notified` means "push a run-queue entry", `running → running + notified`
//! means "the runner will see it". A runner lets go with a CAS that goes to
//! idle only if nothing was notified and nothing is left; otherwise it goes
//! to `notified` and pushes a new entry. So work is never stranded (no lost
//! wake-up) and two threads never run one agent (no double run); the
//! argument is in `src/exec/claim.rs`, and `tests/loom_claim.rs`
//! model-checks it with loom over every interleaving of a sender, an inline
//! caller and a worker (up to three preemptions).
//!
//! Calls and reads of the agent whose turn this thread is running are
//! refused with `Reentrant` (a thread-local stack of running agents) instead
//! of waiting for themselves.
//!
//! ## Lock order
//! Taken left to right, never the other way:
//!
//! ```text
//! core ─> mailbox.queue ─> in_batch     run_batch: take a batch
//!         mailbox.queue ─> in_batch     close (stop, shutdown): no core needed
//! core ─> reads                         serve_reads
//! core ─> another agent's mailbox       flushing a batch's emitted signals
//!      ─> run-queue overflow list       (schedule), reply-slot mutex (replies),
//!      ─> context's undelivered list    undeliverable emitted signals
//! core ─> timer queue, work registry   flushing: signals an action scheduled,
//!                                       async work it started (and the spawner)
//! core ─> space registry                a turn freed a mailbox slot while senders
//!                                       waited (the pending count's top bit, `exec::space`)
//! core ─> another agent's mailbox       reserving a slot for a required emit
//!                                       (`exec::reserve`), before the commit
//! core ─> monitors, keys, stopped list  a restart policy stopping its agent
//! registry ─> keys                      spawn_keyed, deregistration
//! routes.writer                         alone (update the spare, swap it in)
//! ```
//!
//! The monitor map, the key map (read by `lookup` alone) and the list of
//! stopped agents are leaves too. A watcher is told with no lock held.
//!
//! The timer queue, the async-work registry and the space registry are
//! leaves: the timer thread takes its due timers out under the queue lock
//! and fires them (a send, a publish, a reply-slot failure) with no lock
//! held; wakers are woken after their lock is released.
//!
//! `core` is only ever locked after winning the claim, so locking it never
//! blocks. `mailbox.queue`, `in_batch`, `reads`, the run queue and the reply
//! slots are leaves. `close` never takes `core` and never waits on a thread
//! that is inside a turn, which is what makes
//! [`AgentRef::stop`](crate::AgentRef::stop) safe from inside an action,
//! including the agent's own.
//!
//! ## The run queue
//! `src/exec/run_queue.rs`: a FIFO deque per worker (`crossbeam-deque`), a
//! preallocated lock-free global ring with an overflow list, and stealing
//! between workers. An agent scheduled from a worker thread goes to that
//! worker's deque; from any other thread, to the ring.
//!
//! ## Idle workers
//! `src/exec/idle.rs`: a worker that finds nothing spins for 10 µs if no
//! other worker is spinning, and otherwise sleeps on a condvar. The sleep is
//! a Dekker handshake (sleeper: count itself, fence, look again; pusher:
//! push, fence, read the counts), so no wake-up is lost; a push wakes a
//! sleeper only when nobody spins, or when the spin has lasted longer than
//! a spin can (the spinner was descheduled). `tests/loom_idle.rs` checks it
//! in every interleaving. Why one spinner and a short spin: on a small
//! machine a spinning worker takes a core from the application's own
//! threads, and three runnable threads on two cores get time-sliced, which
//! put milliseconds into the p99 of a paced load (issue 17; the load
//! generator's `--compare` shows it against tokio and crossbeam).
//!
//! With [`RuntimeBuilder::run_on_sender`](crate::RuntimeBuilder::run_on_sender),
//! a `send` that finds every worker asleep and the agent idle turns the
//! claim it just set to "notified" into "running" (as a worker does when it
//! pops the entry) and runs the turn on the sending thread: no wake-up,
//! and the second core stays free. Never from inside a turn (a signal an
//! action sends is always queued), and a thread pauses after such a turn
//! for as long as the turn took, so a sender spends at most about half its
//! time running agents and a flood of sends goes to the workers.
//!
//! ## Batches and `stop`
//! `run_batch` first continues a batch a caller's turn left behind, else
//! moves up to the batch budget (`batch_size` with `batching`, else 1) from
//! the mailbox to `in_batch` in one critical section, reversed, and pops one
//! instruction at a time, releasing `in_batch` before the action runs. A
//! `close` meanwhile takes `in_batch` (under the mailbox lock) and hands
//! those instructions back ahead of the mailbox's, in send order, so batching
//! never changes what a stop returns. A single instruction skips `in_batch`.
//!
//! ## Commit order inside a turn
//! Per instruction: every resolved route runs under one panic guard around
//! the rollback copy and the action; an error or panic swaps the copy back
//! and truncates what that route emitted. If the instruction has effects
//! outside the agent (a reply, emitted or sent signals, a failure to
//! report), the snapshot is published first, then failures are reported
//! (the `on_failure` hook runs here, after the commit), emitted signals are
//! flushed and the reply is fulfilled, all before the next instruction
//! starts. Instructions without outside effects share one publish at the
//! end of the batch. Replies and emitted signals therefore never overtake
//! the snapshot that contains their effect, and batching never reorders
//! what other agents observe. Then the instructions go back to the pool and
//! are counted `processed`.
//!
//! ## The mailbox: a mutex, measured against lock-free queues
//! The mailbox is a `Mutex<VecDeque<Box<Instruction>>>`. The runner takes
//! up to a batch in one critical section, so a sender meets the runner once
//! per batch, not once per signal; the critical section is a capacity check
//! and a `push_back`. `benches/mailbox.rs` measures the hand-off against
//! the `crossbeam` queues in the mailbox's own pattern (bounded push that
//! hands the item back, batch take of 64; `cargo bench --bench mailbox`,
//! 2-core AMD EPYC VM, 2026-12-02, per item): one producer, 79 ns for the
//! mutex, 47 ns for `SegQueue`, 39 ns for `ArrayQueue`; four producers, 46,
//! 38 and 33 ns. The lock-free queues are faster by 8 to 40 ns per signal,
//! but `SegQueue` allocates a block every 31 items (the warm path would no
//! longer be allocation-free) and `ArrayQueue` allocates its whole ring up
//! front (16 KiB per agent at the default capacity of 1,024; 1.6 GB for
//! 100,000 idle agents, which cost a few hundred bytes each today). A
//! small lock-free ring in front of a locked overflow list would keep both
//! properties; it needs its own FIFO proof and is not built.
//!
//! ## Counters
//! `accepted` and `processed`, bumped by every send and every turn, are
//! sharded per thread (`src/exec/counters.rs`): a sender and a worker do not
//! move one cache line back and forth per signal. A sum reads `processed`
//! before `accepted`, so it never shows a signal finished before accepted.
