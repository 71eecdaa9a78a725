//! Wiring agentry's `tracing` spans and `metrics` into the tools a Rust
//! service already uses: a `tracing-subscriber` fmt layer that prints each
//! instruction's span and the runtime's events, and a Prometheus recorder
//! whose text rendering is printed at the end.
//!
//! ```sh
//! cargo run --release --example observability --features tracing,metrics
//! ```

use agentry::{ActionError, AgentSpec, Instruction, Runtime, Signal};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. A subscriber: one line per span close and per event.
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_target(false),
    );
    tracing::subscriber::set_global_default(subscriber)?;
    // 2. A recorder, installed before the first spawn (handles are
    //    registered then).
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;

    let rt = Runtime::builder().workers(2).build()?;
    let orders = AgentSpec::<u64, u64>::new(0).name("orders").on(
        "order.placed",
        |total: &mut u64, ins: &mut Instruction| {
            let amount: u64 = ins.json()?;
            if amount == 0 {
                return Err(ActionError::invalid_input("an order of nothing"));
            }
            *total += amount;
            ins.emit(
                Signal::json("order.accepted", "/orders", &amount).map_err(ActionError::failed)?,
            );
            Ok(*total)
        },
    );
    let agent = rt.spawn(&orders)?;
    let _audit = rt.bus().subscribe("order.accepted", |_: &Signal| {})?;

    // A request span: the instructions it causes are its children, on
    // whichever worker thread they run.
    let request = tracing::info_span!("http_request", path = "/orders");
    request.in_scope(|| -> Result<(), Box<dyn std::error::Error>> {
        for amount in [5u64, 7, 0, 11] {
            let _ = agent.call(
                Signal::json("order.placed", "/api", &amount)?,
                Duration::from_secs(5),
            );
        }
        let _ = agent.send(Signal::new("order.unknown", "/api", "")?);
        Ok(())
    })?;
    rt.wait_idle(Duration::from_secs(5));
    let report = rt.shutdown();
    println!(
        "\naccepted {} processed {} failed {}\n\n# Prometheus text rendering\n{}",
        report.metrics.accepted,
        report.metrics.processed,
        report.metrics.failed_actions,
        prometheus.render()
    );
    Ok(())
}
