//! Deterministic-mode operations (wall clock): local send-and-process, state
//! query through the mailbox or the snapshot, bus fan-out of 64 KiB to 100
//! subscribers. Benchmarks named `default` use what the enabled features
//! select; `plain`/`optimized`/`mailbox`/`snapshot` pin an implementation.

mod common;
#[path = "ops/mod.rs"]
mod ops;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn local(c: &mut Criterion) {
    let mut group = c.benchmark_group("local_send_and_process");
    group.throughput(Throughput::Elements(ops::LOCAL_BATCH as u64));
    for (name, strategy) in ops::strategies() {
        let mut l = ops::local_setup(strategy);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                for _ in 0..iters {
                    ops::local_refill_if_empty(&mut l);
                    let start = std::time::Instant::now();
                    black_box(ops::local_run(&mut l));
                    total += start.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

fn state_query(c: &mut Criterion) {
    let mut group = c.benchmark_group("state_query");
    let reads = [
        ("mailbox", ops::STATE_READS[0].1),
        ("snapshot", ops::STATE_READS[1].1),
        ("default", agentry::imp::Strategy::from_features()),
    ];
    for (name, strategy) in reads {
        let q = ops::state_setup(strategy);
        group.bench_function(name, |b| b.iter(|| black_box(ops::state_run(&q))));
    }
    group.finish();
}

fn fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("bus_fan_out_64KiB_100");
    for (name, strategy) in ops::strategies() {
        let mut f = ops::fanout_setup(strategy);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                for _ in 0..iters {
                    ops::fanout_prepare(&mut f);
                    let start = std::time::Instant::now();
                    black_box(ops::fanout_run(&mut f));
                    total += start.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    println!("dispatch benches, features {}", common::features());
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = local, state_query, fan_out }
criterion_main!(benches);
