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
//! order the server sent them, whichever request each one fills. [`Pulls`]
//! counts the messages asked for and not yet come; the loop asks for
//! another batch whenever that falls to one batch, so the server always
//! has a request to fill. The count is corrected by the server's
//! end-of-request statuses (`408` with `Nats-Pending-Messages`), and reset
//! when nothing at all came for longer than a request lives (requests
//! lost with a restarted server), so a wrong count costs at most one
//! expiry, and asking too much only leaves a request to expire.

use async_nats::jetstream::consumer::Consumer;
use async_nats::jetstream::consumer::pull::{self, BatchConfig, BatchRequestError};
use async_nats::{HeaderMap, StatusCode, Subscriber};
use futures_util::StreamExt;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// How long one pull request waits on the server for messages.
pub(super) const EXPIRY: Duration = Duration::from_secs(1);

/// Silence longer than this means no request of ours is alive any more.
const LOST_AFTER: Duration = EXPIRY.saturating_add(Duration::from_millis(250));

/// What [`Pulls::next`] found.
pub(super) enum Pulled {
    /// A message of the stream.
    Message(async_nats::Message),
    /// The server refused a request or reported an error (consumer
    /// deleted, no responders while it restarts): ask again after a delay.
    Refused,
    /// The subscription ended (the client is closed).
    Closed,
}

/// The account of messages asked for and not yet come.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Asked {
    messages: usize,
}

impl Asked {
    /// Whether to send another request of `batch`: the server then has at
    /// most one batch left to send.
    pub fn wants_more(&self, batch: usize) -> bool {
        self.messages <= batch
    }

    pub fn requested(&mut self, batch: usize) {
        self.messages = self.messages.saturating_add(batch);
    }

    pub fn arrived(&mut self) {
        self.messages = self.messages.saturating_sub(1);
    }

    /// A request ended with `unfilled` messages not sent.
    pub fn ended(&mut self, unfilled: usize) {
        self.messages = self.messages.saturating_sub(unfilled);
    }

    /// Nothing is asked for any more (every request expired or was lost).
    pub fn reset(&mut self) {
        self.messages = 0;
    }
}

/// Pull requests for one consumer and the inbox their messages come to.
pub(super) struct Pulls {
    consumer: Consumer<pull::Config>,
    batch: usize,
    inbox: async_nats::Subject,
    subscription: Subscriber,
    asked: Asked,
    /// When anything last came on the inbox.
    heard: Instant,
    /// Fires `LOST_AFTER` after `heard` at the earliest; moved forward
    /// only when it fires (a timer reset per message would cost more).
    silence: Pin<Box<Sleep>>,
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
            consumer,
            batch: batch.max(1),
            inbox,
            subscription,
            asked: Asked::default(),
            heard: Instant::now(),
            silence: Box::pin(tokio::time::sleep(LOST_AFTER)),
        })
    }

    /// Whether [`top_up`](Self::top_up) would send a request.
    pub fn wants_more(&self) -> bool {
        self.asked.wants_more(self.batch)
    }

    /// Asks for more while the server has at most one batch left to send.
    pub async fn top_up(&mut self) -> Result<(), BatchRequestError> {
        while self.asked.wants_more(self.batch) {
            let request = BatchConfig {
                batch: self.batch,
                expires: Some(EXPIRY),
                ..Default::default()
            };
            self.consumer
                .request_batch(request, self.inbox.clone())
                .await?;
            self.asked.requested(self.batch);
        }
        Ok(())
    }

    /// The next message, or why there is none.
    pub async fn next(&mut self) -> Pulled {
        loop {
            let arrived = tokio::select! {
                arrived = self.subscription.next() => arrived,
                () = &mut self.silence => {
                    let lost_at = self.heard + LOST_AFTER;
                    if lost_at > Instant::now() {
                        self.silence.as_mut().reset(lost_at);
                        continue;
                    }
                    // Every request has expired by now, its status lost
                    // (a server restart): ask afresh.
                    self.asked.reset();
                    self.heard = Instant::now();
                    self.silence.as_mut().reset(self.heard + LOST_AFTER);
                    if self.top_up().await.is_err() {
                        return Pulled::Refused;
                    }
                    continue;
                }
            };
            let Some(message) = arrived else {
                return Pulled::Closed;
            };
            self.heard = Instant::now();
            match message.status {
                None | Some(StatusCode::OK) => {
                    self.asked.arrived();
                    return Pulled::Message(message);
                }
                Some(StatusCode::IDLE_HEARTBEAT) => {}
                Some(StatusCode::TIMEOUT | StatusCode::NOT_FOUND) => {
                    // A request expired with this many messages unsent:
                    // replace it now, or a quiet consumer would have no
                    // request at the server until the silence ran out.
                    let unsent = pending(message.headers.as_ref()).unwrap_or(self.batch);
                    self.asked.ended(unsent);
                    if self.top_up().await.is_err() {
                        return Pulled::Refused;
                    }
                }
                Some(_) => {
                    // 409: cut short by a server limit or refused whole
                    // (consumer deleted, limits); 503: no responders while
                    // the server restarts. Either way ask again later.
                    let unsent = pending(message.headers.as_ref()).unwrap_or(self.batch);
                    self.asked.ended(unsent);
                    return Pulled::Refused;
                }
            }
        }
    }
}

/// The messages an ended request did not send, from its status headers.
fn pending(headers: Option<&HeaderMap>) -> Option<usize> {
    headers?.get("Nats-Pending-Messages")?.as_str().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_again_when_one_batch_is_left() {
        let mut asked = Asked::default();
        assert!(asked.wants_more(4));
        asked.requested(4);
        assert!(asked.wants_more(4), "a second batch goes out at once");
        asked.requested(4);
        assert!(!asked.wants_more(4));
        for _ in 0..3 {
            asked.arrived();
        }
        assert!(!asked.wants_more(4), "five still to come");
        asked.arrived();
        assert!(asked.wants_more(4), "one batch left: ask again");
    }

    #[test]
    fn an_expired_request_takes_its_unsent_messages_off() {
        let mut asked = Asked::default();
        asked.requested(4);
        asked.requested(4);
        asked.arrived();
        asked.ended(3);
        assert_eq!(asked, Asked { messages: 4 });
        asked.ended(10);
        assert_eq!(asked, Asked { messages: 0 }, "never below zero");
        asked.requested(4);
        asked.reset();
        assert_eq!(asked, Asked::default());
    }

    #[test]
    fn pending_reads_the_status_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(pending(Some(&headers)), None);
        headers.insert("Nats-Pending-Messages", "17");
        assert_eq!(pending(Some(&headers)), Some(17));
        assert_eq!(pending(None), None);
    }
}
