//! ractor: receiver actors (each mailbox an unbounded channel; ractor has no
//! bounded option) on a multi-thread tokio runtime with 2 workers.
//! Producers and clients are tasks spawned on the same runtime, as ractor
//! users write them; the clock is read inside the task, the main thread
//! only collects the result from the task's `JoinHandle`.
//!
//! * one-way: `ActorRef::cast` (synchronous, never waits); the producer
//!   then awaits the latch the actor counts down on its last tick.
//! * fan-in: 1,000 actors; 4 producer tasks cast round-robin; the clock
//!   runs in a coordinating task from spawning the producers until every
//!   actor is done.
//! * round trip: `call!(actor, Msg::Ping)` (an `RpcReplyPort` per call).
//! * busy round trip: the same, while a stream task casts ticks to the
//!   same actor in batches of `STREAM_BATCH`, each followed by a call.

use crate::async_client::{stream_batches, timed_round_trips};
use crate::contender::{
    BoxError, Busy, Contender, FAN_IN_PRODUCERS, FAN_IN_RECEIVERS, Hooks, Latch, STREAM_BATCH,
    Stream, Tally, check, fan_in_target,
};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, call};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

struct Receiver;

enum Msg {
    Tick,
    /// Replied with the receiver's count.
    Ping(RpcReplyPort<u64>),
}

impl Actor for Receiver {
    type Msg = Msg;
    type State = Tally;
    type Arguments = Hooks;

    async fn pre_start(
        &self,
        _myself: ActorRef<Msg>,
        hooks: Hooks,
    ) -> Result<Tally, ActorProcessingErr> {
        Ok(Tally::new(hooks))
    }

    async fn handle(
        &self,
        _myself: ActorRef<Msg>,
        msg: Msg,
        tally: &mut Tally,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            Msg::Tick => tally.tick(),
            Msg::Ping(reply) => {
                let _ = reply.send(tally.count);
            }
        }
        Ok(())
    }
}

fn cast(actor: &ActorRef<Msg>) -> Result<(), BoxError> {
    actor
        .cast(Msg::Tick)
        .map_err(|e| format!("ractor cast: {e}").into())
}

async fn ask(actor: &ActorRef<Msg>) -> Result<u64, BoxError> {
    call!(actor, Msg::Ping).map_err(|e| format!("ractor call: {e}").into())
}

type Spawned = Vec<(ActorRef<Msg>, JoinHandle<()>)>;

pub struct RactorBench {
    rt: Runtime,
}

impl RactorBench {
    pub fn start() -> Result<Self, BoxError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("ractor-bench-worker")
            .build()?;
        Ok(RactorBench { rt })
    }

    /// Spawns `n` receivers (spawn returns once `pre_start` has run).
    fn spawn(&self, n: usize, hooks: impl Fn() -> Hooks) -> Result<Spawned, BoxError> {
        self.rt.block_on(async {
            let mut actors = Vec::with_capacity(n);
            for _ in 0..n {
                actors.push(Actor::spawn(None, Receiver, hooks()).await?);
            }
            Ok(actors)
        })
    }

    /// Checks each actor's count, then stops it and joins its task.
    fn finish(&self, actors: Spawned, expected: u64) -> Result<(), BoxError> {
        self.rt.block_on(async {
            for (actor, handle) in actors {
                check("ractor", ask(&actor).await?, expected)?;
                actor.stop(None);
                handle.await?;
            }
            Ok(())
        })
    }
}

impl Contender for RactorBench {
    fn one_way(&mut self, n: u64) -> Result<Duration, BoxError> {
        let latch = Latch::new(1);
        let actors = self.spawn(1, || Hooks::to_quota(n, latch.clone()))?;
        let actor = actors[0].0.clone();
        let producer = self.rt.spawn(async move {
            let start = Instant::now();
            for _ in 0..n {
                cast(&actor)?;
            }
            latch.wait().await?;
            Ok::<_, BoxError>(start.elapsed())
        });
        let elapsed = self.rt.block_on(producer)??;
        self.finish(actors, n)?;
        Ok(elapsed)
    }

    fn fan_in(&mut self, n: u64) -> Result<Option<Duration>, BoxError> {
        let share = n / FAN_IN_RECEIVERS as u64;
        let per_producer = n / FAN_IN_PRODUCERS as u64;
        let latch = Latch::new(FAN_IN_RECEIVERS);
        let actors = self.spawn(FAN_IN_RECEIVERS, || Hooks::to_quota(share, latch.clone()))?;
        let targets: Arc<Vec<ActorRef<Msg>>> =
            Arc::new(actors.iter().map(|(a, _)| a.clone()).collect());
        let coordinator = self.rt.spawn(async move {
            let start = Instant::now();
            let mut producers = Vec::with_capacity(FAN_IN_PRODUCERS);
            for p in 0..FAN_IN_PRODUCERS {
                let targets = targets.clone();
                producers.push(tokio::spawn(async move {
                    for k in 0..per_producer {
                        cast(&targets[fan_in_target(p, k)])?;
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
        let elapsed = self.rt.block_on(coordinator)??;
        self.finish(actors, share)?;
        Ok(Some(elapsed))
    }

    fn round_trip_idle(&mut self, m: u64) -> Result<Duration, BoxError> {
        let actors = self.spawn(1, Hooks::none)?;
        let actor = actors[0].0.clone();
        let client = self.rt.spawn(async move {
            let start = Instant::now();
            for _ in 0..m {
                check("ractor round trip", ask(&actor).await?, 0)?;
            }
            Ok::<_, BoxError>(start.elapsed())
        });
        let elapsed = self.rt.block_on(client)??;
        self.finish(actors, 0)?;
        Ok(elapsed)
    }

    fn round_trip_busy(&mut self, m: u64) -> Result<Busy, BoxError> {
        let stream = Stream::new();
        let actors = self.spawn(1, Hooks::none)?;
        let (stream_actor, control) = (actors[0].0.clone(), stream.clone());
        let producer = self.rt.spawn(async move {
            stream_batches(&control, || async {
                for _ in 0..STREAM_BATCH {
                    cast(&stream_actor)?;
                }
                ask(&stream_actor).await?;
                Ok::<_, BoxError>(())
            })
            .await
        });
        let (actor, control) = (actors[0].0.clone(), stream.clone());
        let client = self
            .rt
            .spawn(async move { timed_round_trips(m, &control, || ask(&actor)).await });
        let samples = self.rt.block_on(client)??;
        self.rt.block_on(producer)??;
        let sent = stream.sent();
        self.finish(actors, sent)?;
        Ok(Busy { samples, sent })
    }

    fn shutdown(self) -> Result<(), BoxError> {
        // Dropping the runtime joins its worker threads.
        drop(self.rt);
        Ok(())
    }
}
