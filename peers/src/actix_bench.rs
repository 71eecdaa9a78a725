//! actix: driven from inside its `System`, as an `#[actix::main]`
//! application is (`SystemRunner::block_on` on the main thread is what that
//! macro expands to). Producers and clients are `actix_rt::spawn`ed tasks
//! on the System's arbiter (the main thread); the clock is read inside the
//! task.
//!
//! Receiver actors live on one extra `Arbiter` (a thread with its own
//! single-threaded event loop), as actix users place an actor when they want
//! it to run in parallel with the code that feeds it: on the System arbiter
//! too, producer and receiver would share one thread and use one core of
//! two. So actix runs on two threads, like the 2-worker runtimes.
//!
//! * one-way: `Addr::do_send(Tick)` (actix's fire-and-forget; it ignores
//!   the mailbox capacity, so the queue is unbounded); the producer then
//!   awaits the latch the actor counts down on its last tick.
//! * fan-in: 1,000 actors on the receiver arbiter; 4 producer tasks on the
//!   System arbiter `do_send` round-robin (the four share that thread).
//! * round trip: `addr.send(Ping).await`.
//! * busy round trip: the same, while a stream task `do_send`s ticks to the
//!   same actor in batches of `STREAM_BATCH`, each followed by a
//!   `send(Ping).await`. The stream task runs on a second extra `Arbiter`,
//!   like the stream thread of agentry and crossbeam, so that it does not
//!   share the client's single-threaded event loop.

use crate::async_client::{stream_batches, timed_round_trips};
use crate::contender::{
    BoxError, Busy, Contender, FAN_IN_PRODUCERS, FAN_IN_RECEIVERS, Hooks, Latch, STREAM_BATCH,
    Stream, Tally, check, fan_in_target,
};
use actix::{Actor, Addr, Context, Handler, Message};
use actix_rt::{Arbiter, System, SystemRunner};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Receiver {
    tally: Tally,
}

impl Actor for Receiver {
    type Context = Context<Self>;
}

struct Tick;

impl Message for Tick {
    type Result = ();
}

/// Replied with the receiver's count.
struct Ping;

impl Message for Ping {
    type Result = u64;
}

impl Handler<Tick> for Receiver {
    type Result = ();

    fn handle(&mut self, _: Tick, _: &mut Context<Self>) {
        self.tally.tick();
    }
}

impl Handler<Ping> for Receiver {
    type Result = u64;

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u64 {
        self.tally.count
    }
}

pub struct ActixBench {
    system: SystemRunner,
    /// Where the receivers live.
    arbiter: Arbiter,
    /// Where the busy round trip's stream producer lives.
    stream_arbiter: Arbiter,
}

impl ActixBench {
    pub fn start() -> Result<Self, BoxError> {
        let system = System::new();
        let arbiter = Arbiter::new();
        let stream_arbiter = Arbiter::new();
        Ok(ActixBench {
            system,
            arbiter,
            stream_arbiter,
        })
    }

    fn spawn(&self, hooks: Hooks) -> Addr<Receiver> {
        Receiver::start_in_arbiter(&self.arbiter.handle(), move |_| Receiver {
            tally: Tally::new(hooks),
        })
    }

    /// Runs `task` as a task on the System arbiter and waits for its result.
    fn run<T: 'static>(
        &self,
        task: impl Future<Output = Result<T, BoxError>> + 'static,
    ) -> Result<T, BoxError> {
        self.system
            .block_on(async move { actix_rt::spawn(task).await })
            .map_err(|e| format!("actix task: {e}"))?
    }

    /// Checks each actor's count; dropping the last address stops it.
    fn finish(&self, actors: Vec<Addr<Receiver>>, expected: u64) -> Result<(), BoxError> {
        self.run(async move {
            for actor in &actors {
                check("actix", actor.send(Ping).await?, expected)?;
            }
            Ok(())
        })
    }
}

impl Contender for ActixBench {
    fn one_way(&mut self, n: u64) -> Result<Duration, BoxError> {
        let latch = Latch::new(1);
        let actor = self.spawn(Hooks::to_quota(n, latch.clone()));
        let target = actor.clone();
        let elapsed = self.run(async move {
            let start = Instant::now();
            for _ in 0..n {
                target.do_send(Tick);
            }
            latch.wait().await?;
            Ok(start.elapsed())
        })?;
        self.finish(vec![actor], n)?;
        Ok(elapsed)
    }

    fn fan_in(&mut self, n: u64) -> Result<Option<Duration>, BoxError> {
        let share = n / FAN_IN_RECEIVERS as u64;
        let per_producer = n / FAN_IN_PRODUCERS as u64;
        let latch = Latch::new(FAN_IN_RECEIVERS);
        let actors: Vec<_> = (0..FAN_IN_RECEIVERS)
            .map(|_| self.spawn(Hooks::to_quota(share, latch.clone())))
            .collect();
        let targets = Arc::new(actors.clone());
        let elapsed = self.run(async move {
            let start = Instant::now();
            let mut producers = Vec::with_capacity(FAN_IN_PRODUCERS);
            for p in 0..FAN_IN_PRODUCERS {
                let targets = targets.clone();
                producers.push(actix_rt::spawn(async move {
                    for k in 0..per_producer {
                        targets[fan_in_target(p, k)].do_send(Tick);
                    }
                }));
            }
            for producer in producers {
                producer.await?;
            }
            latch.wait().await?;
            Ok(start.elapsed())
        })?;
        self.finish(actors, share)?;
        Ok(Some(elapsed))
    }

    fn round_trip_idle(&mut self, m: u64) -> Result<Duration, BoxError> {
        let actor = self.spawn(Hooks::none());
        let target = actor.clone();
        let elapsed = self.run(async move {
            let start = Instant::now();
            for _ in 0..m {
                check("actix round trip", target.send(Ping).await?, 0)?;
            }
            Ok(start.elapsed())
        })?;
        self.finish(vec![actor], 0)?;
        Ok(elapsed)
    }

    fn round_trip_busy(&mut self, m: u64) -> Result<Busy, BoxError> {
        let stream = Stream::new();
        let actor = self.spawn(Hooks::none());
        let (stream_target, control) = (actor.clone(), stream.clone());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let spawned = self.stream_arbiter.spawn(async move {
            let result = stream_batches(&control, || async {
                for _ in 0..STREAM_BATCH {
                    stream_target.do_send(Tick);
                }
                stream_target.send(Ping).await?;
                Ok::<_, BoxError>(())
            })
            .await;
            let _ = done_tx.send(result);
        });
        if !spawned {
            return Err("actix: the stream arbiter is gone".into());
        }
        let (target, control) = (actor.clone(), stream.clone());
        let samples = self.run(async move {
            let samples = timed_round_trips(m, &control, || target.send(Ping)).await;
            // The stream's outcome first: it was stopped whatever happened.
            done_rx.await??;
            Ok(samples?)
        })?;
        let sent = stream.sent();
        // The send in `finish` queues behind every do_send: it sees them all.
        self.finish(vec![actor], sent)?;
        Ok(Busy { samples, sent })
    }

    fn shutdown(self) -> Result<(), BoxError> {
        // Stopping an arbiter ends its event loop and thread, which we
        // join; then the System stops and its runner returns.
        for arbiter in [self.arbiter, self.stream_arbiter] {
            arbiter.stop();
            arbiter
                .join()
                .map_err(|_| "actix arbiter thread panicked")?;
        }
        System::current().stop();
        self.system.run()?;
        Ok(())
    }
}
