//! Load generator: burst, sustained and mixed scenarios against a threaded
//! runtime, with latency percentiles (hdrhistogram), throughput, error rate
//! and peak RSS.
//!
//! ```text
//! cargo run --release --example loadtest -- burst
//! cargo run --release --example loadtest -- sustained --rate 100000 --duration 10
//! cargo run --release --example loadtest -- mixed --agents 1000 --payload 1024 --json
//! cargo run --release --features full --example loadtest -- sustained
//! ```
//!
//! * `burst`: `--signals` (default 10,000) signals sent at once by `--senders`
//!   threads to `--agents` agents; latency is send to processed.
//! * `sustained`: a fixed `--rate` for `--duration` seconds; latency is
//!   measured from each signal's *intended* send time, so a stall is not
//!   hidden by the sender slowing down (coordinated omission).
//! * `mixed`: the same pacing, with 70% sends, 10% calls, 10% state queries
//!   and 10% bus publishes; each kind gets its own latency distribution.
//!
//! A full mailbox hands the signal back; the sender retries it and the retry
//! time counts in the latency. `--fail-rate` sends that fraction of signals to
//! an action that fails, to exercise the error path.
//!
//! Also printed: the route memo's hits, misses and hit rate, summed over
//! every agent (`AgentRef::memo_stats()`; bus deliveries count too; there is
//! no memo without `fast-path`).

use agentry::{ActionError, AgentRef, AgentSpec, Instruction, Runtime, Signal};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scenario {
    Burst,
    Sustained,
    Mixed,
}

#[derive(Parser, Debug)]
#[command(about = "agentry load generator")]
struct Options {
    /// Which load to apply.
    #[arg(value_enum)]
    scenario: Scenario,
    /// Agents receiving the load.
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// Payload bytes per signal (at least 8: the send timestamp).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Worker threads of the runtime.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Sender threads (on a 2-core machine, more senders than one starve the
    /// workers and the figures measure the load generator).
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Signals of a burst.
    #[arg(long, default_value_t = 10_000)]
    signals: usize,
    /// Operations per second (sustained, mixed).
    #[arg(long, default_value_t = 50_000)]
    rate: u64,
    /// Seconds of load (sustained, mixed).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Mailbox capacity per agent.
    #[arg(long, default_value_t = 1024)]
    mailbox: usize,
    /// Fraction of signals routed to an action that fails.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// Time origin for the timestamps carried in payloads.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos_since_epoch(t: Instant) -> u64 {
    t.saturating_duration_since(epoch()).as_nanos() as u64
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// End-to-end latencies recorded by the agents' actions, sharded by agent so
/// two workers rarely take the same lock.
struct Recorder {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Recorder {
    fn new() -> Self {
        Recorder {
            shards: (0..16).map(|_| Mutex::new(histogram())).collect(),
        }
    }

    fn record(&self, shard: u64, nanos: u64) {
        let mut h = self.shards[(shard % 16) as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        h.saturating_record(nanos.max(1));
    }

    fn merged(&self) -> Histogram<u64> {
        let mut all = histogram();
        for shard in &self.shards {
            let _ = all.add(&*shard.lock().unwrap_or_else(|p| p.into_inner()));
        }
        all
    }
}

fn spec(recorder: Arc<Recorder>) -> AgentSpec<u64, u64> {
    AgentSpec::new(0)
        .on("load.work", move |n: &mut u64, ins: &mut Instruction| {
            let stamp = ins
                .data()
                .get(..8)
                .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
            recorder.record(
                ins.agent().get(),
                nanos_since_epoch(Instant::now()).saturating_sub(stamp),
            );
            *n += 1;
            Ok(*n)
        })
        .on("load.fail", |_: &mut u64, _: &mut Instruction| {
            Err(ActionError::rejected("configured failure"))
        })
        .on("load.topic", |n: &mut u64, _: &mut Instruction| {
            *n += 1;
            Ok(*n)
        })
        .query("load.count", |n: &u64, _: &Signal| Ok(*n))
}

fn signal(ty: &'static str, payload_len: usize, intended: Instant) -> Signal {
    let mut data = vec![0u8; payload_len.max(8)];
    data[..8].copy_from_slice(&nanos_since_epoch(intended).to_le_bytes());
    Signal::builder(ty, "/loadtest")
        .data(data)
        .build()
        .expect("valid signal")
}

/// Counters shared by the sender threads.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    retries: AtomicU64,
    errors: AtomicU64,
    calls: AtomicU64,
    queries: AtomicU64,
    publishes: AtomicU64,
}

/// Per-sender latency of the operations measured on the caller's side.
struct CallerHistograms {
    call: Histogram<u64>,
    state: Histogram<u64>,
    publish: Histogram<u64>,
}

impl CallerHistograms {
    fn new() -> Self {
        CallerHistograms {
            call: histogram(),
            state: histogram(),
            publish: histogram(),
        }
    }
}

fn send_retrying(agent: &AgentRef<u64, u64>, mut s: Signal, counts: &Counts) {
    loop {
        match agent.send(s) {
            Ok(()) => {
                counts.sent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) if e.is_full() => {
                counts.retries.fetch_add(1, Ordering::Relaxed);
                s = e.into_signal();
                std::thread::yield_now();
            }
            Err(_) => {
                counts.errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// A tiny deterministic generator for choosing agents and operation kinds.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
    json!({
        "count": h.len(),
        "p50_us": us(0.50),
        "p90_us": us(0.90),
        "p95_us": us(0.95),
        "p99_us": us(0.99),
        "p99_9_us": us(0.999),
        "max_us": h.max() as f64 / 1_000.0,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = Options::parse();
    let _ = epoch();
    let recorder = Arc::new(Recorder::new());
    let rt = Runtime::builder()
        .workers(o.workers)
        .mailbox_capacity(o.mailbox)
        .build()?;
    let spec = spec(recorder.clone());
    let agents: Vec<_> = (0..o.agents.max(1))
        .map(|_| rt.spawn(&spec))
        .collect::<Result<_, _>>()?;
    let bus = rt.bus();
    for a in agents.iter().step_by(10) {
        bus.subscribe_agent("load.topic", &a.addr())?;
    }
    let counts = Counts::default();
    let total_ops = match o.scenario {
        Scenario::Burst => o.signals as u64,
        _ => (o.rate as f64 * o.duration) as u64,
    };
    let progress = if o.json || o.no_progress {
        ProgressBar::with_draw_target(Some(total_ops), ProgressDrawTarget::hidden())
    } else {
        let bar = ProgressBar::new(total_ops);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} ops {per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    };
    let senders = o.senders.max(1) as u64;
    let started = Instant::now();
    let histograms: Vec<CallerHistograms> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..senders)
            .map(|t| {
                let (agents, counts, progress, o, bus) = (&agents, &counts, &progress, &o, &bus);
                scope.spawn(move || {
                    let mut mine = CallerHistograms::new();
                    let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (t + 1);
                    let my_ops = total_ops / senders + u64::from(t < total_ops % senders);
                    let interval = Duration::from_secs_f64(senders as f64 / o.rate.max(1) as f64);
                    for i in 0..my_ops {
                        let intended = match o.scenario {
                            Scenario::Burst => Instant::now(),
                            _ => {
                                let at = started + interval.mul_f64(i as f64);
                                let now = Instant::now();
                                if at > now + Duration::from_micros(200) {
                                    std::thread::sleep(at - now);
                                } else {
                                    while Instant::now() < at {
                                        std::hint::spin_loop();
                                    }
                                }
                                at
                            }
                        };
                        let agent = &agents[(next(&mut seed) % agents.len() as u64) as usize];
                        let fail = (next(&mut seed) % 1_000_000) as f64 / 1e6 < o.fail_rate;
                        let kind = match o.scenario {
                            Scenario::Mixed => next(&mut seed) % 10,
                            _ => 0,
                        };
                        match kind {
                            7 => {
                                let t0 = Instant::now();
                                match agent.call(
                                    signal("load.work", o.payload, intended),
                                    Duration::from_secs(10),
                                ) {
                                    Ok(_) => counts.calls.fetch_add(1, Ordering::Relaxed),
                                    Err(_) => counts.errors.fetch_add(1, Ordering::Relaxed),
                                };
                                mine.call.saturating_record(t0.elapsed().as_nanos() as u64);
                            }
                            8 => {
                                let t0 = Instant::now();
                                match agent.state() {
                                    Ok(_) => counts.queries.fetch_add(1, Ordering::Relaxed),
                                    Err(_) => counts.errors.fetch_add(1, Ordering::Relaxed),
                                };
                                mine.state.saturating_record(t0.elapsed().as_nanos() as u64);
                            }
                            9 => {
                                let t0 = Instant::now();
                                match bus.publish(signal("load.topic", o.payload, intended)) {
                                    Ok(report) => {
                                        counts.publishes.fetch_add(1, Ordering::Relaxed);
                                        counts.errors.fetch_add(
                                            report.failures.len() as u64,
                                            Ordering::Relaxed,
                                        );
                                    }
                                    Err(_) => {
                                        counts.errors.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                                mine.publish
                                    .saturating_record(t0.elapsed().as_nanos() as u64);
                            }
                            _ => {
                                let ty = if fail { "load.fail" } else { "load.work" };
                                send_retrying(agent, signal(ty, o.payload, intended), counts);
                            }
                        }
                        if i % 256 == 0 {
                            progress.inc(256.min(my_ops - i));
                        }
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("sender"))
            .collect()
    });
    let sending = started.elapsed();
    let idle = rt.wait_idle(Duration::from_secs(120));
    let elapsed = started.elapsed();
    progress.finish_and_clear();

    let mut caller = CallerHistograms::new();
    for h in &histograms {
        let _ = caller.call.add(&h.call);
        let _ = caller.state.add(&h.state);
        let _ = caller.publish.add(&h.publish);
    }
    let end_to_end = recorder.merged();
    // Route-memo counters of every agent (bus deliveries included); both stay
    // 0 without `fast-path`, which has no memo.
    let (memo_hits, memo_misses) = agents.iter().fold((0u64, 0u64), |(h, m), a| {
        let s = a.memo_stats();
        (h + s.hits, m + s.misses)
    });
    let report = rt.shutdown();
    let m = report.metrics;
    let ops = counts.sent.load(Ordering::Relaxed)
        + counts.calls.load(Ordering::Relaxed)
        + counts.queries.load(Ordering::Relaxed)
        + counts.publishes.load(Ordering::Relaxed);
    let errors = counts.errors.load(Ordering::Relaxed) + m.failed_actions;
    let result = json!({
        "scenario": format!("{:?}", o.scenario).to_lowercase(),
        "features": agentry::imp::enabled_features(),
        "config": {
            "agents": o.agents, "payload_bytes": o.payload.max(8), "workers": o.workers, "senders": senders,
            "signals": o.signals, "rate_per_s": o.rate, "duration_s": o.duration, "mailbox": o.mailbox,
            "fail_rate": o.fail_rate,
        },
        "elapsed_s": elapsed.as_secs_f64(),
        "sending_s": sending.as_secs_f64(),
        "reached_idle": idle,
        "operations": ops,
        "processed": m.processed,
        "throughput_per_s": m.processed as f64 / elapsed.as_secs_f64(),
        "backpressure_retries": counts.retries.load(Ordering::Relaxed),
        "errors": errors,
        "error_rate": errors as f64 / ops.max(1) as f64,
        "accepted": m.accepted,
        "dead_lettered": m.dead_lettered,
        "latency": {
            "send_to_processed": percentiles(&end_to_end),
            "call": percentiles(&caller.call),
            "state": percentiles(&caller.state),
            "publish": percentiles(&caller.publish),
        },
        "route_memo": {
            "hits": memo_hits,
            "misses": memo_misses,
            "hit_rate": if memo_hits + memo_misses == 0 {
                serde_json::Value::Null
            } else {
                json!(memo_hits as f64 / (memo_hits + memo_misses) as f64)
            },
        },
        "peak_rss_kib": peak_rss_kib(),
    });
    if o.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    println!(
        "agentry loadtest: {} scenario, features [{}]",
        result["scenario"].as_str().unwrap_or(""),
        agentry::imp::enabled_features().join(", ")
    );
    println!(
        "  {} agents, {} B payloads, {} workers, {} senders, mailbox {}",
        o.agents,
        o.payload.max(8),
        o.workers,
        senders,
        o.mailbox
    );
    match o.scenario {
        Scenario::Burst => println!("  burst of {} signals", o.signals),
        _ => println!("  {} ops/s for {} s", o.rate, o.duration),
    }
    println!(
        "operations {ops}, processed {}, in {:.3} s (sending took {:.3} s): {:.0} signals/s",
        m.processed,
        elapsed.as_secs_f64(),
        sending.as_secs_f64(),
        result["throughput_per_s"].as_f64().unwrap_or(0.0)
    );
    println!(
        "errors {errors} (rate {:.4}%), backpressure retries {}, accepted {} = processed {} + dead-lettered {}",
        100.0 * result["error_rate"].as_f64().unwrap_or(0.0),
        counts.retries.load(Ordering::Relaxed),
        m.accepted,
        m.processed,
        m.dead_lettered
    );
    match result["route_memo"]["hit_rate"].as_f64() {
        Some(rate) => println!(
            "route memo: hits {memo_hits}, misses {memo_misses}, hit rate {:.4}%",
            100.0 * rate
        ),
        None => println!("route memo: off (no fast-path)"),
    }
    println!("latency (µs)          count      p50      p90      p95      p99    p99.9      max");
    for (name, key) in [
        ("send -> processed", "send_to_processed"),
        ("call round trip", "call"),
        ("state()", "state"),
        ("publish", "publish"),
    ] {
        let l = &result["latency"][key];
        if l["count"].as_u64().unwrap_or(0) == 0 {
            continue;
        }
        println!(
            "  {name:<18} {:>8} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            l["count"],
            l["p50_us"].as_f64().unwrap_or(0.0),
            l["p90_us"].as_f64().unwrap_or(0.0),
            l["p95_us"].as_f64().unwrap_or(0.0),
            l["p99_us"].as_f64().unwrap_or(0.0),
            l["p99_9_us"].as_f64().unwrap_or(0.0),
            l["max_us"].as_f64().unwrap_or(0.0),
        );
    }
    println!("peak RSS {} KiB", peak_rss_kib());
    Ok(())
}
