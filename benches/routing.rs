//! Route lookup: exact, `*` and `**` hits among 10 and 10,000 routes (the
//! trie; with `--features fast-path`, the memo).
//!
//! Route changes: one bus subscription, or one agent route, added and
//! removed again while 1,000 and 16,000 others exist. The cost of a change
//! must not grow with the number of routes (issue 11); and 100,000
//! subscriptions made one by one.

mod common;
#[path = "ops/mod.rs"]
mod ops;

use agentry::imp::Strategy;
use agentry::{AgentSpec, Instruction, RouteSpec, Runtime};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn route_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_lookup");
    for routes in ops::ROUTE_COUNTS {
        for (name, hit) in ops::HITS {
            let mut l = ops::lookup_setup(routes, hit, Strategy::from_features().fast_path);
            group.bench_function(format!("{name}_{routes}"), |b| {
                b.iter(|| black_box(ops::lookup_run(&mut l)))
            });
        }
    }
    group.finish();
}

fn route_change(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_change");
    for existing in [100usize, 1_000, 16_000] {
        let rt = Runtime::builder().deterministic().build().expect("runtime");
        let bus = rt.bus();
        for i in 0..existing {
            bus.subscribe(&format!("load.t{i}.*"), |_| {})
                .expect("subscribe");
        }
        group.bench_function(format!("subscribe_unsubscribe/{existing}"), |b| {
            b.iter(|| {
                let id = bus.subscribe("load.extra.*", |_| {}).expect("subscribe");
                bus.unsubscribe(black_box(id)).expect("unsubscribe");
            })
        });
        let mut spec =
            AgentSpec::<u64, ()>::new(0).action("count", |n: &mut u64, _: &mut Instruction| {
                *n += 1;
                Ok(())
            });
        for i in 0..existing {
            spec = spec.route(format!("load.r{i}.*"), "count");
        }
        let agent = rt.spawn(&spec).expect("spawn");
        group.bench_function(format!("add_remove_route/{existing}"), |b| {
            b.iter(|| {
                let id = agent
                    .add_route(RouteSpec::new("load.extra.*", "count"))
                    .expect("add");
                agent.remove_route(black_box(id)).expect("remove");
            })
        });
        drop(rt.shutdown());
    }
    group.finish();
    // What the issue measured as "about an hour" when each change copied the
    // table: 100,000 subscriptions made one by one, from an empty bus.
    let mut group = c.benchmark_group("route_change");
    group.sample_size(10);
    group.bench_function("subscribe_one_by_one/100000", |b| {
        b.iter_with_large_drop(|| {
            let rt = Runtime::builder().deterministic().build().expect("runtime");
            let bus = rt.bus();
            for i in 0..100_000 {
                bus.subscribe(&format!("load.t{i}.*"), |_| {})
                    .expect("subscribe");
            }
            rt
        })
    });
    group.finish();
}

fn config() -> Criterion {
    println!("routing benches, features {}", common::features());
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = route_lookup, route_change }
criterion_main!(benches);
