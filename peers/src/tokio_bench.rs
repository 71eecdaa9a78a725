//! Hand-written tokio "actors": tasks that own an `mpsc::Receiver`, on a
//! multi-thread runtime with 2 workers. Producers and clients are tasks
//! spawned on the same runtime (as tokio users write them); the clock is
//! read inside the producer/client task, and the main thread only collects
//! the result by blocking on the task's `JoinHandle`.
//!
//! * one-way: `mpsc::channel(1024)`, `send(..).await` per message; the
//!   producer then awaits the latch its receiver counts down after the last
//!   message.
//! * fan-in: 1,000 receiver tasks, each with its own `mpsc::channel(1024)`;
//!   4 producer tasks send round-robin; the clock runs in a coordinating
//!   task from spawning the producers until every receiver is done.
//! * round trip: a `Ping` carrying a fresh `oneshot::Sender`, reply awaited
//!   (the idiomatic tokio request/reply).
//! * busy round trip: the same, while a stream task sends ticks into the
//!   same channel in batches of `STREAM_BATCH`, each followed by a ping.

use crate::async_client::{stream_batches, timed_round_trips};
use crate::contender::{
    BoxError, Busy, Contender, FAN_IN_PRODUCERS, FAN_IN_RECEIVERS, Hooks, Latch, STREAM_BATCH,
    Stream, Tally, check, fan_in_target,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};

const CAPACITY: usize = 1024;

enum Msg {
    Tick,
    /// Replied with the receiver's count.
    Ping(oneshot::Sender<u64>),
}

/// The receiver task: counts ticks, answers pings; returns its count when
/// every sender is gone.
async fn receiver(mut rx: mpsc::Receiver<Msg>, mut tally: Tally) -> u64 {
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Tick => tally.tick(),
            Msg::Ping(reply) => {
                let _ = reply.send(tally.count);
            }
        }
    }
    tally.count
}

async fn ping(tx: &mpsc::Sender<Msg>) -> Result<u64, BoxError> {
    let (reply_tx, reply_rx) = oneshot::channel();
    tx.send(Msg::Ping(reply_tx))
        .await
        .map_err(|_| "tokio receiver gone")?;
    Ok(reply_rx.await?)
}

pub struct TokioBench {
    rt: Runtime,
}

impl TokioBench {
    pub fn start() -> Result<Self, BoxError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("tokio-bench-worker")
            .build()?;
        Ok(TokioBench { rt })
    }
}

impl Contender for TokioBench {
    fn one_way(&mut self, n: u64) -> Result<Duration, BoxError> {
        let latch = Latch::new(1);
        let (tx, rx) = mpsc::channel(CAPACITY);
        let consumer = self
            .rt
            .spawn(receiver(rx, Tally::new(Hooks::to_quota(n, latch.clone()))));
        let producer = self.rt.spawn(async move {
            let start = Instant::now();
            for _ in 0..n {
                tx.send(Msg::Tick)
                    .await
                    .map_err(|_| "tokio receiver gone")?;
            }
            latch.wait().await?;
            Ok::<_, BoxError>(start.elapsed())
        });
        let elapsed = self.rt.block_on(producer)??;
        check("tokio one-way", self.rt.block_on(consumer)?, n)?;
        Ok(elapsed)
    }

    fn fan_in(&mut self, n: u64) -> Result<Option<Duration>, BoxError> {
        let share = n / FAN_IN_RECEIVERS as u64;
        let per_producer = n / FAN_IN_PRODUCERS as u64;
        let latch = Latch::new(FAN_IN_RECEIVERS);
        let mut senders = Vec::with_capacity(FAN_IN_RECEIVERS);
        let mut consumers = Vec::with_capacity(FAN_IN_RECEIVERS);
        for _ in 0..FAN_IN_RECEIVERS {
            let (tx, rx) = mpsc::channel(CAPACITY);
            let tally = Tally::new(Hooks::to_quota(share, latch.clone()));
            consumers.push(self.rt.spawn(receiver(rx, tally)));
            senders.push(tx);
        }
        let senders = Arc::new(senders);
        let coordinator = self.rt.spawn(async move {
            let start = Instant::now();
            let mut producers = Vec::with_capacity(FAN_IN_PRODUCERS);
            for p in 0..FAN_IN_PRODUCERS {
                let senders = senders.clone();
                producers.push(tokio::spawn(async move {
                    for k in 0..per_producer {
                        senders[fan_in_target(p, k)]
                            .send(Msg::Tick)
                            .await
                            .map_err(|_| "tokio receiver gone")?;
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
        // The senders went with the coordinator: every receiver ends.
        self.rt.block_on(async {
            for consumer in consumers {
                check("tokio fan-in", consumer.await?, share)?;
            }
            Ok::<_, BoxError>(())
        })?;
        Ok(Some(elapsed))
    }

    fn round_trip_idle(&mut self, m: u64) -> Result<Duration, BoxError> {
        let (tx, rx) = mpsc::channel(CAPACITY);
        let server = self.rt.spawn(receiver(rx, Tally::new(Hooks::none())));
        let client = self.rt.spawn(async move {
            let start = Instant::now();
            for _ in 0..m {
                check("tokio round trip", ping(&tx).await?, 0)?;
            }
            Ok::<_, BoxError>(start.elapsed())
        });
        let elapsed = self.rt.block_on(client)??;
        self.rt.block_on(server)?;
        Ok(elapsed)
    }

    fn round_trip_busy(&mut self, m: u64) -> Result<Busy, BoxError> {
        let stream = Stream::new();
        let (tx, rx) = mpsc::channel(CAPACITY);
        let server = self.rt.spawn(receiver(rx, Tally::new(Hooks::none())));
        let (stream_tx, control) = (tx.clone(), stream.clone());
        let producer = self.rt.spawn(async move {
            stream_batches(&control, || async {
                for _ in 0..STREAM_BATCH {
                    stream_tx
                        .send(Msg::Tick)
                        .await
                        .map_err(|_| "tokio receiver gone")?;
                }
                ping(&stream_tx).await?;
                Ok::<_, BoxError>(())
            })
            .await
        });
        let control = stream.clone();
        let client = self
            .rt
            .spawn(async move { timed_round_trips(m, &control, || ping(&tx)).await });
        let samples = self.rt.block_on(client)??;
        self.rt.block_on(producer)??;
        let sent = stream.sent();
        check("tokio busy stream", self.rt.block_on(server)?, sent)?;
        Ok(Busy { samples, sent })
    }

    fn shutdown(self) -> Result<(), BoxError> {
        // Dropping the runtime joins its worker threads.
        drop(self.rt);
        Ok(())
    }
}
