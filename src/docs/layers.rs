//! # Layers: imports point down only
//!
//! Each layer imports only from the layers below it, so a layer can be read,
//! tested and changed knowing nothing of those above. From the top:
//!
//! | layer | what it holds |
//! |---|---|
//! | `runtime/` | the builder, worker threads, shutdown, the shutdown report; builds the context and the bus |
//! | `bus/` | publish/subscribe; delivers through `AgentAddr` and publishes emitted signals as the context's `Emit` object |
//! | `agent/` | spec and handles; one file per job: admission, claim + turn, read lane, close |
//! | `instruction/`, `action/` | the unit of work and the user code that runs it (`action` may name `instruction`, not the reverse) |
//! | `exec/` | the task trait and `AgentAddr`, the claim word, reply slots, the run queue, counters, and `Context`: what an agent needs of its runtime |
//! | `vocab/` | ids, errors and reports that several layers name, re-exported at their public paths |
//! | `router/`, `signal/` | patterns, the trie and its memo; the signal envelope (the memo keys by `signal::Text`) |
//! | `imp/` | the seams the cargo features switch: generic, typed objects (`Recycle` pools, `Default` reply slots, payload buffers, snapshots) that name nothing of the crate |
//!
//! Where a lower layer must reach up, it defines a trait and the upper layer
//! implements it: the run queue runs `Runnable`s, an address delivers to an
//! `AgentTask`, the context publishes through `Emit`, a pool recycles any
//! `Recycle` type. `../shared/tools/layers src` (see DESIGN.md) prints the import
//! graph; it must report no cycle, and no arrow may point up this table.
