//! Heap allocations per operation of the iai benchmark suite, counted by a
//! counting global allocator (`stats_alloc` over the system allocator; DHAT
//! cannot see allocations under mimalloc, and callgrind does not count them).
//!
//! Prints one JSON object per operation, keyed like the iai benchmarks
//! (`function/id`), with allocations and bytes per run of the operation.
//! `cargo xtask compare` runs it for every feature set.
//!
//! Run: `cargo run --release --example alloc_report`

#[path = "../benches/ops/mod.rs"]
mod ops;

use agentry::imp::Strategy;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::hint::black_box;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const RUNS: usize = 200;

/// Runs `setup` once, then `RUNS` times: `prepare` (not counted) and `run`
/// (counted). Prints allocations and bytes per run.
fn measure<S>(
    id: &str,
    setup: impl FnOnce() -> S,
    mut prepare: impl FnMut(&mut S),
    mut run: impl FnMut(&mut S),
) {
    let mut input = setup();
    let (mut allocations, mut bytes) = (0usize, 0usize);
    for _ in 0..RUNS {
        prepare(&mut input);
        let region = Region::new(GLOBAL);
        run(&mut input);
        let change = region.change();
        allocations += change.allocations + change.reallocations;
        bytes += change.bytes_allocated + change.bytes_reallocated.max(0) as usize;
    }
    println!(
        "{{\"id\":\"{id}\",\"allocations_per_op\":{},\"bytes_per_op\":{}}}",
        allocations as f64 / RUNS as f64,
        bytes as f64 / RUNS as f64
    );
}

fn main() {
    for (name, len) in [("b64", 64), ("kib1", 1024), ("kib64", 65536)] {
        measure(
            &format!("signal_build/{name}"),
            || ops::signal_setup(len),
            |_| {},
            |p| drop(black_box(ops::build_signal(p))),
        );
    }
    measure(
        "payload_clone/kib64",
        || ops::payload_of(65536),
        |_| {},
        |p| drop(black_box(p.clone())),
    );
    for (hit_name, hit) in ops::HITS {
        for routes in ops::ROUTE_COUNTS {
            measure(
                &format!("route_lookup/{hit_name}_{routes}"),
                || ops::lookup_setup(routes, hit, Strategy::from_features().fast_path),
                |_| {},
                |l| {
                    black_box(ops::lookup_run(l));
                },
            );
        }
    }
    for (name, kind) in ops::POOLS {
        measure(
            &format!("instruction_checkout_return/{name}"),
            || ops::pool_setup(kind),
            |_| {},
            |k| ops::pool_run(*k),
        );
    }
    for (name, strategy) in [
        ("mailbox", ops::STATE_READS[0].1),
        ("snapshot", ops::STATE_READS[1].1),
        ("default", Strategy::from_features()),
    ] {
        measure(
            &format!("state_query/{name}"),
            || ops::state_setup(strategy),
            |_| {},
            |q| drop(black_box(ops::state_run(q))),
        );
    }
    for (name, strategy) in ops::strategies() {
        measure(
            &format!("local_send_and_process_100/{name}"),
            || ops::local_setup(strategy),
            ops::local_refill_if_empty,
            |l| {
                black_box(ops::local_run(l));
            },
        );
        measure(
            &format!("bus_fan_out_64kib_100/{name}"),
            || ops::fanout_setup(strategy),
            ops::fanout_prepare,
            |f| {
                black_box(ops::fanout_run(f));
            },
        );
    }
}
