//! The NATS JetStream bridge against a real `nats-server`: every signal
//! shape round-trips, two runtimes exchange signals and calls, a killed
//! and restarted server loses nothing, a restarted consumer resumes, a full
//! mailbox is redelivered, undecodable and failing messages go to the
//! dead-letter subject, the settled callbacks, a full export buffer is
//! reported, a republished id is stored once, and a required emit into a
//! full export fails its action. Each test starts its own server (tests/common/nats_server.rs)
//! and returns early, printing SKIPPED, when the binary is missing.
//!
//! The tests synchronise only through channels, NATS subscriptions and the
//! bridge's own waits (`Export::flush`, `Import::stop`), never a timer.

#[path = "common/nats_server.rs"]
mod nats_server;

use agentry::nats::async_nats;
use agentry::nats::{
    Bridge, BridgeError, Export, ExportOptions, Import, ImportOptions, ImportStats, ImportTarget,
    RoomError, SeenIds,
};
use agentry::signal::Data;
use agentry::{
    ActionError, ActionErrorKind, AgentRef, AgentSpec, CallError, DeliveryFailure, Instruction,
    Runtime, SendErrorKind, Signal,
};
use bytes::Bytes;
use futures_util::StreamExt;
use nats_server::NatsServer;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// How long any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// One "process": its own tokio runtime (the bridge's tasks), agent
/// runtime and NATS connection.
struct Process {
    io: tokio::runtime::Runtime,
    rt: Runtime,
    bridge: Bridge,
}

impl Process {
    fn start(server: &NatsServer) -> Process {
        let io = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let bridge = io
            .block_on(Bridge::connect(&server.url()))
            .expect("connect to nats-server");
        let rt = Runtime::builder()
            .workers(2)
            .build()
            .expect("agent runtime");
        Process { io, rt, bridge }
    }

    fn export(&self, pattern: &str, options: ExportOptions) -> Export {
        self.io
            .block_on(self.bridge.export(&self.rt.bus(), pattern, options))
            .expect("start the export")
    }

    fn import(&self, options: ImportOptions, target: ImportTarget) -> Import {
        self.io
            .block_on(self.bridge.import(options, target))
            .expect("start the import")
    }

    /// Waits for JetStream to acknowledge everything the export accepted.
    fn flush(&self, export: &mut Export) {
        let flushed = self
            .io
            .block_on(async { tokio::time::timeout(WAIT, export.flush()).await });
        assert!(
            flushed.is_ok(),
            "the export did not flush within {WAIT:?}: {:?}",
            export.stats()
        );
    }

    fn stop_import(&self, import: Import) -> ImportStats {
        self.io
            .block_on(async { tokio::time::timeout(WAIT, import.stop()).await })
            .expect("the import stopped in time")
    }

    /// Publishes `signal` on the bus; every subscriber must take it.
    fn publish(&self, signal: Signal) {
        let report = self.rt.bus().publish(signal).expect("a subscriber");
        assert!(report.is_complete(), "{:?}", report.failures);
    }

    fn shutdown(self) {
        let Process { io, rt, bridge } = self;
        rt.shutdown();
        drop(bridge);
        io.shutdown_timeout(Duration::from_secs(5));
    }
}

/// Waits until an agent reports (on `progress`) a count of at least `target`.
fn wait_count(progress: &Receiver<usize>, target: usize, what: &str) {
    wait_count_with(progress, target, what, String::new);
}

/// [`wait_count`], with `diagnose` saying more when it times out.
fn wait_count_with(
    progress: &Receiver<usize>,
    target: usize,
    what: &str,
    diagnose: impl Fn() -> String,
) {
    let mut last = 0;
    loop {
        match progress.recv_timeout(WAIT) {
            Ok(n) if n >= target => return,
            Ok(n) => last = n,
            Err(e) => panic!(
                "{what}: waited for {target}, got to {last}, {e:?} {}",
                diagnose()
            ),
        }
    }
}

/// A point where an action stops until the test lets it go on.
struct Gate {
    /// The applied count at which the action stops.
    at: usize,
    reached: Sender<()>,
    release: Mutex<Receiver<()>>,
}

impl Gate {
    /// The gate, the receiver saying it was reached, the sender releasing it.
    fn new(at: usize) -> (Arc<Gate>, Receiver<()>, Sender<()>) {
        let (reached, reached_rx) = mpsc::channel();
        let (release_tx, release) = mpsc::channel();
        let gate = Arc::new(Gate {
            at,
            reached,
            release: Mutex::new(release),
        });
        (gate, reached_rx, release_tx)
    }

    fn pass(&self, count: usize) {
        if count == self.at {
            let _ = self.reached.send(());
            let release = self.release.lock().unwrap();
            release
                .recv_timeout(WAIT)
                .expect("the test released the gate");
        }
    }
}

/// An agent state that applies each signal id once: the sequence numbers
/// (the data) it applied, and how many repeats it recognised.
#[derive(Clone)]
struct Ledger {
    seen: SeenIds,
    applied: Vec<u64>,
    duplicates: u64,
}

/// A ledger agent: reports its applied count on `progress` after every
/// signal, and stops at `gate` if given.
fn ledger_spec(
    pattern: &str,
    seen_capacity: usize,
    progress: Sender<usize>,
    gate: Option<Arc<Gate>>,
) -> AgentSpec<Ledger> {
    let initial = Ledger {
        seen: SeenIds::new(seen_capacity),
        applied: Vec::new(),
        duplicates: 0,
    };
    AgentSpec::new(initial).on(
        pattern.to_owned(),
        move |l: &mut Ledger, ins: &mut Instruction| {
            if l.seen.first_time(ins.signal_id()) {
                l.applied.push(ins.json::<u64>()?);
                if let Some(gate) = &gate {
                    gate.pass(l.applied.len());
                }
            } else {
                l.duplicates += 1;
            }
            let _ = progress.send(l.applied.len());
            Ok(())
        },
    )
}

/// Every sequence number in `0..n` exactly once.
fn assert_each_once(applied: &[u64], n: u64) {
    let mut sorted = applied.to_vec();
    sorted.sort_unstable();
    let expected: Vec<u64> = (0..n).collect();
    if sorted != expected {
        let set: BTreeSet<u64> = sorted.iter().copied().collect();
        let missing: Vec<u64> = (0..n).filter(|i| !set.contains(i)).take(20).collect();
        panic!(
            "applied {} (distinct {}), expected each of 0..{n} once; first missing: {missing:?}",
            sorted.len(),
            set.len()
        );
    }
}

/// A signal of type `ty` whose data is the sequence number `seq`.
fn numbered(ty: &str, seq: u64) -> Signal {
    Signal::json(ty.to_owned(), "/test/producer", &seq).unwrap()
}

/// Polls `future` once (inside `io`'s context), so what it does before its
/// first wait is done, and hands it back.
fn poll_once<F: Future + Unpin>(io: &tokio::runtime::Runtime, mut future: F) -> F {
    io.block_on(std::future::poll_fn(|cx: &mut Context<'_>| {
        let _ = Pin::new(&mut future).poll(cx);
        Poll::Ready(())
    }));
    future
}

// ---------------------------------------------------------------------------
// 1. Signal shapes
// ---------------------------------------------------------------------------

fn shapes() -> Vec<Signal> {
    let long_type = std::iter::once("shape".to_owned())
        .chain((1..64).map(|i| format!("segment-{i:03}")))
        .collect::<Vec<_>>()
        .join(".");
    let big: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    vec![
        Signal::builder("shape.minimal", "/a").build().unwrap(),
        Signal::new("shape.text", "/a", "héllo, wörld \"quoted\"\n\ttab 😀").unwrap(),
        Signal::builder("shape.json", "/a")
            .json_data(&serde_json::json!({
                "n": 1.5, "neg": -7, "list": [1, 2, {"b": null}], "s": "x\"y\\z", "u": "ü😀"
            }))
            .build()
            .unwrap(),
        Signal::builder("shape.binary", "/a")
            .data(Data::binary(vec![
                0x00, 0xFF, 0x80, 0xC3, 0x28, 0x00, b'a', 0xFE, 0xFF,
            ]))
            .build()
            .unwrap(),
        Signal::new("shape.empty.text", "/a", "").unwrap(),
        Signal::builder("shape.empty.binary", "/a")
            .data(Data::binary(Vec::<u8>::new()))
            .build()
            .unwrap(),
        Signal::builder("shape.attributes", "https://shop.example/checkout?step=2")
            .subject("order-42")
            .time_now()
            .datacontenttype("text/csv")
            .dataschema("https://schemas.example/order/v1.json")
            .data("a,b\n1,2\n")
            .build()
            .unwrap(),
        Signal::builder("shape.extensions", "/a")
            .extension("tenant", "acme")
            .extension("empty", "")
            .extension("flag", true)
            .extension("off", false)
            .extension("count", -42)
            .extension("max", i32::MAX)
            .extension("min", i32::MIN)
            .data("with extensions")
            .build()
            .unwrap(),
        Signal::builder("shape.text.id", "/a")
            .id("custom-id-1")
            .data("a text id")
            .build()
            .unwrap(),
        Signal::builder(long_type, "/a")
            .data("a long type")
            .build()
            .unwrap(),
        Signal::builder("shape.large", "/a")
            .data(Data::binary(big))
            .build()
            .unwrap(),
    ]
}

/// A collector agent: keeps every signal it receives, reports its count.
fn collector(progress: Sender<usize>) -> AgentSpec<Vec<Signal>> {
    AgentSpec::new(Vec::new()).on(
        "shape.**",
        move |got: &mut Vec<Signal>, ins: &mut Instruction| {
            got.push(ins.signal().clone());
            let _ = progress.send(got.len());
            Ok(())
        },
    )
}

fn assert_same_signals(sent: &[Signal], got: &[Signal], target: &str) {
    assert_eq!(got.len(), sent.len(), "{target}: one delivery per signal");
    let by_id: HashMap<String, &Signal> = got.iter().map(|s| (s.id().to_string(), s)).collect();
    for signal in sent {
        let received = by_id
            .get(&signal.id().to_string())
            .unwrap_or_else(|| panic!("{target}: {} never arrived", signal.ty()));
        // Signal's equality covers every attribute, the id, and the data
        // bytes; the explicit checks make a failure easier to read.
        assert_eq!(received.ty(), signal.ty(), "{target}");
        assert_eq!(
            received.data().as_bytes(),
            signal.data().as_bytes(),
            "{target}: data of {}",
            signal.ty()
        );
        assert_eq!(received.has_data(), signal.has_data(), "{target}");
        assert_eq!(
            received.data_is_binary(),
            signal.data_is_binary(),
            "{target}"
        );
        assert_eq!(*received, signal, "{target}: {}", signal.ty());
    }
}

#[test]
fn every_signal_shape_round_trips() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let a = Process::start(&server);
    let b = Process::start(&server);
    let mut export = a.export("shape.**", ExportOptions::default());

    let (to_agent_tx, to_agent) = mpsc::channel();
    let direct = b.rt.spawn(&collector(to_agent_tx)).unwrap();
    let (via_bus_tx, via_bus) = mpsc::channel();
    let subscriber = b.rt.spawn(&collector(via_bus_tx)).unwrap();
    b.rt.bus()
        .subscribe_agent("shape.**", &subscriber.addr())
        .unwrap();
    let import_agent = b.import(
        ImportOptions::new("shapes-agent", "shape.**"),
        ImportTarget::Agent(direct.addr()),
    );
    let import_bus = b.import(
        ImportOptions::new("shapes-bus", "shape.**"),
        ImportTarget::Bus(b.rt.bus()),
    );

    let sent = shapes();
    for signal in &sent {
        a.publish(signal.clone());
    }
    a.flush(&mut export);
    assert_eq!(export.stats().stored, sent.len() as u64);

    wait_count(&to_agent, sent.len(), "import into the agent");
    wait_count(&via_bus, sent.len(), "import onto the bus");
    let agent_stats = b.stop_import(import_agent);
    let bus_stats = b.stop_import(import_bus);
    assert_same_signals(&sent, &direct.state().unwrap(), "ImportTarget::Agent");
    assert_same_signals(&sent, &subscriber.state().unwrap(), "ImportTarget::Bus");
    for stats in [agent_stats, bus_stats] {
        assert_eq!(stats.committed, sent.len() as u64, "{stats:?}");
        assert_eq!(stats.dead_lettered, 0, "{stats:?}");
    }
    drop(export);
    a.shutdown();
    b.shutdown();
}

// ---------------------------------------------------------------------------
// 2. Two runtimes: signals both ways, remote calls both ways
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Total {
    total: u64,
    by: String,
}

#[test]
fn two_runtimes_exchange_signals_and_calls() {
    const N: usize = 200;
    let Some(server) = NatsServer::start() else {
        return;
    };
    let a = Process::start(&server);
    let b = Process::start(&server);

    // A -> B: orders placed; B's agent bills each (emit), B -> A: billed.
    let mut export_a = a.export("order.**", ExportOptions::default());
    let mut export_b = b.export("order.billed", ExportOptions::default());
    let biller =
        b.rt.spawn(&AgentSpec::<u64>::new(0).on(
            "order.placed",
            |n: &mut u64, ins: &mut Instruction| {
                *n += 1;
                let placed = ins.signal_id().to_string();
                ins.emit(Signal::new("order.billed", "/billing", placed)?);
                Ok(())
            },
        ))
        .unwrap();
    let (billed_tx, billed) = mpsc::channel();
    let ledger =
        a.rt.spawn(&AgentSpec::<Vec<String>>::new(Vec::new()).on(
            "order.billed",
            move |got: &mut Vec<String>, ins: &mut Instruction| {
                got.push(ins.text()?.to_owned());
                let _ = billed_tx.send(got.len());
                Ok(())
            },
        ))
        .unwrap();
    let import_b = b.import(
        ImportOptions::new("billing", "order.placed"),
        ImportTarget::Agent(biller.addr()),
    );
    let import_a = a.import(
        ImportOptions::new("ledger", "order.billed"),
        ImportTarget::Agent(ledger.addr()),
    );

    let mut placed = BTreeSet::new();
    for i in 0..N {
        let order = Signal::json("order.placed", "/shop", &i).unwrap();
        placed.insert(order.id().to_string());
        a.publish(order);
    }
    a.flush(&mut export_a);
    wait_count(&billed, N, "billed orders back in A");
    b.flush(&mut export_b);
    let stats_b = b.stop_import(import_b);
    let stats_a = a.stop_import(import_a);
    assert_eq!(
        *biller.state().unwrap(),
        N as u64,
        "B billed each order once"
    );
    let billed_ids: BTreeSet<String> = ledger.state().unwrap().iter().cloned().collect();
    assert_eq!(ledger.state().unwrap().len(), N, "A got each bill once");
    assert_eq!(
        billed_ids, placed,
        "every order placed in A was billed by B"
    );
    assert_eq!(stats_b.committed, N as u64, "{stats_b:?}");
    assert_eq!(stats_a.committed, N as u64, "{stats_a:?}");
    assert_eq!(export_a.stats().stored, N as u64);
    assert_eq!(export_b.stats().stored, N as u64);

    // Remote calls. A serves a doubler as "a-svc"; B serves a totaliser as
    // "b-svc" whose "block" action waits for the test.
    let doubler =
        a.rt.spawn(
            &AgentSpec::<(), u64>::new(()).on("double", |_: &mut (), ins: &mut Instruction| {
                Ok(ins.json::<u64>()? * 2)
            }),
        )
        .unwrap();
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let totaliser =
        b.rt.spawn(
            &AgentSpec::<u64, Total>::new(0)
                .on("add", |t: &mut u64, ins: &mut Instruction| {
                    *t += ins.json::<u64>()?;
                    Ok(Total {
                        total: *t,
                        by: "b".into(),
                    })
                })
                .on("refuse", |t: &mut u64, _: &mut Instruction| {
                    *t += 1_000; // rolled back with the error
                    Err(ActionError::rejected("no"))
                })
                .on("block", move |t: &mut u64, _: &mut Instruction| {
                    let _ = entered_tx.send(());
                    release_rx
                        .lock()
                        .unwrap()
                        .recv_timeout(WAIT)
                        .map_err(|_| ActionError::rejected("never released"))?;
                    Ok(Total {
                        total: *t,
                        by: "b".into(),
                    })
                }),
        )
        .unwrap();
    let _a_svc = a.io.block_on(a.bridge.serve(&doubler, "a-svc")).unwrap();
    let _b_svc = b.io.block_on(b.bridge.serve(&totaliser, "b-svc")).unwrap();
    let a_from_b = b.bridge.remote::<u64>("a-svc").unwrap();
    let b_from_a = a.bridge.remote::<Total>("b-svc").unwrap();
    let second = Duration::from_secs(5);

    // B calls A. `serve` has returned, so the name is served: a call right
    // after it must reach the agent.
    let twice =
        b.io.block_on(a_from_b.call(Signal::json("double", "/b", &21u64).unwrap(), second));
    assert_eq!(twice, Ok(42));
    // A calls B, twice: the served agent keeps its state between calls.
    let add = |n: u64| Signal::json("add", "/a", &n).unwrap();
    let first = a.io.block_on(b_from_a.call(add(5), second));
    assert_eq!(
        first,
        Ok(Total {
            total: 5,
            by: "b".into()
        })
    );
    let then = a.io.block_on(b_from_a.call(add(7), second)).unwrap();
    assert_eq!(then.total, 12);

    // An action error crosses with its kind and message; the state rolled back.
    let refused =
        a.io.block_on(b_from_a.call(Signal::new("refuse", "/a", "").unwrap(), second));
    match refused {
        Err(CallError::Action(e)) => {
            assert_eq!(e.kind(), ActionErrorKind::Rejected);
            assert_eq!(e.text(), "no");
        }
        other => panic!("expected CallError::Action, got {other:?}"),
    }
    assert_eq!(
        *totaliser.state().unwrap(),
        12,
        "the failed action was undone"
    );

    // No route: a Send error with the caller's own signal handed back.
    let stray = Signal::builder("nothing.here", "/a")
        .subject("mine")
        .data("keep me")
        .build()
        .unwrap();
    let no_route = a.io.block_on(b_from_a.call(stray.clone(), second));
    match no_route {
        Err(CallError::Send(e)) => {
            assert_eq!(e.kind(), &SendErrorKind::NoRoute);
            assert_eq!(e.signal().id(), stray.id());
            assert_eq!(e.signal(), &stray, "the caller's own signal comes back");
        }
        other => panic!("expected CallError::Send(NoRoute), got {other:?}"),
    }
    // The other direction maps errors the same way.
    let wrong =
        b.io.block_on(a_from_b.call(Signal::new("double", "/b", "not a number").unwrap(), second));
    assert!(
        matches!(&wrong, Err(CallError::Action(e)) if e.kind() == ActionErrorKind::InvalidInput),
        "{wrong:?}"
    );

    // Nobody serves the name.
    let nobody = a.bridge.remote::<u64>("nobody").unwrap();
    let unserved =
        a.io.block_on(nobody.call(Signal::new("double", "/a", "1").unwrap(), second));
    assert!(
        matches!(&unserved, Err(CallError::Remote { reason }) if reason.contains("nobody")),
        "{unserved:?}"
    );

    // A timeout: the served action blocks until the client has given up.
    let short = Duration::from_millis(200);
    let timed_out =
        a.io.block_on(b_from_a.call(Signal::new("block", "/a", "").unwrap(), short));
    assert_eq!(timed_out, Err(CallError::Timeout { after: short }));
    entered
        .recv_timeout(WAIT)
        .expect("the call reached the blocking action");
    release_tx.send(()).unwrap();
    // The agent serves again once released.
    let after = a.io.block_on(b_from_a.call(add(0), second)).unwrap();
    assert_eq!(after.total, 12);

    drop((_a_svc, _b_svc, export_a, export_b));
    a.shutdown();
    b.shutdown();
}

// ---------------------------------------------------------------------------
// 3. Server killed and restarted mid-stream
// ---------------------------------------------------------------------------

#[test]
fn server_killed_and_restarted_mid_stream_loses_nothing() {
    const N: u64 = 5_000;
    const MIDWAY: usize = 1_000;
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let a = Process::start(&server);
    let b = Process::start(&server);
    let mut export = a.export("tick.**", ExportOptions::default());

    let (progress_tx, progress) = mpsc::channel();
    let (gate, midway, release) = Gate::new(MIDWAY);
    let ledger =
        b.rt.spawn(&ledger_spec(
            "tick.**",
            2 * N as usize,
            progress_tx,
            Some(gate),
        ))
        .unwrap();
    // A short ack_wait: messages whose acknowledgement died with the server
    // come back after it (the default, 30 s, would only make this slower).
    let import = b.import(
        ImportOptions {
            ack_wait: Duration::from_secs(2),
            ..ImportOptions::new("ticks", "tick.**")
        },
        ImportTarget::Agent(ledger.addr()),
    );

    // The producer: the first half at once, the second half while the
    // server is down; a publish refused by the export is retried.
    let bus = a.rt.bus();
    let (killed_tx, killed) = mpsc::channel::<()>();
    let producer = std::thread::spawn(move || {
        let mut accepted = 0u64;
        let mut retried = 0u64;
        for seq in 0..N {
            if seq == N / 2 {
                killed.recv_timeout(WAIT).expect("the server was killed");
            }
            let mut signal = numbered("tick.n", seq);
            loop {
                let report = bus.publish(signal).expect("the export subscribes");
                match report.failures.into_iter().next() {
                    None => break,
                    Some(DeliveryFailure::SinkRefused { signal: back, .. }) => {
                        retried += 1;
                        signal = *back;
                        std::thread::yield_now();
                    }
                    Some(other) => panic!("unexpected failure: {other}"),
                }
            }
            accepted += 1;
        }
        (accepted, retried)
    });

    // The agent stops at MIDWAY with messages delivered and unacknowledged
    // behind it; the server dies then.
    midway.recv_timeout(WAIT).expect("the agent reached midway");
    server.kill();
    release.send(()).unwrap();
    killed_tx.send(()).unwrap();
    let (accepted, producer_retries) = producer.join().unwrap();
    assert_eq!(accepted, N);
    server.restart();

    // The export republishes what the kill lost (with the same message
    // ids); flush waits until JetStream has acknowledged all N.
    a.flush(&mut export);
    wait_count(
        &progress,
        N as usize,
        "every tick applied after the restart",
    );
    let stats = b.stop_import(import);
    let export_stats = export.stats();
    let state = ledger.state().unwrap();
    eprintln!(
        "kill/restart: import {stats:?}, export {export_stats:?}, producer retries {producer_retries}, duplicates seen by the agent {}",
        state.duplicates
    );
    assert_eq!(state.applied.len() as u64, N, "applied exactly N");
    assert_each_once(&state.applied, N);
    assert!(stats.committed >= N, "{stats:?}");
    assert_eq!(export_stats.accepted, N, "{export_stats:?}");
    assert_eq!(export_stats.stored, N, "{export_stats:?}");
    drop(export);
    a.shutdown();
    b.shutdown();
}

// ---------------------------------------------------------------------------
// 4. A consumer restarted mid-stream resumes
// ---------------------------------------------------------------------------

#[test]
fn consumer_restarted_mid_stream_resumes_where_it_acked() {
    const N: u64 = 2_000;
    const STOP_AT: usize = 500;
    const MAX_ACK_PENDING: usize = 256;
    let Some(server) = NatsServer::start() else {
        return;
    };
    let p = Process::start(&server);
    let mut export = p.export("item.**", ExportOptions::default());
    for seq in 0..N {
        p.publish(numbered("item.added", seq));
    }
    p.flush(&mut export);
    assert_eq!(export.stats().stored, N);

    let (progress_tx, progress) = mpsc::channel();
    let (gate, reached, release) = Gate::new(STOP_AT);
    let ledger =
        p.rt.spawn(&ledger_spec(
            "item.**",
            2 * N as usize,
            progress_tx,
            Some(gate),
        ))
        .unwrap();
    // At most MAX_ACK_PENDING messages are between the server and a commit,
    // so at most that many can be delivered again after the restart. The
    // short ack_wait brings back soon the few the first run had received
    // but not taken when it stopped.
    let options = ImportOptions {
        max_ack_pending: MAX_ACK_PENDING,
        batch: 64,
        ack_wait: Duration::from_secs(2),
        ..ImportOptions::new("resume", "item.**")
    };
    let first = p.import(options.clone(), ImportTarget::Agent(ledger.addr()));

    // Stop while the agent holds at STOP_AT: the stop is sent before the
    // agent goes on, and waits for what was delivered to settle.
    reached
        .recv_timeout(WAIT)
        .expect("the agent reached the stop point");
    let stopping = poll_once(&p.io, Box::pin(first.stop()));
    release.send(()).unwrap();
    let first_stats =
        p.io.block_on(async { tokio::time::timeout(WAIT, stopping).await })
            .expect("the first import stopped");
    let at_stop = ledger.state().unwrap();
    let applied_first = at_stop.applied.len();
    assert!(
        applied_first >= STOP_AT && (applied_first as u64) < N,
        "stopped mid-stream: {applied_first} applied"
    );
    assert_eq!(
        first_stats.committed, applied_first as u64,
        "{first_stats:?}"
    );

    let second = p.import(options, ImportTarget::Agent(ledger.addr()));
    wait_count_with(
        &progress,
        N as usize,
        "every item applied after the restart",
        || {
            let info = p.io.block_on(async {
                let stream = p.bridge.ensure_stream().await.unwrap();
                format!(
                    "{:?}",
                    stream.consumer_info("resume").await.map(|c| (
                        c.delivered,
                        c.ack_floor,
                        c.num_ack_pending,
                        c.num_redelivered,
                        c.num_waiting,
                        c.num_pending
                    ))
                )
            });
            format!(
                "first {first_stats:?}, second {:?}, consumer (delivered, ack floor, \
                 ack pending, redelivered, waiting pulls, pending) {info}",
                second.stats()
            )
        },
    );
    let second_stats = p.stop_import(second);
    let state = ledger.state().unwrap();
    eprintln!(
        "consumer restart: first {first_stats:?} ({applied_first} applied), second {second_stats:?}, duplicates {}",
        state.duplicates
    );
    assert_eq!(state.applied.len() as u64, N);
    assert_each_once(&state.applied, N);
    assert!(
        state.duplicates < MAX_ACK_PENDING as u64 && state.duplicates < N / 2,
        "the restarted consumer went back too far: {} duplicates",
        state.duplicates
    );
    // It did not start from the beginning: it received what was left (and
    // at most the unacknowledged window again).
    assert!(
        second_stats.received <= N - applied_first as u64 + MAX_ACK_PENDING as u64,
        "{second_stats:?} after {applied_first} applied"
    );
    drop(export);
    p.shutdown();
}

// ---------------------------------------------------------------------------
// 5. A full mailbox is redelivered
// ---------------------------------------------------------------------------

#[test]
fn full_mailbox_is_redelivered_not_dropped() {
    const N: u64 = 200;
    let Some(server) = NatsServer::start() else {
        return;
    };
    let p = Process::start(&server);
    let mut export = p.export("job.**", ExportOptions::default());
    for seq in 0..N {
        p.publish(numbered("job.run", seq));
    }
    p.flush(&mut export);

    let (progress_tx, progress) = mpsc::channel();
    // The first signal holds the agent, so its mailbox of 4 fills up.
    let (gate, reached, release) = Gate::new(1);
    let ledger = p
        .rt
        .spawn(&ledger_spec("job.**", 2 * N as usize, progress_tx, Some(gate)).mailbox_capacity(4))
        .unwrap();
    // The acknowledgements the import sends, seen from outside.
    let mut acks =
        p.io.block_on(p.bridge.client().subscribe("$JS.ACK.AGENTRY.full.>"))
            .unwrap();
    let import = p.import(
        ImportOptions::new("full", "job.**"),
        ImportTarget::Agent(ledger.addr()),
    );
    reached.recv_timeout(WAIT).expect("the first job started");
    // Wait until the import hands a message back (a full mailbox).
    p.io.block_on(async {
        tokio::time::timeout(WAIT, async {
            while let Some(ack) = acks.next().await {
                if ack.payload.starts_with(b"-NAK") {
                    return;
                }
            }
            panic!("the ack subscription ended");
        })
        .await
    })
    .expect("a message was handed back for redelivery");
    release.send(()).unwrap();

    wait_count(&progress, N as usize, "every job applied");
    let stats = p.stop_import(import);
    let state = ledger.state().unwrap();
    eprintln!("full mailbox: {stats:?}, duplicates {}", state.duplicates);
    assert_each_once(&state.applied, N);
    assert!(stats.redelivery > 0, "{stats:?}");
    assert!(stats.committed >= N, "{stats:?}");
    assert_eq!(stats.dead_lettered, 0, "{stats:?}");
    drop(export);
    p.shutdown();
}

// ---------------------------------------------------------------------------
// 6. Dead letters
// ---------------------------------------------------------------------------

#[test]
fn undecodable_message_goes_to_the_dead_letter_subject() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let p = Process::start(&server);
    let bridge = p.bridge.clone();
    let garbage = Bytes::from_static(b"\x00{not a cloudevent\xff\xfe");
    let first = Signal::json("order.placed", "/shop", &1u64).unwrap();
    let bad = Signal::json("order.bad", "/shop", &2u64).unwrap();
    let last = Signal::json("order.placed", "/shop", &3u64).unwrap();
    let dead_subject = bridge.dead_letter_subject("dlq");

    // In the stream, in this order: garbage, a good order, one the action
    // rejects, a good order.
    let mut dead_letters = p.io.block_on(async {
        bridge.ensure_stream().await.unwrap();
        let dead = bridge
            .client()
            .subscribe(dead_subject.clone())
            .await
            .unwrap();
        let js = async_nats::jetstream::new(bridge.client().clone());
        let placed = bridge.subject_of("order.placed");
        js.publish(placed.clone(), garbage.clone())
            .await
            .unwrap()
            .await
            .unwrap();
        for signal in [&first, &bad, &last] {
            js.publish(
                bridge.subject_of(signal.ty()),
                Bytes::from(signal.to_json_vec()),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        }
        dead
    });

    let (applied_tx, applied) = mpsc::channel();
    let orders =
        p.rt.spawn(
            &AgentSpec::<Vec<String>>::new(Vec::new())
                .on(
                    "order.placed",
                    move |got: &mut Vec<String>, ins: &mut Instruction| {
                        got.push(ins.signal_id().to_string());
                        let _ = applied_tx.send(got.len());
                        Ok(())
                    },
                )
                .on("order.bad", |got: &mut Vec<String>, _: &mut Instruction| {
                    got.push("must be undone".into());
                    Err(ActionError::rejected("no"))
                }),
        )
        .unwrap();
    let import = p.import(
        ImportOptions::new("dlq", "order.*"),
        ImportTarget::Agent(orders.addr()),
    );

    // Both good orders applied means every message before them was taken
    // and settled; `stop` then waits until each is acknowledged, the two
    // dead-lettered ones included (their stats are checked last).
    wait_count(&applied, 2, "both good orders applied");
    let stats = p.stop_import(import);
    let letters = p.io.block_on(async {
        let mut letters = Vec::new();
        while letters.len() < 2 {
            let letter = tokio::time::timeout(WAIT, dead_letters.next())
                .await
                .expect("a dead letter in time")
                .expect("the subscription is open");
            letters.push(letter);
        }
        letters
    });

    let header = |m: &async_nats::Message, name: &str| -> String {
        m.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| panic!("dead letter without {name}: {m:?}"))
    };
    let undecodable = letters
        .iter()
        .find(|m| m.payload == garbage)
        .expect("the garbage was dead-lettered as it was");
    let error = header(undecodable, "Agentry-Error");
    assert!(error.contains("not a CloudEvent"), "{error}");
    assert_eq!(
        header(undecodable, "Agentry-Subject"),
        bridge.subject_of("order.placed")
    );
    assert_eq!(header(undecodable, "Agentry-Stream-Sequence"), "1");

    let rejected = letters
        .iter()
        .find(|m| m.payload != garbage)
        .expect("the rejected order was dead-lettered");
    assert_eq!(Signal::from_json(&rejected.payload).unwrap(), bad);
    let error = header(rejected, "Agentry-Error");
    assert!(
        error.contains("action rejected the signal: no"),
        "the action's error text: {error}"
    );
    assert_eq!(
        header(rejected, "Agentry-Subject"),
        bridge.subject_of("order.bad")
    );
    assert_eq!(header(rejected, "Agentry-Stream-Sequence"), "3");

    // Both good orders came through, neither dead letter looped.
    assert_eq!(
        *orders.state().unwrap(),
        [first.id().to_string(), last.id().to_string()]
    );
    assert_eq!(stats.dead_lettered, 2, "{stats:?}");
    assert_eq!(stats.committed, 2, "{stats:?}");
    assert_eq!(stats.redelivery, 0, "{stats:?}");
    assert_eq!(stats.received, 4, "{stats:?}");
    p.shutdown();
}

// ---------------------------------------------------------------------------
// 7. Settled callbacks (no NATS)
// ---------------------------------------------------------------------------

type Outcome = Result<(), CallError>;

fn outcome_channel() -> (impl FnOnce(Outcome) + Send + 'static, Receiver<Outcome>) {
    let (tx, rx) = mpsc::channel();
    (move |outcome| tx.send(outcome).unwrap(), rx)
}

fn counter_spec() -> AgentSpec<u64> {
    AgentSpec::<u64>::new(0).on_send("tick.**", |n: &mut u64, ins: &mut Instruction| {
        *n += 1;
        if ins.ty() == "tick.fail" {
            return Err(ActionError::rejected("failing tick"));
        }
        Ok(())
    })
}

#[test]
fn settled_callbacks() {
    let rt = Runtime::builder().deterministic().build().unwrap();
    let counter: AgentRef<u64> = rt.spawn(&counter_spec()).unwrap();

    // send_settled: Ok once committed, not before.
    let (done, settled) = outcome_channel();
    counter
        .send_settled(Signal::new("tick.ok", "/t", "").unwrap(), done)
        .unwrap();
    assert!(settled.try_recv().is_err(), "settled before it ran");
    rt.run_until_idle().unwrap();
    assert_eq!(settled.try_recv().unwrap(), Ok(()));
    assert_eq!(*counter.state().unwrap(), 1);

    // A failing action: its error, the state rolled back.
    let (done, settled) = outcome_channel();
    counter
        .send_settled(Signal::new("tick.fail", "/t", "").unwrap(), done)
        .unwrap();
    rt.run_until_idle().unwrap();
    match settled.try_recv().unwrap() {
        Err(CallError::Action(e)) => {
            assert_eq!(e.kind(), ActionErrorKind::Rejected);
            assert_eq!(e.text(), "failing tick");
        }
        other => panic!("expected the action's error, got {other:?}"),
    }
    assert_eq!(*counter.state().unwrap(), 1, "rolled back");

    // publish_settled waits for every agent subscriber.
    let other = rt.spawn(&counter_spec()).unwrap();
    let bus = rt.bus();
    bus.subscribe_agent("tick.**", &counter.addr()).unwrap();
    bus.subscribe_agent("tick.**", &other.addr()).unwrap();
    let (done, settled) = outcome_channel();
    let report = bus
        .publish_settled(Signal::new("tick.ok", "/t", "").unwrap(), done)
        .unwrap();
    assert_eq!((report.delivered, report.is_complete()), (2, true));
    let steps = rt.run_steps(1).unwrap();
    assert_eq!(steps.processed, 1, "{steps:?}");
    assert!(
        settled.try_recv().is_err(),
        "settled after one of two subscribers"
    );
    rt.run_until_idle().unwrap();
    assert_eq!(settled.try_recv().unwrap(), Ok(()));
    assert_eq!((*counter.state().unwrap(), *other.state().unwrap()), (2, 1));

    // One subscriber failing: its error, the other copy committed.
    let (done, settled) = outcome_channel();
    let report = bus
        .publish_settled(Signal::new("tick.fail", "/t", "").unwrap(), done)
        .unwrap();
    assert_eq!(report.delivered, 2);
    rt.run_until_idle().unwrap();
    assert!(
        matches!(settled.try_recv().unwrap(), Err(CallError::Action(e)) if e.kind() == ActionErrorKind::Rejected)
    );
    assert_eq!((*counter.state().unwrap(), *other.state().unwrap()), (2, 1));

    // Nothing delivered: the callback is dropped uncalled.
    let (done, settled) = outcome_channel();
    let nobody = bus.publish_settled(Signal::new("nobody.listens", "/t", "").unwrap(), done);
    assert!(matches!(
        nobody,
        Err(agentry::PublishError::NoSubscribers(_))
    ));
    assert_eq!(settled.try_recv(), Err(mpsc::TryRecvError::Disconnected));
    // A stopped agent refuses; the callback is dropped uncalled.
    let _ = other.stop();
    let (done, settled) = outcome_channel();
    let refused = other
        .send_settled(Signal::new("tick.ok", "/t", "").unwrap(), done)
        .unwrap_err();
    assert_eq!(refused.kind(), &SendErrorKind::Stopped);
    assert_eq!(settled.try_recv(), Err(mpsc::TryRecvError::Disconnected));
    rt.shutdown();
}

// ---------------------------------------------------------------------------
// 8. A full export buffer
// ---------------------------------------------------------------------------

#[test]
fn export_buffer_full_is_reported_not_dropped() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let p = Process::start(&server);
    let mut export = p.export(
        "audit.**",
        ExportOptions {
            buffer: 8,
            ..ExportOptions::default()
        },
    );
    server.kill();

    // Nothing is acknowledged now: the buffer fills, and the bus reports
    // the refusal with the signal inside.
    let mut published = 0u64;
    let mut refused = None;
    while published < 10_000 {
        let signal = numbered("audit.entry", published);
        published += 1;
        let report = p.rt.bus().publish(signal.clone()).unwrap();
        if let Some(failure) = report.failures.into_iter().next() {
            match failure {
                DeliveryFailure::SinkRefused {
                    signal: back,
                    reason,
                    ..
                } => {
                    assert_eq!(*back, signal, "the refused signal is handed back");
                    assert!(reason.contains("full"), "{reason}");
                    refused = Some(*back);
                    break;
                }
                other => panic!("unexpected failure: {other}"),
            }
        }
    }
    let refused = refused.expect("a publish was refused with the buffer full");
    let stats = export.stats();
    assert_eq!(stats.refused, 1, "{stats:?}");
    assert_eq!(stats.accepted + stats.refused, published, "{stats:?}");
    assert_eq!(stats.stored, 0, "{stats:?}");

    // The refused signal can be published again once there is room.
    server.restart();
    p.flush(&mut export);
    let report = p.rt.bus().publish(refused).unwrap();
    assert!(report.is_complete(), "{:?}", report.failures);
    p.flush(&mut export);
    let stats = export.stats();
    assert_eq!(stats.stored, stats.accepted, "{stats:?}");
    assert_eq!(stats.accepted, published, "{stats:?}");
    let messages = p.io.block_on(async {
        let stream = p.bridge.ensure_stream().await.unwrap();
        stream.get_info().await.unwrap().state.messages
    });
    assert_eq!(messages, published, "each signal stored once");
    drop(export);
    p.shutdown();
}

#[test]
fn a_producer_waits_for_room_instead_of_retrying() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let p = Process::start(&server);
    // One publish in flight: with the server down it is never
    // acknowledged, so once the buffer is full it stays full.
    let export = p.export(
        "audit.**",
        ExportOptions {
            buffer: 8,
            window: 1,
            ..ExportOptions::default()
        },
    );
    let room = export.room();
    assert_eq!(room.capacity(), 8);
    // Sizes no channel or server takes are refused up front, not a panic
    // or a pull refused forever.
    let too_big = p.io.block_on(p.bridge.export(
        &p.rt.bus(),
        "audit.**",
        ExportOptions {
            buffer: usize::MAX,
            ..ExportOptions::default()
        },
    ));
    assert!(
        matches!(
            too_big,
            Err(BridgeError::InvalidOption {
                what: "ExportOptions::buffer",
                ..
            })
        ),
        "{:?}",
        too_big.err()
    );
    let too_big = p.io.block_on(p.bridge.import(
        ImportOptions {
            batch: usize::MAX,
            ..ImportOptions::new("huge", "audit.**")
        },
        ImportTarget::Bus(p.rt.bus()),
    ));
    assert!(
        matches!(
            too_big,
            Err(BridgeError::InvalidOption {
                what: "ImportOptions::batch",
                ..
            })
        ),
        "{:?}",
        too_big.err()
    );
    server.kill();

    // With nothing acknowledged the buffer fills and stays full.
    let mut published = 0u64;
    let refused = loop {
        let signal = numbered("audit.entry", published);
        published += 1;
        let report = p.rt.bus().publish(signal).unwrap();
        if let Some(DeliveryFailure::SinkRefused { signal, .. }) =
            report.failures.into_iter().next()
        {
            break *signal;
        }
        assert!(published < 100_000, "the buffer never filled");
    };
    assert_eq!(
        room.wait(4, Duration::from_millis(50)),
        Err(RoomError::TimedOut),
        "no room while the server is down"
    );

    // A producer parked on the room is woken once the export drains, and
    // the room it waited for is there: four publishes in a row are taken.
    let waiter = {
        let room = room.clone();
        std::thread::spawn(move || room.wait(4, Duration::from_secs(60)))
    };
    server.restart();
    assert_eq!(waiter.join().unwrap(), Ok(()));
    room.wait(4, Duration::from_secs(60)).unwrap();
    let report = p.rt.bus().publish(refused).unwrap();
    assert!(report.is_complete(), "{:?}", report.failures);
    for seq in published..published + 3 {
        let report = p.rt.bus().publish(numbered("audit.entry", seq)).unwrap();
        assert!(report.is_complete(), "{:?}", report.failures);
    }
    let stats = p.io.block_on(export.stop());
    assert_eq!(stats.stored, published + 3, "{stats:?}");
    assert_eq!(
        room.wait(1, Duration::from_secs(60)),
        Err(RoomError::Stopped),
        "a stopped export has no room"
    );
    p.shutdown();
}

// ---------------------------------------------------------------------------
// 9. Deduplication by signal id, and required emits into the export
// ---------------------------------------------------------------------------

#[test]
fn a_signal_published_twice_is_stored_once() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let p = Process::start(&server);
    let mut export = p.export("audit.**", ExportOptions::default());
    let signal = numbered("audit.entry", 7);
    // The same signal (same id) twice, as a producer retrying after a lost
    // acknowledgement would: JetStream keeps the first.
    p.publish(signal.clone());
    p.flush(&mut export);
    p.publish(signal);
    p.publish(numbered("audit.entry", 8));
    p.flush(&mut export);
    let stats = export.stats();
    assert_eq!(
        (stats.accepted, stats.stored, stats.duplicates),
        (3, 3, 1),
        "{stats:?}"
    );
    let messages = p.io.block_on(async {
        let stream = p.bridge.ensure_stream().await.unwrap();
        stream.get_info().await.unwrap().state.messages
    });
    assert_eq!(messages, 2, "the republished id is stored once");
    drop(export);
    p.shutdown();
}

#[test]
fn a_required_emit_into_a_full_export_fails_the_action() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let p = Process::start(&server);
    let mut export = p.export(
        "bill.**",
        ExportOptions {
            buffer: 4,
            window: 2,
            ..ExportOptions::default()
        },
    );
    // Nothing is acknowledged: the buffer (4) fills behind the publishes
    // in flight (2), and stays full.
    server.kill();
    let biller =
        p.rt.spawn(&AgentSpec::<u64, u64>::new(0).on(
            "order.placed",
            |billed: &mut u64, ins: &mut Instruction| {
                *billed += 1;
                ins.emit_or_fail(Signal::new("bill.sent", "/billing", "")?);
                Ok(*billed)
            },
        ))
        .unwrap();
    let mut committed = 0u64;
    let refused = loop {
        match biller.call(numbered("order.placed", committed), WAIT) {
            Ok(n) => committed = n,
            Err(e) => break e,
        }
        assert!(
            committed <= 6,
            "more bills than room in the buffer and window"
        );
    };
    match refused {
        CallError::Action(e) => {
            assert_eq!(e.kind(), ActionErrorKind::Undeliverable, "{e}");
            assert!(e.text().contains("full"), "{e}");
        }
        other => panic!("expected the action to fail, got {other}"),
    }
    assert!(committed >= 4, "each committed action held its bill's room");
    assert_eq!(
        *biller.state().unwrap(),
        committed,
        "the refused action was undone"
    );
    assert!(
        p.rt.take_undelivered().is_empty(),
        "nothing was recorded lost"
    );
    server.restart();
    p.flush(&mut export);
    let stats = export.stats();
    assert_eq!(
        (stats.accepted, stats.stored),
        (committed, committed),
        "{stats:?}"
    );
    drop(export);
    p.shutdown();
}
