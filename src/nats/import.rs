//! [`Import`]: a durable JetStream consumer delivering into an agent or
//! onto the bus, acknowledging each message after what it became commits.
//!
//! The fetch loop keeps pull requests in flight on one inbox (`pull`: the
//! server fills the next request while the loop works), decodes each
//! message and delivers it with a [`Receipt`]; the receipt's callback (on
//! the worker that settled the last instruction) passes the verdict to the
//! acknowledging task. So nothing is acknowledged before its instructions
//! committed, the fetch loop never waits for an agent, and the consumer's
//! `max_ack_pending` bounds how many messages are between the server and a
//! commit.
//!
//! | what happened | verdict |
//! |---|---|
//! | every instruction committed | ack |
//! | mailbox full, agent stopped, runtime shutting down, nobody subscribed, a bus subscriber's buffer full (an export), a required emit of the action undeliverable (a downstream mailbox or export full) | no ack: nak with a delay doubling per delivery (redelivered, never dropped) |
//! | does not decode, no route, an action failed (rolled back) | dead-letter subject with the reason, then ack |
//! | the filter was wider than the pattern and the type does not match | ack (not this import's) |

use super::pull::{Pulled, Pulls};
use super::{Bridge, BridgeError, backoff, subject};
use crate::action::ActionErrorKind;
use crate::bus::{Bus, PublishError};
use crate::exec::AgentAddr;
use crate::exec::receipt::{Receipt, Settled};
use crate::router::Pattern;
use crate::signal::Signal;
use crate::vocab::error::{CallError, SendErrorKind};
use crate::vocab::report::DeliveryFailure;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::message::Acker;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Where imported signals go.
#[derive(Clone, Debug)]
pub enum ImportTarget {
    /// Sent to this agent (its routes pick the actions).
    Agent(AgentAddr),
    /// Published on this bus, to every subscriber of the type.
    Bus(Bus),
}

/// How an [`Import`] consumes.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The durable consumer's name: an import started again with the same
    /// name resumes after the last acknowledged message.
    pub consumer: String,
    /// Which signal types to take (a route pattern: `order.*`, `audit.**`).
    pub pattern: String,
    /// Messages delivered but not yet acknowledged, at most (the server
    /// stops delivering at this many).
    pub max_ack_pending: usize,
    /// Messages asked for per pull request. The import asks for two
    /// batches at the start and one more per batch received, and renews a
    /// request every half second so one is always waiting at the server.
    pub batch: usize,
    /// How long the server waits for an acknowledgement before it
    /// redelivers (a process that died mid-way). A message still queued
    /// in the agent's mailbox when it passes is delivered again (a
    /// duplicate, which at least once allows and `SeenIds` skips): keep
    /// `max_ack_pending` below what the agent commits within `ack_wait`.
    pub ack_wait: Duration,
    /// The first redelivery delay of a message that could not be taken
    /// (a full mailbox); it doubles per delivery up to `redeliver_max`.
    pub redeliver_min: Duration,
    /// The longest redelivery delay.
    pub redeliver_max: Duration,
}

impl ImportOptions {
    /// Consumer `consumer` taking the signals whose type matches `pattern`,
    /// with the defaults for the rest.
    pub fn new(consumer: impl Into<String>, pattern: impl Into<String>) -> Self {
        ImportOptions {
            consumer: consumer.into(),
            pattern: pattern.into(),
            max_ack_pending: 8_192,
            batch: 512,
            ack_wait: Duration::from_secs(30),
            redeliver_min: Duration::from_millis(20),
            redeliver_max: Duration::from_secs(2),
        }
    }
}

/// What an import has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Messages received (a redelivery counts again).
    pub received: u64,
    /// Messages acknowledged after their instructions committed.
    pub committed: u64,
    /// Messages handed back for redelivery (nak with a delay).
    pub redelivery: u64,
    /// Messages sent to the dead-letter subject (and acknowledged).
    pub dead_lettered: u64,
    /// Messages acknowledged without delivery (type outside the pattern).
    pub skipped: u64,
    /// Pull requests the server refused: the consumer was deleted, a
    /// request is over the consumer's own limits (an existing durable
    /// created with a `max_request_batch` below `batch`), or the server did
    /// not answer. The import asks again after a delay; a count that keeps
    /// growing means it receives nothing.
    pub refused_pulls: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    committed: AtomicU64,
    redelivery: AtomicU64,
    dead_lettered: AtomicU64,
    skipped: AtomicU64,
    refused_pulls: AtomicU64,
}

impl Counters {
    fn stats(&self) -> ImportStats {
        ImportStats {
            received: self.received.load(Ordering::Relaxed),
            committed: self.committed.load(Ordering::Relaxed),
            redelivery: self.redelivery.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            refused_pulls: self.refused_pulls.load(Ordering::Relaxed),
        }
    }
}

/// A running import; see [`Bridge::import`].
pub struct Import {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<Counters>,
}

impl Bridge {
    /// Starts a durable consumer named `options.consumer` on the stream
    /// (creating both if needed) and delivers what it receives to
    /// `target`, acknowledging after commit (see the [module](super) docs).
    pub async fn import(
        &self,
        options: ImportOptions,
        target: ImportTarget,
    ) -> Result<Import, BridgeError> {
        if !subject::is_token(&options.consumer) {
            return Err(BridgeError::InvalidName {
                what: "consumer name",
                name: options.consumer,
            });
        }
        let pattern = Pattern::parse(&options.pattern).map_err(BridgeError::Pattern)?;
        // The server reads a request's batch as a signed 64-bit number; a
        // larger one would be refused on every pull, delivering nothing.
        let max_batch = usize::try_from(i64::MAX).unwrap_or(usize::MAX);
        if options.batch > max_batch {
            return Err(BridgeError::InvalidOption {
                what: "ImportOptions::batch",
                value: options.batch,
                max: max_batch,
            });
        }
        let (filter, exact) = subject::filter(self.prefix_str(), &pattern);
        let stream = self.ensure_stream().await?;
        let config = pull::Config {
            durable_name: Some(options.consumer.clone()),
            filter_subject: filter,
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: options.ack_wait,
            max_ack_pending: i64::try_from(options.max_ack_pending).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let consumer = stream
            .get_or_create_consumer(&options.consumer, config)
            .await
            .map_err(|e| BridgeError::Consumer(e.to_string()))?;
        let counters = Arc::new(Counters::default());
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let acknowledger = Acknowledger {
            bridge: self.clone(),
            dead_letters: self.dead_letter_subject(&options.consumer),
            consumer: options.consumer.clone(),
            counters: counters.clone(),
            redeliver: (options.redeliver_min, options.redeliver_max),
        };
        let acks = tokio::spawn(acknowledger.run(ack_rx));
        let fetch = Fetch {
            consumer,
            client: self.client().clone(),
            js: self.js().clone(),
            batch: options.batch.max(1),
            pattern: (!exact).then_some(pattern),
            target,
            counters: counters.clone(),
            acks: ack_tx,
        };
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            fetch.run(stopped).await;
            // Every receipt holds a sender: the acknowledger ends once
            // every delivered message has settled.
            let _ = acks.await;
        });
        Ok(Import {
            stop: Some(stop),
            task,
            counters,
        })
    }
}

impl Import {
    /// What the import has done so far.
    pub fn stats(&self) -> ImportStats {
        self.counters.stats()
    }

    /// Stops fetching, waits until every message already delivered has
    /// settled and been acknowledged (or handed back), and ends. Messages
    /// the server sent but the import had not taken yet are redelivered to
    /// the consumer's next run after `ack_wait`.
    pub async fn stop(mut self) -> ImportStats {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        self.counters.stats()
    }
}

impl Drop for Import {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What to tell the server about one message.
#[derive(Debug)]
enum Verdict {
    Ack,
    Skip,
    /// Redeliver later.
    Again,
    /// To the dead-letter subject, with the reason.
    Dead(String),
}

/// One message's verdict, with what acknowledging it needs.
struct Settlement {
    acker: Acker,
    verdict: Verdict,
    delivered: i64,
    sequence: u64,
    subject: async_nats::Subject,
    payload: Bytes,
}

/// The loop that takes messages and delivers them.
struct Fetch {
    consumer: async_nats::jetstream::consumer::Consumer<pull::Config>,
    client: async_nats::Client,
    /// Makes each message acknowledgeable.
    js: async_nats::jetstream::Context,
    batch: usize,
    /// Set when the filter subject is wider than the pattern.
    pattern: Option<Pattern>,
    target: ImportTarget,
    counters: Arc<Counters>,
    acks: mpsc::UnboundedSender<Settlement>,
}

impl Fetch {
    /// Keeps pull requests in flight (see [`Pulls`]) and takes each
    /// message as it comes. A refused request or a lost subscription is
    /// retried after a delay that doubles while nothing gets through.
    async fn run(self, mut stopped: oneshot::Receiver<()>) {
        let mut failures = 0u32;
        let mut pulls: Option<Pulls> = None;
        loop {
            if failures > 0 {
                let wait = backoff(
                    i64::from(failures),
                    Duration::from_millis(10),
                    Duration::from_secs(1),
                );
                tokio::select! {
                    _ = &mut stopped => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
            let active = match pulls.as_mut() {
                Some(active) => active,
                None => {
                    let started = tokio::select! {
                        _ = &mut stopped => return,
                        started = Pulls::start(&self.client, self.consumer.clone(), self.batch) => started,
                    };
                    match started {
                        Ok(started) => pulls.insert(started),
                        Err(_) => {
                            failures = failures.saturating_add(1);
                            continue;
                        }
                    }
                }
            };
            if active.wants_more() {
                let asked = tokio::select! {
                    _ = &mut stopped => return,
                    asked = active.top_up() => asked,
                };
                if asked.is_err() {
                    failures = failures.saturating_add(1);
                    continue;
                }
            }
            let pulled = tokio::select! {
                _ = &mut stopped => return,
                pulled = active.next() => pulled,
            };
            match pulled {
                Pulled::Message(message) => {
                    failures = 0;
                    self.take(async_nats::jetstream::Message {
                        message,
                        context: self.js.clone(),
                    });
                }
                Pulled::Refused => {
                    self.counters.refused_pulls.fetch_add(1, Ordering::Relaxed);
                    failures = failures.saturating_add(1);
                }
                Pulled::Closed => {
                    pulls = None;
                    failures = failures.saturating_add(1);
                }
            }
        }
    }

    fn take(&self, message: async_nats::jetstream::Message) {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        let (delivered, sequence) = message
            .info()
            .map_or((1, 0), |info| (info.delivered, info.stream_sequence));
        let (message, acker) = message.split();
        let mut settlement = Settlement {
            acker,
            verdict: Verdict::Ack,
            delivered,
            sequence,
            subject: message.subject,
            payload: message.payload,
        };
        let signal = match Signal::from_json(&settlement.payload) {
            Ok(signal) => signal,
            Err(e) => {
                settlement.verdict =
                    Verdict::Dead(format!("not a CloudEvent this runtime accepts: {e}"));
                let _ = self.acks.send(settlement);
                return;
            }
        };
        if let Some(pattern) = &self.pattern
            && !pattern.matches(signal.ty())
        {
            settlement.verdict = Verdict::Skip;
            let _ = self.acks.send(settlement);
            return;
        }
        // A refusal found while delivering overrides the settled outcome;
        // it is set before the receipt is sealed, and the receipt's
        // callback runs at the seal at the earliest.
        let refused: Arc<Mutex<Option<Verdict>>> = Arc::new(Mutex::new(None));
        let acks = self.acks.clone();
        let override_ = refused.clone();
        let receipt = Arc::new(Receipt::new(move |outcome: Settled| {
            let refusal = override_
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            settlement.verdict = refusal.unwrap_or_else(|| verdict_of(outcome));
            let _ = acks.send(settlement);
        }));
        let verdict = match &self.target {
            ImportTarget::Agent(addr) => addr
                .send_counted(signal, &receipt)
                .err()
                .map(|e| verdict_of_refusal(e.kind())),
            ImportTarget::Bus(bus) => match bus.publish_counted(signal, &receipt) {
                Ok(report) => verdict_of_report(&report.failures),
                Err(PublishError::NoSubscribers(_) | PublishError::ShuttingDown(_)) => {
                    Some(Verdict::Again)
                }
                Err(e) => Some(Verdict::Dead(e.to_string())),
            },
        };
        if verdict.is_some() {
            *refused.lock().unwrap_or_else(PoisonError::into_inner) = verdict;
        }
        receipt.seal();
    }
}

/// The verdict on a message whose deliveries all settled.
fn verdict_of(outcome: Settled) -> Verdict {
    match outcome {
        Ok(()) => Verdict::Ack,
        Err(CallError::Action(e)) if e.kind() == ActionErrorKind::Undeliverable => Verdict::Again,
        Err(CallError::Action(e)) => {
            Verdict::Dead(format!("the action failed and was undone: {e}"))
        }
        Err(_) => Verdict::Again,
    }
}

/// The verdict on a message an agent refused.
fn verdict_of_refusal(kind: &SendErrorKind) -> Verdict {
    match kind {
        SendErrorKind::MailboxFull { .. }
        | SendErrorKind::Stopped
        | SendErrorKind::ShuttingDown => Verdict::Again,
        other => Verdict::Dead(format!("the agent refused it: {other:?}")),
    }
}

/// The verdict on a publish some subscribers refused: redelivered if any
/// refusal may pass later (the copies that were taken will see it again:
/// at least once), dead-lettered if one never will.
fn verdict_of_report(failures: &[DeliveryFailure]) -> Option<Verdict> {
    let mut verdict = None;
    for failure in failures {
        let this = match failure {
            DeliveryFailure::Refused(e) => verdict_of_refusal(e.kind()),
            DeliveryFailure::SinkRefused { .. } | DeliveryFailure::ShuttingDown(_) => {
                Verdict::Again
            }
            other => Verdict::Dead(other.to_string()),
        };
        match (&verdict, this) {
            (Some(Verdict::Again), _) => {}
            (_, Verdict::Again) => verdict = Some(Verdict::Again),
            (None, dead) => verdict = Some(dead),
            (Some(_), _) => {}
        }
    }
    verdict
}

/// The task that tells the server each message's verdict.
struct Acknowledger {
    bridge: Bridge,
    consumer: String,
    dead_letters: String,
    counters: Arc<Counters>,
    redeliver: (Duration, Duration),
}

impl Acknowledger {
    async fn run(self, mut settled: mpsc::UnboundedReceiver<Settlement>) {
        let this = Arc::new(self);
        // Dead letters being stored; drained before the task ends, so
        // `Import::stop` returns with every message acknowledged.
        let mut dead = tokio::task::JoinSet::new();
        while let Some(s) = settled.recv().await {
            match s.verdict {
                Verdict::Ack => {
                    // Acks are fire-and-forget publishes, coalesced by the
                    // client's write buffer; a lost one means a redelivery,
                    // which the at-least-once contract allows.
                    if s.acker.ack().await.is_ok() {
                        this.counters.committed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Verdict::Skip => {
                    let _ = s.acker.ack().await;
                    this.counters.skipped.fetch_add(1, Ordering::Relaxed);
                }
                Verdict::Again => this.again(&s.acker, s.delivered).await,
                Verdict::Dead(_) => {
                    // Publishing the dead letter waits for JetStream; the
                    // other acknowledgements do not wait behind it.
                    let this = this.clone();
                    dead.spawn(async move { this.dead_letter(s).await });
                    // Reap the finished ones as we go.
                    while dead.try_join_next().is_some() {}
                }
            }
        }
        while dead.join_next().await.is_some() {}
    }

    async fn again(&self, acker: &Acker, delivered: i64) {
        let (min, max) = self.redeliver;
        let _ = acker
            .ack_with(AckKind::Nak(Some(backoff(delivered, min, max))))
            .await;
        self.counters.redelivery.fetch_add(1, Ordering::Relaxed);
    }

    async fn dead_letter(&self, s: Settlement) {
        let Verdict::Dead(reason) = &s.verdict else {
            return;
        };
        let message = PublishMessage::build()
            .payload(s.payload.clone())
            .message_id(format!("dead:{}:{}", self.consumer, s.sequence))
            .header("Agentry-Error", header_value(reason))
            .header("Agentry-Subject", s.subject.as_str())
            .header("Agentry-Stream-Sequence", s.sequence.to_string().as_str());
        let stored = match self
            .bridge
            .js()
            .send_publish(self.dead_letters.clone(), message)
            .await
        {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        if stored {
            let _ = s.acker.ack().await;
            self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
        } else {
            // The dead letter is not stored: keep the message.
            self.again(&s.acker, s.delivered).await;
        }
    }
}

/// `text` as one header line (no control characters).
fn header_value(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
