//! Route lookup: exact, `*` and `**` hits among 10 and 10,000 routes (the
//! trie; with `--features fast-path`, the memo).

mod common;
#[path = "ops/mod.rs"]
mod ops;

use agentry::imp::Strategy;
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

fn config() -> Criterion {
    println!("routing benches, features {}", common::features());
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = route_lookup }
criterion_main!(benches);
