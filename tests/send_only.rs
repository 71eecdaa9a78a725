//! Send-only routes (`AgentSpec::on_send`, `send_action`): sending runs
//! them; a `call` whose first route is send-only is refused at once, with
//! the signal handed back and nothing run. Also the `call` timeout given
//! as `None` (the runtime's default timeout) or as a `Duration`.

mod common;
use agentry::{ActionError, AgentSpec, CallError, Instruction, RouteSpec, SendErrorKind, Signal};
use common::*;
use std::future::Future;
use std::pin::pin;
use std::sync::{Mutex, mpsc};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

#[derive(Clone, Default, Debug, PartialEq)]
struct Hits {
    n: u32,
    resets: u32,
    seen: Vec<String>,
}

/// `hits.add` replies the new count; `hits.reset` is send-only; every
/// `hits.*` signal is also logged by a send-only catch-all (it comes after
/// the exact routes).
fn hits_spec() -> AgentSpec<Hits, u32> {
    AgentSpec::new(Hits::default())
        .on("hits.add", |h: &mut Hits, _: &mut Instruction| {
            h.n += 1;
            Ok(h.n)
        })
        .on_send("hits.reset", |h: &mut Hits, _: &mut Instruction| {
            h.n = 0;
            h.resets += 1;
            Ok(())
        })
        .on_send("hits.*", |h: &mut Hits, ins: &mut Instruction| {
            h.seen.push(ins.ty().to_owned());
            Ok(())
        })
        .send_action("refuse", |_: &mut Hits, _: &mut Instruction| {
            Err(ActionError::rejected("deliberate refusal"))
        })
        .route("bad.send", "refuse")
}

fn send_only_action(e: &CallError) -> Option<&str> {
    match e {
        CallError::Send(e) => match e.kind() {
            SendErrorKind::SendOnly { action } => Some(action.as_str()),
            _ => None,
        },
        _ => None,
    }
}

#[test]
fn sending_runs_a_send_only_action() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let hits = rt.spawn(&hits_spec()).unwrap();
        for _ in 0..3 {
            hits.send(sig("hits.add", "")).unwrap();
        }
        hits.send(sig("hits.reset", "")).unwrap();
        hits.send(sig("hits.add", "")).unwrap();
        rt.run_until_idle().unwrap();
        let h = hits.state().unwrap();
        assert_eq!((h.n, h.resets), (1, 1), "{name}");
        assert_eq!(
            h.seen,
            ["hits.add", "hits.add", "hits.add", "hits.reset", "hits.add"],
            "{name}"
        );
        let m = rt.metrics();
        assert_eq!((m.processed, m.failed_actions), (5, 0), "{name}");
    }
}

#[test]
fn a_call_to_a_send_only_route_is_refused_and_nothing_runs() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let hits = rt.spawn(&hits_spec()).unwrap();
        assert_eq!(hits.call(sig("hits.add", ""), LONG).unwrap(), 1, "{name}");
        let before = (hits.state().unwrap(), rt.metrics());

        let signal = sig("hits.reset", "payload");
        let id = signal.id().clone();
        let err = hits.call(signal, LONG).unwrap_err();
        assert_eq!(
            send_only_action(&err),
            Some("hits.reset"),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains("send"), "{name}: {err}");
        let CallError::Send(e) = err else {
            unreachable!()
        };
        assert_eq!(e.agent(), hits.id(), "{name}");
        let back = e.into_signal();
        assert_eq!(back.id(), &id, "{name}: the same signal handed back");
        assert_eq!(&back.data()[..], b"payload", "{name}");

        // Nothing ran, nothing was accepted, nothing is queued.
        assert_eq!(rt.run_until_idle().unwrap(), 0, "{name}");
        assert_eq!(*hits.state().unwrap(), *before.0, "{name}");
        let m = rt.metrics();
        assert_eq!(m.accepted, before.1.accepted, "{name}");
        assert_eq!(m.processed, before.1.processed, "{name}");
        assert_eq!(m.failed_actions, 0, "{name}");
        assert_eq!(hits.mailbox_len(), 0, "{name}");

        // The handed-back signal can be sent instead.
        hits.send(back).unwrap();
        rt.run_until_idle().unwrap();
        assert_eq!(hits.state().unwrap().resets, 1, "{name}");

        // A send-only action registered by name and routed is refused the
        // same way, by its name; so is a catch-all that is the only match.
        let err = hits.call(sig("bad.send", ""), LONG).unwrap_err();
        assert_eq!(send_only_action(&err), Some("refuse"), "{name}");
        let err = hits.call(sig("hits.other", ""), LONG).unwrap_err();
        assert_eq!(send_only_action(&err), Some("hits.*"), "{name}");
        let m = rt.shutdown().metrics;
        assert_eq!(m.accepted, m.processed + m.dead_lettered, "{name}");
    }
}

#[test]
fn a_call_whose_first_route_replies_runs_the_send_only_routes_too() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let hits = rt.spawn(&hits_spec()).unwrap();
        // `hits.add` (exact, replies) comes before `hits.*` (send-only).
        assert_eq!(hits.call(sig("hits.add", ""), LONG).unwrap(), 1, "{name}");
        assert_eq!(hits.call(sig("hits.add", ""), None).unwrap(), 2, "{name}");
        assert_eq!(
            hits.state().unwrap().seen,
            ["hits.add", "hits.add"],
            "{name}"
        );
    }
}

#[test]
fn a_failing_send_only_route_fails_the_call_it_follows() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = AgentSpec::<u32, u32>::new(0)
            .on("job", |n: &mut u32, _: &mut Instruction| {
                *n += 1;
                Ok(*n)
            })
            .on_send("**", |_: &mut u32, _: &mut Instruction| {
                Err(ActionError::rejected("deliberate refusal"))
            });
        let agent = rt.spawn(&spec).unwrap();
        let err = agent.call(sig("job", ""), LONG).unwrap_err();
        assert!(
            matches!(&err, CallError::Action(e) if e.text() == "deliberate refusal"),
            "{name}: {err:?}"
        );
        // A send whose send-only action fails is counted as a failure.
        agent.send(sig("other", "")).unwrap();
        rt.run_until_idle().unwrap();
        assert_eq!(rt.metrics().failed_actions, 2, "{name}");
        assert!(!agent.is_stopped(), "{name}");
    }
}

#[test]
fn the_first_route_by_priority_decides() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = AgentSpec::<u32, u32>::new(0)
            .action("count", |n: &mut u32, _: &mut Instruction| {
                *n += 1;
                Ok(*n)
            })
            .send_action("audit", |n: &mut u32, _: &mut Instruction| {
                *n += 100;
                Ok(())
            })
            .route_spec(RouteSpec::new("high", "count"))
            .route_spec(RouteSpec::new("high", "audit").priority(-5))
            .route_spec(RouteSpec::new("low", "count"))
            .route_spec(RouteSpec::new("low", "audit").priority(5));
        let agent = rt.spawn(&spec).unwrap();
        assert_eq!(agent.call(sig("high", ""), LONG).unwrap(), 1, "{name}");
        assert_eq!(*agent.state().unwrap(), 101, "{name}");
        let err = agent.call(sig("low", ""), LONG).unwrap_err();
        assert_eq!(send_only_action(&err), Some("audit"), "{name}");
        assert_eq!(*agent.state().unwrap(), 101, "{name}: nothing ran");

        // A route added at run time counts the same way.
        agent
            .add_route(RouteSpec::new("late", "audit").priority(10))
            .unwrap();
        let err = agent.call(sig("late", ""), LONG).unwrap_err();
        assert_eq!(send_only_action(&err), Some("audit"), "{name}");
        agent.send(sig("late", "")).unwrap();
        rt.run_until_idle().unwrap();
        assert_eq!(*agent.state().unwrap(), 201, "{name}");
    }
}

#[test]
fn call_async_to_a_send_only_route_is_refused_at_its_first_poll() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let hits = rt.spawn(&hits_spec()).unwrap();
        let mut call = pin!(hits.call_async(sig("hits.reset", ""), None));
        match call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Err(err)) => {
                assert_eq!(send_only_action(&err), Some("hits.reset"), "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(rt.metrics().accepted, 0, "{name}");
        assert_eq!(hits.state().unwrap().resets, 0, "{name}");
    }
}

#[test]
fn on_takes_a_pattern_built_at_run_time() {
    let rt = deterministic(strategies()[0].1).build().unwrap();
    let tenant = "acme";
    let spec = AgentSpec::<u32, u32>::new(0)
        .on(
            format!("{tenant}.order.placed"),
            |n: &mut u32, _: &mut Instruction| {
                *n += 1;
                Ok(*n)
            },
        )
        .on_send(
            format!("{tenant}.order.reset"),
            |n: &mut u32, _: &mut Instruction| {
                *n = 0;
                Ok(())
            },
        );
    let agent = rt.spawn(&spec).unwrap();
    let placed = Signal::new("acme.order.placed", "/t", "").unwrap();
    assert_eq!(agent.call(placed, LONG).unwrap(), 1);
    let reset = Signal::new("acme.order.reset", "/t", "").unwrap();
    assert_eq!(
        send_only_action(&agent.call(reset, LONG).unwrap_err()),
        Some("acme.order.reset")
    );
}

/// `call(signal, None)` waits for the runtime's default timeout;
/// `call(signal, duration)` for that long. A worker is held busy inside an
/// action (until the test releases it) so that the calls wait.
#[test]
fn a_call_without_a_timeout_waits_for_the_runtime_default() {
    const DEFAULT: Duration = Duration::from_millis(40);
    const GIVEN: Duration = Duration::from_millis(25);
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).default_timeout(DEFAULT).build().unwrap();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let spec = AgentSpec::<u32, u32>::new(0)
            .on_send("block", move |_: &mut u32, _: &mut Instruction| {
                started_tx.send(()).unwrap();
                release_rx.lock().unwrap().recv_timeout(LONG).unwrap();
                Ok(())
            })
            .on("ask", |n: &mut u32, _: &mut Instruction| {
                *n += 1;
                Ok(*n)
            });
        let agent = rt.spawn(&spec).unwrap();
        agent.send(sig("block", "")).unwrap();
        started_rx
            .recv_timeout(LONG)
            .expect("the blocking action started");

        let started = std::time::Instant::now();
        let err = agent.call(sig("ask", ""), None).unwrap_err();
        assert_eq!(err, CallError::Timeout { after: DEFAULT }, "{name}");
        assert!(started.elapsed() >= DEFAULT, "{name}");
        let err = agent.call(sig("ask", ""), GIVEN).unwrap_err();
        assert_eq!(err, CallError::Timeout { after: GIVEN }, "{name}");
        let err = agent.call_async(sig("ask", ""), None);
        let err = futures_block_on(err).unwrap_err();
        assert_eq!(err, CallError::Timeout { after: DEFAULT }, "{name}");

        release_tx.send(()).unwrap();
        // The timed-out calls' signals still run (their replies dropped).
        assert_eq!(agent.call(sig("ask", ""), LONG).unwrap(), 4, "{name}");
        let m = rt.shutdown().metrics;
        assert_eq!(m.accepted, m.processed + m.dead_lettered, "{name}");
    }
}

/// Runs a future to completion on this thread (the call's timeout is a
/// runtime timer, which wakes it).
fn futures_block_on<F: Future>(fut: F) -> F::Output {
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread tokio runtime");
    tokio_rt.block_on(fut)
}
