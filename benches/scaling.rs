//! Worker scaling (wall clock): does a second worker thread double the
//! throughput of many agents?
//!
//! `scaling/ring`: 1,000 agents in a ring, 64 tokens circulating, each
//! token hopping 200 times. A hop is one instruction: the action does a
//! fixed amount of arithmetic (about a microsecond, standing in for real
//! work), builds the next signal and `send_to`s the next agent. No thread
//! outside the runtime produces anything after the 64 seeds, so on this
//! 2-core machine nothing but the workers competes for the cores: the
//! producer is off the critical path by construction (the main thread
//! blocks on a channel until the last token lands). Run with 1 and with 2
//! workers; the ratio of the two throughputs is the scaling.
//!
//! The ring runs twice: with the default idle spin (10 µs) and with 50 µs
//! (`ring/N_workers_idle_spin_50us`), which shows what a longer spin buys a
//! runtime whose cores nobody else needs (`RuntimeBuilder::idle_spin`).
//!
//! `scaling/floor`: the same arithmetic on plain threads (1, then 2), no
//! runtime at all: the best scaling this machine's two cores allow (two
//! vCPUs may share one physical core).

mod common;

use agentry::{AgentAddr, AgentSpec, Instruction, Runtime, Signal};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crossbeam::channel::{Sender, bounded};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const AGENTS: usize = 1_000;
const TOKENS: usize = 64;
const HOPS: u32 = 200;

/// About a microsecond of arithmetic the optimizer cannot remove.
fn work(seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..400 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

struct Ring {
    rt: Runtime,
    addrs: Arc<OnceLock<Vec<AgentAddr>>>,
    finished: Arc<AtomicUsize>,
    done: crossbeam::channel::Receiver<()>,
}

fn hop_signal(remaining: u32) -> Signal {
    Signal::new("hop", "/ring", remaining.to_le_bytes().to_vec()).expect("valid signal")
}

fn ring(workers: usize, idle_spin: Option<Duration>) -> Ring {
    let mut builder = Runtime::builder().workers(workers);
    if let Some(spin) = idle_spin {
        builder = builder.idle_spin(spin);
    }
    let rt = builder.build().expect("runtime");
    let addrs: Arc<OnceLock<Vec<AgentAddr>>> = Arc::new(OnceLock::new());
    let finished = Arc::new(AtomicUsize::new(0));
    let (tx, done): (Sender<()>, _) = bounded(1);
    let spec = {
        let addrs = addrs.clone();
        let finished = finished.clone();
        AgentSpec::<(usize, u64), ()>::new((0, 0)).on(
            "hop",
            move |state: &mut (usize, u64), ins: &mut Instruction| {
                let remaining = ins
                    .data()
                    .as_bytes()
                    .try_into()
                    .map(u32::from_le_bytes)
                    .unwrap_or(0);
                state.1 = work(state.1 ^ u64::from(remaining));
                if remaining == 0 {
                    if finished.fetch_add(1, Ordering::AcqRel) + 1 == TOKENS {
                        let _ = tx.try_send(());
                    }
                } else if let Some(addrs) = addrs.get() {
                    let next = &addrs[(state.0 + 1) % AGENTS];
                    ins.send_to(next, hop_signal(remaining - 1));
                }
                Ok(())
            },
        )
    };
    let agents: Vec<_> = (0..AGENTS)
        .map(|i| rt.spawn_with_state(&spec, (i, 0)).expect("spawn"))
        .collect();
    let _ = addrs.set(agents.iter().map(|a| a.addr()).collect());
    Ring {
        rt,
        addrs,
        finished,
        done,
    }
}

/// Seeds the tokens and waits until every one has made all its hops.
fn run(ring: &Ring) -> Duration {
    ring.finished.store(0, Ordering::Release);
    let addrs = ring.addrs.get().expect("ring built");
    let start = Instant::now();
    for t in 0..TOKENS {
        addrs[t * (AGENTS / TOKENS)]
            .send(hop_signal(HOPS))
            .expect("seed accepted");
    }
    ring.done
        .recv_timeout(Duration::from_secs(60))
        .expect("tokens finished");
    let elapsed = start.elapsed();
    assert_eq!(ring.rt.metrics().refused_full, 0, "a mailbox overflowed");
    elapsed
}

fn scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("scaling {}", common::features()));
    group.throughput(Throughput::Elements(TOKENS as u64 * (u64::from(HOPS) + 1)));
    group.sample_size(20);
    // The default idle spin (10 µs), then 50 µs: what a longer spin buys
    // when nothing else needs the cores (see `RuntimeBuilder::idle_spin`).
    for (workers, spin) in [(1, None), (2, None), (1, Some(50)), (2, Some(50))] {
        let ring = ring(workers, spin.map(Duration::from_micros));
        let name = match spin {
            None => format!("ring/{workers}_workers"),
            Some(us) => format!("ring/{workers}_workers_idle_spin_{us}us"),
        };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run(&ring)).sum())
        });
        drop(ring.rt.shutdown());
    }
    let total = TOKENS * (HOPS as usize + 1);
    for threads in [1usize, 2] {
        group.bench_function(format!("floor/{threads}_threads"), |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for t in 0..threads {
                        s.spawn(move || {
                            let mut x = t as u64;
                            for i in 0..total / threads {
                                x = work(x ^ i as u64);
                            }
                            black_box(x)
                        });
                    }
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, scaling);
criterion_main!(benches);
