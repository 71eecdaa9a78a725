//! The threaded runtime: ordering, accounting, scale, failures, backpressure.

mod common;
use agentry::{ActionErrorKind, AgentSpec, CallError, Instruction, SendErrorKind, Signal};
use common::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

#[test]
fn signals_from_each_sender_are_processed_in_send_order() {
    const SENDERS: u64 = 4;
    const EACH: u64 = 5_000;
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).mailbox_capacity(64).build().unwrap();
        let agent = rt.spawn(&seq_spec()).unwrap();
        std::thread::scope(|scope| {
            for s in 0..SENDERS {
                let agent = agent.clone();
                scope.spawn(move || {
                    for n in 0..EACH {
                        send_retrying(&agent, sig("seq", format!("{s}:{n}"))).unwrap();
                    }
                });
            }
        });
        assert!(rt.wait_idle(LONG), "{name}: not idle");
        assert_in_send_order(name, &agent.state().unwrap(), SENDERS, EACH);
    }
}

#[test]
fn shutdown_during_concurrent_sends_accounts_for_every_accepted_signal() {
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).mailbox_capacity(256).build().unwrap();
        let agents: Vec<_> = (0..8).map(|_| rt.spawn(&counter_spec()).unwrap()).collect();
        let accepted = Arc::new(AtomicU64::new(0));
        // Shut down once the senders together had 20,000 signals accepted.
        let (enough_tx, enough_rx) = std::sync::mpsc::channel::<()>();
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let agents = agents.clone();
                let accepted = accepted.clone();
                let enough = enough_tx.clone();
                std::thread::spawn(move || {
                    let mut i = 0usize;
                    loop {
                        match agents[(i + t) % agents.len()].send(sig("add", "1")) {
                            Ok(()) => {
                                if accepted.fetch_add(1, Ordering::Relaxed) + 1 == 20_000 {
                                    let _ = enough.send(());
                                }
                            }
                            Err(e) if e.is_full() => std::thread::yield_now(),
                            Err(e) => {
                                assert_eq!(e.kind(), &SendErrorKind::ShuttingDown);
                                return;
                            }
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        enough_rx
            .recv_timeout(LONG)
            .expect("20,000 signals accepted");
        let report = rt.shutdown();
        for h in handles {
            h.join().unwrap();
        }
        let m = report.metrics;
        assert_eq!(m.accepted, accepted.load(Ordering::Relaxed), "{name}");
        assert_eq!(m.processed + m.dead_lettered, m.accepted, "{name}: {m:?}");
        assert_eq!(report.dead_letters.len() as u64, m.dead_lettered, "{name}");
        // Every processed signal is visible in some agent's final state.
        let total: i64 = agents.iter().map(|a| *a.state().unwrap()).sum();
        assert_eq!(total as u64, m.processed, "{name}");
        println!(
            "{name}: accepted {}, processed {}, dead-lettered {}",
            m.accepted, m.processed, m.dead_lettered
        );
    }
}

fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

#[test]
fn a_hundred_thousand_agents_run_on_two_workers() {
    const AGENTS: usize = 100_000;
    for (name, strategy) in strategies() {
        let threads_before = thread_count();
        let rt = threaded(strategy).build().unwrap();
        let spec = counter_spec();
        let agents: Vec<_> = (0..AGENTS).map(|_| rt.spawn(&spec).unwrap()).collect();
        for (i, a) in agents.iter().enumerate() {
            a.send(sig("add", (i % 7).to_string())).unwrap();
        }
        assert!(rt.wait_idle(LONG), "{name}: not idle");
        let total: i64 = agents.iter().map(|a| *a.state().unwrap()).sum();
        let expected: i64 = (0..AGENTS).map(|i| (i % 7) as i64).sum();
        assert_eq!(total, expected, "{name}");
        assert_eq!(rt.metrics().live_agents, AGENTS as u64);
        if let (Some(before), Some(now)) = (threads_before, thread_count()) {
            // Two workers; other tests of this binary may run threads too.
            assert!(
                now <= before + 2 + 16,
                "{name}: {now} threads for {AGENTS} agents"
            );
        }
        let report = rt.shutdown();
        assert_eq!(report.metrics.processed, AGENTS as u64);
    }
}

#[test]
fn call_replies_after_earlier_sends_and_state_reads_its_own_writes() {
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        let a = rt.spawn(&counter_spec()).unwrap();
        for round in 1..=200i64 {
            for _ in 0..5 {
                a.send(sig("add", "1")).unwrap();
            }
            let reply = a.call(sig("add", "0"), LONG).unwrap();
            assert_eq!(reply, round * 5, "{name}");
            assert_eq!(
                *a.state().unwrap(),
                round * 5,
                "{name}: state missed a completed call"
            );
            assert_eq!(a.query(sig("get", "")).unwrap(), round * 5, "{name}");
        }
    }
}

#[test]
fn failing_and_panicking_actions_roll_back_and_the_agent_keeps_serving() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let failures = Arc::new(Mutex::new(Vec::new()));
        let seen = failures.clone();
        let rt = threaded(strategy)
            .on_failure(move |f| seen.lock().unwrap().push((f.error.kind(), f.call)))
            .build()
            .unwrap();
        let a = rt.spawn(&counter_spec()).unwrap();
        a.call(sig("add", "7"), LONG).unwrap();
        let e = a.call(sig("fail", ""), LONG).unwrap_err();
        assert!(
            matches!(&e, CallError::Action(x) if x.kind() == ActionErrorKind::Rejected),
            "{name}: {e}"
        );
        assert_eq!(*a.state().unwrap(), 7, "{name}: error not rolled back");
        let e = a.call(sig("panic", ""), LONG).unwrap_err();
        assert!(
            matches!(&e, CallError::Action(x) if x.is_panic()),
            "{name}: {e}"
        );
        assert!(e.to_string().contains("deliberate panic"));
        assert_eq!(*a.state().unwrap(), 7, "{name}: panic not rolled back");
        // Failures of plain sends: nobody waits, so they are counted and hooked.
        a.send(sig("fail", "")).unwrap();
        a.send(sig("panic", "")).unwrap();
        assert_eq!(
            a.call(sig("add", "1"), LONG).unwrap(),
            8,
            "{name}: agent stopped serving"
        );
        let m = rt.metrics();
        assert_eq!((m.failed_actions, m.panicked_actions), (4, 2), "{name}");
        let seen = failures.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![
                (ActionErrorKind::Rejected, true),
                (ActionErrorKind::Panicked, true),
                (ActionErrorKind::Rejected, false),
                (ActionErrorKind::Panicked, false)
            ],
            "{name}"
        );
    }
}

#[test]
fn many_senders_against_a_tiny_mailbox_lose_nothing() {
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).mailbox_capacity(1).build().unwrap();
        let refused = Arc::new(AtomicU64::new(0));
        // The agent first sits in `hold` until some send has been refused, so
        // the test always exercises the refusal path (the mailbox holds one).
        let refused_in = refused.clone();
        let spec = counter_spec().on("hold", move |_: &mut i64, _: &mut Instruction| {
            let deadline = Instant::now() + LONG;
            while refused_in.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
                std::thread::yield_now();
            }
            Ok(0)
        });
        let a = rt.spawn(&spec).unwrap();
        a.send(sig("hold", "")).unwrap();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let a = a.clone();
                let refused = refused.clone();
                scope.spawn(move || {
                    for _ in 0..2_000 {
                        let mut s = sig("add", "1");
                        loop {
                            match a.send(s) {
                                Ok(()) => break,
                                Err(e) => {
                                    assert!(e.is_full(), "{e}");
                                    refused.fetch_add(1, Ordering::Relaxed);
                                    let back = e.into_signal();
                                    assert_eq!(
                                        back.data().as_bytes(),
                                        b"1",
                                        "handed back a different signal"
                                    );
                                    s = back;
                                    std::thread::yield_now();
                                }
                            }
                        }
                    }
                });
            }
        });
        assert!(rt.wait_idle(LONG));
        assert_eq!(*a.state().unwrap(), 8_000, "{name}");
        let m = rt.metrics();
        assert_eq!(m.refused_full, refused.load(Ordering::Relaxed), "{name}");
        assert!(m.refused_full > 0, "{name}: no send was ever refused");
        println!(
            "{name}: {} sends refused as full and retried",
            m.refused_full
        );
    }
}

#[test]
fn stop_hands_back_queued_signals_and_fails_pending_calls() {
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        let gate = Arc::new(Barrier::new(2));
        let gate_in = gate.clone();
        let entered = Arc::new(AtomicBool::new(false));
        let entered_in = entered.clone();
        let spec = AgentSpec::<u32, u32>::new(0)
            .on("block", move |n: &mut u32, _: &mut Instruction| {
                entered_in.store(true, Ordering::SeqCst);
                gate_in.wait();
                *n += 1;
                Ok(*n)
            })
            .on("work", |n: &mut u32, _: &mut Instruction| {
                *n += 1;
                Ok(*n)
            });
        let a = rt.spawn(&spec).unwrap();
        a.send(sig("block", "")).unwrap();
        while !entered.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        for i in 0..5 {
            a.send(sig("work", i.to_string())).unwrap();
        }
        let caller = {
            let a = a.clone();
            std::thread::spawn(move || a.call(sig("work", "call"), LONG))
        };
        while a.mailbox_len() < 6 {
            std::thread::yield_now();
        }
        let stopper = {
            let a = a.clone();
            std::thread::spawn(move || a.stop())
        };
        while !a.is_stopped() {
            std::thread::yield_now();
        }
        gate.wait(); // let the blocked action finish; stop() waits for it
        let report = stopper.join().unwrap();
        let data: Vec<String> = report
            .dead_letters
            .iter()
            .map(|d| String::from_utf8_lossy(d.signal.data()).into_owned())
            .collect();
        assert_eq!(data, ["0", "1", "2", "3", "4", "call"], "{name}");
        assert!(report.dead_letters[5].was_call);
        assert!(
            matches!(caller.join().unwrap(), Err(CallError::Stopped { .. })),
            "{name}"
        );
        assert_eq!(*a.state().unwrap(), 1, "{name}: final state");
        let e = a.send(sig("work", "")).unwrap_err();
        assert_eq!(e.kind(), &SendErrorKind::Stopped);
        assert!(a.stop().dead_letters.is_empty(), "stopping twice");
        let m = rt.shutdown().metrics;
        assert_eq!(m.accepted, m.processed + m.dead_lettered, "{name}");
    }
}

#[test]
fn a_call_that_times_out_reports_it_and_the_late_reply_is_dropped() {
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        // The first `slow` action tells the test it runs, then holds the
        // agent until the test lets go (dropping `release`).
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, release_rx) = (Mutex::new(started_tx), Mutex::new(release_rx));
        let spec =
            AgentSpec::<u32, u32>::new(0).on("slow", move |n: &mut u32, _: &mut Instruction| {
                let _ = started_tx.lock().unwrap().send(());
                let _ = release_rx.lock().unwrap().recv();
                *n += 1;
                Ok(*n)
            });
        let a = rt.spawn(&spec).unwrap();
        a.send(sig("slow", "")).unwrap();
        started_rx
            .recv_timeout(LONG)
            .expect("a worker runs the agent");
        let e = a
            .call(sig("slow", ""), Duration::from_millis(20))
            .unwrap_err();
        assert!(matches!(e, CallError::Timeout { .. }), "{name}: {e}");
        drop(release_tx);
        // The next call on this thread must get its own reply, not the late one.
        assert_eq!(a.call(sig("slow", ""), LONG).unwrap(), 3, "{name}");
    }
}

#[test]
fn signals_emitted_by_a_failing_action_are_not_sent() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        let spec = AgentSpec::<u32>::new(0).on("go", |_: &mut u32, ins: &mut Instruction| {
            ins.emit(Signal::new("side.effect", "/t", ins.data().clone()).unwrap());
            if ins.data().as_bytes() == b"fail" {
                return Err(agentry::ActionError::rejected("deliberate"));
            }
            Ok(())
        });
        let a = rt.spawn(&spec).unwrap();
        let sink = rt.spawn(&log_spec()).unwrap();
        rt.bus()
            .subscribe_agent("side.effect", &sink.addr())
            .unwrap();
        a.send(sig("go", "ok1")).unwrap();
        a.send(sig("go", "fail")).unwrap();
        a.send(sig("go", "ok2")).unwrap();
        assert!(rt.wait_idle(LONG));
        assert_eq!(
            *sink.state().unwrap(),
            ["side.effect:ok1", "side.effect:ok2"],
            "{name}"
        );
    }
}

#[test]
fn agents_stopped_while_others_send_to_them_lose_nothing() {
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        let agents: Vec<_> = (0..16)
            .map(|_| rt.spawn(&counter_spec()).unwrap())
            .collect();
        let accepted = AtomicU64::new(0);
        let dead = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for t in 0..3 {
                let (agents, accepted) = (&agents, &accepted);
                scope.spawn(move || {
                    for i in 0..20_000usize {
                        match agents[(i * 7 + t) % agents.len()].send(sig("add", "1")) {
                            Ok(()) => {
                                accepted.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => assert!(matches!(
                                e.kind(),
                                SendErrorKind::Stopped | SendErrorKind::MailboxFull { .. }
                            )),
                        }
                    }
                });
            }
            // Stop every other agent, spread over the sending: the k-th stop
            // waits until k * 6,000 signals are in (or the senders are done).
            let (agents, dead, accepted) = (&agents, &dead, &accepted);
            scope.spawn(move || {
                for (k, a) in agents.iter().step_by(2).enumerate() {
                    let due = (k as u64 + 1) * 6_000;
                    let mut spins = 0u32;
                    while accepted.load(Ordering::Relaxed) < due && spins < 1_000_000 {
                        std::thread::yield_now();
                        spins += 1;
                    }
                    dead.fetch_add(a.stop().dead_letters.len() as u64, Ordering::Relaxed);
                }
            });
        });
        assert!(rt.wait_idle(LONG));
        let processed: i64 = agents.iter().map(|a| *a.state().unwrap()).sum();
        assert_eq!(
            processed as u64 + dead.load(Ordering::Relaxed),
            accepted.load(Ordering::Relaxed),
            "{name}"
        );
    }
}

#[test]
fn stop_from_another_thread_returns_after_the_running_instruction_finished() {
    use std::sync::mpsc;
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        let (started_tx, started) = mpsc::channel::<()>();
        let (go, go_rx) = mpsc::channel::<()>();
        let go_rx = Arc::new(Mutex::new(go_rx));
        let finished = Arc::new(AtomicBool::new(false));
        let spec = {
            let finished = finished.clone();
            AgentSpec::<u64>::new(0).on("work", move |n: &mut u64, _: &mut Instruction| {
                let _ = started_tx.send(());
                let _ = go_rx.lock().unwrap().recv();
                *n += 1;
                finished.store(true, Ordering::SeqCst);
                Ok(())
            })
        };
        let agent = rt.spawn(&spec).unwrap();
        agent.send(sig("work", "")).unwrap();
        started.recv().unwrap(); // a worker is inside the action
        let stopper = {
            let agent = agent.clone();
            let finished = finished.clone();
            std::thread::spawn(move || {
                let report = agent.stop();
                // stop() waits for the instruction in progress (woken by the
                // runner's release, not by polling).
                (finished.load(Ordering::SeqCst), report.dead_letters.len())
            })
        };
        go.send(()).unwrap();
        let (done_before_return, letters) = stopper.join().unwrap();
        assert!(
            done_before_return,
            "{name}: stop returned while the action ran"
        );
        assert_eq!(letters, 0, "{name}");
        assert_eq!(*agent.state().unwrap(), 1, "{name}");
    }
}
