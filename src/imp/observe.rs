//! Observability: `tracing` spans and events, `metrics` counters,
//! histograms and gauges. Each feature swaps its half of this file in; with
//! neither, every type here is zero-sized and every function an empty
//! `#[inline]` one, so the runtime compiles to what it was without them
//! (the iai gate holds the default and `full` builds to their baselines).
//!
//! Takes plain values (ids as numbers, names as `&str`): the seams sit
//! below the rest of the crate and import nothing from it.
//!
//! Names and labels (one table; README "Observability" repeats it):
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `agentry_signals_accepted_total` | counter | `agent_type` | signals taken into a mailbox |
//! | `agentry_signals_processed_total` | counter | `agent_type` | instructions finished (ok or failed) |
//! | `agentry_actions_failed_total` | counter | `agent_type` | action runs that failed (error or panic) |
//! | `agentry_signals_refused_total` | counter | `agent_type`, `reason` | sends refused (`full`, `no_route`, `stopped`, `shutting_down`, `predicate_panicked`) |
//! | `agentry_signals_dead_lettered_total` | counter | `agent_type`, `reason` | accepted signals handed back (`stopped`, `shutdown`) |
//! | `agentry_emits_undelivered_total` | counter | | emitted or scheduled signals that could not be delivered |
//! | `agentry_queue_wait_seconds` | histogram | `agent_type` | from accepted to started |
//! | `agentry_action_seconds` | histogram | `agent_type` | running one instruction's actions |
//! | `agentry_mailbox_depth` | gauge | `agent_type` | accepted, not yet started, over all agents of the type |
//! | `agentry_live_agents` | gauge | | agents running |
//!
//! `agent_type` is the spec's name (`AgentSpec::name`), or `unnamed`.
//! Metric handles are registered when a spec is first spawned: install the
//! recorder before spawning.

#[cfg(feature = "metrics")]
use std::time::Instant;

/// What an instruction carries from its sender: the sender's current span
/// (the parent of the instruction's span, on whatever thread it runs) and
/// when it was accepted (queue wait).
#[derive(Default)]
pub struct Origin {
    #[cfg(feature = "tracing")]
    span: Option<tracing::Span>,
    #[cfg(feature = "metrics")]
    accepted_at: Option<Instant>,
}

impl Origin {
    /// Captures the sender's context (at accept).
    #[inline]
    pub fn capture(&mut self) {
        #[cfg(feature = "tracing")]
        if tracing::level_enabled!(tracing::Level::INFO) {
            let current = tracing::Span::current();
            self.span = (!current.is_none()).then_some(current);
        }
        #[cfg(feature = "metrics")]
        {
            self.accepted_at = Some(Instant::now());
        }
    }

    /// Forgets it (an instruction going back to the pool).
    #[inline]
    pub fn clear(&mut self) {
        #[cfg(feature = "tracing")]
        {
            self.span = None;
        }
        #[cfg(feature = "metrics")]
        {
            self.accepted_at = None;
        }
    }
}

/// Per agent type: its label and its metric handles.
pub struct KindObs {
    #[cfg(any(feature = "tracing", feature = "metrics"))]
    name: std::sync::Arc<str>,
    #[cfg(feature = "metrics")]
    m: KindMetrics,
}

#[cfg(feature = "metrics")]
struct KindMetrics {
    accepted: metrics::Counter,
    processed: metrics::Counter,
    failed: metrics::Counter,
    queue_wait: metrics::Histogram,
    action: metrics::Histogram,
    depth: metrics::Gauge,
}

impl KindObs {
    /// For the agent type named `name` (`None`: `unnamed`).
    pub fn new(name: Option<&str>) -> Self {
        #[cfg(any(feature = "tracing", feature = "metrics"))]
        let name: std::sync::Arc<str> = name.unwrap_or("unnamed").into();
        let _ = name;
        KindObs {
            #[cfg(feature = "metrics")]
            m: {
                let label = [("agent_type", name.to_string())];
                KindMetrics {
                    accepted: metrics::counter!("agentry_signals_accepted_total", &label),
                    processed: metrics::counter!("agentry_signals_processed_total", &label),
                    failed: metrics::counter!("agentry_actions_failed_total", &label),
                    queue_wait: metrics::histogram!("agentry_queue_wait_seconds", &label),
                    action: metrics::histogram!("agentry_action_seconds", &label),
                    depth: metrics::gauge!("agentry_mailbox_depth", &label),
                }
            },
            #[cfg(any(feature = "tracing", feature = "metrics"))]
            name,
        }
    }

    /// A signal was accepted into a mailbox of this type.
    #[inline]
    pub fn accepted(&self) {
        #[cfg(feature = "metrics")]
        {
            self.m.accepted.increment(1);
            self.m.depth.increment(1.0);
        }
    }

    /// A send was refused (`reason`: see the module table).
    #[inline]
    pub fn refused(&self, agent: u64, reason: &'static str, ty: &str) {
        #[cfg(feature = "tracing")]
        tracing::warn!(
            target: "agentry",
            agent,
            agent_type = &*self.name,
            reason,
            signal_type = ty,
            "signal refused"
        );
        #[cfg(feature = "metrics")]
        metrics::counter!(
            "agentry_signals_refused_total",
            "agent_type" => self.name.to_string(),
            "reason" => reason
        )
        .increment(1);
        let _ = (agent, reason, ty);
    }

    /// `n` accepted signals were handed back (`reason`: `stopped` or
    /// `shutdown`).
    #[inline]
    pub fn dead_lettered(&self, agent: u64, n: usize, reason: &'static str) {
        if n == 0 {
            return;
        }
        #[cfg(feature = "tracing")]
        tracing::info!(
            target: "agentry",
            agent,
            agent_type = &*self.name,
            count = n,
            reason,
            "signals dead-lettered"
        );
        #[cfg(feature = "metrics")]
        {
            metrics::counter!(
                "agentry_signals_dead_lettered_total",
                "agent_type" => self.name.to_string(),
                "reason" => reason
            )
            .increment(n as u64);
            self.m.depth.decrement(n as f64);
        }
        let _ = (agent, n, reason);
    }

    /// An action run failed.
    #[inline]
    pub fn failed(&self, agent: u64, route: u64, error: &dyn std::fmt::Display, call: bool) {
        #[cfg(feature = "tracing")]
        tracing::warn!(
            target: "agentry",
            agent,
            agent_type = &*self.name,
            route,
            call,
            error = %error,
            "action failed"
        );
        #[cfg(feature = "metrics")]
        self.m.failed.increment(1);
        let _ = (agent, route, error, call);
    }

    /// The agent stopped.
    #[inline]
    pub fn stopped(&self, agent: u64, dead_letters: usize) {
        #[cfg(feature = "tracing")]
        tracing::info!(
            target: "agentry",
            agent,
            agent_type = &*self.name,
            dead_letters,
            "agent stopped"
        );
        let _ = (agent, dead_letters);
    }
}

/// Where an instruction is running: its span is entered until this drops,
/// and its action time is recorded then.
pub struct InstructionScope<'a> {
    #[cfg(feature = "tracing")]
    _entered: Option<tracing::span::EnteredSpan>,
    #[cfg(feature = "metrics")]
    started: (Instant, &'a KindObs),
    #[cfg(not(feature = "metrics"))]
    _kind: std::marker::PhantomData<&'a KindObs>,
}

/// What an instruction's span reads of its signal (implemented by
/// `Signal`; read only when a subscriber wants the span).
pub trait SignalView {
    /// The id.
    fn id(&self) -> &dyn std::fmt::Display;
    /// The type.
    fn ty(&self) -> &str;
    /// The source.
    fn source(&self) -> &str;
    /// A W3C `traceparent` extension, if the signal carries one.
    fn traceparent(&self) -> Option<&str>;
}

/// What the instruction's span records.
pub struct InstructionInfo<'a> {
    pub agent: u64,
    pub signal: &'a dyn SignalView,
    /// The first route's action.
    pub action: &'a str,
    /// The position of the instruction in its batch.
    pub batch_index: usize,
    pub call: bool,
}

impl KindObs {
    /// An instruction of this type starts: enters its span (a child of the
    /// sender's) and records its queue wait.
    #[inline]
    pub fn instruction<'i>(
        &self,
        origin: &Origin,
        info: impl FnOnce() -> InstructionInfo<'i>,
    ) -> InstructionScope<'_> {
        #[cfg(feature = "metrics")]
        let now = {
            let now = Instant::now();
            if let Some(at) = origin.accepted_at {
                self.m.queue_wait.record(now.saturating_duration_since(at));
            }
            self.m.depth.decrement(1.0);
            now
        };
        #[cfg(not(feature = "tracing"))]
        let _ = (origin, info);
        InstructionScope {
            #[cfg(feature = "tracing")]
            // Nothing listening at INFO: no span at all (one load).
            _entered: tracing::level_enabled!(tracing::Level::INFO).then(|| {
                let info = info();
                let parent = origin.span.as_ref().and_then(|s| s.id());
                tracing::info_span!(
                    target: "agentry",
                    parent: parent,
                    "instruction",
                    agent = info.agent,
                    agent_type = &*self.name,
                    signal_id = %info.signal.id(),
                    signal_type = info.signal.ty(),
                    source = info.signal.source(),
                    action = info.action,
                    batch_index = info.batch_index,
                    call = info.call,
                    traceparent = info.signal.traceparent(),
                )
                .entered()
            }),
            #[cfg(feature = "metrics")]
            started: (now, self),
            #[cfg(not(feature = "metrics"))]
            _kind: std::marker::PhantomData,
        }
    }
}

/// Ends the instruction: records its action time (`metrics`); the span,
/// if any, is exited as its guard drops.
impl Drop for InstructionScope<'_> {
    #[inline]
    fn drop(&mut self) {
        #[cfg(feature = "metrics")]
        {
            let (at, kind) = self.started;
            kind.m.action.record(at.elapsed());
            kind.m.processed.increment(1);
        }
    }
}

/// An emitted or scheduled signal could not be delivered.
#[inline]
pub fn undelivered(from: &dyn std::fmt::Debug, failure: &dyn std::fmt::Display) {
    #[cfg(feature = "tracing")]
    tracing::warn!(target: "agentry", from = ?from, failure = %failure, "signal undelivered");
    #[cfg(feature = "metrics")]
    metrics::counter!("agentry_emits_undelivered_total").increment(1);
    let _ = (from, failure);
}

/// The number of live agents changed.
#[inline]
pub fn live_agents(n: usize) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("agentry_live_agents").set(n as f64);
    let _ = n;
}

/// The runtime shut down.
#[inline]
pub fn shutdown(accepted: u64, processed: u64, dead_lettered: u64, pending_timers: usize) {
    #[cfg(feature = "tracing")]
    tracing::info!(
        target: "agentry",
        accepted,
        processed,
        dead_lettered,
        pending_timers,
        "runtime shut down"
    );
    let _ = (accepted, processed, dead_lettered, pending_timers);
}
