//! The mailbox's queue, side by side with the lock-free queues it could be.
//!
//! Why agentry's mailbox is a `Mutex<VecDeque<Box<Instruction>>>` and not a
//! `crossbeam` queue: this bench measures the hand-off each would give, in
//! the agent's own pattern. Producers push boxed items one at a time and
//! check a bound before each push (a full mailbox hands the signal back);
//! one consumer takes up to a batch of 64 at a time. Each push is a boxed
//! value, as an instruction is.
//!
//! * `mutex_vecdeque`: what the mailbox is. The consumer takes its batch
//!   under the lock in one `drain`, so senders meet the consumer once per
//!   batch, not once per signal; a warm queue never allocates.
//! * `segqueue`: `crossbeam::queue::SegQueue` plus an atomic count for the
//!   bound. Lock-free, unbounded; allocates a block for every 31 items and
//!   frees it when drained (so a warm mailbox would allocate, which
//!   agentry's zero-allocation warm path forbids).
//! * `arrayqueue`: `crossbeam::queue::ArrayQueue` with the mailbox's default
//!   capacity of 1,024. Lock-free, bounded, no allocation after creation,
//!   but it allocates the whole ring up front: 16 KiB per agent at the
//!   default capacity, 1.6 GB for 100,000 idle agents.
//!
//! Cases: 1 producer and 4 producers (all threads, on this machine's two
//! cores), 20,000 items per producer. Reported per item.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crossbeam::queue::{ArrayQueue, SegQueue};
use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const PER_PRODUCER: usize = 20_000;
const CAPACITY: usize = 1_024;
const BATCH: usize = 64;

/// The operations a mailbox needs: a bounded push that hands the item back
/// when full, and a batch take.
trait Queue: Sync {
    fn push(&self, item: Box<u64>) -> Result<(), Box<u64>>;
    fn take(&self, out: &mut Vec<Box<u64>>) -> usize;
}

struct MutexQueue {
    queue: Mutex<VecDeque<Box<u64>>>,
}

impl Queue for MutexQueue {
    fn push(&self, item: Box<u64>) -> Result<(), Box<u64>> {
        let mut q = self.queue.lock().unwrap();
        if q.len() >= CAPACITY {
            return Err(item);
        }
        q.push_back(item);
        Ok(())
    }
    fn take(&self, out: &mut Vec<Box<u64>>) -> usize {
        let mut q = self.queue.lock().unwrap();
        let n = q.len().min(BATCH);
        out.extend(q.drain(..n));
        n
    }
}

struct SegQueueBounded {
    queue: SegQueue<Box<u64>>,
    len: AtomicUsize,
}

impl Queue for SegQueueBounded {
    fn push(&self, item: Box<u64>) -> Result<(), Box<u64>> {
        if self.len.fetch_add(1, Ordering::AcqRel) >= CAPACITY {
            self.len.fetch_sub(1, Ordering::AcqRel);
            return Err(item);
        }
        self.queue.push(item);
        Ok(())
    }
    fn take(&self, out: &mut Vec<Box<u64>>) -> usize {
        let mut n = 0;
        while n < BATCH {
            match self.queue.pop() {
                Some(item) => {
                    out.push(item);
                    n += 1;
                }
                None => break,
            }
        }
        self.len.fetch_sub(n, Ordering::AcqRel);
        n
    }
}

struct ArrayQueueBounded {
    queue: ArrayQueue<Box<u64>>,
}

impl Queue for ArrayQueueBounded {
    fn push(&self, item: Box<u64>) -> Result<(), Box<u64>> {
        self.queue.push(item)
    }
    fn take(&self, out: &mut Vec<Box<u64>>) -> usize {
        let mut n = 0;
        while n < BATCH {
            match self.queue.pop() {
                Some(item) => {
                    out.push(item);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }
}

/// Producers push their items (retrying on full, as a sender that backs off
/// would), the consumer takes batches until it has them all. Returns the
/// wall time of the whole hand-off. Items are boxed before the clock; the
/// consumer frees them, the same cost for every queue.
fn hand_off<Q: Queue>(queue: &Q, producers: usize) -> Duration {
    let total = producers * PER_PRODUCER;
    let items: Vec<Vec<Box<u64>>> = (0..producers)
        .map(|p| {
            (0..PER_PRODUCER)
                .map(|i| Box::new((p * i) as u64))
                .collect()
        })
        .collect();
    let start = Instant::now();
    std::thread::scope(|s| {
        for batch in items {
            s.spawn(move || {
                for mut item in batch {
                    loop {
                        match queue.push(item) {
                            Ok(()) => break,
                            Err(back) => {
                                item = back;
                                std::thread::yield_now();
                            }
                        }
                    }
                }
            });
        }
        let mut got = 0;
        let mut out = Vec::with_capacity(BATCH);
        while got < total {
            let n = queue.take(&mut out);
            if n == 0 {
                std::thread::yield_now();
                continue;
            }
            got += n;
            for item in out.drain(..) {
                black_box(item);
            }
        }
    });
    start.elapsed()
}

/// Times the hand-off through a fresh queue from `make` per iteration.
fn bench_queue<Q: Queue>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    producers: usize,
    make: fn() -> Q,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| (0..iters).map(|_| hand_off(&make(), producers)).sum())
    });
}

fn bench(c: &mut Criterion) {
    for producers in [1usize, 4] {
        let mut group = c.benchmark_group(format!("mailbox/{producers}_producers"));
        group.throughput(Throughput::Elements((producers * PER_PRODUCER) as u64));
        group.sample_size(20);
        bench_queue(&mut group, "mutex_vecdeque", producers, || MutexQueue {
            queue: Mutex::new(VecDeque::with_capacity(CAPACITY)),
        });
        bench_queue(&mut group, "segqueue", producers, || SegQueueBounded {
            queue: SegQueue::new(),
            len: AtomicUsize::new(0),
        });
        bench_queue(&mut group, "arrayqueue", producers, || ArrayQueueBounded {
            queue: ArrayQueue::new(CAPACITY),
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
