//! [`Export`]: bus signals to a JetStream stream, deduplicated by id.
//!
//! A bus sink (run on the publishing thread) encodes each matching signal
//! and puts it in a bounded buffer; one task publishes from the buffer in
//! order, keeping up to `window` publishes in flight (a new one goes out
//! as each acknowledgement comes back), and republishes, with the same
//! `Nats-Msg-Id`, those that were not acknowledged (a lost connection, a
//! restarting server). A republish can land after signals published
//! later: order holds until a publish fails.
//! JetStream drops a republish it already stored, so a signal is stored
//! once whichever acknowledgement was lost. The sink refuses a signal when
//! the buffer is full, which the bus reports as it reports a full mailbox.

use super::{Bridge, BridgeError, subject};
use crate::bus::Bus;
use crate::exec::listener::{Sink, SinkSlot};
use crate::router::Pattern;
use crate::signal::Signal;
use crate::vocab::SubscriptionId;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

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
    accepted: AtomicU64,
    duplicates: AtomicU64,
    retried: AtomicU64,
    refused: AtomicU64,
}

/// One encoded signal on its way to the stream.
struct Outgoing {
    subject: String,
    id: String,
    payload: Bytes,
}

/// The bus side of an export: encodes a signal into the bounded buffer
/// (on the publishing thread), or holds room in it for a required emit.
struct ExportSink {
    tx: mpsc::Sender<Outgoing>,
    prefix: Arc<str>,
    counters: Arc<Counters>,
}

/// Room held in the buffer for one signal of a required emit.
struct ExportSlot {
    permit: mpsc::OwnedPermit<Outgoing>,
    prefix: Arc<str>,
    counters: Arc<Counters>,
}

fn encode(prefix: &str, signal: &Signal) -> Outgoing {
    Outgoing {
        subject: subject::of_type(prefix, signal.ty()),
        id: signal.id().to_string(),
        payload: Bytes::from(signal.to_json_vec()),
    }
}

const FULL: &str = "the NATS export's buffer is full (JetStream is not keeping up, or unreachable)";
const STOPPED: &str = "the NATS export has stopped";

impl ExportSink {
    fn refused(&self, full: bool) -> String {
        if full {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            FULL.to_owned()
        } else {
            STOPPED.to_owned()
        }
    }
}

impl Sink for ExportSink {
    fn offer(&self, signal: &Signal) -> Result<(), String> {
        // Room first: a refused signal costs no encoding.
        match self.tx.try_reserve() {
            Ok(permit) => {
                permit.send(encode(&self.prefix, signal));
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(())) => Err(self.refused(true)),
            Err(mpsc::error::TrySendError::Closed(())) => Err(self.refused(false)),
        }
    }

    fn reserve(&self) -> Result<Box<dyn SinkSlot>, String> {
        match self.tx.clone().try_reserve_owned() {
            Ok(permit) => Ok(Box::new(ExportSlot {
                permit,
                prefix: self.prefix.clone(),
                counters: self.counters.clone(),
            })),
            Err(mpsc::error::TrySendError::Full(_)) => Err(self.refused(true)),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(self.refused(false)),
        }
    }
}

impl SinkSlot for ExportSlot {
    fn fill(self: Box<Self>, signal: &Signal) -> Result<(), String> {
        self.permit.send(encode(&self.prefix, signal));
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A running export; see [`Bridge::export`]. Stop it with
/// [`stop`](Self::stop) to unsubscribe and publish what is buffered.
pub struct Export {
    bus: Bus,
    subscription: SubscriptionId,
    counters: Arc<Counters>,
    stored: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
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
        self.ensure_stream().await?;
        let (tx, rx) = mpsc::channel::<Outgoing>(options.buffer.max(1));
        let counters = Arc::new(Counters::default());
        let (stored_tx, stored) = watch::channel(0u64);
        let sink = Arc::new(ExportSink {
            tx,
            prefix: self.prefix_str().into(),
            counters: counters.clone(),
        });
        let subscription = bus
            .subscribe_reserving(pattern, sink)
            .map_err(|e| BridgeError::Subscribe(e.to_string()))?;
        let publisher = Publisher {
            bridge: self.clone(),
            options,
            counters: counters.clone(),
            stored: stored_tx,
        };
        let task = tokio::spawn(publisher.run(rx));
        Ok(Export {
            bus: bus.clone(),
            subscription,
            counters,
            stored,
            task,
        })
    }
}

impl Export {
    /// What the export has done so far.
    pub fn stats(&self) -> ExportStats {
        ExportStats {
            accepted: self.counters.accepted.load(Ordering::Relaxed),
            stored: *self.stored.borrow(),
            duplicates: self.counters.duplicates.load(Ordering::Relaxed),
            retried: self.counters.retried.load(Ordering::Relaxed),
            refused: self.counters.refused.load(Ordering::Relaxed),
        }
    }

    /// Waits until every signal accepted so far is acknowledged by
    /// JetStream (it waits through a server restart: the export keeps
    /// republishing).
    pub async fn flush(&mut self) {
        let target = self.counters.accepted.load(Ordering::Acquire);
        // The publisher ends only after storing everything it had; an
        // error here means it is gone, so there is nothing to wait for.
        let _ = self.stored.wait_for(|stored| *stored >= target).await;
    }

    /// Unsubscribes from the bus, waits until what is buffered is stored
    /// (through a server restart too: wrap it in a timeout to give up),
    /// and ends.
    pub async fn stop(mut self) -> ExportStats {
        // The subscription may already be gone with a shut-down runtime.
        let _ = self.bus.unsubscribe(self.subscription);
        self.flush().await;
        self.task.abort();
        self.stats()
    }
}

impl Drop for Export {
    /// Unsubscribes; the publisher still stores what was buffered, and
    /// ends once the buffer is empty and the sink is gone.
    fn drop(&mut self) {
        let _ = self.bus.unsubscribe(self.subscription);
    }
}

/// The task that drains the buffer into JetStream.
struct Publisher {
    bridge: Bridge,
    options: ExportOptions,
    counters: Arc<Counters>,
    stored: watch::Sender<u64>,
}

impl Publisher {
    /// Keeps up to `window` publishes in flight: each signal is sent in
    /// buffer order as soon as the window has room, and its acknowledgement
    /// is awaited alongside the others (their timeouts run together, so a
    /// lost connection costs one timeout, not one per publish). What is
    /// not acknowledged is sent again, first, after a delay that doubles
    /// while nothing gets through.
    async fn run(self, mut rx: mpsc::Receiver<Outgoing>) {
        let window = self.options.window.max(1);
        let mut in_flight = FuturesUnordered::new();
        let mut again: VecDeque<Outgoing> = VecDeque::new();
        let mut stored = 0u64;
        let mut failures = 0u32;
        let mut open = true;
        loop {
            // Fill the window: republishes first, then what is buffered.
            while in_flight.len() < window {
                let next = match again.pop_front() {
                    Some(out) => out,
                    None if open => match rx.try_recv() {
                        Ok(out) => out,
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            open = false;
                            break;
                        }
                    },
                    None => break,
                };
                let publish = self.send(next).await;
                in_flight.push(publish);
            }
            if in_flight.is_empty() {
                if !open {
                    return;
                }
                match rx.recv().await {
                    Some(out) => {
                        let publish = self.send(out).await;
                        in_flight.push(publish);
                    }
                    None => open = false,
                }
                continue;
            }
            let room = in_flight.len() < window && open;
            let acked = tokio::select! {
                acked = in_flight.next() => acked,
                out = rx.recv(), if room => {
                    match out {
                        Some(out) => {
                            let publish = self.send(out).await;
                            in_flight.push(publish);
                        }
                        None => open = false,
                    }
                    continue;
                }
            };
            let Some((out, ack)) = acked else { continue };
            match ack {
                Some(ack) => {
                    if ack.duplicate {
                        self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                    stored += 1;
                    failures = 0;
                    self.stored.send_replace(stored);
                }
                // No acknowledgement (a timeout, a lost connection, a
                // server without the stream yet): sent again.
                None => {
                    self.counters.retried.fetch_add(1, Ordering::Relaxed);
                    again.push_back(out);
                    if in_flight.is_empty() {
                        failures = failures.saturating_add(1);
                        let delay = super::backoff(
                            i64::from(failures),
                            self.options.retry_min,
                            self.options.retry_max,
                        );
                        tokio::time::sleep(delay).await;
                    }
                }
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
