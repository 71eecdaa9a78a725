//! Hand-written tokio "actor": a task owning an mpsc receiver, on a
//! multi-thread runtime with 2 workers. The producer/client runs in
//! `block_on` on the main thread, which is not a runtime worker, so every
//! message crosses threads.
//!
//! * one-way: `mpsc::channel(4096)`; completion is detected with a final
//!   `Ping` carrying a `oneshot::Sender`, FIFO behind the ticks, whose reply
//!   is the consumer's count.
//! * round trip: a `Ping` carrying a `oneshot::Sender`, reply awaited.

use crate::contender::{BoxError, Contender, check};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

enum Msg {
    Tick(u64),
    /// Counts as one message; replied with the count so far.
    Ping(oneshot::Sender<u64>),
}

pub struct TokioBench {
    rt: Runtime,
    tx: mpsc::Sender<Msg>,
    consumer: JoinHandle<u64>,
    expected: u64,
}

impl TokioBench {
    pub fn start() -> Result<Self, BoxError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tokio-bench-worker")
            .build()?;
        let (tx, mut rx) = mpsc::channel::<Msg>(4096);
        let consumer = rt.spawn(async move {
            let mut count = 0u64;
            while let Some(msg) = rx.recv().await {
                match msg {
                    Msg::Tick(v) => count += v,
                    Msg::Ping(reply) => {
                        count += 1;
                        let _ = reply.send(count);
                    }
                }
            }
            count
        });
        Ok(TokioBench {
            rt,
            tx,
            consumer,
            expected: 0,
        })
    }
}

impl Contender for TokioBench {
    fn one_way(&mut self, n: u64) -> Result<Duration, BoxError> {
        let tx = &self.tx;
        let (elapsed, count) = self.rt.block_on(async {
            let start = Instant::now();
            for _ in 0..n {
                tx.send(Msg::Tick(1))
                    .await
                    .map_err(|_| "tokio consumer gone")?;
            }
            let (reply_tx, reply_rx) = oneshot::channel();
            tx.send(Msg::Ping(reply_tx))
                .await
                .map_err(|_| "tokio consumer gone")?;
            let count = reply_rx.await?;
            Ok::<_, BoxError>((start.elapsed(), count))
        })?;
        self.expected += n + 1;
        check("tokio one-way", count, self.expected)?;
        Ok(elapsed)
    }

    fn round_trip(&mut self, m: u64) -> Result<Duration, BoxError> {
        let tx = &self.tx;
        let expected = &mut self.expected;
        self.rt.block_on(async {
            let start = Instant::now();
            for _ in 0..m {
                let (reply_tx, reply_rx) = oneshot::channel();
                tx.send(Msg::Ping(reply_tx))
                    .await
                    .map_err(|_| "tokio consumer gone")?;
                let count = reply_rx.await?;
                *expected += 1;
                check("tokio round trip", count, *expected)?;
            }
            Ok(start.elapsed())
        })
    }

    fn shutdown(self) -> Result<(), BoxError> {
        // Closing the channel ends the consumer task.
        drop(self.tx);
        let count = self.rt.block_on(self.consumer)?;
        check("tokio final", count, self.expected)?;
        // Dropping the runtime joins its worker threads.
        drop(self.rt);
        Ok(())
    }
}
