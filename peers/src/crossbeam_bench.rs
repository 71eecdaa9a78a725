//! crossbeam unbounded channels between plain threads: the floor (no
//! scheduler, no envelope, no routing). Every thread is started for one
//! repetition and joined at its end; the producer/client is the main thread.
//!
//! * one-way: `unbounded()` to one receiver thread; the producer then waits
//!   for the latch the receiver counts down on its last message.
//! * fan-in: not run. crossbeam is a channel, not a runtime: 1,000
//!   receivers would be 1,000 OS threads on 2 cores, or a hand-written
//!   scheduler, which is what the other contenders are.
//! * round trip: an unbounded request channel and an unbounded reply
//!   channel to a server thread (blocking `recv` on both sides; crossbeam
//!   spins briefly before it parks).
//! * busy round trip: the same, while a stream thread sends ticks into the
//!   request channel in batches of `STREAM_BATCH`, each followed by a
//!   flush request answered on the stream's own reply channel.

use crate::contender::{
    BoxError, Busy, Contender, Hooks, Latch, STREAM_BATCH, Stream, Tally, check, time_trips,
};
use crossbeam::channel::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

enum Msg {
    Tick,
    /// Replied with the count on the server's ping reply channel.
    Ping,
    /// Replied with the count on the server's flush reply channel (the
    /// stream producer's).
    Flush,
}

/// Where the server answers pings and flushes.
#[derive(Default)]
struct Replies {
    ping: Option<Sender<u64>>,
    flush: Option<Sender<u64>>,
}

/// The receiver thread's loop: counts ticks, answers pings; returns its
/// count when every sender is gone.
fn serve(rx: Receiver<Msg>, replies: Replies, mut tally: Tally) -> u64 {
    let reply = |to: &Option<Sender<u64>>, count: u64| {
        if let Some(to) = to {
            let _ = to.send(count);
        }
    };
    for msg in rx {
        match msg {
            Msg::Tick => tally.tick(),
            Msg::Ping => reply(&replies.ping, tally.count),
            Msg::Flush => reply(&replies.flush, tally.count),
        }
    }
    tally.count
}

fn spawn_server(
    rx: Receiver<Msg>,
    replies: Replies,
    tally: Tally,
) -> Result<thread::JoinHandle<u64>, BoxError> {
    Ok(thread::Builder::new()
        .name("crossbeam-receiver".into())
        .spawn(move || serve(rx, replies, tally))?)
}

fn joined<T>(r: thread::Result<T>) -> Result<T, BoxError> {
    r.map_err(|_| "crossbeam: a thread panicked".into())
}

fn ping(requests: &Sender<Msg>, replies: &Receiver<u64>) -> Result<u64, BoxError> {
    requests
        .send(Msg::Ping)
        .map_err(|_| "crossbeam server gone")?;
    Ok(replies.recv()?)
}

pub struct CrossbeamBench;

impl CrossbeamBench {
    pub fn start() -> Result<Self, BoxError> {
        Ok(CrossbeamBench)
    }
}

impl Contender for CrossbeamBench {
    fn one_way(&mut self, n: u64) -> Result<Duration, BoxError> {
        let latch = Latch::new(1);
        let (tx, rx) = channel::unbounded();
        let receiver = spawn_server(
            rx,
            Replies::default(),
            Tally::new(Hooks::to_quota(n, latch.clone())),
        )?;
        let start = Instant::now();
        for _ in 0..n {
            tx.send(Msg::Tick).map_err(|_| "crossbeam receiver gone")?;
        }
        latch.wait_blocking()?;
        let elapsed = start.elapsed();
        drop(tx);
        check("crossbeam one-way", joined(receiver.join())?, n)?;
        Ok(elapsed)
    }

    fn fan_in(&mut self, _n: u64) -> Result<Option<Duration>, BoxError> {
        Ok(None)
    }

    fn round_trip_idle(&mut self, m: u64) -> Result<Duration, BoxError> {
        let (requests, rx) = channel::unbounded();
        let (reply_tx, replies) = channel::unbounded();
        let replies_to = Replies {
            ping: Some(reply_tx),
            flush: None,
        };
        let server = spawn_server(rx, replies_to, Tally::new(Hooks::none()))?;
        let start = Instant::now();
        for _ in 0..m {
            check("crossbeam round trip", ping(&requests, &replies)?, 0)?;
        }
        let elapsed = start.elapsed();
        drop(requests);
        joined(server.join())?;
        Ok(elapsed)
    }

    fn round_trip_busy(&mut self, m: u64) -> Result<Busy, BoxError> {
        let stream = Stream::new();
        let (requests, rx) = channel::unbounded();
        let (reply_tx, replies) = channel::unbounded();
        let (flush_tx, flushes) = channel::unbounded();
        let server = spawn_server(
            rx,
            Replies {
                ping: Some(reply_tx),
                flush: Some(flush_tx),
            },
            Tally::new(Hooks::none()),
        )?;
        let (stream_tx, control) = (requests.clone(), stream.clone());
        let producer = thread::Builder::new()
            .name("crossbeam-stream".into())
            .spawn(move || {
                let result = (|| {
                    while control.running() {
                        for _ in 0..STREAM_BATCH {
                            stream_tx
                                .send(Msg::Tick)
                                .map_err(|_| "crossbeam server gone")?;
                        }
                        stream_tx
                            .send(Msg::Flush)
                            .map_err(|_| "crossbeam server gone")?;
                        flushes.recv()?;
                        control.batch_done();
                    }
                    Ok::<_, BoxError>(())
                })();
                control.exited();
                result
            })?;
        while !stream.started() {
            thread::yield_now();
        }
        let samples = time_trips(m, |_| ping(&requests, &replies).map(drop));
        // Stop the stream whatever happened.
        stream.stop();
        joined(producer.join())??;
        drop(requests);
        let sent = stream.sent();
        check("crossbeam busy stream", joined(server.join())?, sent)?;
        Ok(Busy {
            samples: samples?,
            sent,
        })
    }

    fn shutdown(self) -> Result<(), BoxError> {
        // Every thread was joined at the end of its repetition.
        Ok(())
    }
}
