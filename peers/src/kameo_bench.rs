//! kameo: receiver actors spawned with a bounded(1024) mailbox (kameo's
//! default is 64; 1024 matches agentry's default mailbox and the tokio
//! channels here) on a multi-thread tokio runtime with 2 workers.
//! Producers and clients are tasks spawned on the same runtime, as kameo
//! users write them; the clock is read inside the task, the main thread
//! only collects the result from the task's `JoinHandle`.
//!
//! * one-way: `actor_ref.tell(Tick).send().await` (waits for mailbox room
//!   when full); the producer then awaits the latch the actor counts down
//!   on its last tick.
//! * fan-in: 1,000 actors; 4 producer tasks tell round-robin; the clock
//!   runs in a coordinating task from spawning the producers until every
//!   actor is done.
//! * round trip: `actor_ref.ask(Ping).send().await`.
//! * busy round trip: the same, while a stream task tells ticks to the
//!   same actor in batches of `STREAM_BATCH`, each followed by an ask.
//!
//! `.send().await` rather than awaiting the request itself: the request's
//! `IntoFuture` boxes the future on every message, `send()` is the same
//! operation without that allocation, so kameo is measured on its faster
//! documented path.

use crate::async_client::{stream_batches, timed_round_trips};
use crate::contender::{
    BoxError, Busy, Contender, FAN_IN_PRODUCERS, FAN_IN_RECEIVERS, Hooks, Latch, STREAM_BATCH,
    Stream, Tally, check, fan_in_target,
};
use kameo::Actor;
use kameo::actor::{ActorRef, Spawn};
use kameo::mailbox;
use kameo::message::{Context, Message};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const CAPACITY: usize = 1024;

#[derive(Actor)]
struct Receiver {
    tally: Tally,
}

struct Tick;

/// Replied with the receiver's count.
struct Ping;

impl Message<Tick> for Receiver {
    type Reply = ();

    async fn handle(&mut self, _: Tick, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.tally.tick();
    }
}

impl Message<Ping> for Receiver {
    type Reply = u64;

    async fn handle(&mut self, _: Ping, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.tally.count
    }
}

async fn tell(actor: &ActorRef<Receiver>) -> Result<(), BoxError> {
    actor
        .tell(Tick)
        .send()
        .await
        .map_err(|e| format!("kameo tell: {e}").into())
}

async fn ask(actor: &ActorRef<Receiver>) -> Result<u64, BoxError> {
    actor
        .ask(Ping)
        .send()
        .await
        .map_err(|e| format!("kameo ask: {e}").into())
}

pub struct KameoBench {
    rt: Runtime,
}

impl KameoBench {
    pub fn start() -> Result<Self, BoxError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("kameo-bench-worker")
            .build()?;
        Ok(KameoBench { rt })
    }

    /// Spawns `n` receivers and waits until they have started.
    fn spawn(&self, n: usize, hooks: impl Fn() -> Hooks) -> Vec<ActorRef<Receiver>> {
        self.rt.block_on(async {
            let actors: Vec<_> = (0..n)
                .map(|_| {
                    let state = Receiver {
                        tally: Tally::new(hooks()),
                    };
                    Receiver::spawn_with_mailbox(state, mailbox::bounded(CAPACITY))
                })
                .collect();
            for actor in &actors {
                actor.wait_for_startup().await;
            }
            actors
        })
    }

    /// Checks each actor's count, then stops it and waits for it.
    fn finish(&self, actors: Vec<ActorRef<Receiver>>, expected: u64) -> Result<(), BoxError> {
        self.rt.block_on(async {
            for actor in &actors {
                check("kameo", ask(actor).await?, expected)?;
                actor
                    .stop_gracefully()
                    .await
                    .map_err(|e| format!("kameo stop: {e}"))?;
                actor.wait_for_shutdown().await;
            }
            Ok(())
        })
    }
}

impl Contender for KameoBench {
    fn one_way(&mut self, n: u64) -> Result<Duration, BoxError> {
        let latch = Latch::new(1);
        let actors = self.spawn(1, || Hooks::to_quota(n, latch.clone()));
        let actor = actors[0].clone();
        let producer = self.rt.spawn(async move {
            let start = Instant::now();
            for _ in 0..n {
                tell(&actor).await?;
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
        let actors =
            Arc::new(self.spawn(FAN_IN_RECEIVERS, || Hooks::to_quota(share, latch.clone())));
        let targets = actors.clone();
        let coordinator = self.rt.spawn(async move {
            let start = Instant::now();
            let mut producers = Vec::with_capacity(FAN_IN_PRODUCERS);
            for p in 0..FAN_IN_PRODUCERS {
                let targets = targets.clone();
                producers.push(tokio::spawn(async move {
                    for k in 0..per_producer {
                        tell(&targets[fan_in_target(p, k)]).await?;
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
        let actors = Arc::try_unwrap(actors).map_err(|_| "kameo: actor list still shared")?;
        self.finish(actors, share)?;
        Ok(Some(elapsed))
    }

    fn round_trip_idle(&mut self, m: u64) -> Result<Duration, BoxError> {
        let actors = self.spawn(1, Hooks::none);
        let actor = actors[0].clone();
        let client = self.rt.spawn(async move {
            let start = Instant::now();
            for _ in 0..m {
                check("kameo round trip", ask(&actor).await?, 0)?;
            }
            Ok::<_, BoxError>(start.elapsed())
        });
        let elapsed = self.rt.block_on(client)??;
        self.finish(actors, 0)?;
        Ok(elapsed)
    }

    fn round_trip_busy(&mut self, m: u64) -> Result<Busy, BoxError> {
        let stream = Stream::new();
        let actors = self.spawn(1, Hooks::none);
        let (stream_actor, control) = (actors[0].clone(), stream.clone());
        let producer = self.rt.spawn(async move {
            stream_batches(&control, || async {
                for _ in 0..STREAM_BATCH {
                    tell(&stream_actor).await?;
                }
                ask(&stream_actor).await?;
                Ok::<_, BoxError>(())
            })
            .await
        });
        let (actor, control) = (actors[0].clone(), stream.clone());
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
