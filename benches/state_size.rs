//! Per-signal cost against the size of the agent's state (issue 13): a map
//! of 0, 1,000 and 100,000 entries of which each action touches one, for
//! each way of keeping it (`rollback`: std map copied before every action;
//! `in_place`: std map, no copy; `persistent`: `imbl` map, copied in O(1)),
//! with and without a thread reading the state meanwhile. One iteration
//! sends and processes 100 signals (deterministic runtime).

mod common;
#[path = "ops/mod.rs"]
mod ops;

use agentry::imp::Strategy;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::sync::atomic::{AtomicBool, Ordering};

fn state_size(c: &mut Criterion) {
    let mut group = c.benchmark_group("state_size");
    group.throughput(Throughput::Elements(ops::STATE_BURST as u64));
    for (mode_name, mode) in ops::STATE_MODES {
        for size in ops::STATE_SIZES {
            let s = ops::state_size_setup(mode, size, Strategy::from_features());
            group.bench_function(format!("{mode_name}/{size}"), |b| {
                b.iter(|| ops::state_size_run(&s))
            });
            let stop = AtomicBool::new(false);
            let read = ops::state_size_reader(&s);
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        read();
                    }
                });
                group.bench_function(format!("{mode_name}/{size}/reader"), |b| {
                    b.iter(|| ops::state_size_run(&s))
                });
                stop.store(true, Ordering::Relaxed);
            });
        }
    }
    group.finish();
}

fn config() -> Criterion {
    println!("state-size benches, features {}", common::features());
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1))
        .sample_size(20)
}

criterion_group! { name = benches; config = config(); targets = state_size }
criterion_main!(benches);
