//! `--compare N`: the same load through agentry and the baselines,
//! interleaved for N rounds, so one table shows agentry's tail beside the
//! harness's and the machine's own (a tail that every contender shows is
//! the machine's). The order of the contenders rotates every round, so a
//! slow stretch of the machine does not always land on the same one.

use crate::{Contender, Options, run_one};
use serde_json::{Value, json};

/// The contenders of a comparison: agentry as configured by default, with
/// `run_on_sender`, then the baselines.
const CONTENDERS: [(&str, Contender, bool); 4] = [
    ("agentry", Contender::Agentry, false),
    ("agentry, run_on_sender", Contender::Agentry, true),
    ("tokio", Contender::Tokio, false),
    ("crossbeam", Contender::Crossbeam, false),
];

/// The rows of the table: (label, path into a run's JSON).
const ROWS: [(&str, &str, &str); 8] = [
    ("send -> processed p50", "send_to_processed", "p50_us"),
    ("send -> processed p90", "send_to_processed", "p90_us"),
    ("send -> processed p99", "send_to_processed", "p99_us"),
    ("send -> processed p99.9", "send_to_processed", "p99_9_us"),
    ("call p50", "call", "p50_us"),
    ("call p99", "call", "p99_us"),
    ("publish p99", "publish", "p99_us"),
    ("state() p99", "state", "p99_us"),
];

pub fn run(o: &Options) -> Result<(), Box<dyn std::error::Error>> {
    let rounds = o.compare;
    let mut runs: Vec<Vec<Value>> = vec![Vec::new(); CONTENDERS.len()];
    for round in 0..rounds {
        for k in 0..CONTENDERS.len() {
            let i = (k + round) % CONTENDERS.len();
            let (name, runtime, on_sender) = CONTENDERS[i];
            if !o.json {
                eprintln!("round {}/{rounds}: {name}", round + 1);
            }
            runs[i].push(run_one(o, runtime, on_sender)?);
        }
    }
    if o.json {
        let all: Vec<Value> = CONTENDERS
            .iter()
            .zip(&runs)
            .map(|((name, ..), r)| json!({ "contender": name, "runs": r }))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "rounds": rounds, "contenders": all }))?
        );
        return Ok(());
    }
    let features = runs[0]
        .first()
        .and_then(|r| r["features"].as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    println!(
        "{:?} load, {} agents, {} B payloads, {} workers, {} senders{}; agentry features [{features}]",
        o.scenario,
        o.agents,
        o.payload.max(crate::record::STAMP_BYTES),
        o.workers,
        o.senders.max(1),
        match o.scenario {
            crate::Scenario::Burst => format!(", bursts of {}", o.signals),
            _ => format!(", {} ops/s for {} s", o.rate, o.duration),
        }
    );
    println!("{rounds} rounds; median [min..max] of the rounds, µs\n");
    let mut header = String::from("| latency |");
    let mut rule = String::from("|---|");
    for (name, ..) in CONTENDERS {
        header.push_str(&format!(" {name} |"));
        rule.push_str("---:|");
    }
    println!("{header}\n{rule}");
    for (label, kind, quantile) in ROWS {
        let cells: Vec<Option<Vec<f64>>> = runs
            .iter()
            .map(|r| {
                let v: Vec<f64> = r
                    .iter()
                    .filter(|run| run["latency"][kind]["count"].as_u64().unwrap_or(0) > 0)
                    .filter_map(|run| run["latency"][kind][quantile].as_f64())
                    .collect();
                (!v.is_empty()).then_some(v)
            })
            .collect();
        if cells.iter().all(Option::is_none) {
            continue;
        }
        let mut line = format!("| {label} |");
        for cell in cells {
            match cell {
                Some(v) => line.push_str(&format!(" {} |", spread(v))),
                None => line.push_str(" |"),
            }
        }
        println!("{line}");
    }
    if !runs[0].first().is_some_and(|r| r["stages"].is_null()) {
        for (label, stage) in [
            ("stage: sender late p99", "sender_late"),
            ("stage: queued p99", "queued"),
        ] {
            let mut line = format!("| {label} |");
            for r in &runs {
                let v: Vec<f64> = r
                    .iter()
                    .filter_map(|run| run["stages"][stage]["p99_us"].as_f64())
                    .collect();
                line.push_str(&format!(" {} |", spread(v)));
            }
            println!("{line}");
        }
    }
    Ok(())
}

/// "median [min..max]" of the rounds.
fn spread(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    let fmt = |x: f64| {
        if x >= 100.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    };
    match (v.first(), v.last()) {
        (Some(&lo), Some(&hi)) => format!("{} [{}..{}]", fmt(v[v.len() / 2]), fmt(lo), fmt(hi)),
        _ => String::new(),
    }
}
