//! Baseline: plain threads and `crossbeam` channels, as their users build a
//! worker pool. `workers` threads, each owning every `workers`-th agent's
//! counter and blocking in `recv` on one bounded channel of the mailbox
//! capacity (so a full channel hands the message back, as with agentry). A
//! call and a state read carry a `bounded(1)` reply channel.

use crate::record::{Recorder, Stamp};
use crate::target::{Counts, Outcome, Refused, Target, payload, retrying, subscribers};
use crate::tokio_target::wait_processed;
use crossbeam::channel::{Sender, TrySendError, bounded};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

enum Op {
    Work(Vec<u8>),
    Fail(Vec<u8>),
    Call(Vec<u8>, Sender<u64>),
    State(Sender<u64>),
    Topic(Vec<u8>),
}

pub struct CrossbeamTarget {
    channels: Vec<Sender<(usize, Op)>>,
    threads: Vec<JoinHandle<()>>,
    agents: usize,
    payload: usize,
    recorder: Arc<Recorder>,
    accepted: AtomicU64,
    failed: Arc<AtomicU64>,
}

impl CrossbeamTarget {
    pub fn new(
        agents: usize,
        workers: usize,
        mailbox: usize,
        payload: usize,
        recorder: Arc<Recorder>,
    ) -> Self {
        let workers = workers.max(1);
        let failed = Arc::new(AtomicU64::new(0));
        let (channels, threads) = (0..workers)
            .map(|_| {
                let (tx, rx) = bounded::<(usize, Op)>(mailbox);
                let (recorder, failed) = (recorder.clone(), failed.clone());
                let owned = agents.div_ceil(workers);
                let handle = std::thread::spawn(move || {
                    let mut counters = vec![0u64; owned];
                    for (agent, op) in rx {
                        let n = &mut counters[agent / workers];
                        match op {
                            Op::Work(data) => {
                                recorder.handled(agent as u64, Stamp::read(&data));
                                *n += 1;
                            }
                            Op::Fail(data) => {
                                std::hint::black_box(&data);
                                failed.fetch_add(1, Ordering::Relaxed);
                                recorder.processed.fetch_add(1, Ordering::Release);
                            }
                            Op::Call(data, reply) => {
                                recorder.handled(agent as u64, Stamp::read(&data));
                                *n += 1;
                                let _ = reply.send(*n);
                            }
                            Op::State(reply) => {
                                let _ = reply.send(*n);
                                recorder.processed.fetch_add(1, Ordering::Release);
                            }
                            Op::Topic(data) => {
                                std::hint::black_box(&data);
                                *n += 1;
                                recorder.processed.fetch_add(1, Ordering::Release);
                            }
                        }
                    }
                });
                (tx, handle)
            })
            .unzip();
        CrossbeamTarget {
            channels,
            threads,
            agents,
            payload,
            recorder,
            accepted: AtomicU64::new(0),
            failed,
        }
    }

    fn try_send(&self, agent: usize, op: Op) -> Result<(), Refused<Op>> {
        let channel = &self.channels[agent % self.channels.len()];
        match channel.try_send((agent, op)) {
            Ok(()) => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full((_, back))) => Err(Refused::Full(back)),
            Err(TrySendError::Disconnected(_)) => Err(Refused::Other),
        }
    }

    pub fn finish(self, timeout: Duration) -> Outcome {
        let reached_idle = wait_processed(&self.recorder, &self.accepted, timeout);
        drop(self.channels);
        for t in self.threads {
            let _ = t.join();
        }
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

impl Target for CrossbeamTarget {
    fn send(&self, agent: usize, stamp: Stamp, fail: bool, counts: &Counts) -> bool {
        let data = payload(stamp, self.payload);
        let op = if fail { Op::Fail(data) } else { Op::Work(data) };
        retrying(op, counts, |o| self.try_send(agent, o))
    }

    fn call(&self, agent: usize, stamp: Stamp, timeout: Duration) -> bool {
        let (tx, rx) = bounded(1);
        let op = Op::Call(payload(stamp, self.payload), tx);
        retrying(op, &Counts::default(), |o| self.try_send(agent, o))
            && rx.recv_timeout(timeout).is_ok()
    }

    fn state(&self, agent: usize) -> bool {
        let (tx, rx) = bounded(1);
        retrying(Op::State(tx), &Counts::default(), |o| {
            self.try_send(agent, o)
        }) && rx.recv().is_ok()
    }

    fn publish(&self, stamp: Stamp) -> Result<u64, ()> {
        let data = payload(stamp, self.payload);
        let mut refused = 0;
        for i in subscribers(self.agents) {
            if self.try_send(i, Op::Topic(data.clone())).is_err() {
                refused += 1;
            }
        }
        Ok(refused)
    }
}
