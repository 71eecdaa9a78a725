//! peers: agentry side by side with other Rust message-passing libraries on
//! two workloads (one-way throughput, sequential round trip). See README.md.

// Every contender runs under the same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod actix_bench;
mod agentry_bench;
mod contender;
mod crossbeam_bench;
mod kameo_bench;
mod ractor_bench;
mod report;
mod tokio_bench;

use contender::{BoxError, Contender, MEASURED_REPS, ONE_WAY_MESSAGES, ROUND_TRIPS, WARMUP_REPS};
use report::{ContenderResult, Summary};
use std::process::ExitCode;

const USAGE: &str = "usage: peers [--json]\n\
    \n\
    Runs the one-way throughput and round-trip workloads through agentry and\n\
    its peers and prints a markdown table (or JSON with --json).";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let mut json = false;
    for arg in &argv[1..] {
        match arg.as_str() {
            "--json" => json = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument `{other}`\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match run(&argv, json) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(argv: &[String], json: bool) -> Result<(), BoxError> {
    // One contender at a time: each is started, measured, and shut down
    // (every thread it started joined) before the next one starts.
    let results = vec![
        measure("agentry (full)", agentry_bench::AgentryBench::start)?,
        measure("crossbeam", crossbeam_bench::CrossbeamBench::start)?,
        measure("tokio mpsc + oneshot", tokio_bench::TokioBench::start)?,
        measure("actix", actix_bench::ActixBench::start)?,
        measure("kameo", kameo_bench::KameoBench::start)?,
        measure("ractor", ractor_bench::RactorBench::start)?,
    ];
    let machine = report::Machine::detect();
    let command = argv.join(" ");
    if json {
        println!("{}", report::json(&machine, &command, &results));
    } else {
        print!("{}", report::table(&machine, &command, &results));
    }
    Ok(())
}

/// Threads of this process, from /proc/self/status (None if unreadable).
fn live_threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Starts one contender, runs warm-up and measured repetitions of both
/// workloads, shuts it down.
fn measure<C: Contender>(
    name: &'static str,
    start: fn() -> Result<C, BoxError>,
) -> Result<ContenderResult, BoxError> {
    eprintln!("running {name} ...");
    let with_name = |e: BoxError| -> BoxError { format!("{name}: {e}").into() };
    let mut contender = start().map_err(with_name)?;

    let mut msgs_per_sec = Vec::with_capacity(MEASURED_REPS);
    for rep in 0..WARMUP_REPS + MEASURED_REPS {
        let elapsed = contender.one_way(ONE_WAY_MESSAGES).map_err(with_name)?;
        if rep >= WARMUP_REPS {
            msgs_per_sec.push(ONE_WAY_MESSAGES as f64 / elapsed.as_secs_f64());
        }
    }

    let mut ns_per_trip = Vec::with_capacity(MEASURED_REPS);
    for rep in 0..WARMUP_REPS + MEASURED_REPS {
        let elapsed = contender.round_trip(ROUND_TRIPS).map_err(with_name)?;
        if rep >= WARMUP_REPS {
            ns_per_trip.push(elapsed.as_nanos() as f64 / ROUND_TRIPS as f64);
        }
    }

    contender.shutdown().map_err(with_name)?;
    // Every thread the contender started must be gone before the next one
    // runs (on 2 cores a leftover spinning thread would skew its figures).
    match live_threads() {
        Some(threads) if threads > 1 => {
            return Err(format!("{name}: {threads} threads still alive after shutdown").into());
        }
        Some(threads) => eprintln!("  {name}: shut down, {threads} thread left (main)"),
        None => eprintln!("  {name}: shut down (thread count unavailable)"),
    }
    Ok(ContenderResult {
        name,
        one_way_msgs_per_sec: Summary::of(msgs_per_sec),
        round_trip_ns: Summary::of(ns_per_trip),
    })
}
