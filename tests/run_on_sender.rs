//! `RuntimeBuilder::run_on_sender`: a sender that finds every worker asleep
//! runs the agent itself. The same promises hold as with workers only:
//! per-sender FIFO, exact accounting, shutdown handing back everything
//! unstarted; and a signal sent from inside an action is never run nested
//! inside that action's turn.

mod common;
use agentry::{AgentRef, AgentSpec, Instruction, QueryError, SendErrorKind};
use common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

/// Busy-waits `d` (no sleep: this gives the idle workers time to fall
/// asleep, so that the next send finds them asleep; nothing synchronizes on
/// it, and the test's outcome does not depend on how long it takes).
fn idle_for(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// The thread each signal's action ran on, sent back over a channel.
fn thread_spec(ran_on: mpsc::Sender<ThreadId>) -> AgentSpec<u64, ()> {
    let ran_on = std::sync::Mutex::new(ran_on);
    AgentSpec::new(0).on("where", move |n: &mut u64, _: &mut Instruction| {
        *n += 1;
        let _ = ran_on
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(std::thread::current().id());
        Ok(())
    })
}

#[test]
fn a_send_runs_the_agent_on_the_sender_once_every_worker_is_parked() {
    for (name, strategy) in strategies() {
        let (tx, rx) = mpsc::channel();
        let rt = threaded(strategy).run_on_sender(true).build().unwrap();
        let agent = rt.spawn(&thread_spec(tx)).unwrap();
        let me = std::thread::current().id();
        let mut on_sender = false;
        for _ in 0..2_000 {
            idle_for(Duration::from_micros(200));
            agent.send(sig("where", "")).unwrap();
            if rx.recv_timeout(LONG).unwrap() == me {
                on_sender = true;
                break;
            }
        }
        assert!(on_sender, "{name}: no send ran on the sending thread");
        let m = rt.shutdown().metrics;
        assert_eq!(m.accepted, m.processed, "{name}");
    }
}

#[test]
fn without_run_on_sender_a_send_never_runs_the_agent_on_the_sender() {
    for (name, strategy) in strategies() {
        let (tx, rx) = mpsc::channel();
        let rt = threaded(strategy).build().unwrap();
        let agent = rt.spawn(&thread_spec(tx)).unwrap();
        let me = std::thread::current().id();
        for _ in 0..200 {
            idle_for(Duration::from_micros(200));
            agent.send(sig("where", "")).unwrap();
            assert_ne!(rx.recv_timeout(LONG).unwrap(), me, "{name}");
        }
        let _ = rt.shutdown();
    }
}

#[test]
fn signals_from_each_sender_are_processed_in_send_order() {
    const SENDERS: u64 = 4;
    const EACH: u64 = 3_000;
    for (name, strategy) in strategies() {
        let rt = threaded(strategy)
            .run_on_sender(true)
            .mailbox_capacity(64)
            .build()
            .unwrap();
        let agent = rt.spawn(&seq_spec()).unwrap();
        std::thread::scope(|scope| {
            for s in 0..SENDERS {
                let agent = agent.clone();
                scope.spawn(move || {
                    for n in 0..EACH {
                        // Now and then give the workers time to fall asleep,
                        // so senders run the agent too.
                        if n % 100 == 0 {
                            idle_for(Duration::from_micros(50));
                        }
                        send_retrying(&agent, sig("seq", format!("{s}:{n}"))).unwrap();
                    }
                });
            }
        });
        assert!(rt.wait_idle(LONG), "{name}: not idle");
        assert_in_send_order(name, &agent.state().unwrap(), SENDERS, EACH);
        let m = rt.shutdown().metrics;
        assert_eq!(m.accepted, SENDERS * EACH, "{name}");
        assert_eq!(m.processed, m.accepted, "{name}");
    }
}

#[test]
fn shutdown_while_senders_run_agents_accounts_for_every_accepted_signal() {
    for (name, strategy) in strategies() {
        let rt = threaded(strategy)
            .run_on_sender(true)
            .mailbox_capacity(64)
            .build()
            .unwrap();
        let agents: Vec<_> = (0..8).map(|_| rt.spawn(&counter_spec()).unwrap()).collect();
        let accepted = Arc::new(AtomicU64::new(0));
        // Shut down once the senders together had 20,000 signals accepted.
        let enough = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..3)
            .map(|t| {
                let (agents, accepted, enough) = (agents.clone(), accepted.clone(), enough.clone());
                std::thread::spawn(move || {
                    let mut i = 0usize;
                    loop {
                        if i.is_multiple_of(64) {
                            idle_for(Duration::from_micros(20));
                        }
                        match agents[(i + t) % agents.len()].send(sig("add", "1")) {
                            Ok(()) => {
                                if accepted.fetch_add(1, Ordering::Relaxed) + 1 == 20_000 {
                                    enough.wait();
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
        enough.wait();
        let report = rt.shutdown();
        for h in handles {
            h.join().unwrap();
        }
        let m = report.metrics;
        assert_eq!(m.accepted, accepted.load(Ordering::Relaxed), "{name}");
        assert_eq!(m.processed + m.dead_lettered, m.accepted, "{name}: {m:?}");
        assert_eq!(report.dead_letters.len() as u64, m.dead_lettered, "{name}");
        let total: i64 = agents.iter().map(|a| *a.state().unwrap()).sum();
        assert_eq!(total as u64, m.processed, "{name}");
    }
}

/// B's action reads A's state: refused as reentrant exactly when B runs
/// nested inside A's turn on A's thread, which must never happen.
#[test]
fn a_signal_sent_from_inside_an_action_never_runs_nested_in_its_turn() {
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).run_on_sender(true).build().unwrap();
        let a_ref: Arc<OnceLock<AgentRef<u64, ()>>> = Arc::default();
        let nested = Arc::new(AtomicU64::new(0));
        let b_spec = {
            let (a_ref, nested) = (a_ref.clone(), nested.clone());
            AgentSpec::<u64, ()>::new(0).on("b.run", move |n: &mut u64, _: &mut Instruction| {
                *n += 1;
                if let Err(QueryError::Reentrant { .. }) = a_ref.get().expect("set").state() {
                    nested.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            })
        };
        let b = rt.spawn(&b_spec).unwrap();
        let a_spec = {
            let b = b.clone();
            AgentSpec::<u64, ()>::new(0).on("a.run", move |n: &mut u64, ins: &mut Instruction| {
                *n += 1;
                // Both ways an action can send: through the instruction
                // (after the commit) and directly.
                ins.send_to(&b.addr(), sig("b.run", ""));
                b.send(sig("b.run", ""))
                    .map_err(|e| agentry::ActionError::message(e.to_string()))?;
                Ok(())
            })
        };
        let a = rt.spawn(&a_spec).unwrap();
        a_ref.set(a.clone()).unwrap();
        for _ in 0..300 {
            idle_for(Duration::from_micros(100));
            a.send(sig("a.run", "")).unwrap();
        }
        assert!(rt.wait_idle(LONG), "{name}");
        assert_eq!(*b.state().unwrap(), 600, "{name}");
        assert_eq!(
            nested.load(Ordering::SeqCst),
            0,
            "{name}: B ran nested in A's turn"
        );
        let _ = rt.shutdown();
    }
}
