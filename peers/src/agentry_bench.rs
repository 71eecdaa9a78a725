//! agentry with every runtime optimization on (`features = ["full"]`), on a
//! 2-worker runtime built with `Runtime::builder().workers(2).build()`
//! (default mailbox capacity, 1024), driven through the public API only.
//! Producers and clients here are plain threads (the main thread, or
//! scoped threads joined at the end of the repetition), driving the
//! blocking API; the "async callers" row (`agentry_async_bench.rs`) drives
//! the async API from tokio tasks.
//!
//! A message is a `Signal` (type `tick` or `ping`, source `/bench`, an
//! 8-byte payload) with its own UUIDv7 id. In the main row each signal is
//! built with `Signal::new` inside the timed loop, as the sender of a real
//! application does; the "pre-built signals" row builds them all before the
//! clock starts (the busy round trip's stream signals are built in the loop
//! in both rows; only the client's pings are pre-built there).
//!
//! * one-way: `AgentRef::send`, retried after `yield_now` on a full mailbox
//!   (backpressure); the producer then waits for the latch the agent's
//!   action counts down on its last tick.
//! * fan-in: 1,000 agents; 4 producer threads released by a barrier send
//!   round-robin; the main thread's clock runs from the barrier until the
//!   last agent's latch count-down.
//! * round trip: `AgentRef::call` from the main thread. When the agent is
//!   idle, agentry runs the called action on the caller's thread (its
//!   documented behaviour), so this round trip usually crosses no thread.
//! * busy round trip: `call` while a stream thread sends ticks to the same
//!   agent in batches of `STREAM_BATCH`, each followed by a `call`.

use crate::contender::{
    BoxError, Busy, Contender, FAN_IN_PRODUCERS, FAN_IN_RECEIVERS, Hooks, Latch, STREAM_BATCH,
    Stream, check, fan_in_target, time_trips,
};
use agentry::{AgentRef, AgentSpec, DeadLetter, Instruction, Runtime, Signal};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

const PAYLOAD: &[u8] = b"12345678";
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

type Agent = AgentRef<u64, u64>;

pub(crate) fn tick() -> Result<Signal, BoxError> {
    Ok(Signal::new("tick", "/bench", PAYLOAD)?)
}

pub(crate) fn ping() -> Result<Signal, BoxError> {
    Ok(Signal::new("ping", "/bench", PAYLOAD)?)
}

fn prebuild(n: u64, make: fn() -> Result<Signal, BoxError>) -> Result<Vec<Signal>, BoxError> {
    (0..n).map(|_| make()).collect()
}

/// The receiving agent: `tick` counts (then runs the hooks), `ping`
/// replies with the count.
pub(crate) fn spec(hooks: Hooks) -> AgentSpec<u64, u64> {
    AgentSpec::<u64, u64>::new(0)
        .on("tick", move |n: &mut u64, _: &mut Instruction| {
            *n += 1;
            hooks.after(*n);
            Ok(*n)
        })
        .on("ping", |n: &mut u64, _: &mut Instruction| Ok(*n))
}

/// `send`, retried while the mailbox is full (what a user does with the
/// signal handed back by backpressure).
fn send(agent: &Agent, mut signal: Signal) -> Result<(), BoxError> {
    loop {
        match agent.send(signal) {
            Ok(()) => return Ok(()),
            Err(e) if e.is_full() => {
                signal = e.into_signal();
                thread::yield_now();
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sends `n` ticks: pre-built ones if given, else built one by one here.
fn send_ticks(
    n: u64,
    prebuilt: Option<Vec<Signal>>,
    mut to: impl FnMut(u64) -> Agent,
) -> Result<(), BoxError> {
    match prebuilt {
        Some(batch) => {
            for (k, signal) in batch.into_iter().enumerate() {
                send(&to(k as u64), signal)?;
            }
        }
        None => {
            for k in 0..n {
                send(&to(k), tick()?)?;
            }
        }
    }
    Ok(())
}

/// Waits until every accepted signal is processed (outside the clock).
fn drain(rt: &Runtime) -> Result<(), BoxError> {
    if rt.wait_idle(DRAIN_TIMEOUT) {
        Ok(())
    } else {
        Err("agentry: signals still in flight after 60 s".into())
    }
}

fn stop(agent: &Agent) -> Result<(), BoxError> {
    no_dead_letters(&agent.stop().dead_letters, "stop")
}

/// What a stop or shutdown handed back must be empty: every signal sent
/// was processed.
fn no_dead_letters(dead_letters: &[DeadLetter], at: &str) -> Result<(), BoxError> {
    if dead_letters.is_empty() {
        Ok(())
    } else {
        Err(format!("agentry: {} dead letters at {at}", dead_letters.len()).into())
    }
}

fn joined<T>(r: thread::Result<Result<T, BoxError>>) -> Result<T, BoxError> {
    r.map_err(|_| BoxError::from("agentry: a producer thread panicked"))?
}

pub struct AgentryBench {
    rt: Runtime,
    prebuilt: bool,
}

impl AgentryBench {
    /// Signals built inside the timed loop (the fair row).
    pub fn start() -> Result<Self, BoxError> {
        Self::with(false)
    }

    /// Signals built before the clock starts (the flattering row).
    pub fn start_prebuilt() -> Result<Self, BoxError> {
        Self::with(true)
    }

    fn with(prebuilt: bool) -> Result<Self, BoxError> {
        let rt = Runtime::builder().workers(2).build()?;
        Ok(AgentryBench { rt, prebuilt })
    }

    fn batch(&self, n: u64) -> Result<Option<Vec<Signal>>, BoxError> {
        if self.prebuilt {
            prebuild(n, tick).map(Some)
        } else {
            Ok(None)
        }
    }
}

impl Contender for AgentryBench {
    fn one_way(&mut self, n: u64) -> Result<Duration, BoxError> {
        let latch = Latch::new(1);
        let agent = self.rt.spawn(&spec(Hooks::to_quota(n, latch.clone())))?;
        let batch = self.batch(n)?;
        let start = Instant::now();
        send_ticks(n, batch, |_| agent.clone())?;
        latch.wait_blocking()?;
        let elapsed = start.elapsed();
        // The latch fires inside the last action, before it commits.
        drain(&self.rt)?;
        check("agentry one-way", *agent.state()?, n)?;
        stop(&agent)?;
        Ok(elapsed)
    }

    fn fan_in(&mut self, n: u64) -> Result<Option<Duration>, BoxError> {
        let share = n / FAN_IN_RECEIVERS as u64;
        let per_producer = n / FAN_IN_PRODUCERS as u64;
        let latch = Latch::new(FAN_IN_RECEIVERS);
        let receiver = spec(Hooks::to_quota(share, latch.clone()));
        let agents = (0..FAN_IN_RECEIVERS)
            .map(|_| self.rt.spawn(&receiver))
            .collect::<Result<Vec<Agent>, _>>()?;
        let mut batches = Vec::with_capacity(FAN_IN_PRODUCERS);
        for _ in 0..FAN_IN_PRODUCERS {
            batches.push(self.batch(per_producer)?);
        }
        let barrier = Barrier::new(FAN_IN_PRODUCERS + 1);
        let elapsed = thread::scope(|s| {
            let producers: Vec<_> = batches
                .into_iter()
                .enumerate()
                .map(|(p, batch)| {
                    let (agents, barrier) = (&agents, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        send_ticks(per_producer, batch, |k| agents[fan_in_target(p, k)].clone())
                    })
                })
                .collect();
            barrier.wait();
            let start = Instant::now();
            let done = latch.wait_blocking();
            let elapsed = start.elapsed();
            for producer in producers {
                joined(producer.join())?;
            }
            done.map(|()| elapsed)
        })?;
        drain(&self.rt)?;
        for agent in &agents {
            check("agentry fan-in", *agent.state()?, share)?;
            stop(agent)?;
        }
        Ok(Some(elapsed))
    }

    fn round_trip_idle(&mut self, m: u64) -> Result<Duration, BoxError> {
        let agent = self.rt.spawn(&spec(Hooks::none()))?;
        let pings = if self.prebuilt {
            Some(prebuild(m, ping)?)
        } else {
            None
        };
        let start = Instant::now();
        match pings {
            Some(pings) => {
                for signal in pings {
                    check("agentry round trip", agent.call(signal, CALL_TIMEOUT)?, 0)?;
                }
            }
            None => {
                for _ in 0..m {
                    check("agentry round trip", agent.call(ping()?, CALL_TIMEOUT)?, 0)?;
                }
            }
        }
        let elapsed = start.elapsed();
        stop(&agent)?;
        Ok(elapsed)
    }

    fn round_trip_busy(&mut self, m: u64) -> Result<Busy, BoxError> {
        let stream = Stream::new();
        let agent = self.rt.spawn(&spec(Hooks::none()))?;
        let mut pings = if self.prebuilt {
            Some(prebuild(m, ping)?.into_iter())
        } else {
            None
        };
        let samples = thread::scope(|s| {
            let producer = s.spawn(|| {
                let result = (|| {
                    while stream.running() {
                        for _ in 0..STREAM_BATCH {
                            send(&agent, tick()?)?;
                        }
                        agent.call(ping()?, CALL_TIMEOUT)?;
                        stream.batch_done();
                    }
                    Ok::<_, BoxError>(())
                })();
                stream.exited();
                result
            });
            while !stream.started() {
                thread::yield_now();
            }
            let samples = time_trips(m, |_| {
                let signal = match pings.as_mut() {
                    Some(pings) => pings.next().ok_or("agentry: out of pings")?,
                    None => ping()?,
                };
                agent.call(signal, CALL_TIMEOUT)?;
                Ok(())
            });
            // Stop the stream whatever happened.
            stream.stop();
            joined(producer.join())?;
            samples
        })?;
        drain(&self.rt)?;
        let sent = stream.sent();
        check("agentry busy stream", *agent.state()?, sent)?;
        stop(&agent)?;
        Ok(Busy { samples, sent })
    }

    fn shutdown(self) -> Result<(), BoxError> {
        // Joins both workers.
        no_dead_letters(&self.rt.shutdown().dead_letters, "shutdown")
    }
}
