//! Summaries, the machine description, and the two output formats.

use crate::contender::{
    FAN_IN_PRODUCERS, FAN_IN_RECEIVERS, MEASURED_REPS, STREAM_BATCH, Sizes, WARMUP_REPS,
};
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

/// The workloads, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    OneWay,
    FanIn,
    RoundTripIdle,
    RoundTripBusyP50,
    RoundTripBusyP99,
    BusyStream,
}

impl Workload {
    pub const ALL: [Workload; 6] = [
        Workload::OneWay,
        Workload::FanIn,
        Workload::RoundTripIdle,
        Workload::RoundTripBusyP50,
        Workload::RoundTripBusyP99,
        Workload::BusyStream,
    ];

    /// The label in the table.
    pub fn label(self) -> &'static str {
        match self {
            Workload::OneWay => "(a) one-way 1 -> 1, ns/msg",
            Workload::FanIn => "(b) fan-in 4 -> 1,000, ns/msg",
            Workload::RoundTripIdle => "(c) round trip, idle receiver, ns",
            Workload::RoundTripBusyP50 => "(d) round trip, busy receiver, p50 ns",
            Workload::RoundTripBusyP99 => "(d) round trip, busy receiver, p99 ns",
            Workload::BusyStream => "(d) info: stream msgs taken per round trip",
        }
    }

    /// The key in the JSON output.
    pub fn key(self) -> &'static str {
        match self {
            Workload::OneWay => "one_way_ns_per_msg",
            Workload::FanIn => "fan_in_ns_per_msg",
            Workload::RoundTripIdle => "round_trip_idle_ns",
            Workload::RoundTripBusyP50 => "round_trip_busy_p50_ns",
            Workload::RoundTripBusyP99 => "round_trip_busy_p99_ns",
            Workload::BusyStream => "busy_stream_msgs_per_round_trip",
        }
    }

    /// A figure of this workload as shown in the table.
    fn show(self, x: f64) -> String {
        match self {
            Workload::BusyStream if x.is_finite() => format!("{x:.1}"),
            _ => grouped(x),
        }
    }
}

/// One contender's summaries; `None` for a workload it does not run.
pub struct ContenderResult {
    pub name: &'static str,
    pub summaries: Vec<(Workload, Option<Summary>)>,
}

impl ContenderResult {
    pub fn get(&self, workload: Workload) -> Option<&Summary> {
        self.summaries
            .iter()
            .find(|(w, _)| *w == workload)
            .and_then(|(_, s)| s.as_ref())
    }
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

/// An integer with thousands separators.
fn grouped(x: f64) -> String {
    if !x.is_finite() {
        return "-".to_string();
    }
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

/// Today's date (UTC) as YYYY-MM-DD, from the system clock.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// What the run was: machine, command, date, sizes.
pub struct Setup<'a> {
    pub machine: &'a Machine,
    pub command: &'a str,
    pub date: &'a str,
    pub sizes: Sizes,
}

pub fn table(setup: &Setup<'_>, results: &[ContenderResult]) -> String {
    let sizes = setup.sizes;
    let mut out = String::new();
    let _ = writeln!(out, "# peers: agentry and other message-passing libraries");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "machine: {} ({} cores); date: {}; command: {}",
        setup.machine.cpu, setup.machine.cores, setup.date, setup.command
    );
    let _ = writeln!(
        out,
        "sizes per repetition: (a) {} messages, (b) {} messages, (c) {} round trips, (d) {} round trips \
         (stream batches of {}); {} warm-up + {} measured repetitions each; allocator: mimalloc for all",
        grouped(sizes.one_way as f64),
        grouped(sizes.fan_in as f64),
        grouped(sizes.round_trips as f64),
        grouped(sizes.busy_round_trips as f64),
        STREAM_BATCH,
        WARMUP_REPS,
        MEASURED_REPS
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| workload | contender | median | [min..max] | vs agentry |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|");
    let Some(base) = results.first() else {
        return out;
    };
    for workload in Workload::ALL {
        let base_median = base.get(workload).map_or(f64::NAN, |s| s.median);
        for r in results {
            match r.get(workload) {
                Some(s) => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | [{}..{}] | {:.2}x |",
                        workload.label(),
                        r.name,
                        workload.show(s.median),
                        workload.show(s.min),
                        workload.show(s.max),
                        ratio(s.median, base_median),
                    );
                }
                None => {
                    let _ = writeln!(out, "| {} | {} | not run | | |", workload.label(), r.name);
                }
            }
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Cells: median of the {MEASURED_REPS} measured repetitions [min..max], in nanoseconds \
         (lower is faster). \"vs agentry\" = contender median / agentry median (the first row: \
         signals built inside the timed loop); below 1.00x the contender is faster than agentry. \
         (d): p50 and p99 of each repetition's round trips, then the median and range of those \
         over the repetitions. The info row is not a speed: it is how many stream messages the \
         receiver took per round trip during (d), i.e. how busy the receiver really was (higher = \
         busier)."
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

pub fn json(setup: &Setup<'_>, results: &[ContenderResult]) -> String {
    let sizes = setup.sizes;
    let mut out = String::new();
    let _ = writeln!(out, "{{");
    let _ = writeln!(
        out,
        "  \"machine\": {{\"cpu\": {}, \"cores\": {}}},",
        json_str(&setup.machine.cpu),
        setup.machine.cores
    );
    let _ = writeln!(out, "  \"command\": {},", json_str(setup.command));
    let _ = writeln!(out, "  \"date\": {},", json_str(setup.date));
    let _ = writeln!(
        out,
        "  \"config\": {{\"one_way_messages\": {}, \"fan_in_messages\": {}, \"fan_in_producers\": {FAN_IN_PRODUCERS}, \
         \"fan_in_receivers\": {FAN_IN_RECEIVERS}, \"round_trips\": {}, \"busy_round_trips\": {}, \"stream_batch\": {STREAM_BATCH}, \
         \"warmup_reps\": {WARMUP_REPS}, \"measured_reps\": {MEASURED_REPS}, \"allocator\": \"mimalloc\"}},",
        sizes.one_way, sizes.fan_in, sizes.round_trips, sizes.busy_round_trips
    );
    let _ = writeln!(out, "  \"results\": [");
    let base = results.first();
    for (i, r) in results.iter().enumerate() {
        let _ = writeln!(out, "    {{");
        let _ = writeln!(out, "      \"contender\": {},", json_str(r.name));
        for (j, workload) in Workload::ALL.iter().enumerate() {
            let comma = if j + 1 < Workload::ALL.len() { "," } else { "" };
            match r.get(*workload) {
                Some(s) => {
                    let vs = base
                        .and_then(|b| b.get(*workload))
                        .map_or(f64::NAN, |b| ratio(s.median, b.median));
                    let _ = writeln!(
                        out,
                        "      {}: {{\"summary\": {}, \"vs_agentry\": {}}}{comma}",
                        json_str(workload.key()),
                        json_summary(s),
                        json_num(vs)
                    );
                }
                None => {
                    let _ = writeln!(out, "      {}: null{comma}", json_str(workload.key()));
                }
            }
        }
        let comma = if i + 1 < results.len() { "," } else { "" };
        let _ = writeln!(out, "    }}{comma}");
    }
    let _ = writeln!(out, "  ],");
    let _ = writeln!(
        out,
        "  \"notes\": {}",
        json_str(
            "all figures in nanoseconds, lower is faster, except busy_stream_msgs_per_round_trip (stream messages the receiver took per round trip during (d): higher = busier receiver); vs_agentry = contender median / agentry median (first row, signals built in the timed loop); null = workload not run"
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
    fn dates_are_civil() {
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"));
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(json_num(f64::NAN), "null");
    }
}
