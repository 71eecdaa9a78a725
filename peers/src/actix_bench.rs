//! actix: the actor runs on its own `Arbiter` (a thread with its own
//! single-threaded tokio runtime); the producer/client runs in the
//! `System`'s `block_on` on the main thread.
//!
//! * one-way: `Addr::do_send` (ignores the mailbox capacity, so the queue is
//!   effectively unbounded); completion is detected with a final
//!   `addr.send(Ping).await`, FIFO behind the `do_send`s in the same queue,
//!   whose reply is the actor's count.
//! * round trip: `addr.send(Ping).await`.

use crate::contender::{BoxError, Contender, check};
use actix::{Actor, Addr, Context, Handler, Message};
use actix_rt::{Arbiter, System, SystemRunner};
use std::time::{Duration, Instant};

struct Counter {
    count: u64,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

struct Tick(u64);

impl Message for Tick {
    type Result = ();
}

/// Counts as one message; replied with the count so far.
struct Ping;

impl Message for Ping {
    type Result = u64;
}

impl Handler<Tick> for Counter {
    type Result = ();

    fn handle(&mut self, msg: Tick, _: &mut Context<Self>) {
        self.count += msg.0;
    }
}

impl Handler<Ping> for Counter {
    type Result = u64;

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u64 {
        self.count += 1;
        self.count
    }
}

pub struct ActixBench {
    system: SystemRunner,
    arbiter: Arbiter,
    addr: Addr<Counter>,
    expected: u64,
}

impl ActixBench {
    pub fn start() -> Result<Self, BoxError> {
        let system = System::new();
        let arbiter = Arbiter::new();
        let addr = Counter::start_in_arbiter(&arbiter.handle(), |_| Counter { count: 0 });
        Ok(ActixBench {
            system,
            arbiter,
            addr,
            expected: 0,
        })
    }
}

impl Contender for ActixBench {
    fn one_way(&mut self, n: u64) -> Result<Duration, BoxError> {
        let addr = &self.addr;
        let (elapsed, count) = self.system.block_on(async {
            let start = Instant::now();
            for _ in 0..n {
                addr.do_send(Tick(1));
            }
            let count = addr.send(Ping).await?;
            Ok::<_, BoxError>((start.elapsed(), count))
        })?;
        self.expected += n + 1;
        check("actix one-way", count, self.expected)?;
        Ok(elapsed)
    }

    fn round_trip(&mut self, m: u64) -> Result<Duration, BoxError> {
        let addr = &self.addr;
        let expected = &mut self.expected;
        self.system.block_on(async {
            let start = Instant::now();
            for _ in 0..m {
                let count = addr.send(Ping).await?;
                *expected += 1;
                check("actix round trip", count, *expected)?;
            }
            Ok(start.elapsed())
        })
    }

    fn shutdown(self) -> Result<(), BoxError> {
        // The last address gone stops the actor; stopping the arbiter ends
        // its event loop and thread, which we join.
        drop(self.addr);
        self.arbiter.stop();
        self.arbiter
            .join()
            .map_err(|_| "actix arbiter thread panicked")?;
        System::current().stop();
        self.system.run()?;
        Ok(())
    }
}
