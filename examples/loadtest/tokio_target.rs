//! Baseline: tokio, as its users write an actor. One task per agent on a
//! multi-thread runtime with `workers` worker threads, each reading a
//! bounded `mpsc` channel of the agent's mailbox capacity. The load
//! generator's threads are outside the runtime, so they use the blocking
//! side of tokio's API: `try_send` (a full channel hands the message back;
//! the sender yields and retries, as with agentry), and a `oneshot` reply
//! awaited with `blocking_recv` for a call. A state read is a request with
//! a `oneshot` reply, the usual way to read an actor's state in tokio (it
//! counts as a processed message here; agentry's reads do not).

use crate::record::{Recorder, Stamp};
use crate::target::{Counts, Outcome, Refused, Target, payload, retrying, subscribers};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

pub enum Msg {
    Work(Vec<u8>),
    Fail(Vec<u8>),
    Call(Vec<u8>, oneshot::Sender<u64>),
    State(oneshot::Sender<u64>),
    Topic(Vec<u8>),
}

pub struct TokioTarget {
    rt: tokio::runtime::Runtime,
    mailboxes: Vec<mpsc::Sender<Msg>>,
    payload: usize,
    recorder: Arc<Recorder>,
    accepted: AtomicU64,
    failed: Arc<AtomicU64>,
}

impl TokioTarget {
    pub fn new(
        agents: usize,
        workers: usize,
        mailbox: usize,
        payload: usize,
        recorder: Arc<Recorder>,
    ) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .build()?;
        let failed = Arc::new(AtomicU64::new(0));
        let mailboxes = (0..agents)
            .map(|i| {
                let (tx, mut rx) = mpsc::channel::<Msg>(mailbox);
                let (recorder, failed) = (recorder.clone(), failed.clone());
                rt.spawn(async move {
                    let mut n = 0u64;
                    while let Some(msg) = rx.recv().await {
                        match msg {
                            Msg::Work(data) => {
                                recorder.handled(i as u64, Stamp::read(&data));
                                n += 1;
                            }
                            Msg::Fail(data) => {
                                std::hint::black_box(&data);
                                failed.fetch_add(1, Ordering::Relaxed);
                                recorder.processed.fetch_add(1, Ordering::Release);
                            }
                            Msg::Call(data, reply) => {
                                recorder.handled(i as u64, Stamp::read(&data));
                                n += 1;
                                let _ = reply.send(n);
                            }
                            Msg::State(reply) => {
                                let _ = reply.send(n);
                                recorder.processed.fetch_add(1, Ordering::Release);
                            }
                            Msg::Topic(data) => {
                                std::hint::black_box(&data);
                                n += 1;
                                recorder.processed.fetch_add(1, Ordering::Release);
                            }
                        }
                    }
                });
                tx
            })
            .collect();
        Ok(TokioTarget {
            rt,
            mailboxes,
            payload,
            recorder,
            accepted: AtomicU64::new(0),
            failed,
        })
    }

    fn try_send(&self, agent: usize, msg: Msg) -> Result<(), Refused<Msg>> {
        match self.mailboxes[agent].try_send(msg) {
            Ok(()) => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(back)) => Err(Refused::Full(back)),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Refused::Other),
        }
    }

    pub fn finish(self, timeout: Duration) -> Outcome {
        let reached_idle = wait_processed(&self.recorder, &self.accepted, timeout);
        drop(self.mailboxes);
        self.rt.shutdown_timeout(timeout);
        Outcome {
            reached_idle,
            accepted: self.accepted.load(Ordering::Relaxed),
            processed: self.recorder.processed.load(Ordering::Acquire),
            dead_lettered: 0,
            failed_actions: self.failed.load(Ordering::Relaxed),
            memo: None,
        }
    }
}

/// Waits until the receivers processed every accepted message (a baseline
/// has no `wait_idle`; this is the load generator's own bookkeeping).
pub fn wait_processed(recorder: &Recorder, accepted: &AtomicU64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while recorder.processed.load(Ordering::Acquire) < accepted.load(Ordering::Relaxed) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

impl Target for TokioTarget {
    fn send(&self, agent: usize, stamp: Stamp, fail: bool, counts: &Counts) -> bool {
        let data = payload(stamp, self.payload);
        let msg = if fail {
            Msg::Fail(data)
        } else {
            Msg::Work(data)
        };
        retrying(msg, counts, |m| self.try_send(agent, m))
    }

    fn call(&self, agent: usize, stamp: Stamp, _timeout: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        let msg = Msg::Call(payload(stamp, self.payload), tx);
        retrying(msg, &Counts::default(), |m| self.try_send(agent, m)) && rx.blocking_recv().is_ok()
    }

    fn state(&self, agent: usize) -> bool {
        let (tx, rx) = oneshot::channel();
        retrying(Msg::State(tx), &Counts::default(), |m| {
            self.try_send(agent, m)
        }) && rx.blocking_recv().is_ok()
    }

    fn publish(&self, stamp: Stamp) -> Result<u64, ()> {
        let data = payload(stamp, self.payload);
        let mut refused = 0;
        for i in subscribers(self.mailboxes.len()) {
            if self.try_send(i, Msg::Topic(data.clone())).is_err() {
                refused += 1;
            }
        }
        Ok(refused)
    }
}
