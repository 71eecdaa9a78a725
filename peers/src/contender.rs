//! What every contender implements, the workload sizes, and the few helpers
//! they share (a completion latch, a progress counter, percentiles).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Errors of the benchmark: any library's error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Unmeasured repetitions run first, per workload and contender.
pub const WARMUP_REPS: usize = 1;
/// Measured repetitions, per workload and contender.
pub const MEASURED_REPS: usize = 5;
/// Producers of the fan-in workload.
pub const FAN_IN_PRODUCERS: usize = 4;
/// Receivers of the fan-in workload.
pub const FAN_IN_RECEIVERS: usize = 1_000;
/// The busy round trip's stream comes in batches of this many one-way
/// messages, each followed by one request/reply that waits (with the
/// library's own wait) until the receiver has taken the batch: the receiver
/// always has up to one batch queued in front of the client's requests,
/// whether its mailbox is bounded or not, and no producer spins.
pub const STREAM_BATCH: u64 = 64;
/// A run that takes longer than this is declared stuck instead of hanging.
pub const STUCK_AFTER: Duration = Duration::from_secs(120);

/// Messages per repetition of each workload.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// (a) one-way: messages from the one producer.
    pub one_way: u64,
    /// (b) fan-in: messages in all (a multiple of producers x receivers, so
    /// that every receiver gets the same share).
    pub fan_in: u64,
    /// (c) sequential round trips to an idle receiver.
    pub round_trips: u64,
    /// (d) sequential round trips while the receiver takes a stream.
    pub busy_round_trips: u64,
}

impl Sizes {
    pub const FULL: Sizes = Sizes {
        one_way: 200_000,
        fan_in: 400_000,
        round_trips: 10_000,
        busy_round_trips: 5_000,
    };
    pub const QUICK: Sizes = Sizes {
        one_way: 10_000,
        fan_in: 40_000,
        round_trips: 1_000,
        busy_round_trips: 500,
    };
}

/// The fan-in receiver that the `k`-th message of producer `p` goes to:
/// round-robin over all receivers, each producer starting at its own offset.
/// With `k` running over a multiple of `FAN_IN_RECEIVERS`, every receiver
/// gets the same number of messages from every producer.
pub fn fan_in_target(p: usize, k: u64) -> usize {
    let offset = p * (FAN_IN_RECEIVERS / FAN_IN_PRODUCERS);
    (offset + (k % FAN_IN_RECEIVERS as u64) as usize) % FAN_IN_RECEIVERS
}

/// One library under test: set up once (its threads started), driven
/// through the four workloads, then shut down (every thread it started
/// joined) before the next contender starts. Receivers are created afresh
/// for each repetition, before its clock starts.
pub trait Contender: Sized {
    /// (a) One producer sends `n` small messages to one receiver. Returns the
    /// time from the first send until the receiver has processed all `n`.
    fn one_way(&mut self, n: u64) -> Result<Duration, BoxError>;

    /// (b) `FAN_IN_PRODUCERS` producers send `n` messages in all to
    /// `FAN_IN_RECEIVERS` receivers, round-robin. Returns the time from the
    /// start until every receiver has processed its share; `None` when the
    /// contender does not run this workload.
    fn fan_in(&mut self, n: u64) -> Result<Option<Duration>, BoxError>;

    /// (c) `m` sequential request/replies to an idle receiver. Returns the
    /// total time.
    fn round_trip_idle(&mut self, m: u64) -> Result<Duration, BoxError>;

    /// (d) `m` sequential request/replies to a receiver that is taking a
    /// one-way stream from another producer at the same time.
    fn round_trip_busy(&mut self, m: u64) -> Result<Busy, BoxError>;

    /// Stops the contender and joins every thread it started.
    fn shutdown(self) -> Result<(), BoxError>;
}

/// What one busy round-trip repetition measured.
pub struct Busy {
    /// Each round trip's duration, in nanoseconds.
    pub samples: Vec<u64>,
    /// Stream messages the receiver took meanwhile (how busy it was).
    pub sent: u64,
}

/// Fires once `count_down` has been called `n` times; awaited by a task
/// (`wait`) or a thread (`wait_blocking`). Receivers count down once, when
/// they have processed their share, so a waiter learns that every receiver
/// is done without a message per receiver.
pub struct Latch {
    remaining: AtomicUsize,
    notify: tokio::sync::Notify,
    done: Mutex<bool>,
    cv: Condvar,
}

impl Latch {
    pub fn new(n: usize) -> Arc<Latch> {
        Arc::new(Latch {
            remaining: AtomicUsize::new(n),
            notify: tokio::sync::Notify::new(),
            done: Mutex::new(false),
            cv: Condvar::new(),
        })
    }

    pub fn count_down(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            // notify_one keeps a permit if nobody waits yet: no lost wake-up.
            self.notify.notify_one();
            let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
            *done = true;
            self.cv.notify_all();
        }
    }

    /// Waits from a task (one waiter).
    pub async fn wait(&self) -> Result<(), BoxError> {
        tokio::time::timeout(STUCK_AFTER, self.notify.notified())
            .await
            .map_err(|_| "receivers did not finish in time".into())
    }

    /// Waits from a plain thread.
    pub fn wait_blocking(&self) -> Result<(), BoxError> {
        let done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        let (done, _) = self
            .cv
            .wait_timeout_while(done, STUCK_AFTER, |done| !*done)
            .unwrap_or_else(|e| e.into_inner());
        if *done {
            Ok(())
        } else {
            Err("receivers did not finish in time".into())
        }
    }
}

/// What a receiver does after counting a message, the same for every
/// contender: count the latch down on reaching its share (one-way, fan-in).
/// agentry keeps the count in the agent's state and calls `after` from its
/// action; the others keep a [`Tally`].
#[derive(Clone, Default)]
pub struct Hooks {
    quota: u64,
    latch: Option<Arc<Latch>>,
}

impl Hooks {
    /// Counts the latch down once `quota` messages are counted.
    pub fn to_quota(quota: u64, latch: Arc<Latch>) -> Hooks {
        Hooks {
            quota,
            latch: Some(latch),
        }
    }

    /// Only counts.
    pub fn none() -> Hooks {
        Hooks::default()
    }

    #[inline]
    pub fn after(&self, count: u64) {
        if count == self.quota
            && let Some(latch) = &self.latch
        {
            latch.count_down();
        }
    }
}

/// A peer receiver's state: its count and its hooks.
pub struct Tally {
    pub count: u64,
    hooks: Hooks,
}

impl Tally {
    pub fn new(hooks: Hooks) -> Tally {
        Tally { count: 0, hooks }
    }

    #[inline]
    pub fn tick(&mut self) {
        self.count += 1;
        self.hooks.after(self.count);
    }
}

/// Shared between the busy round trip's stream producer and its client:
/// the client waits until the stream has delivered a first batch before it
/// starts, and stops the stream when it is done.
#[derive(Clone, Default)]
pub struct Stream(Arc<StreamState>);

#[derive(Default)]
struct StreamState {
    stop: AtomicBool,
    batches: AtomicU64,
    exited: AtomicBool,
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    /// True until the client stops the stream.
    pub fn running(&self) -> bool {
        !self.0.stop.load(Ordering::Acquire)
    }

    pub fn stop(&self) {
        self.0.stop.store(true, Ordering::Release);
    }

    /// The producer has sent a batch and seen it taken.
    pub fn batch_done(&self) {
        self.0.batches.fetch_add(1, Ordering::AcqRel);
    }

    /// The producer has left its loop (stopped, or failed).
    pub fn exited(&self) {
        self.0.exited.store(true, Ordering::Release);
    }

    /// True once a first batch has been taken (or the producer is gone, so
    /// that a failed stream cannot leave the client waiting forever).
    pub fn started(&self) -> bool {
        self.0.batches.load(Ordering::Acquire) > 0 || self.0.exited.load(Ordering::Acquire)
    }

    /// Stream messages taken so far (whole batches).
    pub fn sent(&self) -> u64 {
        self.0.batches.load(Ordering::Acquire) * STREAM_BATCH
    }
}

/// Times `m` sequential round trips made by `trip`, one sample each.
pub fn time_trips(
    m: u64,
    mut trip: impl FnMut(u64) -> Result<(), BoxError>,
) -> Result<Vec<u64>, BoxError> {
    let mut samples = Vec::with_capacity(m as usize);
    for i in 0..m {
        let t = Instant::now();
        trip(i)?;
        samples.push(t.elapsed().as_nanos() as u64);
    }
    Ok(samples)
}

/// Checks a count reported by a receiver against the client's tally.
pub fn check(what: &str, got: u64, expected: u64) -> Result<(), BoxError> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{what}: receiver counted {got}, expected {expected}").into())
    }
}

/// The `q`-quantile (0..=1) of `samples` (sorted in place), nearest rank.
pub fn quantile(samples: &mut [u64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1] as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fan_in_targets_are_even() {
        let mut hits = vec![0u64; FAN_IN_RECEIVERS];
        let per_producer = Sizes::QUICK.fan_in / FAN_IN_PRODUCERS as u64;
        for p in 0..FAN_IN_PRODUCERS {
            for k in 0..per_producer {
                hits[fan_in_target(p, k)] += 1;
            }
        }
        let share = Sizes::QUICK.fan_in / FAN_IN_RECEIVERS as u64;
        assert!(hits.iter().all(|&h| h == share));
        assert_eq!(
            Sizes::FULL.fan_in % (FAN_IN_PRODUCERS * FAN_IN_RECEIVERS) as u64,
            0
        );
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(quantile(&mut v, 0.5), 50.0);
        assert_eq!(quantile(&mut v, 0.99), 99.0);
        assert_eq!(quantile(&mut v, 1.0), 100.0);
    }

    #[test]
    fn latch_fires_once_counted_down() {
        let latch = Latch::new(2);
        latch.count_down();
        latch.count_down();
        latch.wait_blocking().unwrap();
    }
}
