//! Pull requests kept in flight for a durable consumer, all answered on
//! one inbox.
//!
//! Why not async-nats's own pulls:
//! * one `Batch` at a time (a request and its own subscription) leaves the
//!   server without a request for a round trip per batch while the import
//!   delivers what it got: when the import worked that way, it fell behind
//!   the export in the bench's one-way row, and the smaller the batch the
//!   further;
//! * two `Batch`es in flight are wrong on nats-server 2.9: the server hands
//!   messages to its waiting requests in turn, so the two interleave (out
//!   of stream order) and the first stays short until it expires (tried:
//!   the bench's agent then went a second without a signal);
//! * the endless pull stream of async-nats 0.51 could lose count of its
//!   outstanding requests and stall for the request expiry (30 s).
//!
//! Here every request replies to the same inbox, so messages arrive in the
//! order the server sent them, whichever request each one fills. The
//! [`Pacing`] asks for two batches at the start, one more each time a
//! batch has arrived, and one more whenever none went out for half an
//! expiry. It keeps no count of what the server still owes: a server drops
//! an expired request without a word when it is busy, and a restart or a
//! leadership change ends requests in bulk, so such a count drifts. The
//! time rule alone keeps a request alive at the server at every moment
//! (each lives a whole expiry), so a quiet consumer never waits for one,
//! and whatever was lost costs at most half an expiry. Nothing is asked
//! while the connection is down, so a long outage does not queue requests
//! to flood the server on reconnect.

use async_nats::connection::State;
use async_nats::jetstream::consumer::Consumer;
use async_nats::jetstream::consumer::pull::{self, BatchConfig, BatchRequestError};
use async_nats::{StatusCode, Subscriber};
use futures_util::StreamExt;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// How long one pull request waits on the server for messages.
pub(super) const EXPIRY: Duration = Duration::from_secs(1);

/// A request goes out at least this often, so one is always alive.
const RENEW: Duration = Duration::from_millis(500);

/// What [`Pulls::next`] found.
pub(super) enum Pulled {
    /// A message of the stream.
    Message(async_nats::Message),
    /// The server refused a request or reported an error (consumer deleted,
    /// a request over the consumer's limits, no responders): ask again
    /// after a delay.
    Refused,
    /// The subscription ended (the client is closed).
    Closed,
}

/// When the next pull request is due.
#[derive(Debug)]
pub(super) struct Pacing {
    batch: usize,
    /// Requests due now (two at the start, one per batch arrived).
    owed: usize,
    /// Messages arrived since a batch's worth last made a request due.
    arrived: usize,
    /// When the last request went out.
    last: Option<Instant>,
}

impl Pacing {
    pub fn new(batch: usize) -> Self {
        Pacing {
            batch: batch.max(1),
            owed: 2,
            arrived: 0,
            last: None,
        }
    }

    /// Whether a request is owed for what arrived.
    pub fn owed(&self) -> bool {
        self.owed > 0
    }

    /// Whether one is due at `now` by the time rule.
    pub fn renewal_due(&self, now: Instant) -> bool {
        self.last.is_none_or(|last| now >= last + RENEW)
    }

    /// When the time rule next makes a request due.
    pub fn renewal_at(&self, now: Instant) -> Instant {
        self.last.map_or(now, |last| last + RENEW)
    }

    pub fn sent(&mut self, now: Instant) {
        self.owed = self.owed.saturating_sub(1);
        self.last = Some(now);
    }

    pub fn message_arrived(&mut self) {
        self.arrived += 1;
        if self.arrived >= self.batch {
            self.arrived = 0;
            self.owed = self.owed.saturating_add(1);
        }
    }
}

/// Pull requests for one consumer and the inbox their messages come to.
pub(super) struct Pulls {
    client: async_nats::Client,
    consumer: Consumer<pull::Config>,
    inbox: async_nats::Subject,
    subscription: Subscriber,
    pacing: Pacing,
    /// Fires when the time rule makes a request due; moved forward only
    /// when it fires (a timer reset per message would cost more).
    renewal: Pin<Box<Sleep>>,
}

impl Pulls {
    /// Subscribes to a fresh inbox; nothing is requested yet.
    pub async fn start(
        client: &async_nats::Client,
        consumer: Consumer<pull::Config>,
        batch: usize,
    ) -> Result<Pulls, async_nats::SubscribeError> {
        let inbox = async_nats::Subject::from(client.new_inbox());
        let subscription = client.subscribe(inbox.clone()).await?;
        Ok(Pulls {
            client: client.clone(),
            consumer,
            inbox,
            subscription,
            pacing: Pacing::new(batch),
            renewal: Box::pin(tokio::time::sleep(Duration::ZERO)),
        })
    }

    /// Whether [`top_up`](Self::top_up) has requests to send for what
    /// arrived.
    pub fn wants_more(&self) -> bool {
        self.pacing.owed()
    }

    /// Sends the requests owed for what arrived (none while disconnected:
    /// the time rule asks again once the connection is back).
    pub async fn top_up(&mut self) -> Result<(), BatchRequestError> {
        while self.pacing.owed() && self.connected() {
            self.request().await?;
        }
        Ok(())
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    async fn request(&mut self) -> Result<(), BatchRequestError> {
        let request = BatchConfig {
            batch: self.pacing.batch,
            expires: Some(EXPIRY),
            ..Default::default()
        };
        self.consumer
            .request_batch(request, self.inbox.clone())
            .await?;
        self.pacing.sent(Instant::now());
        Ok(())
    }

    /// The next message, or why there is none.
    pub async fn next(&mut self) -> Pulled {
        loop {
            let arrived = tokio::select! {
                arrived = self.subscription.next() => arrived,
                () = &mut self.renewal => {
                    let now = Instant::now();
                    if self.pacing.renewal_due(now)
                        && self.connected()
                        && self.request().await.is_err()
                    {
                        return Pulled::Refused;
                    }
                    let next = self.pacing.renewal_at(now).max(now + RENEW / 4);
                    self.renewal.as_mut().reset(next);
                    continue;
                }
            };
            let Some(message) = arrived else {
                return Pulled::Closed;
            };
            match message.status {
                None | Some(StatusCode::OK) => {
                    self.pacing.message_arrived();
                    return Pulled::Message(message);
                }
                // A heartbeat, or a request that ended (expired, or cut
                // short by a server event): the pacing asks again anyway.
                Some(StatusCode::IDLE_HEARTBEAT | StatusCode::TIMEOUT | StatusCode::NOT_FOUND) => {}
                Some(StatusCode::REQUEST_TERMINATED) if !refused_whole(&message) => {}
                // The consumer is gone, a request is over its limits, or
                // nobody answers: ask again after a delay.
                Some(_) => return Pulled::Refused,
            }
        }
    }
}

/// Whether a `409` says requests like ours cannot be served (the consumer
/// was deleted, or a request exceeds its limits), as opposed to one request
/// cut short (leadership change, batch completed, message over max bytes).
fn refused_whole(message: &async_nats::Message) -> bool {
    let description = message.description.as_deref().unwrap_or_default();
    description.contains("Consumer Deleted")
        || description.contains("Consumer is push based")
        || description.starts_with("Exceeded Max")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_requests_at_the_start_then_one_per_batch_arrived() {
        let mut p = Pacing::new(4);
        let now = Instant::now();
        assert!(p.owed());
        p.sent(now);
        assert!(p.owed());
        p.sent(now);
        assert!(!p.owed());
        for _ in 0..3 {
            p.message_arrived();
        }
        assert!(!p.owed(), "three of four arrived");
        p.message_arrived();
        assert!(p.owed(), "a batch arrived: ask for another");
        p.sent(now);
        assert!(!p.owed());
    }

    #[test]
    fn a_request_is_renewed_every_half_expiry_whatever_arrived() {
        let mut p = Pacing::new(512);
        let start = Instant::now();
        assert!(p.renewal_due(start), "nothing sent yet");
        p.sent(start);
        assert!(!p.renewal_due(start + RENEW / 2));
        assert!(p.renewal_due(start + RENEW));
        assert_eq!(p.renewal_at(start), start + RENEW);
        assert!(RENEW * 2 <= EXPIRY, "a renewed request overlaps the last");
    }

    #[test]
    fn a_409_for_one_request_is_not_a_refusal() {
        let status = |description: &str| async_nats::Message {
            subject: "_INBOX.x".into(),
            reply: None,
            payload: bytes::Bytes::new(),
            headers: None,
            status: Some(StatusCode::REQUEST_TERMINATED),
            description: Some(description.into()),
            length: 0,
        };
        assert!(refused_whole(&status("Consumer Deleted")));
        assert!(refused_whole(&status("Exceeded MaxRequestBatch of 100")));
        assert!(refused_whole(&status("Exceeded MaxWaiting")));
        assert!(!refused_whole(&status("Leadership Change")));
        assert!(!refused_whole(&status("Message Size Exceeds MaxBytes")));
        assert!(!refused_whole(&status("Batch Completed")));
    }
}
