//! Supervision: restart policies (which state a panicking agent restarts
//! from, how many panics within a window it survives), the stop a policy
//! decides (dead letters, pending calls, accounting, the key), and monitors
//! (who is told when an agent stops, and how often).
//!
//! Deterministic runtimes throughout (the restart window is measured on the
//! virtual clock that `Runtime::advance` moves), except the last test,
//! which hammers one supervised agent from several threads.

mod common;
use agentry::{
    ActionError, AgentSpec, AgentStopped, Atomicity, CallError, DeadLetterReason, Instruction,
    LookupError, RestartFrom, RestartPolicy, SendErrorKind, SpawnError, StopReason,
};
use common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, mpsc};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);
const LONG: Duration = Duration::from_secs(60);

/// A counter starting at `initial`: `add` adds the payload, `fail` changes
/// the state then returns an error, `panic` changes the state then panics.
fn counter_from(initial: i64) -> AgentSpec<i64, i64> {
    AgentSpec::new(initial)
        .name("worker")
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
}

/// An agent that keeps every stop notice it receives.
fn watcher_spec() -> AgentSpec<Vec<AgentStopped>> {
    AgentSpec::new(Vec::new()).on(
        AgentStopped::TYPE,
        |seen: &mut Vec<AgentStopped>, ins: &mut Instruction| {
            seen.push(ins.json::<AgentStopped>()?);
            Ok(())
        },
    )
}

/// An agent that forwards every stop notice it receives to `tx` (and
/// counts them in its state).
fn channel_watcher(tx: mpsc::Sender<AgentStopped>) -> AgentSpec<u32> {
    AgentSpec::new(0).on(
        AgentStopped::TYPE,
        move |n: &mut u32, ins: &mut Instruction| {
            *n += 1;
            tx.send(ins.json()?)
                .map_err(|_| ActionError::rejected("test ended"))?;
            Ok(())
        },
    )
}

fn restart_limit(report_reason: &StopReason) -> (u32, Duration, &str) {
    match report_reason {
        StopReason::RestartLimit {
            panics,
            within,
            last_panic,
        } => (*panics, *within, last_panic.as_str()),
        other => panic!("expected a restart limit, got {other:?}"),
    }
}

fn state(agent: &agentry::AgentRef<i64, i64>) -> i64 {
    *agent.state().expect("state")
}

#[test]
fn from_last_committed_rolls_back_only_the_panicking_action() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = counter_from(0).restart(RestartPolicy::from_last_committed());
        let agent = rt.spawn(&spec).unwrap();
        agent.send(sig("add", "5")).unwrap();
        agent.send(sig("panic", "")).unwrap();
        agent.send(sig("add", "2")).unwrap();
        rt.run_until_idle().unwrap();
        assert_eq!(state(&agent), 7, "{name}");
        assert!(!agent.is_stopped(), "{name}");
        let m = rt.metrics();
        assert_eq!((m.processed, m.panicked_actions), (3, 1), "{name}");
        assert!(rt.take_stopped().is_empty(), "{name}");
    }
}

#[test]
fn from_initial_restarts_from_the_spec_initial_state() {
    quiet_panics();
    for (name, strategy) in strategies() {
        for atomicity in [Atomicity::Rollback, Atomicity::InPlace] {
            let rt = deterministic(strategy).build().unwrap();
            let spec = counter_from(100)
                .atomicity(atomicity)
                .restart(RestartPolicy::from_initial());
            let agent = rt.spawn(&spec).unwrap();
            agent.send(sig("add", "5")).unwrap();
            rt.run_until_idle().unwrap();
            assert_eq!(state(&agent), 105, "{name} {atomicity:?}");
            agent.send(sig("panic", "")).unwrap();
            agent.send(sig("add", "2")).unwrap();
            rt.run_until_idle().unwrap();
            assert_eq!(state(&agent), 102, "{name} {atomicity:?}");

            // Also for an agent spawned with a state of its own: the spec's
            // initial state, not the spawn state (documented).
            let own = rt.spawn_with_state(&spec, 7).unwrap();
            own.send(sig("add", "1")).unwrap();
            own.send(sig("panic", "")).unwrap();
            rt.run_until_idle().unwrap();
            assert_eq!(state(&own), 100, "{name} {atomicity:?}");
            assert!(!agent.is_stopped() && !own.is_stopped());
        }
    }
}

#[test]
fn the_policy_reports_what_it_was_built_with() {
    let p = RestartPolicy::from_initial().at_most(2, MINUTE);
    assert_eq!(p.restart_from(), RestartFrom::Initial);
    assert_eq!(p.limit(), Some((2, MINUTE)));
    let p = RestartPolicy::from_last_committed();
    assert_eq!(p.restart_from(), RestartFrom::LastCommitted);
    assert_eq!(p.limit(), None);
}

#[test]
fn without_a_policy_or_a_limit_panics_never_stop_an_agent() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let specs = [
            counter_from(0),
            counter_from(0).atomicity(Atomicity::InPlace),
            counter_from(0).restart(RestartPolicy::from_last_committed()),
            counter_from(0).restart(RestartPolicy::from_initial()),
        ];
        for spec in &specs {
            let agent = rt.spawn(spec).unwrap();
            for _ in 0..200 {
                agent.send(sig("panic", "")).unwrap();
            }
            agent.send(sig("add", "3")).unwrap();
            rt.run_until_idle().unwrap();
            assert!(!agent.is_stopped(), "{name}");
            assert_eq!(state(&agent), 3, "{name}");
        }
        assert!(rt.take_stopped().is_empty(), "{name}");
        assert_eq!(rt.metrics().panicked_actions, 800, "{name}");
    }
}

#[test]
fn three_panics_within_the_window_stop_the_agent() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = counter_from(0).restart(RestartPolicy::from_last_committed().at_most(2, MINUTE));
        let agent = rt.spawn(&spec).unwrap();
        agent.send(sig("add", "4")).unwrap();
        for i in 0..3 {
            assert!(!agent.is_stopped(), "{name}: stopped after {i} panics");
            agent.send(sig("panic", "")).unwrap();
            rt.run_until_idle().unwrap();
            rt.advance(Duration::from_secs(10)).unwrap();
        }
        assert!(agent.is_stopped(), "{name}");
        // The fatal panic was rolled back like the others.
        assert_eq!(state(&agent), 4, "{name}");
        let stopped = rt.take_stopped();
        assert_eq!(stopped.len(), 1, "{name}");
        assert_eq!(stopped[0].agent, agent.id(), "{name}");
        assert_eq!(
            restart_limit(&stopped[0].reason),
            (3, MINUTE, "deliberate panic"),
            "{name}"
        );
        assert!(stopped[0].dead_letters.is_empty(), "{name}");
        assert!(rt.take_stopped().is_empty(), "{name}: taken once");
        // A stopped agent refuses, and hands the signal back.
        let refused = agent.send(sig("add", "1")).unwrap_err();
        assert_eq!(refused.kind(), &SendErrorKind::Stopped, "{name}");
        assert_eq!(refused.into_signal().ty(), "add");
    }
}

#[test]
fn panics_further_apart_than_the_window_never_stop_it() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = counter_from(0).restart(RestartPolicy::from_last_committed().at_most(2, MINUTE));
        let agent = rt.spawn(&spec).unwrap();
        for _ in 0..10 {
            agent.send(sig("panic", "")).unwrap();
            rt.run_until_idle().unwrap();
            rt.advance(MINUTE + Duration::from_secs(1)).unwrap();
        }
        assert!(!agent.is_stopped(), "{name}");
        assert!(rt.take_stopped().is_empty(), "{name}");
        assert_eq!(rt.metrics().panicked_actions, 10, "{name}");
    }
}

#[test]
fn the_window_slides_with_the_clock() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = counter_from(0).restart(RestartPolicy::from_initial().at_most(2, MINUTE));
        let agent = rt.spawn(&spec).unwrap();
        // Panics at 0, 40, 80, 120 and 160 s: any 60 s window holds at most
        // two of them, so the limit (two restarts) is never exceeded,
        // although five panics came within 160 s and a window counted
        // from the first panic (0..60, 60..120, ...) would not slide.
        for k in 0..5 {
            if k > 0 {
                rt.advance(Duration::from_secs(40)).unwrap();
            }
            agent.send(sig("panic", "")).unwrap();
            rt.run_until_idle().unwrap();
            assert!(!agent.is_stopped(), "{name}: panic {k}");
        }
        // At 161 s the last 60 s hold the panics at 120, 160 and 161 s.
        rt.advance(Duration::from_secs(1)).unwrap();
        agent.send(sig("panic", "")).unwrap();
        rt.run_until_idle().unwrap();
        assert!(agent.is_stopped(), "{name}: three in the window");
        let stopped = rt.take_stopped();
        assert_eq!(stopped.len(), 1, "{name}");
        assert_eq!(restart_limit(&stopped[0].reason).0, 3, "{name}");
        assert_eq!(rt.metrics().panicked_actions, 6, "{name}");
    }
}

#[test]
fn at_most_zero_stops_at_the_first_panic() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = counter_from(0).restart(RestartPolicy::from_initial().at_most(0, MINUTE));
        let agent = rt.spawn(&spec).unwrap();
        agent.send(sig("add", "1")).unwrap();
        agent.send(sig("panic", "")).unwrap();
        rt.run_until_idle().unwrap();
        assert!(agent.is_stopped(), "{name}");
        // From initial: the state after the fatal panic is the spec's initial.
        assert_eq!(state(&agent), 0, "{name}");
        let stopped = rt.take_stopped();
        assert_eq!(stopped.len(), 1, "{name}");
        assert_eq!(
            restart_limit(&stopped[0].reason),
            (1, MINUTE, "deliberate panic"),
            "{name}"
        );
    }
}

#[test]
fn errors_returned_by_actions_never_count_as_panics() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = counter_from(0).restart(RestartPolicy::from_last_committed().at_most(0, MINUTE));
        let agent = rt.spawn(&spec).unwrap();
        for _ in 0..100 {
            agent.send(sig("fail", "")).unwrap();
        }
        let err = agent.call(sig("fail", ""), LONG).unwrap_err();
        assert!(
            matches!(&err, CallError::Action(e) if !e.is_panic()),
            "{name}: {err:?}"
        );
        // An invalid input is an error too.
        agent.send(sig("add", "not a number")).unwrap();
        agent.send(sig("add", "9")).unwrap();
        rt.run_until_idle().unwrap();
        assert!(!agent.is_stopped(), "{name}");
        assert_eq!(state(&agent), 9, "{name}");
        let m = rt.metrics();
        assert_eq!((m.failed_actions, m.panicked_actions), (102, 0), "{name}");
        // The first panic does stop it.
        agent.send(sig("panic", "")).unwrap();
        rt.run_until_idle().unwrap();
        assert!(agent.is_stopped(), "{name}");
        assert_eq!(restart_limit(&rt.take_stopped()[0].reason).0, 1, "{name}");
    }
}

#[test]
fn the_stop_hands_back_what_was_queued_and_accounting_holds() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = counter_from(0).restart(RestartPolicy::from_last_committed().at_most(0, MINUTE));
        let agent = rt.spawn(&spec).unwrap();
        let bystander = rt.spawn(&counter_from(0)).unwrap();
        agent.send(sig("add", "1")).unwrap();
        agent.send(sig("panic", "")).unwrap();
        for i in 2..=4 {
            agent.send(sig("add", i.to_string())).unwrap();
        }
        rt.run_until_idle().unwrap();
        assert!(agent.is_stopped(), "{name}");
        assert_eq!(state(&agent), 1, "{name}");
        // Queued at the bystander when the runtime shuts down.
        bystander.send(sig("add", "1")).unwrap();
        bystander.send(sig("add", "1")).unwrap();

        let stopped = rt.take_stopped();
        assert_eq!(stopped.len(), 1, "{name}");
        let letters: Vec<_> = stopped[0]
            .dead_letters
            .iter()
            .map(|d| {
                assert_eq!(d.agent, agent.id());
                assert_eq!(d.reason, DeadLetterReason::AgentStopped);
                assert!(!d.was_call);
                String::from_utf8_lossy(d.signal.data()).into_owned()
            })
            .collect();
        assert_eq!(letters, ["2", "3", "4"], "{name}: in send order");

        let report = rt.shutdown();
        let m = report.metrics;
        assert_eq!(m.accepted, 7, "{name}");
        assert_eq!(m.processed, 2, "{name}");
        assert_eq!(m.dead_lettered, 5, "{name}: 3 at the stop, 2 at shutdown");
        assert_eq!(m.accepted, m.processed + m.dead_lettered, "{name}");
        assert_eq!(report.dead_letters.len(), 2, "{name}");
        assert!(report.stopped.is_empty(), "{name}: taken before");
    }
}

#[test]
fn a_stop_report_not_taken_comes_back_in_the_shutdown_report() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = counter_from(0).restart(RestartPolicy::from_initial().at_most(1, MINUTE));
        let agent = rt.spawn(&spec).unwrap();
        for _ in 0..2 {
            agent.send(sig("panic", "")).unwrap();
        }
        agent.send(sig("add", "1")).unwrap();
        rt.run_until_idle().unwrap();
        assert!(agent.is_stopped(), "{name}");
        let report = rt.shutdown();
        assert_eq!(report.stopped.len(), 1, "{name}");
        assert_eq!(report.stopped[0].agent, agent.id(), "{name}");
        assert_eq!(restart_limit(&report.stopped[0].reason).0, 2, "{name}");
        assert_eq!(report.stopped[0].dead_letters.len(), 1, "{name}");
        assert!(report.dead_letters.is_empty(), "{name}: not counted twice");
        let m = report.metrics;
        assert_eq!((m.accepted, m.processed, m.dead_lettered), (3, 2, 1));
    }
}

#[test]
fn a_call_queued_behind_the_fatal_panic_fails_with_stopped() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = counter_from(0).restart(RestartPolicy::from_last_committed().at_most(0, MINUTE));
        let agent = rt.spawn(&spec).unwrap();
        agent.send(sig("panic", "")).unwrap();
        // The call runs the mailbox up to its own signal: the panic first,
        // which stops the agent, so the call's signal is never processed.
        let err = agent.call(sig("add", "1"), LONG).unwrap_err();
        assert_eq!(err, CallError::Stopped { agent: agent.id() }, "{name}");
        assert!(agent.is_stopped(), "{name}");
        assert_eq!(state(&agent), 0, "{name}");
        let stopped = rt.take_stopped();
        assert_eq!(stopped.len(), 1, "{name}");
        assert_eq!(stopped[0].dead_letters.len(), 1, "{name}");
        assert!(stopped[0].dead_letters[0].was_call, "{name}");
        let m = rt.shutdown().metrics;
        assert_eq!((m.accepted, m.processed, m.dead_lettered), (2, 1, 1));
    }
}

#[test]
fn an_async_call_queued_behind_the_fatal_panic_fails_with_stopped() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = counter_from(0).restart(RestartPolicy::from_last_committed().at_most(0, MINUTE));
        let agent = rt.spawn(&spec).unwrap();
        agent.send(sig("panic", "")).unwrap();
        // In deterministic mode the first poll drives the runtime.
        let mut call = std::pin::pin!(agent.call_async(sig("add", "1"), LONG));
        match call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Err(err)) => {
                assert_eq!(err, CallError::Stopped { agent: agent.id() }, "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
        assert!(agent.is_stopped(), "{name}");
        assert_eq!(rt.take_stopped()[0].dead_letters.len(), 1, "{name}");
    }
}

#[test]
fn a_timer_driven_panic_stops_the_agent_on_the_virtual_clock() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = counter_from(0).restart(RestartPolicy::from_initial().at_most(2, MINUTE));
        let agent = rt.spawn(&spec).unwrap();
        agent
            .send_interval(sig("panic", ""), Duration::from_secs(10))
            .unwrap();
        // Fires at 10, 20 and 30 s: the third panic within 60 s stops it.
        rt.advance(Duration::from_secs(29)).unwrap();
        assert!(!agent.is_stopped(), "{name}");
        rt.advance(Duration::from_secs(1)).unwrap();
        assert!(agent.is_stopped(), "{name}");
        assert_eq!(rt.metrics().panicked_actions, 3, "{name}");
        // The next firing meets the stopped agent: recorded, and the
        // interval ends.
        rt.advance(Duration::from_secs(100)).unwrap();
        assert_eq!(rt.take_undelivered().len(), 1, "{name}");
        assert_eq!(rt.pending_timers(), 0, "{name}");
        let stopped = rt.take_stopped();
        assert_eq!(stopped.len(), 1, "{name}");
        assert_eq!(restart_limit(&stopped[0].reason).0, 3, "{name}");
    }
}

#[test]
fn the_caller_of_the_fatal_panic_gets_the_panic() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = counter_from(0).restart(RestartPolicy::from_last_committed().at_most(0, MINUTE));
        let agent = rt.spawn(&spec).unwrap();
        let err = agent.call(sig("panic", ""), LONG).unwrap_err();
        assert!(
            matches!(&err, CallError::Action(e) if e.is_panic() && e.text() == "deliberate panic"),
            "{name}: {err:?}"
        );
        assert!(agent.is_stopped(), "{name}");
        let err = agent.call(sig("add", "1"), LONG).unwrap_err();
        assert!(
            matches!(&err, CallError::Send(e) if e.kind() == &SendErrorKind::Stopped),
            "{name}: {err:?}"
        );
        assert_eq!(rt.take_stopped().len(), 1, "{name}");
    }
}

#[test]
fn in_place_with_a_restart_from_the_last_commit_is_refused_at_spawn() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        for policy in [
            RestartPolicy::from_last_committed(),
            RestartPolicy::from_last_committed().at_most(3, MINUTE),
        ] {
            let spec = counter_from(0)
                .atomicity(Atomicity::InPlace)
                .restart(policy);
            let err = rt.spawn(&spec).unwrap_err();
            assert!(matches!(err, SpawnError::Restart(_)), "{name}: {err:?}");
            assert!(!err.to_string().is_empty());
            let err = rt.spawn_keyed(&spec, "k").unwrap_err();
            assert!(matches!(err, SpawnError::Restart(_)), "{name}: {err:?}");
            // The refused keyed spawn holds no key.
            assert_eq!(rt.keyed_agents(), 0, "{name}");
            assert!(rt.lookup_addr("k").is_none(), "{name}");
        }
        // The same pair with a restart from the initial state is fine.
        let spec = counter_from(0)
            .atomicity(Atomicity::InPlace)
            .restart(RestartPolicy::from_initial().at_most(3, MINUTE));
        rt.spawn(&spec).unwrap();
        assert_eq!(rt.metrics().spawned, 1, "{name}");
    }
}

#[test]
fn a_monitor_tells_the_watcher_of_a_stop() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let worker = rt.spawn(&counter_from(0)).unwrap();
        let watcher = rt.spawn(&watcher_spec()).unwrap();
        worker.monitor(&watcher);
        worker.send(sig("add", "1")).unwrap();
        worker.send(sig("add", "2")).unwrap();
        let report = worker.stop();
        assert_eq!(report.reason, StopReason::Stopped, "{name}");
        assert_eq!(report.dead_letters.len(), 2, "{name}");
        rt.run_until_idle().unwrap();
        let seen = watcher.state().unwrap();
        assert_eq!(
            *seen,
            [AgentStopped {
                agent: worker.id().get(),
                key: None,
                name: Some("worker".into()),
                reason: StopReason::Stopped,
                dead_letters: 2,
            }],
            "{name}"
        );
        // Stopping again tells nobody again.
        assert!(worker.stop().dead_letters.is_empty());
        rt.run_until_idle().unwrap();
        assert_eq!(watcher.state().unwrap().len(), 1, "{name}");
        assert!(
            rt.take_stopped().is_empty(),
            "{name}: only policy stops are kept"
        );
    }
}

#[test]
fn a_monitor_tells_the_watcher_of_a_restart_limit() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = counter_from(0).restart(RestartPolicy::from_initial().at_most(1, MINUTE));
        let worker = rt.spawn_keyed(&spec, "order-7").unwrap();
        let watcher = rt.spawn(&watcher_spec()).unwrap();
        worker.monitor(&watcher);
        worker.send(sig("panic", "")).unwrap();
        worker.send(sig("panic", "")).unwrap();
        worker.send(sig("add", "1")).unwrap();
        worker.send(sig("add", "2")).unwrap();
        rt.run_until_idle().unwrap();
        assert!(worker.is_stopped(), "{name}");
        let seen = watcher.state().unwrap();
        assert_eq!(seen.len(), 1, "{name}");
        assert_eq!(seen[0].agent, worker.id().get(), "{name}");
        assert_eq!(seen[0].key.as_deref(), Some("order-7"), "{name}");
        assert_eq!(seen[0].name.as_deref(), Some("worker"), "{name}");
        assert_eq!(seen[0].dead_letters, 2, "{name}");
        assert_eq!(
            seen[0].reason,
            StopReason::RestartLimit {
                panics: 2,
                within: MINUTE,
                last_panic: "deliberate panic".into(),
            },
            "{name}"
        );
        let stopped = rt.take_stopped();
        assert_eq!(stopped[0].reason, seen[0].reason, "{name}");
    }
}

#[test]
fn monitoring_a_stopped_agent_tells_at_once() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let worker = rt.spawn(&counter_from(0)).unwrap();
        let watcher = rt.spawn(&watcher_spec()).unwrap();
        worker.send(sig("add", "1")).unwrap();
        assert_eq!(worker.stop().dead_letters.len(), 1);
        let id = worker.monitor(&watcher);
        rt.run_until_idle().unwrap();
        let seen = watcher.state().unwrap();
        assert_eq!(seen.len(), 1, "{name}");
        assert_eq!(seen[0].agent, worker.id().get(), "{name}");
        assert_eq!(seen[0].reason, StopReason::AlreadyStopped, "{name}");
        assert_eq!(seen[0].dead_letters, 0, "{name}");
        // It told: nothing is left to remove.
        assert!(!worker.demonitor(id), "{name}");
    }
}

#[test]
fn a_demonitored_watcher_is_not_told() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let worker = rt.spawn(&counter_from(0)).unwrap();
        let watcher = rt.spawn(&watcher_spec()).unwrap();
        let kept = rt.spawn(&watcher_spec()).unwrap();
        let id = worker.monitor(&watcher);
        worker.monitor(&kept);
        assert!(worker.demonitor(id), "{name}");
        assert!(!worker.demonitor(id), "{name}: removed once");
        worker.stop();
        rt.run_until_idle().unwrap();
        assert!(watcher.state().unwrap().is_empty(), "{name}");
        // The other monitor was not removed with it.
        assert_eq!(kept.state().unwrap().len(), 1, "{name}");
        assert_eq!(rt.metrics().undelivered, 0, "{name}");
    }
}

#[test]
fn every_monitor_tells_once() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let worker = rt.spawn(&counter_from(0)).unwrap();
        let a = rt.spawn(&watcher_spec()).unwrap();
        let b = rt.spawn(&watcher_spec()).unwrap();
        let first = worker.monitor(&a);
        let second = worker.monitor(&a);
        assert_ne!(first, second, "{name}");
        worker.monitor(&b);
        worker.stop();
        worker.stop();
        rt.run_until_idle().unwrap();
        let (a, b) = (a.state().unwrap(), b.state().unwrap());
        assert_eq!(a.len(), 2, "{name}: one notice per monitor");
        assert_eq!(b.len(), 1, "{name}");
        for seen in a.iter().chain(b.iter()) {
            assert_eq!(seen.agent, worker.id().get(), "{name}");
            assert_eq!(seen.reason, StopReason::Stopped, "{name}");
        }
        assert!(!worker.demonitor(first) && !worker.demonitor(second));
    }
}

#[test]
fn a_notice_the_watcher_cannot_take_is_recorded_undelivered() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let worker = rt.spawn(&counter_from(0)).unwrap();
        let watcher = rt.spawn(&watcher_spec()).unwrap();
        worker.monitor(&watcher);
        watcher.stop();
        worker.stop();
        rt.run_until_idle().unwrap();
        let undelivered = rt.take_undelivered();
        assert_eq!(undelivered.len(), 1, "{name}");
        assert_eq!(rt.metrics().undelivered, 1, "{name}");
    }
}

#[test]
fn a_shutdown_tells_nobody() {
    quiet_panics();
    for (name, strategy) in strategies() {
        for graceful in [false, true] {
            let rt = deterministic(strategy).build().unwrap();
            let spec = counter_from(0).restart(RestartPolicy::from_initial().at_most(5, MINUTE));
            let worker = rt.spawn_keyed(&spec, "w").unwrap();
            let watcher = rt.spawn(&watcher_spec()).unwrap();
            worker.monitor(&watcher);
            watcher.monitor(&watcher);
            worker.send(sig("add", "1")).unwrap();
            let report = if graceful {
                rt.shutdown_graceful(LONG)
            } else {
                rt.shutdown()
            };
            assert!(worker.is_stopped() && watcher.is_stopped());
            assert!(
                watcher.state().unwrap().is_empty(),
                "{name} graceful={graceful}"
            );
            assert!(report.undelivered.is_empty(), "{name} graceful={graceful}");
            assert_eq!(report.metrics.undelivered, 0, "{name} graceful={graceful}");
            assert!(
                report
                    .dead_letters
                    .iter()
                    .all(|d| d.signal.ty() != AgentStopped::TYPE),
                "{name} graceful={graceful}"
            );
            assert!(report.stopped.is_empty(), "{name} graceful={graceful}");
            let m = report.metrics;
            assert_eq!(m.accepted, m.processed + m.dead_lettered);
        }
    }
}

#[test]
fn a_keyed_agent_stopped_by_its_policy_frees_its_key() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = counter_from(0).restart(RestartPolicy::from_last_committed().at_most(0, MINUTE));
        let first = rt.spawn_keyed(&spec, "user-1").unwrap();
        rt.spawn_keyed(&spec, "user-2").unwrap();
        assert_eq!(rt.keyed_agents(), 2, "{name}");
        first.send(sig("panic", "")).unwrap();
        rt.run_until_idle().unwrap();
        assert!(first.is_stopped(), "{name}");
        assert_eq!(rt.keyed_agents(), 1, "{name}");
        assert_eq!(rt.metrics().live_agents, 1, "{name}");
        assert!(rt.lookup_addr("user-1").is_none(), "{name}");
        assert!(
            matches!(
                rt.lookup::<i64, i64>("user-1"),
                Err(LookupError::NotFound { ref key }) if key == "user-1"
            ),
            "{name}"
        );
        // The key can be spawned again, and the new agent works.
        let second = rt.spawn_keyed(&spec, "user-1").unwrap();
        assert_ne!(second.id(), first.id(), "{name}");
        assert_eq!(second.call(sig("add", "3"), LONG).unwrap(), 3, "{name}");
        assert_eq!(
            rt.lookup::<i64, i64>("user-1").unwrap().id(),
            second.id(),
            "{name}"
        );
        assert_eq!(rt.take_stopped().len(), 1, "{name}");
    }
}

/// Several threads send (and call) panicking signals to one supervised
/// agent at once: the policy stops it exactly once, on exactly the panic
/// that exceeds the limit, one notice reaches the watcher, and nothing
/// accepted is lost.
#[test]
fn threads_panicking_one_agent_stop_it_once_and_tell_once() {
    quiet_panics();
    const THREADS: usize = 4;
    const EACH: usize = 2_000;
    const RESTARTS: u32 = 10;
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).mailbox_capacity(64).build().unwrap();
        let spec = counter_from(0).restart(
            RestartPolicy::from_last_committed().at_most(RESTARTS, Duration::from_secs(3600)),
        );
        let agent = rt.spawn_keyed(&spec, "target").unwrap();
        let (tx, rx) = mpsc::channel::<AgentStopped>();
        let watcher = rt.spawn(&channel_watcher(tx)).unwrap();
        agent.monitor(&watcher);

        let accepted = AtomicU64::new(0);
        let start = Barrier::new(THREADS);
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                let (agent, accepted, start) = (&agent, &accepted, &start);
                scope.spawn(move || {
                    start.wait();
                    for _ in 0..EACH {
                        if t % 2 == 0 {
                            match send_retrying(agent, sig("panic", "")) {
                                Ok(()) => {
                                    accepted.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(e) => {
                                    assert_eq!(e.kind(), &SendErrorKind::Stopped, "{e}");
                                    return;
                                }
                            }
                        } else {
                            match agent.call(sig("panic", ""), LONG) {
                                // Processed: the panic is the caller's error.
                                Err(CallError::Action(e)) => {
                                    assert!(e.is_panic(), "{e}");
                                    accepted.fetch_add(1, Ordering::Relaxed);
                                }
                                // Accepted, then handed back by the stop.
                                Err(CallError::Stopped { agent: id }) => {
                                    assert_eq!(id, agent.id());
                                    accepted.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(CallError::Send(e)) if e.is_full() => {}
                                Err(CallError::Send(e)) => {
                                    assert_eq!(e.kind(), &SendErrorKind::Stopped, "{e}");
                                    return;
                                }
                                other => panic!("unexpected call result {other:?}"),
                            }
                        }
                    }
                });
            }
        });

        let notice = rx.recv_timeout(LONG).expect("a stop notice");
        assert!(agent.is_stopped(), "{name}");
        assert_eq!(notice.agent, agent.id().get(), "{name}");
        assert_eq!(notice.key.as_deref(), Some("target"), "{name}");
        assert_eq!(
            notice.reason,
            StopReason::RestartLimit {
                panics: RESTARTS + 1,
                within: Duration::from_secs(3600),
                last_panic: "deliberate panic".into(),
            },
            "{name}"
        );
        assert!(rt.lookup_addr("target").is_none(), "{name}: key released");
        assert!(rt.wait_idle(LONG), "{name}");
        // Exactly one notice: none queued or in flight after idle.
        assert_eq!(*watcher.state().unwrap(), 1, "{name}");
        assert!(rx.try_recv().is_err(), "{name}: a second notice");

        let m = rt.metrics();
        // Exactly the panics the policy allows plus the fatal one ran.
        assert_eq!(m.panicked_actions, u64::from(RESTARTS) + 1, "{name}");
        assert_eq!(
            accepted.load(Ordering::Relaxed),
            u64::from(RESTARTS) + 1 + notice.dead_letters as u64,
            "{name}: every accepted panic ran or came back"
        );
        // The report, from the shutdown (which waits for the stop to have
        // kept it; see `the_stop_report_is_kept_before_the_watchers_are_told`).
        let report = rt.shutdown();
        assert_eq!(report.stopped.len(), 1, "{name}");
        assert_eq!(report.stopped[0].agent, agent.id(), "{name}");
        assert_eq!(
            report.stopped[0].dead_letters.len(),
            notice.dead_letters,
            "{name}"
        );
        let m = report.metrics;
        assert_eq!(m.accepted, m.processed + m.dead_lettered, "{name}");
        // The agent's panics and the watcher's one notice.
        assert_eq!(m.processed, u64::from(RESTARTS) + 2, "{name}");
    }
}

/// A monitor set while another thread stops the agent tells exactly once:
/// `Stopped` if the stop found it, `AlreadyStopped` if it came after.
#[test]
fn a_monitor_racing_a_stop_tells_exactly_once() {
    const ROUNDS: usize = 300;
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        let (tx, rx) = mpsc::channel::<AgentStopped>();
        let watcher = rt.spawn(&channel_watcher(tx)).unwrap();
        let start = Barrier::new(2);
        let (mut stopped_first, mut monitored_first) = (0, 0);
        for round in 0..ROUNDS {
            let worker = rt.spawn(&counter_from(0)).unwrap();
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    start.wait();
                    worker.stop();
                });
                start.wait();
                worker.monitor(&watcher);
            });
            let notice = rx.recv_timeout(LONG).expect("a stop notice");
            assert_eq!(notice.agent, worker.id().get(), "{name} round {round}");
            match notice.reason {
                StopReason::Stopped => monitored_first += 1,
                StopReason::AlreadyStopped => stopped_first += 1,
                other => panic!("{name} round {round}: {other:?}"),
            }
        }
        assert!(rt.wait_idle(LONG), "{name}");
        assert_eq!(*watcher.state().unwrap(), ROUNDS as u32, "{name}");
        assert!(rx.try_recv().is_err(), "{name}: a second notice");
        assert_eq!(stopped_first + monitored_first, ROUNDS);
        assert_eq!(rt.metrics().undelivered, 0, "{name}");
    }
}

/// `stop()` from one thread while the policy stops the agent on a worker:
/// the agent stops once (one notice, one report with the dead letters),
/// whichever wins.
#[test]
fn a_stop_racing_the_policy_stops_the_agent_once() {
    quiet_panics();
    const ROUNDS: usize = 300;
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        let (tx, rx) = mpsc::channel::<AgentStopped>();
        let watcher = rt.spawn(&channel_watcher(tx)).unwrap();
        let spec = counter_from(0).restart(RestartPolicy::from_initial().at_most(0, LONG));
        let start = Barrier::new(2);
        // Agent id -> dead letters its notice counted, for the agents the
        // policy stopped.
        let mut by_policy = std::collections::HashMap::new();
        let mut by_stop = 0;
        for round in 0..ROUNDS {
            let agent = rt.spawn(&spec).unwrap();
            agent.monitor(&watcher);
            let user_report = std::thread::scope(|scope| {
                let stopper = scope.spawn(|| {
                    start.wait();
                    agent.stop()
                });
                // Half the rounds send just before the stopper starts,
                // half just after, so that both sides win some rounds.
                if round % 2 == 0 {
                    let _ = agent.send(sig("panic", ""));
                }
                start.wait();
                for _ in 0..2 {
                    let _ = agent.send(sig("panic", ""));
                }
                stopper.join().unwrap()
            });
            assert!(agent.is_stopped(), "{name} round {round}");
            let notice = rx.recv_timeout(LONG).expect("a stop notice");
            assert_eq!(notice.agent, agent.id().get(), "{name} round {round}");
            match notice.reason {
                StopReason::Stopped => {
                    by_stop += 1;
                    assert_eq!(notice.dead_letters, user_report.dead_letters.len());
                }
                StopReason::RestartLimit { panics: 1, .. } => {
                    assert!(user_report.dead_letters.is_empty(), "{name} round {round}");
                    by_policy.insert(agent.id(), notice.dead_letters);
                }
                other => panic!("{name} round {round}: {other:?}"),
            }
        }
        assert!(rt.wait_idle(LONG), "{name}");
        assert_eq!(*watcher.state().unwrap(), ROUNDS as u32, "{name}");
        assert!(rx.try_recv().is_err(), "{name}: a second notice");
        assert_eq!(by_policy.len() + by_stop, ROUNDS);
        // Taken after the shutdown, which waits for every stop to finish
        // (see `the_stop_report_is_kept_before_the_watchers_are_told`).
        let report = rt.shutdown();
        let mut kept = report.stopped;
        kept.sort_by_key(|r| r.agent);
        assert_eq!(
            kept.len(),
            by_policy.len(),
            "{name}: one report per policy stop"
        );
        for r in &kept {
            assert_eq!(
                by_policy.get(&r.agent),
                Some(&r.dead_letters.len()),
                "{name}: {:?}",
                r.agent
            );
        }
        let m = report.metrics;
        assert_eq!(m.accepted, m.processed + m.dead_lettered, "{name}");
        assert!(
            m.panicked_actions <= ROUNDS as u64,
            "{name}: one panic per agent at most"
        );
    }
}

/// A watcher that hears of a restart-limit stop finds the stop's report in
/// `Runtime::take_stopped`: the report is kept before anyone is told (with
/// many monitors, the first watcher's notice would otherwise arrive long
/// before the report).
#[test]
fn the_stop_report_is_kept_before_the_watchers_are_told() {
    quiet_panics();
    let rt = threaded(agentry::imp::Strategy::from_features())
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel::<AgentStopped>();
    let first = rt.spawn(&channel_watcher(tx)).unwrap();
    let others = rt.spawn(&watcher_spec().mailbox_capacity(20_000)).unwrap();
    let spec = counter_from(0).restart(RestartPolicy::from_initial().at_most(0, LONG));
    let agent = rt.spawn(&spec).unwrap();
    agent.monitor(&first);
    for _ in 0..10_000 {
        agent.monitor(&others);
    }
    agent.send(sig("panic", "")).unwrap();
    let notice = rx.recv_timeout(LONG).expect("a stop notice");
    assert!(matches!(notice.reason, StopReason::RestartLimit { .. }));
    assert_eq!(
        rt.take_stopped().len(),
        1,
        "told of the stop, but its report is not kept yet"
    );
}

/// What one run of the supervision scenario leaves behind.
#[derive(Debug, PartialEq)]
struct SupervisedRun {
    states: Vec<i64>,
    stopped: Vec<(Option<usize>, String, Vec<String>)>,
    notices: Vec<String>,
    calls: Vec<String>,
    metrics: agentry::Metrics,
    shutdown_dead_letters: Vec<String>,
}

/// Three supervised workers (restart from the last committed state, from
/// the initial state, and at most two panics a minute), a watcher on each,
/// and a mix of sends, calls, panics and clock moves: the restarts, the
/// stop, its dead letters and the notices are the same under every
/// implementation with one batch size (batching takes several signals per
/// turn, and a stop inside a batch hands the rest of it back).
#[test]
fn every_strategy_supervises_the_same() {
    quiet_panics();
    let run = |strategy, batch| {
        let rt = deterministic(strategy).batch_size(batch).build().unwrap();
        let watcher = rt
            .spawn(&AgentSpec::<Vec<String>>::new(Vec::new()).on(
                AgentStopped::TYPE,
                |seen: &mut Vec<String>, ins: &mut Instruction| {
                    let n: AgentStopped = ins.json()?;
                    seen.push(format!("{:?}/{}", n.reason, n.dead_letters));
                    Ok(())
                },
            ))
            .unwrap();
        let policies = [
            RestartPolicy::from_last_committed(),
            RestartPolicy::from_initial(),
            RestartPolicy::from_last_committed().at_most(2, MINUTE),
        ];
        let workers: Vec<_> = policies
            .iter()
            .map(|p| {
                let w = rt.spawn(&counter_from(5).restart(*p)).unwrap();
                w.monitor(&watcher);
                w
            })
            .collect();
        let mut calls = Vec::new();
        for round in 0..6u64 {
            for (i, w) in workers.iter().enumerate() {
                let _ = w.send(sig("add", (round * 10 + i as u64).to_string()));
                if (round + i as u64).is_multiple_of(2) || i == 2 {
                    let _ = w.send(sig("panic", ""));
                }
                let _ = w.send(sig("fail", ""));
                let _ = w.send(sig("add", "1"));
            }
            if round % 2 == 1 {
                calls.push(match workers[2].call(sig("add", "100"), None) {
                    Ok(n) => format!("ok {n}"),
                    Err(CallError::Send(e)) => format!("refused {:?}", e.kind()),
                    Err(e) => format!("{e}"),
                });
                rt.run_until_idle().unwrap();
            }
            rt.advance(Duration::from_secs(25)).unwrap();
        }
        rt.run_until_idle().unwrap();
        let states = workers.iter().map(|w| *w.state().unwrap()).collect();
        let stopped = rt
            .take_stopped()
            .into_iter()
            .map(|r| {
                let letters = r
                    .dead_letters
                    .iter()
                    .map(|d| {
                        format!(
                            "{}:{}",
                            d.signal.ty(),
                            String::from_utf8_lossy(d.signal.data())
                        )
                    })
                    .collect();
                (
                    // Which worker (ids are shared with tests beside it).
                    workers.iter().position(|w| w.id() == r.agent),
                    r.reason.to_string(),
                    letters,
                )
            })
            .collect();
        let notices = watcher.state().unwrap().to_vec();
        let report = rt.shutdown();
        SupervisedRun {
            states,
            stopped,
            notices,
            calls,
            metrics: agentry::Metrics {
                spawned: 0,
                ..report.metrics
            },
            shutdown_dead_letters: report
                .dead_letters
                .iter()
                .map(|d| d.signal.ty().to_owned())
                .collect(),
        }
    };
    let mut by_batch: std::collections::BTreeMap<usize, (String, SupervisedRun)> =
        std::collections::BTreeMap::new();
    for (name, strategy, batch) in all_strategies() {
        let out = run(strategy, batch);
        let m = out.metrics;
        assert_eq!(m.accepted, m.processed + m.dead_lettered, "{name}");
        assert_eq!(
            out.stopped.len(),
            1,
            "{name}: the limited worker stops: {out:#?}"
        );
        assert_eq!(out.notices.len(), 1, "{name}: its watcher is told once");
        match by_batch.get(&batch) {
            Some((first, expected)) => assert_eq!(&out, expected, "{name} differs from {first}"),
            None => {
                by_batch.insert(batch, (name, out));
            }
        }
    }
    assert_eq!(by_batch.len(), 3);
}
