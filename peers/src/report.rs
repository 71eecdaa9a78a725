//! Summaries, the machine description, and the two output formats.

use crate::contender::{MEASURED_REPS, ONE_WAY_MESSAGES, ROUND_TRIPS, WARMUP_REPS};
use std::fmt::Write as _;

/// Median and range of the measured repetitions.
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub samples: Vec<f64>,
}

impl Summary {
    pub fn of(samples: Vec<f64>) -> Summary {
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n == 0 {
            f64::NAN
        } else if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Summary {
            median,
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
            samples,
        }
    }
}

pub struct ContenderResult {
    pub name: &'static str,
    pub one_way_msgs_per_sec: Summary,
    pub round_trip_ns: Summary,
}

pub struct Machine {
    pub cpu: String,
    pub cores: usize,
}

impl Machine {
    /// CPU model and logical core count from /proc/cpuinfo (falling back to
    /// `available_parallelism` for the count).
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown CPU".to_string());
        let listed = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let cores = if listed > 0 {
            listed
        } else {
            std::thread::available_parallelism().map_or(0, |n| n.get())
        };
        Machine { cpu, cores }
    }
}

/// The contender's figure divided by agentry's (the first row).
fn ratio(value: f64, baseline: f64) -> f64 {
    value / baseline
}

fn millions(x: f64) -> String {
    format!("{:.2}", x / 1e6)
}

/// An integer with thousands separators.
fn grouped(x: f64) -> String {
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn table(machine: &Machine, command: &str, results: &[ContenderResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# peers: agentry and other message-passing libraries");
    let _ = writeln!(out);
    let _ = writeln!(out, "machine: {} ({} cores)", machine.cpu, machine.cores);
    let _ = writeln!(out, "command: {command}");
    let _ = writeln!(
        out,
        "one-way: 1 producer -> 1 consumer, {} messages; round trip: {} sequential request/replies; \
         {} warm-up + {} measured repetitions each; allocator: mimalloc for all",
        grouped(ONE_WAY_MESSAGES as f64),
        grouped(ROUND_TRIPS as f64),
        WARMUP_REPS,
        MEASURED_REPS
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| contender | one-way msg/s (median) | vs agentry (higher = faster) | round trip ns (median) | vs agentry (lower = faster) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    let Some(base) = results.first() else {
        return out;
    };
    for r in results {
        let ow = &r.one_way_msgs_per_sec;
        let rt = &r.round_trip_ns;
        let _ = writeln!(
            out,
            "| {} | {} M [{}..{}] | {:.2}x | {} [{}..{}] | {:.2}x |",
            r.name,
            millions(ow.median),
            millions(ow.min),
            millions(ow.max),
            ratio(ow.median, base.one_way_msgs_per_sec.median),
            grouped(rt.median),
            grouped(rt.min),
            grouped(rt.max),
            ratio(rt.median, base.round_trip_ns.median),
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Cells: median of the {MEASURED_REPS} measured repetitions [min..max]. \
         \"vs agentry\" = contender / agentry (the first row)."
    );
    out
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number (non-finite values become null).
fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "null".to_string()
    }
}

fn json_summary(s: &Summary) -> String {
    let samples: Vec<String> = s.samples.iter().map(|&x| json_num(x)).collect();
    format!(
        "{{\"median\": {}, \"min\": {}, \"max\": {}, \"samples\": [{}]}}",
        json_num(s.median),
        json_num(s.min),
        json_num(s.max),
        samples.join(", ")
    )
}

pub fn json(machine: &Machine, command: &str, results: &[ContenderResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{{");
    let _ = writeln!(
        out,
        "  \"machine\": {{\"cpu\": {}, \"cores\": {}}},",
        json_str(&machine.cpu),
        machine.cores
    );
    let _ = writeln!(out, "  \"command\": {},", json_str(command));
    let _ = writeln!(
        out,
        "  \"config\": {{\"one_way_messages\": {ONE_WAY_MESSAGES}, \"round_trips\": {ROUND_TRIPS}, \
         \"warmup_reps\": {WARMUP_REPS}, \"measured_reps\": {MEASURED_REPS}, \"allocator\": \"mimalloc\"}},"
    );
    let _ = writeln!(out, "  \"results\": [");
    let base = results.first();
    for (i, r) in results.iter().enumerate() {
        let (ow_vs, rt_vs) = base.map_or((f64::NAN, f64::NAN), |b| {
            (
                ratio(r.one_way_msgs_per_sec.median, b.one_way_msgs_per_sec.median),
                ratio(r.round_trip_ns.median, b.round_trip_ns.median),
            )
        });
        let _ = writeln!(out, "    {{");
        let _ = writeln!(out, "      \"contender\": {},", json_str(r.name));
        let _ = writeln!(
            out,
            "      \"one_way_msgs_per_sec\": {},",
            json_summary(&r.one_way_msgs_per_sec)
        );
        let _ = writeln!(out, "      \"one_way_vs_agentry\": {},", json_num(ow_vs));
        let _ = writeln!(
            out,
            "      \"round_trip_ns\": {},",
            json_summary(&r.round_trip_ns)
        );
        let _ = writeln!(out, "      \"round_trip_vs_agentry\": {}", json_num(rt_vs));
        let comma = if i + 1 < results.len() { "," } else { "" };
        let _ = writeln!(out, "    }}{comma}");
    }
    let _ = writeln!(out, "  ],");
    let _ = writeln!(
        out,
        "  \"notes\": {}",
        json_str(
            "vs_agentry = contender median / agentry median; one-way: higher is faster, round trip: lower is faster"
        )
    );
    let _ = write!(out, "}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_median_and_range() {
        let s = Summary::of(vec![5.0, 1.0, 3.0, 4.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (3.0, 1.0, 5.0));
        assert_eq!(Summary::of(vec![4.0, 1.0]).median, 2.5);
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(7.0), "7");
        assert_eq!(grouped(1234.4), "1,234");
        assert_eq!(grouped(1_234_567.0), "1,234,567");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(json_num(f64::NAN), "null");
    }
}
