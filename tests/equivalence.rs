//! The equivalence proof: random operation sequences run through a plain
//! reference model and through the runtime under every implementation
//! strategy compiled into this build; everything observable must be
//! identical, in order.
//!
//! The model is written from the documented semantics (the crate docs and the
//! README's "Decided semantics"), not from the runtime's code: routing uses
//! `Pattern::matches` (the reference matcher) and its own ordering function;
//! scheduling is the deterministic rule the README states (one FIFO run
//! queue, a turn runs one batch, an agent with work left rejoins at the back,
//! an inline call or read keeps the agent's place); data is the model's own
//! `Vec<u8>`, never a `Payload`, so the payload buffer the build selects
//! (`zero-copy` or not) is checked against an independent oracle.
//!
//! Deterministic runs are compared exactly: every step's result, every
//! agent's log in processing order (with the route and whether it was a
//! call), one event log of bus callbacks and failure-hook calls in the order
//! they ran (each hook call with what it read of every agent at that
//! moment), undelivered emits and dead letters in order, and every metric.
//! Actions emit to the bus and send to other agents and to themselves,
//! including 2-slot mailboxes, so which signal meets a full mailbox depends
//! on the schedule, and the model predicts it for each batch size. Agents
//! come in both atomicity modes (`Rollback`, and `InPlace`, where an error
//! keeps the action's changes and a panic restarts the agent).
//!
//! Threaded runs (`threaded_runs_match_the_model_per_sender`) are compared
//! on what threads cannot reorder: each agent's log per sender, callbacks
//! per sender, failures per agent, and the counters.
//!
//! `EQUIVALENCE_CASES=n` raises the number of cases (default 1,000) for a
//! long run.

mod common;

use agentry::imp::Strategy as Impl;
use agentry::router::Pattern;
use agentry::{
    ActionError, AgentAddr, AgentId, AgentRef, AgentSpec, Atomicity, CallError, DeliveryFailure,
    Instruction, PublishError, QueryError, RouteError, RouteId, RouteSpec, Runtime, SendError,
    SendErrorKind, Signal, SubscriptionId, UndeliveredFrom,
};
use common::{all_strategies as strategies, quiet_panics};
use proptest::prelude::*;
use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------- the world

const TYPES: &[&str] = &[
    "rec.a", "rec.b", "fail.a", "panic.a", "emit.a", "emit.b", "relay.a", "q.count", "other.x",
    "fwd.a",
];
const PATTERNS: &[&str] = &[
    "rec.*", "rec.**", "**", "*.a", "fwd.*", "emit.*", "fail.*", "other.x", "*.b", "**.b",
    "relay.*",
];
const ACTIONS: &[&str] = &["rec", "fail", "panic", "emit", "relay"];
/// Routes every agent starts with, in registration order (ids 0..).
const SPEC_ROUTES: &[(&str, &str)] = &[
    ("rec.*", "rec"),
    ("fail.*", "fail"),
    ("panic.*", "panic"),
    ("emit.*", "emit"),
    ("relay.*", "relay"),
    ("fwd.*", "rec"),
];
/// The callback subscriber that panics (after recording its call).
const PANICKING_CALLBACK: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Big,
    Tiny,
    /// Big, with `Atomicity::InPlace`: a failed action's changes stay, a
    /// panic restarts the agent from its initial (empty) log.
    InPlace,
}

fn capacity(kind: Kind) -> usize {
    match kind {
        Kind::Big | Kind::InPlace => 100_000,
        Kind::Tiny => 2,
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn entry_text(ty: &str, source: &str, data: &[u8]) -> String {
    format!("{ty}|{source}|{}|{:x}", data.len(), fnv(data))
}

/// A signal as compared: type, source and data. Not the id: each executor
/// builds its own signals, with fresh UUIDv7 ids.
fn entry_of(signal: &Signal) -> String {
    entry_text(signal.ty(), signal.source(), signal.data().as_ref())
}

/// What an agent's log holds for one action run.
fn log_line(entry: &str, route: u64, call: bool) -> String {
    format!("{entry}|r{route}|{}", if call { "call" } else { "send" })
}

/// Where a `relay` action sends its two copies: functions of the data, over
/// every agent spawned so far (itself included). Two, because one action
/// that sends twice to a 2-slot mailbox (its own, say) is what separates a
/// capacity rule that counts a taken batch from one that does not.
fn relay_targets(len: usize, agents: usize) -> [usize; 2] {
    [len % agents, (len / 3) % agents]
}

fn dead_letter(entry: &str, reason: &str, was_call: bool) -> String {
    let call = if was_call { "(call)" } else { "" };
    format!("{entry}:{reason}{call}")
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
    MailboxLen(usize),
    Publish(usize, Data),
    Subscribe(usize, Target),
    Unsubscribe(usize),
    AddRoute {
        agent: usize,
        pattern: usize,
        action: usize,
        priority: i32,
        even_only: bool,
    },
    RemoveRoute(usize, usize),
    Stop(usize),
    Run,
    Steps(u64),
}

fn data() -> impl Strategy<Value = Data> {
    let len = prop_oneof![
        8 => 0usize..64,
        2 => 64usize..4096,
        1 => 4096usize..=65536,
    ];
    (len, any::<u8>()).prop_map(|(len, seed)| Data { len, seed })
}

fn op(threaded: bool) -> BoxedStrategy<Op> {
    // Threaded runs have no in-place agents: a panic there restarts the
    // agent from its initial state, wiping whatever other senders' signals
    // happened to arrive before it, which threads order freely.
    let kind = if threaded {
        Just(Kind::Big).boxed()
    } else {
        prop_oneof![2 => Just(Kind::Big), 2 => Just(Kind::Tiny), 1 => Just(Kind::InPlace)].boxed()
    };
    let priority = prop_oneof![10 => -100i32..=100, 1 => Just(101i32)];
    let target = prop_oneof![
        3 => (0usize..8).prop_map(Target::Agent),
        1 => (0usize..3).prop_map(Target::Callback),
    ];
    let route = (
        0usize..8,
        0..PATTERNS.len(),
        0..ACTIONS.len(),
        priority,
        any::<bool>(),
    )
        .prop_map(
            |(agent, pattern, action, priority, even_only)| Op::AddRoute {
                agent,
                pattern,
                action,
                priority,
                even_only,
            },
        );
    let untimed = prop_oneof![
        2 => kind.prop_map(Op::Spawn),
        12 => (0usize..8, 0..TYPES.len(), data()).prop_map(|(a, t, d)| Op::Send(a, t, d)),
        3 => (0..TYPES.len(), data()).prop_map(|(t, d)| Op::Publish(t, d)),
        2 => (0..PATTERNS.len(), target).prop_map(|(p, t)| Op::Subscribe(p, t)),
        1 => (0usize..8).prop_map(Op::Unsubscribe),
        2 => route,
        1 => (0usize..8, 0usize..4).prop_map(|(a, n)| Op::RemoveRoute(a, n)),
        3 => Just(Op::Run),
    ];
    if threaded {
        // Calls, reads, stops and bounded driving observe timing on a
        // threaded runtime; its sequences leave them out.
        return untimed.boxed();
    }
    prop_oneof![
        23 => untimed,
        3 => (0usize..8, 0..TYPES.len(), data()).prop_map(|(a, t, d)| Op::Call(a, t, d)),
        2 => (0usize..8).prop_map(Op::State),
        1 => (0usize..8).prop_map(Op::Query),
        1 => (0usize..8).prop_map(Op::MailboxLen),
        1 => (0usize..8).prop_map(Op::Stop),
        2 => (1u64..6).prop_map(Op::Steps),
    ]
    .boxed()
}

/// What an executor reports; compared with `==` across executors.
#[derive(Debug, PartialEq)]
struct Outcome {
    steps: Vec<String>,
    /// Bus callbacks and failure-hook calls, in the order they ran.
    events: Vec<String>,
    undelivered: Vec<String>,
    dead_letters: Vec<String>,
    metrics: Vec<(&'static str, u64)>,
    states: Vec<Vec<String>>,
}

// ---------------------------------------------------------------- the model

/// A signal as the model holds it: its own bytes.
#[derive(Clone, Debug)]
struct Msg {
    ty: String,
    source: String,
    data: Vec<u8>,
}

impl Msg {
    /// A driver's signal for an operation.
    fn driver(ty: usize, data: &Data) -> Msg {
        Msg {
            ty: TYPES[ty].to_owned(),
            source: "/driver".into(),
            data: data.bytes(),
        }
    }

    fn entry(&self) -> String {
        entry_text(&self.ty, &self.source, &self.data)
    }

    /// What an `emit`, `fail`, `panic` or `relay` action sends on: a copy
    /// of a driver signal (only driver signals: chains stay one hop long).
    fn forwarded(&self, from: usize) -> Option<Msg> {
        (self.source == "/driver").then(|| Msg {
            ty: "fwd.a".into(),
            source: format!("/agent/{from}"),
            data: self.data.clone(),
        })
    }
}

struct MRoute {
    id: u64,
    pattern: &'static str,
    action: &'static str,
    priority: i32,
    even_only: bool,
}

struct MMsg {
    msg: Msg,
    /// Resolved when accepted: action and route id, in route order.
    actions: Vec<(&'static str, u64)>,
    call: bool,
}

struct MAgent {
    kind: Kind,
    state: Vec<String>,
    /// Accepted and not started; the front `carry` ones are the rest of a
    /// batch a call interrupted.
    mailbox: VecDeque<MMsg>,
    carry: Option<usize>,
    routes: Vec<MRoute>,
    next_route: u64,
    added: Vec<u64>,
    stopped: bool,
    /// The claim word's "notified" bit and "running" bit.
    notified: bool,
    running: bool,
    /// Entries for this agent in the run queue.
    entries: usize,
}

struct MSub {
    id: u64,
    pattern: &'static str,
    target: Target,
}

enum Out {
    Publish(Msg),
    Send(usize, Msg),
}

#[derive(Default)]
struct Counters {
    accepted: u64,
    processed: u64,
    dead_lettered: u64,
    failed: u64,
    panicked: u64,
    refused_full: u64,
    undelivered: u64,
}

struct Model {
    /// Instructions per turn: the batch size with `batching`, else 1.
    quantum: usize,
    agents: Vec<MAgent>,
    queue: VecDeque<usize>,
    subs: Vec<MSub>,
    sub_ids: Vec<u64>,
    next_sub: u64,
    events: Vec<String>,
    undelivered: Vec<String>,
    c: Counters,
    reply: Option<String>,
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

impl Model {
    fn new(quantum: usize) -> Self {
        Model {
            quantum,
            agents: Vec::new(),
            queue: VecDeque::new(),
            subs: Vec::new(),
            sub_ids: Vec::new(),
            next_sub: 0,
            events: Vec::new(),
            undelivered: Vec::new(),
            c: Counters::default(),
            reply: None,
        }
    }

    fn spawn(&mut self, kind: Kind) {
        let routes: Vec<MRoute> = SPEC_ROUTES
            .iter()
            .enumerate()
            .map(|(i, &(pattern, action))| MRoute {
                id: i as u64,
                pattern,
                action,
                priority: 0,
                even_only: false,
            })
            .collect();
        self.agents.push(MAgent {
            kind,
            state: Vec::new(),
            mailbox: VecDeque::new(),
            carry: None,
            next_route: routes.len() as u64,
            routes,
            added: Vec::new(),
            stopped: false,
            notified: false,
            running: false,
            entries: 0,
        });
    }

    fn resolve(agent: &MAgent, msg: &Msg) -> Vec<(&'static str, u64)> {
        let mut hits: Vec<&MRoute> = agent
            .routes
            .iter()
            .filter(|r| {
                matches(r.pattern, &msg.ty) && (!r.even_only || msg.data.len().is_multiple_of(2))
            })
            .collect();
        hits.sort_by(|a, b| order((a.pattern, a.priority, a.id), (b.pattern, b.priority, b.id)));
        hits.into_iter().map(|r| (r.action, r.id)).collect()
    }

    /// As `AgentRef::send` before it announces the work: route, then check
    /// stopped, then capacity.
    fn accept(&mut self, a: usize, msg: Msg, call: bool) -> Result<(), String> {
        let agent = &mut self.agents[a];
        let actions = Self::resolve(agent, &msg);
        let refused = if actions.is_empty() {
            Some("NoRoute".to_string())
        } else if agent.stopped {
            Some("Stopped".into())
        } else if agent.mailbox.len() >= capacity(agent.kind) {
            self.c.refused_full += 1;
            Some(format!("Full({})", capacity(agent.kind)))
        } else {
            None
        };
        if let Some(kind) = refused {
            return Err(format!("{kind}@{a}"));
        }
        agent.mailbox.push_back(MMsg { msg, actions, call });
        self.c.accepted += 1;
        Ok(())
    }

    /// A send: accept, then announce (an idle agent joins the run queue).
    fn send(&mut self, a: usize, msg: Msg) -> Result<(), String> {
        self.accept(a, msg, false)?;
        let agent = &mut self.agents[a];
        if !agent.notified {
            agent.notified = true;
            if !agent.running {
                self.push_entry(a);
            }
        }
        Ok(())
    }

    fn push_entry(&mut self, a: usize) {
        self.agents[a].entries += 1;
        self.queue.push_back(a);
    }

    fn has_work(&self, a: usize) -> bool {
        !self.agents[a].mailbox.is_empty()
    }

    /// Pops one run-queue entry; a current one runs a turn of one batch.
    fn drive_one(&mut self) -> bool {
        let Some(a) = self.queue.pop_front() else {
            return false;
        };
        self.agents[a].entries -= 1;
        if self.agents[a].notified && !self.agents[a].running {
            self.agents[a].notified = false;
            self.agents[a].running = true;
            self.run_batch(a, false);
            self.agents[a].running = false;
            if self.has_work(a) || self.agents[a].notified {
                self.agents[a].notified = true;
                self.push_entry(a);
            } else {
                self.agents[a].notified = false;
            }
        }
        true
    }

    fn run_until_idle(&mut self) -> u64 {
        let before = self.c.processed;
        while self.drive_one() {}
        self.c.processed - before
    }

    /// A deterministic call: accept without announcing, run the agent on
    /// this thread up to the call's own instruction, then release it in
    /// place (no new entry while one is queued).
    fn call(&mut self, a: usize, msg: Msg) -> String {
        if let Err(e) = self.accept(a, msg, true) {
            return format!("call refused {e}");
        }
        self.reply = None;
        self.agents[a].notified = false;
        self.agents[a].running = true;
        loop {
            let n = self.run_batch(a, true);
            if n == 0 || self.reply.is_some() {
                break;
            }
        }
        self.agents[a].running = false;
        let work = self.has_work(a) || self.agents[a].notified;
        if self.agents[a].entries > 0 {
            self.agents[a].notified = work;
        } else if work {
            self.agents[a].notified = true;
            self.push_entry(a);
        } else {
            self.agents[a].notified = false;
        }
        self.reply.take().unwrap_or_else(|| "not processed".into())
    }

    /// One batch: the rest of an interrupted one, or up to `quantum` from
    /// the front. A caller's batch ends at its own instruction.
    fn run_batch(&mut self, a: usize, caller: bool) -> usize {
        let (count, batched) = match self.agents[a].carry.take() {
            Some(rest) => (rest, true),
            None => {
                let n = self.quantum.min(self.agents[a].mailbox.len());
                (n, n > 1)
            }
        };
        let mut left = count;
        let mut n = 0;
        while left > 0 {
            let Some(m) = self.agents[a].mailbox.pop_front() else {
                break;
            };
            left -= 1;
            let mine = caller && m.call;
            self.process(a, m);
            n += 1;
            if mine {
                if batched && left > 0 {
                    self.agents[a].carry = Some(left);
                }
                break;
            }
        }
        n
    }

    /// Runs one instruction's actions, each atomically, then (if anything
    /// leaves the agent) reports failures, delivers what it sent, replies.
    fn process(&mut self, a: usize, m: MMsg) {
        let mut first: Option<u64> = None;
        let mut failures: Vec<(u64, String)> = Vec::new();
        let mut outbound: Vec<Out> = Vec::new();
        let entry = m.msg.entry();
        let agents = self.agents.len();
        for (i, &(action, route)) in m.actions.iter().enumerate() {
            let agent = &mut self.agents[a];
            let saved = agent.state.len();
            let mark = outbound.len();
            agent.state.push(log_line(&entry, route, m.call));
            let forwarded = m.msg.forwarded(a);
            let result = match action {
                "rec" => Ok(()),
                "emit" => {
                    outbound.extend(forwarded.map(Out::Publish));
                    Ok(())
                }
                "relay" => {
                    if let Some(f) = forwarded {
                        for to in relay_targets(m.msg.data.len(), agents) {
                            outbound.push(Out::Send(to, f.clone()));
                        }
                    }
                    Ok(())
                }
                "fail" => {
                    outbound.extend(forwarded.map(Out::Publish));
                    Err(("Rejected: deliberate failure", false))
                }
                _ => {
                    outbound.extend(forwarded.map(Out::Publish));
                    Err(("Panicked: deliberate panic", true))
                }
            };
            match result {
                Ok(()) => {
                    if i == 0 {
                        first = Some(agent.state.len() as u64);
                    }
                }
                Err((error, panicked)) => {
                    match agent.kind {
                        Kind::InPlace if panicked => agent.state.clear(),
                        Kind::InPlace => {}
                        Kind::Big | Kind::Tiny => agent.state.truncate(saved),
                    }
                    outbound.truncate(mark);
                    self.c.failed += 1;
                    self.c.panicked += u64::from(panicked);
                    failures.push((route, error.to_owned()));
                }
            }
        }
        self.c.processed += 1;
        if !m.call && outbound.is_empty() && failures.is_empty() {
            return;
        }
        for (route, error) in &failures {
            // What the hook reads of every agent: the committed states; its
            // own agent is running, so reading it is `Reentrant`.
            let seen: Vec<String> = (0..self.agents.len())
                .map(|j| {
                    if j == a {
                        "R".to_owned()
                    } else {
                        self.agents[j].state.len().to_string()
                    }
                })
                .collect();
            self.events.push(format!(
                "hook {a} r{route} {error} call={} {entry} sees {seen:?}",
                m.call
            ));
        }
        for out in outbound {
            match out {
                Out::Publish(f) => {
                    self.publish(f, Some(a));
                }
                Out::Send(to, f) => {
                    if let Err(e) = self.send(to, f) {
                        self.c.undelivered += 1;
                        self.undelivered.push(format!("{a}:Refused:{e}"));
                    }
                }
            }
        }
        if m.call {
            self.reply = Some(match (failures.first(), first) {
                (Some((_, e)), _) => format!("Action({e})"),
                (None, Some(n)) => format!("Ok({n})"),
                (None, None) => "no reply".into(),
            });
        }
    }

    /// Publishes to every matching subscriber in order; `from` is the
    /// emitting agent (its failures are undelivered), `None` the driver.
    fn publish(&mut self, msg: Msg, from: Option<usize>) -> String {
        let mut subs: Vec<&MSub> = self
            .subs
            .iter()
            .filter(|s| matches(s.pattern, &msg.ty))
            .collect();
        subs.sort_by(|a, b| order((a.pattern, 0, a.id), (b.pattern, 0, b.id)));
        if subs.is_empty() {
            if let Some(from) = from {
                self.c.undelivered += 1;
                self.undelivered
                    .push(format!("{from}:NoSubscribers:{}", msg.ty));
            }
            return "NoSubscribers".into();
        }
        let targets: Vec<Target> = subs.iter().map(|s| s.target.clone()).collect();
        let mut delivered = 0;
        let mut failures = Vec::new();
        for target in targets {
            match target {
                Target::Agent(t) => match self.send(t, msg.clone()) {
                    Ok(()) => delivered += 1,
                    Err(e) => failures.push(format!("Refused:{e}")),
                },
                Target::Callback(c) => {
                    self.events.push(format!("cb{c}:{}", msg.entry()));
                    if c == PANICKING_CALLBACK {
                        failures.push("CallbackPanicked".into());
                    } else {
                        delivered += 1;
                    }
                }
            }
        }
        if let Some(from) = from {
            for f in &failures {
                self.c.undelivered += 1;
                self.undelivered.push(format!("{from}:{f}"));
            }
        }
        format!("delivered {delivered}, failures {failures:?}")
    }

    fn apply(&mut self, op: &Op) -> Option<String> {
        let n = self.agents.len();
        Some(match op {
            Op::Spawn(kind) => {
                self.spawn(*kind);
                format!("spawned {n}")
            }
            Op::Send(a, t, d) => match self.send(a % n, Msg::driver(*t, d)) {
                Ok(()) => "ok".into(),
                Err(e) => format!("refused {e}"),
            },
            Op::Call(a, t, d) => self.call(a % n, Msg::driver(*t, d)),
            Op::State(a) => format!("{:?}", self.agents[a % n].state),
            Op::Query(a) => format!("Ok({})", self.agents[a % n].state.len()),
            Op::MailboxLen(a) => format!("len {}", self.agents[a % n].mailbox.len()),
            Op::Publish(t, d) => self.publish(Msg::driver(*t, d), None),
            Op::Subscribe(p, target) => {
                let target = match target {
                    Target::Agent(a) => Target::Agent(a % n),
                    cb => cb.clone(),
                };
                let id = self.next_sub;
                self.next_sub += 1;
                self.subs.push(MSub {
                    id,
                    pattern: PATTERNS[*p],
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
            Op::AddRoute {
                agent,
                pattern,
                action,
                priority,
                even_only,
            } => {
                let agent = &mut self.agents[agent % n];
                if !(-100..=100).contains(priority) {
                    "PriorityOutOfRange".into()
                } else {
                    let id = agent.next_route;
                    agent.next_route += 1;
                    agent.routes.push(MRoute {
                        id,
                        pattern: PATTERNS[*pattern],
                        action: ACTIONS[*action],
                        priority: *priority,
                        even_only: *even_only,
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
                    agent.carry = None;
                    agent
                        .mailbox
                        .drain(..)
                        .map(|m| dead_letter(&m.msg.entry(), "AgentStopped", m.call))
                        .collect()
                };
                self.c.dead_lettered += letters.len() as u64;
                format!("stopped, dead letters {letters:?}")
            }
            Op::Run => format!("ran {}", self.run_until_idle()),
            Op::Steps(max) => {
                let before = self.c.processed;
                let mut turns = 0;
                while turns < *max && self.drive_one() {
                    turns += 1;
                }
                format!(
                    "steps {turns}, processed {}, idle {}",
                    self.c.processed - before,
                    self.queue.is_empty()
                )
            }
        })
    }

    fn finish(mut self, steps: Vec<String>) -> Outcome {
        let mut dead_letters = Vec::new();
        for (index, agent) in self.agents.iter_mut().enumerate() {
            if agent.stopped {
                continue;
            }
            for m in agent.mailbox.drain(..) {
                let letter = dead_letter(&m.msg.entry(), "Shutdown", m.call);
                dead_letters.push(format!("{letter}@{index}"));
            }
        }
        self.c.dead_lettered += dead_letters.len() as u64;
        let live = self.agents.iter().filter(|a| !a.stopped).count() as u64;
        Outcome {
            steps,
            events: self.events,
            undelivered: self.undelivered,
            dead_letters,
            metrics: vec![
                ("accepted", self.c.accepted),
                ("processed", self.c.processed),
                ("dead_lettered", self.c.dead_lettered),
                ("failed_actions", self.c.failed),
                ("panicked_actions", self.c.panicked),
                ("refused_full", self.c.refused_full),
                ("undelivered", self.c.undelivered),
                ("spawned", self.agents.len() as u64),
                ("live_agents", live),
            ],
            states: self.agents.into_iter().map(|a| a.state).collect(),
        }
    }
}

// ---------------------------------------------------------------- the runtime

type State = Vec<String>;

/// The agents of one runtime, for `relay` actions and the failure hook.
#[derive(Default)]
struct Directory {
    addrs: Vec<AgentAddr>,
    refs: Vec<AgentRef<State, u64>>,
}

type Shared<T> = Arc<Mutex<T>>;

fn index_in(dir: &Directory, id: AgentId) -> usize {
    dir.refs
        .iter()
        .position(|a| a.id() == id)
        .unwrap_or(usize::MAX)
}

fn record(s: &mut State, ins: &Instruction) -> u64 {
    let route = ins.route().map_or(u64::MAX, RouteId::get);
    s.push(log_line(&entry_of(ins.signal()), route, ins.is_call()));
    s.len() as u64
}

fn forwarded(index: usize, ins: &Instruction) -> Option<Signal> {
    (ins.source() == "/driver").then(|| {
        Signal::builder("fwd.a", format!("/agent/{index}"))
            .data(ins.data().clone())
            .build()
            .expect("valid forwarded signal")
    })
}

/// The agent type under test; every agent gets its own spec so that its
/// forwarded signals name it.
fn spec(kind: Kind, index: usize, dir: Shared<Directory>) -> AgentSpec<State, u64> {
    let mut spec = AgentSpec::<State, u64>::new(State::new())
        .action("rec", |s: &mut State, ins: &mut Instruction| {
            Ok(record(s, ins))
        })
        .action("fail", move |s: &mut State, ins: &mut Instruction| {
            // Mutates and emits, then fails: both must be undone.
            record(s, ins);
            if let Some(f) = forwarded(index, ins) {
                ins.emit(f);
            }
            Err(ActionError::rejected("deliberate failure"))
        })
        .action("panic", move |s: &mut State, ins: &mut Instruction| {
            record(s, ins);
            if let Some(f) = forwarded(index, ins) {
                ins.emit(f);
            }
            panic!("deliberate panic")
        })
        .action("emit", move |s: &mut State, ins: &mut Instruction| {
            let n = record(s, ins);
            if let Some(f) = forwarded(index, ins) {
                ins.emit(f);
            }
            Ok(n)
        })
        .action("relay", move |s: &mut State, ins: &mut Instruction| {
            let n = record(s, ins);
            if let Some(f) = forwarded(index, ins) {
                let to = {
                    let dir = dir.lock().unwrap();
                    relay_targets(ins.data().len(), dir.addrs.len()).map(|t| dir.addrs[t].clone())
                };
                ins.send_to(&to[0], f.clone());
                ins.send_to(&to[1], f);
            }
            Ok(n)
        })
        .query("q.*", |s: &State, _: &Signal| Ok(s.len() as u64))
        .mailbox_capacity(capacity(kind));
    if kind == Kind::InPlace {
        spec = spec.atomicity(Atomicity::InPlace);
    }
    for &(pattern, action) in SPEC_ROUTES {
        spec = spec.route(pattern, action);
    }
    spec
}

struct Real {
    rt: Runtime,
    dir: Shared<Directory>,
    events: Shared<Vec<String>>,
    subs: Vec<SubscriptionId>,
    added: Vec<Vec<RouteId>>,
    threaded: bool,
}

fn hook(
    dir: Shared<Directory>,
    events: Shared<Vec<String>>,
    observe: bool,
) -> impl Fn(&agentry::Failure<'_>) + Send + Sync + 'static {
    move |f| {
        let refs = dir.lock().unwrap().refs.clone();
        let a = refs
            .iter()
            .position(|r| r.id() == f.agent)
            .unwrap_or(usize::MAX);
        let seen: Vec<String> = if observe {
            refs.iter()
                .map(|r| match r.state() {
                    Ok(s) => s.len().to_string(),
                    Err(QueryError::Reentrant { .. }) => "R".to_owned(),
                    Err(e) => format!("{e}"),
                })
                .collect()
        } else {
            Vec::new()
        };
        let line = format!(
            "hook {a} r{} {:?}: {} call={} {} sees {seen:?}",
            f.route.get(),
            f.error.kind(),
            f.error.text(),
            f.call,
            entry_of(f.signal)
        );
        events.lock().unwrap().push(line);
    }
}

impl Real {
    fn new(strategy: Impl, batch: usize, threaded: bool) -> Self {
        let dir: Shared<Directory> = Arc::default();
        let events: Shared<Vec<String>> = Arc::default();
        let builder = if threaded {
            Runtime::builder().workers(2)
        } else {
            Runtime::builder().deterministic()
        };
        let rt = builder
            .strategy(strategy)
            .batch_size(batch)
            .on_failure(hook(dir.clone(), events.clone(), !threaded))
            .build()
            .unwrap();
        Real {
            rt,
            dir,
            events,
            subs: Vec::new(),
            added: Vec::new(),
            threaded,
        }
    }

    fn index_of(&self, id: AgentId) -> usize {
        index_in(&self.dir.lock().unwrap(), id)
    }

    fn agent(&self, a: usize) -> AgentRef<State, u64> {
        let dir = self.dir.lock().unwrap();
        dir.refs[a % dir.refs.len()].clone()
    }

    fn len(&self) -> usize {
        self.dir.lock().unwrap().refs.len()
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
        let index = self.len();
        let agent = self.rt.spawn(&spec(kind, index, self.dir.clone())).unwrap();
        let mut dir = self.dir.lock().unwrap();
        dir.addrs.push(agent.addr());
        dir.refs.push(agent);
        self.added.push(Vec::new());
    }

    /// Threaded: lets every accepted signal finish before the routes change,
    /// so that each signal meets the same routes as in the model.
    fn settle(&self) {
        if self.threaded {
            assert!(self.rt.wait_idle(Duration::from_secs(60)), "never idle");
        }
    }

    fn driver_signal(t: usize, d: &Data) -> Signal {
        Signal::builder(TYPES[t], "/driver")
            .data(d.bytes())
            .build()
            .unwrap()
    }

    fn apply(&mut self, op: &Op) -> Option<String> {
        let n = self.len();
        Some(match op {
            Op::Spawn(kind) => {
                self.settle();
                self.spawn(*kind);
                format!("spawned {n}")
            }
            Op::Send(a, t, d) => {
                let s = Self::driver_signal(*t, d);
                match self.agent(*a).send(s.clone()) {
                    Ok(()) => "ok".into(),
                    Err(e) => format!("refused {}", self.send_error(&e, &s)),
                }
            }
            Op::Call(a, t, d) => {
                let s = Self::driver_signal(*t, d);
                match self.agent(*a).call(s.clone(), Duration::from_secs(60)) {
                    Ok(n) => format!("Ok({n})"),
                    Err(CallError::Send(e)) => format!("call refused {}", self.send_error(&e, &s)),
                    Err(CallError::Action(e)) => format!("Action({:?}: {})", e.kind(), e.text()),
                    Err(other) => format!("{other:?}"),
                }
            }
            Op::State(a) => format!("{:?}", *self.agent(*a).state().unwrap()),
            Op::Query(a) => format!(
                "{:?}",
                self.agent(*a)
                    .query(Self::driver_signal(7, &Data { len: 0, seed: 0 }))
            ),
            Op::MailboxLen(a) => format!("len {}", self.agent(*a).mailbox_len()),
            Op::Publish(t, d) => match self.rt.bus().publish(Self::driver_signal(*t, d)) {
                Err(PublishError::NoSubscribers(_)) => "NoSubscribers".into(),
                Err(e) => format!("{e:?}"),
                Ok(report) => {
                    let failures: Vec<String> =
                        report.failures.iter().map(|f| self.failure(f)).collect();
                    format!("delivered {}, failures {failures:?}", report.delivered)
                }
            },
            Op::Subscribe(p, target) => {
                self.settle();
                let bus = self.rt.bus();
                let id = match target {
                    Target::Agent(a) => bus
                        .subscribe_agent(PATTERNS[*p], &self.agent(*a).addr())
                        .unwrap(),
                    Target::Callback(c) => {
                        let (c, log) = (*c, self.events.clone());
                        bus.subscribe(PATTERNS[*p], move |s: &Signal| {
                            log.lock().unwrap().push(format!("cb{c}:{}", entry_of(s)));
                            if c == PANICKING_CALLBACK {
                                panic!("deliberate callback panic");
                            }
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
                self.settle();
                match self.rt.bus().unsubscribe(self.subs[k % self.subs.len()]) {
                    Ok(()) => "unsubscribed".into(),
                    Err(RouteError::UnknownRoute { .. }) => "UnknownRoute".into(),
                    Err(e) => format!("{e:?}"),
                }
            }
            Op::AddRoute {
                agent,
                pattern,
                action,
                priority,
                even_only,
            } => {
                self.settle();
                let a = agent % n;
                let mut route =
                    RouteSpec::new(PATTERNS[*pattern], ACTIONS[*action]).priority(*priority);
                if *even_only {
                    route = route.when(|s: &Signal| s.data().len().is_multiple_of(2));
                }
                match self.agent(a).add_route(route) {
                    Ok(id) => {
                        self.added[a].push(id);
                        format!("route {}", id.get())
                    }
                    Err(RouteError::PriorityOutOfRange { .. }) => "PriorityOutOfRange".into(),
                    Err(e) => format!("{e:?}"),
                }
            }
            Op::RemoveRoute(a, k) => {
                let a = a % n;
                if self.added[a].is_empty() {
                    return None;
                }
                self.settle();
                let id = self.added[a][k % self.added[a].len()];
                match self.agent(a).remove_route(id) {
                    Ok(()) => "removed".into(),
                    Err(RouteError::UnknownRoute { .. }) => "UnknownRoute".into(),
                    Err(e) => format!("{e:?}"),
                }
            }
            Op::Stop(a) => {
                let report = self.agent(*a).stop();
                let letters: Vec<String> = report
                    .dead_letters
                    .iter()
                    .map(|d| {
                        dead_letter(&entry_of(&d.signal), &format!("{:?}", d.reason), d.was_call)
                    })
                    .collect();
                format!("stopped, dead letters {letters:?}")
            }
            Op::Run => {
                if self.threaded {
                    self.settle();
                    "ran".into()
                } else {
                    format!("ran {}", self.rt.run_until_idle().unwrap())
                }
            }
            Op::Steps(max) => {
                let s = self.rt.run_steps(*max).unwrap();
                format!(
                    "steps {}, processed {}, idle {}",
                    s.turns, s.processed, s.idle
                )
            }
        })
    }

    fn failure(&self, f: &DeliveryFailure) -> String {
        match f {
            DeliveryFailure::NoSubscribers(s) => format!("NoSubscribers:{}", s.ty()),
            DeliveryFailure::Refused(e) => {
                format!(
                    "Refused:{}@{}",
                    kind_name(e.kind()),
                    self.index_of(e.agent())
                )
            }
            DeliveryFailure::CallbackPanicked { .. } => "CallbackPanicked".into(),
            other => format!("{other:?}"),
        }
    }

    fn finish(self, steps: Vec<String>) -> Outcome {
        self.settle();
        let before = self.rt.metrics();
        let states: Vec<Vec<String>> = {
            let dir = self.dir.lock().unwrap();
            dir.refs
                .iter()
                .map(|a| (*a.state().unwrap()).clone())
                .collect()
        };
        let report = self.rt.shutdown();
        let dir = std::mem::take(&mut *self.dir.lock().unwrap());
        let dead_letters = report
            .dead_letters
            .iter()
            .map(|d| {
                let letter =
                    dead_letter(&entry_of(&d.signal), &format!("{:?}", d.reason), d.was_call);
                format!("{letter}@{}", index_in(&dir, d.agent))
            })
            .collect();
        let undelivered: Vec<String> = report
            .undelivered
            .iter()
            .map(|u| {
                let from = match u.from {
                    UndeliveredFrom::Agent(from) => from,
                    other => panic!("no timers or async work here: {other:?}"),
                };
                let what = match &u.failure {
                    DeliveryFailure::NoSubscribers(s) => format!("NoSubscribers:{}", s.ty()),
                    DeliveryFailure::Refused(e) => {
                        format!(
                            "Refused:{}@{}",
                            kind_name(e.kind()),
                            index_in(&dir, e.agent())
                        )
                    }
                    DeliveryFailure::CallbackPanicked { .. } => "CallbackPanicked".into(),
                    other => format!("{other:?}"),
                };
                format!("{}:{what}", index_in(&dir, from))
            })
            .collect();
        let m = report.metrics;
        let events = std::mem::take(&mut *self.events.lock().unwrap());
        Outcome {
            steps,
            events,
            undelivered,
            dead_letters,
            metrics: vec![
                ("accepted", m.accepted),
                ("processed", m.processed),
                ("dead_lettered", m.dead_lettered),
                ("failed_actions", m.failed_actions),
                ("panicked_actions", m.panicked_actions),
                ("refused_full", m.refused_full),
                ("undelivered", m.undelivered),
                ("spawned", before.spawned),
                ("live_agents", before.live_agents),
            ],
            states,
        }
    }
}

// ---------------------------------------------------------------- running

fn run_model(ops: &[Op], quantum: usize, second: Kind) -> Outcome {
    let mut model = Model::new(quantum);
    model.spawn(Kind::Big);
    model.spawn(second);
    let steps = ops.iter().filter_map(|op| model.apply(op)).collect();
    model.finish(steps)
}

fn run_real(ops: &[Op], strategy: Impl, batch: usize, threaded: bool) -> Outcome {
    let mut real = Real::new(strategy, batch, threaded);
    real.spawn(Kind::Big);
    real.spawn(if threaded { Kind::Big } else { Kind::Tiny });
    let steps = ops.iter().filter_map(|op| real.apply(op)).collect();
    real.finish(steps)
}

/// Names the first difference, so a failure reads as one line, not two
/// structures to diff by eye.
fn compare(expected: &Outcome, got: &Outcome, name: &str) -> Result<(), TestCaseError> {
    fn first_diff<T: PartialEq + std::fmt::Debug>(
        what: &str,
        e: &[T],
        g: &[T],
        name: &str,
    ) -> Result<(), TestCaseError> {
        for (i, (x, y)) in e.iter().zip(g).enumerate() {
            prop_assert_eq!(x, y, "{}: {} #{} differs", name, what, i);
        }
        prop_assert_eq!(e.len(), g.len(), "{}: {} lengths differ", name, what);
        Ok(())
    }
    first_diff("step", &expected.steps, &got.steps, name)?;
    first_diff("event", &expected.events, &got.events, name)?;
    first_diff("undelivered", &expected.undelivered, &got.undelivered, name)?;
    first_diff(
        "dead letter",
        &expected.dead_letters,
        &got.dead_letters,
        name,
    )?;
    first_diff("metric", &expected.metrics, &got.metrics, name)?;
    for (i, (e, g)) in expected.states.iter().zip(&got.states).enumerate() {
        first_diff(&format!("agent {i} log line"), e, g, name)?;
    }
    prop_assert_eq!(expected, got, "{}", name);
    Ok(())
}

fn cases(default: u32) -> u32 {
    std::env::var("EQUIVALENCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(1000),
        max_shrink_iters: 4000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_strategy_and_batch_size_matches_the_model(
        ops in prop::collection::vec(op(false), 1..40)
    ) {
        quiet_panics();
        let mut models = BTreeMap::new();
        for (name, strategy, batch) in strategies() {
            let expected = models.entry(batch).or_insert_with(|| run_model(&ops, batch, Kind::Tiny));
            let got = run_real(&ops, strategy, batch, false);
            compare(expected, &got, &name)?;
        }
    }
}

// ---------------------------------------------------------------- threaded

/// An agent's log grouped by sender, each sender's lines in order: what a
/// threaded runtime promises (per-sender order), nothing more.
fn per_sender(log: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut by = BTreeMap::<String, Vec<String>>::new();
    for line in log {
        let source = line.split('|').nth(1).unwrap_or_default().to_owned();
        by.entry(source).or_default().push(line.clone());
    }
    by
}

/// What threads cannot reorder: logs and callbacks per sender, failures
/// per agent and sender, undelivered emits as a multiset, the counters, and
/// the driver's results (a threaded `Run` waits and reports no count).
fn threaded_view(o: &Outcome) -> impl PartialEq + std::fmt::Debug {
    let logs: Vec<_> = o.states.iter().map(|s| per_sender(s)).collect();
    let mut events = BTreeMap::<String, Vec<String>>::new();
    for line in &o.events {
        let source = line.split('|').nth(1).unwrap_or_default();
        let key = match line.strip_prefix("hook ") {
            Some(rest) => format!("hook {} {source}", rest.split(' ').next().unwrap_or("")),
            None => source.to_owned(),
        };
        events.entry(key).or_default().push(line.clone());
    }
    let mut undelivered = o.undelivered.clone();
    undelivered.sort();
    let steps: Vec<String> = o
        .steps
        .iter()
        .map(|s| {
            if s.starts_with("ran") {
                "ran".to_owned()
            } else {
                s.clone()
            }
        })
        .collect();
    (steps, logs, events, undelivered, o.metrics.clone())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(1000) / 4,
        max_shrink_iters: 1000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn threaded_runs_match_the_model_per_sender(
        ops in prop::collection::vec(op(true), 1..30)
    ) {
        quiet_panics();
        // A threaded runtime processes what it accepts at once; the runtime
        // side waits for idle before each change of routes or agents (so that
        // every signal meets the routes it would in the model) and at the
        // end. The model runs until idle at the same points.
        let mut ops: Vec<Op> = ops
            .into_iter()
            .flat_map(|op| {
                let settle = matches!(
                    op,
                    Op::Spawn(_) | Op::Subscribe(..) | Op::Unsubscribe(_)
                        | Op::AddRoute { .. } | Op::RemoveRoute(..)
                );
                settle.then_some(Op::Run).into_iter().chain([op])
            })
            .collect();
        ops.push(Op::Run);
        // The second agent is big in threaded runs.
        let mut expected = run_model(&ops, 1, Kind::Big);
        // A threaded hook reads nothing (what it would see is timing).
        for e in &mut expected.events {
            if let Some(cut) = e.find(" sees ") {
                e.truncate(cut);
                e.push_str(" sees []");
            }
        }
        for (name, strategy, batch) in strategies().into_iter().filter(|(_, _, b)| *b != 3) {
            let got = run_real(&ops, strategy, batch, true);
            prop_assert_eq!(
                threaded_view(&expected),
                threaded_view(&got),
                "threaded {}",
                name
            );
        }
    }
}

#[test]
fn a_hand_written_sequence_exercises_what_the_suite_claims() {
    quiet_panics();
    let d = |len| Data { len, seed: 7 };
    let ops = vec![
        Op::Subscribe(4, Target::Agent(0)),
        Op::Subscribe(2, Target::Callback(1)),
        Op::Subscribe(4, Target::Agent(1)),
        Op::Subscribe(2, Target::Callback(PANICKING_CALLBACK)),
        Op::Send(0, 4, d(10)),
        Op::Send(0, 0, d(65536)),
        Op::Send(1, 0, d(1)),
        Op::Send(1, 2, d(2)),
        Op::Send(1, 3, d(3)),
        Op::Send(0, 6, d(1)),
        Op::Send(0, 6, d(2)),
        Op::Call(0, 2, d(0)),
        Op::Call(0, 3, d(0)),
        Op::Call(0, 0, d(3)),
        Op::AddRoute {
            agent: 0,
            pattern: 1,
            action: 0,
            priority: 50,
            even_only: true,
        },
        Op::Send(0, 0, d(5)),
        Op::Send(0, 0, d(6)),
        Op::MailboxLen(0),
        Op::State(0),
        Op::Query(0),
        Op::Steps(2),
        Op::Publish(4, d(100)),
        Op::Send(1, 1, d(4)),
        Op::Stop(1),
        Op::Send(1, 0, d(1)),
        Op::Run,
        Op::Spawn(Kind::Big),
        Op::Send(2, 1, d(9)),
    ];
    let mut models = BTreeMap::new();
    for (name, strategy, batch) in strategies() {
        let expected = models
            .entry(batch)
            .or_insert_with(|| run_model(&ops, batch, Kind::Tiny));
        let got = run_real(&ops, strategy, batch, false);
        compare(expected, &got, &name).unwrap();
    }
    // The sequence must exercise what it claims to.
    let expected = &models[&1];
    let all = format!("{expected:?}");
    for needle in [
        "Full(2)@1",
        "Action(Rejected",
        "Action(Panicked",
        "Stopped@1",
        ":AgentStopped",
        "|/driver|",
        "|/agent/0|",
        "hook 0 r1 Rejected",
        "sees [\\\"R\\\", \\\"0\\\"]",
        "cb2:",
        "CallbackPanicked",
        "len 2",
        "steps 2",
        "|call\"",
        "|r6|",
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
