//! Signal creation and payload clone / fan-out copies (wall clock).
//! `cargo bench --bench signal`; with `--features zero-copy` the payload is
//! shared instead of copied.

mod common;
#[path = "ops/mod.rs"]
mod ops;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn signal_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("signal/build");
    for (name, len) in ops::SIZES {
        let payload = ops::signal_setup(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &payload, |b, p| {
            b.iter(|| black_box(ops::build_signal(p)))
        });
    }
    group.finish();
}

/// The parts of a build: the id alone (uuid's shared, syscall-per-id
/// `Uuid::now_v7` against the per-thread generator signals use) and the clock
/// read each id makes.
fn signal_id(c: &mut Criterion) {
    let mut group = c.benchmark_group("signal/id");
    group.bench_function("uuid_now_v7", |b| {
        b.iter(|| black_box(uuid::Uuid::now_v7()))
    });
    group.bench_function("signal_id_now_v7", |b| {
        b.iter(|| black_box(agentry::SignalId::now_v7()))
    });
    group.bench_function("system_time_now", |b| {
        b.iter(|| black_box(std::time::SystemTime::now()))
    });
    group.finish();
}

fn payload(c: &mut Criterion) {
    let mut group = c.benchmark_group("payload");
    let payload = ops::payload_of(64 * 1024);
    group.bench_function("clone_64KiB", |b| b.iter(|| black_box(payload.clone())));
    let signal = ops::build_signal(&ops::bytes_of(64 * 1024));
    group.bench_function("fan_out_copies_64KiB_x100", |b| {
        b.iter(|| {
            let copies: Vec<_> = (0..ops::FAN_OUT).map(|_| signal.clone()).collect();
            black_box(copies)
        })
    });
    group.finish();
}

fn config() -> Criterion {
    println!("signal benches, features {}", common::features());
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = signal_build, signal_id, payload }
criterion_main!(benches);
