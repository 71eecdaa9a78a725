//! Instruction counts (iai-callgrind) of the deterministic operations.
//!
//! Every operation comes from `benches/ops`, shared with the criterion
//! benchmarks and the allocation report. Setup (building and warming the
//! input) and teardown (dropping it) are not counted. Benchmarks named
//! `default` use the implementation the enabled features select; those named
//! `plain`/`optimized` (or after a pool kind or read path) pin one, so each
//! run also compares implementations side by side.
//!
//! Run: `cargo bench --features iai --bench iai` (needs valgrind and
//! `iai-callgrind-runner` 0.16.1), or `cargo xtask compare` for the feature
//! comparison report.

#![allow(missing_docs)] // the benchmark macros generate undocumented items

#[path = "../benches/ops/mod.rs"]
mod ops;

use agentry::imp::{PoolKind, Strategy};
use agentry::{Payload, Signal};
use bytes::Bytes;
use iai_callgrind::{LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main};
use std::hint::black_box;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn keep<T>(value: T) {
    drop(black_box(value));
}

// ----- signal build and payload clone

#[library_benchmark(teardown = keep)]
#[bench::b64(args = (64), setup = ops::signal_setup)]
#[bench::kib1(args = (1024), setup = ops::signal_setup)]
#[bench::kib64(args = (65536), setup = ops::signal_setup)]
fn signal_build(payload: Bytes) -> (Signal, Bytes) {
    (black_box(ops::build_signal(&payload)), payload)
}

#[library_benchmark(teardown = keep)]
#[bench::kib64(args = (65536), setup = ops::payload_of)]
fn payload_clone(payload: Payload) -> (Payload, Payload) {
    (black_box(payload.clone()), payload)
}

library_benchmark_group!(name = signal; benchmarks = signal_build, payload_clone);

// ----- route lookup (trie, or memo with fast-path)

fn lookup(routes: usize, hit: ops::Hit) -> ops::Lookup {
    ops::lookup_setup(routes, hit, Strategy::from_features().fast_path)
}

#[library_benchmark(teardown = keep)]
#[bench::exact_10(args = (10, ops::Hit::Exact), setup = lookup)]
#[bench::star_10(args = (10, ops::Hit::Star), setup = lookup)]
#[bench::globstar_10(args = (10, ops::Hit::Globstar), setup = lookup)]
#[bench::exact_10000(args = (10_000, ops::Hit::Exact), setup = lookup)]
#[bench::star_10000(args = (10_000, ops::Hit::Star), setup = lookup)]
#[bench::globstar_10000(args = (10_000, ops::Hit::Globstar), setup = lookup)]
fn route_lookup(mut l: ops::Lookup) -> ops::Lookup {
    black_box(ops::lookup_run(&mut l));
    l
}

library_benchmark_group!(name = routing; benchmarks = route_lookup);

// ----- instruction checkout + return

#[library_benchmark]
#[bench::allocate(args = (PoolKind::Allocate), setup = ops::pool_setup)]
#[bench::free_list(args = (PoolKind::FreeList), setup = ops::pool_setup)]
#[bench::object_pool(args = (PoolKind::ObjectPool), setup = ops::pool_setup)]
fn instruction_checkout_return(kind: PoolKind) {
    ops::pool_run(kind)
}

library_benchmark_group!(name = instruction; benchmarks = instruction_checkout_return);

// ----- agents, deterministic mode

#[library_benchmark(teardown = keep)]
#[bench::mailbox(args = (Strategy::PLAIN), setup = ops::state_setup)]
#[bench::snapshot(args = (ops::STATE_READS[1].1), setup = ops::state_setup)]
#[bench::default(args = (Strategy::from_features()), setup = ops::state_setup)]
fn state_query(q: ops::StateQuery) -> ops::StateQuery {
    black_box(ops::state_run(&q));
    q
}

#[library_benchmark(teardown = keep)]
#[bench::default(args = (Strategy::from_features()), setup = ops::local_setup)]
#[bench::plain(args = (Strategy::PLAIN), setup = ops::local_setup)]
#[bench::optimized(args = (Strategy::OPTIMIZED), setup = ops::local_setup)]
fn local_send_and_process_100(mut l: ops::Local) -> ops::Local {
    black_box(ops::local_run(&mut l));
    l
}

#[library_benchmark(teardown = keep)]
#[bench::default(args = (Strategy::from_features()), setup = ops::fanout_setup)]
#[bench::plain(args = (Strategy::PLAIN), setup = ops::fanout_setup)]
#[bench::optimized(args = (Strategy::OPTIMIZED), setup = ops::fanout_setup)]
fn bus_fan_out_64kib_100(mut f: ops::FanOut) -> ops::FanOut {
    black_box(ops::fanout_run(&mut f));
    f
}

#[library_benchmark(teardown = keep)]
#[bench::default(args = (Strategy::from_features()), setup = ops::call_setup)]
#[bench::plain(args = (Strategy::PLAIN), setup = ops::call_setup)]
#[bench::optimized(args = (Strategy::OPTIMIZED), setup = ops::call_setup)]
fn call_idle(mut c: ops::Call) -> ops::Call {
    black_box(ops::call_run(&mut c));
    c
}

#[library_benchmark(teardown = keep)]
#[bench::default(args = (Strategy::from_features()), setup = ops::call_helping_setup)]
#[bench::plain(args = (Strategy::PLAIN), setup = ops::call_helping_setup)]
#[bench::optimized(args = (Strategy::OPTIMIZED), setup = ops::call_helping_setup)]
fn call_helping_15(mut c: ops::Call) -> ops::Call {
    black_box(ops::call_run(&mut c));
    c
}

#[library_benchmark(teardown = keep)]
#[bench::default(args = (Strategy::from_features()), setup = ops::query_setup)]
#[bench::plain(args = (Strategy::PLAIN), setup = ops::query_setup)]
#[bench::optimized(args = (Strategy::OPTIMIZED), setup = ops::query_setup)]
fn query_route(mut q: ops::Query) -> ops::Query {
    black_box(ops::query_run(&mut q));
    q
}

#[library_benchmark(teardown = keep)]
#[bench::default(args = (Strategy::from_features()), setup = ops::turn_setup)]
#[bench::plain(args = (Strategy::PLAIN), setup = ops::turn_setup)]
#[bench::optimized(args = (Strategy::OPTIMIZED), setup = ops::turn_setup)]
fn turn_64_emitting(t: ops::Turn) -> ops::Turn {
    black_box(ops::turn_run(&t));
    t
}

#[library_benchmark(teardown = keep)]
#[bench::default(args = (Strategy::from_features()), setup = ops::callbacks_setup)]
#[bench::plain(args = (Strategy::PLAIN), setup = ops::callbacks_setup)]
#[bench::optimized(args = (Strategy::OPTIMIZED), setup = ops::callbacks_setup)]
fn bus_publish_8_callbacks(mut c: ops::Callbacks) -> ops::Callbacks {
    black_box(ops::callbacks_run(&mut c));
    c
}

// Per-signal cost against state size (issue 13): 100 signals sent and
// processed by an agent whose map has 0, 1,000 or 100,000 entries.
#[library_benchmark(teardown = keep)]
#[bench::rollback_0(args = (ops::StateMode::Rollback, 0, Strategy::from_features()), setup = ops::state_size_setup)]
#[bench::rollback_1000(args = (ops::StateMode::Rollback, 1_000, Strategy::from_features()), setup = ops::state_size_setup)]
#[bench::rollback_100000(args = (ops::StateMode::Rollback, 100_000, Strategy::from_features()), setup = ops::state_size_setup)]
#[bench::in_place_0(args = (ops::StateMode::InPlace, 0, Strategy::from_features()), setup = ops::state_size_setup)]
#[bench::in_place_1000(args = (ops::StateMode::InPlace, 1_000, Strategy::from_features()), setup = ops::state_size_setup)]
#[bench::in_place_100000(args = (ops::StateMode::InPlace, 100_000, Strategy::from_features()), setup = ops::state_size_setup)]
#[bench::persistent_0(args = (ops::StateMode::Persistent, 0, Strategy::from_features()), setup = ops::state_size_setup)]
#[bench::persistent_1000(args = (ops::StateMode::Persistent, 1_000, Strategy::from_features()), setup = ops::state_size_setup)]
#[bench::persistent_100000(args = (ops::StateMode::Persistent, 100_000, Strategy::from_features()), setup = ops::state_size_setup)]
fn state_size_100(s: ops::StateSize) -> ops::StateSize {
    black_box(ops::state_size_run(&s));
    s
}

// One timer scheduled, fired and processed (issue 14), with 10 and 100,000
// other timers pending; `send` is the same signal without a timer.
#[library_benchmark(teardown = keep)]
#[bench::pending_10(args = (10, Strategy::from_features()), setup = ops::timer_setup)]
#[bench::pending_100000(args = (100_000, Strategy::from_features()), setup = ops::timer_setup)]
fn timer_fire(t: ops::Timer) -> ops::Timer {
    black_box(ops::timer_run(&t));
    t
}

#[library_benchmark(teardown = keep)]
#[bench::pending_10(args = (10, Strategy::from_features()), setup = ops::timer_setup)]
fn timer_send_without(t: ops::Timer) -> ops::Timer {
    black_box(ops::timer_dispatch_run(&t));
    t
}

library_benchmark_group!(
    name = agents;
    benchmarks = state_query, local_send_and_process_100, bus_fan_out_64kib_100, call_idle,
        call_helping_15, query_route, turn_64_emitting, bus_publish_8_callbacks, state_size_100,
        timer_fire, timer_send_without
);

main!(
    config = LibraryBenchmarkConfig::default();
    library_benchmark_groups = signal, routing, instruction, agents
);
