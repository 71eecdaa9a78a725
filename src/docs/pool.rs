//! # The instruction pool
//!
//! Every accepted signal travels as a boxed `Instruction` (the signal, its
//! resolved routes, the reply ticket, what the actions emit). It is checked
//! out on the *sender's* thread (routing happens there) and given back on the
//! thread that ran it, usually a worker. `src/imp/pool.rs` has three sources,
//! all compiled in every build; `PoolKind` picks one per runtime. The seam is
//! generic over a `Recycle` type (blank, clear in place, its own statics), so
//! `imp` names nothing above it; `src/instruction/pool.rs` is its typed face:
//!
//! * `Allocate` (plain): `Box::new` on checkout, drop on return.
//! * `FreeList` (the `pooling` default): a two-level magazine design. Each
//!   thread keeps a stack of up to `MAGAZINE` (64) cleared instructions in a
//!   thread-local (push and pop cost a few nanoseconds and no atomic
//!   operation); a full or empty stack is swapped whole with a global depot
//!   under a mutex, once per 64 operations. Without the depot the sender's
//!   list would always be empty and the worker's always full. The depot
//!   keeps at most `MAX_DEPOT_MAGAZINES` (64) full stacks, extra returns are
//!   freed, and an empty pool allocates: a pool may always decline (also
//!   when its thread-local is gone at thread exit or busy).
//! * `ObjectPool`: the `object-pool` crate (a `Mutex<Vec<T>>`), kept only to
//!   compare against. It executes as few instructions as the free list but
//!   pays a lock per operation, which on a 2-core VM cost more than the
//!   allocator it replaces (`cargo bench --bench instruction` runs all three
//!   side by side).
//!
//! **Cleared in place.** A returned instruction is `recycle`d: signal, reply
//! and ids dropped, the route and emitted-signal lists cleared but keeping
//! their capacity (shrunk back to 32 entries if they grew beyond), so a warm
//! runtime dispatches without touching the allocator. Pools hand out blank
//! objects only; unit tests check every kind.
//!
//! **Reply slots** (`src/imp/reply.rs`) are pooled the same way for `call`,
//! `state()` and `query()` whenever the pool kind is not `Allocate`: a
//! per-thread stack of up to 8 slots per slot type (any `Default` type; the
//! typed face is `src/exec/reply.rs`). A slot is re-armed with
//! a fresh ticket on every lease and accepts an answer only for its current
//! ticket, so a late answer to a timed-out request can never answer the
//! next one.
//!
//! `tests/allocations.rs` asserts zero allocations per dispatched signal for
//! every pooled strategy when `zero-copy` is on.
