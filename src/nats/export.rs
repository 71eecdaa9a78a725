//! [`Export`]: bus signals to a JetStream stream, deduplicated by id.
//!
//! A bus sink (run on the publishing thread) encodes each matching signal
//! and puts it in a bounded buffer, numbered; one task publishes from the
//! buffer in order, keeping up to `window` publishes in flight (a new one
//! goes out as each acknowledgement comes back), and republishes, with the
//! same `Nats-Msg-Id`, those that were not acknowledged (a lost
//! connection, a restarting server), first, after a delay that doubles
//! while nothing gets through. JetStream drops a republish it already
//! stored, so a signal is stored once whichever acknowledgement was lost.
//! A republish can land after signals published later: order holds until
//! a publish fails. The numbers let [`Export::flush`] wait for every
//! signal accepted before it, not merely as many.
//!
//! The sink refuses a signal when the buffer is full, which the bus reports
//! as it reports a full mailbox, and one larger than the server's
//! `max_payload`, which no retry would ever store.

use super::outgoing::Outgoing;
use super::room::ExportRoom;
use super::{Bridge, BridgeError, subject};
use crate::bus::Bus;
use crate::exec::listener::{Sink, SinkSlot};
use crate::router::Pattern;
use crate::signal::Signal;
use crate::vocab::SubscriptionId;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// The longest republish delay the clock is asked to add.
const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// How an [`Export`] buffers and publishes.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Signals waiting for JetStream before the sink refuses more (on top
    /// of the up to `window` being published).
    pub buffer: usize,
    /// Publishes in flight (sent, acknowledgement awaited) at once.
    pub window: usize,
    /// The first delay before republishing what was not acknowledged;
    /// it doubles up to `retry_max`.
    pub retry_min: Duration,
    /// The longest delay between republishes.
    pub retry_max: Duration,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            buffer: 65_536,
            window: 1_024,
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_secs(2),
        }
    }
}

/// What an export has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Signals taken into the buffer.
    pub accepted: u64,
    /// Signals JetStream acknowledged (stored, or recognised as a duplicate).
    pub stored: u64,
    /// Of those, the ones JetStream recognised as duplicates.
    pub duplicates: u64,
    /// Publishes sent again after no acknowledgement came.
    pub retried: u64,
    /// Signals the sink refused because the buffer was full.
    pub refused: u64,
}

#[derive(Default)]
struct Counters {
    /// Also the next signal's number.
    accepted: AtomicU64,
    stored: AtomicU64,
    duplicates: AtomicU64,
    retried: AtomicU64,
    refused: AtomicU64,
}

/// The bus side of an export: encodes a signal into the bounded buffer
/// (on the publishing thread), or holds room in it for a required emit.
struct ExportSink {
    tx: mpsc::Sender<Outgoing>,
    prefix: Arc<str>,
    /// The server's limit on one message.
    max_payload: usize,
    counters: Arc<Counters>,
}

/// Room held in the buffer for one signal of a required emit, with the
/// signal already encoded.
struct ExportSlot {
    permit: mpsc::OwnedPermit<Outgoing>,
    outgoing: Outgoing,
    counters: Arc<Counters>,
}

/// Room for the headers (`Nats-Msg-Id`, content type) beside the payload.
const HEADER_ROOM: usize = 256;

const FULL: &str = "the NATS export's buffer is full (JetStream is not keeping up, or unreachable)";
const STOPPED: &str = "the NATS export has stopped";

impl ExportSink {
    /// `signal` encoded, numbered later; refused if no server would take it.
    fn encode(&self, signal: &Signal) -> Result<Outgoing, String> {
        let payload = Bytes::from(signal.to_json_vec());
        if payload.len() + HEADER_ROOM > self.max_payload {
            return Err(format!(
                "`{}` is {} bytes as a CloudEvent, more than the NATS server takes in one message ({} bytes)",
                signal.ty(),
                payload.len(),
                self.max_payload
            ));
        }
        Ok(Outgoing {
            number: 0,
            subject: subject::of_type(&self.prefix, signal.ty()).into(),
            id: signal.id().to_string(),
            payload,
        })
    }

    fn refused(&self, error: mpsc::error::TrySendError<()>) -> String {
        match error {
            mpsc::error::TrySendError::Full(()) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                FULL.to_owned()
            }
            mpsc::error::TrySendError::Closed(()) => STOPPED.to_owned(),
        }
    }
}

impl Sink for ExportSink {
    fn offer(&self, signal: &Signal) -> Result<(), String> {
        // Room first: a refused signal costs no encoding.
        let permit = self.tx.try_reserve().map_err(|e| self.refused(e))?;
        let mut outgoing = self.encode(signal)?;
        outgoing.number = self.counters.accepted.fetch_add(1, Ordering::AcqRel);
        permit.send(outgoing);
        Ok(())
    }

    fn reserve(&self, signal: &Signal) -> Result<Box<dyn SinkSlot>, String> {
        let permit = self.tx.clone().try_reserve_owned().map_err(|e| {
            self.refused(match e {
                mpsc::error::TrySendError::Full(_) => mpsc::error::TrySendError::Full(()),
                mpsc::error::TrySendError::Closed(_) => mpsc::error::TrySendError::Closed(()),
            })
        })?;
        Ok(Box::new(ExportSlot {
            permit,
            outgoing: self.encode(signal)?,
            counters: self.counters.clone(),
        }))
    }
}

impl SinkSlot for ExportSlot {
    fn fill(self: Box<Self>, _signal: &Signal) -> Result<(), String> {
        let ExportSlot {
            permit,
            mut outgoing,
            counters,
        } = *self;
        outgoing.number = counters.accepted.fetch_add(1, Ordering::AcqRel);
        permit.send(outgoing);
        Ok(())
    }
}

/// A running export; see [`Bridge::export`]. Stop it with
/// [`stop`](Self::stop) to unsubscribe and publish what is buffered.
pub struct Export {
    bus: Bus,
    subscription: SubscriptionId,
    counters: Arc<Counters>,
    /// Every signal numbered below this is stored.
    stored_below: watch::Receiver<u64>,
    room: ExportRoom,
    close: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Bridge {
    /// Forwards every signal published on `bus` whose type matches
    /// `pattern` to the stream (creating the stream if needed).
    pub async fn export(
        &self,
        bus: &Bus,
        pattern: &str,
        options: ExportOptions,
    ) -> Result<Export, BridgeError> {
        Pattern::parse(pattern).map_err(BridgeError::Pattern)?;
        if options.buffer > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(BridgeError::InvalidOption {
                what: "ExportOptions::buffer",
                value: options.buffer,
                max: tokio::sync::Semaphore::MAX_PERMITS,
            });
        }
        self.ensure_stream().await?;
        let (tx, rx) = mpsc::channel::<Outgoing>(options.buffer.max(1));
        let room = ExportRoom::new(tx.downgrade(), options.buffer.max(1));
        let counters = Arc::new(Counters::default());
        let (stored_tx, stored_below) = watch::channel(0u64);
        let sink = Arc::new(ExportSink {
            tx,
            prefix: self.prefix_str().into(),
            max_payload: self.client().server_info().max_payload,
            counters: counters.clone(),
        });
        let subscription = bus
            .subscribe_reserving(pattern, sink)
            .map_err(|e| BridgeError::Subscribe(e.to_string()))?;
        let (close, closed) = oneshot::channel();
        let publisher = Publisher {
            bridge: self.clone(),
            options,
            counters: counters.clone(),
            stored_below: stored_tx,
        };
        let task = tokio::spawn(publisher.run(rx, closed));
        Ok(Export {
            bus: bus.clone(),
            subscription,
            counters,
            stored_below,
            room,
            close: Some(close),
            task: Some(task),
        })
    }
}

impl Export {
    /// What the export has done so far.
    pub fn stats(&self) -> ExportStats {
        ExportStats {
            accepted: self.counters.accepted.load(Ordering::Relaxed),
            stored: self.counters.stored.load(Ordering::Relaxed),
            duplicates: self.counters.duplicates.load(Ordering::Relaxed),
            retried: self.counters.retried.load(Ordering::Relaxed),
            refused: self.counters.refused.load(Ordering::Relaxed),
        }
    }

    /// A handle to wait for room in the buffer: a producer whose publish
    /// was refused (`DeliveryFailure::SinkRefused`) waits on it, then
    /// publishes again, rather than retrying in a loop.
    pub fn room(&self) -> ExportRoom {
        self.room.clone()
    }

    /// Waits until every signal accepted before the call is acknowledged
    /// by JetStream (it waits through a server restart: the export keeps
    /// republishing; wrap it in a timeout to give up).
    pub async fn flush(&mut self) {
        let target = self.counters.accepted.load(Ordering::Acquire);
        // The publisher ends only after storing everything it had; an
        // error here means it is gone, so there is nothing to wait for.
        let _ = self.stored_below.wait_for(|below| *below >= target).await;
    }

    /// Unsubscribes from the bus, then waits until the publisher has
    /// stored everything it accepted, including a required emit whose
    /// room was held before the unsubscribe and is filled after it (wrap
    /// it in a timeout to give up while the server is unreachable).
    pub async fn stop(mut self) -> ExportStats {
        self.unsubscribe_and_close();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.stats()
    }

    fn unsubscribe_and_close(&mut self) {
        // The subscription may already be gone with a shut-down runtime.
        let _ = self.bus.unsubscribe(self.subscription);
        if let Some(close) = self.close.take() {
            let _ = close.send(());
        }
    }
}

impl Drop for Export {
    /// Unsubscribes; the publisher still stores what was accepted, then
    /// ends.
    fn drop(&mut self) {
        self.unsubscribe_and_close();
    }
}

/// The task that drains the buffer into JetStream.
struct Publisher {
    bridge: Bridge,
    options: ExportOptions,
    counters: Arc<Counters>,
    stored_below: watch::Sender<u64>,
}

/// Which numbered signals are stored: all below `below`, and `above`.
#[derive(Default)]
struct Stored {
    below: u64,
    above: BTreeSet<u64>,
}

impl Stored {
    fn add(&mut self, number: u64) {
        if number != self.below {
            self.above.insert(number);
            return;
        }
        self.below += 1;
        while self.above.remove(&self.below) {
            self.below += 1;
        }
    }
}

impl Publisher {
    /// Keeps up to `window` publishes in flight: each signal is sent in
    /// buffer order as soon as the window has room, and its acknowledgement
    /// is awaited alongside the others (their timeouts run together, so a
    /// lost connection costs one timeout, not one per publish). What is
    /// not acknowledged is sent again, first, once a delay has passed that
    /// doubles while nothing gets through. After `closed` fires the buffer
    /// takes no more; the task ends when everything in it is stored.
    async fn run(self, mut rx: mpsc::Receiver<Outgoing>, mut closed: oneshot::Receiver<()>) {
        let window = self.options.window.max(1);
        let mut in_flight = FuturesUnordered::new();
        let mut again: VecDeque<Outgoing> = VecDeque::new();
        let mut stored = Stored::default();
        let mut failures = 0u32;
        let mut retry_at: Option<Instant> = None;
        let mut open = true;
        let mut closing = false;
        loop {
            let retry_due = retry_at.is_none_or(|at| Instant::now() >= at);
            // Fill the window: republishes first (once due), then the buffer.
            while in_flight.len() < window {
                let next = if retry_due && let Some(out) = again.pop_front() {
                    out
                } else if open && again.is_empty() {
                    match rx.try_recv() {
                        Ok(out) => out,
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            open = false;
                            break;
                        }
                    }
                } else {
                    break;
                };
                let publish = self.send(next).await;
                in_flight.push(publish);
            }
            if in_flight.is_empty() && again.is_empty() && !open {
                return;
            }
            let can_take = open && again.is_empty() && in_flight.len() < window;
            let retry_wait = async {
                match retry_at {
                    Some(at) if !again.is_empty() => tokio::time::sleep_until(at).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                acked = in_flight.next(), if !in_flight.is_empty() => {
                    let Some((out, ack)) = acked else { continue };
                    let below = stored.below;
                    self.settle(out, ack, &mut stored, &mut again, &mut failures, &mut retry_at);
                    // Take the other acknowledgements already in, then tell
                    // `flush` once: a watch update wakes through a lock per
                    // shard, which per publish cost 0.5 µs a signal.
                    while let Some(Some((out, ack))) = in_flight.next().now_or_never() {
                        self.settle(out, ack, &mut stored, &mut again, &mut failures, &mut retry_at);
                    }
                    if stored.below != below {
                        self.stored_below.send_replace(stored.below);
                    }
                }
                out = rx.recv(), if can_take => match out {
                    Some(out) => {
                        let publish = self.send(out).await;
                        in_flight.push(publish);
                    }
                    None => open = false,
                },
                () = retry_wait => retry_at = None,
                _ = &mut closed, if !closing => {
                    closing = true;
                    rx.close();
                }
            }
        }
    }

    /// Records one publish's outcome.
    fn settle(
        &self,
        out: Outgoing,
        ack: Option<PublishAck>,
        stored: &mut Stored,
        again: &mut VecDeque<Outgoing>,
        failures: &mut u32,
        retry_at: &mut Option<Instant>,
    ) {
        match ack {
            Some(ack) => {
                if ack.duplicate {
                    self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                self.counters.stored.fetch_add(1, Ordering::Relaxed);
                stored.add(out.number);
                *failures = 0;
            }
            // No acknowledgement (a timeout, a lost connection, a server
            // without the stream yet): sent again after a delay.
            None => {
                self.counters.retried.fetch_add(1, Ordering::Relaxed);
                again.push_back(out);
                *failures = failures.saturating_add(1);
                let delay = super::backoff(
                    i64::from(*failures),
                    self.options.retry_min,
                    self.options.retry_max,
                );
                // A `retry_max` near `Duration::MAX` must not overflow the
                // clock (a panic here would end the task with signals held).
                let now = Instant::now();
                *retry_at = Some(now.checked_add(delay).unwrap_or(now + YEAR));
            }
        }
    }

    /// Sends `out` (in order: the client queues it now) and returns the
    /// wait for its acknowledgement, with `out` kept for a republish.
    async fn send(
        &self,
        out: Outgoing,
    ) -> impl Future<Output = (Outgoing, Option<PublishAck>)> + use<> {
        let message = PublishMessage::build()
            .payload(out.payload.clone())
            .message_id(&out.id)
            .header("content-type", "application/cloudevents+json");
        let sent = self
            .bridge
            .js()
            .send_publish(out.subject.clone(), message)
            .await;
        async move {
            let ack = match sent {
                Ok(ack) => ack.await.ok(),
                Err(_) => None,
            };
            (out, ack)
        }
    }
}
