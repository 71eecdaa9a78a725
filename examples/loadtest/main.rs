//! Load generator: burst, sustained and mixed scenarios against a threaded
//! agentry runtime, or the same load through tokio or crossbeam as
//! baselines, with latency percentiles (hdrhistogram), throughput, error
//! rate and peak RSS.
//!
//! ```text
//! cargo run --release --features full --example loadtest -- sustained
//! cargo run --release --features full --example loadtest -- sustained --runtime tokio
//! cargo run --release --example loadtest -- sustained --rate 10000 --duration 5 --sample-stages 16
//! cargo run --release --example loadtest -- mixed --agents 1000 --payload 1024 --json
//! ```
//!
//! * `burst`: `--signals` (default 10,000) signals sent at once by `--senders`
//!   threads to `--agents` agents; latency is send to handler start.
//! * `sustained`: a fixed `--rate` for `--duration` seconds; latency is
//!   measured from each signal's *intended* send time, so a stall is not
//!   hidden by the sender slowing down (coordinated omission). The sender
//!   spins to each intended time.
//! * `mixed`: the same pacing, with 70% sends, 10% calls, 10% state reads
//!   and 10% publishes to the topic's 10 subscribers; each kind gets its own
//!   latency distribution.
//!
//! `--runtime tokio|crossbeam` runs the same load through a baseline (files
//! `tokio_target.rs`, `crossbeam_target.rs` say how each is built), so a
//! latency table can show the harness's and the machine's own tail beside
//! agentry's. `--sample-stages N` also times every N-th signal's stages:
//! how late the sender was, how long the send took, and how long the signal
//! waited between the send's return and its handler's start.
//!
//! A full mailbox hands the signal back; the sender retries it and the retry
//! time counts in the latency. `--fail-rate` sends that fraction of signals to
//! a handler that fails.

mod agentry_target;
mod compare;
mod crossbeam_target;
mod record;
mod target;
mod tokio_target;

use agentry_target::AgentryTarget;
use clap::{Parser, ValueEnum};
use crossbeam_target::CrossbeamTarget;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use record::{Recorder, SentSample, Stages, Stamp, histogram, nanos_since_epoch, now_nanos};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use target::{Counts, Outcome, Target};
use tokio_target::TokioTarget;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Scenario {
    Burst,
    Sustained,
    Mixed,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub(crate) enum Contender {
    Agentry,
    Tokio,
    Crossbeam,
}

#[derive(Parser, Debug)]
#[command(about = "agentry load generator")]
/// The load generator's command line.
pub(crate) struct Options {
    /// Which load to apply.
    #[arg(value_enum)]
    scenario: Scenario,
    /// What takes the load: agentry, or a baseline.
    #[arg(long, value_enum, default_value_t = Contender::Agentry)]
    runtime: Contender,
    /// Agents receiving the load.
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// Payload bytes per signal (at least 16: the stamp).
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
    /// Fraction of signals routed to a handler that fails.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// agentry: let a sender run an idle agent when every worker sleeps
    /// (`RuntimeBuilder::run_on_sender`).
    #[arg(long)]
    run_on_sender: bool,
    /// Run the load through agentry (workers only, then with
    /// `--run-on-sender`), tokio and crossbeam, interleaved, this many rounds;
    /// print the median and range of each percentile per contender.
    #[arg(long, default_value_t = 0)]
    compare: usize,
    /// Time the stages of every N-th signal (0: off).
    #[arg(long, default_value_t = 0)]
    sample_stages: u64,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// Per-sender latency of the operations measured on the caller's side.
struct CallerHistograms {
    call: Histogram<u64>,
    state: Histogram<u64>,
    publish: Histogram<u64>,
    sent: Vec<SentSample>,
}

impl CallerHistograms {
    fn new() -> Self {
        CallerHistograms {
            call: histogram(),
            state: histogram(),
            publish: histogram(),
            sent: Vec::new(),
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

/// Waits until `at`: sleeps for long gaps, spins for short ones (a sleep
/// would overshoot by tens of microseconds).
fn pace_until(at: Instant) {
    let now = Instant::now();
    if at > now + Duration::from_micros(200) {
        std::thread::sleep(at - now - Duration::from_micros(100));
    }
    while Instant::now() < at {
        std::hint::spin_loop();
    }
}

fn progress_bar(o: &Options, total_ops: u64) -> ProgressBar {
    if o.json || o.no_progress {
        return ProgressBar::with_draw_target(Some(total_ops), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(total_ops);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} ops {per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Runs the load on `target` from `o.senders` threads; returns the
/// caller-side histograms and the time the sending took.
fn drive(
    target: &dyn Target,
    o: &Options,
    counts: &Counts,
    recorder: &Recorder,
    total_ops: u64,
    started: Instant,
) -> (Vec<CallerHistograms>, Duration) {
    let progress = progress_bar(o, total_ops);
    let senders = o.senders.max(1) as u64;
    let agents = o.agents.max(1) as u64;
    let histograms = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..senders)
            .map(|t| {
                let progress = &progress;
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
                                pace_until(at);
                                at
                            }
                        };
                        let stamp = Stamp {
                            intended: nanos_since_epoch(intended),
                            seq: (t << 40) | i,
                        };
                        let agent = (next(&mut seed) % agents) as usize;
                        let fail = (next(&mut seed) % 1_000_000) as f64 / 1e6 < o.fail_rate;
                        let kind = match o.scenario {
                            Scenario::Mixed => next(&mut seed) % 10,
                            _ => 0,
                        };
                        let t0 = Instant::now();
                        match kind {
                            7 => {
                                let ok = target.call(agent, stamp, Duration::from_secs(10));
                                let n = if ok { &counts.calls } else { &counts.errors };
                                n.fetch_add(1, Ordering::Relaxed);
                                mine.call.saturating_record(t0.elapsed().as_nanos() as u64);
                            }
                            8 => {
                                let ok = target.state(agent);
                                let n = if ok { &counts.queries } else { &counts.errors };
                                n.fetch_add(1, Ordering::Relaxed);
                                mine.state.saturating_record(t0.elapsed().as_nanos() as u64);
                            }
                            9 => {
                                match target.publish(stamp) {
                                    Ok(refused) => {
                                        counts.publishes.fetch_add(1, Ordering::Relaxed);
                                        counts.errors.fetch_add(refused, Ordering::Relaxed);
                                    }
                                    Err(()) => {
                                        counts.errors.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                                mine.publish
                                    .saturating_record(t0.elapsed().as_nanos() as u64);
                            }
                            _ => {
                                let begun = nanos_since_epoch(t0);
                                target.send(agent, stamp, fail, counts);
                                if recorder.is_sampled(stamp.seq) && !fail {
                                    mine.sent.push(SentSample {
                                        seq: stamp.seq,
                                        intended: stamp.intended,
                                        begun,
                                        returned: now_nanos(),
                                    });
                                }
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
    progress.finish_and_clear();
    (histograms, started.elapsed())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = Options::parse();
    let _ = record::epoch();
    if o.compare > 0 {
        return compare::run(&o);
    }
    let result = run_one(&o, o.runtime, o.run_on_sender)?;
    if o.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_text(&o, &result);
    }
    Ok(())
}

/// One run of the load against one contender; the results as JSON.
fn run_one(
    o: &Options,
    runtime: Contender,
    run_on_sender: bool,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let recorder = Arc::new(Recorder::new(o.sample_stages));
    let counts = Counts::default();
    let total_ops = match o.scenario {
        Scenario::Burst => o.signals as u64,
        _ => (o.rate as f64 * o.duration) as u64,
    };
    let agents = o.agents.max(1);
    let idle_timeout = Duration::from_secs(120);
    let started = Instant::now();
    let ((histograms, sending), outcome) = match runtime {
        Contender::Agentry => {
            let t = AgentryTarget::new(o, run_on_sender, recorder.clone())?;
            let started = Instant::now();
            (
                drive(&t, o, &counts, &recorder, total_ops, started),
                t.finish(idle_timeout),
            )
        }
        Contender::Tokio => {
            let t = TokioTarget::new(agents, o.workers, o.mailbox, o.payload, recorder.clone())?;
            let started = Instant::now();
            (
                drive(&t, o, &counts, &recorder, total_ops, started),
                t.finish(idle_timeout),
            )
        }
        Contender::Crossbeam => {
            let t = CrossbeamTarget::new(agents, o.workers, o.mailbox, o.payload, recorder.clone());
            let started = Instant::now();
            (
                drive(&t, o, &counts, &recorder, total_ops, started),
                t.finish(idle_timeout),
            )
        }
    };
    // Sending plus draining (and the contender's shutdown).
    let elapsed = started.elapsed();
    let run = Run {
        runtime,
        run_on_sender,
        counts: &counts,
        recorder: &recorder,
        histograms: &histograms,
        sending,
        elapsed,
        outcome: &outcome,
    };
    Ok(summarize(o, &run))
}

/// What one run produced, for [`summarize`].
struct Run<'a> {
    runtime: Contender,
    run_on_sender: bool,
    counts: &'a Counts,
    recorder: &'a Recorder,
    histograms: &'a [CallerHistograms],
    sending: Duration,
    elapsed: Duration,
    outcome: &'a Outcome,
}

fn summarize(o: &Options, run: &Run<'_>) -> serde_json::Value {
    let Run {
        runtime,
        run_on_sender,
        counts,
        recorder,
        histograms,
        sending,
        elapsed,
        outcome,
    } = *run;
    let mut caller = CallerHistograms::new();
    for h in histograms {
        let _ = caller.call.add(&h.call);
        let _ = caller.state.add(&h.state);
        let _ = caller.publish.add(&h.publish);
        caller.sent.extend_from_slice(&h.sent);
    }
    let end_to_end = recorder.merged();
    let stages = recorder
        .sampled()
        .then(|| Stages::join(&caller.sent, &recorder.take_started()));
    let ops = counts.sent.load(Ordering::Relaxed)
        + counts.calls.load(Ordering::Relaxed)
        + counts.queries.load(Ordering::Relaxed)
        + counts.publishes.load(Ordering::Relaxed);
    let errors = counts.errors.load(Ordering::Relaxed) + outcome.failed_actions;
    let features = match runtime {
        Contender::Agentry => agentry::imp::enabled_features(),
        _ => &[],
    };
    let runtime_name = format!("{runtime:?}").to_lowercase();
    let result = json!({
        "scenario": format!("{:?}", o.scenario).to_lowercase(),
        "runtime": runtime_name,
        "features": features,
        "config": {
            "agents": o.agents, "payload_bytes": o.payload.max(record::STAMP_BYTES), "workers": o.workers,
            "senders": o.senders.max(1), "signals": o.signals, "rate_per_s": o.rate, "duration_s": o.duration,
            "mailbox": o.mailbox, "fail_rate": o.fail_rate, "sample_stages": o.sample_stages,
            "run_on_sender": run_on_sender,
        },
        "elapsed_s": elapsed.as_secs_f64(),
        "sending_s": sending.as_secs_f64(),
        "reached_idle": outcome.reached_idle,
        "operations": ops,
        "processed": outcome.processed,
        "throughput_per_s": outcome.processed as f64 / elapsed.as_secs_f64(),
        "backpressure_retries": counts.retries.load(Ordering::Relaxed),
        "errors": errors,
        "error_rate": errors as f64 / ops.max(1) as f64,
        "accepted": outcome.accepted,
        "dead_lettered": outcome.dead_lettered,
        "latency": {
            "send_to_processed": record::percentiles(&end_to_end),
            "call": record::percentiles(&caller.call),
            "state": record::percentiles(&caller.state),
            "publish": record::percentiles(&caller.publish),
        },
        "stages": stages.as_ref().map(|s| json!({
            "sender_late": record::percentiles(&s.sender_late),
            "send": record::percentiles(&s.send),
            "queued": record::percentiles(&s.queued),
        })),
        "route_memo": outcome.memo.map(|(hits, misses)| json!({
            "hits": hits, "misses": misses,
            "hit_rate": hits as f64 / (hits + misses).max(1) as f64,
        })),
        "peak_rss_kib": peak_rss_kib(),
    });
    result
}

/// Prints one run's results as text.
fn print_text(o: &Options, result: &serde_json::Value) {
    let counts_of = |key: &str| result[key].as_u64().unwrap_or(0);
    let ops = counts_of("operations");
    let errors = counts_of("errors");
    let features: Vec<&str> = result["features"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let runtime = result["runtime"].as_str().unwrap_or("");
    println!(
        "{runtime} loadtest: {} scenario, features [{}]",
        result["scenario"].as_str().unwrap_or(""),
        features.join(", ")
    );
    println!(
        "  {} agents, {} B payloads, {} workers, {} senders, mailbox {}{}",
        o.agents,
        o.payload.max(record::STAMP_BYTES),
        o.workers,
        o.senders.max(1),
        o.mailbox,
        if result["config"]["run_on_sender"].as_bool() == Some(true) {
            ", run on sender"
        } else {
            ""
        }
    );
    match o.scenario {
        Scenario::Burst => println!("  burst of {} signals", o.signals),
        _ => println!("  {} ops/s for {} s", o.rate, o.duration),
    }
    let f = |key: &str| result[key].as_f64().unwrap_or(0.0);
    println!(
        "operations {ops}, processed {}, in {:.3} s (sending took {:.3} s): {:.0} signals/s",
        counts_of("processed"),
        f("elapsed_s"),
        f("sending_s"),
        f("throughput_per_s")
    );
    println!(
        "errors {errors} (rate {:.4}%), backpressure retries {}, accepted {} = processed {} + dead-lettered {}{}",
        100.0 * f("error_rate"),
        counts_of("backpressure_retries"),
        counts_of("accepted"),
        counts_of("processed"),
        counts_of("dead_lettered"),
        if result["reached_idle"].as_bool() == Some(true) {
            ""
        } else {
            " (did not reach idle)"
        }
    );
    let memo = &result["route_memo"];
    if !memo.is_null() {
        println!(
            "route memo: hits {}, misses {}, hit rate {:.4}%",
            memo["hits"],
            memo["misses"],
            100.0 * memo["hit_rate"].as_f64().unwrap_or(0.0)
        );
    } else if runtime == "agentry" {
        println!("route memo: off (no fast-path)");
    }
    println!("latency (µs)          count      p50      p90      p95      p99    p99.9      max");
    let mut rows = vec![
        ("send -> processed", &result["latency"]["send_to_processed"]),
        ("call round trip", &result["latency"]["call"]),
        ("state()", &result["latency"]["state"]),
        ("publish", &result["latency"]["publish"]),
    ];
    if !result["stages"].is_null() {
        rows.push((" stage: sender late", &result["stages"]["sender_late"]));
        rows.push((" stage: send call", &result["stages"]["send"]));
        rows.push((" stage: queued", &result["stages"]["queued"]));
    }
    for (name, l) in rows {
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
    println!("peak RSS {} KiB", result["peak_rss_kib"]);
}
