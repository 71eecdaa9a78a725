//! Scheduled signals: `send_after`/`send_at`/`send_interval`, the bus's
//! `publish_*`, `Instruction::send_self_after`, the virtual clock of
//! deterministic mode, accounting (fired = accepted; unfired = handed back
//! at shutdown; refused = undelivered), and a model-based comparison of the
//! firing order: model vs deterministic vs threaded.

mod common;

use agentry::{
    ActionError, AgentRef, AgentSpec, DeliveryFailure, Instruction, Runtime, ScheduleError,
    SendErrorKind, Signal, TimerTarget, UndeliveredFrom,
};
use common::{sig, strategies};
use proptest::prelude::*;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SEC: Duration = Duration::from_secs(1);

/// An agent that logs the text of every signal it gets.
fn logger() -> AgentSpec<Vec<String>, ()> {
    AgentSpec::new(Vec::new()).on("**", |log: &mut Vec<String>, ins: &mut Instruction| {
        log.push(format!("{}:{}", ins.ty(), ins.text().unwrap_or("")));
        Ok(())
    })
}

fn log_of(agent: &AgentRef<Vec<String>, ()>) -> Vec<String> {
    agent.state().expect("state").to_vec()
}

fn deterministic() -> Runtime {
    Runtime::builder().deterministic().build().expect("runtime")
}

#[test]
fn a_delayed_signal_fires_exactly_when_the_virtual_clock_reaches_it() {
    for (name, strategy) in strategies() {
        let rt = Runtime::builder()
            .deterministic()
            .strategy(strategy)
            .build()
            .unwrap();
        let a = rt.spawn(&logger()).unwrap();
        let start = rt.now();
        let timer = a.send_after(sig("ping", "x"), 10 * SEC).unwrap();
        assert!(timer.is_pending());
        assert_eq!(
            rt.advance(Duration::from_millis(9_999)).unwrap(),
            0,
            "{name}"
        );
        assert!(log_of(&a).is_empty(), "{name}: fired early");
        assert_eq!(rt.advance(Duration::from_millis(1)).unwrap(), 1, "{name}");
        assert_eq!(log_of(&a), ["ping:x"], "{name}");
        assert_eq!(rt.now() - start, 10 * SEC, "{name}");
        assert!(!timer.is_pending());
        assert!(!timer.cancel(), "{name}: a fired timer cancels nothing");
        let m = rt.metrics();
        assert_eq!((m.accepted, m.processed), (1, 1), "{name}");
    }
}

#[test]
fn an_interval_fires_once_per_period_until_cancelled() {
    let rt = deterministic();
    let a = rt.spawn(&logger()).unwrap();
    let tick = a.send_interval(sig("tick", ""), SEC).unwrap();
    rt.advance(60 * SEC).unwrap();
    assert_eq!(log_of(&a).len(), 60);
    // Fixed rate: half a period on, nothing; the rest of it, one more.
    rt.advance(SEC / 2).unwrap();
    assert_eq!(log_of(&a).len(), 60);
    rt.advance(SEC / 2).unwrap();
    assert_eq!(log_of(&a).len(), 61);
    assert!(tick.cancel());
    rt.advance(3600 * SEC).unwrap();
    assert_eq!(log_of(&a).len(), 61);
    assert_eq!(rt.pending_timers(), 0);
}

#[test]
fn each_interval_firing_is_a_new_event_with_its_own_id() {
    let rt = deterministic();
    let ids = rt
        .spawn(&AgentSpec::<Vec<String>>::new(Vec::new()).on(
            "tick",
            |v: &mut Vec<String>, ins: &mut Instruction| {
                v.push(ins.signal_id().to_string());
                Ok(())
            },
        ))
        .unwrap();
    let template = sig("tick", "");
    let _t = ids.send_interval(template.clone(), SEC).unwrap();
    rt.advance(3 * SEC).unwrap();
    let seen = ids.state().unwrap();
    assert_eq!(seen.len(), 3);
    let mut unique = seen.to_vec();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "ids repeat: {seen:?}");
    assert!(!seen.contains(&template.id().to_string()));
}

#[test]
fn same_instant_timers_fire_in_scheduling_order_and_send_at_reads_the_virtual_clock() {
    let rt = deterministic();
    let a = rt.spawn(&logger()).unwrap();
    let at = rt.now() + 5 * SEC;
    for i in 0..5 {
        a.send_at(sig("t", format!("{i}")), at).unwrap();
    }
    a.send_at(sig("early", ""), rt.now() + SEC).unwrap();
    // Due now: fires at the next run, without the clock moving.
    a.send_at(sig("past", ""), rt.now()).unwrap();
    rt.run_until_idle().unwrap();
    assert_eq!(log_of(&a), ["past:"]);
    rt.advance(5 * SEC).unwrap();
    assert_eq!(
        log_of(&a),
        ["past:", "early:", "t:0", "t:1", "t:2", "t:3", "t:4"]
    );
}

#[test]
fn an_action_reschedules_itself_and_a_failed_action_schedules_nothing() {
    // A retry loop: each attempt fails until the third, rescheduling itself
    // with a doubling backoff; a failing action's own schedule is discarded.
    #[derive(Clone, Default)]
    struct Retry {
        attempts: Vec<u64>,
    }
    let rt = deterministic();
    let start = rt.now();
    let clock = rt.now();
    let spec = AgentSpec::<Retry>::new(Retry::default())
        .on("attempt", move |r: &mut Retry, ins: &mut Instruction| {
            let n = r.attempts.len() as u32;
            r.attempts.push(n as u64);
            if n < 2 {
                let retry = Signal::new("attempt", "/retry", "").map_err(ActionError::failed)?;
                ins.send_self_after(retry, SEC * 2u32.pow(n));
            }
            Ok(())
        })
        .on("bad", |_: &mut Retry, ins: &mut Instruction| {
            let retry = Signal::new("attempt", "/retry", "").map_err(ActionError::failed)?;
            ins.send_self_after(retry, SEC);
            Err(ActionError::rejected("no"))
        });
    let _ = clock;
    let agent = rt.spawn(&spec).unwrap();
    agent.send(sig("attempt", "")).unwrap();
    agent.send(sig("bad", "")).unwrap();
    rt.run_until_idle().unwrap();
    assert_eq!(rt.pending_timers(), 1, "only the good action's retry");
    rt.advance(SEC).unwrap();
    assert_eq!(agent.state().unwrap().attempts.len(), 2);
    rt.advance(10 * SEC).unwrap();
    assert_eq!(agent.state().unwrap().attempts, [0, 1, 2]);
    assert_eq!(rt.pending_timers(), 0);
    assert_eq!(rt.now() - start, 11 * SEC);
}

#[test]
fn bus_timers_publish_to_every_subscriber() {
    let rt = deterministic();
    let a = rt.spawn(&logger()).unwrap();
    let b = rt.spawn(&logger()).unwrap();
    let bus = rt.bus();
    bus.subscribe_agent("report.*", &a.addr()).unwrap();
    bus.subscribe_agent("report.**", &b.addr()).unwrap();
    bus.publish_after(sig("report.once", ""), SEC).unwrap();
    let every = bus
        .publish_interval(sig("report.tick", ""), 2 * SEC)
        .unwrap();
    rt.advance(4 * SEC).unwrap();
    let want = ["report.once:", "report.tick:", "report.tick:"];
    assert_eq!(log_of(&a), want);
    assert_eq!(log_of(&b), want);
    assert!(every.cancel());
}

#[test]
fn shutdown_hands_back_unfired_timers_which_were_never_accepted() {
    for deterministic_mode in [true, false] {
        let mut builder = Runtime::builder().workers(1);
        if deterministic_mode {
            builder = builder.deterministic();
        }
        let rt = builder.build().unwrap();
        let a = rt.spawn(&logger()).unwrap();
        let t1 = a.send_after(sig("later", "1"), 3600 * SEC).unwrap();
        let t2 = rt
            .bus()
            .publish_interval(sig("bus.tick", "2"), 60 * SEC)
            .unwrap();
        let report = rt.shutdown();
        assert_eq!(report.metrics.accepted, 0);
        let pending: Vec<_> = report
            .pending_timers
            .iter()
            .map(|p| (p.id, p.target, p.signal.ty().to_owned(), p.period))
            .collect();
        assert_eq!(
            pending,
            [
                (
                    t2.id(),
                    TimerTarget::Bus,
                    "bus.tick".to_owned(),
                    Some(60 * SEC)
                ),
                (
                    t1.id(),
                    TimerTarget::Agent(a.id()),
                    "later".to_owned(),
                    None
                ),
            ],
            "in firing order"
        );
        assert!(report.pending_timers[1].due_in > 3599 * SEC);
        assert!(!t1.is_pending() && !t1.cancel());
    }
}

#[test]
fn scheduling_errors_are_typed_and_hand_the_signal_back() {
    let rt = deterministic();
    let a = rt.spawn(&logger()).unwrap();
    match a.send_interval(sig("zero", ""), Duration::ZERO) {
        Err(e @ ScheduleError::ZeroPeriod(_)) => {
            assert!(e.to_string().contains("period above zero"), "{e}");
            assert_eq!(e.into_signal().ty(), "zero");
        }
        other => panic!("{other:?}"),
    }
    a.stop();
    match a.send_after(sig("late", ""), SEC) {
        Err(ScheduleError::Stopped { agent, signal }) => {
            assert_eq!((agent, signal.ty()), (a.id(), "late"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refused_firing_is_recorded_undelivered_and_an_interval_to_a_stopped_agent_ends() {
    let rt = deterministic();
    let small = rt.spawn(&logger().mailbox_capacity(1)).unwrap();
    // Two at one instant into a 1-slot mailbox: the second is refused.
    let at = rt.now() + SEC;
    small.send_at(sig("a", ""), at).unwrap();
    let refused = small.send_at(sig("b", ""), at).unwrap();
    rt.advance(SEC).unwrap();
    assert_eq!(log_of(&small), ["a:"]);
    let undelivered = rt.take_undelivered();
    assert_eq!(undelivered.len(), 1);
    assert_eq!(undelivered[0].from, UndeliveredFrom::Timer(refused.id()));
    match &undelivered[0].failure {
        DeliveryFailure::Refused(e) => {
            assert!(matches!(e.kind(), SendErrorKind::MailboxFull { .. }));
            assert_eq!(e.signal().ty(), "b");
        }
        other => panic!("{other:?}"),
    }
    // An interval whose agent stops: one refused firing, then it ends.
    let tick = small.send_interval(sig("tick", ""), SEC).unwrap();
    small.stop();
    rt.advance(10 * SEC).unwrap();
    assert!(!tick.is_pending());
    let undelivered = rt.take_undelivered();
    assert_eq!(undelivered.len(), 1, "{undelivered:?}");
    assert_eq!(rt.pending_timers(), 0);
    assert_eq!(rt.metrics().undelivered, 2);
}

#[test]
fn threaded_timers_fire_on_the_real_clock() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = mpsc::channel::<(String, Instant)>();
    let tx = std::sync::Mutex::new(tx);
    let spec = AgentSpec::<()>::new(()).on("**", move |_: &mut (), ins: &mut Instruction| {
        let _ = tx
            .lock()
            .unwrap()
            .send((ins.ty().to_owned(), Instant::now()));
        Ok(())
    });
    let a = rt.spawn(&spec).unwrap();
    let start = Instant::now();
    a.send_after(sig("late", ""), Duration::from_millis(30))
        .unwrap();
    a.send_after(sig("soon", ""), Duration::from_millis(10))
        .unwrap();
    let tick = a
        .send_interval(sig("tick", ""), Duration::from_millis(5))
        .unwrap();
    let mut seen = Vec::new();
    while !seen.iter().any(|(ty, _): &(String, Instant)| ty == "late") {
        seen.push(
            rx.recv_timeout(Duration::from_secs(10))
                .expect("timer fired"),
        );
    }
    tick.cancel();
    let at = |ty: &str| {
        seen.iter()
            .find(|(t, _)| t == ty)
            .map(|(_, at)| at.duration_since(start))
            .unwrap()
    };
    assert!(at("soon") >= Duration::from_millis(10));
    assert!(at("late") >= Duration::from_millis(30));
    assert!(at("soon") < at("late"));
    let ticks = seen.iter().filter(|(t, _)| t == "tick").count();
    assert!(ticks >= 5, "5 ms ticks before 30 ms: {ticks}");
    let report = rt.shutdown();
    assert_eq!(
        report.metrics.accepted,
        report.metrics.processed + report.metrics.dead_lettered
    );
}

// ---- model-based: the firing order -----------------------------------

/// One scheduling operation, at virtual offsets in ms from a base instant.
#[derive(Clone, Debug)]
enum Op {
    At {
        agent: usize,
        ms: u64,
    },
    Every {
        agent: usize,
        first_ms: u64,
        period_ms: u64,
    },
    Cancel {
        nth: usize,
    },
    Bus {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..40u64).prop_map(|(agent, ms)| Op::At { agent, ms }),
        2 => (0..3usize, 1..20u64, 3..15u64)
            .prop_map(|(agent, first_ms, period_ms)| Op::Every { agent, first_ms, period_ms }),
        1 => (0..20usize).prop_map(|nth| Op::Cancel { nth }),
        1 => (0..40u64).prop_map(|ms| Op::Bus { ms }),
    ]
}

/// Per agent, the labels of the signals it gets up to `until_ms`, in the
/// order the schedule fires them: by due time, ties by scheduling order.
fn model(ops: &[Op], until_ms: u64) -> [Vec<String>; 3] {
    let mut fired: Vec<(u64, usize, usize, String)> = Vec::new(); // (due, timer, agent, label)
    let mut timers = Vec::new(); // index of each scheduling op that made a timer
    let mut cancelled = std::collections::HashSet::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Cancel { nth } => {
                if let Some(&t) = timers.get(*nth) {
                    cancelled.insert(t);
                }
            }
            _ => timers.push(i),
        }
    }
    for (t, &i) in timers.iter().enumerate() {
        let label = format!("t{t}");
        match ops[i] {
            Op::At { agent, ms } if !cancelled.contains(&i) => fired.push((ms, t, agent, label)),
            Op::Bus { ms } if !cancelled.contains(&i) => {
                for agent in 0..3 {
                    fired.push((ms, t, agent, label.clone()));
                }
            }
            Op::Every {
                agent,
                first_ms,
                period_ms,
            } if !cancelled.contains(&i) => {
                let mut at = first_ms;
                while at <= until_ms {
                    fired.push((at, t, agent, label.clone()));
                    at += period_ms;
                }
            }
            _ => {}
        }
    }
    fired.retain(|f| f.0 <= until_ms);
    fired.sort_by_key(|f| (f.0, f.1));
    let mut logs: [Vec<String>; 3] = Default::default();
    for (_, _, agent, label) in fired {
        logs[agent].push(label);
    }
    logs
}

/// Runs `ops` on `rt` against `base`; returns the handles.
fn schedule(rt: &Runtime, agents: &[AgentRef<Vec<String>, ()>], ops: &[Op], base: Instant) {
    let ms = Duration::from_millis;
    let mut handles = Vec::new();
    for op in ops {
        match *op {
            Op::At { agent, ms: at } => {
                let label = format!("t{}", handles.len());
                handles.push(
                    agents[agent]
                        .send_at(sig("timer", label), base + ms(at))
                        .unwrap(),
                );
            }
            Op::Bus { ms: at } => {
                let label = format!("t{}", handles.len());
                handles.push(
                    rt.bus()
                        .publish_at(sig("timer", label), base + ms(at))
                        .unwrap(),
                );
            }
            Op::Every {
                agent,
                first_ms,
                period_ms,
            } => {
                let label = format!("t{}", handles.len());
                let h = agents[agent]
                    .send_interval_at(sig("timer", label), base + ms(first_ms), ms(period_ms))
                    .unwrap();
                handles.push(h);
            }
            Op::Cancel { nth } => {
                if let Some(h) = handles.get(nth) {
                    h.cancel();
                }
            }
        }
    }
}

fn labels(log: &[String]) -> Vec<String> {
    log.iter()
        .map(|l| l.trim_start_matches("timer:").to_owned())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn deterministic_firing_matches_the_model_and_the_threaded_runtime(
        ops in prop::collection::vec(op(), 1..24),
        until_ms in 0..45u64,
    ) {
        let want = model(&ops, until_ms);

        // Deterministic: the virtual clock, plain and optimized.
        for (name, strategy) in strategies() {
            let rt = Runtime::builder().deterministic().strategy(strategy).build().unwrap();
            let agents: Vec<_> = (0..3).map(|_| rt.spawn(&logger()).unwrap()).collect();
            for a in &agents {
                rt.bus().subscribe_agent("timer", &a.addr()).unwrap();
            }
            schedule(&rt, &agents, &ops, rt.now());
            rt.advance(Duration::from_millis(until_ms)).unwrap();
            for (i, a) in agents.iter().enumerate() {
                prop_assert_eq!(labels(&log_of(a)), want[i].clone(), "deterministic {}, agent {}", name, i);
            }
        }

        // Threaded: the same schedule on the real clock, from a base far
        // enough ahead that every timer is scheduled before the first fires
        // (scheduling is order-preserving either way: the base only keeps
        // the ops' relative times). Each agent's log must start with the
        // model's, in order; waiting for that length needs no clock.
        let rt = Runtime::builder().workers(2).build().unwrap();
        let agents: Vec<_> = (0..3).map(|_| rt.spawn(&logger()).unwrap()).collect();
        for a in &agents {
            rt.bus().subscribe_agent("timer", &a.addr()).unwrap();
        }
        let base = Instant::now() + Duration::from_millis(100);
        schedule(&rt, &agents, &ops, base);
        for (i, a) in agents.iter().enumerate() {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut log = labels(&log_of(a));
            while log.len() < want[i].len() && Instant::now() < deadline {
                std::thread::yield_now();
                log = labels(&log_of(a));
            }
            prop_assert_eq!(&log[..want[i].len().min(log.len())], &want[i][..], "threaded, agent {}", i);
        }
        rt.shutdown();
    }
}

#[test]
fn advancing_to_the_end_of_time_ends() {
    // An interval's next firing would pass the clock's end: it fires a last
    // time instead of looping at the end forever.
    let rt = deterministic();
    let a = rt.spawn(&logger()).unwrap();
    let period = Duration::from_secs(1000 * 24 * 3600);
    let _t = a.send_interval(sig("tick", ""), period).unwrap();
    rt.advance(Duration::MAX).unwrap();
    let fired = log_of(&a).len() as u128;
    assert_eq!(fired, u64::MAX as u128 / period.as_nanos());
    assert_eq!(rt.pending_timers(), 0);
}

#[test]
fn a_shutdown_from_a_callback_on_the_timer_thread_returns_its_report() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let a = rt.spawn(&logger()).unwrap();
    let later = a
        .send_after(sig("later", ""), Duration::from_secs(3600))
        .unwrap();
    let holder = std::sync::Arc::new(std::sync::Mutex::new(None::<Runtime>));
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let in_callback = holder.clone();
    let _sub = rt
        .bus()
        .subscribe("stop.now", move |_: &Signal| {
            let rt = in_callback.lock().unwrap().take();
            if let Some(rt) = rt {
                let _ = tx.lock().unwrap().send(rt.shutdown());
            }
        })
        .unwrap();
    rt.bus()
        .publish_after(sig("stop.now", ""), Duration::from_millis(1))
        .unwrap();
    *holder.lock().unwrap() = Some(rt);
    let report = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the shutdown returned");
    assert_eq!(report.pending_timers.len(), 1);
    assert_eq!(report.pending_timers[0].id, later.id());
    assert_eq!(
        report.metrics.accepted,
        report.metrics.processed + report.metrics.dead_lettered
    );
}
