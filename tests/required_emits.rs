//! Required emits: `Instruction::emit_or_fail`, `Instruction::send_to_or_fail`
//! and `AgentSpec::undeliverable(Undeliverable::FailAction)`, against plain
//! `emit`/`send_to`, whose undeliverable signals are counted, kept and given
//! to the `on_undelivered` hook.
//!
//! The scenario of the bug report: a rate limiter emits an audit denial per
//! request to an audit agent with a small mailbox. With plain emits a flood
//! loses denials (each loss recorded); with required emits every committed
//! limiter action's denial reaches the audit agent, and the others are undone.

mod common;

use agentry::imp::Strategy;
use agentry::{
    ActionError, ActionErrorKind, AgentAddr, AgentRef, AgentSpec, CallError, DeliveryFailure,
    Instruction, RuntimeBuilder, SendErrorKind, Signal, Undeliverable, Undelivered,
    UndeliveredFrom,
};
use common::{all_strategies, deterministic, sig, strategies, threaded};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const AUDIT_CAPACITY: usize = 4;

// ------------------------------------------------------------------ helpers

/// The `DeliveryFailure` an `Undeliverable` action error carries as its
/// `source()`; fails the test if the error is of another kind or has none.
fn delivery_failure(e: &ActionError) -> &DeliveryFailure {
    assert_eq!(e.kind(), ActionErrorKind::Undeliverable, "{e}");
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<DeliveryFailure>())
        .unwrap_or_else(|| panic!("no DeliveryFailure source in {e:?}"))
}

/// The action error of a failed call (anything else fails the test).
fn action_error(err: CallError) -> ActionError {
    match err {
        CallError::Action(e) => e,
        other => panic!("expected CallError::Action, got {other:?}"),
    }
}

/// Asserts `failure` is a refusal by `agent` of kind `kind`, and returns the
/// refused signal's type and data.
fn refused_by(
    failure: &DeliveryFailure,
    agent: agentry::AgentId,
    kind: SendErrorKind,
) -> (String, String) {
    match failure {
        DeliveryFailure::Refused(e) => {
            assert_eq!(e.agent(), agent, "refused by the wrong agent: {e}");
            assert_eq!(e.kind(), &kind, "{e}");
            (e.signal().ty().to_owned(), text(e.signal()))
        }
        other => panic!("expected a refusal by {agent:?}, got {other:?}"),
    }
}

fn text(s: &Signal) -> String {
    String::from_utf8_lossy(s.data()).into_owned()
}

fn full(capacity: usize) -> SendErrorKind {
    SendErrorKind::MailboxFull { capacity }
}

/// The signal inside an undelivered record (agent refusals and no
/// subscribers; other failures fail the test).
fn undelivered_signal(u: &Undelivered) -> &Signal {
    match &u.failure {
        DeliveryFailure::Refused(e) => e.signal(),
        DeliveryFailure::NoSubscribers(s) => s,
        other => panic!("unexpected undelivered failure {other:?}"),
    }
}

/// A builder with an `on_undelivered` hook and an `on_failure` hook that
/// record into the returned lists (failures as `(signal data, error)`).
#[allow(clippy::type_complexity)]
fn with_hooks(
    builder: RuntimeBuilder,
) -> (
    RuntimeBuilder,
    Arc<Mutex<Vec<Undelivered>>>,
    Arc<Mutex<Vec<(String, ActionError)>>>,
) {
    let undelivered = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let (u, f) = (undelivered.clone(), failures.clone());
    let builder = builder
        .on_undelivered(move |x: &Undelivered| u.lock().unwrap().push(x.clone()))
        .on_failure(move |x: &agentry::Failure<'_>| {
            f.lock().unwrap().push((text(x.signal), x.error.clone()))
        });
    (builder, undelivered, failures)
}

/// An audit agent: logs the data of every `audit.**` signal it takes.
fn audit_spec(capacity: usize) -> AgentSpec<Vec<String>> {
    AgentSpec::<Vec<String>>::new(Vec::new())
        .mailbox_capacity(capacity)
        .on(
            "audit.**",
            |log: &mut Vec<String>, ins: &mut Instruction| {
                log.push(ins.text()?.to_owned());
                Ok(())
            },
        )
}

/// A store agent: logs the data of every `note` it takes.
fn store_spec(capacity: usize) -> AgentSpec<Vec<String>> {
    AgentSpec::<Vec<String>>::new(Vec::new())
        .mailbox_capacity(capacity)
        .on("note", |log: &mut Vec<String>, ins: &mut Instruction| {
            log.push(ins.text()?.to_owned());
            Ok(())
        })
}

/// The rate limiter: denies every request (`req`, data = request number),
/// counts its denials and emits `audit.denied` with the request number,
/// required or not. Replies with the denial count.
fn limiter_spec(required: bool) -> AgentSpec<u32, u32> {
    AgentSpec::<u32, u32>::new(0).on("req", move |denied: &mut u32, ins: &mut Instruction| {
        *denied += 1;
        let denial = Signal::new("audit.denied", "/limiter", ins.text()?.to_owned())?;
        if required {
            ins.emit_or_fail(denial);
        } else {
            ins.emit(denial);
        }
        Ok(*denied)
    })
}

fn numbers(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

fn sorted(v: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = v.into_iter().collect();
    v.sort_by_key(|s| s.parse::<u64>().unwrap_or(u64::MAX));
    v
}

// ------------------------------------------------- the rate limiter flood

const FLOOD: usize = 20;

/// Plain `emit`: a flood of requests, all sent before the runtime runs.
/// With batching, the limiter's one turn denies all of them before the
/// audit agent runs, so only its capacity's worth of denials gets in;
/// without, the deterministic run queue alternates the two agents and none
/// is lost. Either way every loss is counted, handed to the hook and kept,
/// and hook + audit account for every denial emitted.
#[test]
fn plain_emit_flood_records_every_lost_denial() {
    for (name, strategy) in strategies() {
        let (builder, hook, _) = with_hooks(deterministic(strategy).batch_size(64));
        let rt = builder.build().unwrap();
        let audit = rt.spawn(&audit_spec(AUDIT_CAPACITY)).unwrap();
        rt.bus().subscribe_agent("audit.**", &audit.addr()).unwrap();
        let limiter = rt.spawn(&limiter_spec(false)).unwrap();
        for i in 0..FLOOD {
            limiter.send(sig("req", i.to_string())).unwrap();
        }
        rt.run_until_idle().unwrap();

        let expected_lost = if strategy.batching {
            FLOOD - AUDIT_CAPACITY
        } else {
            0
        };
        let hook = hook.lock().unwrap().clone();
        let metrics = rt.metrics();
        let audited = audit.state().unwrap().as_ref().clone();
        // Plain emits never undo the action: every request was counted.
        assert_eq!(*limiter.state().unwrap(), FLOOD as u32, "{name}");
        assert_eq!(hook.len(), expected_lost, "{name}: hook {hook:?}");
        assert_eq!(metrics.undelivered, hook.len() as u64, "{name}");
        assert_eq!(
            hook.len() + audited.len(),
            FLOOD,
            "{name}: something lost silently"
        );
        // Each lost denial is the limiter's, refused by the full audit
        // mailbox, with the denial inside; lost and audited are exactly the
        // emitted ones, none twice.
        let mut lost = Vec::new();
        for u in &hook {
            assert_eq!(u.from, UndeliveredFrom::Agent(limiter.id()), "{name}");
            let (ty, data) = refused_by(&u.failure, audit.id(), full(AUDIT_CAPACITY));
            assert_eq!(ty, "audit.denied", "{name}");
            lost.push(data);
        }
        assert_eq!(
            sorted(lost.iter().cloned().chain(audited.iter().cloned())),
            numbers(FLOOD),
            "{name}"
        );
        // The kept list is what the hook saw, in the same order.
        let kept = rt.take_undelivered();
        assert_eq!(kept, hook, "{name}");
        assert_eq!(audited, sorted(audited.clone()), "{name}: audit order");
        let report = rt.shutdown();
        assert_eq!(
            report.metrics.accepted,
            report.metrics.processed + report.metrics.dead_lettered
        );
    }
}

/// The same flood with `emit_or_fail`: an action commits only if its
/// denial got a slot at the audit agent, so the audit agent has exactly the
/// committed actions' denials, the limiter's count is exactly the committed
/// ones (the others were rolled back), and the others failed with
/// `Undeliverable`, the refused denial inside. Nothing is recorded as
/// undelivered.
#[test]
fn required_emit_flood_commits_only_delivered_denials() {
    for (name, strategy) in strategies() {
        let (builder, hook, failures) = with_hooks(deterministic(strategy).batch_size(64));
        let rt = builder.build().unwrap();
        let audit = rt.spawn(&audit_spec(AUDIT_CAPACITY)).unwrap();
        rt.bus().subscribe_agent("audit.**", &audit.addr()).unwrap();
        let limiter = rt.spawn(&limiter_spec(true)).unwrap();
        for i in 0..FLOOD {
            limiter.send(sig("req", i.to_string())).unwrap();
        }
        rt.run_until_idle().unwrap();

        let committed = *limiter.state().unwrap() as usize;
        let audited = audit.state().unwrap().as_ref().clone();
        let failures = failures.lock().unwrap().clone();
        let expected_committed = if strategy.batching {
            AUDIT_CAPACITY
        } else {
            FLOOD
        };
        assert_eq!(committed, expected_committed, "{name}");
        assert_eq!(
            audited.len(),
            committed,
            "{name}: a committed denial is missing"
        );
        assert_eq!(audited, numbers(committed), "{name}");
        assert_eq!(failures.len(), FLOOD - committed, "{name}");
        for (data, e) in &failures {
            let (ty, denial) = refused_by(delivery_failure(e), audit.id(), full(AUDIT_CAPACITY));
            assert_eq!(
                (ty.as_str(), denial.as_str()),
                ("audit.denied", data.as_str()),
                "{name}"
            );
        }
        assert_eq!(
            sorted(
                audited
                    .iter()
                    .cloned()
                    .chain(failures.iter().map(|f| f.0.clone()))
            ),
            numbers(FLOOD),
            "{name}"
        );
        let metrics = rt.metrics();
        assert_eq!(metrics.failed_actions, failures.len() as u64, "{name}");
        assert_eq!(metrics.undelivered, 0, "{name}");
        assert!(hook.lock().unwrap().is_empty(), "{name}");
        assert!(rt.take_undelivered().is_empty(), "{name}");
    }
}

/// Callers of the limiter in a deterministic runtime: a `call` runs only
/// the limiter, so the audit agent fills after its capacity's worth of
/// calls, whatever the strategy. Plain emits: every call succeeds and the
/// rest is recorded undelivered. Required emits: the next calls fail with
/// `Undeliverable` (denial inside), the state is rolled back, and once the
/// audit agent ran, calls succeed again.
#[test]
fn calls_to_the_limiter_fail_once_the_audit_mailbox_is_full() {
    const CALLS: usize = 10;
    for (name, strategy) in strategies() {
        // Plain emits.
        let (builder, hook, _) = with_hooks(deterministic(strategy));
        let rt = builder.build().unwrap();
        let audit = rt.spawn(&audit_spec(AUDIT_CAPACITY)).unwrap();
        rt.bus().subscribe_agent("audit.**", &audit.addr()).unwrap();
        let limiter = rt.spawn(&limiter_spec(false)).unwrap();
        for i in 0..CALLS {
            assert_eq!(
                limiter.call(sig("req", i.to_string()), None).unwrap(),
                i as u32 + 1,
                "{name}"
            );
        }
        assert_eq!(audit.mailbox_len(), AUDIT_CAPACITY, "{name}");
        rt.run_until_idle().unwrap();
        let lost: Vec<String> = hook
            .lock()
            .unwrap()
            .iter()
            .map(|u| text(undelivered_signal(u)))
            .collect();
        assert_eq!(*audit.state().unwrap(), numbers(AUDIT_CAPACITY), "{name}");
        assert_eq!(lost, numbers(CALLS)[AUDIT_CAPACITY..].to_vec(), "{name}");
        assert_eq!(
            rt.metrics().undelivered,
            (CALLS - AUDIT_CAPACITY) as u64,
            "{name}"
        );

        // Required emits.
        let (builder, hook, _) = with_hooks(deterministic(strategy));
        let rt = builder.build().unwrap();
        let audit = rt.spawn(&audit_spec(AUDIT_CAPACITY)).unwrap();
        rt.bus().subscribe_agent("audit.**", &audit.addr()).unwrap();
        let limiter = rt.spawn(&limiter_spec(true)).unwrap();
        for i in 0..CALLS {
            let reply = limiter.call(sig("req", i.to_string()), None);
            if i < AUDIT_CAPACITY {
                assert_eq!(reply.unwrap(), i as u32 + 1, "{name}");
                continue;
            }
            let e = action_error(reply.unwrap_err());
            let (ty, data) = refused_by(delivery_failure(&e), audit.id(), full(AUDIT_CAPACITY));
            assert_eq!(
                (ty.as_str(), data),
                ("audit.denied", i.to_string()),
                "{name}"
            );
        }
        assert_eq!(
            *limiter.state().unwrap(),
            AUDIT_CAPACITY as u32,
            "{name}: not rolled back"
        );
        assert_eq!(audit.mailbox_len(), AUDIT_CAPACITY, "{name}");
        rt.run_until_idle().unwrap();
        assert_eq!(*audit.state().unwrap(), numbers(AUDIT_CAPACITY), "{name}");
        // Room again: the next call commits and its denial arrives.
        assert_eq!(
            limiter.call(sig("req", "again"), None).unwrap(),
            AUDIT_CAPACITY as u32 + 1
        );
        rt.run_until_idle().unwrap();
        assert_eq!(
            audit.state().unwrap().last().map(String::as_str),
            Some("again"),
            "{name}"
        );
        assert!(hook.lock().unwrap().is_empty(), "{name}");
        assert_eq!(rt.metrics().undelivered, 0, "{name}");
    }
}

// ------------------------------------------------------- send_to_or_fail

/// A forwarder: keeps what it forwards and sends it on to `to` as a `note`
/// with `send_to_or_fail` (or plain `send_to`). Replies with its count.
fn forwarder_spec(to: AgentAddr, required: bool) -> AgentSpec<Vec<String>, usize> {
    AgentSpec::<Vec<String>, usize>::new(Vec::new()).on(
        "fwd",
        move |kept: &mut Vec<String>, ins: &mut Instruction| {
            let data = ins.text()?.to_owned();
            kept.push(data.clone());
            let note = Signal::new("note", "/fwd", data)?;
            if required {
                ins.send_to_or_fail(&to, note);
            } else {
                ins.send_to(&to, note);
            }
            Ok(kept.len())
        },
    )
}

/// `send_to_or_fail` to a full agent fails the call with `Undeliverable`:
/// the forwarder's state is rolled back, the refused note is inside the
/// `DeliveryFailure` (type and data), and the full agent gets nothing more.
#[test]
fn send_to_or_fail_to_a_full_agent_fails_the_call_and_rolls_back() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let store = rt.spawn(&store_spec(2)).unwrap();
        let fwd = rt.spawn(&forwarder_spec(store.addr(), true)).unwrap();
        store.send(sig("note", "filler-1")).unwrap();
        store.send(sig("note", "filler-2")).unwrap();

        let e = action_error(fwd.call(sig("fwd", "a"), None).unwrap_err());
        let (ty, data) = refused_by(delivery_failure(&e), store.id(), full(2));
        assert_eq!((ty.as_str(), data.as_str()), ("note", "a"), "{name}");
        assert!(fwd.state().unwrap().is_empty(), "{name}: not rolled back");
        assert_eq!(store.mailbox_len(), 2, "{name}");
        rt.run_until_idle().unwrap();
        assert_eq!(*store.state().unwrap(), ["filler-1", "filler-2"], "{name}");

        // Room again: the same call commits and the note arrives.
        assert_eq!(fwd.call(sig("fwd", "b"), None).unwrap(), 1, "{name}");
        rt.run_until_idle().unwrap();
        assert_eq!(
            *store.state().unwrap(),
            ["filler-1", "filler-2", "b"],
            "{name}"
        );
        assert_eq!(*fwd.state().unwrap(), ["b"], "{name}");
        assert_eq!(rt.metrics().undelivered, 0, "{name}");
    }
}

/// Every way a receiver refuses fails a required send: no route for the
/// signal at the receiver, a stopped receiver.
#[test]
fn send_to_or_fail_fails_on_no_route_and_on_a_stopped_agent() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        // No route: the receiver only takes `other`.
        let deaf = rt
            .spawn(
                &AgentSpec::<u32>::new(0).on("other", |n: &mut u32, _: &mut Instruction| {
                    *n += 1;
                    Ok(())
                }),
            )
            .unwrap();
        let fwd = rt.spawn(&forwarder_spec(deaf.addr(), true)).unwrap();
        let e = action_error(fwd.call(sig("fwd", "x"), None).unwrap_err());
        let (ty, data) = refused_by(delivery_failure(&e), deaf.id(), SendErrorKind::NoRoute);
        assert_eq!((ty.as_str(), data.as_str()), ("note", "x"), "{name}");
        assert!(fwd.state().unwrap().is_empty(), "{name}");

        // Stopped.
        let store = rt.spawn(&store_spec(8)).unwrap();
        let fwd = rt.spawn(&forwarder_spec(store.addr(), true)).unwrap();
        assert_eq!(fwd.call(sig("fwd", "before"), None).unwrap(), 1, "{name}");
        rt.run_until_idle().unwrap();
        store.stop();
        let e = action_error(fwd.call(sig("fwd", "after"), None).unwrap_err());
        let (_, data) = refused_by(delivery_failure(&e), store.id(), SendErrorKind::Stopped);
        assert_eq!(data, "after", "{name}");
        assert_eq!(*fwd.state().unwrap(), ["before"], "{name}");
        assert_eq!(*store.state().unwrap(), ["before"], "{name}");
        assert_eq!(rt.metrics().undelivered, 0, "{name}");
    }
}

// -------------------------------------------------- Undeliverable policy

/// An agent type whose actions use plain `emit` and `send_to`.
fn plain_emitter(to: AgentAddr) -> AgentSpec<u32, u32> {
    AgentSpec::<u32, u32>::new(0)
        .on("req", |n: &mut u32, ins: &mut Instruction| {
            *n += 1;
            ins.emit(Signal::new("audit.denied", "/p", ins.text()?.to_owned())?);
            Ok(*n)
        })
        .on("fwd", move |n: &mut u32, ins: &mut Instruction| {
            *n += 1;
            ins.send_to(&to, Signal::new("note", "/p", ins.text()?.to_owned())?);
            Ok(*n)
        })
}

/// `Undeliverable::FailAction` turns the plain `emit` and `send_to` of an
/// agent type into required ones; the same type with the default policy
/// commits and records the loss instead.
#[test]
fn fail_action_policy_makes_plain_emit_and_send_to_required() {
    for (name, strategy) in strategies() {
        for policy in [Undeliverable::Record, Undeliverable::FailAction] {
            let (builder, hook, _) = with_hooks(deterministic(strategy));
            let rt = builder.build().unwrap();
            let audit = rt.spawn(&audit_spec(1)).unwrap();
            rt.bus().subscribe_agent("audit.**", &audit.addr()).unwrap();
            let store = rt.spawn(&store_spec(1)).unwrap();
            let agent = rt
                .spawn(&plain_emitter(store.addr()).undeliverable(policy))
                .unwrap();
            // Both receivers have room for one.
            assert_eq!(agent.call(sig("req", "r1"), None).unwrap(), 1, "{name}");
            assert_eq!(agent.call(sig("fwd", "f1"), None).unwrap(), 2, "{name}");
            // Now both are full.
            let second_req = agent.call(sig("req", "r2"), None);
            let second_fwd = agent.call(sig("fwd", "f2"), None);
            match policy {
                Undeliverable::FailAction => {
                    let e = action_error(second_req.unwrap_err());
                    let (ty, data) = refused_by(delivery_failure(&e), audit.id(), full(1));
                    assert_eq!(
                        (ty.as_str(), data.as_str()),
                        ("audit.denied", "r2"),
                        "{name}"
                    );
                    let e = action_error(second_fwd.unwrap_err());
                    let (ty, data) = refused_by(delivery_failure(&e), store.id(), full(1));
                    assert_eq!((ty.as_str(), data.as_str()), ("note", "f2"), "{name}");
                    assert_eq!(*agent.state().unwrap(), 2, "{name}: not rolled back");
                    assert!(hook.lock().unwrap().is_empty(), "{name}");
                    assert_eq!(rt.metrics().undelivered, 0, "{name}");
                }
                _ => {
                    assert_eq!(second_req.unwrap(), 3, "{name}");
                    assert_eq!(second_fwd.unwrap(), 4, "{name}");
                    assert_eq!(*agent.state().unwrap(), 4, "{name}");
                    let lost: Vec<String> = hook
                        .lock()
                        .unwrap()
                        .iter()
                        .map(|u| text(undelivered_signal(u)))
                        .collect();
                    assert_eq!(lost, ["r2", "f2"], "{name}");
                    assert_eq!(rt.metrics().undelivered, 2, "{name}");
                }
            }
            rt.run_until_idle().unwrap();
            assert_eq!(*audit.state().unwrap(), ["r1"], "{name} {policy:?}");
            assert_eq!(*store.state().unwrap(), ["f1"], "{name} {policy:?}");
        }
    }
}

/// A required emit nobody subscribes to fails its action with
/// `NoSubscribers` (signal inside); a plain one commits and is recorded; a
/// bus callback is a subscriber, so the required emit then commits and the
/// callback runs once.
#[test]
fn emit_or_fail_with_no_subscriber_fails_with_no_subscribers() {
    for (name, strategy) in strategies() {
        let (builder, hook, _) = with_hooks(deterministic(strategy));
        let rt = builder.build().unwrap();
        let required = rt.spawn(&limiter_spec(true)).unwrap();
        let plain = rt.spawn(&limiter_spec(false)).unwrap();

        let e = action_error(required.call(sig("req", "7"), None).unwrap_err());
        match delivery_failure(&e) {
            DeliveryFailure::NoSubscribers(s) => {
                assert_eq!((s.ty(), text(s).as_str()), ("audit.denied", "7"), "{name}")
            }
            other => panic!("{name}: expected NoSubscribers, got {other:?}"),
        }
        assert_eq!(*required.state().unwrap(), 0, "{name}: not rolled back");
        assert!(hook.lock().unwrap().is_empty(), "{name}");

        assert_eq!(plain.call(sig("req", "8"), None).unwrap(), 1, "{name}");
        {
            let hook = hook.lock().unwrap();
            assert_eq!(hook.len(), 1, "{name}");
            assert_eq!(hook[0].from, UndeliveredFrom::Agent(plain.id()), "{name}");
            assert!(
                matches!(&hook[0].failure, DeliveryFailure::NoSubscribers(s) if text(s) == "8"),
                "{name}: {:?}",
                hook[0]
            );
        }

        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        rt.bus()
            .subscribe("audit.*", move |x: &Signal| s.lock().unwrap().push(text(x)))
            .unwrap();
        assert_eq!(required.call(sig("req", "9"), None).unwrap(), 1, "{name}");
        assert_eq!(*seen.lock().unwrap(), ["9"], "{name}");
        assert_eq!(rt.metrics().undelivered, 1, "{name}");
    }
}

// ------------------------------------------------------ slots released

/// Makes two required deliveries: first to `x`, then to `y`.
fn two_sends(x: AgentAddr, y: AgentAddr) -> AgentSpec<u32, u32> {
    AgentSpec::<u32, u32>::new(0).on("go", move |n: &mut u32, ins: &mut Instruction| {
        *n += 1;
        ins.send_to_or_fail(&x, Signal::new("note", "/two", format!("x{n}"))?);
        ins.send_to_or_fail(&y, Signal::new("note", "/two", format!("y{n}"))?);
        Ok(*n)
    })
}

/// Asserts that `agent`'s mailbox takes exactly `capacity` more sends.
fn takes_exactly<S, R>(name: &str, agent: &AgentRef<S, R>, capacity: usize)
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    assert_eq!(
        agent.mailbox_len(),
        0,
        "{name}: a reservation is left behind"
    );
    for i in 0..capacity {
        if let Err(e) = agent.send(sig("note", format!("direct{i}"))) {
            panic!("{name}: send {i} of {capacity} refused: {e}");
        }
    }
    let e = agent.send(sig("note", "one-too-many")).unwrap_err();
    assert!(e.is_full(), "{name}: {e}");
}

/// A failed action gives back the slots its earlier required deliveries
/// reserved: after several actions that reserved at `x` and then failed at
/// the full `y`, `x` still takes its whole capacity.
#[test]
fn a_failed_action_releases_the_slots_it_reserved() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let x = rt.spawn(&store_spec(3)).unwrap();
        let y = rt.spawn(&store_spec(1)).unwrap();
        y.send(sig("note", "filler")).unwrap();
        let agent = rt.spawn(&two_sends(x.addr(), y.addr())).unwrap();
        for _ in 0..5 {
            let e = action_error(agent.call(sig("go", ""), None).unwrap_err());
            let (_, data) = refused_by(delivery_failure(&e), y.id(), full(1));
            assert_eq!(data, "y1", "{name}");
        }
        assert_eq!(*agent.state().unwrap(), 0, "{name}");
        takes_exactly(name, &x, 3);
        rt.run_until_idle().unwrap();
        // Nothing of the failed actions arrived anywhere.
        assert_eq!(
            *x.state().unwrap(),
            ["direct0", "direct1", "direct2"],
            "{name}"
        );
        assert_eq!(*y.state().unwrap(), ["filler"], "{name}");

        // With room at both, the same action delivers both.
        assert_eq!(agent.call(sig("go", ""), None).unwrap(), 1, "{name}");
        rt.run_until_idle().unwrap();
        assert_eq!(
            x.state().unwrap().last().map(String::as_str),
            Some("x1"),
            "{name}"
        );
        assert_eq!(*y.state().unwrap(), ["filler", "y1"], "{name}");
    }
}

/// The same through the bus: one required emit to two subscribers, the
/// first (more specific) with room, the second full. The first's slot is
/// released when the second refuses.
#[test]
fn a_bus_emit_refused_by_one_subscriber_releases_the_others_slots() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let roomy = rt.spawn(&audit_spec(3)).unwrap();
        let fullest = rt.spawn(&audit_spec(1)).unwrap();
        let bus = rt.bus();
        bus.subscribe_agent("audit.denied", &roomy.addr()).unwrap();
        bus.subscribe_agent("audit.**", &fullest.addr()).unwrap();
        fullest.send(sig("audit.filler", "filler")).unwrap();
        let limiter = rt.spawn(&limiter_spec(true)).unwrap();
        for i in 0..5 {
            let e = action_error(limiter.call(sig("req", i.to_string()), None).unwrap_err());
            let (_, data) = refused_by(delivery_failure(&e), fullest.id(), full(1));
            assert_eq!(data, i.to_string(), "{name}");
        }
        assert_eq!(*limiter.state().unwrap(), 0, "{name}");
        assert_eq!(
            roomy.mailbox_len(),
            0,
            "{name}: a reservation is left behind"
        );
        for i in 0..3 {
            roomy.send(sig("audit.direct", i.to_string())).unwrap();
        }
        assert!(
            roomy.send(sig("audit.direct", "x")).unwrap_err().is_full(),
            "{name}"
        );
        rt.run_until_idle().unwrap();
        assert_eq!(*roomy.state().unwrap(), ["0", "1", "2"], "{name}");
        assert_eq!(*fullest.state().unwrap(), ["filler"], "{name}");
    }
}

/// Two required sends of one action to the same agent each need a slot:
/// with room for one, the second is refused (the first slot counts against
/// the capacity while held) and neither arrives; with room for two, both do.
#[test]
fn required_sends_of_one_action_count_each_others_slots() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let x = rt.spawn(&store_spec(2)).unwrap();
        x.send(sig("note", "filler")).unwrap();
        let agent = rt.spawn(&two_sends(x.addr(), x.addr())).unwrap();
        let e = action_error(agent.call(sig("go", ""), None).unwrap_err());
        let (_, data) = refused_by(delivery_failure(&e), x.id(), full(2));
        assert_eq!(data, "y1", "{name}");
        assert_eq!(x.mailbox_len(), 1, "{name}");
        rt.run_until_idle().unwrap();
        assert_eq!(*x.state().unwrap(), ["filler"], "{name}");
        // Now two free slots.
        assert_eq!(agent.call(sig("go", ""), None).unwrap(), 1, "{name}");
        assert_eq!(x.mailbox_len(), 2, "{name}");
        rt.run_until_idle().unwrap();
        assert_eq!(*x.state().unwrap(), ["filler", "x1", "y1"], "{name}");
    }
}

/// Under `Atomicity::InPlace` a failed required emit leaves the state as
/// the action left it (that mode undoes nothing), but still sends nothing
/// and fails the call with `Undeliverable`.
#[test]
fn in_place_agents_keep_the_change_but_send_nothing() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let store = rt.spawn(&store_spec(1)).unwrap();
        store.send(sig("note", "filler")).unwrap();
        let fwd = rt
            .spawn(&forwarder_spec(store.addr(), true).atomicity(agentry::Atomicity::InPlace))
            .unwrap();
        let e = action_error(fwd.call(sig("fwd", "a"), None).unwrap_err());
        let (_, data) = refused_by(delivery_failure(&e), store.id(), full(1));
        assert_eq!(data, "a", "{name}");
        assert_eq!(*fwd.state().unwrap(), ["a"], "{name}");
        rt.run_until_idle().unwrap();
        assert_eq!(*store.state().unwrap(), ["filler"], "{name}");
        assert_eq!(rt.metrics().undelivered, 0, "{name}");
    }
}

// ---------------------------------------------------------- two routes

/// An order agent with two routes for `order.placed`: the exact route
/// (runs first) and `order.*`. Each counts in its half of the state and
/// makes a required send to its own receiver.
fn two_routes(first_to: AgentAddr, second_to: AgentAddr) -> AgentSpec<(u32, u32), u32> {
    AgentSpec::<(u32, u32), u32>::new((0, 0))
        .on(
            "order.placed",
            move |s: &mut (u32, u32), ins: &mut Instruction| {
                s.0 += 1;
                ins.send_to_or_fail(&first_to, Signal::new("note", "/order", "first")?);
                Ok(s.0)
            },
        )
        .on(
            "order.*",
            move |s: &mut (u32, u32), ins: &mut Instruction| {
                s.1 += 1;
                ins.send_to_or_fail(&second_to, Signal::new("note", "/order", "second")?);
                Ok(s.1)
            },
        )
}

/// Several matching routes run as separate atomic actions
/// (`agent/turn.rs`, `execute`): when the second route's required send
/// fails, only the second route is undone; the first route's state change
/// commits and its send is delivered. The caller gets the error (a call's
/// reply is the first error of any route). And the other way round.
#[test]
fn each_route_commits_or_fails_on_its_own_required_sends() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let roomy = rt.spawn(&store_spec(4)).unwrap();
        let full_one = rt.spawn(&store_spec(1)).unwrap();
        full_one.send(sig("note", "filler")).unwrap();

        // The second route fails.
        let order = rt
            .spawn(&two_routes(roomy.addr(), full_one.addr()))
            .unwrap();
        let e = action_error(order.call(sig("order.placed", ""), None).unwrap_err());
        let (_, data) = refused_by(delivery_failure(&e), full_one.id(), full(1));
        assert_eq!(data, "second", "{name}");
        assert_eq!(*order.state().unwrap(), (1, 0), "{name}");
        assert_eq!(roomy.mailbox_len(), 1, "{name}");

        // The first route fails; the second commits.
        let order = rt
            .spawn(&two_routes(full_one.addr(), roomy.addr()))
            .unwrap();
        let e = action_error(order.call(sig("order.placed", ""), None).unwrap_err());
        let (_, data) = refused_by(delivery_failure(&e), full_one.id(), full(1));
        assert_eq!(data, "first", "{name}");
        assert_eq!(*order.state().unwrap(), (0, 1), "{name}");

        rt.run_until_idle().unwrap();
        assert_eq!(*roomy.state().unwrap(), ["first", "second"], "{name}");
        assert_eq!(*full_one.state().unwrap(), ["filler"], "{name}");
        assert_eq!(rt.metrics().failed_actions, 2, "{name}");
        assert_eq!(rt.metrics().undelivered, 0, "{name}");
    }
}

// --------------------------------------------------------- equivalence

/// The limiter of the equivalence scenario: `req` makes a required bus
/// emit, `fwd` a required send, `plain` a plain emit (which may be lost).
#[derive(Clone, Debug, Default, PartialEq)]
struct Counts {
    reqs: u32,
    fwds: u32,
    plains: u32,
}

fn mixed_limiter(store: AgentAddr) -> AgentSpec<Counts, u32> {
    AgentSpec::<Counts, u32>::new(Counts::default())
        .on("req", |c: &mut Counts, ins: &mut Instruction| {
            c.reqs += 1;
            ins.emit_or_fail(Signal::new("audit.denied", "/m", ins.text()?.to_owned())?);
            Ok(c.reqs)
        })
        .on("fwd", move |c: &mut Counts, ins: &mut Instruction| {
            c.fwds += 1;
            ins.send_to_or_fail(&store, Signal::new("note", "/m", ins.text()?.to_owned())?);
            Ok(c.fwds)
        })
        .on("plain", |c: &mut Counts, ins: &mut Instruction| {
            c.plains += 1;
            ins.emit(Signal::new("audit.plain", "/m", ins.text()?.to_owned())?);
            Ok(c.plains)
        })
}

/// Everything observable about one run of the scenario (signal ids differ
/// between runs; data does not).
#[derive(Debug, PartialEq)]
struct Outcome {
    calls: Vec<Result<u32, String>>,
    limiter: Counts,
    audit: Vec<String>,
    store: Vec<String>,
    failures: Vec<(String, String)>,
    undelivered: Vec<String>,
    metrics: agentry::Metrics,
}

/// A failure as text; agent ids are global, so the refusing agent is
/// named by the signal's type (`audit.*` or `note`).
fn failure_summary(e: &ActionError) -> String {
    match delivery_failure(e) {
        DeliveryFailure::Refused(se) => {
            format!("{:?} {} {}", se.kind(), se.signal().ty(), text(se.signal()))
        }
        DeliveryFailure::NoSubscribers(s) => format!("no subscribers {}", text(s)),
        other => format!("{other:?}"),
    }
}

fn run_scenario(strategy: Strategy, batch: usize) -> Outcome {
    let (builder, hook, failures) = with_hooks(deterministic(strategy).batch_size(batch));
    let rt = builder.build().unwrap();
    let audit = rt.spawn(&audit_spec(AUDIT_CAPACITY)).unwrap();
    rt.bus().subscribe_agent("audit.**", &audit.addr()).unwrap();
    let store = rt.spawn(&store_spec(3)).unwrap();
    let limiter = rt.spawn(&mixed_limiter(store.addr())).unwrap();
    let mut calls = Vec::new();
    for i in 0..60 {
        let ty = match i % 5 {
            0..=2 => "req",
            3 => "fwd",
            _ => "plain",
        };
        let signal = sig(ty, format!("{ty}{i}"));
        if i % 7 == 0 {
            calls.push(
                limiter
                    .call(signal, None)
                    .map_err(|e| failure_summary(&action_error(e))),
            );
        } else {
            limiter.send(signal).unwrap();
        }
        if i % 11 == 10 {
            rt.run_steps(2).unwrap();
        }
    }
    rt.run_until_idle().unwrap();
    let failures = failures
        .lock()
        .unwrap()
        .iter()
        .map(|(data, e)| (data.clone(), failure_summary(e)))
        .collect();
    let undelivered = hook
        .lock()
        .unwrap()
        .iter()
        .map(|u| text(undelivered_signal(u)))
        .collect();
    Outcome {
        calls,
        limiter: limiter.state().unwrap().as_ref().clone(),
        audit: audit.state().unwrap().as_ref().clone(),
        store: store.state().unwrap().as_ref().clone(),
        failures,
        undelivered,
        metrics: rt.metrics(),
    }
}

/// The same deterministic scenario (sends, calls and bounded steps mixing
/// required and plain emits into small mailboxes) gives identical results
/// under every strategy with the same batch size (batch 1 with and without
/// `batching` too). Each run also keeps the invariants: every committed
/// required emit arrived, every plain one arrived or was recorded.
#[test]
fn every_strategy_gives_the_same_results() {
    let mut by_batch: BTreeMap<usize, (String, Outcome)> = BTreeMap::new();
    for (name, strategy, batch) in all_strategies() {
        let out = run_scenario(strategy, batch);
        let denied = out.audit.iter().filter(|d| d.starts_with("req")).count();
        let plain = out.audit.iter().filter(|d| d.starts_with("plain")).count();
        assert_eq!(denied, out.limiter.reqs as usize, "{name}: {out:#?}");
        assert_eq!(
            out.store.len(),
            out.limiter.fwds as usize,
            "{name}: {out:#?}"
        );
        assert_eq!(
            plain + out.undelivered.len(),
            out.limiter.plains as usize,
            "{name}: {out:#?}"
        );
        assert_eq!(
            out.metrics.undelivered,
            out.undelivered.len() as u64,
            "{name}"
        );
        assert_eq!(
            out.metrics.failed_actions,
            out.failures.len() as u64,
            "{name}"
        );
        assert_eq!(
            out.limiter.reqs + out.limiter.fwds + out.limiter.plains + out.failures.len() as u32,
            60,
            "{name}"
        );
        match by_batch.get(&batch) {
            Some((first, expected)) => assert_eq!(&out, expected, "{name} differs from {first}"),
            None => {
                if batch == 64 {
                    // The scenario exercises both paths.
                    assert!(!out.failures.is_empty(), "{name}: no required emit failed");
                    assert!(!out.undelivered.is_empty(), "{name}: no plain emit lost");
                }
                by_batch.insert(batch, (name, out));
            }
        }
    }
    assert_eq!(by_batch.len(), 3);
}

// ------------------------------------------------------------ threaded

/// Producer threads call the limiter (required emits) while the small audit
/// mailbox is being drained by a slow-ish audit agent. Every call answered
/// `Ok` had its denial delivered: the audit agent ends with exactly the
/// successful requests, no more, no fewer, and the failures are all
/// `Undeliverable` refusals by the audit agent.
#[test]
fn threaded_callers_get_ok_only_when_the_denial_is_delivered() {
    const PRODUCERS: usize = 4;
    const EACH: usize = 250;
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        let audit = rt
            .spawn(
                &AgentSpec::<Vec<String>>::new(Vec::new())
                    .mailbox_capacity(AUDIT_CAPACITY)
                    .on(
                        "audit.**",
                        |log: &mut Vec<String>, ins: &mut Instruction| {
                            // Some work, so that the mailbox fills now and then.
                            let mut h = 0u64;
                            for k in 0..200u64 {
                                h = std::hint::black_box(h.wrapping_mul(31).wrapping_add(k));
                            }
                            std::hint::black_box(h);
                            log.push(ins.text()?.to_owned());
                            Ok(())
                        },
                    ),
            )
            .unwrap();
        rt.bus().subscribe_agent("audit.**", &audit.addr()).unwrap();
        let limiter = rt.spawn(&limiter_spec(true)).unwrap();
        let audit_id = audit.id();
        let results: Vec<(Vec<String>, usize)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..PRODUCERS)
                .map(|p| {
                    let limiter = limiter.clone();
                    s.spawn(move || {
                        let mut ok = Vec::new();
                        let mut failed = 0;
                        for i in 0..EACH {
                            let data = format!("{}", p * EACH + i);
                            match limiter.call(sig("req", data.clone()), Duration::from_secs(30)) {
                                Ok(_) => ok.push(data),
                                Err(e) => {
                                    let e = action_error(e);
                                    let (_, denial) = refused_by(
                                        delivery_failure(&e),
                                        audit_id,
                                        full(AUDIT_CAPACITY),
                                    );
                                    assert_eq!(denial, data);
                                    failed += 1;
                                }
                            }
                        }
                        (ok, failed)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ok: BTreeSet<String> = results.iter().flat_map(|r| r.0.iter().cloned()).collect();
        let failed: usize = results.iter().map(|r| r.1).sum();
        assert_eq!(ok.len() + failed, PRODUCERS * EACH, "{name}");

        let report = rt.shutdown_graceful(Duration::from_secs(10));
        assert!(
            report.drain.is_some_and(|d| d.idle),
            "{name}: {:?}",
            report.drain
        );
        assert!(report.dead_letters.is_empty(), "{name}");
        let m = report.metrics;
        assert_eq!(m.accepted, m.processed + m.dead_lettered, "{name}");
        assert_eq!(m.undelivered, 0, "{name}");
        let audited = audit.state().unwrap();
        let audited_set: BTreeSet<String> = audited.iter().cloned().collect();
        assert_eq!(audited.len(), audited_set.len(), "{name}: a denial twice");
        assert_eq!(audited_set, ok, "{name}");
        assert_eq!(*limiter.state().unwrap() as usize, ok.len(), "{name}");
        assert_eq!(m.failed_actions as usize, failed, "{name}");
    }
}
