//! The cost of the `tracing` and `metrics` features per signal (issue 15):
//! 100 signals sent and processed by one agent (deterministic runtime),
//! with the features compiled in and nothing listening, with a
//! `tracing-subscriber` registry installed (spans are created, entered and
//! closed; nothing is printed), and with a Prometheus recorder installed.
//! Without the features only the first row runs: the baseline.
//!
//! ```sh
//! cargo bench --bench observe                              # neither compiled in
//! cargo bench --bench observe --features tracing,metrics   # all three rows
//! ```

mod common;

use agentry::{AgentRef, Runtime, Signal};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BURST: u64 = 100;

fn setup() -> (Runtime, AgentRef<u64, u64>) {
    let rt = Runtime::builder().deterministic().build().expect("runtime");
    let agent = rt.spawn(&common::counter().name("bench")).expect("spawn");
    (rt, agent)
}

fn burst(rt: &Runtime, agent: &AgentRef<u64, u64>) -> u64 {
    for _ in 0..BURST {
        agent
            .send(Signal::new("tick", "/bench", "12345678").expect("signal"))
            .expect("accepted");
    }
    rt.run_until_idle().expect("deterministic")
}

fn observe(c: &mut Criterion) {
    let mut group = c.benchmark_group("observe/send_and_process_100");
    group.throughput(Throughput::Elements(BURST));
    {
        let (rt, agent) = setup();
        group.bench_function("nothing_listening", |b| b.iter(|| burst(&rt, &agent)));
    }
    #[cfg(feature = "tracing")]
    {
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            let (rt, agent) = setup();
            group.bench_function("tracing_registry", |b| b.iter(|| burst(&rt, &agent)));
        });
    }
    #[cfg(feature = "metrics")]
    {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        metrics::with_local_recorder(&recorder, || {
            let (rt, agent) = setup();
            group.bench_function("prometheus_recorder", |b| b.iter(|| burst(&rt, &agent)));
        });
    }
    group.finish();
}

fn config() -> Criterion {
    println!("observe benches, features {}", common::features());
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = observe }
criterion_main!(benches);
