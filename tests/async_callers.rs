//! Async callers: `call_async`, `send_async` and the blocking
//! `send_timeout`, under tokio's current-thread and multi-thread runtimes
//! (the library itself depends on no executor), including timeouts and
//! futures dropped mid-call (the signal's accounting and the reply slot
//! must survive that).

mod common;

use agentry::{AgentRef, AgentSpec, CallError, Instruction, Runtime, SendErrorKind};
use common::sig;
use std::future::Future;
use std::pin::pin;
use std::sync::Mutex;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(10);

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

fn counter() -> AgentSpec<u64, u64> {
    AgentSpec::new(0).on("inc", |n: &mut u64, _: &mut Instruction| {
        *n += 1;
        Ok(*n)
    })
}

/// An agent whose "hold" action blocks until the test lets it go, and
/// tells the test it started (a channel each way: no sleeps).
struct Gate {
    started: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
}

fn gated() -> (AgentSpec<u64, u64>, Gate) {
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let release_rx = Mutex::new(release_rx);
    let spec = counter().on("hold", move |n: &mut u64, _: &mut Instruction| {
        let _ = started_tx.lock().unwrap().send(());
        let _ = release_rx.lock().unwrap().recv();
        *n += 100;
        Ok(*n)
    });
    (spec, Gate { started, release })
}

/// A 1-worker runtime and a gated agent (mailbox `capacity`) whose worker
/// is held inside "hold" until the test releases the gate.
fn held(capacity: usize) -> (Runtime, AgentRef<u64, u64>, Gate) {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (spec, gate) = gated();
    let agent = rt.spawn(&spec.mailbox_capacity(capacity)).unwrap();
    agent.send(sig("hold", "")).unwrap();
    gate.started.recv().unwrap();
    (rt, agent, gate)
}

fn balanced(rt: Runtime) {
    let report = rt.shutdown();
    let m = report.metrics;
    assert_eq!(m.accepted, m.processed + m.dead_lettered, "{m:?}");
}

#[test]
fn call_async_answers_under_both_tokio_flavours() {
    for (name, tokio_rt) in [("current", current_thread()), ("multi", multi_thread())] {
        let rt = Runtime::builder().workers(2).build().unwrap();
        let agent = rt.spawn(&counter()).unwrap();
        let a = agent.clone();
        let replies = tokio_rt.block_on(async move {
            let mut replies = Vec::new();
            for _ in 0..100 {
                replies.push(a.call_async(sig("inc", ""), LONG).await.unwrap());
            }
            // Many tasks at once: each reply is someone's count.
            let mut tasks = Vec::new();
            for _ in 0..8 {
                let a = a.clone();
                tasks.push(tokio::spawn(async move {
                    let mut got = Vec::new();
                    for _ in 0..50 {
                        got.push(a.call_async(sig("inc", ""), LONG).await.unwrap());
                    }
                    got
                }));
            }
            for t in tasks {
                replies.extend(t.await.unwrap());
            }
            replies
        });
        let mut sorted = replies.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..=500).collect::<Vec<u64>>(), "{name}");
        assert_eq!(
            &replies[..100],
            &(1..=100).collect::<Vec<u64>>()[..],
            "{name}"
        );
        balanced(rt);
    }
}

#[test]
fn call_async_waits_without_blocking_and_is_woken_by_the_answer() {
    let tokio_rt = current_thread();
    let (rt, agent, gate) = held(1024);
    // The agent is busy: the call's first poll is pending, and the one
    // thread of this executor stays free for other tasks meanwhile.
    let a = agent.clone();
    let (reply, other) = tokio_rt.block_on(async move {
        let call = tokio::spawn(async move { a.call_async(sig("inc", ""), LONG).await });
        let other = tokio::spawn(async { 7 }).await.unwrap();
        gate.release.send(()).unwrap();
        (call.await.unwrap(), other)
    });
    assert_eq!((reply.unwrap(), other), (101, 7));
    balanced(rt);
}

#[test]
fn a_call_async_timeout_is_a_typed_error_and_the_signal_still_runs_once() {
    let tokio_rt = current_thread();
    let (rt, agent, gate) = held(1024);
    let a = agent.clone();
    let err = tokio_rt
        .block_on(async move {
            a.call_async(sig("inc", ""), Duration::from_millis(20))
                .await
        })
        .unwrap_err();
    assert_eq!(
        err,
        CallError::Timeout {
            after: Duration::from_millis(20)
        }
    );
    gate.release.send(()).unwrap();
    assert!(rt.wait_idle(LONG));
    assert_eq!(
        *agent.state().unwrap(),
        101,
        "the timed-out signal ran, once"
    );
    assert_eq!(rt.timer_queue_len(), 0);
    balanced(rt);
}

/// Polls `fut` once with a waker that does nothing.
fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_dropped_call_future_keeps_the_accounting_and_leaks_nothing() {
    let (rt, agent, gate) = held(1024);

    // Never polled: nothing is sent.
    drop(agent.call_async(sig("inc", ""), LONG));
    assert_eq!(rt.metrics().accepted, 1);

    // Polled once (accepted, pending, deadline armed), then dropped.
    {
        let mut call = pin!(agent.call_async(sig("inc", ""), LONG));
        assert!(poll_once(call.as_mut()).is_pending());
        assert_eq!(rt.metrics().accepted, 2);
        assert_eq!(rt.timer_queue_len(), 1, "the call's deadline");
        assert_eq!(rt.pending_timers(), 0, "a deadline is no scheduled signal");
    }
    assert_eq!(rt.timer_queue_len(), 0, "the deadline went with the future");
    gate.release.send(()).unwrap();
    assert!(rt.wait_idle(LONG));
    assert_eq!(
        *agent.state().unwrap(),
        101,
        "the abandoned call's signal ran once"
    );

    // The reply slots are reused safely: many abandoned calls, then real ones.
    for _ in 0..100 {
        agent.send(sig("hold", "")).unwrap();
        gate.started.recv().unwrap();
        {
            let mut call = pin!(agent.call_async(sig("inc", ""), LONG));
            assert!(poll_once(call.as_mut()).is_pending());
        } // dropped here, before the agent answers
        gate.release.send(()).unwrap();
    }
    let tokio_rt = current_thread();
    let a = agent.clone();
    let reply = tokio_rt.block_on(async move { a.call_async(sig("inc", ""), LONG).await });
    assert_eq!(reply.unwrap(), 101 + 100 * 101 + 1);
    assert_eq!(rt.timer_queue_len(), 0);
    balanced(rt);
}

#[test]
fn send_async_waits_for_space_and_keeps_order() {
    let tokio_rt = multi_thread();
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (spec, gate) = gated();
    let log = spec
        .mailbox_capacity(2)
        .on("log", |n: &mut u64, ins: &mut Instruction| {
            *n = *n * 1000
                + ins
                    .text()?
                    .parse::<u64>()
                    .map_err(agentry::ActionError::failed)?;
            Ok(*n)
        });
    let agent = rt.spawn(&log).unwrap();
    agent.send(sig("hold", "")).unwrap();
    gate.started.recv().unwrap();
    let a = agent.clone();
    let sender = tokio_rt.spawn(async move {
        for i in 1..=5 {
            a.send_async(sig("log", format!("{i}"))).await.unwrap();
        }
    });
    // Plain send is refused meanwhile (the async sender holds the slots).
    while agent.mailbox_len() < 2 {
        std::thread::yield_now();
    }
    let refused = agent.send(sig("log", "9")).unwrap_err();
    assert!(refused.is_full());
    gate.release.send(()).unwrap();
    tokio_rt.block_on(sender).unwrap();
    assert!(rt.wait_idle(LONG));
    // hold: 0 + 100; then 1..=5 appended in order.
    assert_eq!(*agent.state().unwrap(), 100_001_002_003_004_005);
    balanced(rt);
}

#[test]
fn send_async_returns_other_refusals_at_once() {
    let tokio_rt = current_thread();
    let rt = Runtime::builder().workers(1).build().unwrap();
    let agent = rt.spawn(&counter()).unwrap();
    let a = agent.clone();
    let no_route = tokio_rt.block_on(async move { a.send_async(sig("nope", "")).await });
    assert!(matches!(
        no_route.unwrap_err().kind(),
        SendErrorKind::NoRoute
    ));
    agent.stop();
    let a = agent.clone();
    let stopped = tokio_rt.block_on(async move { a.send_async(sig("inc", "")).await });
    assert!(matches!(
        stopped.unwrap_err().kind(),
        SendErrorKind::Stopped
    ));
    balanced(rt);
}

#[test]
fn a_stop_wakes_a_sender_waiting_for_space() {
    let (rt, agent, gate) = held(1);
    agent.send(sig("inc", "")).unwrap();
    let a = agent.clone();
    let waiting = std::thread::spawn(move || a.send_timeout(sig("inc", ""), LONG));
    // The stop closes the mailbox (then waits for "hold"), hands back the
    // queued signal and wakes the waiter, which gets `Stopped` long before
    // its timeout: until the close the mailbox is full, after it closed.
    let stopper = {
        let a = agent.clone();
        std::thread::spawn(move || a.stop())
    };
    while !agent.is_stopped() {
        std::thread::yield_now();
    }
    let err = waiting.join().unwrap().unwrap_err();
    assert!(matches!(err.kind(), SendErrorKind::Stopped), "{err}");
    gate.release.send(()).unwrap();
    let report = stopper.join().unwrap();
    assert_eq!(report.dead_letters.len(), 1);
    balanced(rt);
}

#[test]
fn send_timeout_waits_for_space_or_hands_the_signal_back() {
    let (rt, agent, gate) = held(1);
    agent.send(sig("inc", "")).unwrap();
    let full = agent
        .send_timeout(sig("inc", "back"), Duration::from_millis(10))
        .unwrap_err();
    assert!(full.is_full());
    assert_eq!(full.signal().ty(), "inc");
    let a = agent.clone();
    let waiter = std::thread::spawn(move || a.send_timeout(sig("inc", ""), LONG));
    gate.release.send(()).unwrap();
    waiter.join().unwrap().unwrap();
    assert!(rt.wait_idle(LONG));
    assert_eq!(*agent.state().unwrap(), 102);
    balanced(rt);
}

#[test]
fn deterministic_async_calls_complete_in_their_first_poll() {
    let rt = Runtime::builder().deterministic().build().unwrap();
    let agent: AgentRef<u64, u64> = rt.spawn(&counter()).unwrap();
    agent.send(sig("inc", "")).unwrap();
    let mut call = pin!(agent.call_async(sig("inc", ""), LONG));
    assert_eq!(poll_once(call.as_mut()), Poll::Ready(Ok(2)));
    // A full mailbox drains by driving the runtime, not by waiting.
    let small = rt.spawn(&counter().mailbox_capacity(1)).unwrap();
    small.send(sig("inc", "")).unwrap();
    let mut send = pin!(small.send_async(sig("inc", "")));
    assert!(matches!(poll_once(send.as_mut()), Poll::Ready(Ok(()))));
    small.send_timeout(sig("inc", ""), Duration::ZERO).unwrap();
    rt.run_until_idle().unwrap();
    assert_eq!(*small.state().unwrap(), 3);
    balanced(rt);
}
