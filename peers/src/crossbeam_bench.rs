//! crossbeam channels between plain threads: the floor.
//!
//! * one-way: an unbounded channel to one consumer thread; completion is
//!   detected with a final `Flush` message, FIFO behind the ticks, that the
//!   consumer answers with its count on a bounded(1) channel.
//! * round trip: a bounded(1) request channel and a bounded(1) reply channel
//!   to a second thread.

use crate::contender::{BoxError, Contender, check};
use crossbeam::channel::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

enum Msg {
    Tick(u64),
    Flush(Sender<u64>),
}

pub struct CrossbeamBench {
    ticks: Sender<Msg>,
    consumer: JoinHandle<()>,
    requests: Sender<u64>,
    replies: Receiver<u64>,
    server: JoinHandle<()>,
    one_way_expected: u64,
    round_trip_expected: u64,
}

impl CrossbeamBench {
    pub fn start() -> Result<Self, BoxError> {
        let (ticks, tick_rx) = channel::unbounded::<Msg>();
        let consumer = thread::Builder::new()
            .name("crossbeam-consumer".into())
            .spawn(move || {
                let mut count = 0u64;
                for msg in tick_rx {
                    match msg {
                        Msg::Tick(v) => count += v,
                        Msg::Flush(done) => {
                            let _ = done.send(count);
                        }
                    }
                }
            })?;
        let (requests, request_rx) = channel::bounded::<u64>(1);
        let (reply_tx, replies) = channel::bounded::<u64>(1);
        let server = thread::Builder::new()
            .name("crossbeam-server".into())
            .spawn(move || {
                let mut count = 0u64;
                for v in request_rx {
                    count += v;
                    if reply_tx.send(count).is_err() {
                        break;
                    }
                }
            })?;
        Ok(CrossbeamBench {
            ticks,
            consumer,
            requests,
            replies,
            server,
            one_way_expected: 0,
            round_trip_expected: 0,
        })
    }
}

impl Contender for CrossbeamBench {
    fn one_way(&mut self, n: u64) -> Result<Duration, BoxError> {
        let (done_tx, done_rx) = channel::bounded(1);
        let start = Instant::now();
        for _ in 0..n {
            self.ticks
                .send(Msg::Tick(1))
                .map_err(|_| "crossbeam consumer gone")?;
        }
        self.ticks
            .send(Msg::Flush(done_tx))
            .map_err(|_| "crossbeam consumer gone")?;
        let count = done_rx.recv()?;
        let elapsed = start.elapsed();
        self.one_way_expected += n;
        check("crossbeam one-way", count, self.one_way_expected)?;
        Ok(elapsed)
    }

    fn round_trip(&mut self, m: u64) -> Result<Duration, BoxError> {
        let start = Instant::now();
        for _ in 0..m {
            self.requests.send(1).map_err(|_| "crossbeam server gone")?;
            let count = self.replies.recv()?;
            self.round_trip_expected += 1;
            check("crossbeam round trip", count, self.round_trip_expected)?;
        }
        Ok(start.elapsed())
    }

    fn shutdown(self) -> Result<(), BoxError> {
        // Closing the channels ends both loops.
        drop(self.ticks);
        drop(self.requests);
        self.consumer
            .join()
            .map_err(|_| "crossbeam consumer panicked")?;
        self.server
            .join()
            .map_err(|_| "crossbeam server panicked")?;
        Ok(())
    }
}
