//! A shutdown reached from inside an action (an action can hold the
//! `Runtime`: it is `Send`). It must never hang, never panic, never strand
//! an accepted signal, and its report must add up: accepted = processed +
//! dead-lettered, with the instruction that asked for the shutdown counted
//! as processed.

mod common;
use agentry::{AgentRef, AgentSpec, CallError, Instruction, Runtime, ShutdownReport};
use common::*;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

type Holder = Arc<Mutex<Option<Runtime>>>;

/// An agent whose `down` action shuts the runtime down and sends the report.
fn shutter(holder: Holder, reports: mpsc::Sender<ShutdownReport>) -> AgentSpec<u64, ()> {
    let reports = Mutex::new(reports);
    AgentSpec::new(0).on("down", move |n: &mut u64, _: &mut Instruction| {
        *n += 1;
        let rt = holder.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(rt) = rt {
            let report = rt.shutdown();
            let _ = reports
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .send(report);
        }
        Ok(())
    })
}

#[test]
fn a_shutdown_from_an_action_on_a_worker_returns_an_exact_report() {
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        let holder: Holder = Arc::default();
        let (tx, rx) = mpsc::channel();
        let a = rt.spawn(&shutter(holder.clone(), tx)).unwrap();
        let b = rt.spawn(&counter_spec()).unwrap();
        for _ in 0..200 {
            b.send(sig("add", "1")).unwrap();
        }
        *holder.lock().unwrap() = Some(rt);
        a.send(sig("down", "")).unwrap();
        let report = rx
            .recv_timeout(LONG)
            .unwrap_or_else(|_| panic!("{name}: no report: the shutdown hung or panicked"));
        let m = report.metrics;
        assert_eq!(m.accepted, 201, "{name}: {m:?}");
        assert_eq!(m.accepted, m.processed + m.dead_lettered, "{name}: {m:?}");
        assert_eq!(report.dead_letters.len() as u64, m.dead_lettered, "{name}");
        // Every one of B's signals was processed or handed back.
        let b_processed = *b.state().unwrap() as u64;
        let b_returned = report
            .dead_letters
            .iter()
            .filter(|d| d.agent == b.id())
            .count() as u64;
        assert_eq!(b_processed + b_returned, 200, "{name}");
        assert_eq!(m.panicked_actions, 0, "{name}: {m:?}");
    }
}

#[test]
fn a_shutdown_from_a_called_action_while_a_worker_calls_that_agent_does_not_deadlock() {
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        let holder: Holder = Arc::default();
        let (report_tx, report_rx) = mpsc::channel();
        let (running_tx, running_rx) = mpsc::channel::<()>();
        let (calling_tx, calling_rx) = mpsc::channel::<()>();
        let a_ref: Arc<OnceLock<AgentRef<u64, ()>>> = Arc::default();
        // A: runs on the test's thread (called while idle); waits until B is
        // about to call it, then shuts the runtime down.
        let a_spec = {
            let holder = holder.clone();
            let report_tx = Mutex::new(report_tx);
            let running_tx = Mutex::new(running_tx);
            let calling_rx = Mutex::new(calling_rx);
            AgentSpec::<u64, ()>::new(0).on("down", move |n: &mut u64, _: &mut Instruction| {
                *n += 1;
                let _ = running_tx.lock().unwrap().send(());
                let _ = calling_rx.lock().unwrap().recv_timeout(LONG);
                if let Some(rt) = holder.lock().unwrap().take() {
                    let _ = report_tx.lock().unwrap().send(rt.shutdown());
                }
                Ok(())
            })
        };
        // B: on a worker, calls A (busy on the test's thread) with no deadline.
        let b_spec = {
            let a_ref = a_ref.clone();
            let calling_tx = Mutex::new(calling_tx);
            let running_rx = Mutex::new(running_rx);
            AgentSpec::<u64, ()>::new(0).on("call.a", move |n: &mut u64, _: &mut Instruction| {
                *n += 1;
                let _ = running_rx.lock().unwrap().recv_timeout(LONG);
                let _ = calling_tx.lock().unwrap().send(());
                match a_ref
                    .get()
                    .expect("set")
                    .call(sig("down", ""), Duration::MAX)
                {
                    Err(CallError::Send(_))
                    | Err(CallError::Stopped { .. })
                    | Err(CallError::ShutDown)
                    | Ok(()) => Ok(()),
                    Err(e) => Err(agentry::ActionError::message(e.to_string())),
                }
            })
        };
        let a = rt.spawn(&a_spec).unwrap();
        let b = rt.spawn(&b_spec).unwrap();
        a_ref.set(a.clone()).unwrap();
        *holder.lock().unwrap() = Some(rt);
        b.send(sig("call.a", "")).unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done_tx.send(a.call(sig("down", ""), LONG));
        });
        done_rx
            .recv_timeout(LONG)
            .unwrap_or_else(|_| panic!("{name}: the called action's shutdown deadlocked"))
            .unwrap();
        let report = report_rx.recv_timeout(LONG).expect("a report");
        let m = report.metrics;
        assert_eq!(m.accepted, m.processed + m.dead_lettered, "{name}: {m:?}");
        assert_eq!(m.failed_actions, 0, "{name}: {m:?}");
    }
}

#[test]
fn a_shutdown_from_an_action_in_deterministic_mode_counts_that_action() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let holder: Holder = Arc::default();
        let (tx, rx) = mpsc::channel();
        let a = rt.spawn(&shutter(holder.clone(), tx)).unwrap();
        let b = rt.spawn(&counter_spec()).unwrap();
        for _ in 0..25 {
            b.send(sig("add", "1")).unwrap();
        }
        *holder.lock().unwrap() = Some(rt);
        // A deterministic call runs A on this thread; its action shuts down.
        a.call(sig("down", ""), LONG).unwrap();
        let report = rx.recv_timeout(LONG).expect("a report");
        let m = report.metrics;
        assert_eq!(
            (m.accepted, m.processed, m.dead_lettered),
            (26, 1, 25),
            "{name}: {m:?}"
        );
        assert_eq!(report.dead_letters.len(), 25, "{name}");
    }
}
