//! ractor: one actor (its mailbox is an unbounded channel; ractor has no
//! bounded option) on a multi-thread tokio runtime with 2 workers; the
//! producer/client runs in `block_on` on the main thread, which is not a
//! runtime worker.
//!
//! * one-way: `ActorRef::cast` (synchronous); completion is detected with a
//!   final `call!` of `Ping`, FIFO behind the casts in the same message
//!   queue, whose reply (through an `RpcReplyPort`) is the actor's count.
//! * round trip: `call!(actor, Msg::Ping)`.

use crate::contender::{BoxError, Contender, check};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, call};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

struct Counter;

enum Msg {
    Tick(u64),
    /// Counts as one message; replied with the count so far.
    Ping(RpcReplyPort<u64>),
}

impl Actor for Counter {
    type Msg = Msg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Msg>,
        _args: (),
    ) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Msg>,
        msg: Msg,
        count: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            Msg::Tick(v) => *count += v,
            Msg::Ping(reply) => {
                *count += 1;
                let _ = reply.send(*count);
            }
        }
        Ok(())
    }
}

pub struct RactorBench {
    rt: Runtime,
    actor: ActorRef<Msg>,
    handle: JoinHandle<()>,
    expected: u64,
}

impl RactorBench {
    pub fn start() -> Result<Self, BoxError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ractor-bench-worker")
            .build()?;
        let (actor, handle) = rt.block_on(Actor::spawn(None, Counter, ()))?;
        Ok(RactorBench {
            rt,
            actor,
            handle,
            expected: 0,
        })
    }
}

impl Contender for RactorBench {
    fn one_way(&mut self, n: u64) -> Result<Duration, BoxError> {
        let actor = &self.actor;
        let (elapsed, count) = self.rt.block_on(async {
            let start = Instant::now();
            for _ in 0..n {
                actor.cast(Msg::Tick(1))?;
            }
            let count = call!(actor, Msg::Ping)?;
            Ok::<_, BoxError>((start.elapsed(), count))
        })?;
        self.expected += n + 1;
        check("ractor one-way", count, self.expected)?;
        Ok(elapsed)
    }

    fn round_trip(&mut self, m: u64) -> Result<Duration, BoxError> {
        let actor = &self.actor;
        let expected = &mut self.expected;
        self.rt.block_on(async {
            let start = Instant::now();
            for _ in 0..m {
                let count = call!(actor, Msg::Ping)?;
                *expected += 1;
                check("ractor round trip", count, *expected)?;
            }
            Ok(start.elapsed())
        })
    }

    fn shutdown(self) -> Result<(), BoxError> {
        self.actor.stop(None);
        self.rt.block_on(self.handle)?;
        drop(self.actor);
        // Dropping the runtime joins its worker threads.
        drop(self.rt);
        Ok(())
    }
}
