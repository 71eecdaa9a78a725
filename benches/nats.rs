//! The NATS JetStream bridge under load, through a real local
//! `nats-server` (not a criterion micro-benchmark: one load run per row,
//! printed as tables).
//!
//! ```text
//! cargo bench --features nats --bench nats
//! cargo bench --features nats --bench nats -- --signals N --unbatched N \
//!     --rate R --secs S --calls C [--spin | --retry-sleep-us U] --rows batched,unbatched,paced,quiet,call,raw,raw-ack-all
//! ```
//!
//! One way: runtime A publishes on its bus (each signal built in the loop
//! with `Signal::json`, a 64 B JSON payload carrying a sequence number and
//! the send time in nanoseconds since a shared epoch) -> `Export` ->
//! JetStream -> `Import` -> one agent in runtime B, whose action records
//! `now - sent` in a histogram, counts each sequence number once (a second
//! sight is a duplicate), and tells the main thread over a channel when
//! all `N` arrived. Both runtimes live in this process, on separate NATS
//! connections; every signal goes through the server and its file store.
//! Each row has its own stream, warms up first, and reports the measured
//! phase only.
//!
//! Rows:
//! * `batched`: default options (export window 1024, import batch 512,
//!   max_ack_pending 8192), `--signals` (200,000) published as fast as the
//!   export takes them. Signals/s is first publish to the commit of the
//!   last signal; latency is under saturation, so it is mostly the wait in
//!   the export's 65,536-signal buffer.
//! * `unbatched`: export window 1, import batch 1, max_ack_pending 1: one
//!   message in flight each way; `--unbatched` signals (default N / 20, as
//!   it runs at a few thousand signals/s).
//! * `paced`: `--rate` (10,000) signals/s for `--secs` (3) s, the latency
//!   a signal sees when nothing queues: the cross-process latency.
//! * `quiet`: 4 signals/s for 3 s: the import's pull requests expire (1 s)
//!   between signals, and each must still find one waiting at the server
//!   (its max latency was 1.25 s when an expired request was not replaced
//!   at once).
//! * `call`: `RemoteAgent::call` to an agent served in runtime B,
//!   sequentially, `--calls` (5,000) after a warm-up.
//! * `raw`: the same traffic with async-nats alone (no agentry): the
//!   ceiling of this server on this machine.
//! * `raw-ack-all`: `raw` with cumulative acknowledgement (`AckPolicy::All`,
//!   one ack per 512 messages): what the server would save, measured for a
//!   choice the bridge does not make (see the import's docs).
//!
//! Besides latency and counters, each row prints the CPU time of the
//! publisher thread, the tokio workers, the agentry workers, the
//! nats-server and the rest of the (shared) machine, from `/proc`.
//!
//! The publisher applies backpressure: a publish the export refuses (its
//! buffer is full: `DeliveryFailure::SinkRefused`) takes the signal back
//! out of the failure, waits on `Export::room` until a quarter of the
//! buffer is free (parked, woken by the export), and publishes it again;
//! the table counts those retries. `--spin` retries after `yield_now`
//! instead, `--retry-sleep-us U` after a sleep, to show what waiting buys.
//! A retried signal keeps its first send time.

mod common;
#[path = "../tests/common/nats_server.rs"]
mod nats_server;

use agentry::nats::{
    Bridge, Export, ExportOptions, ExportRoom, ExportStats, Import, ImportOptions, ImportStats,
    ImportTarget, async_nats,
};
use agentry::{AgentSpec, Bus, DeliveryFailure, Instruction, Runtime, Signal};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// The signal type every row publishes.
const TYPE: &str = "bench.tick";
/// What the export and import take.
const PATTERN: &str = "bench.**";
/// Pads the JSON payload to about 64 bytes.
const PAD: &str = "abcdefghijklmnopqrstuv";
/// How long the main thread waits for a row before it gives up.
const ROW_TIMEOUT: Duration = Duration::from_secs(600);

/// The payload of a measured signal.
#[derive(Serialize)]
struct Probe {
    seq: u64,
    sent_ns: u64,
    pad: &'static str,
}

/// What the receiving action reads back (the pad is ignored).
#[derive(Deserialize)]
struct Stamp {
    seq: u64,
    sent_ns: u64,
}

/// Nanoseconds since the epoch both runtimes share (the process's first
/// call).
fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn probe(seq: u64) -> Signal {
    Signal::json(
        TYPE,
        "/bench/nats",
        &Probe {
            seq,
            sent_ns: now_ns(),
            pad: PAD,
        },
    )
    .expect("a valid signal")
}

fn histogram() -> Histogram<u64> {
    // 1 ns to 1 hour, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("histogram bounds")
}

/// What runtime B's agent records, shared with the main thread (the agent
/// state is an `Arc` of it, so the rollback copy per action is one
/// reference count).
struct Recorder {
    inner: Mutex<Phase>,
}

/// One phase (warm-up or measured run) of a row.
struct Phase {
    latency: Histogram<u64>,
    seen: Vec<bool>,
    unique: u64,
    duplicates: u64,
    out_of_range: u64,
    /// When the last signal arrived (or the phase began).
    last_ns: u64,
    /// The longest time without an arrival.
    max_gap_ns: u64,
    done: Option<mpsc::Sender<Instant>>,
}

impl Recorder {
    fn new() -> Arc<Recorder> {
        Arc::new(Recorder {
            inner: Mutex::new(Phase {
                latency: histogram(),
                seen: Vec::new(),
                unique: 0,
                duplicates: 0,
                out_of_range: 0,
                last_ns: 0,
                max_gap_ns: 0,
                done: None,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a phase of `n` signals; the receiver gets the instant the
    /// last one was counted.
    fn arm(&self, n: u64) -> mpsc::Receiver<Instant> {
        let (tx, rx) = mpsc::channel();
        let mut phase = self.lock();
        phase.latency.reset();
        phase.seen = vec![false; usize::try_from(n).expect("n fits usize")];
        phase.unique = 0;
        phase.duplicates = 0;
        phase.out_of_range = 0;
        phase.last_ns = now_ns();
        phase.max_gap_ns = 0;
        phase.done = Some(tx);
        rx
    }

    fn record(&self, stamp: &Stamp) {
        let now = now_ns();
        let mut phase = self.lock();
        phase
            .latency
            .saturating_record(now.saturating_sub(stamp.sent_ns).max(1));
        phase.max_gap_ns = phase.max_gap_ns.max(now.saturating_sub(phase.last_ns));
        phase.last_ns = now;
        let Some(slot) = usize::try_from(stamp.seq)
            .ok()
            .and_then(|i| phase.seen.get_mut(i))
        else {
            phase.out_of_range += 1;
            return;
        };
        if *slot {
            phase.duplicates += 1;
            return;
        }
        *slot = true;
        phase.unique += 1;
        if phase.unique == phase.seen.len() as u64
            && let Some(done) = phase.done.take()
        {
            let _ = done.send(Instant::now());
        }
    }
}

/// The counting agent of runtime B.
fn sink_spec(recorder: Arc<Recorder>, mailbox: usize) -> AgentSpec<Arc<Recorder>, ()> {
    AgentSpec::new(recorder).mailbox_capacity(mailbox).on(
        PATTERN,
        |rec: &mut Arc<Recorder>, ins: &mut Instruction| {
            let stamp: Stamp = ins.json()?;
            rec.record(&stamp);
            Ok(())
        },
    )
}

/// CPU time from `/proc` (Linux; zeros elsewhere), in clock ticks of
/// 10 ms: where a row's time goes, by thread group, in the server, and in
/// the rest of this shared machine.
mod cpu {
    use std::ops::Sub;

    /// Seconds per tick (USER_HZ is 100 on Linux).
    pub const TICK: f64 = 0.01;

    /// A thread's or process's name and user + system ticks.
    fn stat(path: &str) -> Option<(String, u64)> {
        let text = std::fs::read_to_string(path).ok()?;
        let open = text.find('(')?;
        let close = text.rfind(')')?;
        let name = text[open + 1..close].to_owned();
        let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
        let user: u64 = fields.get(11)?.parse().ok()?;
        let system: u64 = fields.get(12)?.parse().ok()?;
        Some((name, user + system))
    }

    /// The calling thread's ticks.
    pub fn this_thread() -> u64 {
        stat("/proc/thread-self/stat").map_or(0, |(_, t)| t)
    }

    /// The pid of the `nats-server` listening on `port`.
    pub fn server_pid(port: &str) -> Option<u32> {
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .find_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                let is_server = args.first().is_some_and(|a| a.ends_with(b"nats-server"));
                let on_port = args
                    .windows(2)
                    .any(|w| w[0] == b"-p" && w[1] == port.as_bytes());
                (is_server && on_port).then_some(pid)
            })
    }

    /// Ticks so far, by where they were spent.
    #[derive(Clone, Copy, Default)]
    pub struct Snapshot {
        /// This whole process (exited threads included).
        pub process: u64,
        /// Its tokio workers (the NATS client, export, import).
        pub tokio: u64,
        /// Its agentry workers (both runtimes).
        pub agentry: u64,
        /// The nats-server process.
        pub server: u64,
        /// Every CPU of the machine: busy.
        pub machine_busy: u64,
        /// Every CPU of the machine: all.
        pub machine_all: u64,
    }

    impl Snapshot {
        pub fn now(server: Option<u32>) -> Snapshot {
            let mut snap = Snapshot {
                process: stat("/proc/self/stat").map_or(0, |(_, t)| t),
                server: server
                    .and_then(|pid| stat(&format!("/proc/{pid}/stat")))
                    .map_or(0, |(_, t)| t),
                ..Snapshot::default()
            };
            if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
                for task in tasks.flatten() {
                    let path = task.path().join("stat");
                    if let Some((name, ticks)) = path.to_str().and_then(stat) {
                        if name.starts_with("tokio-worker") {
                            snap.tokio += ticks;
                        } else if name.starts_with("agentry-worker") {
                            snap.agentry += ticks;
                        }
                    }
                }
            }
            if let Some(line) = std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|s| s.lines().next().map(str::to_owned))
            {
                // user nice system idle iowait irq softirq steal ...
                let f: Vec<u64> = line
                    .split_whitespace()
                    .skip(1)
                    .take(8)
                    .filter_map(|v| v.parse().ok())
                    .collect();
                if f.len() == 8 {
                    snap.machine_all = f.iter().sum();
                    snap.machine_busy = snap.machine_all - f[3] - f[4];
                }
            }
            snap
        }
    }

    impl Sub for Snapshot {
        type Output = Snapshot;
        fn sub(self, before: Snapshot) -> Snapshot {
            Snapshot {
                process: self.process.saturating_sub(before.process),
                tokio: self.tokio.saturating_sub(before.tokio),
                agentry: self.agentry.saturating_sub(before.agentry),
                server: self.server.saturating_sub(before.server),
                machine_busy: self.machine_busy.saturating_sub(before.machine_busy),
                machine_all: self.machine_all.saturating_sub(before.machine_all),
            }
        }
    }
}

/// What the publisher thread did.
struct Published {
    first: Instant,
    last: Instant,
    /// Publishes the export refused (buffer full) and that were repeated.
    retries: u64,
    /// Signals that needed at least one retry.
    retried_signals: u64,
    /// How late each publish was against its schedule (paced runs only).
    lag: Option<Histogram<u64>>,
    /// CPU ticks the publisher thread used.
    cpu: u64,
}

/// How the publisher waits before publishing a refused signal again.
#[derive(Clone, Copy, Debug)]
enum Backpressure {
    /// `Export::room().wait(buffer / 4)`: parked until the export made room.
    Wait,
    /// `yield_now`, then again at once.
    Spin,
    /// A fixed sleep.
    Sleep(Duration),
}

impl std::fmt::Display for Backpressure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backpressure::Wait => f.write_str("wait on Export::room for a quarter of the buffer"),
            Backpressure::Spin => f.write_str("yield_now and retry"),
            Backpressure::Sleep(pause) => write!(f, "sleep {pause:?} and retry"),
        }
    }
}

/// Publishes `n` probes (sequence numbers `0..n`) on `bus`, as fast as the
/// export takes them or, with `interval`, one per interval on average. A
/// refused publish is repeated after the `backpressure` wait.
fn publish(
    bus: &Bus,
    room: &ExportRoom,
    n: u64,
    interval: Option<Duration>,
    backpressure: Backpressure,
) -> Published {
    let mut retries = 0u64;
    let mut retried_signals = 0u64;
    let mut lag = interval.map(|_| histogram());
    let first = Instant::now();
    for seq in 0..n {
        if let Some(interval) = interval {
            // Sleep to the schedule (the timer slack makes the sleep a little
            // long; the next publishes then catch up, so the rate holds).
            let due = first + interval.mul_f64(seq as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if let Some(lag) = lag.as_mut() {
                let late = Instant::now().saturating_duration_since(due);
                lag.saturating_record(u64::try_from(late.as_nanos()).unwrap_or(u64::MAX).max(1));
            }
        }
        let mut signal = probe(seq);
        let mut refused_once = false;
        loop {
            let report = bus.publish(signal).expect("the export subscribes");
            if report.is_complete() {
                break;
            }
            let mut back = None;
            for failure in report.failures {
                match failure {
                    DeliveryFailure::SinkRefused { signal, .. } => back = Some(*signal),
                    other => panic!("unexpected delivery failure: {other}"),
                }
            }
            signal = back.expect("a refused publish hands the signal back");
            retries += 1;
            refused_once = true;
            match backpressure {
                Backpressure::Wait => {
                    // A timeout only means "try again"; a stopped export
                    // would fail the publish itself.
                    let _ = room.wait(room.capacity() / 4, Duration::from_secs(1));
                }
                Backpressure::Spin => std::thread::yield_now(),
                Backpressure::Sleep(pause) => std::thread::sleep(pause),
            }
        }
        retried_signals += u64::from(refused_once);
    }
    Published {
        first,
        last: Instant::now(),
        retries,
        retried_signals,
        lag,
        cpu: cpu::this_thread(),
    }
}

/// The options of one one-way row.
struct OneWay {
    name: &'static str,
    signals: u64,
    warmup: u64,
    export: ExportOptions,
    import: ImportOptions,
    interval: Option<Duration>,
}

/// The measurements of one one-way row.
struct OneWayResult {
    name: &'static str,
    signals: u64,
    elapsed: Duration,
    published_after: Duration,
    stored_after: Duration,
    acked_after: Duration,
    cpu: cpu::Snapshot,
    publisher_cpu: u64,
    latency: Histogram<u64>,
    lag: Option<Histogram<u64>>,
    retries: u64,
    retried_signals: u64,
    agent_duplicates: u64,
    out_of_range: u64,
    /// The longest time the agent went without a signal.
    max_gap: Duration,
    export: ExportStats,
    import: ImportStats,
    stream_messages: u64,
}

fn export_delta(after: ExportStats, before: ExportStats) -> ExportStats {
    ExportStats {
        accepted: after.accepted - before.accepted,
        stored: after.stored - before.stored,
        duplicates: after.duplicates - before.duplicates,
        retried: after.retried - before.retried,
        refused: after.refused - before.refused,
    }
}

fn import_delta(after: ImportStats, before: ImportStats) -> ImportStats {
    ImportStats {
        received: after.received - before.received,
        committed: after.committed - before.committed,
        redelivery: after.redelivery - before.redelivery,
        dead_lettered: after.dead_lettered - before.dead_lettered,
        skipped: after.skipped - before.skipped,
        refused_pulls: after.refused_pulls - before.refused_pulls,
    }
}

/// The two ends of a one-way row.
struct Ends<'a> {
    tokio_rt: &'a tokio::runtime::Runtime,
    bus: Bus,
    export: Export,
    import: Import,
    recorder: Arc<Recorder>,
    server: Option<u32>,
    backpressure: Backpressure,
}

/// When a phase's milestones were reached.
struct Milestones {
    published: Published,
    /// JetStream acknowledged the last export publish.
    stored: Instant,
    /// The agent counted the last signal.
    counted: Instant,
    /// The import acknowledged the last message (polled every ~100 µs).
    acked: Instant,
    /// CPU ticks spent from the start to `acked`.
    cpu: cpu::Snapshot,
}

impl Ends<'_> {
    /// Publishes `n` probes from a thread of its own and waits until the
    /// export stored, the agent counted and the import acknowledged all of
    /// them.
    fn phase(&mut self, n: u64, interval: Option<Duration>) -> Milestones {
        let done = self.recorder.arm(n);
        let committed = self.import.stats().committed + n;
        let cpu_before = cpu::Snapshot::now(self.server);
        let publisher = {
            let bus = self.bus.clone();
            let room = self.export.room();
            let backpressure = self.backpressure;
            std::thread::Builder::new()
                .name("publisher".into())
                .spawn(move || publish(&bus, &room, n, interval, backpressure))
                .expect("spawn the publisher")
        };
        let published = publisher.join().expect("the publisher thread");
        let export = &mut self.export;
        self.tokio_rt
            .block_on(async { tokio::time::timeout(ROW_TIMEOUT, export.flush()).await })
            .expect("the export stores everything in time");
        let stored = Instant::now();
        let counted = done
            .recv_timeout(ROW_TIMEOUT)
            .expect("the agent counts every signal in time");
        let deadline = Instant::now() + ROW_TIMEOUT;
        while self.import.stats().committed < committed {
            assert!(Instant::now() < deadline, "the import acknowledges in time");
            std::thread::sleep(Duration::from_micros(100));
        }
        let acked = Instant::now();
        Milestones {
            published,
            stored,
            counted,
            acked,
            cpu: cpu::Snapshot::now(self.server) - cpu_before,
        }
    }
}

fn one_way(
    tokio_rt: &tokio::runtime::Runtime,
    url: &str,
    row: OneWay,
    backpressure: Backpressure,
) -> OneWayResult {
    let stream = row.name.to_uppercase();
    let (a, b) = tokio_rt.block_on(async {
        let a = Bridge::connect(url).await.expect("connect A");
        let b = Bridge::connect(url).await.expect("connect B");
        let a = a.prefix(row.name).unwrap().stream(&stream).unwrap();
        let b = b.prefix(row.name).unwrap().stream(&stream).unwrap();
        (a, b)
    });
    let rt_a = Runtime::builder().workers(1).build().expect("runtime A");
    let rt_b = Runtime::builder().workers(1).build().expect("runtime B");
    let recorder = Recorder::new();
    let mailbox = row.import.max_ack_pending.max(1024) * 2;
    let agent = rt_b
        .spawn(&sink_spec(recorder.clone(), mailbox))
        .expect("spawn the sink");
    let (export, import) = tokio_rt.block_on(async {
        let import = b
            .import(row.import.clone(), ImportTarget::Agent(agent.addr()))
            .await
            .expect("import");
        let export = a
            .export(&rt_a.bus(), PATTERN, row.export.clone())
            .await
            .expect("export");
        (export, import)
    });
    let mut ends = Ends {
        tokio_rt,
        bus: rt_a.bus(),
        export,
        import,
        recorder,
        server: server_pid(url),
        backpressure,
    };

    // Warm-up: connections, stream files, consumer, allocator, caches.
    if row.warmup > 0 {
        ends.phase(row.warmup, None);
    }
    let export_before = ends.export.stats();
    let import_before = ends.import.stats();
    let m = ends.phase(row.signals, row.interval);
    let (latency, agent_duplicates, out_of_range, max_gap) = {
        let phase = ends.recorder.lock();
        (
            phase.latency.clone(),
            phase.duplicates,
            phase.out_of_range,
            Duration::from_nanos(phase.max_gap_ns),
        )
    };
    let Ends { export, import, .. } = ends;
    let (export_stats, import_stats, stream_messages) = tokio_rt.block_on(async {
        let export_stats = export.stop().await;
        let import_stats = import.stop().await;
        let js = async_nats::jetstream::new(a.client().clone());
        let mut info = js.get_stream(&stream).await.expect("the stream");
        let messages = info.info().await.expect("stream info").state.messages;
        let _ = js.delete_stream(&stream).await;
        (export_stats, import_stats, messages)
    });
    rt_a.shutdown();
    rt_b.shutdown();
    OneWayResult {
        name: row.name,
        signals: row.signals,
        elapsed: m.counted.saturating_duration_since(m.published.first),
        published_after: m.published.last - m.published.first,
        stored_after: m.stored.saturating_duration_since(m.published.first),
        acked_after: m.acked.saturating_duration_since(m.published.first),
        cpu: m.cpu,
        publisher_cpu: m.published.cpu,
        latency,
        lag: m.published.lag,
        retries: m.published.retries,
        retried_signals: m.published.retried_signals,
        agent_duplicates,
        out_of_range,
        max_gap,
        export: export_delta(export_stats, export_before),
        import: import_delta(import_stats, import_before),
        stream_messages,
    }
}

fn server_pid(url: &str) -> Option<u32> {
    url.rsplit(':').next().and_then(cpu::server_pid)
}

/// The raw JetStream row: what the server and client alone do on this
/// machine, without agentry.
struct RawResult {
    signals: u64,
    elapsed: Duration,
    stored_after: Duration,
    cpu: cpu::Snapshot,
}

/// The same pipeline with async-nats alone: `n` pre-encoded CloudEvents
/// (the bridge's wire form, a distinct `Nats-Msg-Id` each) published by
/// one task in windows of 1024 (as the export does), consumed by a durable
/// pull consumer (batch 512, max_ack_pending 8192) on a second connection
/// that acks each message. No encode, decode, bus or agent: the ceiling
/// the bridge works under.
///
/// With `ack_all` the consumer is `AckPolicy::All` and acknowledges only the
/// last message of every 512 (and the last one): the server's cost of
/// cumulative acknowledgement, which the bridge does not use (an ack-all
/// also covers deliveries the consumer never received).
fn raw_jetstream(
    tokio_rt: &tokio::runtime::Runtime,
    url: &str,
    n: u64,
    ack_all: bool,
) -> RawResult {
    use async_nats::jetstream::{self, consumer::pull, stream};
    use futures_util::StreamExt;

    let pid = server_pid(url);
    let payload = bytes::Bytes::from(probe(123_456).to_json_vec());
    tokio_rt.block_on(async {
        let producer = async_nats::connect(url).await.expect("connect P");
        let consumer = async_nats::connect(url).await.expect("connect C");
        let js_p = jetstream::new(producer);
        let js_c = jetstream::new(consumer.clone());
        let stream = js_p
            .get_or_create_stream(stream::Config {
                name: "RAW".into(),
                subjects: vec!["raw.>".into()],
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .expect("the raw stream");
        let pull = js_c
            .get_stream("RAW")
            .await
            .expect("the raw stream")
            .get_or_create_consumer(
                "raw",
                pull::Config {
                    durable_name: Some("raw".into()),
                    ack_policy: if ack_all {
                        jetstream::consumer::AckPolicy::All
                    } else {
                        jetstream::consumer::AckPolicy::Explicit
                    },
                    max_ack_pending: 8_192,
                    ..Default::default()
                },
            )
            .await
            .expect("the raw consumer");
        let mut messages = pull
            .stream()
            .max_messages_per_batch(512)
            .messages()
            .await
            .expect("the raw messages");
        let publish = |from: u64, to: u64| {
            let js = js_p.clone();
            let payload = payload.clone();
            async move {
                let mut seq = from;
                while seq < to {
                    let end = (seq + 1_024).min(to);
                    let mut acks = Vec::with_capacity(1_024);
                    for i in seq..end {
                        let message = jetstream::message::PublishMessage::build()
                            .payload(payload.clone())
                            .message_id(i.to_string())
                            .header("content-type", "application/cloudevents+json");
                        acks.push(
                            js.send_publish("raw.bench.tick._", message)
                                .await
                                .expect("publish"),
                        );
                    }
                    for ack in acks {
                        ack.await.expect("stored");
                    }
                    seq = end;
                }
                Instant::now()
            }
        };
        let mut consume = async |count: u64| {
            for i in 1..=count {
                let message = messages.next().await.expect("a message").expect("no error");
                if !ack_all || i % 512 == 0 || i == count {
                    message.ack().await.expect("ack");
                }
            }
            Instant::now()
        };
        // Warm-up, then the measured run.
        let warmup = (n / 10).min(20_000);
        let (_, _) = tokio::join!(tokio::spawn(publish(0, warmup)), consume(warmup));
        let before = cpu::Snapshot::now(pid);
        let start = Instant::now();
        let (stored, consumed) =
            tokio::join!(tokio::spawn(publish(warmup, warmup + n)), consume(n));
        let stored = stored.expect("the publisher task");
        // The acks are fire-and-forget publishes: flush them out.
        consumer.flush().await.expect("flush the acks");
        let cpu = cpu::Snapshot::now(pid) - before;
        drop(messages);
        let _ = stream;
        let _ = js_p.delete_stream("RAW").await;
        RawResult {
            signals: n,
            elapsed: consumed.saturating_duration_since(start),
            stored_after: stored.saturating_duration_since(start),
            cpu,
        }
    })
}

/// The measurements of the remote call row.
struct CallResult {
    calls: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
    sum_ns: u128,
}

fn remote_calls(tokio_rt: &tokio::runtime::Runtime, url: &str, calls: u64) -> CallResult {
    let rt_b = Runtime::builder().workers(1).build().expect("runtime B");
    let agent = rt_b
        .spawn(&AgentSpec::<u64, u64>::new(0).on(
            "bench.call",
            |n: &mut u64, _: &mut Instruction| {
                *n += 1;
                Ok(*n)
            },
        ))
        .expect("spawn the served agent");
    let result = tokio_rt.block_on(async {
        let a = Bridge::connect(url).await.expect("connect A");
        let b = Bridge::connect(url).await.expect("connect B");
        let a = a.prefix("calls").unwrap();
        let b = b.prefix("calls").unwrap();
        let service = b.serve(&agent, "counter").await.expect("serve");
        // `serve` returns once the subscription is written to B's
        // connection, not once the server has it: a request from A's
        // connection can still find no responders. One call over B's own
        // connection (the server reads it in order: subscription first)
        // makes sure it is in place.
        b.remote::<u64>("counter")
            .expect("remote on B")
            .call(
                Signal::json("bench.call", "/bench/nats", &0).expect("valid"),
                Duration::from_secs(5),
            )
            .await
            .expect("the served agent answers on its own connection");
        let remote = a.remote::<u64>("counter").expect("remote");
        let call = |i: u64| {
            let signal = Signal::json("bench.call", "/bench/nats", &i).expect("valid");
            remote.call(signal, Duration::from_secs(5))
        };
        for i in 0..calls.div_ceil(10).max(10) {
            call(i).await.expect("warm-up call");
        }
        let mut latency = histogram();
        let mut sum_ns = 0u128;
        let start = Instant::now();
        for i in 0..calls {
            let signal = Signal::json("bench.call", "/bench/nats", &i).expect("valid");
            let t = Instant::now();
            remote
                .call(signal, Duration::from_secs(5))
                .await
                .expect("the remote call");
            let ns = t.elapsed().as_nanos();
            sum_ns += ns;
            latency.saturating_record(u64::try_from(ns).unwrap_or(u64::MAX).max(1));
        }
        let elapsed = start.elapsed();
        drop(service);
        CallResult {
            calls,
            elapsed,
            latency,
            sum_ns,
        }
    });
    rt_b.shutdown();
    result
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1_000.0
}

fn arg(args: &[String], name: &str) -> Option<u64> {
    let at = args.iter().position(|a| a == name)?;
    let value = args.get(at + 1)?;
    Some(
        value
            .replace('_', "")
            .parse()
            .unwrap_or_else(|e| panic!("{name} {value}: {e}")),
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn command_output(program: &std::path::Path, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("({e})"))
}

/// What the command line asks for.
struct Config {
    signals: u64,
    unbatched: u64,
    rate: u64,
    secs: u64,
    calls: u64,
    backpressure: Backpressure,
    rows: Vec<String>,
}

/// The `quiet` row: a few signals a second, so the import's pull requests
/// expire (1 s) between them; a signal must not wait for a new request.
const QUIET_RATE: u64 = 4;
const QUIET_SECS: u64 = 3;

/// Every row, in the order they run.
const ROWS: [&str; 7] = [
    "batched",
    "unbatched",
    "paced",
    "quiet",
    "call",
    "raw",
    "raw-ack-all",
];

impl Config {
    fn from_args() -> Config {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let signals = arg(&args, "--signals").unwrap_or(200_000);
        let config = Config {
            signals,
            unbatched: arg(&args, "--unbatched").unwrap_or(signals / 20),
            rate: arg(&args, "--rate").unwrap_or(10_000),
            secs: arg(&args, "--secs").unwrap_or(3),
            calls: arg(&args, "--calls").unwrap_or(5_000),
            backpressure: match arg(&args, "--retry-sleep-us") {
                Some(us) => Backpressure::Sleep(Duration::from_micros(us.max(1))),
                None if args.iter().any(|a| a == "--spin") => Backpressure::Spin,
                None => Backpressure::Wait,
            },
            rows: args
                .iter()
                .position(|a| a == "--rows")
                .and_then(|at| args.get(at + 1))
                .map_or_else(
                    || ROWS.iter().map(|r| (*r).to_owned()).collect(),
                    |list| list.split(',').map(str::to_owned).collect(),
                ),
        };
        assert!(
            config.signals >= 20
                && config.unbatched >= 10
                && config.rate > 0
                && config.secs > 0
                && config.calls > 0,
            "--signals, --unbatched, --rate, --secs and --calls must be positive"
        );
        for row in &config.rows {
            assert!(
                ROWS.contains(&row.as_str()),
                "--rows takes a comma-separated list of {ROWS:?}"
            );
        }
        config
    }

    fn runs(&self, row: &str) -> bool {
        self.rows.iter().any(|r| r == row)
    }

    /// The arguments that reproduce this run.
    fn command(&self) -> String {
        let mut command = format!(
            "cargo bench --features nats --bench nats -- --signals {} --unbatched {} --rate {} --secs {} --calls {}",
            self.signals, self.unbatched, self.rate, self.secs, self.calls
        );
        match self.backpressure {
            Backpressure::Wait => {}
            Backpressure::Spin => command += " --spin",
            Backpressure::Sleep(pause) => {
                command += &format!(" --retry-sleep-us {}", pause.as_micros());
            }
        }
        if self.rows.len() != ROWS.len() {
            command += &format!(" --rows {}", self.rows.join(","));
        }
        command
    }
}

fn main() {
    let config = Config::from_args();
    now_ns();

    let Some(server) = nats_server::NatsServer::start() else {
        println!("nats bench: nats-server not found; nothing measured");
        return;
    };
    let url = server.url();
    let binary = nats_server::binary().expect("found, since it started");

    println!("NATS JetStream bridge, one way and round trip, through a local nats-server");
    println!("reproduce: cargo bench --features nats --bench nats");
    println!("this run:  {}", config.command());
    println!(
        "machine: nproc {} ({}), load average {} at the start",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| s
                .lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned()))
            .unwrap_or_else(|| "unknown CPU".to_owned()),
        load_average(),
    );
    println!(
        "server: {} ({}), file store; agentry features {}",
        command_output(&binary, &["--version"]),
        binary.display(),
        common::features(),
    );
    let sample = probe(123_456);
    println!(
        "signal: `{TYPE}`, JSON payload {} B, CloudEvent on the wire {} B; threads: tokio 2 workers, runtimes A and B 1 worker each, 1 publisher; backpressure: {}",
        sample.data().len(),
        sample.to_json_vec().len(),
        config.backpressure,
    );
    println!();

    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tokio-worker")
        .enable_all()
        .build()
        .expect("tokio runtime");

    let signals = config.signals;
    let (rate, secs, calls) = (config.rate, config.secs, config.calls);
    let rows = [
        OneWay {
            name: "batched",
            signals,
            warmup: (signals / 10).min(20_000),
            export: ExportOptions::default(),
            import: ImportOptions::new("sink", PATTERN),
            interval: None,
        },
        OneWay {
            name: "unbatched",
            signals: config.unbatched,
            warmup: (config.unbatched / 10).min(1_000),
            export: ExportOptions {
                window: 1,
                ..ExportOptions::default()
            },
            import: ImportOptions {
                batch: 1,
                max_ack_pending: 1,
                ..ImportOptions::new("sink", PATTERN)
            },
            interval: None,
        },
        OneWay {
            name: "paced",
            signals: rate * secs,
            warmup: (signals / 10).min(20_000),
            export: ExportOptions::default(),
            import: ImportOptions::new("sink", PATTERN),
            interval: Some(Duration::from_secs(1) / u32::try_from(rate).expect("rate fits u32")),
        },
        OneWay {
            name: "quiet",
            signals: QUIET_RATE * QUIET_SECS,
            warmup: QUIET_RATE,
            export: ExportOptions::default(),
            import: ImportOptions::new("sink", PATTERN),
            interval: Some(Duration::from_secs(1) / u32::try_from(QUIET_RATE).expect("fits u32")),
        },
    ];
    let mut results = Vec::new();
    for row in rows {
        if config.runs(row.name) {
            eprintln!("running {} ({} signals)...", row.name, row.signals);
            results.push(one_way(&tokio_rt, &url, row, config.backpressure));
        }
    }
    let call = config.runs("call").then(|| {
        eprintln!("running remote call ({calls} calls)...");
        remote_calls(&tokio_rt, &url, calls)
    });
    let raw = config.runs("raw").then(|| {
        eprintln!("running raw JetStream ({signals} messages)...");
        raw_jetstream(&tokio_rt, &url, signals, false)
    });
    let raw_ack_all = config.runs("raw-ack-all").then(|| {
        eprintln!("running raw JetStream, cumulative acks ({signals} messages)...");
        raw_jetstream(&tokio_rt, &url, signals, true)
    });
    let load_after = load_average();

    println!("One way: bus publish (A) -> Export -> JetStream -> Import -> agent (B)");
    println!(
        "{:<10} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} | {:>8} {:>8} {:>8} {:>8}",
        "row",
        "signals",
        "signals/s",
        "mean µs",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
        "publish",
        "stored",
        "counted",
        "acked"
    );
    for r in &results {
        println!(
            "{:<10} {:>8} {:>10.0} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} | {:>7.3}s {:>7.3}s {:>7.3}s {:>7.3}s",
            r.name,
            r.signals,
            r.signals as f64 / r.elapsed.as_secs_f64(),
            r.latency.mean() / 1_000.0,
            us(r.latency.value_at_quantile(0.50)),
            us(r.latency.value_at_quantile(0.99)),
            us(r.latency.value_at_quantile(0.999)),
            us(r.latency.max()),
            r.published_after.as_secs_f64(),
            r.stored_after.as_secs_f64(),
            r.elapsed.as_secs_f64(),
            r.acked_after.as_secs_f64(),
        );
    }
    println!(
        "(signals/s: first publish to the agent's commit of the last signal; latency: signal built -> agent action, per signal; timeline from the first publish: publisher loop done (backpressure retries included), JetStream acknowledged the export's last publish (seen after the publisher ends), agent counted the last signal, import acknowledged the last message)"
    );
    println!();
    println!("Counters (measured phase only; warm-up excluded)");
    println!(
        "{:<10} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>5} {:>7} {:>8} | {:>9} {:>9} {:>6} {:>5} {:>5} | {:>5} {:>5} {:>9}",
        "row",
        "pub retry",
        "signals",
        "max gap",
        "accepted",
        "stored",
        "dup",
        "retried",
        "refused",
        "received",
        "committed",
        "redel",
        "dead",
        "skip",
        "a.dup",
        "a.oor",
        "stream"
    );
    for r in &results {
        println!(
            "{:<10} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>5} {:>7} {:>8} | {:>9} {:>9} {:>6} {:>5} {:>5} | {:>5} {:>5} {:>9}",
            r.name,
            r.retries,
            r.retried_signals,
            format!("{:.1}ms", r.max_gap.as_secs_f64() * 1e3),
            r.export.accepted,
            r.export.stored,
            r.export.duplicates,
            r.export.retried,
            r.export.refused,
            r.import.received,
            r.import.committed,
            r.import.redelivery,
            r.import.dead_lettered,
            r.import.skipped,
            r.agent_duplicates,
            r.out_of_range,
            r.stream_messages,
        );
        let ok = r.import.committed == r.signals
            && r.export.stored == r.signals
            && r.export.duplicates == 0
            && r.agent_duplicates == 0;
        if !ok {
            println!(
                "  ^ {}: not exactly once end to end (see the counters)",
                r.name
            );
        }
        if r.max_gap > Duration::from_secs(1) {
            println!(
                "  ^ {}: the agent went {:.1} s without a signal: a stall (compare `stored` and `counted` in the timeline)",
                r.name,
                r.max_gap.as_secs_f64()
            );
        }
    }
    println!(
        "(pub retry: publishes refused by the full export buffer and repeated, signals: how many signals that was; max gap: the longest time the agent went without a signal (from the phase start); export: accepted stored dup retried refused; import: received committed redel(ivery) dead(-lettered) skip(ped); a.dup: sequence numbers the agent saw twice, a.oor: outside the phase; stream: messages in the stream, warm-up included)"
    );
    for r in &results {
        if let Some(lag) = &r.lag {
            let (rate, secs) = if r.name == "quiet" {
                (QUIET_RATE, QUIET_SECS)
            } else {
                (rate, secs)
            };
            println!(
                "{}: target {rate} signals/s for {secs} s; publisher lag behind its schedule p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
                r.name,
                us(lag.value_at_quantile(0.50)),
                us(lag.value_at_quantile(0.99)),
                us(lag.max()),
            );
        }
    }
    println!();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "CPU seconds in the measured phase (first publish to last ack; /proc, 10 ms ticks; {cpus} CPUs = {cpus} CPU-s per wall second)"
    );
    println!(
        "{:<10} {:>7} | {:>9} {:>9} {:>9} {:>9} {:>9} | {:>11} {:>12} | {:>9}",
        "row",
        "wall",
        "publisher",
        "tokio",
        "agentry",
        "rest",
        "nats-srv",
        "other procs",
        "machine idle",
        "µs/signal"
    );
    let cpu_row = |name: &str, wall: Duration, publisher: Option<u64>, c: cpu::Snapshot, n: u64| {
        let tick = |t: u64| format!("{:.2}", t as f64 * cpu::TICK);
        let rest = c
            .process
            .saturating_sub(c.tokio + c.agentry + publisher.unwrap_or(0));
        println!(
            "{:<11} {:>5.2}s | {:>9} {:>9} {:>9} {:>9} {:>9} | {:>11} {:>12} | {:>9.1}",
            name,
            wall.as_secs_f64(),
            publisher.map_or_else(|| "-".to_owned(), tick),
            tick(c.tokio),
            tick(c.agentry),
            tick(rest),
            tick(c.server),
            tick(c.machine_busy.saturating_sub(c.process + c.server)),
            tick(c.machine_all.saturating_sub(c.machine_busy)),
            (c.process + c.server) as f64 * cpu::TICK * 1e6 / n as f64,
        );
    };
    for r in &results {
        cpu_row(
            r.name,
            r.acked_after,
            Some(r.publisher_cpu),
            r.cpu,
            r.signals,
        );
    }
    if let Some(raw) = &raw {
        cpu_row("raw", raw.elapsed, None, raw.cpu, raw.signals);
    }
    if let Some(raw) = &raw_ack_all {
        cpu_row("raw-ack-all", raw.elapsed, None, raw.cpu, raw.signals);
    }
    println!(
        "(publisher: bus publish incl. the export sink's JSON encode; tokio: NATS client I/O, export publisher, import fetch + decode + acks; agentry: both runtimes' workers (the agent's action); rest: other threads of this process (raw: its publisher task runs on tokio); other procs: the rest of the machine's busy time; µs/signal: this process + nats-server CPU per signal)"
    );
    if raw.is_some() || raw_ack_all.is_some() {
        println!();
        println!(
            "Raw JetStream, no agentry (async-nats only: pre-encoded {} B messages, publish window 1024, pull batch 512, max_ack_pending 8192; raw: ack each; raw-ack-all: AckPolicy::All, one ack per 512)",
            sample.to_json_vec().len()
        );
    }
    for (name, raw) in [("raw", &raw), ("raw-ack-all", &raw_ack_all)] {
        if let Some(raw) = raw {
            println!(
                "{name:<12} {:>8} messages: {:>8.0} messages/s end to end (last ack), publish side stored all after {:.3} s",
                raw.signals,
                raw.signals as f64 / raw.elapsed.as_secs_f64(),
                raw.stored_after.as_secs_f64(),
            );
        }
    }
    if let Some(call) = &call {
        println!();
        println!(
            "Remote call: RemoteAgent::call (A) -> NATS request/reply -> served agent (B), sequential"
        );
        println!(
            "{:<12} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "row", "calls", "calls/s", "mean µs", "p50 µs", "p99 µs", "p99.9 µs", "max µs"
        );
        println!(
            "{:<12} {:>7} {:>10.0} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            "remote call",
            call.calls,
            call.calls as f64 / call.elapsed.as_secs_f64(),
            call.sum_ns as f64 / call.calls as f64 / 1_000.0,
            us(call.latency.value_at_quantile(0.50)),
            us(call.latency.value_at_quantile(0.99)),
            us(call.latency.value_at_quantile(0.999)),
            us(call.latency.max()),
        );
    }
    println!();
    println!("Summary (load average {load_after} at the end)");
    for r in &results {
        let rate = r.signals as f64 / r.elapsed.as_secs_f64();
        match r.name {
            "batched" => println!(
                "  one way, batched: {rate:.0} signals/s ({} the issue's target of 100,000)",
                if rate >= 100_000.0 { "meets" } else { "below" }
            ),
            "unbatched" => println!(
                "  one way, unbatched (window 1, batch 1, max_ack_pending 1; {} signals{}): {rate:.0} signals/s",
                r.signals,
                if r.signals * 20 == config.signals {
                    ", N/20"
                } else {
                    ""
                },
            ),
            "quiet" => println!(
                "  a quiet consumer ({QUIET_RATE} signals/s for {QUIET_SECS} s, across pull request expiries): latency mean {:.1} µs, max {:.1} µs",
                r.latency.mean() / 1_000.0,
                us(r.latency.max()),
            ),
            _ => println!(
                "  cross-process latency at {} signals/s: mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs",
                config.rate,
                r.latency.mean() / 1_000.0,
                us(r.latency.value_at_quantile(0.50)),
                us(r.latency.value_at_quantile(0.99)),
            ),
        }
    }
    if let Some(call) = &call {
        println!(
            "  remote call round trip: mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs",
            call.sum_ns as f64 / call.calls as f64 / 1_000.0,
            us(call.latency.value_at_quantile(0.50)),
            us(call.latency.value_at_quantile(0.99)),
        );
    }
    drop(tokio_rt);
    drop(server);
}
