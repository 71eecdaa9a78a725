//! Deterministic mode: no worker threads, the caller drives the runtime.

mod common;
use agentry::{CallError, RunError, Runtime, SendErrorKind};
use common::*;
use std::time::Duration;

#[test]
fn nothing_runs_until_the_runtime_is_driven() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let a = rt.spawn(&counter_spec()).unwrap();
        for i in 1..=10 {
            a.send(sig("add", i.to_string())).unwrap();
        }
        assert_eq!(*a.state().unwrap(), 0, "{name}: state() ran queued signals");
        assert_eq!(a.mailbox_len(), 10);
        assert_eq!(rt.run_until_idle().unwrap(), 10);
        assert_eq!(*a.state().unwrap(), 55, "{name}");
        assert_eq!(rt.run_until_idle().unwrap(), 0);
    }
}

#[test]
fn call_drives_the_runtime_until_idle_and_sees_earlier_sends() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let a = rt.spawn(&counter_spec()).unwrap();
        a.send(sig("add", "5")).unwrap();
        let reply = a.call(sig("add", "2"), Duration::ZERO).unwrap();
        assert_eq!(reply, 7, "{name}");
        assert_eq!(a.query(sig("get", "")).unwrap(), 7, "{name}");
    }
}

#[test]
fn a_full_mailbox_refuses_exactly_at_capacity_and_hands_the_signal_back() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).mailbox_capacity(3).build().unwrap();
        let a = rt.spawn(&counter_spec()).unwrap();
        for i in 0..3 {
            a.send(sig("add", i.to_string())).unwrap();
        }
        let refused = sig("add", "99");
        let err = a.send(refused.clone()).unwrap_err();
        assert_eq!(
            err.kind(),
            &SendErrorKind::MailboxFull { capacity: 3 },
            "{name}"
        );
        assert!(err.to_string().contains("mailbox is full"));
        assert_eq!(
            err.into_signal(),
            refused,
            "{name}: the refused signal changed"
        );
        assert_eq!(rt.metrics().refused_full, 1);
        rt.run_until_idle().unwrap();
        a.send(sig("add", "99")).unwrap();
        rt.run_until_idle().unwrap();
        assert_eq!(*a.state().unwrap(), 1 + 2 + 99, "{name}");
    }
}

#[test]
fn emitted_signals_chain_through_the_bus_in_one_drive() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let relay = rt
            .spawn(&agentry::AgentSpec::<u32>::new(0).on(
                "ping",
                |n: &mut u32, ins: &mut agentry::Instruction| {
                    *n += 1;
                    ins.emit(agentry::Signal::new("pong", "/relay", ins.data().clone()).unwrap());
                    Ok(())
                },
            ))
            .unwrap();
        let sink = rt.spawn(&log_spec()).unwrap();
        rt.bus().subscribe_agent("pong", &sink.addr()).unwrap();
        for i in 0..5 {
            relay.send(sig("ping", i.to_string())).unwrap();
        }
        assert_eq!(rt.run_until_idle().unwrap(), 10, "{name}");
        let expected: Vec<String> = (0..5).map(|i| format!("pong:{i}")).collect();
        assert_eq!(*sink.state().unwrap(), expected, "{name}");
    }
}

#[test]
fn run_until_idle_is_refused_on_a_threaded_runtime() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    assert_eq!(rt.run_until_idle(), Err(RunError::NotDeterministic));
}

#[test]
fn a_call_into_the_running_agent_is_refused_not_deadlocked() {
    use std::sync::{Arc, OnceLock};
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let me: Arc<OnceLock<agentry::AgentRef<u32, u32>>> = Arc::default();
        let me_in = me.clone();
        let spec = agentry::AgentSpec::<u32, u32>::new(0)
            .on(
                "self.call",
                move |_: &mut u32, _: &mut agentry::Instruction| {
                    let err = me_in
                        .get()
                        .unwrap()
                        .call(sig("other", ""), Duration::from_secs(1))
                        .unwrap_err();
                    assert!(matches!(err, CallError::Reentrant { .. }), "{err}");
                    let err = me_in.get().unwrap().state().unwrap_err();
                    assert!(
                        matches!(err, agentry::QueryError::Reentrant { .. }),
                        "{err}"
                    );
                    Ok(1)
                },
            )
            .on("other", |_: &mut u32, _: &mut agentry::Instruction| Ok(2));
        let a = rt.spawn(&spec).unwrap();
        me.set(a.clone()).unwrap();
        assert_eq!(
            a.call(sig("self.call", ""), Duration::from_secs(1))
                .unwrap(),
            1,
            "{name}"
        );
    }
}

#[test]
fn shutdown_of_a_deterministic_runtime_hands_back_everything_queued() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let a = rt.spawn(&counter_spec()).unwrap();
        let b = rt.spawn(&counter_spec()).unwrap();
        a.send(sig("add", "1")).unwrap();
        rt.run_until_idle().unwrap();
        a.send(sig("add", "2")).unwrap();
        b.send(sig("add", "3")).unwrap();
        let report = rt.shutdown();
        assert_eq!(report.metrics.accepted, 3, "{name}");
        assert_eq!(report.metrics.processed, 1, "{name}");
        let data: Vec<_> = report
            .dead_letters
            .iter()
            .map(|d| d.signal.data().to_vec())
            .collect();
        assert_eq!(data, vec![b"2".to_vec(), b"3".to_vec()], "{name}");
        assert_eq!(
            a.send(sig("add", "4")).unwrap_err().kind(),
            &SendErrorKind::ShuttingDown
        );
        assert_eq!(*a.state().unwrap(), 1, "{name}: state after shutdown");
    }
}
