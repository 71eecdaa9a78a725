//! Signal creation, the CloudEvents JSON codec, and payload clone / fan-out
//! copies (wall clock). `cargo bench --bench signal`; with `--features
//! zero-copy` the payload is shared instead of copied.

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

/// Structured-mode CloudEvents JSON, each way, for the NATS bench's signal
/// (a 64 B JSON payload: 216 B on the wire): the codec the bridge runs on
/// every signal it exports and imports.
fn cloudevent_json(c: &mut Criterion) {
    let mut group = c.benchmark_group("signal/cloudevent_json");
    let signal = agentry::Signal::json(
        "bench.tick",
        "/bench/nats",
        &serde_json::json!({"seq": 123_456, "sent_ns": 1_234_567_890_123u64, "pad": "0123456789abcdef"}),
    )
    .expect("a valid signal");
    let wire = signal.to_json_vec();
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("encode", |b| b.iter(|| black_box(signal.to_json_vec())));
    group.bench_function("decode", |b| {
        b.iter(|| black_box(agentry::Signal::from_json(black_box(&wire)).expect("decodes")))
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

criterion_group! { name = benches; config = config(); targets = signal_build, signal_id, cloudevent_json, payload }
criterion_main!(benches);
