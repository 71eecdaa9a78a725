//! kameo: one actor spawned with a bounded(4096) mailbox (kameo's default
//! is 64; 4096 matches agentry's and tokio's capacity here) on a multi-thread
//! tokio runtime with 2 workers; the producer/client runs in `block_on` on
//! the main thread, which is not a runtime worker.
//!
//! * one-way: `actor_ref.tell(Tick).send().await` (waits for mailbox room
//!   when full); completion is detected with a final `ask(Ping)`, FIFO
//!   behind the tells in the same mailbox, whose reply is the actor's count.
//! * round trip: `actor_ref.ask(Ping).send().await`.
//!
//! `.send().await` rather than awaiting the request itself: the request's
//! `IntoFuture` boxes the future on every message, `send()` is the same
//! operation without that allocation (about 1.3x faster here), so kameo is
//! measured on its faster documented path.

use crate::contender::{BoxError, Contender, check};
use kameo::Actor;
use kameo::actor::{ActorRef, Spawn};
use kameo::mailbox;
use kameo::message::{Context, Message};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

#[derive(Actor)]
struct Counter {
    count: u64,
}

struct Tick(u64);

/// Counts as one message; replied with the count so far.
struct Ping;

impl Message<Tick> for Counter {
    type Reply = ();

    async fn handle(&mut self, msg: Tick, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.count += msg.0;
    }
}

impl Message<Ping> for Counter {
    type Reply = u64;

    async fn handle(&mut self, _: Ping, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.count += 1;
        self.count
    }
}

pub struct KameoBench {
    rt: Runtime,
    actor: ActorRef<Counter>,
    expected: u64,
}

impl KameoBench {
    pub fn start() -> Result<Self, BoxError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kameo-bench-worker")
            .build()?;
        let actor = rt.block_on(async {
            let actor = Counter::spawn_with_mailbox(Counter { count: 0 }, mailbox::bounded(4096));
            actor.wait_for_startup().await;
            actor
        });
        Ok(KameoBench {
            rt,
            actor,
            expected: 0,
        })
    }
}

impl Contender for KameoBench {
    fn one_way(&mut self, n: u64) -> Result<Duration, BoxError> {
        let actor = &self.actor;
        let (elapsed, count) = self.rt.block_on(async {
            let start = Instant::now();
            for _ in 0..n {
                actor
                    .tell(Tick(1))
                    .send()
                    .await
                    .map_err(|e| format!("kameo tell: {e}"))?;
            }
            let count = actor
                .ask(Ping)
                .send()
                .await
                .map_err(|e| format!("kameo ask: {e}"))?;
            Ok::<_, BoxError>((start.elapsed(), count))
        })?;
        self.expected += n + 1;
        check("kameo one-way", count, self.expected)?;
        Ok(elapsed)
    }

    fn round_trip(&mut self, m: u64) -> Result<Duration, BoxError> {
        let actor = &self.actor;
        let expected = &mut self.expected;
        self.rt.block_on(async {
            let start = Instant::now();
            for _ in 0..m {
                let count = actor
                    .ask(Ping)
                    .send()
                    .await
                    .map_err(|e| format!("kameo ask: {e}"))?;
                *expected += 1;
                check("kameo round trip", count, *expected)?;
            }
            Ok(start.elapsed())
        })
    }

    fn shutdown(self) -> Result<(), BoxError> {
        let actor = self.actor;
        self.rt.block_on(async {
            actor
                .stop_gracefully()
                .await
                .map_err(|e| format!("kameo stop: {e}"))?;
            actor.wait_for_shutdown().await;
            Ok::<_, BoxError>(())
        })?;
        drop(actor);
        // Dropping the runtime joins its worker threads.
        drop(self.rt);
        Ok(())
    }
}
