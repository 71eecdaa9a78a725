//! Faults the runtime must survive without losing an accepted signal. Each
//! test is bounded in time (it stops work by shutting down, or does a fixed
//! amount of it), so CI stays well within its limit in debug builds.

mod common;
use agentry::{AgentSpec, CallError, Instruction, RouteSpec, SendErrorKind, Signal};
use common::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

#[test]
fn shutdown_in_the_middle_of_a_million_signal_burst_accounts_exactly() {
    const SENDERS: usize = 4;
    const BURST: usize = 1_000_000;
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).mailbox_capacity(4096).build().unwrap();
        let agents: Vec<_> = (0..16)
            .map(|_| rt.spawn(&counter_spec()).unwrap())
            .collect();
        let accepted = AtomicU64::new(0);
        let refused_after_shutdown = AtomicU64::new(0);
        // The sender whose signal is the 50,000th accepted rings this bell.
        let (halfway_tx, halfway_rx) = std::sync::mpsc::channel::<()>();
        let report = std::thread::scope(|scope| {
            for t in 0..SENDERS {
                let (agents, accepted, refused) = (&agents, &accepted, &refused_after_shutdown);
                let halfway = halfway_tx.clone();
                scope.spawn(move || {
                    for i in 0..BURST / SENDERS {
                        let mut s = sig("add", "1");
                        loop {
                            match agents[(i + t) % agents.len()].send(s) {
                                Ok(()) => {
                                    if accepted.fetch_add(1, Ordering::Relaxed) + 1 == 50_000 {
                                        let _ = halfway.send(());
                                    }
                                    break;
                                }
                                Err(e) if e.is_full() => {
                                    s = e.into_signal();
                                    std::thread::yield_now();
                                }
                                Err(e) => {
                                    assert_eq!(e.kind(), &SendErrorKind::ShuttingDown, "{e}");
                                    refused.fetch_add(1, Ordering::Relaxed);
                                    return;
                                }
                            }
                        }
                    }
                });
            }
            // Shut down mid-burst, once 50,000 signals are in.
            halfway_rx
                .recv_timeout(LONG)
                .expect("50,000 signals accepted");
            rt.shutdown()
        });
        let m = report.metrics;
        let accepted = accepted.load(Ordering::Relaxed);
        println!(
            "{name}: accepted {accepted}, processed {}, dead-lettered {}, senders refused after shutdown {}",
            m.processed,
            m.dead_lettered,
            refused_after_shutdown.load(Ordering::Relaxed)
        );
        assert!(
            accepted < BURST as u64,
            "{name}: shutdown was not mid-burst"
        );
        assert_eq!(
            m.accepted, accepted,
            "{name}: the runtime's count differs from the senders'"
        );
        assert_eq!(m.processed + m.dead_lettered, m.accepted, "{name}: {m:?}");
        assert_eq!(report.dead_letters.len() as u64, m.dead_lettered, "{name}");
        let in_states: i64 = agents.iter().map(|a| *a.state().unwrap()).sum();
        assert_eq!(
            in_states as u64, m.processed,
            "{name}: processed but not in any state"
        );
    }
}

#[test]
fn ten_thousand_panicking_actions_in_a_row_leave_the_agent_serving() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        let a = rt.spawn(&counter_spec()).unwrap();
        a.call(sig("add", "5"), LONG).unwrap();
        for i in 0..10_000 {
            let e = a.call(sig("panic", ""), LONG).unwrap_err();
            assert!(
                matches!(&e, CallError::Action(x) if x.is_panic()),
                "{name}: {e}"
            );
            if i % 1_000 == 0 {
                assert_eq!(
                    *a.state().unwrap(),
                    5,
                    "{name}: a panic leaked into the state"
                );
            }
        }
        // And a burst of sends that panic, with nobody waiting.
        for _ in 0..1_000 {
            a.send(sig("panic", "")).unwrap();
        }
        assert_eq!(
            a.call(sig("add", "1"), LONG).unwrap(),
            6,
            "{name}: the agent stopped serving"
        );
        let m = rt.metrics();
        assert_eq!(m.panicked_actions, 11_000, "{name}");
    }
}

#[test]
fn senders_against_full_mailboxes_get_every_refused_signal_back() {
    const SENDERS: u64 = 6;
    const EACH: u64 = 3_000;
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).mailbox_capacity(2).build().unwrap();
        // Holds agent 0 busy until the senders have been refused at least
        // once, so refusals are guaranteed, not left to scheduling.
        let (entered, open) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (entered_in, open_in) = (entered.clone(), open.clone());
        // Records every (sender, sequence) it sees: loss and duplication show.
        let spec = AgentSpec::<HashMap<u64, Vec<u64>>>::new(HashMap::new())
            .on(
                "seq",
                |seen: &mut HashMap<u64, Vec<u64>>, ins: &mut Instruction| {
                    let text = std::str::from_utf8(ins.data()).unwrap_or("");
                    let (s, n) = text.split_once(':').unwrap_or(("0", "0"));
                    seen.entry(s.parse().unwrap_or(0))
                        .or_default()
                        .push(n.parse().unwrap_or(0));
                    Ok(())
                },
            )
            .on(
                "gate",
                move |_: &mut HashMap<u64, Vec<u64>>, _: &mut Instruction| {
                    entered_in.store(true, Ordering::SeqCst);
                    while !open_in.load(Ordering::SeqCst) {
                        std::thread::yield_now();
                    }
                    Ok(())
                },
            );
        let agents: Vec<_> = (0..3).map(|_| rt.spawn(&spec).unwrap()).collect();
        // Agent 0's worker is inside the gate action and its mailbox is
        // empty: senders 0 and 3 fill its two slots, then are refused.
        agents[0].send(sig("gate", "")).unwrap();
        while !entered.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let refusals = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for s in 0..SENDERS {
                let (agents, refusals) = (&agents, &refusals);
                scope.spawn(move || {
                    for n in 0..EACH {
                        let original = sig("seq", format!("{s}:{n}"));
                        let mut pending = original.clone();
                        let agent = &agents[(s % 3) as usize];
                        loop {
                            match agent.send(pending) {
                                Ok(()) => break,
                                Err(e) => {
                                    assert!(e.is_full(), "{e}");
                                    refusals.fetch_add(1, Ordering::Relaxed);
                                    pending = e.into_signal();
                                    assert_eq!(
                                        pending, original,
                                        "a refused signal came back changed"
                                    );
                                    std::thread::yield_now();
                                }
                            }
                        }
                    }
                });
            }
            while refusals.load(Ordering::SeqCst) == 0 {
                std::thread::yield_now();
            }
            open.store(true, Ordering::SeqCst);
        });
        assert!(rt.wait_idle(LONG), "{name}");
        for s in 0..SENDERS {
            let state = agents[(s % 3) as usize].state().unwrap();
            let got = state.get(&s).cloned().unwrap_or_default();
            assert_eq!(
                got,
                (0..EACH).collect::<Vec<_>>(),
                "{name}: sender {s} lost, duplicated or reordered"
            );
        }
        let refusals = refusals.load(Ordering::Relaxed);
        println!("{name}: {refusals} refusals handed back and retried");
        assert!(refusals > 0, "{name}: no sender met a full mailbox");
        assert_eq!(rt.metrics().refused_full, refusals, "{name}");
    }
}

#[test]
fn routes_added_and_removed_while_signals_are_dispatched() {
    // 200 more routes take the route table past the size at which a change
    // updates a spare copy instead of copying the table (agent::route_cell),
    // so both ways of changing it race the senders.
    for ((name, strategy), filler) in strategies().into_iter().flat_map(|s| [(s, 0), (s, 200)]) {
        let name = format!("{name}, {filler} more routes");
        let rt = threaded(strategy)
            .mailbox_capacity(1 << 16)
            .build()
            .unwrap();
        let spec = AgentSpec::<(u64, u64)>::new((0, 0))
            .action("churned", |s: &mut (u64, u64), _: &mut Instruction| {
                s.0 += 1;
                Ok(())
            })
            .action("stable", |s: &mut (u64, u64), _: &mut Instruction| {
                s.1 += 1;
                Ok(())
            })
            .route("stable.*", "stable");
        let spec = (0..filler).fold(spec, |spec, i| spec.route(format!("filler.r{i}"), "stable"));
        let agent = rt.spawn(&spec).unwrap();
        let stop = AtomicBool::new(false);
        let (ok_churn, no_route, ok_stable) =
            (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        // The churner's first add/remove runs in lockstep with sender 0, so
        // that one churn signal is certainly accepted and one certainly
        // refused for want of a route; after that they race freely.
        let lockstep = Barrier::new(2);
        let send_churn = || {
            let s: Signal = sig("churn.x", "");
            match agent.send(s.clone()) {
                Ok(()) => ok_churn.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    assert_eq!(e.kind(), &SendErrorKind::NoRoute, "{e}");
                    assert_eq!(e.into_signal(), s);
                    no_route.fetch_add(1, Ordering::Relaxed)
                }
            };
        };
        let changes = std::thread::scope(|scope| {
            let churner = scope.spawn(|| {
                let id = agent
                    .add_route(RouteSpec::new("churn.*", "churned"))
                    .unwrap();
                lockstep.wait(); // route present: sender 0 sends
                lockstep.wait();
                agent.remove_route(id).unwrap();
                lockstep.wait(); // route gone: sender 0 sends
                let mut changes = 2u64;
                while !stop.load(Ordering::Relaxed) {
                    let id = agent
                        .add_route(RouteSpec::new("churn.*", "churned"))
                        .unwrap();
                    std::thread::yield_now();
                    agent.remove_route(id).unwrap();
                    std::thread::yield_now();
                    changes += 2;
                }
                changes
            });
            let senders: Vec<_> = (0..2)
                .map(|sender| {
                    let (lockstep, send_churn) = (&lockstep, &send_churn);
                    let (agent, ok_stable) = (&agent, &ok_stable);
                    scope.spawn(move || {
                        if sender == 0 {
                            lockstep.wait();
                            send_churn(); // accepted
                            lockstep.wait();
                            lockstep.wait();
                            send_churn(); // refused: no route
                        }
                        for i in 0..20_000u32 {
                            if i % 2 == 0 {
                                agent.send(sig("stable.x", "")).unwrap();
                                ok_stable.fetch_add(1, Ordering::Relaxed);
                            } else {
                                send_churn();
                            }
                        }
                    })
                })
                .collect();
            for s in senders {
                s.join().unwrap();
            }
            stop.store(true, Ordering::Relaxed);
            churner.join().unwrap()
        });
        assert!(rt.wait_idle(LONG), "{name}");
        let (churned, stable) = *agent.state().unwrap();
        assert_eq!(
            churned,
            ok_churn.load(Ordering::Relaxed),
            "{name}: accepted churn signals lost"
        );
        assert_eq!(stable, ok_stable.load(Ordering::Relaxed), "{name}");
        let m = rt.metrics();
        assert_eq!(m.accepted, m.processed, "{name}");
        let (ok_churn, no_route) = (
            ok_churn.load(Ordering::Relaxed),
            no_route.load(Ordering::Relaxed),
        );
        assert_eq!(
            ok_churn + no_route,
            20_000 + 2,
            "{name}: every churn signal is either accepted or handed back"
        );
        println!(
            "{name}: {changes} route changes; churn signals accepted {ok_churn}, \
             refused for no route {no_route}"
        );
        // Guaranteed by the lockstep start.
        assert!(
            ok_churn > 0 && no_route > 0,
            "{name}: {ok_churn} accepted, {no_route} refused"
        );
        assert!(changes >= 2, "{name}");
    }
}
