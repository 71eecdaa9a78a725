//! Instruction checkout + return: the allocator against the pools.
//!
//! `cargo bench --bench instruction` compares, side by side in one run,
//! `PoolKind::Allocate` (`Box::new` + drop, the plain implementation),
//! `PoolKind::ObjectPool` (the `object-pool` crate) and `PoolKind::FreeList`
//! (agentry's per-thread magazines), on one thread and with checkout on one
//! thread and return on another (how the runtime uses them: senders check
//! out, workers return). With `--features mimalloc` the allocator under
//! `Allocate` is mimalloc.

mod common;

use agentry::bench_support::{checkout, give_back};
use agentry::imp::PoolKind;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

const KINDS: [(&str, PoolKind); 3] = [
    ("allocate", PoolKind::Allocate),
    ("object-pool", PoolKind::ObjectPool),
    ("free-list", PoolKind::FreeList),
];

fn same_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("instruction/checkout_return");
    for (name, kind) in KINDS {
        give_back(kind, checkout(kind)); // warm the pool
        group.bench_function(name, |b| {
            b.iter(|| {
                let ins = checkout(kind);
                give_back(kind, black_box(ins));
            })
        });
    }
    group.finish();
}

fn across_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("instruction/checkout_here_return_there");
    for (name, kind) in KINDS {
        let (tx, rx) = crossbeam::channel::bounded(1024);
        let (done_tx, done_rx) = crossbeam::channel::bounded::<()>(1);
        let consumer = std::thread::spawn(move || {
            for item in rx {
                match item {
                    Some(ins) => give_back(kind, ins),
                    None => done_tx.send(()).expect("bench alive"),
                }
            }
        });
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    tx.send(Some(checkout(kind))).expect("consumer alive");
                }
                tx.send(None).expect("consumer alive");
                done_rx.recv().expect("consumer alive");
                start.elapsed()
            })
        });
        drop(tx);
        consumer.join().expect("consumer");
    }
    group.finish();
}

fn config() -> Criterion {
    println!("instruction benches, features {}", common::features());
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = same_thread, across_threads }
criterion_main!(benches);
