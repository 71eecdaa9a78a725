//! # One agent's concurrency protocol
//!
//! An agent (`AgentCell`, `src/agent/cell.rs`) is shared by every thread that
//! holds its handle: senders, the workers, callers helping their own `call`,
//! readers. What each piece of it is for:
//!
//! | field | kind | guards / means |
//! |---|---|---|
//! | `mailbox` | `Mutex` | the queue of routed instructions and the `closed` reason. [`send`](crate::AgentRef::send), [`call`](crate::AgentRef::call) and bus deliveries push under it, after the capacity and `closed` checks |
//! | `queued` | `AtomicUsize` | the mailbox length, stored (`SeqCst`) under the mailbox lock, read without it |
//! | `in_batch` | `Mutex` | the not yet started rest of a batch, last instruction first |
//! | `core` | `Mutex` | the state, its rollback copy, the spare snapshot, the batch's results and failures. **Holding it is running the agent**: this one lock makes execution serial per agent |
//! | `scheduled` | `AtomicBool` | the agent is in the run queue, or its runner will re-check for work before leaving |
//! | `reads`, `has_reads` | `Mutex` + `AtomicBool` | the read lane: `state()` and queries waiting for the agent (no `fast-path`, or a stale snapshot) |
//! | `closed` | `AtomicBool` | stopped or shut down (mirrors `mailbox.closed`) |
//! | `routes`, `route_writer` | `ArcSwap` + `Mutex<()>` | the route table: senders load it without locking; `add_route`/`remove_route` serialize on `route_writer` and store a new table (which also empties the route memo) |
//! | `view` | `StateView` | the `fast-path` snapshot ([`snapshot`](super::snapshot)) |
//!
//! ## Who holds `core`
//! * A worker, for one batch: it pops the agent from the run queue and
//!   *blocks* on `core` (it holds no other agent's `core` at that point).
//! * The deterministic driver, with `try_lock`: an agent already running
//!   further up the same thread is handed back, not waited for.
//! * A caller waiting for its `call`'s reply, with `try_lock`, between spins:
//!   if no one runs the agent, the caller serves it on its own thread until
//!   its reply is there, so a round trip to an idle agent wakes no thread.
//! * A reader waiting in the read lane, with `try_lock`: it serves the lane
//!   (only reads) itself.
//! * Shutdown accounting (`quiesce`) locks and releases it to wait for a
//!   running turn to end, except on a thread that is inside any agent's turn
//!   (two agents stopping each other would otherwise wait for each other).
//!
//! So a thread *blocks* on a `core` only while it holds no other `core`;
//! every nested acquisition of another agent's `core` is a `try_lock`. Calls
//! and reads of the agent whose turn the thread is running are refused with
//! `Reentrant` (a thread-local stack of running agents) instead of waiting
//! for themselves.
//!
//! ## Lock order
//! Taken left to right, never the other way:
//!
//! ```text
//! core ─> mailbox ─> in_batch          run_batch: take a batch
//!         mailbox ─> in_batch          close (stop, shutdown): no core needed
//! core ─> reads                        serve_reads
//! core ─> another agent's mailbox      flushing a batch's emitted signals
//!      ─> run-queue mutex              (schedule), reply-slot mutex (replies),
//!      ─> runtime's undelivered list   undeliverable emitted signals
//! route_writer                         alone (load + store of the table)
//! ```
//!
//! `mailbox`, `in_batch`, `reads`, the run queue and the reply slots are
//! leaves: nothing is acquired while one is held (a sender drops `mailbox`
//! before it pushes the agent on the run queue). `close` never takes `core`,
//! which is what makes [`AgentRef::stop`](crate::AgentRef::stop) safe from
//! inside an action, including the agent's own.
//!
//! ## No lost wake-up
//! A sender pushes under `mailbox`, stores `queued`, releases `mailbox`, then
//! `scheduled.swap(true)`; if it was `false`, the sender puts the agent on
//! the run queue. A runner, after releasing `core`, stores
//! `scheduled = false`, then reads `queued` and `has_reads`, and reschedules
//! (through the same swap) if there is work and the agent is open. All four
//! accesses are `SeqCst`: of a sender's "write `queued`, then read
//! `scheduled`" and a runner's "write `scheduled`, then read `queued`", at
//! least one sees the other's write, so either the sender enqueues the agent
//! or the runner does; the swap makes it at most one of them. A caller that
//! served the agent itself reschedules it the same way if work is left.
//!
//! A read in the lane does not schedule the agent: the reader polls (spin,
//! yield, then park in 1 ms slices), serving the lane whenever it wins
//! `try_lock(core)`; a runner serves the lane before its batch and after
//! each one.
//!
//! ## Batches and `stop`
//! `run_batch` moves up to the batch budget (`batch_size` with `batching`,
//! else 1) from `mailbox` to `in_batch` in one critical section, reversed,
//! and pops one instruction at a time, releasing `in_batch` before the
//! action runs. A `close` meanwhile takes `in_batch` (under `mailbox`) and
//! hands those instructions back ahead of the mailbox's, in send order, so
//! batching never changes what a stop returns. A single instruction skips
//! `in_batch`.
//!
//! ## Commit order inside a turn
//! Per instruction: every resolved route runs under one panic guard around
//! the rollback copy and the action; an error or panic swaps the copy back
//! and truncates what that route emitted. After the batch: publish the
//! snapshot, then per instruction in order report failures (the `on_failure`
//! hook runs here, after the commit), flush emitted signals, fulfil the
//! reply; then return the instructions to the pool and count them
//! `processed`. Replies and emitted signals therefore never overtake the
//! snapshot that contains their effect.
//!
//! ## Reads
//! Without `fast-path`, [`state`](crate::AgentRef::state) and
//! [`query`](crate::AgentRef::query) push a job on the read lane and are
//! served under `core` between batches: they see every committed batch and
//! nothing half done. With it they load the snapshot on the caller's thread
//! (see [`snapshot`](super::snapshot)).
