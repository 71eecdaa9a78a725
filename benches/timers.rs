//! Timers (issue 14): the cost of one timer firing (schedule, fire, process)
//! with 10 and 100,000 other timers pending, beside the same signal sent
//! and processed without a timer. Deterministic runtime (virtual clock), so
//! the figures are the runtime's work, not the OS timer's resolution.

mod common;
#[path = "ops/mod.rs"]
mod ops;

use agentry::imp::Strategy;
use criterion::{Criterion, criterion_group, criterion_main};

fn timers(c: &mut Criterion) {
    let mut group = c.benchmark_group("timer");
    for pending in ops::TIMER_PENDING {
        let t = ops::timer_setup(pending, Strategy::from_features());
        group.bench_function(format!("fire/pending_{pending}"), |b| {
            b.iter(|| ops::timer_run(&t))
        });
        group.bench_function(format!("send_without_timer/pending_{pending}"), |b| {
            b.iter(|| ops::timer_dispatch_run(&t))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    println!("timer benches, features {}", common::features());
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = timers }
criterion_main!(benches);
