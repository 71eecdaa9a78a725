//! peers: agentry side by side with the libraries its users would pick
//! instead, on four workloads (one-way, fan-in, round trip to an idle and to
//! a busy receiver), each contender driven the way its own users drive it.
//! See README.md.

// Every contender runs under the same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod actix_bench;
mod agentry_async_bench;
mod agentry_bench;
mod async_client;
mod contender;
mod crossbeam_bench;
mod kameo_bench;
mod ractor_bench;
mod report;
mod tokio_bench;

use contender::{BoxError, Contender, MEASURED_REPS, Sizes, WARMUP_REPS, quantile};
use report::{ContenderResult, Summary, Workload};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: peers [--json] [--quick] [--only NAME[,NAME..]]\n\
    \n\
    Runs the one-way, fan-in, idle round-trip and busy round-trip workloads\n\
    through agentry and its peers and prints a markdown table (or JSON with\n\
    --json). --quick runs about a tenth of the messages (a smoke run; its\n\
    figures are noisier). --only runs the named contenders (agentry,\n\
    agentry-prebuilt, agentry-async, crossbeam, tokio, actix, kameo, ractor);\n\
    the first one run is the ratio column's baseline.";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let mut json = false;
    let mut sizes = Sizes::FULL;
    let mut only: Option<Vec<String>> = None;
    let mut args = argv[1..].iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => match args.next() {
                Some(names) => only = Some(names.split(',').map(str::to_owned).collect()),
                None => {
                    eprintln!("--only needs a list of names\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--json" => json = true,
            "--quick" => sizes = Sizes::QUICK,
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
    match run(&argv, json, sizes, only.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(argv: &[String], json: bool, sizes: Sizes, only: Option<&[String]>) -> Result<(), BoxError> {
    // One contender at a time: each is started, measured, and shut down
    // (every thread it started joined) before the next one starts. The
    // first row is the baseline of the ratio column.
    let wanted = |key: &str| only.is_none_or(|names| names.iter().any(|n| n == key));
    let mut results = Vec::new();
    if wanted("agentry") {
        results.push(measure(
            "agentry",
            agentry_bench::AgentryBench::start,
            sizes,
        )?);
    }
    if wanted("agentry-prebuilt") {
        results.push(measure(
            "agentry, pre-built signals",
            agentry_bench::AgentryBench::start_prebuilt,
            sizes,
        )?);
    }
    if wanted("agentry-async") {
        results.push(measure(
            "agentry, async callers (tokio tasks)",
            agentry_async_bench::AgentryAsyncBench::start,
            sizes,
        )?);
    }
    if wanted("crossbeam") {
        results.push(measure(
            "crossbeam",
            crossbeam_bench::CrossbeamBench::start,
            sizes,
        )?);
    }
    if wanted("tokio") {
        results.push(measure("tokio", tokio_bench::TokioBench::start, sizes)?);
    }
    if wanted("actix") {
        results.push(measure("actix", actix_bench::ActixBench::start, sizes)?);
    }
    if wanted("kameo") {
        results.push(measure("kameo", kameo_bench::KameoBench::start, sizes)?);
    }
    if wanted("ractor") {
        results.push(measure("ractor", ractor_bench::RactorBench::start, sizes)?);
    }
    if results.is_empty() {
        return Err("--only named no contender".into());
    }
    let machine = report::Machine::detect();
    let command = argv.join(" ");
    let date = report::today();
    let setup = report::Setup {
        machine: &machine,
        command: &command,
        date: &date,
        sizes,
    };
    if json {
        println!("{}", report::json(&setup, &results));
    } else {
        print!("{}", report::table(&setup, &results));
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

/// Runs `rep` once unmeasured, then `MEASURED_REPS` times, keeping the
/// measured results.
fn reps<T>(mut rep: impl FnMut() -> Result<T, BoxError>) -> Result<Vec<T>, BoxError> {
    for _ in 0..WARMUP_REPS {
        rep()?;
    }
    (0..MEASURED_REPS).map(|_| rep()).collect()
}

fn per_message(elapsed: Duration, n: u64) -> f64 {
    elapsed.as_nanos() as f64 / n as f64
}

/// `reps` of a workload that times `n` messages as a whole, in ns per
/// message.
fn per_message_reps<C>(
    c: &mut C,
    workload: fn(&mut C, u64) -> Result<Duration, BoxError>,
    n: u64,
) -> Result<Vec<f64>, BoxError> {
    Ok(reps(|| workload(c, n))?
        .into_iter()
        .map(|d| per_message(d, n))
        .collect())
}

/// Starts one contender, runs warm-up and measured repetitions of every
/// workload, shuts it down, and checks that its threads are gone.
fn measure<C: Contender>(
    name: &'static str,
    start: fn() -> Result<C, BoxError>,
    sizes: Sizes,
) -> Result<ContenderResult, BoxError> {
    eprintln!("running {name} ...");
    let with_name = |e: BoxError| -> BoxError { format!("{name}: {e}").into() };
    let mut c = start().map_err(with_name)?;

    let one_way = per_message_reps(&mut c, C::one_way, sizes.one_way).map_err(with_name)?;
    eprintln!("  (a) one-way done");

    let fan_in: Option<Vec<f64>> = reps(|| c.fan_in(sizes.fan_in))
        .map_err(with_name)?
        .into_iter()
        .map(|d| d.map(|d| per_message(d, sizes.fan_in)))
        .collect();
    eprintln!("  (b) fan-in done");

    let idle =
        per_message_reps(&mut c, C::round_trip_idle, sizes.round_trips).map_err(with_name)?;
    eprintln!("  (c) idle round trip done");

    let (mut p50, mut p99, mut stream) = (Vec::new(), Vec::new(), Vec::new());
    for mut busy in reps(|| c.round_trip_busy(sizes.busy_round_trips)).map_err(with_name)? {
        p50.push(quantile(&mut busy.samples, 0.50));
        p99.push(quantile(&mut busy.samples, 0.99));
        stream.push(busy.sent as f64 / sizes.busy_round_trips as f64);
    }
    eprintln!("  (d) busy round trip done");

    c.shutdown().map_err(with_name)?;
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
        summaries: vec![
            (Workload::OneWay, Some(Summary::of(one_way))),
            (Workload::FanIn, fan_in.map(Summary::of)),
            (Workload::RoundTripIdle, Some(Summary::of(idle))),
            (Workload::RoundTripBusyP50, Some(Summary::of(p50))),
            (Workload::RoundTripBusyP99, Some(Summary::of(p99))),
            (Workload::BusyStream, Some(Summary::of(stream))),
        ],
    })
}
