//! Features `tracing` and `metrics`: the spans, events and metrics a small
//! scenario emits, captured by a test subscriber layer and the `metrics-util`
//! debugging recorder (never by reading logs). One global subscriber and one
//! global recorder serve every test of this binary; each test's agents have
//! an agent type of their own, so tests never read each other's records.

mod common;

use agentry::{ActionError, AgentSpec, Instruction, Runtime, Signal};
use common::sig;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

#[derive(Clone, Debug)]
struct SpanRecord {
    id: u64,
    name: String,
    fields: HashMap<String, String>,
    parent: Option<u64>,
}

#[derive(Clone, Debug)]
struct EventRecord {
    message: String,
    fields: HashMap<String, String>,
    /// The span the event was emitted in.
    span: Option<u64>,
}

#[derive(Default)]
struct Records {
    spans: Vec<SpanRecord>,
    events: Vec<EventRecord>,
}

struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

struct Capture(Arc<Mutex<Records>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields(HashMap::new());
        attrs.record(&mut fields);
        let parent = match attrs.parent() {
            Some(p) => Some(p.into_u64()),
            None if attrs.is_contextual() => ctx.current_span().id().map(Id::into_u64),
            None => None,
        };
        self.0.lock().unwrap().spans.push(SpanRecord {
            id: id.into_u64(),
            name: attrs.metadata().name().to_owned(),
            fields: fields.0,
            parent,
        });
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields(HashMap::new());
        event.record(&mut fields);
        let message = fields.0.remove("message").unwrap_or_default();
        self.0.lock().unwrap().events.push(EventRecord {
            message,
            fields: fields.0,
            span: ctx.current_span().id().map(Id::into_u64),
        });
    }
}

/// The process-wide subscriber and recorder, installed once.
fn observed() -> &'static (Arc<Mutex<Records>>, Snapshotter) {
    static ONCE: OnceLock<(Arc<Mutex<Records>>, Snapshotter)> = OnceLock::new();
    ONCE.get_or_init(|| {
        let records = Arc::new(Mutex::new(Records::default()));
        let subscriber = tracing_subscriber::registry().with(Capture(records.clone()));
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().expect("one recorder");
        (records, snapshotter)
    })
}

fn spans_of(agent_type: &str) -> Vec<SpanRecord> {
    let records = observed().0.lock().unwrap();
    records
        .spans
        .iter()
        .filter(|s| s.fields.get("agent_type").map(String::as_str) == Some(agent_type))
        .cloned()
        .collect()
}

fn events_of(agent_type: &str) -> Vec<EventRecord> {
    let records = observed().0.lock().unwrap();
    records
        .events
        .iter()
        .filter(|e| e.fields.get("agent_type").map(String::as_str) == Some(agent_type))
        .cloned()
        .collect()
}

/// Every metric with an `agent_type` label equal to `agent_type`, by name
/// plus its other labels, e.g. `agentry_signals_refused_total{reason=full}`.
fn metrics_of(agent_type: &str) -> HashMap<String, DebugValue> {
    let mut out = HashMap::new();
    for (key, _, _, value) in observed().1.snapshot().into_vec() {
        let key = key.key();
        let mut mine = false;
        let mut others = Vec::new();
        for label in key.labels() {
            if label.key() == "agent_type" {
                mine = label.value() == agent_type;
            } else {
                others.push(format!("{}={}", label.key(), label.value()));
            }
        }
        if mine {
            let name = if others.is_empty() {
                key.name().to_owned()
            } else {
                format!("{}{{{}}}", key.name(), others.join(","))
            };
            out.insert(name, value);
        }
    }
    out
}

fn counter(m: &HashMap<String, DebugValue>, name: &str) -> u64 {
    match m.get(name) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name}: {other:?}"),
    }
}

fn samples(m: &HashMap<String, DebugValue>, name: &str) -> usize {
    match m.get(name) {
        Some(DebugValue::Histogram(v)) => v.len(),
        other => panic!("{name}: {other:?}"),
    }
}

fn gauge(m: &HashMap<String, DebugValue>, name: &str) -> f64 {
    match m.get(name) {
        Some(DebugValue::Gauge(v)) => v.into_inner(),
        other => panic!("{name}: {other:?}"),
    }
}

/// "work" succeeds, "bad" fails, "relay" emits "audit" to the bus.
fn spec(name: &'static str) -> AgentSpec<u32, u32> {
    AgentSpec::new(0)
        .name(name)
        .on("work", |n: &mut u32, _: &mut Instruction| {
            *n += 1;
            Ok(*n)
        })
        .on("bad", |_: &mut u32, _: &mut Instruction| {
            Err(ActionError::rejected("deliberately bad"))
        })
        .on("relay", |n: &mut u32, ins: &mut Instruction| {
            ins.emit(Signal::new("audit", "/relay", "").map_err(ActionError::failed)?);
            Ok(*n)
        })
}

#[test]
fn an_instruction_span_is_a_child_of_the_senders_span_across_threads() {
    observed();
    let rt = Runtime::builder().workers(2).build().unwrap();
    let agent = rt.spawn(&spec("spans")).unwrap();
    let traced = Signal::builder("work", "/svc")
        .extension(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .build()
        .unwrap();
    let request = tracing::info_span!("request", agent_type = "spans-request");
    let request_id = request.id().map(|id| id.into_u64());
    request.in_scope(|| {
        agent.send(traced).unwrap();
        agent
            .call(sig("work", ""), Duration::from_secs(10))
            .unwrap();
    });
    assert!(rt.wait_idle(Duration::from_secs(10)));
    let spans = spans_of("spans");
    assert_eq!(spans.len(), 2, "{spans:?}");
    for span in &spans {
        assert_eq!(span.name, "instruction");
        assert_eq!(span.parent, request_id, "the sender's span is the parent");
        assert_eq!(span.fields["agent"], agent.id().get().to_string());
        assert_eq!(span.fields["signal_type"], "work");
        assert_eq!(span.fields["action"], "work");
        assert_eq!(
            span.fields["source"],
            if span.fields.contains_key("traceparent") {
                "/svc"
            } else {
                "/test"
            }
        );
    }
    let with_tp: Vec<_> = spans
        .iter()
        .filter(|s| s.fields.contains_key("traceparent"))
        .collect();
    assert_eq!(with_tp.len(), 1);
    assert_eq!(
        with_tp[0].fields["traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
    assert_eq!(with_tp[0].fields["call"], "false");
    let call = spans
        .iter()
        .find(|s| !s.fields.contains_key("traceparent"))
        .unwrap();
    assert_eq!(call.fields["call"], "true");
    rt.shutdown();
}

#[test]
fn events_and_metrics_of_a_small_scenario() {
    observed();
    let rt = Runtime::builder().deterministic().build().unwrap();
    let agent = rt.spawn(&spec("scenario")).unwrap();
    let small = rt.spawn(&spec("scenario").mailbox_capacity(1)).unwrap();
    for _ in 0..3 {
        agent.send(sig("work", "")).unwrap();
    }
    agent.send(sig("bad", "")).unwrap();
    agent.send(sig("relay", "")).unwrap(); // "audit" has no subscriber: undelivered
    assert!(agent.send(sig("nothing.routes.this", "")).is_err());
    small.send(sig("work", "")).unwrap();
    assert!(small.send(sig("work", "")).unwrap_err().is_full());
    rt.run_until_idle().unwrap();
    // Two queued signals handed back by a stop.
    agent.send(sig("work", "")).unwrap();
    agent.send(sig("work", "")).unwrap();
    let stopped = agent.stop();
    assert_eq!(stopped.dead_letters.len(), 2);

    // Spans: one per processed instruction (both agents are of this type;
    // the run queue interleaves their turns).
    let spans = spans_of("scenario");
    let mut types: Vec<&str> = spans
        .iter()
        .map(|s| s.fields["signal_type"].as_str())
        .collect();
    types.sort_unstable();
    assert_eq!(types, ["bad", "relay", "work", "work", "work", "work"]);
    assert!(
        spans.iter().all(|s| s.parent.is_none()),
        "sent from no span"
    );
    // Without batching each turn runs one instruction; with it, the 3 "work"
    // signals queued together run in one turn, at indexes 0, 1, 2.
    let mut indexes: Vec<usize> = spans
        .iter()
        .map(|s| s.fields["batch_index"].parse().unwrap())
        .collect();
    indexes.sort_unstable();
    if agentry::imp::Strategy::from_features().batching {
        assert_eq!(indexes.last(), Some(&4), "{indexes:?}");
    } else {
        assert!(indexes.iter().all(|&i| i == 0), "{indexes:?}");
    }
    // Events, with their reasons.
    let events = events_of("scenario");
    let summary: Vec<String> = events
        .iter()
        .map(|e| match e.fields.get("reason") {
            Some(reason) => format!("{}:{reason}", e.message),
            None => e.message.clone(),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "signal refused:no_route",
            "signal refused:full",
            "action failed",
            "signals dead-lettered:stopped",
            "agent stopped"
        ]
    );
    // The failure is reported inside the failing instruction's span.
    let failed = events
        .iter()
        .find(|e| e.message == "action failed")
        .unwrap();
    let bad_span = spans
        .iter()
        .find(|s| s.fields["signal_type"] == "bad")
        .unwrap();
    assert_eq!(failed.span, Some(bad_span.id));
    assert!(failed.fields["error"].contains("deliberately bad"));

    // Metrics.
    let m = metrics_of("scenario");
    assert_eq!(counter(&m, "agentry_signals_accepted_total"), 8);
    assert_eq!(counter(&m, "agentry_signals_processed_total"), 6);
    assert_eq!(counter(&m, "agentry_actions_failed_total"), 1);
    assert_eq!(
        counter(&m, "agentry_signals_refused_total{reason=no_route}"),
        1
    );
    assert_eq!(counter(&m, "agentry_signals_refused_total{reason=full}"), 1);
    assert_eq!(
        counter(&m, "agentry_signals_dead_lettered_total{reason=stopped}"),
        2
    );
    assert_eq!(samples(&m, "agentry_queue_wait_seconds"), 6);
    assert_eq!(samples(&m, "agentry_action_seconds"), 6);
    assert_eq!(gauge(&m, "agentry_mailbox_depth"), 0.0);
    let report = rt.shutdown();
    assert_eq!(report.metrics.undelivered, 1);
    let records = observed().0.lock().unwrap();
    assert!(
        records
            .events
            .iter()
            .any(|e| e.message == "signal undelivered")
    );
    assert!(
        records
            .events
            .iter()
            .any(|e| e.message == "runtime shut down")
    );
}
