//! Memory: the cost of an idle agent and of a queued signal, and stability
//! over long runs. Live heap bytes come from a counting global allocator
//! (`stats_alloc`) in this test binary of its own; resident memory from
//! `/proc/self/status`. The tests hold `MEASURING` so none pollutes another's
//! counts. Release builds run the full sizes of the issue (100,000 agent
//! create/stop cycles, 1,000,000 signals); debug builds a tenth. Run with
//! `-- --nocapture` to see the figures.

mod common;
use agentry::{AgentSpec, Instruction, Runtime, Signal};
use common::{counter_spec, quiet_panics, sig, strategies};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::sync::Mutex;
use std::time::Duration;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

static MEASURING: Mutex<()> = Mutex::new(());

const MIB: i64 = 1024 * 1024;
/// Resident memory also moves with the allocator's own caching and with other
/// threads of the process, so its bound has slack; the live heap is exact.
const RSS_SLACK: i64 = 4 * MIB;

fn scale(n: usize) -> usize {
    if cfg!(debug_assertions) { n / 10 } else { n }
}

/// Heap bytes allocated and not yet freed since `region` started.
fn live(region: &Region<'_, System>) -> i64 {
    let c = region.change();
    c.bytes_allocated as i64 - c.bytes_deallocated as i64 + c.bytes_reallocated as i64
}

/// Resident set size in bytes.
fn rss() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

fn tiny() -> AgentSpec<u64> {
    AgentSpec::new(0).on("t", |n: &mut u64, _: &mut Instruction| {
        *n += 1;
        Ok(())
    })
}

#[test]
fn an_idle_agent_and_a_queued_signal_are_small() {
    let _guard = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    const N: usize = 10_000;
    println!("\nmemory per idle agent and per queued signal (live heap bytes, {N} of each)");
    for (name, strategy) in strategies() {
        let rt = Runtime::builder()
            .deterministic()
            .strategy(strategy)
            .mailbox_capacity(2 * N)
            .build()
            .unwrap();
        let spec = tiny();
        let warm: Vec<_> = (0..16).map(|_| rt.spawn(&spec).unwrap()).collect();
        let region = Region::new(GLOBAL);
        let agents: Vec<_> = (0..N).map(|_| rt.spawn(&spec).unwrap()).collect();
        // The handles themselves (one Arc pointer each) are the caller's.
        let per_agent =
            (live(&region) - (agents.capacity() * size_of::<usize>()) as i64) / N as i64;
        let region = Region::new(GLOBAL);
        for _ in 0..N {
            warm[0].send(Signal::new("t", "/m", "").unwrap()).unwrap();
        }
        let per_signal = live(&region) / N as i64;
        // The observability features carry the sender's span and the accept
        // time with each queued signal (zero bytes without them).
        let origin = size_of::<agentry::imp::observe::Origin>() as i64;
        let target = 256 + origin;
        println!(
            "  {name:<10} per idle agent {per_agent} B (target <= 512), per queued signal {per_signal} B + payload (target <= {target})"
        );
        assert!(per_agent <= 512, "{name}: {per_agent} B per idle agent");
        assert!(
            per_signal <= target,
            "{name}: {per_signal} B per queued signal"
        );
        drop(agents);
    }
}

/// Bytes per pending timer, with a million pending (a tenth in debug):
/// the queue entry (the signal inline, its target, period) in the
/// `BTreeMap` plus the cancel index; the signals themselves are built
/// before the count starts (they are the caller's either way).
#[test]
fn a_million_pending_timers_fit_at_a_stated_size() {
    let _guard = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    let n = scale(1_000_000);
    let rt = Runtime::builder().deterministic().build().unwrap();
    let agent = rt.spawn(&tiny()).unwrap();
    let signals: Vec<Signal> = (0..n)
        .map(|_| Signal::new("t", "/m", "").unwrap())
        .collect();
    let mut handles = Vec::with_capacity(n);
    let region = Region::new(GLOBAL);
    for (i, signal) in signals.into_iter().enumerate() {
        let delay = Duration::from_secs(3600) + Duration::from_micros(i as u64 % 4096);
        handles.push(agent.send_after(signal, delay).unwrap());
    }
    // The handles (a weak pointer and an id each) are the caller's.
    let bytes = live(&region) - (handles.capacity() * size_of::<agentry::TimerHandle>()) as i64;
    let per_timer = bytes / n as i64;
    println!("\nmemory per pending timer ({n} pending): {per_timer} B (target <= 320)");
    assert_eq!(rt.pending_timers(), n);
    assert!(per_timer <= 320, "{per_timer} B per pending timer");
    let report = rt.shutdown();
    assert_eq!(report.pending_timers.len(), n);
}

#[test]
fn agent_create_stop_cycles_do_not_grow_memory() {
    let _guard = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    let cycles = scale(100_000);
    println!(
        "\n{cycles} agent create/stop cycles after {} of warm-up",
        cycles / 10
    );
    for (name, strategy) in strategies() {
        let rt = common::threaded(strategy).build().unwrap();
        let spec = counter_spec();
        let cycle = |n: usize| {
            for i in 0..n {
                let a = rt.spawn(&spec).unwrap();
                if i % 2 == 0 {
                    a.send(sig("add", "1")).unwrap();
                }
                let _ = a.stop();
            }
        };
        cycle(cycles / 10);
        let (region, rss_before) = (Region::new(GLOBAL), rss());
        cycle(cycles);
        let (heap, resident) = (live(&region), rss() - rss_before);
        println!("  {name:<10} live heap {heap:+} B, resident {resident:+} B");
        assert!(heap < MIB, "{name}: the live heap grew by {heap} B");
        assert!(
            resident < RSS_SLACK,
            "{name}: resident memory grew by {resident} B"
        );
        assert_eq!(rt.metrics().live_agents, 0);
    }
}

#[test]
fn a_million_signals_through_a_warm_runtime_do_not_grow_memory() {
    let _guard = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    let signals = scale(1_000_000);
    println!("\n{signals} signals through a warm 2-worker runtime, 8 agents");
    for (name, strategy) in strategies() {
        let rt = common::threaded(strategy)
            .mailbox_capacity(1024)
            .build()
            .unwrap();
        let agents: Vec<_> = (0..8).map(|_| rt.spawn(&counter_spec()).unwrap()).collect();
        let run = |n: usize| {
            for i in 0..n {
                let mut s = sig("add", "1");
                loop {
                    match agents[i % agents.len()].send(s) {
                        Ok(()) => break,
                        Err(e) => {
                            s = e.into_signal();
                            std::thread::yield_now();
                        }
                    }
                }
            }
            assert!(rt.wait_idle(Duration::from_secs(120)));
        };
        run(signals / 10);
        let (region, rss_before) = (Region::new(GLOBAL), rss());
        run(signals);
        let (heap, resident) = (live(&region), rss() - rss_before);
        println!("  {name:<10} live heap {heap:+} B, resident {resident:+} B");
        assert!(heap < MIB, "{name}: the live heap grew by {heap} B");
        assert!(
            resident < RSS_SLACK,
            "{name}: resident memory grew by {resident} B"
        );
        let total: i64 = agents.iter().map(|a| *a.state().unwrap()).sum();
        assert_eq!(total as usize, signals + signals / 10);
    }
}

#[test]
fn ten_thousand_panics_do_not_grow_memory() {
    let _guard = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    quiet_panics();
    println!("\n10000 panicking calls after 1000 of warm-up");
    for (name, strategy) in strategies() {
        let rt = common::threaded(strategy).build().unwrap();
        let a = rt.spawn(&counter_spec()).unwrap();
        let panics = |n: usize| {
            for _ in 0..n {
                let _ = a
                    .call(sig("panic", ""), Duration::from_secs(10))
                    .unwrap_err();
            }
        };
        panics(1_000);
        let (region, rss_before) = (Region::new(GLOBAL), rss());
        panics(10_000);
        let (heap, resident) = (live(&region), rss() - rss_before);
        println!("  {name:<10} live heap {heap:+} B, resident {resident:+} B");
        assert!(heap < 64 * 1024, "{name}: the live heap grew by {heap} B");
        assert!(
            resident < RSS_SLACK,
            "{name}: resident memory grew by {resident} B"
        );
        assert_eq!(*a.state().unwrap(), 0);
    }
}
