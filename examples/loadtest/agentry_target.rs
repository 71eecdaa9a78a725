//! agentry: `agents` agents on a threaded runtime; the topic is a bus
//! subscription.

use crate::Options;
use crate::record::{Recorder, Stamp};
use crate::target::{Counts, Outcome, Refused, Target, payload, retrying, subscribers};
use agentry::{ActionError, AgentRef, AgentSpec, Bus, Instruction, Runtime, Signal};
use std::sync::Arc;
use std::time::Duration;

pub struct AgentryTarget {
    rt: Runtime,
    agents: Vec<AgentRef<u64, u64>>,
    bus: Bus,
    payload: usize,
}

fn spec(recorder: Arc<Recorder>) -> AgentSpec<u64, u64> {
    AgentSpec::new(0)
        .on("load.work", move |n: &mut u64, ins: &mut Instruction| {
            recorder.handled(ins.agent().get(), Stamp::read(ins.data()));
            *n += 1;
            Ok(*n)
        })
        .on("load.fail", |_: &mut u64, _: &mut Instruction| {
            Err(ActionError::rejected("configured failure"))
        })
        .on("load.topic", |n: &mut u64, _: &mut Instruction| {
            *n += 1;
            Ok(*n)
        })
}

fn signal(ty: &'static str, stamp: Stamp, len: usize) -> Signal {
    Signal::builder(ty, "/loadtest")
        .data(payload(stamp, len))
        .build()
        .expect("valid signal")
}

impl AgentryTarget {
    pub fn new(
        o: &Options,
        run_on_sender: bool,
        recorder: Arc<Recorder>,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let rt = Runtime::builder()
            .workers(o.workers)
            .mailbox_capacity(o.mailbox)
            .run_on_sender(run_on_sender)
            .build()?;
        let spec = spec(recorder);
        let agents: Vec<_> = (0..o.agents.max(1))
            .map(|_| rt.spawn(&spec))
            .collect::<Result<_, _>>()?;
        let bus = rt.bus();
        for i in subscribers(agents.len()) {
            bus.subscribe_agent("load.topic", &agents[i].addr())?;
        }
        Ok(AgentryTarget {
            rt,
            agents,
            bus,
            payload: o.payload,
        })
    }

    pub fn finish(self, timeout: Duration) -> Outcome {
        let reached_idle = self.rt.wait_idle(timeout);
        let memo = self.agents.iter().fold((0u64, 0u64), |(h, m), a| {
            let s = a.memo_stats();
            (h + s.hits, m + s.misses)
        });
        let m = self.rt.shutdown().metrics;
        Outcome {
            reached_idle,
            accepted: m.accepted,
            processed: m.processed,
            dead_lettered: m.dead_lettered,
            failed_actions: m.failed_actions,
            memo: (memo != (0, 0)).then_some(memo),
        }
    }
}

impl Target for AgentryTarget {
    fn send(&self, agent: usize, stamp: Stamp, fail: bool, counts: &Counts) -> bool {
        let ty = if fail { "load.fail" } else { "load.work" };
        let agent = &self.agents[agent];
        retrying(signal(ty, stamp, self.payload), counts, |s| {
            agent.send(s).map_err(|e| {
                if e.is_full() {
                    Refused::Full(e.into_signal())
                } else {
                    Refused::Other
                }
            })
        })
    }

    fn call(&self, agent: usize, stamp: Stamp, timeout: Duration) -> bool {
        self.agents[agent]
            .call(signal("load.work", stamp, self.payload), timeout)
            .is_ok()
    }

    fn state(&self, agent: usize) -> bool {
        self.agents[agent].state().is_ok()
    }

    fn publish(&self, stamp: Stamp) -> Result<u64, ()> {
        self.bus
            .publish(signal("load.topic", stamp, self.payload))
            .map(|report| report.failures.len() as u64)
            .map_err(|_| ())
    }
}
