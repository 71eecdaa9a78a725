//! A bridge to NATS JetStream (feature `nats`): signals that cross
//! processes and machines durably, acknowledged only after they commit.
//!
//! # When to use it
//! One runtime is one process. When producers and consumers of signals
//! live in different processes (a web tier and a billing service, several
//! replicas of a worker), or a signal must survive the process that
//! emitted it, put a NATS server with JetStream between them: it stores,
//! acknowledges, redelivers and deduplicates. This module maps the
//! runtime's promises onto it; it is not a distributed runtime of its own.
//! Inside one process, keep using the bus and `send`: a hop through NATS
//! costs tens of microseconds, a local send a few hundred nanoseconds.
//!
//! # The pieces
//! * [`Bridge::export`](crate::nats::Bridge::export): every signal published on the bus whose type
//!   matches a pattern goes to the stream, with its id as the JetStream
//!   deduplication id (`Nats-Msg-Id`), so a publish retried after a lost
//!   acknowledgement is stored once. The export's buffer is bounded: when
//!   it is full (JetStream unreachable for long), the bus reports the
//!   signal refused ([`DeliveryFailure::SinkRefused`](crate::DeliveryFailure::SinkRefused)),
//!   like a full mailbox, instead of growing without end. A required emit
//!   ([`Instruction::emit_or_fail`](crate::Instruction::emit_or_fail), or
//!   `Undeliverable::FailAction`) holds room in the buffer before its
//!   action commits, as it reserves a mailbox slot: when the buffer is
//!   full the action fails instead, and an import that delivered the
//!   signal it ran on hands that message back for redelivery. A plain
//!   `emit` that finds it full after the commit is recorded as
//!   undelivered (`Runtime::take_undelivered`, `on_undelivered`): an agent
//!   fed by an import that must pass every signal on uses a required emit.
//!   A producer that outruns JetStream waits on [`Export::room`](crate::nats::Export::room)
//!   (parked until part of the buffer is free) and publishes again,
//!   rather than retrying a refused publish in a loop.
//! * [`Bridge::import`](crate::nats::Bridge::import): a durable pull consumer delivers into an agent or
//!   onto the bus. A message is acknowledged only after every instruction
//!   it became has committed ([`AgentRef::send_settled`](crate::AgentRef::send_settled)).
//!   A full mailbox, a stopped agent or an undeliverable required emit is
//!   not acknowledged: it is redelivered with exponential backoff, never
//!   dropped. A message that does not decode, has no route, or whose
//!   action fails goes to the dead-letter subject `<prefix>.dead.<consumer>`
//!   (kept by the stream) with the reason in the `Agentry-Error` header,
//!   and is then acknowledged so it does not loop.
//! * [`Bridge::serve`](crate::nats::Bridge::serve) and [`RemoteAgent::call`](crate::nats::RemoteAgent::call): a `call` to an agent in
//!   another process through NATS request/reply, answered with the same
//!   [`CallError`](crate::CallError)s and bound by the same timeout as a
//!   local call.
//!   What the acknowledgement covers is the commit: signals the action
//!   emitted are then in the bus's hands, and one that goes to another
//!   export sits in that export's memory buffer until JetStream stores it
//!   (`Export::flush`); a crash in between loses it. Where that matters,
//!   flush the export at the points that must be durable.
//! * [`SeenIds`](crate::nats::SeenIds): end to end the bridge delivers at least once (a crash
//!   between commit and acknowledgement redelivers). An agent that must
//!   apply each signal once keeps the recent ids in its state and skips
//!   repeats; since the set is part of the state, it commits and rolls
//!   back with the change it guards.
//!
//! # The wire
//! Signals travel as structured-mode CloudEvents (`application/cloudevents+json`,
//! the crate's own codec, checked against the official SDK in
//! `tests/cloudevents_sdk.rs`), on subject `<prefix>.signal.<type>._` (see
//! the mapping in `subject`). Structured rather than binary mode: the event
//! is one self-describing document that any CloudEvents SDK reads without
//! knowing NATS header conventions (the official SDK's own NATS binding is
//! structured-only), and one codec serves the bus, files and the wire. The
//! cost is base64 for binary payloads; JSON payloads are embedded as they
//! are.
//!
//! # Runtime
//! The client is async: the bridge's tasks run on the tokio runtime that
//! calls [`Bridge::connect`](crate::nats::Bridge::connect) (or builds the client). Agents run on the
//! agent runtime's own workers as always; the bridge hands signals across
//! without blocking either.

mod dedup;
mod export;
mod import;
mod outgoing;
mod pull;
mod remote;
mod room;
mod subject;

pub use dedup::SeenIds;
pub use export::{Export, ExportOptions, ExportStats};
pub use import::{Import, ImportOptions, ImportStats, ImportTarget};
pub use remote::{RemoteAgent, Service};
pub use room::{ExportRoom, RoomError};

/// The client library the bridge is built on, re-exported so an
/// application uses the same version.
pub use async_nats;

use async_nats::jetstream;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A connection to a NATS server with JetStream, and where this runtime's
/// signals live there: a subject prefix and a stream.
///
/// Cheap to clone. Every process that exchanges signals uses the same
/// prefix and stream name.
#[derive(Clone)]
pub struct Bridge {
    client: async_nats::Client,
    js: jetstream::Context,
    prefix: Arc<str>,
    stream: Arc<str>,
}

impl fmt::Debug for Bridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge")
            .field("prefix", &self.prefix)
            .field("stream", &self.stream)
            .finish()
    }
}

/// The prefix of every subject the bridge uses, unless set.
pub const DEFAULT_PREFIX: &str = "agentry";
/// The JetStream stream the bridge keeps signals in, unless set.
pub const DEFAULT_STREAM: &str = "AGENTRY";
/// How long JetStream remembers a message id to drop a duplicate publish.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

impl Bridge {
    /// Connects to the NATS server at `url` (e.g. `nats://127.0.0.1:4222`),
    /// with the default prefix and stream. The client reconnects by itself
    /// when the connection drops.
    pub async fn connect(url: &str) -> Result<Bridge, BridgeError> {
        let client = async_nats::ConnectOptions::new()
            .name("agentry")
            .connect(url)
            .await
            .map_err(|e| BridgeError::Connect(e.to_string()))?;
        Ok(Bridge::new(client))
    }

    /// A bridge over a client the application connected itself.
    pub fn new(client: async_nats::Client) -> Bridge {
        let js = jetstream::new(client.clone());
        Bridge {
            client,
            js,
            prefix: DEFAULT_PREFIX.into(),
            stream: DEFAULT_STREAM.into(),
        }
    }

    /// Uses `prefix` (dot-separated tokens) before every subject, so that
    /// several applications can share a server.
    pub fn prefix(mut self, prefix: &str) -> Result<Bridge, BridgeError> {
        if !subject::is_prefix(prefix) {
            return Err(BridgeError::InvalidName {
                what: "subject prefix",
                name: prefix.to_owned(),
            });
        }
        self.prefix = prefix.into();
        Ok(self)
    }

    /// Keeps signals in the JetStream stream `name`.
    pub fn stream(mut self, name: &str) -> Result<Bridge, BridgeError> {
        if !subject::is_token(name) {
            return Err(BridgeError::InvalidName {
                what: "stream name",
                name: name.to_owned(),
            });
        }
        self.stream = name.into();
        Ok(self)
    }

    /// The underlying client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The subject a signal of type `ty` travels on.
    pub fn subject_of(&self, ty: &str) -> String {
        subject::of_type(&self.prefix, ty)
    }

    /// The dead-letter subject of the import consumer `consumer`.
    pub fn dead_letter_subject(&self, consumer: &str) -> String {
        subject::dead_letters(&self.prefix, consumer)
    }

    /// Creates the stream if it does not exist: file storage, every signal
    /// and dead-letter subject under the prefix, the
    /// [`DUPLICATE_WINDOW`]. Export and import call it; call it yourself
    /// to create the stream ahead.
    pub async fn ensure_stream(&self) -> Result<jetstream::stream::Stream, BridgeError> {
        let config = jetstream::stream::Config {
            name: self.stream.to_string(),
            subjects: vec![
                subject::all_signals(&self.prefix),
                subject::all_dead_letters(&self.prefix),
            ],
            storage: jetstream::stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        self.js
            .get_or_create_stream(config)
            .await
            .map_err(|e| BridgeError::Stream(e.to_string()))
    }

    pub(crate) fn js(&self) -> &jetstream::Context {
        &self.js
    }

    pub(crate) fn prefix_str(&self) -> &str {
        &self.prefix
    }
}

/// Why the bridge could not start, or a remote request could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BridgeError {
    /// The server could not be reached.
    Connect(String),
    /// A prefix, stream, consumer or service name is not one subject token
    /// (or, for a prefix, dot-separated tokens).
    InvalidName {
        /// Which name.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// An option is out of its range.
    InvalidOption {
        /// Which option.
        what: &'static str,
        /// The value given.
        value: usize,
        /// The largest value it takes.
        max: usize,
    },
    /// The pattern does not parse.
    Pattern(crate::PatternError),
    /// The stream could not be created or read.
    Stream(String),
    /// The consumer could not be created or read.
    Consumer(String),
    /// Subscribing on the server or on the bus failed.
    Subscribe(String),
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BridgeError::Connect(e) => write!(f, "cannot connect to the NATS server: {e}"),
            BridgeError::InvalidName { what, name } => write!(
                f,
                "`{name}` is not a valid {what}: it must be non-empty subject tokens without whitespace, `*` or `>`"
            ),
            BridgeError::InvalidOption { what, value, max } => {
                write!(f, "{what} is {value}, more than the {max} it can be")
            }
            BridgeError::Pattern(e) => write!(f, "invalid pattern: {e}"),
            BridgeError::Stream(e) => write!(f, "JetStream stream: {e}"),
            BridgeError::Consumer(e) => write!(f, "JetStream consumer: {e}"),
            BridgeError::Subscribe(e) => write!(f, "cannot subscribe: {e}"),
        }
    }
}

impl std::error::Error for BridgeError {}

/// The delay before the `delivery`-th redelivery of a message that could
/// not be taken: doubling from `min`, at most `max`.
pub(crate) fn backoff(delivery: i64, min: Duration, max: Duration) -> Duration {
    let doublings = u32::try_from(delivery.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    min.saturating_mul(1u32 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (min, max) = (Duration::from_millis(50), Duration::from_secs(2));
        assert_eq!(backoff(1, min, max), min);
        assert_eq!(backoff(2, min, max), Duration::from_millis(100));
        assert_eq!(backoff(4, min, max), Duration::from_millis(400));
        assert_eq!(backoff(30, min, max), max);
        assert_eq!(backoff(0, min, max), min);
    }
}
