//! `Runtime::shutdown_graceful`: intake from outside stops, the work
//! already accepted runs to its end (with everything it sends on: emits,
//! sends, timer firings, async work results), then the normal shutdown.
//!
//! Threaded tests hold the drain open with an action that blocks on a
//! channel (or spins on a condition), run `shutdown_graceful` on a thread of
//! its own, and detect that the drain has begun by polling an outside send
//! of an unrouted signal: refused with `NoRoute` before (nothing accepted),
//! with `ShuttingDown` once intake has stopped.

mod common;

use agentry::{
    ActionError, AgentRef, AgentSpec, CallError, DeadLetterReason, Instruction, PublishError,
    RouteSpec, Runtime, SendErrorKind, ShutdownReport, Signal, TimerTarget,
};
use common::{deterministic, sig, strategies, threaded};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for something that should take milliseconds
/// before failing instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------ helpers

/// Waits (spinning, yielding) until an outside send to `probe` is refused
/// with `ShuttingDown`: the drain has begun. The probe's type is unrouted,
/// so until then the send is refused with `NoRoute` and nothing is accepted.
fn wait_for_drain<S, R>(probe: &AgentRef<S, R>)
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match probe.send(sig("drain.probe", "")) {
            Err(e) if *e.kind() == SendErrorKind::ShuttingDown => return,
            Err(e) if *e.kind() == SendErrorKind::NoRoute => {}
            other => panic!("unexpected probe result: {other:?}"),
        }
        assert!(Instant::now() < deadline, "the drain never began");
        std::thread::yield_now();
    }
}

/// Runs `shutdown_graceful(timeout)` on a thread of its own; the receiver
/// gets the report.
fn drain_on_thread(rt: Runtime, timeout: Duration) -> mpsc::Receiver<ShutdownReport> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(rt.shutdown_graceful(timeout));
    });
    rx
}

/// A gate an action waits at until the test opens it (one `open` lets one
/// waiter through).
struct Gate {
    open: mpsc::Sender<()>,
    wait: Arc<Mutex<mpsc::Receiver<()>>>,
}

impl Gate {
    fn new() -> Self {
        let (open, wait) = mpsc::channel();
        Gate {
            open,
            wait: Arc::new(Mutex::new(wait)),
        }
    }

    /// For the action: blocks until opened (fails the action if never).
    fn waiter(&self) -> impl Fn() -> Result<(), ActionError> + Send + Sync + 'static {
        let wait = self.wait.clone();
        move || {
            wait.lock()
                .unwrap()
                .recv_timeout(PATIENCE)
                .map_err(|_| ActionError::message("the gate never opened"))
        }
    }

    fn open(&self) {
        self.open.send(()).unwrap();
    }
}

/// Spins (yielding) until `agent` is stopped (its mailbox closed by the
/// shutdown after the drain) or `budget` has passed. Not a synchronisation:
/// a window held open for a drain that would end too early to show itself
/// in (a correct drain cannot end meanwhile, so the outcome a test checks
/// does not depend on how long the window lasts).
fn hold_open_until_stopped<S, R>(agent: Option<&AgentRef<S, R>>, budget: Duration)
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    let until = Instant::now() + budget;
    while agent.is_some_and(|a| !a.is_stopped()) && Instant::now() < until {
        std::thread::yield_now();
    }
}

/// How long a window is held open for a drain that ends too early (see
/// `hold_open_until_stopped`).
const WINDOW: Duration = Duration::from_millis(500);

fn text(s: &Signal) -> String {
    String::from_utf8_lossy(s.data()).into_owned()
}

fn assert_accounted(name: &str, report: &ShutdownReport) {
    let m = report.metrics;
    assert_eq!(
        m.accepted,
        m.processed + m.dead_lettered,
        "{name}: accounting {m:?}"
    );
    assert_eq!(
        m.dead_lettered,
        report.dead_letters.len() as u64,
        "{name}: {m:?}"
    );
}

fn assert_idle(name: &str, report: &ShutdownReport) {
    let drain = report
        .drain
        .unwrap_or_else(|| panic!("{name}: no drain in the report"));
    assert!(
        drain.idle,
        "{name}: the drain did not get to idle: {drain:?}"
    );
    assert!(
        report.dead_letters.is_empty(),
        "{name}: dead letters {:?}",
        report.dead_letters
    );
}

/// Some work for an action, no waiting.
fn busy(rounds: u64) -> u64 {
    let mut h = 0u64;
    for k in 0..rounds {
        h = std::hint::black_box(h.wrapping_mul(31).wrapping_add(k));
    }
    h
}

// --------------------------------------------------- threaded: the volume

/// What the worker agent saw: how many, their sum, and whether they came
/// in send order.
#[derive(Clone, Debug, Default)]
struct Tally {
    count: u64,
    sum: u64,
    next: u64,
    out_of_order: u64,
}

/// 10,000 signals queued behind a blocked action when the drain begins;
/// the drain runs every one of them (each exactly once, in order) before
/// the shutdown, so nothing comes back as a dead letter.
#[test]
fn threaded_drain_runs_ten_thousand_queued_signals() {
    const N: u64 = 10_000;
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        let gate = Gate::new();
        let wait = gate.waiter();
        let worker = rt
            .spawn(
                &AgentSpec::<Tally>::new(Tally::default())
                    .mailbox_capacity(N as usize + 1)
                    .on("gate", move |_: &mut Tally, _: &mut Instruction| wait())
                    .on("work", |t: &mut Tally, ins: &mut Instruction| {
                        let n: u64 = ins
                            .text()?
                            .parse()
                            .map_err(|_| ActionError::invalid_input("n"))?;
                        std::hint::black_box(busy(300));
                        if n != t.next {
                            t.out_of_order += 1;
                        }
                        t.next = n + 1;
                        t.count += 1;
                        t.sum += n;
                        Ok(())
                    }),
            )
            .unwrap();
        worker.send(sig("gate", "")).unwrap();
        for n in 0..N {
            worker.send(sig("work", n.to_string())).unwrap();
        }
        let reports = drain_on_thread(rt, Duration::from_secs(30));
        wait_for_drain(&worker);
        // Every work signal is still queued behind the gate (the gate
        // itself may not have started yet).
        let queued = worker.mailbox_len();
        assert!(
            queued == N as usize || queued == N as usize + 1,
            "{name}: {queued} queued"
        );
        gate.open();
        let report = reports.recv_timeout(PATIENCE).unwrap();

        assert_idle(name, &report);
        assert_accounted(name, &report);
        assert_eq!(report.metrics.processed, N + 1, "{name}");
        let t = worker.state().unwrap();
        assert_eq!(
            (t.count, t.sum, t.out_of_order),
            (N, N * (N - 1) / 2, 0),
            "{name}"
        );
    }
}

// ----------------------------------------------- threaded: what work sends

/// A chain A -(send_to)-> B -(emit, bus)-> C, with A's queue held behind a
/// gate when the drain begins: what the actions send on during the drain
/// is taken, so all three agents process everything.
#[test]
fn sends_and_emits_of_actions_are_taken_while_draining() {
    const JOBS: usize = 500;
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        let c = rt.spawn(&common::log_spec()).unwrap();
        rt.bus().subscribe_agent("done", &c.addr()).unwrap();
        let b = rt
            .spawn(&AgentSpec::<usize>::new(0).on(
                "step",
                |n: &mut usize, ins: &mut Instruction| {
                    *n += 1;
                    ins.emit(Signal::new("done", "/b", ins.text()?.to_owned())?);
                    Ok(())
                },
            ))
            .unwrap();
        let gate = Gate::new();
        let wait = gate.waiter();
        let to_b = b.addr();
        let a = rt
            .spawn(
                &AgentSpec::<usize>::new(0)
                    .on("gate", move |_: &mut usize, _: &mut Instruction| wait())
                    .on("job", move |n: &mut usize, ins: &mut Instruction| {
                        *n += 1;
                        ins.send_to(&to_b, Signal::new("step", "/a", ins.text()?.to_owned())?);
                        Ok(())
                    }),
            )
            .unwrap();
        a.send(sig("gate", "")).unwrap();
        for i in 0..JOBS {
            a.send(sig("job", i.to_string())).unwrap();
        }
        let reports = drain_on_thread(rt, Duration::from_secs(30));
        wait_for_drain(&a);
        gate.open();
        let report = reports.recv_timeout(PATIENCE).unwrap();

        assert_idle(name, &report);
        assert_accounted(name, &report);
        assert_eq!(
            report.metrics.undelivered, 0,
            "{name}: {:?}",
            report.undelivered
        );
        assert_eq!(report.metrics.processed, 1 + 3 * JOBS as u64, "{name}");
        assert_eq!(*a.state().unwrap(), JOBS, "{name}");
        assert_eq!(*b.state().unwrap(), JOBS, "{name}");
        let expected: Vec<String> = (0..JOBS).map(|i| format!("done:{i}")).collect();
        assert_eq!(*c.state().unwrap(), expected, "{name}");
    }
}

// ------------------------------------------------ threaded: outside intake

/// While the drain runs, `send`, `send_timeout`, `call` and `publish` from
/// outside the runtime are refused with `ShuttingDown`, each handing its
/// signal back; meanwhile the queued work and what it emits still run.
#[test]
fn outside_intake_is_refused_while_draining() {
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        let gate = Gate::new();
        let wait = gate.waiter();
        let svc = rt
            .spawn(
                &AgentSpec::<Vec<String>, usize>::new(Vec::new())
                    .on("gate", move |_: &mut Vec<String>, ins: &mut Instruction| {
                        wait()?;
                        // Emitted from inside the drain: taken.
                        ins.emit(Signal::new("job.follow", "/svc", "follow")?);
                        Ok(0)
                    })
                    .on("job.**", |log: &mut Vec<String>, ins: &mut Instruction| {
                        log.push(ins.text()?.to_owned());
                        Ok(log.len())
                    }),
            )
            .unwrap();
        let bus = rt.bus();
        bus.subscribe_agent("job.**", &svc.addr()).unwrap();
        svc.send(sig("gate", "")).unwrap();
        svc.send(sig("job", "queued-1")).unwrap();
        svc.send(sig("job", "queued-2")).unwrap();
        let reports = drain_on_thread(rt, Duration::from_secs(30));
        wait_for_drain(&svc);

        let refused_kind = |e: &agentry::SendError| {
            assert_eq!(e.kind(), &SendErrorKind::ShuttingDown, "{name}: {e}");
            assert_eq!(e.agent(), svc.id(), "{name}");
        };
        let s = sig("job", "late-send");
        let id = s.id().clone();
        let e = svc.send(s).unwrap_err();
        refused_kind(&e);
        let back = e.into_signal();
        assert_eq!(
            (back.id(), text(&back).as_str()),
            (&id, "late-send"),
            "{name}"
        );

        let s = sig("job", "late-send-timeout");
        let id = s.id().clone();
        let e = svc.send_timeout(s, PATIENCE).unwrap_err();
        refused_kind(&e);
        assert_eq!(e.into_signal().id(), &id, "{name}");

        let s = sig("job", "late-call");
        let id = s.id().clone();
        match svc.call(s, PATIENCE) {
            Err(CallError::Send(e)) => {
                refused_kind(&e);
                assert_eq!(e.into_signal().id(), &id, "{name}");
            }
            other => panic!("{name}: a call during the drain gave {other:?}"),
        }

        let s = sig("job.published", "late-publish");
        let id = s.id().clone();
        match bus.publish(s) {
            Err(e @ PublishError::ShuttingDown(_)) => assert_eq!(e.into_signal().id(), &id),
            other => panic!("{name}: a publish during the drain gave {other:?}"),
        }

        gate.open();
        let report = reports.recv_timeout(PATIENCE).unwrap();
        assert_idle(name, &report);
        assert_accounted(name, &report);
        // The gate, the two queued jobs and the follow-up; none of the
        // refused ones.
        assert_eq!(report.metrics.accepted, 4, "{name}");
        assert_eq!(
            *svc.state().unwrap(),
            ["queued-1", "queued-2", "follow"],
            "{name}"
        );
    }
}

// ------------------------------------------------------ threaded: timeout

/// The drain times out while an action is still running: the report says
/// `idle: false`, the signals still queued come back as dead letters in
/// send order, and the accounting is exact. The running action spins until
/// its own mailbox is closed (the shutdown after the drain), so the
/// shutdown's join does not wait for the test.
#[test]
fn a_drain_that_times_out_hands_back_what_is_queued() {
    const TIMEOUT: Duration = Duration::from_millis(50);
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        type Me = Arc<Mutex<Option<AgentRef<Vec<String>>>>>;
        let me: Me = Arc::new(Mutex::new(None));
        let (started_tx, started) = mpsc::channel::<()>();
        let started_tx = Mutex::new(started_tx);
        let myself = me.clone();
        let slow = rt
            .spawn(
                &AgentSpec::<Vec<String>>::new(Vec::new())
                    .on("spin", move |log: &mut Vec<String>, _: &mut Instruction| {
                        let me = myself
                            .lock()
                            .unwrap()
                            .clone()
                            .ok_or_else(|| ActionError::message("no self reference"))?;
                        let _ = started_tx.lock().unwrap().send(());
                        let deadline = Instant::now() + PATIENCE;
                        while !me.is_stopped() {
                            if Instant::now() > deadline {
                                return Err(ActionError::message("never closed"));
                            }
                            std::thread::yield_now();
                        }
                        log.push("spun until closed".into());
                        Ok(())
                    })
                    .on("work", |log: &mut Vec<String>, ins: &mut Instruction| {
                        log.push(ins.text()?.to_owned());
                        Ok(())
                    }),
            )
            .unwrap();
        *me.lock().unwrap() = Some(slow.clone());
        slow.send(sig("spin", "")).unwrap();
        for i in 0..5 {
            slow.send(sig("work", format!("w{i}"))).unwrap();
        }
        started.recv_timeout(PATIENCE).unwrap();
        let report = rt.shutdown_graceful(TIMEOUT);
        // Break the agent -> action -> agent cycle.
        me.lock().unwrap().take();

        let drain = report.drain.unwrap();
        assert!(!drain.idle, "{name}: {drain:?}");
        assert!(drain.took >= TIMEOUT, "{name}: {drain:?}");
        assert_accounted(name, &report);
        let letters: Vec<String> = report
            .dead_letters
            .iter()
            .map(|d| {
                assert_eq!(
                    (d.agent, d.reason, d.was_call),
                    (slow.id(), DeadLetterReason::Shutdown, false),
                    "{name}"
                );
                text(&d.signal)
            })
            .collect();
        assert_eq!(letters, ["w0", "w1", "w2", "w3", "w4"], "{name}");
        assert_eq!(
            (report.metrics.accepted, report.metrics.processed),
            (6, 1),
            "{name}"
        );
        assert_eq!(*slow.state().unwrap(), ["spun until closed"], "{name}");
    }
}

// ------------------------------------------------------ threaded: timers

/// A timer that fires during the drain is taken. Its firing is held up in
/// routing (a route predicate that spins until the agent's mailbox closes,
/// or half a second at most: a wide window for a drain that would end
/// while a firing is under way). The tick then is either processed (the
/// drain waited for the firing) or comes back in `pending_timers` (it had
/// not fired yet), never lost: not undelivered, not missing.
#[test]
fn a_timer_firing_during_the_drain_is_processed_or_handed_back() {
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        type Me = Arc<Mutex<Option<AgentRef<Vec<String>>>>>;
        let me: Me = Arc::new(Mutex::new(None));
        let gate = Gate::new();
        let wait = gate.waiter();
        let (scheduler, in_predicate) = (me.clone(), me.clone());
        let agent = rt
            .spawn(
                &AgentSpec::<Vec<String>>::new(Vec::new())
                    .on("gate", move |_: &mut Vec<String>, _: &mut Instruction| {
                        wait()?;
                        let me = scheduler.lock().unwrap().clone();
                        let me = me.ok_or_else(|| ActionError::message("no self"))?;
                        me.send_after(Signal::new("tick", "/timer", "tick")?, Duration::ZERO)
                            .map_err(ActionError::failed)?;
                        Ok(())
                    })
                    .action("tick", |log: &mut Vec<String>, ins: &mut Instruction| {
                        log.push(ins.text()?.to_owned());
                        Ok(())
                    })
                    .route_spec(RouteSpec::new("tick", "tick").when(move |_: &Signal| {
                        let me = in_predicate.lock().unwrap().clone();
                        hold_open_until_stopped(me.as_ref(), WINDOW);
                        true
                    })),
            )
            .unwrap();
        *me.lock().unwrap() = Some(agent.clone());
        agent.send(sig("gate", "")).unwrap();
        let reports = drain_on_thread(rt, Duration::from_secs(30));
        wait_for_drain(&agent);
        gate.open();
        let report = reports.recv_timeout(PATIENCE).unwrap();
        me.lock().unwrap().take();

        assert_idle(name, &report);
        assert_accounted(name, &report);
        assert!(
            report.undelivered.is_empty(),
            "{name}: {:?}",
            report.undelivered
        );
        let log = agent.state().unwrap();
        let pending: Vec<String> = report
            .pending_timers
            .iter()
            .map(|t| text(&t.signal))
            .collect();
        match (log.as_slice(), pending.as_slice()) {
            ([processed], []) => assert_eq!(processed, "tick", "{name}"),
            ([], [pending]) => assert_eq!(pending, "tick", "{name}"),
            other => panic!("{name}: the tick was lost or doubled: {other:?}"),
        }
    }
}

// -------------------------------------------------- threaded: async work

/// Async work still pending when the drain begins holds the drain open:
/// the work is not cancelled, and the drain ends idle once it is done.
/// (That its result is processed is the next test's.)
#[test]
fn pending_async_work_holds_the_drain_open() {
    for (name, strategy) in strategies() {
        let tokio_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let handle = tokio_rt.handle().clone();
        let rt = threaded(strategy)
            .spawner(move |work| {
                handle.spawn(work);
            })
            .build()
            .unwrap();
        let (answer, answered) = tokio::sync::oneshot::channel::<String>();
        let answered = Mutex::new(Some(answered));
        let agent = rt
            .spawn(
                &AgentSpec::<Vec<String>>::new(Vec::new())
                    .on(
                        "fetch",
                        move |_: &mut Vec<String>, ins: &mut Instruction| {
                            let answered = answered
                                .lock()
                                .unwrap()
                                .take()
                                .ok_or_else(|| ActionError::rejected("one fetch only"))?;
                            ins.start(async move {
                                let text = answered.await.unwrap_or_else(|_| "dropped".into());
                                Signal::new("fetched", "/work", text).expect("valid signal")
                            })
                        },
                    )
                    .on("fetched", |log: &mut Vec<String>, ins: &mut Instruction| {
                        log.push(ins.text()?.to_owned());
                        Ok(())
                    }),
            )
            .unwrap();
        agent.call(sig("fetch", ""), PATIENCE).unwrap();
        assert_eq!(rt.pending_work(), 1, "{name}");
        let reports = drain_on_thread(rt, Duration::from_secs(30));
        wait_for_drain(&agent);
        // A drain that does not wait for the work reports meanwhile (and is
        // caught below); a correct one waits for the answer.
        let report = match reports.recv_timeout(WINDOW) {
            Ok(early) => early,
            Err(_) => {
                answer.send("answer".into()).unwrap();
                reports.recv_timeout(PATIENCE).unwrap()
            }
        };

        assert_idle(name, &report);
        assert_accounted(name, &report);
        assert!(
            report.cancelled_work.is_empty(),
            "{name}: the drain did not wait for the work: {:?}",
            report.cancelled_work
        );
        assert!(agent.state().unwrap().len() <= 1, "{name}");
        drop(tokio_rt);
    }
}

/// Async work still pending when the drain begins holds the drain open;
/// its result, a signal, is taken and processed during the drain. The
/// result's routing is held up (a route predicate that spins until the
/// agent's mailbox closes, or half a second at most) so that a drain that
/// ends between the work's end and the acceptance of its result shows.
#[test]
fn async_work_results_are_taken_while_draining() {
    for (name, strategy) in strategies() {
        let tokio_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let handle = tokio_rt.handle().clone();
        let rt = threaded(strategy)
            .spawner(move |work| {
                handle.spawn(work);
            })
            .build()
            .unwrap();
        type Me = Arc<Mutex<Option<AgentRef<Vec<String>>>>>;
        let me: Me = Arc::new(Mutex::new(None));
        let in_predicate = me.clone();
        let (answer, answered) = tokio::sync::oneshot::channel::<String>();
        let answered = Mutex::new(Some(answered));
        let agent = rt
            .spawn(
                &AgentSpec::<Vec<String>>::new(Vec::new())
                    .on(
                        "fetch",
                        move |_: &mut Vec<String>, ins: &mut Instruction| {
                            let answered = answered
                                .lock()
                                .unwrap()
                                .take()
                                .ok_or_else(|| ActionError::rejected("one fetch only"))?;
                            ins.start(async move {
                                let text = answered.await.unwrap_or_else(|_| "dropped".into());
                                Signal::new("fetched", "/work", text).expect("valid signal")
                            })
                        },
                    )
                    .action("fetched", |log: &mut Vec<String>, ins: &mut Instruction| {
                        log.push(ins.text()?.to_owned());
                        Ok(())
                    })
                    .route_spec(
                        RouteSpec::new("fetched", "fetched").when(move |_: &Signal| {
                            let me = in_predicate.lock().unwrap().clone();
                            hold_open_until_stopped(me.as_ref(), WINDOW);
                            true
                        }),
                    ),
            )
            .unwrap();
        *me.lock().unwrap() = Some(agent.clone());
        agent.call(sig("fetch", ""), PATIENCE).unwrap();
        assert_eq!(rt.pending_work(), 1, "{name}");
        let reports = drain_on_thread(rt, Duration::from_secs(30));
        wait_for_drain(&agent);
        answer.send("answer".into()).unwrap();
        let report = reports.recv_timeout(PATIENCE).unwrap();
        me.lock().unwrap().take();

        assert_idle(name, &report);
        assert_accounted(name, &report);
        assert!(report.cancelled_work.is_empty(), "{name}");
        assert!(
            report.undelivered.is_empty(),
            "{name}: {:?}",
            report.undelivered
        );
        assert_eq!(*agent.state().unwrap(), ["answer"], "{name}");
        drop(tokio_rt);
    }
}

// ---------------------------------------------------------- deterministic

/// A deterministic drain runs the queued signals and everything they set
/// off (bus emits, sends to other agents, and theirs); timers due later,
/// an interval among them, do not hold it up and come back in
/// `pending_timers`.
#[test]
fn deterministic_drain_runs_follow_ups_and_hands_back_later_timers() {
    #[derive(Clone, Debug, Default, PartialEq)]
    struct Seen {
        jobs: u32,
        ticks: u32,
        someday: u32,
    }
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let done = rt.spawn(&common::log_spec()).unwrap();
        rt.bus().subscribe_agent("job.done", &done.addr()).unwrap();
        let archive = rt.spawn(&common::log_spec()).unwrap();
        let to_archive = archive.addr();
        let a = rt
            .spawn(
                &AgentSpec::<Seen>::new(Seen::default())
                    .on("job", move |s: &mut Seen, ins: &mut Instruction| {
                        s.jobs += 1;
                        let data = ins.text()?.to_owned();
                        ins.send_to(&to_archive, Signal::new("archived", "/a", data.clone())?);
                        ins.emit(Signal::new("job.done", "/a", data)?);
                        Ok(())
                    })
                    .on("tick", |s: &mut Seen, _: &mut Instruction| {
                        s.ticks += 1;
                        Ok(())
                    })
                    .on("someday", |s: &mut Seen, _: &mut Instruction| {
                        s.someday += 1;
                        Ok(())
                    }),
            )
            .unwrap();
        let _every_second = a
            .send_interval(sig("tick", "tick"), Duration::from_secs(1))
            .unwrap();
        let _in_an_hour = a
            .send_after(sig("someday", "someday"), Duration::from_secs(3600))
            .unwrap();
        for i in 0..10 {
            a.send(sig("job", i.to_string())).unwrap();
        }
        let report = rt.shutdown_graceful(Duration::from_secs(1));

        assert_idle(name, &report);
        assert_accounted(name, &report);
        assert_eq!(report.metrics.processed, 30, "{name}");
        assert_eq!(report.metrics.undelivered, 0, "{name}");
        assert_eq!(
            *a.state().unwrap(),
            Seen {
                jobs: 10,
                ticks: 0,
                someday: 0
            },
            "{name}"
        );
        let expected: Vec<String> = (0..10).map(|i| format!("job.done:{i}")).collect();
        assert_eq!(*done.state().unwrap(), expected, "{name}");
        let expected: Vec<String> = (0..10).map(|i| format!("archived:{i}")).collect();
        assert_eq!(*archive.state().unwrap(), expected, "{name}");
        let mut pending: Vec<(String, Option<Duration>, TimerTarget)> = report
            .pending_timers
            .iter()
            .map(|t| (text(&t.signal), t.period, t.target))
            .collect();
        pending.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            pending,
            [
                ("someday".to_string(), None, TimerTarget::Agent(a.id())),
                (
                    "tick".to_string(),
                    Some(Duration::from_secs(1)),
                    TimerTarget::Agent(a.id())
                ),
            ],
            "{name}"
        );
    }
}

/// A timer an action schedules at the current virtual instant
/// (`send_self_after` of zero) is due during a deterministic drain, which
/// runs "until idle at the current virtual time": it is processed, not
/// handed back.
#[test]
fn deterministic_drain_fires_timers_actions_schedule_at_now() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let a = rt
            .spawn(
                &AgentSpec::<Vec<String>>::new(Vec::new())
                    .on("job", |log: &mut Vec<String>, ins: &mut Instruction| {
                        log.push("job".into());
                        ins.send_self_after(Signal::new("later", "/a", "")?, Duration::ZERO);
                        Ok(())
                    })
                    .on("later", |log: &mut Vec<String>, _: &mut Instruction| {
                        log.push("later".into());
                        Ok(())
                    }),
            )
            .unwrap();
        a.send(sig("job", "")).unwrap();
        let report = rt.shutdown_graceful(Duration::from_secs(1));
        assert_idle(name, &report);
        let pending: Vec<(&str, Duration)> = report
            .pending_timers
            .iter()
            .map(|t| (t.signal.ty(), t.due_in))
            .collect();
        assert_eq!(pending, [], "{name}: a timer due now was handed back");
        assert_eq!(*a.state().unwrap(), ["job", "later"], "{name}");
    }
}

/// A deterministic drain with nothing to do is idle at once, and a
/// runtime that was driven before has the same accounting.
#[test]
fn deterministic_drain_of_an_idle_runtime_is_idle() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let counter = rt.spawn(&common::counter_spec()).unwrap();
        for _ in 0..3 {
            counter.send(sig("add", "2")).unwrap();
        }
        rt.run_until_idle().unwrap();
        let report = rt.shutdown_graceful(Duration::ZERO);
        assert_idle(name, &report);
        assert_accounted(name, &report);
        assert_eq!(report.metrics.processed, 3, "{name}");
        assert_eq!(*counter.state().unwrap(), 6, "{name}");
    }
}
