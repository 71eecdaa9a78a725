//! The benchmarked operations, defined once and used by the criterion
//! benchmarks (`benches/*.rs`), the iai-callgrind benchmarks (`iai/*.rs`) and
//! the per-operation allocation report (`examples/alloc_report.rs`), so the
//! three measure exactly the same code.
//!
//! Each operation is a `*_setup` that builds and warms its input (pools,
//! queues, route memos: iai runs every benchmark in a fresh process) and a
//! `*_run` that performs the measured work once.
#![allow(dead_code)]

use agentry::bench_support::RouteResolver;
use agentry::bench_support::{checkout, give_back};
use agentry::imp::{PoolKind, Strategy};
use agentry::{AgentRef, AgentSpec, Instruction, Payload, Runtime, Signal};
use bytes::Bytes;
use std::sync::Arc;

/// Payload sizes of the signal benchmarks.
pub const SIZES: [(&str, usize); 3] = [("64B", 64), ("1KiB", 1024), ("64KiB", 64 * 1024)];
/// Signals per local send-and-process run.
pub const LOCAL_BATCH: usize = 100;
/// Subscribers of the fan-out benchmark.
pub const FAN_OUT: usize = 100;
/// Payload of the fan-out benchmark.
pub const FAN_OUT_PAYLOAD: usize = 64 * 1024;

pub fn bytes_of(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| i as u8).collect::<Vec<u8>>())
}

// ----- signal build and payload clone

/// A payload of `len` bytes, with one signal built first so the calling thread's
/// id generator (clock and random source) is initialized before measuring.
pub fn signal_setup(len: usize) -> Bytes {
    let payload = bytes_of(len);
    drop(build_signal(&payload));
    payload
}

pub fn build_signal(payload: &Bytes) -> Signal {
    Signal::builder("bench.signal.built", "/bench")
        .data(payload.clone())
        .build()
        .expect("valid signal")
}

pub fn payload_of(len: usize) -> Payload {
    Payload::from(bytes_of(len))
}

// ----- route lookup

/// Which kind of route a lookup hits.
#[derive(Clone, Copy, Debug)]
pub enum Hit {
    Exact,
    Star,
    Globstar,
}

pub const HITS: [(&str, Hit); 3] = [
    ("exact", Hit::Exact),
    ("star", Hit::Star),
    ("globstar", Hit::Globstar),
];
pub const ROUTE_COUNTS: [usize; 2] = [10, 10_000];

pub struct Lookup {
    resolver: RouteResolver,
    signal: Signal,
}

/// `routes` routes: `svc.<n>.created` exact routes, plus `svc.*.updated` and
/// `audit.**` so each kind of hit has exactly one matching route.
pub fn lookup_setup(routes: usize, hit: Hit, fast_path: bool) -> Lookup {
    let mut patterns: Vec<String> = (0..routes.saturating_sub(2))
        .map(|n| format!("svc.{n}.created"))
        .collect();
    patterns.push("svc.*.updated".into());
    patterns.push("audit.**".into());
    let mut resolver =
        RouteResolver::new(patterns.iter().map(String::as_str), fast_path).expect("valid patterns");
    let ty = match hit {
        Hit::Exact => "svc.7.created",
        Hit::Star => "svc.7.updated",
        Hit::Globstar => "audit.svc.7.deleted",
    };
    let signal = Signal::new(ty, "/bench", Payload::new()).expect("valid signal");
    assert_eq!(
        resolver.resolve(&signal),
        1,
        "exactly one route matches {ty}"
    );
    Lookup { resolver, signal }
}

pub fn lookup_run(l: &mut Lookup) -> usize {
    l.resolver.resolve(&l.signal)
}

// ----- instruction checkout/return

pub const POOLS: [(&str, PoolKind); 3] = [
    ("allocate", PoolKind::Allocate),
    ("free_list", PoolKind::FreeList),
    ("object_pool", PoolKind::ObjectPool),
];

pub fn pool_setup(kind: PoolKind) -> PoolKind {
    for _ in 0..4 {
        give_back(kind, checkout(kind));
    }
    kind
}

pub fn pool_run(kind: PoolKind) {
    let ins = checkout(kind);
    give_back(kind, std::hint::black_box(ins));
}

// ----- agents in deterministic mode

pub fn counter() -> AgentSpec<u64, u64> {
    AgentSpec::new(0).on("tick", |n: &mut u64, ins: &mut Instruction| {
        *n += ins.data().len() as u64 + 1;
        Ok(*n)
    })
}

pub fn tick(payload: &Bytes) -> Signal {
    Signal::builder("tick", "/bench")
        .data(payload.clone())
        .build()
        .expect("valid signal")
}

/// The strategies compared side by side in one run; `default` is what the
/// enabled features select.
pub fn strategies() -> [(&'static str, Strategy); 3] {
    [
        ("default", Strategy::from_features()),
        ("plain", Strategy::PLAIN),
        ("optimized", Strategy::OPTIMIZED),
    ]
}

fn deterministic(strategy: Strategy) -> Runtime {
    Runtime::builder()
        .deterministic()
        .strategy(strategy)
        .build()
        .expect("runtime")
}

pub struct Local {
    rt: Runtime,
    agent: AgentRef<u64, u64>,
    payload: Bytes,
    queued: Vec<Signal>,
}

fn fill(l: &mut Local) {
    l.queued.extend((0..LOCAL_BATCH).map(|_| tick(&l.payload)));
}

/// A warm counter agent and `LOCAL_BATCH` prebuilt 64-byte signals.
pub fn local_setup(strategy: Strategy) -> Local {
    let rt = deterministic(strategy);
    let agent = rt.spawn(&counter()).expect("spawn");
    let mut l = Local {
        rt,
        agent,
        payload: bytes_of(64),
        queued: Vec::with_capacity(LOCAL_BATCH),
    };
    for _ in 0..3 {
        fill(&mut l);
        local_run(&mut l);
    }
    fill(&mut l);
    l
}

/// Sends the prebuilt signals and processes them.
pub fn local_run(l: &mut Local) -> u64 {
    for signal in l.queued.drain(..) {
        l.agent.send(signal).expect("accepted");
    }
    l.rt.run_until_idle().expect("deterministic")
}

/// Refills a `Local` for the next criterion iteration (not measured).
pub fn local_refill(l: &mut Local) {
    fill(l);
}

pub struct StateQuery {
    _rt: Runtime,
    agent: AgentRef<u64, u64>,
}

pub const STATE_READS: [(&str, Strategy); 2] = [
    ("mailbox", Strategy::PLAIN),
    (
        "snapshot",
        Strategy {
            fast_path: true,
            ..Strategy::PLAIN
        },
    ),
];

pub fn state_setup(strategy: Strategy) -> StateQuery {
    let rt = deterministic(strategy);
    let agent = rt.spawn(&counter()).expect("spawn");
    agent.send(tick(&bytes_of(8))).expect("accepted");
    rt.run_until_idle().expect("deterministic");
    let q = StateQuery { _rt: rt, agent };
    for _ in 0..4 {
        state_run(&q);
    }
    q
}

pub fn state_run(q: &StateQuery) -> Arc<u64> {
    q.agent.state().expect("state")
}

pub struct FanOut {
    rt: Runtime,
    agents: Vec<AgentRef<u64, u64>>,
    payload: Bytes,
    signal: Option<Signal>,
}

/// `FAN_OUT` agents subscribed to `tick`, warmed with one publish.
pub fn fanout_setup(strategy: Strategy) -> FanOut {
    let rt = deterministic(strategy);
    let bus = rt.bus();
    let agents: Vec<_> = (0..FAN_OUT)
        .map(|_| rt.spawn(&counter()).expect("spawn"))
        .collect();
    for a in &agents {
        bus.subscribe_agent("tick", &a.addr()).expect("subscribe");
    }
    let payload = bytes_of(FAN_OUT_PAYLOAD);
    let mut f = FanOut {
        rt,
        agents,
        payload,
        signal: None,
    };
    for _ in 0..2 {
        fanout_refill(&mut f);
        fanout_run(&mut f);
        fanout_drain(&f);
    }
    fanout_refill(&mut f);
    f
}

/// Publishes one 64 KiB signal to every subscriber (the fan-out itself).
pub fn fanout_run(f: &mut FanOut) -> usize {
    let signal = f.signal.take().expect("refilled");
    f.rt.bus().publish(signal).expect("subscribers").delivered
}

/// Processes the delivered copies and prepares the next signal (not measured).
pub fn fanout_drain(f: &FanOut) {
    f.rt.run_until_idle().expect("deterministic");
    debug_assert!(f.agents.iter().all(|a| a.mailbox_len() == 0));
}

pub fn fanout_refill(f: &mut FanOut) {
    f.signal = Some(tick(&f.payload));
}

/// Readies a `Local` for its next run if the last one used its signals.
pub fn local_refill_if_empty(l: &mut Local) {
    if l.queued.is_empty() {
        fill(l);
    }
}

/// Readies a `FanOut` for its next run: processes the last run's copies and
/// builds the next signal.
pub fn fanout_prepare(f: &mut FanOut) {
    if f.signal.is_none() {
        fanout_drain(f);
        fanout_refill(f);
    }
}

/// One agent, warm, for `call` round trips.
pub struct Call {
    _rt: Runtime,
    agent: AgentRef<u64, u64>,
    signal: Option<Signal>,
}

/// A warm agent and one prebuilt signal to call it with.
pub fn call_setup(strategy: Strategy) -> Call {
    let rt = deterministic(strategy);
    let agent = rt.spawn(&counter()).expect("spawn");
    let payload = bytes_of(8);
    let mut c = Call {
        _rt: rt,
        agent,
        signal: None,
    };
    for _ in 0..4 {
        c.signal = Some(tick(&payload));
        call_run(&mut c);
    }
    c.signal = Some(tick(&payload));
    c
}

/// `call` on an idle agent: the caller claims it and runs the action itself.
pub fn call_run(c: &mut Call) -> u64 {
    let signal = c.signal.take().expect("a signal to call with");
    c.agent
        .call(signal, std::time::Duration::from_secs(5))
        .expect("reply")
}

/// Signals queued ahead of a helping call.
pub const HELPED: usize = 15;

/// A warm agent with `HELPED` signals queued and one more to call it with:
/// the caller runs all sixteen on its own thread (it "helps").
pub fn call_helping_setup(strategy: Strategy) -> Call {
    let c = call_setup(strategy);
    let payload = bytes_of(8);
    for _ in 0..HELPED {
        c.agent.send(tick(&payload)).expect("queued");
    }
    c
}

/// One agent with a query route, warm, and a prebuilt query signal.
pub struct Query {
    _rt: Runtime,
    agent: AgentRef<u64, u64>,
    signal: Option<Signal>,
}

pub fn query_setup(strategy: Strategy) -> Query {
    let rt = deterministic(strategy);
    let spec = counter().query("count.*", |n: &u64, _: &Signal| Ok(*n));
    let agent = rt.spawn(&spec).expect("spawn");
    let build = || {
        Signal::builder("count.get", "/bench")
            .build()
            .expect("valid signal")
    };
    let mut q = Query {
        _rt: rt,
        agent,
        signal: None,
    };
    for _ in 0..4 {
        q.signal = Some(build());
        query_run(&mut q);
    }
    q.signal = Some(build());
    q
}

/// A read-only query through a query route.
pub fn query_run(q: &mut Query) -> u64 {
    let signal = q.signal.take().expect("a signal to query with");
    q.agent.query(signal).expect("answer")
}

/// Instructions in one emitting turn.
pub const TURN: usize = 64;

/// An agent whose action emits a copy of its signal to the bus, where a
/// callback counts it; `TURN` signals queued.
pub struct Turn {
    rt: Runtime,
    agent: AgentRef<u64, u64>,
    payload: Bytes,
    seen: Arc<std::sync::atomic::AtomicU64>,
}

pub fn turn_setup(strategy: Strategy) -> Turn {
    let rt = deterministic(strategy);
    let spec = AgentSpec::<u64, u64>::new(0).on("tick", |n: &mut u64, ins: &mut Instruction| {
        *n += 1;
        let copy = ins.signal().clone();
        ins.emit(copy);
        Ok(*n)
    });
    let agent = rt.spawn(&spec).expect("spawn");
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = seen.clone();
    rt.bus()
        .subscribe("tick", move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .expect("subscribe");
    let t = Turn {
        rt,
        agent,
        payload: bytes_of(64),
        seen,
    };
    for _ in 0..2 {
        turn_fill(&t);
        turn_run(&t);
    }
    turn_fill(&t);
    t
}

/// Queues `TURN` signals (not measured).
pub fn turn_fill(t: &Turn) {
    for _ in 0..TURN {
        t.agent.send(tick(&t.payload)).expect("queued");
    }
}

/// Runs the queued signals: one turn of 64 with `batching` (64 turns of
/// one without), each instruction emitting one signal to a bus callback.
pub fn turn_run(t: &Turn) -> u64 {
    let ran = t.rt.run_until_idle().expect("deterministic");
    debug_assert_eq!(ran, TURN as u64);
    t.seen.load(std::sync::atomic::Ordering::Relaxed)
}

/// Callbacks on a published signal's type.
pub const CALLBACKS: usize = 8;

/// A bus with `CALLBACKS` callback subscriptions matching `tick` and one
/// prebuilt signal.
pub struct Callbacks {
    rt: Runtime,
    signal: Option<Signal>,
    payload: Bytes,
}

pub fn callbacks_setup(strategy: Strategy) -> Callbacks {
    let rt = deterministic(strategy);
    let bus = rt.bus();
    for pattern in ["tick", "*", "**", "tick.**"]
        .iter()
        .cycle()
        .take(CALLBACKS)
    {
        bus.subscribe(pattern, |s: &Signal| {
            std::hint::black_box(s.data().len());
        })
        .expect("subscribe");
    }
    let payload = bytes_of(64);
    let mut c = Callbacks {
        rt,
        signal: None,
        payload,
    };
    for _ in 0..4 {
        c.signal = Some(tick(&c.payload));
        callbacks_run(&mut c);
    }
    c.signal = Some(tick(&c.payload));
    c
}

/// Publishes one signal to the callbacks, on this thread.
pub fn callbacks_run(c: &mut Callbacks) -> usize {
    let signal = c.signal.take().expect("a signal to publish");
    c.rt.bus().publish(signal).expect("subscribers").delivered
}

/// Entries in the agent's map for the state-size benches.
pub const STATE_SIZES: [usize; 3] = [0, 1_000, 100_000];
/// Signals per measured run of the state-size benches.
pub const STATE_BURST: usize = 100;

/// How the state-size agent keeps its state and undoes failures.
#[derive(Clone, Copy, Debug)]
pub enum StateMode {
    /// `std::collections::HashMap`, `Atomicity::Rollback` (the default): a
    /// copy of the map before every action.
    Rollback,
    /// `std::collections::HashMap`, `Atomicity::InPlace`: no copy.
    InPlace,
    /// `imbl::HashMap` (persistent: clone O(1)), `Atomicity::Rollback`:
    /// atomic actions at a near-constant cost (the recommended setup).
    Persistent,
}

pub const STATE_MODES: [(&str, StateMode); 3] = [
    ("rollback", StateMode::Rollback),
    ("in_place", StateMode::InPlace),
    ("persistent", StateMode::Persistent),
];

/// A map the state-size agent can use.
pub trait Entries: Clone + Send + Sync + 'static {
    fn filled(n: usize) -> Self;
    /// Increments one entry (inserting it at 1).
    fn bump(&mut self, key: u64);
}

impl Entries for std::collections::HashMap<u64, u64> {
    fn filled(n: usize) -> Self {
        (0..n as u64).map(|k| (k, 0)).collect()
    }
    fn bump(&mut self, key: u64) {
        *self.entry(key).or_insert(0) += 1;
    }
}

impl Entries for imbl::HashMap<u64, u64> {
    fn filled(n: usize) -> Self {
        (0..n as u64).map(|k| (k, 0)).collect()
    }
    fn bump(&mut self, key: u64) {
        *self.entry(key).or_insert(0) += 1;
    }
}

/// An order book, a session table, a cache: a large map of which one
/// action touches one entry.
#[derive(Clone)]
pub struct Table<M> {
    map: M,
    size: u64,
    n: u64,
}

fn table_spec<M: Entries>(size: usize, atomicity: agentry::Atomicity) -> AgentSpec<Table<M>, u64> {
    AgentSpec::new(Table {
        map: M::filled(size),
        size: size.max(1) as u64,
        n: 0,
    })
    .atomicity(atomicity)
    .on("tick", |t: &mut Table<M>, _: &mut Instruction| {
        let key = t.n % t.size;
        t.map.bump(key);
        t.n += 1;
        Ok(t.n)
    })
}

/// One agent with a map of `size` entries, warm, and its next burst.
pub struct StateSize {
    rt: Runtime,
    send: Box<dyn Fn(Signal)>,
    read: Arc<dyn Fn() + Send + Sync>,
    payload: Bytes,
}

pub fn state_size_setup(mode: StateMode, size: usize, strategy: Strategy) -> StateSize {
    fn build<M: Entries>(rt: Runtime, size: usize, atomicity: agentry::Atomicity) -> StateSize {
        let agent = rt.spawn(&table_spec::<M>(size, atomicity)).expect("spawn");
        let reader = agent.clone();
        StateSize {
            rt,
            send: Box::new(move |s| agent.send(s).expect("room")),
            read: Arc::new(move || {
                std::hint::black_box(reader.state().expect("state").n);
            }),
            payload: bytes_of(8),
        }
    }
    let rt = Runtime::builder()
        .deterministic()
        .strategy(strategy)
        .build()
        .expect("runtime");
    let s = match mode {
        StateMode::Rollback => {
            build::<std::collections::HashMap<u64, u64>>(rt, size, agentry::Atomicity::Rollback)
        }
        StateMode::InPlace => {
            build::<std::collections::HashMap<u64, u64>>(rt, size, agentry::Atomicity::InPlace)
        }
        StateMode::Persistent => {
            build::<imbl::HashMap<u64, u64>>(rt, size, agentry::Atomicity::Rollback)
        }
    };
    for _ in 0..2 {
        state_size_run(&s);
    }
    s
}

/// Sends `STATE_BURST` signals (built here) and processes them.
pub fn state_size_run(s: &StateSize) -> u64 {
    for _ in 0..STATE_BURST {
        (s.send)(tick(&s.payload));
    }
    s.rt.run_until_idle().expect("deterministic")
}

/// A reader of the agent's state, for a thread of its own.
pub fn state_size_reader(s: &StateSize) -> Arc<dyn Fn() + Send + Sync> {
    s.read.clone()
}

// ----- timers (issue 14)

/// Pending timers beside the one being fired: the firing must not grow
/// with them beyond O(log n).
pub const TIMER_PENDING: [usize; 2] = [10, 100_000];

pub struct Timer {
    rt: Runtime,
    agent: AgentRef<u64, u64>,
    payload: Bytes,
}

/// A warm counter agent in a deterministic runtime with `pending` timers
/// scheduled an hour ahead (far beyond any run).
pub fn timer_setup(pending: usize, strategy: Strategy) -> Timer {
    let rt = deterministic(strategy);
    let agent = rt.spawn(&counter()).expect("spawn");
    let payload = bytes_of(64);
    for _ in 0..pending {
        agent
            .send_after(tick(&payload), std::time::Duration::from_secs(3600))
            .expect("scheduled");
    }
    let t = Timer { rt, agent, payload };
    for _ in 0..3 {
        timer_run(&t);
        timer_dispatch_run(&t);
    }
    t
}

/// One signal scheduled 1 µs ahead, then the virtual clock advanced 1 µs:
/// it fires and is processed.
pub fn timer_run(t: &Timer) -> u64 {
    let step = std::time::Duration::from_micros(1);
    t.agent
        .send_after(tick(&t.payload), step)
        .expect("scheduled");
    t.rt.advance(step).expect("deterministic")
}

/// The same signal sent and processed without a timer: what a firing adds
/// to is this.
pub fn timer_dispatch_run(t: &Timer) -> u64 {
    t.agent.send(tick(&t.payload)).expect("accepted");
    t.rt.run_until_idle().expect("deterministic")
}
