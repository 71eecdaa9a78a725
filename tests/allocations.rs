//! Heap allocations per dispatched signal, counted by a counting global
//! allocator (`stats_alloc`, wrapping the system allocator) in this test binary
//! of its own. Every test here holds `MEASURING` so concurrent tests cannot
//! pollute a count. Run with `-- --nocapture` to see the counts; `.ci/run`
//! does, for every feature set.

use agentry::imp::{PoolKind, Strategy, enabled_features};
use agentry::{AgentSpec, Instruction, Runtime, Signal};
use bytes::Bytes;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::sync::Mutex;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

static MEASURING: Mutex<()> = Mutex::new(());

const SIGNALS: usize = 10_000;
/// Signals queued between two drives of the deterministic runtime.
const BURST: usize = 100;
const FAN_OUT: usize = 100;
const FAN_OUT_PAYLOAD: usize = 64 * 1024;

fn zero_copy() -> bool {
    enabled_features().contains(&"zero-copy")
}

fn strategies() -> [(&'static str, Strategy); 5] {
    let pooled = Strategy {
        pool: PoolKind::FreeList,
        ..Strategy::PLAIN
    };
    [
        ("plain", Strategy::PLAIN),
        ("pooling", pooled),
        (
            "pooling+fast-path",
            Strategy {
                fast_path: true,
                ..pooled
            },
        ),
        (
            "pooling+batching",
            Strategy {
                batching: true,
                ..pooled
            },
        ),
        ("all runtime optimizations", Strategy::OPTIMIZED),
    ]
}

/// Allocations of `run`, measured three times (with `between` run outside
/// the measurement after each): the least of the three. The counter is
/// process-wide, and the test harness's own thread allocates when it
/// reports a test that ran beside this one; such noise only ever adds, so
/// the least is the runtime's own count.
fn least_of_three(mut run: impl FnMut(), mut between: impl FnMut()) -> stats_alloc::Stats {
    let mut least: Option<stats_alloc::Stats> = None;
    for _ in 0..3 {
        let region = Region::new(GLOBAL);
        run();
        let stats = region.change();
        between();
        let key = |s: &stats_alloc::Stats| (s.allocations, s.reallocations, s.bytes_allocated);
        if least.as_ref().is_none_or(|l| key(&stats) < key(l)) {
            least = Some(stats);
        }
    }
    least.expect("measured three times")
}

fn counter() -> AgentSpec<u64> {
    AgentSpec::new(0).on("tick", |n: &mut u64, ins: &mut Instruction| {
        *n += ins.data().len() as u64;
        Ok(())
    })
}

/// Builds, sends and processes `n` signals whose payload shares `payload`.
fn dispatch(rt: &Runtime, agent: &agentry::AgentRef<u64>, payload: &Bytes, n: usize) {
    for i in 0..n {
        let signal = Signal::builder("tick", "/alloc-test")
            .data(payload.clone())
            .build()
            .expect("valid signal");
        agent.send(signal).expect("accepted");
        if i % BURST == BURST - 1 {
            rt.run_until_idle().expect("deterministic");
        }
    }
    rt.run_until_idle().expect("deterministic");
}

#[test]
fn a_warm_pooled_zero_copy_runtime_dispatches_without_allocating() {
    let _guard = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    let payload = Bytes::from(vec![7u8; 256]);
    println!(
        "\nalloc: dispatch of {SIGNALS} signals (build + send + process, deterministic), features [{}]",
        enabled_features().join(", ")
    );
    let mut plain_allocations = None;
    for (name, strategy) in strategies() {
        let rt = Runtime::builder()
            .deterministic()
            .strategy(strategy)
            .build()
            .unwrap();
        let agent = rt.spawn(&counter()).unwrap();
        dispatch(&rt, &agent, &payload, 2 * BURST); // warm-up: pools, queues, memo
        let stats = least_of_three(|| dispatch(&rt, &agent, &payload, SIGNALS), || {});
        println!(
            "alloc:   {name:<26} {:>7} allocations, {:>9} bytes ({:.2} allocations per signal)",
            stats.allocations,
            stats.bytes_allocated,
            stats.allocations as f64 / SIGNALS as f64
        );
        assert_eq!(
            *agent.state().unwrap(),
            256 * (3 * SIGNALS + 2 * BURST) as u64
        );
        if zero_copy() && strategy.pool == PoolKind::FreeList {
            assert_eq!(
                (stats.allocations, stats.reallocations),
                (0, 0),
                "{name}: a warm pooled zero-copy runtime must not allocate"
            );
        }
        if strategy.pool == PoolKind::Allocate {
            assert!(
                stats.allocations >= SIGNALS,
                "{name}: the plain runtime allocates per signal"
            );
            plain_allocations = Some(stats.allocations);
        } else {
            // In every feature set (features.md: plain 3-4 per signal, pooled
            // 0-1): pooling saves at least the instruction box per signal.
            let plain = plain_allocations.expect("plain is measured first");
            assert!(
                stats.allocations + SIGNALS <= plain,
                "{name}: {} allocations, not at least one per signal fewer than plain's {plain}",
                stats.allocations
            );
        }
    }
    assert!(plain_allocations.is_some(), "plain was not measured");
}

#[test]
fn zero_copy_fan_out_allocates_a_tiny_fraction_of_a_copying_one() {
    let _guard = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    // What a copying fan-out must allocate at least: one payload per copy.
    let copying_floor = (FAN_OUT - 1) * FAN_OUT_PAYLOAD;
    println!(
        "\nalloc: publish of a {FAN_OUT_PAYLOAD} B payload to {FAN_OUT} agent subscribers, features [{}]",
        enabled_features().join(", ")
    );
    for (name, strategy) in strategies() {
        let rt = Runtime::builder()
            .deterministic()
            .strategy(strategy)
            .build()
            .unwrap();
        let bus = rt.bus();
        let agents: Vec<_> = (0..FAN_OUT)
            .map(|_| rt.spawn(&counter()).unwrap())
            .collect();
        for a in &agents {
            bus.subscribe_agent("tick", &a.addr()).unwrap();
        }
        let payload = Bytes::from(vec![1u8; FAN_OUT_PAYLOAD]);
        let publish = || {
            let signal = Signal::builder("tick", "/fan")
                .data(payload.clone())
                .build()
                .unwrap();
            let report = bus.publish(signal).unwrap();
            assert_eq!(report.delivered, FAN_OUT);
        };
        publish(); // warm-up
        rt.run_until_idle().unwrap();
        let stats = least_of_three(publish, || {
            rt.run_until_idle().unwrap();
        });
        println!(
            "alloc:   {name:<26} {:>5} allocations, {:>9} bytes ({:.3}% of the {copying_floor} B a copying fan-out needs at least)",
            stats.allocations,
            stats.bytes_allocated,
            100.0 * stats.bytes_allocated as f64 / copying_floor as f64
        );
        if zero_copy() {
            assert!(
                stats.bytes_allocated * 100 <= copying_floor,
                "{name}: zero-copy fan-out allocated {} B, more than 1% of {copying_floor} B",
                stats.bytes_allocated
            );
            // Pooled, a warm fan-out allocates nothing at all (this caught the
            // nested route lookup that took a fresh scratch buffer).
            if strategy.pool != PoolKind::Allocate {
                assert_eq!(
                    (stats.allocations, stats.reallocations),
                    (0, 0),
                    "{name}: a warm pooled zero-copy fan-out allocated"
                );
            }
        } else {
            assert!(
                stats.bytes_allocated >= copying_floor,
                "{name}: a copying fan-out allocated only {} B",
                stats.bytes_allocated
            );
        }
    }
}

/// Informational: the per-strategy figures are printed, not compared (free
/// lists are per thread, and here instructions are taken on the sending
/// thread and returned on a worker, so pooling's saving depends on
/// scheduling). Only what holds however threads interleave is asserted:
/// every signal is processed, and the plain runtime allocates at least its
/// instruction box per signal.
#[test]
fn threaded_dispatch_allocations_are_reported() {
    let _guard = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    let payload = Bytes::from(vec![7u8; 256]);
    println!(
        "\nalloc: threaded send of {SIGNALS} signals from one thread, 2 workers (informational)"
    );
    for (name, strategy) in strategies() {
        let rt = Runtime::builder()
            .workers(2)
            .mailbox_capacity(SIGNALS)
            .strategy(strategy)
            .build()
            .unwrap();
        let agent = rt.spawn(&counter()).unwrap();
        let send_all = |n: usize| {
            for _ in 0..n {
                let s = Signal::builder("tick", "/alloc-test")
                    .data(payload.clone())
                    .build()
                    .unwrap();
                agent.send(s).unwrap();
            }
            assert!(rt.wait_idle(std::time::Duration::from_secs(30)));
        };
        send_all(SIGNALS); // warm-up
        let region = Region::new(GLOBAL);
        send_all(SIGNALS);
        let stats = region.change();
        println!(
            "alloc:   {name:<26} {:>7} allocations ({:.2} per signal, informational)",
            stats.allocations,
            stats.allocations as f64 / SIGNALS as f64
        );
        assert_eq!(*agent.state().unwrap(), 256 * 2 * SIGNALS as u64, "{name}");
        if strategy.pool == PoolKind::Allocate {
            assert!(
                stats.allocations >= SIGNALS,
                "{name}: the plain runtime allocates an instruction per signal"
            );
        }
    }
}
