//! What a run records: end-to-end latencies, caller-side latencies, and, in
//! the diagnostic mode, the stages of a sample of signals.
//!
//! Every contender's payload starts with a [`Stamp`]: the signal's intended
//! send time and its sequence number. The receiving side records
//! `now - intended` when its handler starts, so every contender is timed
//! from the same instant to the same point.

use hdrhistogram::Histogram;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Time origin for the timestamps carried in payloads.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

pub fn nanos_since_epoch(t: Instant) -> u64 {
    t.saturating_duration_since(epoch()).as_nanos() as u64
}

pub fn now_nanos() -> u64 {
    nanos_since_epoch(Instant::now())
}

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// The first 16 bytes of every payload.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    /// Intended send time, nanoseconds since [`epoch`].
    pub intended: u64,
    /// The operation's sequence number (per sender, high bits = sender).
    pub seq: u64,
}

pub const STAMP_BYTES: usize = 16;

impl Stamp {
    /// A payload of `len` bytes (at least [`STAMP_BYTES`]) starting with the stamp.
    pub fn payload(self, len: usize) -> Vec<u8> {
        let mut data = vec![0u8; len.max(STAMP_BYTES)];
        data[..8].copy_from_slice(&self.intended.to_le_bytes());
        data[8..16].copy_from_slice(&self.seq.to_le_bytes());
        data
    }

    pub fn read(data: &[u8]) -> Stamp {
        let word = |r: std::ops::Range<usize>| {
            data.get(r)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_le_bytes)
        };
        Stamp {
            intended: word(0..8),
            seq: word(8..16),
        }
    }
}

/// End-to-end latencies recorded by the receivers, sharded so two workers
/// rarely take the same lock; plus the handler-start times of sampled
/// signals for the stage breakdown.
pub struct Recorder {
    shards: Vec<Mutex<Histogram<u64>>>,
    /// Record every `sample`-th signal's stages (0: none).
    sample: u64,
    started: Mutex<Vec<(u64, u64)>>,
    pub processed: AtomicU64,
}

impl Recorder {
    pub fn new(sample: u64) -> Self {
        Recorder {
            shards: (0..16).map(|_| Mutex::new(histogram())).collect(),
            sample,
            started: Mutex::new(Vec::new()),
            processed: AtomicU64::new(0),
        }
    }

    /// Called by a receiver's handler when it starts on a stamped signal.
    pub fn handled(&self, shard: u64, stamp: Stamp) {
        let now = now_nanos();
        {
            let mut h = self.shards[(shard % 16) as usize]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            h.saturating_record(now.saturating_sub(stamp.intended).max(1));
        }
        if self.sample > 0 && stamp.seq.is_multiple_of(self.sample) {
            self.started
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((stamp.seq, now));
        }
        self.processed.fetch_add(1, Ordering::Release);
    }

    pub fn merged(&self) -> Histogram<u64> {
        let mut all = histogram();
        for shard in &self.shards {
            let _ = all.add(&*shard.lock().unwrap_or_else(|p| p.into_inner()));
        }
        all
    }

    pub fn sampled(&self) -> bool {
        self.sample > 0
    }

    pub fn is_sampled(&self, seq: u64) -> bool {
        self.sample > 0 && seq.is_multiple_of(self.sample)
    }

    pub fn take_started(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut *self.started.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The sender's side of a sampled signal.
#[derive(Clone, Copy)]
pub struct SentSample {
    pub seq: u64,
    pub intended: u64,
    /// When the sender began the send (after pacing).
    pub begun: u64,
    /// When the send returned.
    pub returned: u64,
}

/// Stage histograms of the sampled signals.
pub struct Stages {
    /// intended -> send begun: the sender was late (it was descheduled, or
    /// the previous send took too long).
    pub sender_late: Histogram<u64>,
    /// send begun -> send returned: the cost of the send call.
    pub send: Histogram<u64>,
    /// send returned -> handler started: waiting for a worker (wake-up,
    /// scheduling, or a worker that was descheduled).
    pub queued: Histogram<u64>,
}

impl Stages {
    pub fn join(sent: &[SentSample], started: &[(u64, u64)]) -> Stages {
        let mut stages = Stages {
            sender_late: histogram(),
            send: histogram(),
            queued: histogram(),
        };
        let by_seq: std::collections::HashMap<u64, u64> = started.iter().copied().collect();
        for s in sent {
            let Some(&start) = by_seq.get(&s.seq) else {
                continue;
            };
            stages
                .sender_late
                .saturating_record(s.begun.saturating_sub(s.intended).max(1));
            stages
                .send
                .saturating_record(s.returned.saturating_sub(s.begun).max(1));
            stages
                .queued
                .saturating_record(start.saturating_sub(s.returned).max(1));
        }
        stages
    }
}

pub fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
    json!({
        "count": h.len(),
        "p50_us": us(0.50),
        "p90_us": us(0.90),
        "p95_us": us(0.95),
        "p99_us": us(0.99),
        "p99_9_us": us(0.999),
        "max_us": h.max() as f64 / 1_000.0,
    })
}
