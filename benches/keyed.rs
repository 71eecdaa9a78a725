//! Keyed agents (issue 18): the cost of `Runtime::lookup` (key to typed
//! handle) with 100, 10,000 and 100,000 keyed agents, beside the
//! `HashMap<String, AgentRef>` that applications build by hand without it.
//! Each iteration looks up the next key of the set, round-robin (keys built
//! before the timed loop), and clones the handle out of the map as `lookup`
//! does. Deterministic runtime: nothing runs in the background.

mod common;

use agentry::{AgentRef, Runtime};
use criterion::{Criterion, criterion_group, criterion_main};
use std::collections::HashMap;
use std::hint::black_box;

const SIZES: [usize; 3] = [100, 10_000, 100_000];

fn keyed(c: &mut Criterion) {
    let mut group = c.benchmark_group("keyed_lookup");
    for n in SIZES {
        let rt = Runtime::builder()
            .deterministic()
            .build()
            .expect("deterministic runtime");
        let spec = common::counter();
        let keys: Vec<String> = (0..n).map(|i| format!("user-{i:08}")).collect();
        let mut by_hand: HashMap<String, AgentRef<u64, u64>> = HashMap::with_capacity(n);
        for key in &keys {
            let agent = rt.spawn_keyed(&spec, key.clone()).expect("spawn");
            by_hand.insert(key.clone(), agent);
        }
        assert_eq!(rt.keyed_agents(), n);

        group.bench_function(format!("agentry_lookup/{n}"), |b| {
            let mut i = 0;
            b.iter(|| {
                i = if i + 1 == n { 0 } else { i + 1 };
                black_box(rt.lookup::<u64, u64>(black_box(&keys[i])).expect("found"))
            })
        });
        group.bench_function(format!("agentry_lookup_addr/{n}"), |b| {
            let mut i = 0;
            b.iter(|| {
                i = if i + 1 == n { 0 } else { i + 1 };
                black_box(rt.lookup_addr(black_box(&keys[i])).expect("found"))
            })
        });
        group.bench_function(format!("hashmap_baseline/{n}"), |b| {
            let mut i = 0;
            b.iter(|| {
                i = if i + 1 == n { 0 } else { i + 1 };
                black_box(
                    by_hand
                        .get(black_box(keys[i].as_str()))
                        .cloned()
                        .expect("found"),
                )
            })
        });
        drop(by_hand);
        rt.shutdown();
    }
    group.finish();
}

fn config() -> Criterion {
    println!("keyed benches, features {}", common::features());
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = keyed }
criterion_main!(benches);
