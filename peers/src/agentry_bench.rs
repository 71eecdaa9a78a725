//! agentry with every runtime optimization on (`features = ["full"]`): one
//! agent on a 2-worker runtime.
//!
//! * one-way: `AgentRef::send` of prebuilt `Signal`s (8-byte payload),
//!   retried on a full mailbox; completion is detected by polling
//!   `Runtime::metrics().processed` until it has grown by `n`.
//! * round trip: `AgentRef::call`. Note: when the agent is idle, agentry runs
//!   the called instruction on the caller's thread (documented behaviour),
//!   so in this sequential workload a round trip usually does not cross
//!   threads at all, while every other contender's does.

use crate::contender::{BoxError, Contender, check, wait_until};
use agentry::{AgentRef, AgentSpec, Instruction, Runtime, Signal};
use bytes::Bytes;
use std::time::{Duration, Instant};

const PAYLOAD: &[u8; 8] = b"12345678";
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

pub struct AgentryBench {
    rt: Runtime,
    agent: AgentRef<u64, u64>,
    /// Instructions the agent has run so far (its state should equal it).
    expected: u64,
}

impl AgentryBench {
    pub fn start() -> Result<Self, BoxError> {
        let rt = Runtime::builder()
            .workers(2)
            .mailbox_capacity(4096)
            .build()?;
        let spec = AgentSpec::<u64, u64>::new(0).on("tick", |n: &mut u64, _: &mut Instruction| {
            *n += 1;
            Ok(*n)
        });
        let agent = rt.spawn(&spec)?;
        Ok(AgentryBench {
            rt,
            agent,
            expected: 0,
        })
    }
}

/// `n` distinct signals, built before the clock starts (what a agentry user
/// sends: a validated CloudEvents envelope with its own id).
fn signals(n: u64) -> Result<Vec<Signal>, BoxError> {
    let payload = Bytes::from_static(PAYLOAD);
    (0..n)
        .map(|_| {
            Signal::builder("tick", "/bench")
                .data(payload.clone())
                .build()
                .map_err(BoxError::from)
        })
        .collect()
}

impl Contender for AgentryBench {
    fn one_way(&mut self, n: u64) -> Result<Duration, BoxError> {
        let batch = signals(n)?;
        let target = self.rt.metrics().processed + n;
        let start = Instant::now();
        for signal in batch {
            let mut signal = signal;
            loop {
                match self.agent.send(signal) {
                    Ok(()) => break,
                    Err(e) if e.is_full() => {
                        signal = e.into_signal();
                        std::thread::yield_now();
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        wait_until(|| self.rt.metrics().processed >= target)?;
        let elapsed = start.elapsed();
        self.expected += n;
        check("agentry one-way", *self.agent.state()?, self.expected)?;
        Ok(elapsed)
    }

    fn round_trip(&mut self, m: u64) -> Result<Duration, BoxError> {
        let batch = signals(m)?;
        let start = Instant::now();
        for signal in batch {
            let count = self.agent.call(signal, CALL_TIMEOUT)?;
            self.expected += 1;
            check("agentry round trip", count, self.expected)?;
        }
        Ok(start.elapsed())
    }

    fn shutdown(self) -> Result<(), BoxError> {
        drop(self.agent);
        // Joins both workers.
        let report = self.rt.shutdown();
        if report.dead_letters.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "agentry: {} dead letters at shutdown",
                report.dead_letters.len()
            )
            .into())
        }
    }
}
