//! The equivalence proof: random operation sequences run in deterministic mode
//! through a plain reference model and through the runtime under every
//! implementation strategy compiled into this build; every observable result
//! (replies, errors, states, dead letters, emitted signals, counters) must be
//! identical.
//!
//! The model is written from the documented semantics (the crate docs and the
//! README's "Decided semantics"), not from the runtime's
//! code: routing uses `Pattern::matches` (the reference matcher) and its own
//! ordering function, processing is a simple loop over FIFO queues.
//!
//! Cross-sender interleaving is not a guaranteed property (only per-sender
//! order is), so agent states are logs keyed by signal source, and the
//! outputs produced while the runtime is driven (callback calls, undelivered
//! emits) are compared as multisets. Mailbox capacities are chosen so that
//! emitted signals never meet a full mailbox (which would make the outcome
//! depend on scheduling); full mailboxes are exercised by driver sends to
//! small agents.

mod common;

use agentry::imp::{PoolKind, Strategy as Impl};
use agentry::router::Pattern;
use agentry::{
    ActionError, AgentRef, AgentSpec, CallError, DeliveryFailure, Instruction, PublishError,
    RouteError, RouteId, RouteSpec, Runtime, SendError, SendErrorKind, Signal, SubscriptionId,
};
use common::quiet_panics;
use proptest::prelude::*;
use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------- the world

const TYPES: &[&str] = &[
    "rec.a", "rec.b", "fail.a", "panic.a", "emit.a", "emit.b", "q.count", "other.x", "fwd.a",
];
const PATTERNS: &[&str] = &[
    "rec.*", "rec.**", "**", "*.a", "fwd.*", "emit.*", "fail.*", "other.x", "*.b", "**.b",
];
const ACTIONS: &[&str] = &["rec", "fail", "panic", "emit"];
const LOG_CAPACITY: usize = 100_000;
const TINY_CAPACITY: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Log,
    Tiny,
}

/// Entries per signal source: only per-sender order is guaranteed.
type State = BTreeMap<String, Vec<String>>;

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// What is compared of a signal: type, source and data. Not the id: each
/// executor builds its own driver signals, with fresh UUIDv7 ids (and the
/// signals have no other attributes).
fn entry(signal: &Signal) -> String {
    format!(
        "{}|{}|{}|{:x}",
        signal.ty(),
        signal.source(),
        signal.data().len(),
        fnv(signal.data())
    )
}

/// A dead letter as compared: the signal, why it was not processed
/// (`DeadLetterReason` by name) and whether a caller waited for it.
fn dead_letter(signal: &Signal, reason: &str, was_call: bool) -> String {
    let call = if was_call { "(call)" } else { "" };
    format!("{}:{reason}{call}", entry(signal))
}

fn total(state: &State) -> u64 {
    state.values().map(|v| v.len() as u64).sum()
}

/// The signal an `emit` action publishes.
fn emitted(agent_index: usize, signal: &Signal) -> Signal {
    Signal::builder("fwd.a", format!("/agent/{agent_index}"))
        .data(signal.data().clone())
        .build()
        .expect("valid emitted signal")
}

/// Publishes a copy of a driver signal (only driver signals: chains stay one
/// hop long).
fn forward(index: usize, ins: &mut Instruction) {
    if ins.source() == "/driver" {
        let out = emitted(index, ins.signal());
        ins.emit(out);
    }
}

fn record(state: &mut State, ins: &Instruction) {
    state
        .entry(ins.source().to_owned())
        .or_default()
        .push(entry(ins.signal()));
}

/// The agent type under test. Each agent gets its own spec so that `emit`
/// can name its emitter deterministically.
fn spec(kind: Kind, index: usize) -> AgentSpec<State, u64> {
    let mut spec = AgentSpec::<State, u64>::new(State::new())
        .action("rec", |s: &mut State, ins: &mut Instruction| {
            record(s, ins);
            Ok(total(s))
        })
        .action("fail", move |s: &mut State, ins: &mut Instruction| {
            // Mutates and emits, then fails: both must be undone.
            record(s, ins);
            forward(index, ins);
            Err(ActionError::rejected("deliberate failure"))
        })
        .action("panic", move |s: &mut State, ins: &mut Instruction| {
            record(s, ins);
            forward(index, ins);
            panic!("deliberate panic")
        })
        .route("rec.*", "rec")
        .route("fail.*", "fail")
        .route("panic.*", "panic")
        .query("q.*", |s: &State, _: &Signal| Ok(total(s)));
    match kind {
        Kind::Log => {
            spec = spec
                .action("emit", move |s: &mut State, ins: &mut Instruction| {
                    record(s, ins);
                    forward(index, ins);
                    Ok(total(s))
                })
                .route("emit.*", "emit")
                .route("fwd.*", "rec")
                .mailbox_capacity(LOG_CAPACITY)
        }
        Kind::Tiny => spec = spec.mailbox_capacity(TINY_CAPACITY),
    }
    spec
}

fn spec_routes(kind: Kind) -> Vec<(&'static str, &'static str)> {
    let mut r = vec![("rec.*", "rec"), ("fail.*", "fail"), ("panic.*", "panic")];
    if kind == Kind::Log {
        r.extend([("emit.*", "emit"), ("fwd.*", "rec")]);
    }
    r
}

// ---------------------------------------------------------------- operations

#[derive(Clone, Debug)]
struct Data {
    len: usize,
    seed: u8,
}

impl Data {
    fn bytes(&self) -> Vec<u8> {
        (0..self.len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(self.seed))
            .collect()
    }
}

#[derive(Clone, Debug)]
enum Target {
    Agent(usize),
    Callback(usize),
}

#[derive(Clone, Debug)]
enum Op {
    Spawn(Kind),
    Send(usize, usize, Data),
    Call(usize, usize, Data),
    State(usize),
    Query(usize),
    Publish(usize, Data),
    Subscribe(usize, Target),
    Unsubscribe(usize),
    AddRoute(usize, usize, usize, i32),
    RemoveRoute(usize, usize),
    Stop(usize),
    Run,
}

fn data() -> impl Strategy<Value = Data> {
    let len = prop_oneof![
        6 => 0usize..64,
        2 => 64usize..4096,
        1 => 4096usize..=65536,
    ];
    (len, any::<u8>()).prop_map(|(len, seed)| Data { len, seed })
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![3 => Just(Kind::Log), 1 => Just(Kind::Tiny)];
    let priority = prop_oneof![10 => -100i32..=100, 1 => Just(101i32)];
    let target = prop_oneof![
        3 => (0usize..8).prop_map(Target::Agent),
        1 => (0usize..3).prop_map(Target::Callback),
    ];
    prop_oneof![
        1 => kind.prop_map(Op::Spawn),
        10 => (0usize..8, 0..TYPES.len(), data()).prop_map(|(a, t, d)| Op::Send(a, t, d)),
        3 => (0usize..8, 0..TYPES.len(), data()).prop_map(|(a, t, d)| Op::Call(a, t, d)),
        2 => (0usize..8).prop_map(Op::State),
        1 => (0usize..8).prop_map(Op::Query),
        3 => (0..TYPES.len(), data()).prop_map(|(t, d)| Op::Publish(t, d)),
        2 => (0..PATTERNS.len(), target).prop_map(|(p, t)| Op::Subscribe(p, t)),
        1 => (0usize..8).prop_map(Op::Unsubscribe),
        2 => (0usize..8, 0..PATTERNS.len(), 0..ACTIONS.len(), priority).prop_map(|(a, p, x, pr)| Op::AddRoute(a, p, x, pr)),
        1 => (0usize..8, 0usize..4).prop_map(|(a, n)| Op::RemoveRoute(a, n)),
        1 => (0usize..8).prop_map(Op::Stop),
        3 => Just(Op::Run),
    ]
}

/// A signal for an operation, built once and cloned to every executor.
fn driver_signal(ty: usize, data: &Data) -> Signal {
    Signal::builder(TYPES[ty], "/driver")
        .data(data.bytes())
        .build()
        .unwrap()
}

/// What an executor reports; compared with `==` across executors.
#[derive(Debug, PartialEq)]
struct Outcome {
    steps: Vec<String>,
    callbacks: Vec<String>,
    undelivered: Vec<String>,
    dead_letters: Vec<String>,
    metrics: [u64; 6],
    states: Vec<String>,
}

// ---------------------------------------------------------------- the model

struct MRoute {
    id: u64,
    pattern: String,
    action: &'static str,
    priority: i32,
}

struct MMsg {
    signal: Signal,
    actions: Vec<&'static str>,
    call: bool,
}

struct MAgent {
    kind: Kind,
    index: usize,
    state: State,
    mailbox: VecDeque<MMsg>,
    routes: Vec<MRoute>,
    next_route: u64,
    added: Vec<u64>,
    stopped: bool,
}

struct MSub {
    id: u64,
    pattern: String,
    target: Target,
}

#[derive(Default)]
struct Model {
    agents: Vec<MAgent>,
    subs: Vec<MSub>,
    sub_ids: Vec<u64>,
    next_sub: u64,
    callbacks: Vec<String>,
    undelivered: Vec<String>,
    accepted: u64,
    processed: u64,
    dead_lettered: u64,
    failed: u64,
    panicked: u64,
    refused_full: u64,
    call_result: Option<String>,
}

/// Specificity rank of a pattern's position `i`: exact 0, `*` 1, ended 2, `**` 3.
fn rank(pattern: &str, i: usize) -> u8 {
    match pattern.split('.').nth(i) {
        None => 2,
        Some("*") => 1,
        Some("**") => 3,
        Some(_) => 0,
    }
}

/// The order rule, written out directly.
fn order(a: (&str, i32, u64), b: (&str, i32, u64)) -> Ordering {
    (0..64)
        .map(|i| rank(a.0, i).cmp(&rank(b.0, i)))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
        .then(b.1.cmp(&a.1))
        .then(a.2.cmp(&b.2))
}

fn matches(pattern: &str, ty: &str) -> bool {
    Pattern::parse(pattern)
        .map(|p| p.matches(ty))
        .unwrap_or(false)
}

fn kind_name(kind: &SendErrorKind) -> String {
    match kind {
        SendErrorKind::MailboxFull { capacity } => format!("Full({capacity})"),
        SendErrorKind::Stopped => "Stopped".into(),
        SendErrorKind::ShuttingDown => "ShuttingDown".into(),
        SendErrorKind::NoRoute => "NoRoute".into(),
        other => format!("{other:?}"),
    }
}

impl Model {
    fn spawn(&mut self, kind: Kind) {
        let index = self.agents.len();
        let routes: Vec<MRoute> = spec_routes(kind)
            .into_iter()
            .enumerate()
            .map(|(i, (p, a))| MRoute {
                id: i as u64,
                pattern: p.into(),
                action: a,
                priority: 0,
            })
            .collect();
        self.agents.push(MAgent {
            kind,
            index,
            state: State::new(),
            mailbox: VecDeque::new(),
            next_route: routes.len() as u64,
            routes,
            added: Vec::new(),
            stopped: false,
        });
    }

    fn resolve(agent: &MAgent, ty: &str) -> Vec<&'static str> {
        let mut hits: Vec<&MRoute> = agent
            .routes
            .iter()
            .filter(|r| matches(&r.pattern, ty))
            .collect();
        hits.sort_by(|a, b| {
            order(
                (&a.pattern, a.priority, a.id),
                (&b.pattern, b.priority, b.id),
            )
        });
        hits.into_iter().map(|r| r.action).collect()
    }

    /// As `AgentRef::send`: route, then check stopped, then capacity.
    fn accept(&mut self, a: usize, signal: Signal, call: bool) -> Result<(), String> {
        let agent = &mut self.agents[a];
        let actions = Self::resolve(agent, signal.ty());
        let refused = if actions.is_empty() {
            Some("NoRoute".to_string())
        } else if agent.stopped {
            Some("Stopped".into())
        } else if agent.mailbox.len() >= capacity(agent.kind) {
            self.refused_full += 1;
            Some(format!("Full({})", capacity(agent.kind)))
        } else {
            None
        };
        if let Some(kind) = refused {
            return Err(format!("{kind}@{a}"));
        }
        agent.mailbox.push_back(MMsg {
            signal,
            actions,
            call,
        });
        self.accepted += 1;
        Ok(())
    }

    fn run(&mut self) -> u64 {
        let before = self.processed;
        loop {
            let mut any = false;
            for a in 0..self.agents.len() {
                while let Some(msg) = self.agents[a].mailbox.pop_front() {
                    any = true;
                    self.process(a, msg);
                }
            }
            if !any {
                return self.processed - before;
            }
        }
    }

    fn process(&mut self, a: usize, msg: MMsg) {
        let mut first: Option<Result<u64, String>> = None;
        let mut failure: Option<String> = None;
        let mut emits = Vec::new();
        for (i, action) in msg.actions.iter().enumerate() {
            let agent = &mut self.agents[a];
            let src = msg.signal.source().to_owned();
            let outcome = match *action {
                "rec" | "emit" => {
                    agent.state.entry(src).or_default().push(entry(&msg.signal));
                    if *action == "emit" && msg.signal.source() == "/driver" {
                        emits.push(emitted(agent.index, &msg.signal));
                    }
                    Ok(total(&agent.state))
                }
                "fail" => {
                    self.failed += 1;
                    Err("Action(Rejected: deliberate failure)".to_string())
                }
                _ => {
                    self.failed += 1;
                    self.panicked += 1;
                    Err("Action(Panicked: deliberate panic)".to_string())
                }
            };
            if i == 0 {
                first = Some(outcome.clone());
            }
            if let Err(e) = outcome
                && failure.is_none()
            {
                failure = Some(e);
            }
        }
        self.processed += 1;
        for signal in emits {
            self.publish(signal, true);
        }
        if msg.call {
            self.call_result = Some(match (failure, first) {
                (Some(e), _) => e,
                (None, Some(Ok(n))) => format!("Ok({n})"),
                _ => "no reply".into(),
            });
        }
    }

    fn publish(&mut self, signal: Signal, emitted: bool) -> String {
        let mut subs: Vec<&MSub> = self
            .subs
            .iter()
            .filter(|s| matches(&s.pattern, signal.ty()))
            .collect();
        subs.sort_by(|a, b| order((&a.pattern, 0, a.id), (&b.pattern, 0, b.id)));
        if subs.is_empty() {
            if emitted {
                self.undelivered
                    .push(format!("NoSubscribers:{}", signal.ty()));
            }
            return "NoSubscribers".into();
        }
        let targets: Vec<Target> = subs.iter().map(|s| s.target.clone()).collect();
        let mut delivered = 0;
        let mut failures = Vec::new();
        for target in targets {
            match target {
                Target::Agent(a) => match self.accept(a, signal.clone(), false) {
                    Ok(()) => delivered += 1,
                    Err(e) => failures.push(e),
                },
                Target::Callback(c) => {
                    self.callbacks.push(format!("cb{c}:{}", entry(&signal)));
                    delivered += 1;
                }
            }
        }
        if emitted {
            for f in &failures {
                self.undelivered.push(format!("Refused:{f}"));
            }
        }
        format!("delivered {delivered}, failures {failures:?}")
    }

    fn apply(&mut self, op: &Op) -> Option<String> {
        let n = self.agents.len();
        Some(match op {
            Op::Spawn(kind) => {
                self.spawn(*kind);
                format!("spawned {}", n)
            }
            Op::Send(a, t, d) => {
                let a = a % n;
                match self.accept(a, driver_signal(*t, d), false) {
                    Ok(()) => "ok".into(),
                    Err(e) => format!("refused {e}"),
                }
            }
            Op::Call(a, t, d) => {
                let a = a % n;
                match self.accept(a, driver_signal(*t, d), true) {
                    Err(e) => format!("call refused {e}"),
                    Ok(()) => {
                        // A deterministic call runs the target's mailbox in
                        // order up to its own signal and returns.
                        self.call_result = None;
                        while self.call_result.is_none() {
                            let Some(msg) = self.agents[a].mailbox.pop_front() else {
                                break;
                            };
                            self.process(a, msg);
                        }
                        self.call_result
                            .take()
                            .unwrap_or_else(|| "not processed".into())
                    }
                }
            }
            Op::State(a) => format!("{:?}", self.agents[a % n].state),
            Op::Query(a) => format!("Ok({})", total(&self.agents[a % n].state)),
            Op::Publish(t, d) => self.publish(driver_signal(*t, d), false),
            Op::Subscribe(p, target) => {
                let target = match target {
                    Target::Agent(a) => {
                        let logs: Vec<usize> = self
                            .agents
                            .iter()
                            .filter(|m| m.kind == Kind::Log)
                            .map(|m| m.index)
                            .collect();
                        if logs.is_empty() {
                            return None;
                        }
                        Target::Agent(logs[a % logs.len()])
                    }
                    cb => cb.clone(),
                };
                let id = self.next_sub;
                self.next_sub += 1;
                self.subs.push(MSub {
                    id,
                    pattern: PATTERNS[*p].into(),
                    target,
                });
                self.sub_ids.push(id);
                format!("sub {id}")
            }
            Op::Unsubscribe(k) => {
                if self.sub_ids.is_empty() {
                    return None;
                }
                let id = self.sub_ids[k % self.sub_ids.len()];
                let before = self.subs.len();
                self.subs.retain(|s| s.id != id);
                if self.subs.len() < before {
                    "unsubscribed".into()
                } else {
                    "UnknownRoute".into()
                }
            }
            Op::AddRoute(a, p, x, priority) => {
                let agent = &mut self.agents[a % n];
                let action = ACTIONS[*x];
                if !(-100..=100).contains(priority) {
                    "PriorityOutOfRange".into()
                } else if agent.kind == Kind::Tiny && action == "emit" {
                    "UnknownAction".into()
                } else {
                    let id = agent.next_route;
                    agent.next_route += 1;
                    agent.routes.push(MRoute {
                        id,
                        pattern: PATTERNS[*p].into(),
                        action,
                        priority: *priority,
                    });
                    agent.added.push(id);
                    format!("route {id}")
                }
            }
            Op::RemoveRoute(a, k) => {
                let agent = &mut self.agents[a % n];
                if agent.added.is_empty() {
                    return None;
                }
                let id = agent.added[k % agent.added.len()];
                let before = agent.routes.len();
                agent.routes.retain(|r| r.id != id);
                if agent.routes.len() < before {
                    "removed".into()
                } else {
                    "UnknownRoute".into()
                }
            }
            Op::Stop(a) => {
                let agent = &mut self.agents[a % n];
                let letters: Vec<String> = if agent.stopped {
                    Vec::new()
                } else {
                    agent.stopped = true;
                    agent
                        .mailbox
                        .drain(..)
                        .map(|m| dead_letter(&m.signal, "AgentStopped", m.call))
                        .collect()
                };
                self.dead_lettered += letters.len() as u64;
                format!("stopped, dead letters {letters:?}")
            }
            Op::Run => format!("ran {}", self.run()),
        })
    }

    fn finish(mut self, steps: Vec<String>) -> Outcome {
        let mut dead_letters = Vec::new();
        for agent in self.agents.iter_mut().filter(|a| !a.stopped) {
            for m in agent.mailbox.drain(..) {
                let letter = dead_letter(&m.signal, "Shutdown", m.call);
                dead_letters.push(format!("{letter}@{}", agent.index));
            }
        }
        self.dead_lettered += dead_letters.len() as u64;
        self.callbacks.sort();
        self.undelivered.sort();
        Outcome {
            steps,
            callbacks: self.callbacks,
            undelivered: self.undelivered,
            dead_letters,
            metrics: [
                self.accepted,
                self.processed,
                self.dead_lettered,
                self.failed,
                self.panicked,
                self.refused_full,
            ],
            states: self
                .agents
                .iter()
                .map(|a| format!("{:?}", a.state))
                .collect(),
        }
    }
}

fn capacity(kind: Kind) -> usize {
    match kind {
        Kind::Log => LOG_CAPACITY,
        Kind::Tiny => TINY_CAPACITY,
    }
}

// ---------------------------------------------------------------- the runtime

struct Real {
    rt: Runtime,
    agents: Vec<(Kind, AgentRef<State, u64>)>,
    subs: Vec<SubscriptionId>,
    added: Vec<Vec<RouteId>>,
    callbacks: Arc<Mutex<Vec<String>>>,
}

impl Real {
    fn new(strategy: Impl, batch: usize) -> Self {
        let rt = Runtime::builder()
            .deterministic()
            .strategy(strategy)
            .batch_size(batch)
            .build()
            .unwrap();
        Real {
            rt,
            agents: Vec::new(),
            subs: Vec::new(),
            added: Vec::new(),
            callbacks: Arc::default(),
        }
    }

    fn index_of(&self, id: agentry::AgentId) -> usize {
        self.agents
            .iter()
            .position(|(_, a)| a.id() == id)
            .unwrap_or(usize::MAX)
    }

    fn send_error(&self, e: &SendError, sent: &Signal) -> String {
        assert_eq!(
            e.signal(),
            sent,
            "a refused signal must come back unchanged"
        );
        format!("{}@{}", kind_name(e.kind()), self.index_of(e.agent()))
    }

    fn spawn(&mut self, kind: Kind) {
        let index = self.agents.len();
        let agent = self.rt.spawn(&spec(kind, index)).unwrap();
        self.agents.push((kind, agent));
        self.added.push(Vec::new());
    }

    fn apply(&mut self, op: &Op) -> Option<String> {
        let n = self.agents.len();
        Some(match op {
            Op::Spawn(kind) => {
                self.spawn(*kind);
                format!("spawned {}", n)
            }
            Op::Send(a, t, d) => {
                let s = driver_signal(*t, d);
                match self.agents[a % n].1.send(s.clone()) {
                    Ok(()) => "ok".into(),
                    Err(e) => format!("refused {}", self.send_error(&e, &s)),
                }
            }
            Op::Call(a, t, d) => {
                let s = driver_signal(*t, d);
                match self.agents[a % n].1.call(s.clone(), Duration::from_secs(5)) {
                    Ok(n) => format!("Ok({n})"),
                    Err(CallError::Send(e)) => format!("call refused {}", self.send_error(&e, &s)),
                    Err(CallError::Action(e)) => format!("Action({:?}: {})", e.kind(), e.text()),
                    Err(other) => format!("{other:?}"),
                }
            }
            Op::State(a) => format!("{:?}", *self.agents[a % n].1.state().unwrap()),
            Op::Query(a) => format!(
                "{:?}",
                self.agents[a % n]
                    .1
                    .query(driver_signal(6, &Data { len: 0, seed: 0 }))
            ),
            Op::Publish(t, d) => match self.rt.bus().publish(driver_signal(*t, d)) {
                Err(PublishError::NoSubscribers(_)) => "NoSubscribers".into(),
                Err(e) => format!("{e:?}"),
                Ok(report) => {
                    let failures: Vec<String> = report
                        .failures
                        .iter()
                        .map(|f| match f {
                            DeliveryFailure::Refused(e) => {
                                format!("{}@{}", kind_name(e.kind()), self.index_of(e.agent()))
                            }
                            other => format!("{other:?}"),
                        })
                        .collect();
                    format!("delivered {}, failures {failures:?}", report.delivered)
                }
            },
            Op::Subscribe(p, target) => {
                let bus = self.rt.bus();
                let id = match target {
                    Target::Agent(a) => {
                        let logs: Vec<&AgentRef<State, u64>> = self
                            .agents
                            .iter()
                            .filter(|(k, _)| *k == Kind::Log)
                            .map(|(_, r)| r)
                            .collect();
                        if logs.is_empty() {
                            return None;
                        }
                        bus.subscribe_agent(PATTERNS[*p], &logs[a % logs.len()].addr())
                            .unwrap()
                    }
                    Target::Callback(c) => {
                        let (c, log) = (*c, self.callbacks.clone());
                        bus.subscribe(PATTERNS[*p], move |s: &Signal| {
                            log.lock().unwrap().push(format!("cb{c}:{}", entry(s)))
                        })
                        .unwrap()
                    }
                };
                self.subs.push(id);
                format!("sub {}", self.subs.len() - 1)
            }
            Op::Unsubscribe(k) => {
                if self.subs.is_empty() {
                    return None;
                }
                match self.rt.bus().unsubscribe(self.subs[k % self.subs.len()]) {
                    Ok(()) => "unsubscribed".into(),
                    Err(RouteError::UnknownRoute { .. }) => "UnknownRoute".into(),
                    Err(e) => format!("{e:?}"),
                }
            }
            Op::AddRoute(a, p, x, priority) => {
                let a = a % n;
                match self.agents[a]
                    .1
                    .add_route(RouteSpec::new(PATTERNS[*p], ACTIONS[*x]).priority(*priority))
                {
                    Ok(id) => {
                        self.added[a].push(id);
                        format!("route {}", id.get())
                    }
                    Err(RouteError::PriorityOutOfRange { .. }) => "PriorityOutOfRange".into(),
                    Err(RouteError::UnknownAction { .. }) => "UnknownAction".into(),
                    Err(e) => format!("{e:?}"),
                }
            }
            Op::RemoveRoute(a, k) => {
                let a = a % n;
                if self.added[a].is_empty() {
                    return None;
                }
                let id = self.added[a][k % self.added[a].len()];
                match self.agents[a].1.remove_route(id) {
                    Ok(()) => "removed".into(),
                    Err(RouteError::UnknownRoute { .. }) => "UnknownRoute".into(),
                    Err(e) => format!("{e:?}"),
                }
            }
            Op::Stop(a) => {
                let report = self.agents[a % n].1.stop();
                let letters: Vec<String> = report
                    .dead_letters
                    .iter()
                    .map(|d| dead_letter(&d.signal, &format!("{:?}", d.reason), d.was_call))
                    .collect();
                format!("stopped, dead letters {letters:?}")
            }
            Op::Run => format!("ran {}", self.rt.run_until_idle().unwrap()),
        })
    }

    fn finish(self, steps: Vec<String>) -> Outcome {
        let agents = self.agents;
        let index_of = |id| {
            agents
                .iter()
                .position(|(_, a)| a.id() == id)
                .unwrap_or(usize::MAX)
        };
        let report = self.rt.shutdown();
        let dead_letters = report
            .dead_letters
            .iter()
            .map(|d| {
                let letter = dead_letter(&d.signal, &format!("{:?}", d.reason), d.was_call);
                format!("{letter}@{}", index_of(d.agent))
            })
            .collect();
        let mut undelivered: Vec<String> = report
            .undelivered
            .iter()
            .map(|u| match &u.failure {
                DeliveryFailure::NoSubscribers(s) => format!("NoSubscribers:{}", s.ty()),
                DeliveryFailure::Refused(e) => {
                    format!("Refused:{}@{}", kind_name(e.kind()), index_of(e.agent()))
                }
                other => format!("{other:?}"),
            })
            .collect();
        undelivered.sort();
        assert_eq!(report.metrics.undelivered, undelivered.len() as u64);
        let mut callbacks = self.callbacks.lock().unwrap().clone();
        callbacks.sort();
        let m = report.metrics;
        Outcome {
            steps,
            callbacks,
            undelivered,
            dead_letters,
            metrics: [
                m.accepted,
                m.processed,
                m.dead_lettered,
                m.failed_actions,
                m.panicked_actions,
                m.refused_full,
            ],
            states: agents
                .iter()
                .map(|(_, a)| format!("{:?}", *a.state().unwrap()))
                .collect(),
        }
    }
}

/// Every implementation strategy, with two batch sizes for batching.
fn strategies() -> Vec<(String, Impl, usize)> {
    let mut all = Vec::new();
    for fast_path in [false, true] {
        for pool in [PoolKind::Allocate, PoolKind::FreeList, PoolKind::ObjectPool] {
            for (batching, batch) in [(false, 1), (true, 3), (true, 64)] {
                let s = Impl {
                    fast_path,
                    pool,
                    batching,
                };
                all.push((format!("{s:?} batch {batch}"), s, batch));
            }
        }
    }
    all
}

fn run_model(ops: &[Op]) -> Outcome {
    let mut model = Model::default();
    model.spawn(Kind::Log);
    model.spawn(Kind::Tiny);
    let mut steps = Vec::new();
    for op in ops {
        if let Some(s) = model.apply(op) {
            steps.push(s);
        }
    }
    model.finish(steps)
}

fn run_real(ops: &[Op], strategy: Impl, batch: usize) -> Outcome {
    let mut real = Real::new(strategy, batch);
    real.spawn(Kind::Log);
    real.spawn(Kind::Tiny);
    let mut steps = Vec::new();
    for op in ops {
        if let Some(s) = real.apply(op) {
            steps.push(s);
        }
    }
    real.finish(steps)
}

fn compare(expected: &Outcome, got: &Outcome, name: &str) -> Result<(), TestCaseError> {
    for (i, (e, g)) in expected.steps.iter().zip(&got.steps).enumerate() {
        prop_assert_eq!(e, g, "{}: step {} differs", name, i);
    }
    prop_assert_eq!(expected, got, "{}", name);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_strategy_matches_the_model(ops in prop::collection::vec(op(), 1..48)) {
        quiet_panics();
        let expected = run_model(&ops);
        for (name, strategy, batch) in strategies() {
            let got = run_real(&ops, strategy, batch);
            compare(&expected, &got, &name)?;
        }
    }
}

#[test]
fn a_hand_written_sequence_matches_the_model() {
    quiet_panics();
    let d = |len| Data { len, seed: 7 };
    let ops = vec![
        Op::Subscribe(4, Target::Agent(0)),
        Op::Subscribe(2, Target::Callback(1)),
        Op::Send(0, 4, d(10)),
        Op::Send(0, 0, d(65536)),
        Op::Send(1, 0, d(1)),
        Op::Send(1, 2, d(2)),
        Op::Send(1, 3, d(3)),
        Op::Call(0, 2, d(0)),
        Op::Call(0, 3, d(0)),
        Op::AddRoute(0, 1, 0, 50),
        Op::Send(0, 0, d(5)),
        Op::State(0),
        Op::Query(0),
        Op::Publish(4, d(100)),
        Op::Send(1, 1, d(4)),
        Op::Stop(1),
        Op::Send(1, 0, d(1)),
        Op::Run,
        Op::Spawn(Kind::Log),
        Op::Send(2, 1, d(9)),
    ];
    let expected = run_model(&ops);
    for (name, strategy, batch) in strategies() {
        let got = run_real(&ops, strategy, batch);
        assert_eq!(expected, got, "{name}");
    }
    // The sequence must exercise what it claims to.
    let all = expected.steps.join("\n");
    for needle in [
        "Full(2)@1",
        "Action(Rejected",
        "Action(Panicked",
        "Stopped@1",
        "dead letters [\"",
        ":AgentStopped\"",
        "|/driver|",
        "delivered",
    ] {
        assert!(all.contains(needle), "missing {needle} in\n{all}");
    }
    // The last send is still queued at shutdown.
    assert!(
        expected
            .dead_letters
            .iter()
            .any(|d| d.ends_with(":Shutdown@2")),
        "{:?}",
        expected.dead_letters
    );
}
