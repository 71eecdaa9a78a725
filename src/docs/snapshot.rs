//! # The `fast-path` snapshot, and when it is stale
//!
//! With `fast-path`, an agent's view (`StateView::Snapshot`,
//! `src/imp/snapshot.rs`) is an `ArcSwap<S>` holding the last committed
//! state. [`AgentRef::state`](crate::AgentRef::state) returns
//! `load_full()` of it and [`AgentRef::query`](crate::AgentRef::query) runs
//! the query against a `load()` guard, both on the caller's thread, without
//! touching the mailbox or `core`.
//!
//! **When it is published.** Before any effect of an instruction leaves the
//! agent: after an instruction that emits, sends, replies or failed, and
//! *before* its failures are reported, its emitted signals delivered and its
//! reply sent; instructions without such effects share one publish at the
//! end of their batch (see [`concurrency`](super::concurrency)). So a caller
//! that got its reply reads its own write, and an agent receiving an emitted
//! signal sees the emitter's commit, in instruction order whatever the batch
//! size. Between an action's end and the publish the snapshot is older than
//! the state, but nobody can know that instruction finished: its effects only
//! leave the agent after the publish.
//!
//! **Cost.** Publishing clones the state. The previous snapshot is kept as a
//! spare and reused with `clone_from` when nothing else still holds it
//! (`Arc::get_mut`), so a warm agent publishes without allocating; a reader
//! holding an old `Arc` forces one allocation. The clone is still per batch (or
//! per instruction with effects) and proportional to the state's size: a large state written often pays
//! for it whether or not anyone reads.
//!
//! **Staleness.** The clone is user code and may panic. The publish runs in a
//! panic guard; if it fails, the view is marked stale (`Release`) before the
//! batch's replies go out. A stale view answers no read: `state()` and
//! `query()` fall back to the read lane and are served under `core` from the
//! live state, so a read never misses a commit. The next successful publish
//! swaps in the new state, then clears the flag. The state itself is not
//! affected: a failed publish commits nothing and rolls nothing back.
//!
//! Without `fast-path` there is no copy at all (`StateView::Mailbox`) and
//! every read goes through the read lane.
