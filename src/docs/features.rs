//! # What each cargo feature really switches
//!
//! Every implementation a feature selects is compiled in every build
//! (`src/imp/`, the only place under `src/` where a feature is named; CI
//! greps for it). A feature only chooses a *default*, so one binary can run
//! the plain and the optimized runtime side by side as each other's oracle
//! (`tests/equivalence.rs`), and one benchmark run can compare them.
//!
//! **The runtime seams are a value.** `imp::Strategy` holds the choice per
//! runtime; `Strategy::from_features()` is its default, and the hidden
//! `RuntimeBuilder::strategy` sets one explicitly (the hidden
//! `Runtime::strategy` reports it):
//!
//! | feature | `Strategy` field | plain | optimized |
//! |---|---|---|---|
//! | `fast-path` | `fast_path` | reads through the read lane; routes resolved by a trie walk each time | reads from the snapshot ([`snapshot`](super::snapshot)); exact types memoized per route table (`src/router/memo.rs`, at most 4,096 types; also the bus's table) |
//! | `pooling` | `pool` | `PoolKind::Allocate` | `PoolKind::FreeList` for instructions and reply slots ([`pool`](super::pool)) |
//! | `batching` | `batching` | one instruction per turn | up to [`batch_size`](crate::RuntimeBuilder::batch_size) (default 64) per turn; instructions without outside effects share one snapshot publish |
//!
//! **The payload is the compile-time seam.** `zero-copy` makes
//! `imp::payload::ActiveBuf` name `SharedBuf` (`bytes::Bytes`, clone and
//! slice bump a count) instead of `OwnedBuf` (`Vec<u8>`, every clone copies).
//! It cannot be a runtime value: a [`Payload`](crate::Payload) exists before
//! any runtime does. Both buffers are compiled and unit-tested against each
//! other.
//!
//! **Observability, not optimizations.** `tracing` and `metrics` swap in
//! the two halves of `src/imp/observe.rs`: a span per instruction (a child
//! of the sender's span) and events; counters, histograms and gauges per
//! agent type. With both off its types are zero-sized and its hooks empty
//! inline functions, so the default and `full` builds are unchanged (the
//! CI gate holds them to their baselines).
//!
//! **Not runtime switches.** `mimalloc` only installs mimalloc as the global
//! allocator of the examples and benchmarks (the library never sets one:
//! that is the application's choice). `full` is the four runtime
//! optimizations. `iai` only enables the iai-callgrind bench target, so
//! `cargo bench` and `cargo test --all-targets` never start valgrind.
//!
//! No feature changes the public API or what it returns; only speed and
//! allocation. [`features.md`] in the repository has the figures.
//!
//! [`features.md`]: https://github.com/agentry-rs/agentry/blob/main/features.md
