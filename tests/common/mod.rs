//! Helpers shared by the integration tests.
#![allow(dead_code)]

use agentry::imp::{PoolKind, Strategy};
use agentry::{ActionError, AgentSpec, Instruction, Runtime, RuntimeBuilder, Signal};
use std::sync::Once;

/// A signal of type `ty` with `data`.
pub fn sig(ty: &'static str, data: impl Into<agentry::signal::Data>) -> Signal {
    Signal::new(ty, "/test", data).expect("valid test signal")
}

/// Keeps deliberate panics in actions from flooding the test output.
pub fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !msg.starts_with("deliberate") {
                default(info);
            }
        }));
    });
}

/// The plain and the optimized implementation, so every behavioural test
/// runs against both regardless of the features this binary was built with.
pub fn strategies() -> [(&'static str, Strategy); 2] {
    [
        ("plain", Strategy::PLAIN),
        ("optimized", Strategy::OPTIMIZED),
    ]
}

/// Every strategy seam combination with the batch sizes that matter (1
/// with and without `batching`: the same schedule; 3; 64): 24 runtimes,
/// of which those with one batch size must agree exactly.
pub fn all_strategies() -> Vec<(String, Strategy, usize)> {
    let mut all = Vec::new();
    for fast_path in [false, true] {
        for pool in [PoolKind::Allocate, PoolKind::FreeList, PoolKind::ObjectPool] {
            for (batching, batch) in [(false, 1), (true, 1), (true, 3), (true, 64)] {
                let s = Strategy {
                    fast_path,
                    pool,
                    batching,
                };
                all.push((format!("{s:?} batch {batch}"), s, batch));
            }
        }
    }
    all
}

pub fn threaded(strategy: Strategy) -> RuntimeBuilder {
    Runtime::builder().workers(2).strategy(strategy)
}

pub fn deterministic(strategy: Strategy) -> RuntimeBuilder {
    Runtime::builder().deterministic().strategy(strategy)
}

/// An agent that appends `type:data` of every signal to its state and
/// replies with the new length.
pub fn log_spec() -> AgentSpec<Vec<String>, usize> {
    AgentSpec::new(Vec::new()).on("**", |log: &mut Vec<String>, ins: &mut Instruction| {
        let data = String::from_utf8_lossy(ins.data()).into_owned();
        log.push(format!("{}:{}", ins.ty(), data));
        Ok(log.len())
    })
}

/// A counter that adds the payload (decimal) to its state; `fail` and
/// `panic` signals mutate then fail.
pub fn counter_spec() -> AgentSpec<i64, i64> {
    AgentSpec::new(0)
        .on("add", |n: &mut i64, ins: &mut Instruction| {
            *n += parse(ins)?;
            Ok(*n)
        })
        .on("fail", |n: &mut i64, _: &mut Instruction| {
            *n += 1_000;
            Err(ActionError::rejected("deliberate failure"))
        })
        .on("panic", |n: &mut i64, _: &mut Instruction| {
            *n += 1_000_000;
            panic!("deliberate panic");
        })
        .query("get", |n: &i64, _: &Signal| Ok(*n))
}

pub fn parse(ins: &Instruction) -> Result<i64, ActionError> {
    std::str::from_utf8(ins.data())
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ActionError::invalid_input("not a number"))
}

/// Sends, retrying while the mailbox is full (the error hands the signal back).
pub fn send_retrying<S, R>(
    agent: &agentry::AgentRef<S, R>,
    mut signal: Signal,
) -> Result<(), agentry::SendError>
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    loop {
        match agent.send(signal) {
            Err(e) if e.is_full() => {
                signal = e.into_signal();
                std::thread::yield_now();
            }
            other => return other,
        }
    }
}

/// Last sequence number seen per sender, and every order violation.
pub type SeqState = (std::collections::HashMap<u64, u64>, Vec<String>);

/// An agent that checks per-sender FIFO: each `seq` signal carries
/// `sender:n`, and every sender's numbers must arrive 0, 1, 2, ...
pub fn seq_spec() -> AgentSpec<SeqState> {
    AgentSpec::<SeqState>::new(Default::default()).on(
        "seq",
        |(last, bad): &mut SeqState, ins: &mut Instruction| {
            let text = std::str::from_utf8(ins.data()).unwrap_or_default();
            let Some((s, n)) = text.split_once(':') else {
                bad.push(format!("malformed {text:?}"));
                return Ok(());
            };
            let (Ok(s), Ok(n)) = (s.parse::<u64>(), n.parse::<u64>()) else {
                bad.push(format!("malformed {text:?}"));
                return Ok(());
            };
            let prev = last.insert(s, n);
            if prev.map_or(n != 0, |p| p + 1 != n) {
                bad.push(format!("sender {s}: {prev:?} then {n}"));
            }
            Ok(())
        },
    )
}

/// Asserts that `state` saw every sender's `each` signals in order.
pub fn assert_in_send_order(name: &str, state: &SeqState, senders: u64, each: u64) {
    assert!(
        state.1.is_empty(),
        "{name}: order violated: {:?}",
        &state.1[..state.1.len().min(5)]
    );
    for s in 0..senders {
        assert_eq!(
            state.0.get(&s),
            Some(&(each - 1)),
            "{name}: sender {s} incomplete"
        );
    }
}
