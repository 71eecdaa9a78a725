//! # agentry
//!
//! An in-process runtime for signal-driven agents. An application defines
//! agents (a state value plus actions), routes [CloudEvents]-style
//! [`Signal`]s to them by type pattern, and the runtime turns each routed
//! signal into an [`Instruction`] that an [`Action`] executes against the
//! agent's state, on a small pool of worker threads.
//!
//! [CloudEvents]: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md
//!
//! ## A tour
//!
//! ```
//! use agentry::{ActionError, AgentSpec, Instruction, Runtime, Signal};
//! use std::time::Duration;
//!
//! // 1. The state of one agent, and what it replies to calls.
//! #[derive(Clone, Debug, Default, PartialEq)]
//! struct Account { balance: i64 }
//!
//! // 2. An agent type: named actions and the signal types routed to them.
//! //    Actions are atomic: an error or a panic rolls the state back.
//! let spec = AgentSpec::<Account, i64>::new(Account::default())
//!     .on("account.deposited", |acc: &mut Account, ins: &mut Instruction| {
//!         // The data as JSON, typed; bad input is an `invalid_input` error.
//!         acc.balance += ins.json::<i64>()?;
//!         Ok(acc.balance)
//!     })
//!     .on("account.withdrawn", |acc: &mut Account, ins: &mut Instruction| {
//!         acc.balance -= ins.json::<i64>()?;
//!         if acc.balance < 0 {
//!             return Err(ActionError::rejected("insufficient funds")); // rolled back
//!         }
//!         Ok(acc.balance)
//!     });
//!
//! // 3. A runtime: two worker threads shared by every agent.
//! let rt = Runtime::builder().workers(2).build()?;
//! let account = rt.spawn(&spec)?;
//!
//! // 4. send is fire-and-forget; call waits for the reply.
//! account.send(Signal::json("account.deposited", "/bank/teller", &100)?)?;
//! let err = account
//!     .call(Signal::json("account.withdrawn", "/bank/atm", &250)?, Duration::from_secs(5))
//!     .unwrap_err();
//! assert!(err.to_string().contains("insufficient funds"));
//!
//! // 5. state() is a consistent read of the committed state.
//! assert_eq!(account.state()?.balance, 100);
//!
//! // 6. A graceful shutdown finishes what was accepted first; anything
//! //    still queued at its deadline comes back as a dead letter.
//! let report = rt.shutdown_graceful(Duration::from_secs(5));
//! assert!(report.dead_letters.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Semantics every feature set shares
//! * Per sender, signals to one agent are processed in send order.
//! * A signal accepted by `send`/`call`/`publish` is processed exactly once,
//!   or handed back (stopped agent, shutdown) as a [`DeadLetter`]. Signals
//!   that are refused come back inside the error. A signal an action emits
//!   that no receiver takes after the commit is counted, kept and given to
//!   [`RuntimeBuilder::on_undelivered`]; [`Instruction::emit_or_fail`]
//!   makes such an emit fail the action instead.
//! * [`AgentRef::state`] returns the state after every instruction that
//!   completed before the query began, never a partly applied one.
//! * Errors are values with clear messages; no panic crosses the public API.
//!
//! ## Routing
//! Types are dot-separated segments (`order.item.created`). In patterns `*`
//! matches exactly one segment and `**` zero or more, so `order.**` matches
//! `order` itself, and a route on `order` does not fire for `order.item`.
//! Several matching routes all run, most specific first (comparing segment
//! kinds left to right: exact, then `*`, then the end of the pattern, then
//! `**`, so catch-alls come last), then by priority (-100..=100, higher
//! first), then in registration order. See [`router`].
//!
//! ## Deterministic mode
//! `Runtime::builder().deterministic()` has no worker threads; nothing runs
//! until [`Runtime::run_until_idle`], or a `call`, which runs its target up
//! to its own signal and returns its reply. Tests and instruction-count
//! benchmarks use it.
//!
//! ## Services
//! Agents spawned under a key are found again with [`Runtime::lookup`];
//! [`AgentSpec::on_send`] registers send-only actions beside the ones that
//! answer calls; [`AgentSpec::restart`] sets what a panic does and how
//! often before the agent stops; [`AgentRef::monitor`] tells a watcher
//! when an agent stops; [`Runtime::shutdown_graceful`] drains before
//! stopping. `examples/service.rs` combines them.
//!
//! ## Time and async
//! Timers send or publish signals later ([`AgentRef::send_after`],
//! [`AgentRef::send_interval`], [`Bus::publish_at`], ...; a
//! [`TimerHandle`] cancels); a deterministic runtime has a virtual clock
//! that [`Runtime::advance`] moves. Async code awaits
//! [`AgentRef::call_async`] and [`AgentRef::send_async`] on any executor; an
//! action starts async work with [`Instruction::start`] and gets its result
//! back as a signal.
//!
//! ## Beyond one process
//! Feature `nats`: `agentry::nats` bridges the bus to NATS JetStream.
//! Signals matching a pattern are exported as CloudEvents, deduplicated by
//! id; a durable consumer imports them into an agent or onto the bus and
//! acknowledges each only after what it became has committed
//! ([`AgentRef::send_settled`] is the primitive); a remote `call` goes
//! through request/reply with the local call's errors and timeout.
//!
//! ## Observability
//! Features `tracing` (a span per instruction, a child of the sender's
//! span, and events for refusals, failures, dead letters, undelivered
//! signals, stops and shutdown) and `metrics` (counters, histograms and
//! gauges per agent type through the `metrics` facade); both off by
//! default and compiled out when off. README "Observability" lists every
//! name and label.
//!
//! ## Optimizations
//! `fast-path`, `zero-copy`, `pooling`, `batching` and `mimalloc` are cargo
//! features that change speed and allocation, never results.
//! [`docs::features`] says what each one switches; [`features.md`] in the
//! repository has the measured figures. The [`docs`] pages are the design
//! notes (concurrency protocol and lock order, pool, snapshot).
//!
//! [`features.md`]: https://github.com/agentry-rs/agentry/blob/main/features.md
#![forbid(unsafe_code)]

pub mod action;
pub mod agent;
pub mod bus;
pub mod docs;
mod exec;
#[doc(hidden)]
pub mod imp;
pub mod instruction;
pub mod router;
pub mod runtime;
pub mod signal;
mod vocab;

pub use action::{Action, ActionError, ActionErrorKind, Query};
pub use agent::error::{
    CallError, LookupError, QueryError, ScheduleError, SendError, SendErrorKind, SpawnError,
};
pub use agent::{
    AgentAddr, AgentId, AgentRef, AgentSpec, AgentStopped, Atomicity, MemoStats, MonitorId,
    RestartFrom, RestartPolicy, RouteInfo, RouteSpec, StopReason, StopReport, Undeliverable,
};
pub use bus::{Bus, MAX_PUBLISH_DEPTH, PublishError, PublishReport, SubscriptionId};
/// `agentry::nats`: the NATS JetStream bridge (feature `nats`). Without
/// the feature the glob names nothing, hence the `allow`.
#[allow(unused_imports)]
pub use imp::bridges::*;
pub use instruction::Instruction;
pub use router::{Pattern, PatternError, Priority, RouteError, RouteId};
pub use runtime::report::{
    CancelledWork, DeadLetter, DeadLetterReason, DeliveryFailure, Drain, Failure, Metrics,
    PendingTimer, ShutdownReport, TimerTarget, Undelivered, UndeliveredFrom,
};
pub use runtime::{
    BoxFuture, BuildError, FailureHook, RunError, Runtime, RuntimeBuilder, Steps, TimerHandle,
    UndeliveredHook,
};
pub use signal::{
    DecodeError, ExtensionValue, Limits, Payload, Signal, SignalBuilder, SignalError, SignalId,
    Text,
};
pub use vocab::TimerId;

/// The optimization and observability features this build of agentry was
/// compiled with, by name (`"fast-path"`, `"batching"`, ...), for a
/// program's banner or a benchmark report. Features never change results,
/// only speed and allocation (see [`docs::features`]).
pub fn enabled_features() -> &'static [&'static str] {
    imp::enabled_features()
}

/// Internals exposed for the benchmarks; not part of the API.
#[doc(hidden)]
pub mod bench_support {
    pub use crate::agent::routes::RouteResolver;
    pub use crate::instruction::pool::{checkout, give_back};
}

/// README.md's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
