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
//! **Cost: a copy only when someone reads.** Each commit point bumps a
//! counter (`committed`). The state is copied into the cell only if a
//! reader looked since the previous commit point (`wanted`, set by every
//! read); the cell is stamped with the commit it shows (`shown`). A read
//! uses the cell only when `shown >= committed`; otherwise it goes through
//! the read lane, which answers from the live state and refreshes the cell
//! with that copy. So an agent nobody reads pays a counter bump per commit
//! point, not a clone of its state; a reader that keeps reading keeps
//! getting fresh snapshots; and the first read after a quiet stretch pays
//! one copy (on the reader's thread when the agent is idle). The previous
//! snapshot is kept as a spare and reused with `clone_from` when nothing
//! else still holds it. `src/imp/stamp.rs` holds the stamps and
//! `tests/loom_snapshot.rs` model-checks them: a read never misses a commit
//! that happened before it.
//!
//! **A copy that panics.** The clone is user code. It runs in a panic
//! guard; if it fails, `shown` stays behind `committed`, so reads use the
//! read lane until a copy succeeds. The state itself is not affected.
//!
//! Without `fast-path` there is no copy at all (`StateView::Mailbox`) and
//! every read goes through the read lane.
