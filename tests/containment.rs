//! Edges where user code misbehaves or the runtime is used from inside
//! itself: a state whose `Clone` panics, a stop from inside the agent's own
//! action, two agents stopping each other, timeouts too large for the clock,
//! and the failure hook's view of the state. Each runs under every
//! combination of the runtime optimizations, because these are the places
//! where batching or the snapshot could change what a user observes.

mod common;
use agentry::imp::{PoolKind, Strategy};
use agentry::{AgentRef, AgentSpec, CallError, DeadLetterReason, Instruction, QueryError, Runtime};
use common::*;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

/// Every combination of the three runtime seams.
fn every_strategy() -> Vec<(String, Strategy)> {
    let mut all = Vec::new();
    for fast_path in [false, true] {
        for pool in [PoolKind::Allocate, PoolKind::FreeList] {
            for batching in [false, true] {
                let s = Strategy {
                    fast_path,
                    pool,
                    batching,
                };
                all.push((format!("{s:?}"), s));
            }
        }
    }
    all
}

/// A state whose `Clone` panics when the shared countdown reaches 1 (each
/// clone counts it down; 0 means never).
#[derive(Debug)]
struct Fragile {
    total: i64,
    countdown: Arc<AtomicI64>,
}

impl Clone for Fragile {
    fn clone(&self) -> Self {
        if self.countdown.fetch_sub(1, Ordering::SeqCst) == 1 {
            panic!("deliberate panic in Clone");
        }
        Fragile {
            total: self.total,
            countdown: self.countdown.clone(),
        }
    }
}

fn fragile_spec(countdown: &Arc<AtomicI64>) -> AgentSpec<Fragile, i64> {
    AgentSpec::new(Fragile {
        total: 0,
        countdown: countdown.clone(),
    })
    .on("add", |s: &mut Fragile, ins: &mut Instruction| {
        s.total += parse(ins)?;
        Ok(s.total)
    })
}

#[test]
fn a_panicking_state_clone_fails_the_instruction_and_loses_nothing() {
    quiet_panics();
    for (name, strategy) in every_strategy() {
        for threaded_mode in [false, true] {
            let countdown = Arc::new(AtomicI64::new(0));
            let builder = if threaded_mode {
                threaded(strategy)
            } else {
                deterministic(strategy)
            };
            let rt = builder.build().unwrap();
            let a = rt.spawn(&fragile_spec(&countdown)).unwrap();
            assert_eq!(a.call(sig("add", "1"), LONG).unwrap(), 1, "{name}");
            // The next clone (the rollback copy before the action) panics.
            countdown.store(1, Ordering::SeqCst);
            let err = a.call(sig("add", "10"), LONG).unwrap_err();
            match &err {
                CallError::Action(e) => {
                    assert!(e.is_panic(), "{name}: {e}");
                    assert!(e.to_string().contains("deliberate panic in Clone"), "{e}");
                }
                other => panic!("{name}: expected the action's error, got {other}"),
            }
            // The agent keeps serving, from the state before the failure.
            countdown.store(0, Ordering::SeqCst);
            assert_eq!(a.call(sig("add", "100"), LONG).unwrap(), 101, "{name}");
            assert_eq!(a.state().unwrap().total, 101, "{name}");
            assert!(rt.wait_idle(LONG), "{name}");
            let m = rt.metrics();
            assert_eq!(m.accepted, 3, "{name}");
            assert_eq!(m.processed, 3, "{name}: a signal was lost");
            assert_eq!((m.failed_actions, m.panicked_actions), (1, 1), "{name}");
        }
    }
}

#[test]
fn a_failed_snapshot_publish_never_serves_a_stale_state() {
    quiet_panics();
    for (name, strategy) in every_strategy() {
        let countdown = Arc::new(AtomicI64::new(0));
        let rt = deterministic(strategy).build().unwrap();
        let a = rt.spawn(&fragile_spec(&countdown)).unwrap();
        // Clone 1 is the rollback copy; with fast-path, clone 2 (the
        // publish) panics; without it no second clone happens here.
        countdown.store(2, Ordering::SeqCst);
        a.send(sig("add", "5")).unwrap();
        rt.run_until_idle().unwrap();
        countdown.store(0, Ordering::SeqCst);
        assert_eq!(
            a.state().unwrap().total,
            5,
            "{name}: the read missed a commit"
        );
        // The next commit publishes again and the snapshot is used again.
        a.send(sig("add", "1")).unwrap();
        rt.run_until_idle().unwrap();
        assert_eq!(a.state().unwrap().total, 6, "{name}");
        assert_eq!(rt.metrics().failed_actions, 0, "{name}");
    }
}

/// An agent that records `work` signals and stops itself on `halt`, keeping
/// the stop report's dead letters.
struct SelfStopper {
    agent: AgentRef<Vec<String>, usize>,
    letters: Arc<Mutex<Vec<(String, DeadLetterReason, bool)>>>,
}

fn self_stopper(rt: &Runtime) -> SelfStopper {
    let me: Arc<OnceLock<AgentRef<Vec<String>, usize>>> = Arc::default();
    let letters: Arc<Mutex<Vec<(String, DeadLetterReason, bool)>>> = Arc::default();
    let (me_in, letters_in) = (me.clone(), letters.clone());
    let spec = AgentSpec::new(Vec::new())
        .on("work", |log: &mut Vec<String>, ins: &mut Instruction| {
            log.push(String::from_utf8_lossy(ins.data()).into_owned());
            Ok(log.len())
        })
        .on("halt", move |log: &mut Vec<String>, _: &mut Instruction| {
            let report = me_in.get().expect("set after spawn").stop();
            let mut kept = letters_in.lock().unwrap();
            for d in report.dead_letters {
                let data = String::from_utf8_lossy(d.signal.data()).into_owned();
                kept.push((data, d.reason, d.was_call));
            }
            Ok(log.len())
        });
    let agent = rt.spawn(&spec).unwrap();
    me.set(agent.clone()).unwrap();
    SelfStopper { agent, letters }
}

#[test]
fn a_stop_from_inside_the_agent_hands_back_the_same_signals_with_or_without_batching() {
    for (name, strategy) in every_strategy() {
        let rt = deterministic(strategy).build().unwrap();
        let s = self_stopper(&rt);
        for w in ["w1", "w2"] {
            s.agent.send(sig("work", w)).unwrap();
        }
        s.agent.send(sig("halt", "")).unwrap();
        for w in ["w3", "w4"] {
            s.agent.send(sig("work", w)).unwrap();
        }
        assert_eq!(
            rt.run_until_idle().unwrap(),
            3,
            "{name}: processed after the stop"
        );
        assert_eq!(*s.agent.state().unwrap(), ["w1", "w2"], "{name}");
        let letters = s.letters.lock().unwrap().clone();
        let stopped = DeadLetterReason::AgentStopped;
        assert_eq!(
            letters,
            [
                ("w3".to_string(), stopped, false),
                ("w4".to_string(), stopped, false)
            ],
            "{name}: the stop report differs"
        );
        let m = rt.metrics();
        assert_eq!(
            (m.accepted, m.processed, m.dead_lettered),
            (5, 3, 2),
            "{name}"
        );
        assert!(s.agent.is_stopped());
    }
}

#[test]
fn a_stop_from_another_thread_hands_back_the_rest_of_a_running_batch() {
    for (name, strategy) in every_strategy() {
        let rt = threaded(strategy).workers(1).build().unwrap();
        let (entered_tx, entered_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let spec = AgentSpec::<u32, u32>::new(0)
            .on("block", move |n: &mut u32, _: &mut Instruction| {
                let _ = entered_tx.send(());
                let _ = release_rx.lock().unwrap().recv_timeout(LONG);
                *n += 1;
                Ok(*n)
            })
            .on("work", |n: &mut u32, _: &mut Instruction| {
                *n += 1;
                Ok(*n)
            });
        let a = rt.spawn(&spec).unwrap();
        // However the worker cuts these into batches, the five after `block`
        // are not started when the stop comes: in the mailbox, or in the
        // rest of the batch that `block` belongs to.
        for _ in 0..3 {
            a.send(sig("work", "")).unwrap();
        }
        a.send(sig("block", "")).unwrap();
        for _ in 0..5 {
            a.send(sig("work", "")).unwrap();
        }
        entered_rx.recv_timeout(LONG).expect("the block action ran");
        let stopper = {
            let a = a.clone();
            std::thread::spawn(move || a.stop())
        };
        // Let the stop take the mailbox (and the batch's rest) first.
        while !a.is_stopped() {
            std::thread::yield_now();
        }
        release_tx.send(()).unwrap();
        let report = stopper.join().unwrap();
        assert_eq!(*a.state().unwrap(), 4, "{name}: ran signals after the stop");
        assert_eq!(report.dead_letters.len(), 5, "{name}");
        let m = rt.metrics();
        assert_eq!(
            (m.accepted, m.processed, m.dead_lettered),
            (9, 4, 5),
            "{name}"
        );
    }
}

#[test]
fn two_agents_stopping_each_other_do_not_deadlock() {
    for (name, strategy) in every_strategy() {
        let (done_tx, done_rx) = mpsc::channel();
        let name_in = name.clone();
        std::thread::spawn(move || {
            let rt = threaded(strategy).workers(2).build().unwrap();
            let peers: [Arc<OnceLock<AgentRef<u32, u32>>>; 2] = Default::default();
            let arrived = Arc::new(AtomicU64::new(0));
            let mut agents = Vec::new();
            for i in 0..2 {
                let other = peers[1 - i].clone();
                let arrived = arrived.clone();
                let spec = AgentSpec::<u32, u32>::new(0).on(
                    "stop.other",
                    move |_: &mut u32, _: &mut Instruction| {
                        // Meet the other agent's action (briefly), so both
                        // are inside their turns when they stop each other.
                        arrived.fetch_add(1, Ordering::SeqCst);
                        let mut spins = 0u32;
                        while arrived.load(Ordering::SeqCst) < 2 && spins < 1_000_000 {
                            std::thread::yield_now();
                            spins += 1;
                        }
                        let _ = other.get().expect("set").stop();
                        Ok(0)
                    },
                );
                agents.push(rt.spawn(&spec).unwrap());
            }
            for (slot, agent) in peers.iter().zip(&agents) {
                slot.set(agent.clone()).unwrap();
            }
            for agent in &agents {
                agent.send(sig("stop.other", "")).unwrap();
            }
            assert!(rt.wait_idle(LONG), "{name_in}");
            let _ = rt.shutdown();
            done_tx.send(()).unwrap();
        });
        done_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{name}: two agents stopping each other deadlocked"));
    }
}

#[test]
fn timeouts_too_large_for_the_clock_mean_no_deadline() {
    for (name, strategy) in every_strategy() {
        for threaded_mode in [false, true] {
            let builder = if threaded_mode {
                threaded(strategy)
            } else {
                deterministic(strategy)
            };
            let rt = builder.default_timeout(Duration::MAX).build().unwrap();
            let a = rt.spawn(&counter_spec()).unwrap();
            assert_eq!(a.call(sig("add", "2"), Duration::MAX).unwrap(), 2, "{name}");
            assert_eq!(*a.state().unwrap(), 2, "{name}");
            assert_eq!(a.query(sig("get", "")).unwrap(), 2, "{name}");
            assert!(rt.wait_idle(Duration::MAX), "{name}");
        }
    }
}

#[test]
fn the_failure_hook_sees_every_commit_before_the_failure() {
    // The hook hands the failure to another thread, which reads the state
    // while the hook is still running: it must see the two additions that
    // completed before the failing signal (with batching all three are one
    // batch, so this checks that the snapshot is published before hooks run).
    for (name, strategy) in every_strategy() {
        let (failed_tx, failed_rx) = mpsc::channel::<()>();
        let (read_tx, read_rx) = mpsc::channel::<()>();
        let (failed_tx, read_rx) = (Mutex::new(failed_tx), Mutex::new(read_rx));
        let rt = deterministic(strategy)
            .on_failure(move |_| {
                let _ = failed_tx.lock().unwrap().send(());
                // Hold the hook until the read is answered. Without fast-path
                // the read waits for the batch to end, hence the bound.
                let _ = read_rx
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_millis(200));
            })
            .build()
            .unwrap();
        let a = rt.spawn(&counter_spec()).unwrap();
        let reader = {
            let a = a.clone();
            std::thread::spawn(move || {
                failed_rx.recv_timeout(LONG).expect("the hook ran");
                let got: Result<i64, QueryError> = a.state().map(|s| *s);
                let _ = read_tx.send(());
                got
            })
        };
        a.send(sig("add", "1")).unwrap();
        a.send(sig("add", "2")).unwrap();
        a.send(sig("fail", "")).unwrap();
        rt.run_until_idle().unwrap();
        let got = reader.join().unwrap();
        assert_eq!(
            got,
            Ok(3),
            "{name}: the read during the hook missed a commit"
        );
        assert_eq!(*a.state().unwrap(), 3, "{name}");
    }
}

const LONG: Duration = Duration::from_secs(30);

/// A panic payload whose own `Drop` panics (`panic_any(Bomb)`): the second
/// panic must stay contained like the first, in an action (call and send,
/// with the state rolled back and the agent serving on), a query, a route
/// predicate and a bus callback.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("deliberate panic while dropping a panic payload");
    }
}

fn bomb_spec() -> AgentSpec<i64, i64> {
    AgentSpec::new(0)
        .on("add", |n: &mut i64, ins: &mut Instruction| {
            *n += parse(ins)?;
            Ok(*n)
        })
        .on("bomb", |n: &mut i64, _: &mut Instruction| {
            *n += 1_000;
            std::panic::panic_any(Bomb)
        })
        .action("never", |n: &mut i64, _: &mut Instruction| Ok(*n))
        .route_spec(
            agentry::RouteSpec::new("guarded", "never").when(|_| std::panic::panic_any(Bomb)),
        )
        .query("bomb.query", |_: &i64, _: &agentry::Signal| {
            std::panic::panic_any(Bomb)
        })
}

#[test]
fn a_panic_payload_that_panics_when_dropped_stays_contained() {
    quiet_panics();
    for (name, strategy) in every_strategy() {
        for threaded_mode in [false, true] {
            let builder = if threaded_mode {
                threaded(strategy)
            } else {
                deterministic(strategy)
            };
            let rt = builder.build().unwrap();
            let agent = rt.spawn(&bomb_spec()).unwrap();
            let long = Duration::from_secs(30);
            // In a called action: the caller gets the panic, the state rolls back.
            match agent.call(sig("bomb", ""), long) {
                Err(CallError::Action(e)) => assert!(e.is_panic(), "{name}"),
                other => panic!("{name}: {other:?}"),
            }
            assert_eq!(agent.call(sig("add", "2"), long).unwrap(), 2, "{name}");
            // In a sent action: counted, rolled back, the agent keeps serving.
            agent.send(sig("bomb", "")).unwrap();
            agent.send(sig("add", "3")).unwrap();
            if threaded_mode {
                assert!(rt.wait_idle(long), "{name}");
            } else {
                rt.run_until_idle().unwrap();
            }
            assert_eq!(*agent.state().unwrap(), 5, "{name}");
            // In a query.
            match agent.query(sig("bomb.query", "")) {
                Err(QueryError::Action(e)) => assert!(e.is_panic(), "{name}"),
                other => panic!("{name}: {other:?}"),
            }
            // In a route predicate: the send is refused with the panic.
            let e = agent.send(sig("guarded", "")).unwrap_err();
            assert!(
                matches!(e.kind(), agentry::SendErrorKind::PredicatePanicked { .. }),
                "{name}: {e:?}"
            );
            // In a bus callback.
            let bus = rt.bus();
            bus.subscribe("bus.bomb", |_| std::panic::panic_any(Bomb))
                .unwrap();
            let report = bus.publish(sig("bus.bomb", "")).unwrap();
            assert_eq!(report.failures.len(), 1, "{name}");
            let m = rt.shutdown().metrics;
            assert_eq!(m.accepted, m.processed + m.dead_lettered, "{name}: {m:?}");
            assert_eq!(m.accepted, 4, "{name}: {m:?}");
            assert_eq!(m.panicked_actions, 2, "{name}: {m:?}");
        }
    }
}

/// A query that reads, queries or calls its own agent gets `Reentrant`,
/// at once, whether the snapshot (`fast-path`) or the read lane answers it,
/// and whether the caller or a worker serves the lane.
#[test]
fn a_query_that_reaches_its_own_agent_is_refused_as_reentrant_in_every_mode() {
    for (name, strategy) in every_strategy() {
        for threaded_mode in [false, true] {
            let builder = if threaded_mode {
                threaded(strategy)
            } else {
                deterministic(strategy)
            };
            let rt = builder
                .default_timeout(Duration::from_secs(60))
                .build()
                .unwrap();
            let me: Arc<OnceLock<AgentRef<i64, i64>>> = Arc::default();
            let outcome = |r: Result<(), String>| -> Result<i64, agentry::ActionError> {
                match r {
                    Err(e) if e == "reentrant" => Ok(1),
                    Err(e) => Err(agentry::ActionError::message(e)),
                    Ok(()) => Ok(0),
                }
            };
            let spec = {
                let (m1, m2, m3) = (me.clone(), me.clone(), me.clone());
                counter_spec()
                    .query("self.state", move |_: &i64, _: &agentry::Signal| {
                        outcome(match m1.get().expect("set").state() {
                            Err(QueryError::Reentrant { .. }) => Err("reentrant".into()),
                            Err(e) => Err(e.to_string()),
                            Ok(_) => Ok(()),
                        })
                    })
                    .query("self.call", move |_: &i64, _: &agentry::Signal| {
                        outcome(
                            match m2.get().expect("set").call(sig("add", "1"), Duration::MAX) {
                                Err(CallError::Reentrant { .. }) => Err("reentrant".into()),
                                Err(e) => Err(e.to_string()),
                                Ok(_) => Ok(()),
                            },
                        )
                    })
                    .query("self.query", move |_: &i64, _: &agentry::Signal| {
                        outcome(match m3.get().expect("set").query(sig("get", "")) {
                            Err(QueryError::Reentrant { .. }) => Err("reentrant".into()),
                            Err(e) => Err(e.to_string()),
                            Ok(_) => Ok(()),
                        })
                    })
            };
            let agent = rt.spawn(&spec).unwrap();
            me.set(agent.clone()).unwrap();
            for q in ["self.state", "self.call", "self.query"] {
                assert_eq!(agent.query(sig(q, "")).unwrap(), 1, "{name}: {q}");
            }
            // The refused call changed nothing.
            assert_eq!(*agent.state().unwrap(), 0, "{name}");
            let _ = rt.shutdown();
        }
    }
}

/// A calls B while B calls A, on two threads, with no deadline: the second
/// call to close the cycle is refused with `CallError::Cycle` at once, so
/// neither agent (nor the workers under them) waits forever.
#[test]
fn a_call_cycle_across_threads_is_refused_instead_of_hanging() {
    for (name, strategy) in every_strategy() {
        let rt = threaded(strategy).workers(2).build().unwrap();
        let a_ref: Arc<OnceLock<AgentRef<i64, i64>>> = Arc::default();
        let b_ref: Arc<OnceLock<AgentRef<i64, i64>>> = Arc::default();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let (a_running_tx, a_running_rx) = mpsc::channel::<()>();
        let (b_running_tx, b_running_rx) = mpsc::channel::<()>();
        let long = Duration::from_secs(60);
        let record = |seen: &Arc<Mutex<Vec<String>>>, r: Result<i64, CallError>| match r {
            Ok(_) => "ok".to_owned(),
            Err(CallError::Cycle { agents }) => {
                let s = format!("cycle of {}", agents.len());
                seen.lock().unwrap().push(s.clone());
                s
            }
            Err(e) => {
                let s = e.to_string();
                seen.lock().unwrap().push(s.clone());
                s
            }
        };
        let a_spec = {
            let (b_ref, seen) = (b_ref.clone(), seen.clone());
            let a_running_tx = Mutex::new(a_running_tx);
            let b_running_rx = Mutex::new(b_running_rx);
            counter_spec().on("a.go", move |_: &mut i64, _: &mut Instruction| {
                let _ = a_running_tx.lock().unwrap().send(());
                let _ = b_running_rx.lock().unwrap().recv_timeout(long);
                record(
                    &seen,
                    b_ref
                        .get()
                        .expect("set")
                        .call(sig("add", "1"), Duration::MAX),
                );
                Ok(0)
            })
        };
        let b_spec = {
            let (a_ref, seen) = (a_ref.clone(), seen.clone());
            let b_running_tx = Mutex::new(b_running_tx);
            let a_running_rx = Mutex::new(a_running_rx);
            counter_spec().on("b.go", move |_: &mut i64, _: &mut Instruction| {
                let _ = b_running_tx.lock().unwrap().send(());
                let _ = a_running_rx.lock().unwrap().recv_timeout(long);
                record(
                    &seen,
                    a_ref
                        .get()
                        .expect("set")
                        .call(sig("add", "1"), Duration::MAX),
                );
                Ok(0)
            })
        };
        let a = rt.spawn(&a_spec).unwrap();
        let b = rt.spawn(&b_spec).unwrap();
        a_ref.set(a.clone()).unwrap();
        b_ref.set(b.clone()).unwrap();
        b.send(sig("b.go", "")).unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done_tx.send(a.call(sig("a.go", ""), Duration::MAX));
        });
        done_rx
            .recv_timeout(long)
            .unwrap_or_else(|_| panic!("{name}: A and B calling each other hung"))
            .unwrap();
        assert!(rt.wait_idle(long), "{name}: a worker stayed stuck");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen, vec!["cycle of 2".to_owned()], "{name}");
        let m = rt.shutdown().metrics;
        assert_eq!(m.accepted, m.processed + m.dead_lettered, "{name}: {m:?}");
    }
}

/// A state that counts its clones (per test, through a shared counter).
#[derive(Debug)]
struct Counted {
    log: Vec<u32>,
    clones: Arc<AtomicU64>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::Relaxed);
        Counted {
            log: self.log.clone(),
            clones: self.clones.clone(),
        }
    }
}

fn in_place_spec(clones: &Arc<AtomicU64>) -> AgentSpec<Counted, usize> {
    AgentSpec::new(Counted {
        log: Vec::new(),
        clones: clones.clone(),
    })
    .atomicity(agentry::Atomicity::InPlace)
    .on("add", |s: &mut Counted, ins: &mut Instruction| {
        s.log.push(ins.data().len() as u32);
        Ok(s.log.len())
    })
    .on("add.then.fail", |s: &mut Counted, ins: &mut Instruction| {
        s.log.push(ins.data().len() as u32);
        ins.emit(sig("never.sent", ""));
        Err(agentry::ActionError::rejected("checked too late"))
    })
    .on(
        "add.then.panic",
        |s: &mut Counted, ins: &mut Instruction| {
            s.log.push(ins.data().len() as u32);
            ins.emit(sig("never.sent", ""));
            panic!("half done")
        },
    )
}

#[test]
fn in_place_actions_copy_nothing_keep_an_errors_changes_and_restart_after_a_panic() {
    quiet_panics();
    for (name, strategy) in every_strategy() {
        let clones = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let seen = failures.clone();
        let rt = deterministic(strategy)
            .on_failure(move |f| seen.lock().unwrap().push(f.error.is_panic()))
            .build()
            .unwrap();
        let sent = Arc::new(AtomicU64::new(0));
        let count = sent.clone();
        rt.bus()
            .subscribe("never.sent", move |_| {
                count.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        let agent = rt.spawn(&in_place_spec(&clones)).unwrap();
        let before = clones.load(Ordering::Relaxed);
        for _ in 0..100 {
            agent.send(sig("add", "x")).unwrap();
        }
        rt.run_until_idle().unwrap();
        if !strategy.fast_path {
            // No rollback copy per action (the fast path's snapshot copies
            // at most once per publish; here it is off).
            assert_eq!(clones.load(Ordering::Relaxed), before, "{name}");
        }
        // An error keeps the action's change; the caller gets the error and
        // nothing it emitted leaves.
        let e = agent
            .call(sig("add.then.fail", "yy"), Duration::from_secs(5))
            .unwrap_err();
        assert!(
            matches!(e, CallError::Action(ref a) if !a.is_panic()),
            "{name}: {e:?}"
        );
        assert_eq!(agent.state().unwrap().log.len(), 101, "{name}");
        // A panic restarts from the spec's initial state, not the half-done one.
        let e = agent
            .call(sig("add.then.panic", "zzz"), Duration::from_secs(5))
            .unwrap_err();
        assert!(
            matches!(e, CallError::Action(ref a) if a.is_panic()),
            "{name}: {e:?}"
        );
        assert!(agent.state().unwrap().log.is_empty(), "{name}");
        // And it keeps serving.
        assert_eq!(
            agent.call(sig("add", "w"), Duration::from_secs(5)).unwrap(),
            1,
            "{name}"
        );
        assert_eq!(sent.load(Ordering::Relaxed), 0, "{name}");
        assert_eq!(*failures.lock().unwrap(), [false, true], "{name}");
        let m = rt.metrics();
        assert_eq!((m.failed_actions, m.panicked_actions), (2, 1), "{name}");
    }
}

#[test]
fn rollback_copies_the_state_once_per_action() {
    for (name, strategy) in every_strategy().into_iter().filter(|(_, s)| !s.fast_path) {
        let clones = Arc::new(AtomicU64::new(0));
        let rt = deterministic(strategy).build().unwrap();
        let agent = rt
            .spawn(&in_place_spec(&clones).atomicity(agentry::Atomicity::Rollback))
            .unwrap();
        let before = clones.load(Ordering::Relaxed);
        for _ in 0..100 {
            agent.send(sig("add", "x")).unwrap();
        }
        rt.run_until_idle().unwrap();
        // The first copy is a clone, the rest reuse it (`clone_from`, which
        // for this type is the default: a clone).
        assert_eq!(clones.load(Ordering::Relaxed) - before, 100, "{name}");
    }
}
