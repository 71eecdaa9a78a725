//! What every contender implements, and the few helpers they share.

use std::time::{Duration, Instant};

/// Errors of the benchmark: any library's error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Messages in one one-way repetition.
pub const ONE_WAY_MESSAGES: u64 = 100_000;
/// Sequential request/reply round trips in one round-trip repetition.
pub const ROUND_TRIPS: u64 = 20_000;
/// Unmeasured repetitions run first, per workload and contender.
pub const WARMUP_REPS: usize = 1;
/// Measured repetitions, per workload and contender.
pub const MEASURED_REPS: usize = 5;

/// Longest wait for a consumer to finish before the run is declared stuck.
const STUCK_AFTER: Duration = Duration::from_secs(60);

/// One library under test: set up once (its threads started), then driven
/// through both workloads, then shut down (every thread it started joined)
/// before the next contender starts.
pub trait Contender: Sized {
    /// One producer sends `n` small messages to one consumer that counts
    /// them. Returns the time from the first send to the moment the consumer
    /// has processed all `n`. Message construction happens before the clock
    /// starts.
    fn one_way(&mut self, n: u64) -> Result<Duration, BoxError>;

    /// `m` sequential request/reply round trips from this thread to a
    /// consumer on another thread. Returns the total time.
    fn round_trip(&mut self, m: u64) -> Result<Duration, BoxError>;

    /// Stops the contender and joins every thread it started.
    fn shutdown(self) -> Result<(), BoxError>;
}

/// Sleep between polls once the short spin is over. The kernel's timer slack
/// rounds it up (about 0.1 ms measured on the 2-core VM): at most ~0.5% of a
/// 100,000-message run at 5 M msg/s, and the error only lengthens the time.
const POLL_SLEEP: Duration = Duration::from_micros(20);

/// Polls `done` until it returns true: 64 quick polls, then a short sleep
/// between polls, so the waiting producer gives its core back instead of
/// competing with the consumer's threads (on a 2-core machine a spinning or
/// yielding poller takes a core from a 2-worker runtime). Fails after a
/// minute instead of hanging.
pub fn wait_until(mut done: impl FnMut() -> bool) -> Result<(), BoxError> {
    let deadline = Instant::now() + STUCK_AFTER;
    let mut polls: u32 = 0;
    while !done() {
        if polls < 64 {
            std::hint::spin_loop();
            polls += 1;
        } else {
            std::thread::sleep(POLL_SLEEP);
            if Instant::now() > deadline {
                return Err("consumer did not finish within 60 s".into());
            }
        }
    }
    Ok(())
}

/// Checks a count reported by a consumer against the producer's tally.
pub fn check(what: &str, got: u64, expected: u64) -> Result<(), BoxError> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{what}: consumer counted {got}, expected {expected}").into())
    }
}
