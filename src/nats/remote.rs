//! Calls across processes: [`Bridge::serve`] answers NATS requests with an
//! agent's `call`, [`RemoteAgent::call`] makes them.
//!
//! A request is the signal as a structured CloudEvent on
//! `<prefix>.call.<name>`, with the caller's timeout in the
//! `Agentry-Timeout-Ms` header; the serving side calls the agent with that
//! timeout. The reply is JSON: `{"ok": <reply>}` or `{"err": {...}}`, the
//! [`CallError`] in a form that crosses processes, rebuilt on the calling
//! side with the caller's own signal handed back where a local call would
//! hand it back. Servers subscribe in a queue group, so several processes
//! serving one name share its requests.

use super::{Bridge, BridgeError, subject};
use crate::action::{ActionError, ActionErrorKind};
use crate::agent::AgentRef;
use crate::signal::Signal;
use crate::vocab::AgentId;
use crate::vocab::error::{CallError, SendError, SendErrorKind};
use async_nats::{HeaderMap, Request, RequestErrorKind};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::time::Duration;

/// The header carrying the caller's timeout, in milliseconds.
const TIMEOUT_HEADER: &str = "Agentry-Timeout-Ms";
/// The queue group servers of one name share.
const QUEUE: &str = "agentry";

/// A reply on the wire.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Wire<R> {
    Ok(R),
    Err(WireError),
}

/// A [`CallError`] on the wire.
#[derive(Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
enum WireError {
    Refused {
        agent: u64,
        refusal: Refusal,
    },
    Action {
        kind: WireActionKind,
        message: String,
    },
    Timeout {
        after_ms: u64,
    },
    Stopped {
        agent: u64,
    },
    ShutDown,
    /// Anything else (a request that did not decode, an error kind this
    /// side does not know), as text.
    Other {
        message: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Refusal {
    MailboxFull { capacity: usize },
    Stopped,
    ShuttingDown,
    NoRoute,
    SendOnly { action: String },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireActionKind {
    Rejected,
    InvalidInput,
    Failed,
    Panicked,
    Undeliverable,
}

impl WireError {
    fn of(error: &CallError) -> WireError {
        match error {
            CallError::Send(e) => {
                let refusal = match e.kind() {
                    SendErrorKind::MailboxFull { capacity } => Refusal::MailboxFull {
                        capacity: *capacity,
                    },
                    SendErrorKind::Stopped => Refusal::Stopped,
                    SendErrorKind::ShuttingDown => Refusal::ShuttingDown,
                    SendErrorKind::NoRoute => Refusal::NoRoute,
                    SendErrorKind::SendOnly { action } => Refusal::SendOnly {
                        action: action.clone(),
                    },
                    other => {
                        return WireError::Other {
                            message: format!("the remote agent refused the signal: {other:?}"),
                        };
                    }
                };
                WireError::Refused {
                    agent: e.agent().get(),
                    refusal,
                }
            }
            CallError::Action(e) => WireError::Action {
                kind: match e.kind() {
                    ActionErrorKind::Rejected => WireActionKind::Rejected,
                    ActionErrorKind::InvalidInput => WireActionKind::InvalidInput,
                    ActionErrorKind::Failed => WireActionKind::Failed,
                    ActionErrorKind::Panicked => WireActionKind::Panicked,
                    ActionErrorKind::Undeliverable => WireActionKind::Undeliverable,
                },
                message: e.text().to_owned(),
            },
            CallError::Timeout { after } => WireError::Timeout {
                after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            },
            CallError::Stopped { agent } => WireError::Stopped { agent: agent.get() },
            CallError::ShutDown => WireError::ShutDown,
            other => WireError::Other {
                message: other.to_string(),
            },
        }
    }

    /// The error as the caller sees it; `signal` is handed back in a
    /// refusal, as a local call hands it back.
    fn into_call_error(self, signal: Signal) -> CallError {
        match self {
            WireError::Refused { agent, refusal } => {
                let kind = match refusal {
                    Refusal::MailboxFull { capacity } => SendErrorKind::MailboxFull { capacity },
                    Refusal::Stopped => SendErrorKind::Stopped,
                    Refusal::ShuttingDown => SendErrorKind::ShuttingDown,
                    Refusal::NoRoute => SendErrorKind::NoRoute,
                    Refusal::SendOnly { action } => SendErrorKind::SendOnly { action },
                };
                CallError::Send(SendError::new(AgentId(agent), kind, signal))
            }
            WireError::Action { kind, message } => {
                let kind = match kind {
                    WireActionKind::Rejected => ActionErrorKind::Rejected,
                    WireActionKind::InvalidInput => ActionErrorKind::InvalidInput,
                    WireActionKind::Failed => ActionErrorKind::Failed,
                    WireActionKind::Panicked => ActionErrorKind::Panicked,
                    WireActionKind::Undeliverable => ActionErrorKind::Undeliverable,
                };
                CallError::Action(ActionError::of_kind(kind, message))
            }
            WireError::Timeout { after_ms } => CallError::Timeout {
                after: Duration::from_millis(after_ms),
            },
            WireError::Stopped { agent } => CallError::Stopped {
                agent: AgentId(agent),
            },
            WireError::ShutDown => CallError::ShutDown,
            WireError::Other { message } => CallError::Remote { reason: message },
        }
    }
}

/// An agent served to other processes; see [`Bridge::serve`]. Dropping it
/// (or [`stop`](Self::stop)) stops answering.
pub struct Service {
    task: tokio::task::JoinHandle<()>,
    subject: String,
}

impl Service {
    /// The subject requests arrive on.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Stops answering (requests in progress are still answered).
    pub fn stop(self) {}
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Bridge {
    /// Answers calls made with [`RemoteAgent::call`] on `name` by calling
    /// `agent` (each request in its own task, so slow calls do not queue
    /// behind each other). The reply type is sent as JSON.
    pub async fn serve<S, R>(
        &self,
        agent: &AgentRef<S, R>,
        name: &str,
    ) -> Result<Service, BridgeError>
    where
        S: Clone + Send + Sync + 'static,
        R: Serialize + Send + 'static,
    {
        if !subject::is_token(name) {
            return Err(BridgeError::InvalidName {
                what: "service name",
                name: name.to_owned(),
            });
        }
        let subject = subject::call(self.prefix_str(), name);
        let mut requests = self
            .client()
            .queue_subscribe(subject.clone(), QUEUE.to_owned())
            .await
            .map_err(|e| BridgeError::Subscribe(e.to_string()))?;
        let client = self.client().clone();
        let agent = agent.clone();
        let task = tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                let Some(reply_to) = request.reply.clone() else {
                    continue;
                };
                let client = client.clone();
                let agent = agent.clone();
                tokio::spawn(async move {
                    let answer = answer(&agent, &request).await;
                    // A caller that gave up is not listening any more.
                    let _ = client.publish(reply_to, answer).await;
                });
            }
        });
        // The subscription is in the client's write buffer, not yet known
        // to the server: a call from another connection right now would
        // find no responder. One round trip on this connection (a request
        // nobody answers, which the server refuses at once) comes back
        // only after the server has processed the subscription before it.
        let probe = format!("{}.probe.{}", self.prefix_str(), self.client().new_inbox());
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            self.client().request(probe, Bytes::new()),
        )
        .await;
        Ok(Service { task, subject })
    }

    /// A handle for calling the agents served as `name` in any process.
    pub fn remote<R: DeserializeOwned>(&self, name: &str) -> Result<RemoteAgent<R>, BridgeError> {
        if !subject::is_token(name) {
            return Err(BridgeError::InvalidName {
                what: "service name",
                name: name.to_owned(),
            });
        }
        Ok(RemoteAgent {
            client: self.client().clone(),
            subject: subject::call(self.prefix_str(), name),
            default_timeout: Duration::from_secs(5),
            reply: PhantomData,
        })
    }
}

/// Calls the agent for one request; the reply's bytes.
async fn answer<S, R>(agent: &AgentRef<S, R>, request: &async_nats::Message) -> Bytes
where
    S: Clone + Send + Sync + 'static,
    R: Serialize + Send + 'static,
{
    let wire = match Signal::from_json(&request.payload) {
        Err(e) => Wire::Err(WireError::Other {
            message: format!("the request is not a CloudEvent this runtime accepts: {e}"),
        }),
        Ok(signal) => {
            let timeout = request
                .headers
                .as_ref()
                .and_then(|h| h.get(TIMEOUT_HEADER))
                .and_then(|v| v.as_str().parse::<u64>().ok())
                .map(Duration::from_millis);
            match agent.call_async(signal, timeout).await {
                Ok(reply) => Wire::Ok(reply),
                Err(e) => Wire::Err(WireError::of(&e)),
            }
        }
    };
    match serde_json::to_vec(&wire) {
        Ok(bytes) => Bytes::from(bytes),
        Err(e) => Bytes::from(
            serde_json::to_vec(&Wire::<()>::Err(WireError::Other {
                message: format!("the reply could not be encoded: {e}"),
            }))
            .unwrap_or_default(),
        ),
    }
}

/// Agents in other processes served under one name (see
/// [`Bridge::remote`]), called as a local [`AgentRef`] is.
pub struct RemoteAgent<R> {
    client: async_nats::Client,
    subject: String,
    default_timeout: Duration,
    reply: PhantomData<fn() -> R>,
}

impl<R> Clone for RemoteAgent<R> {
    fn clone(&self) -> Self {
        RemoteAgent {
            client: self.client.clone(),
            subject: self.subject.clone(),
            default_timeout: self.default_timeout,
            reply: PhantomData,
        }
    }
}

impl<R: DeserializeOwned> RemoteAgent<R> {
    /// The timeout of a `call` given `None` (5 s unless set).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// Calls the remote agent with `signal` and waits up to `timeout`
    /// (`None`: the default timeout) for its reply: the same errors as
    /// [`AgentRef::call`], plus [`CallError::Remote`] when nobody serves
    /// the name, the connection is down, or the reply does not decode. On
    /// a timeout the signal may still run remotely, as with a local call.
    pub async fn call(
        &self,
        signal: Signal,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<R, CallError> {
        let timeout = timeout.into().unwrap_or(self.default_timeout);
        let mut headers = HeaderMap::new();
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        headers.insert(TIMEOUT_HEADER, millis.to_string().as_str());
        headers.insert("content-type", "application/cloudevents+json");
        let request = Request::new()
            .payload(Bytes::from(signal.to_json_vec()))
            .headers(headers)
            .timeout(Some(timeout));
        let reply = match self
            .client
            .send_request(self.subject.clone(), request)
            .await
        {
            Ok(reply) => reply,
            Err(e) => {
                return Err(match e.kind() {
                    RequestErrorKind::TimedOut => CallError::Timeout { after: timeout },
                    RequestErrorKind::NoResponders => CallError::Remote {
                        reason: format!("no agent serves `{}`", self.subject),
                    },
                    _ => CallError::Remote {
                        reason: e.to_string(),
                    },
                });
            }
        };
        match serde_json::from_slice::<Wire<R>>(&reply.payload) {
            Ok(Wire::Ok(value)) => Ok(value),
            Ok(Wire::Err(e)) => Err(e.into_call_error(signal)),
            Err(e) => Err(CallError::Remote {
                reason: format!("the reply does not decode: {e}"),
            }),
        }
    }
}
