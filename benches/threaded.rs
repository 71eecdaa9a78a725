//! Threaded end to end (wall clock), each beside its floor in the same group:
//!
//! * `threaded/one_way`: 10,000 small signals from one producer thread to one
//!   agent on 2 workers, until all are processed; beside the same signals
//!   handed from one thread to another over a raw crossbeam channel.
//! * `threaded/call_round_trip`: `call` on an agent; beside a request/reply
//!   pair of crossbeam channels served by a thread.
//! * `threaded/batching`: the one-way workload with batching off and on.

mod common;
#[path = "ops/mod.rs"]
mod ops;

use agentry::imp::Strategy;
use agentry::{Runtime, Signal};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MESSAGES: usize = 10_000;

fn signals(n: usize) -> Vec<Signal> {
    let payload = ops::bytes_of(8);
    (0..n).map(|_| ops::tick(&payload)).collect()
}

/// Sends `batch` to `agent`, retrying on a full mailbox, then waits until the
/// runtime has processed everything it accepted.
fn agentry_one_way(
    rt: &Runtime,
    agent: &agentry::AgentRef<u64, u64>,
    batch: Vec<Signal>,
) -> Duration {
    let target = rt.metrics().processed + batch.len() as u64;
    let start = Instant::now();
    for mut s in batch {
        loop {
            match agent.send(s) {
                Ok(()) => break,
                Err(e) if e.is_full() => {
                    s = e.into_signal();
                    std::hint::spin_loop();
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    // Poll politely: on two cores the producer must not starve the workers.
    while rt.metrics().processed < target {
        std::thread::yield_now();
    }
    start.elapsed()
}

fn runtime(strategy: Strategy) -> (Runtime, agentry::AgentRef<u64, u64>) {
    let rt = Runtime::builder()
        .workers(2)
        .mailbox_capacity(4096)
        .strategy(strategy)
        .build()
        .expect("runtime");
    let agent = rt.spawn(&ops::counter()).expect("spawn");
    (rt, agent)
}

fn timed(iters: u64, mut one: impl FnMut(Vec<Signal>) -> Duration) -> Duration {
    (0..iters).map(|_| one(signals(MESSAGES))).sum()
}

fn one_way(c: &mut Criterion) {
    let mut group = c.benchmark_group("threaded/one_way");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.sample_size(20);
    let (rt, agent) = runtime(Strategy::from_features());
    group.bench_function("agentry", |b| {
        b.iter_custom(|iters| timed(iters, |batch| agentry_one_way(&rt, &agent, batch)))
    });
    drop(rt);

    let (tx, rx) = crossbeam::channel::unbounded::<Signal>();
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let consumer = std::thread::spawn(move || {
        for s in rx {
            std::hint::black_box(s);
            counter.fetch_add(1, Ordering::Release);
        }
    });
    group.bench_function("crossbeam_channel_floor", |b| {
        b.iter_custom(|iters| {
            timed(iters, |batch| {
                let target = received.load(Ordering::Acquire) + batch.len() as u64;
                let start = Instant::now();
                for s in batch {
                    tx.send(s).expect("consumer alive");
                }
                while received.load(Ordering::Acquire) < target {
                    std::hint::spin_loop();
                }
                start.elapsed()
            })
        })
    });
    drop(tx);
    consumer.join().expect("consumer");
    group.finish();
}

fn call_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("threaded/call_round_trip");
    let (rt, agent) = runtime(Strategy::from_features());
    let payload = ops::bytes_of(8);
    group.bench_function("agentry", |b| {
        b.iter_custom(|iters| {
            let calls: Vec<Signal> = (0..iters).map(|_| ops::tick(&payload)).collect();
            let start = Instant::now();
            for s in calls {
                std::hint::black_box(agent.call(s, Duration::from_secs(5)).expect("reply"));
            }
            start.elapsed()
        })
    });
    drop(rt);

    let (req_tx, req_rx) = crossbeam::channel::bounded::<Signal>(1);
    let (rep_tx, rep_rx) = crossbeam::channel::bounded::<u64>(1);
    let server = std::thread::spawn(move || {
        let mut n = 0u64;
        for s in req_rx {
            n += s.data().len() as u64 + 1;
            if rep_tx.send(n).is_err() {
                break;
            }
        }
    });
    group.bench_function("crossbeam_request_reply_floor", |b| {
        b.iter_custom(|iters| {
            let calls: Vec<Signal> = (0..iters).map(|_| ops::tick(&payload)).collect();
            let start = Instant::now();
            for s in calls {
                req_tx.send(s).expect("server alive");
                std::hint::black_box(rep_rx.recv().expect("server alive"));
            }
            start.elapsed()
        })
    });
    drop(req_tx);
    server.join().expect("server");
    group.finish();
}

fn batching(c: &mut Criterion) {
    let mut group = c.benchmark_group("threaded/batching");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.sample_size(20);
    let base = Strategy::from_features();
    for (name, batching) in [("unbatched", false), ("batched", true)] {
        let (rt, agent) = runtime(Strategy { batching, ..base });
        group.bench_function(name, |b| {
            b.iter_custom(|iters| timed(iters, |batch| agentry_one_way(&rt, &agent, batch)))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    println!("threaded benches, features {}", common::features());
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = one_way, call_round_trip, batching }
criterion_main!(benches);
