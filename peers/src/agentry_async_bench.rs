//! agentry driven from async code, as a tokio service embedding it drives
//! it: producers and clients are tasks on a 2-worker tokio runtime (as in
//! the tokio row), using `AgentRef::send_async` (waits for mailbox space
//! instead of a retry loop) and `AgentRef::call_async`. The agentry
//! runtime beside it has 2 workers (`features = ["full"]`), as in the
//! agentry row: four threads on the machine's cores, which is what such a
//! service runs. Signals are built inside the timed loop (`Signal::new`).
//!
//! * one-way: a task `send_async`s `n` ticks, then awaits the latch the
//!   agent's action counts down on its last tick.
//! * fan-in: 1,000 agents; 4 producer tasks `send_async` round-robin; the
//!   clock runs in a coordinating task until the last agent's count-down.
//! * round trip: a task awaits `call_async` (on an idle agent the first
//!   poll runs the action on the task's thread: no wake-up).
//! * busy round trip: the same while a stream task `send_async`s ticks in
//!   batches of `STREAM_BATCH`, each followed by a `call_async`.

use crate::agentry_bench::{ping, spec, tick};
use crate::async_client::{stream_batches, timed_round_trips};
use crate::contender::{
    BoxError, Busy, Contender, FAN_IN_PRODUCERS, FAN_IN_RECEIVERS, Hooks, Latch, STREAM_BATCH,
    Stream, check, fan_in_target,
};
use agentry::{AgentRef, Runtime};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

type Agent = AgentRef<u64, u64>;

async fn call(agent: &Agent) -> Result<u64, BoxError> {
    Ok(agent.call_async(ping()?, CALL_TIMEOUT).await?)
}

pub struct AgentryAsyncBench {
    tokio: tokio::runtime::Runtime,
    rt: Runtime,
}

impl AgentryAsyncBench {
    pub fn start() -> Result<Self, BoxError> {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("agentry-async-tokio")
            .build()?;
        let rt = Runtime::builder().workers(2).build()?;
        Ok(AgentryAsyncBench { tokio, rt })
    }

    fn finish(&self, agents: &[Agent], each: u64, what: &str) -> Result<(), BoxError> {
        if !self.rt.wait_idle(DRAIN_TIMEOUT) {
            return Err("agentry async: signals still in flight after 60 s".into());
        }
        for agent in agents {
            check(what, *agent.state()?, each)?;
            if !agent.stop().dead_letters.is_empty() {
                return Err("agentry async: dead letters at stop".into());
            }
        }
        Ok(())
    }
}

impl Contender for AgentryAsyncBench {
    fn one_way(&mut self, n: u64) -> Result<Duration, BoxError> {
        let latch = Latch::new(1);
        let agent = self.rt.spawn(&spec(Hooks::to_quota(n, latch.clone())))?;
        let a = agent.clone();
        let producer = self.tokio.spawn(async move {
            let start = Instant::now();
            for _ in 0..n {
                a.send_async(tick()?).await?;
            }
            latch.wait().await?;
            Ok::<_, BoxError>(start.elapsed())
        });
        let elapsed = self.tokio.block_on(producer)??;
        self.finish(&[agent], n, "agentry async one-way")?;
        Ok(elapsed)
    }

    fn fan_in(&mut self, n: u64) -> Result<Option<Duration>, BoxError> {
        let share = n / FAN_IN_RECEIVERS as u64;
        let per_producer = n / FAN_IN_PRODUCERS as u64;
        let latch = Latch::new(FAN_IN_RECEIVERS);
        let receiver = spec(Hooks::to_quota(share, latch.clone()));
        let agents = Arc::new(
            (0..FAN_IN_RECEIVERS)
                .map(|_| self.rt.spawn(&receiver))
                .collect::<Result<Vec<Agent>, _>>()?,
        );
        let all = agents.clone();
        let coordinator = self.tokio.spawn(async move {
            let start = Instant::now();
            let mut producers = Vec::with_capacity(FAN_IN_PRODUCERS);
            for p in 0..FAN_IN_PRODUCERS {
                let agents = all.clone();
                producers.push(tokio::spawn(async move {
                    for k in 0..per_producer {
                        agents[fan_in_target(p, k)].send_async(tick()?).await?;
                    }
                    Ok::<_, BoxError>(())
                }));
            }
            for producer in producers {
                producer.await??;
            }
            latch.wait().await?;
            Ok::<_, BoxError>(start.elapsed())
        });
        let elapsed = self.tokio.block_on(coordinator)??;
        self.finish(&agents, share, "agentry async fan-in")?;
        Ok(Some(elapsed))
    }

    fn round_trip_idle(&mut self, m: u64) -> Result<Duration, BoxError> {
        let agent = self.rt.spawn(&spec(Hooks::none()))?;
        let a = agent.clone();
        let client = self.tokio.spawn(async move {
            let start = Instant::now();
            for _ in 0..m {
                check("agentry async round trip", call(&a).await?, 0)?;
            }
            Ok::<_, BoxError>(start.elapsed())
        });
        let elapsed = self.tokio.block_on(client)??;
        self.finish(&[agent], 0, "agentry async round trip")?;
        Ok(elapsed)
    }

    fn round_trip_busy(&mut self, m: u64) -> Result<Busy, BoxError> {
        let stream = Stream::new();
        let agent = self.rt.spawn(&spec(Hooks::none()))?;
        let (a, control) = (agent.clone(), stream.clone());
        let producer = self.tokio.spawn(async move {
            stream_batches(&control, || async {
                for _ in 0..STREAM_BATCH {
                    a.send_async(tick()?).await?;
                }
                call(&a).await?;
                Ok::<_, BoxError>(())
            })
            .await
        });
        let (a, control) = (agent.clone(), stream.clone());
        let client = self
            .tokio
            .spawn(async move { timed_round_trips(m, &control, || call(&a)).await });
        let samples = self.tokio.block_on(client)??;
        self.tokio.block_on(producer)??;
        let sent = stream.sent();
        self.finish(&[agent], sent, "agentry async busy stream")?;
        Ok(Busy { samples, sent })
    }

    fn shutdown(self) -> Result<(), BoxError> {
        drop(self.tokio);
        if self.rt.shutdown().dead_letters.is_empty() {
            Ok(())
        } else {
            Err("agentry async: dead letters at shutdown".into())
        }
    }
}
