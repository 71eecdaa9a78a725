//! [`ActionError`]: what an action (or a query, or a predicate) reports. In
//! the vocabulary because instructions, agents and reports all name it.

use std::any::Any;
use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// What kind of failure an [`ActionError`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ActionErrorKind {
    /// The action refused the request (a business rule said no).
    Rejected,
    /// The signal's data could not be understood.
    InvalidInput,
    /// The action failed while doing its work.
    Failed,
    /// The action panicked; the runtime caught it.
    Panicked,
    /// A signal the action emitted or sent, with delivery required
    /// (`Instruction::emit_or_fail`, `AgentSpec::undeliverable`), could not
    /// be delivered: the action was undone. The
    /// [`DeliveryFailure`](crate::DeliveryFailure), signal inside, is the
    /// error's `source()`.
    Undeliverable,
}

/// An action's failure. Cheap to clone, so it can be both reported to a
/// caller and counted.
#[derive(Clone)]
pub struct ActionError {
    kind: ActionErrorKind,
    message: Cow<'static, str>,
    source: Option<Arc<dyn Error + Send + Sync>>,
}

impl ActionError {
    /// The action refused: e.g. `ActionError::rejected("insufficient funds")`.
    pub fn rejected(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ActionErrorKind::Rejected, message.into(), None)
    }

    /// The input was unusable: e.g. a payload that does not parse.
    pub fn invalid_input(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ActionErrorKind::InvalidInput, message.into(), None)
    }

    /// The action failed because of `error` (kept as the [`Error::source`]).
    pub fn failed<E: Error + Send + Sync + 'static>(error: E) -> Self {
        let message = Cow::Owned(error.to_string());
        Self::new(ActionErrorKind::Failed, message, Some(Arc::new(error)))
    }

    /// A failure with a message and no underlying error.
    pub fn message(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ActionErrorKind::Failed, message.into(), None)
    }

    /// An action failed because a signal it had to deliver could not be
    /// (see [`ActionErrorKind::Undeliverable`]).
    pub(crate) fn undeliverable(failure: super::report::DeliveryFailure) -> Self {
        let message = Cow::Owned(format!(
            "a signal the action had to deliver could not be: {failure}; the action was undone and nothing it emitted was sent"
        ));
        Self::new(
            ActionErrorKind::Undeliverable,
            message,
            Some(Arc::new(failure)),
        )
    }

    /// An error of any `kind` with a message and no underlying error: for
    /// rebuilding an error that crossed a process boundary (the NATS
    /// bridge's remote calls), or for a kind the constructors above do not
    /// name.
    pub fn of_kind(kind: ActionErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(kind, message.into(), None)
    }

    fn new(
        kind: ActionErrorKind,
        message: Cow<'static, str>,
        source: Option<Arc<dyn Error + Send + Sync>>,
    ) -> Self {
        ActionError {
            kind,
            message,
            source,
        }
    }

    /// Built by the runtime from a caught panic's payload.
    pub(crate) fn from_panic(payload: Box<dyn Any + Send>) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            Cow::Borrowed(*s)
        } else if let Some(s) = payload.downcast_ref::<String>() {
            Cow::Owned(s.clone())
        } else {
            Cow::Borrowed("a non-string panic payload")
        };
        discard_panic(payload);
        Self::new(ActionErrorKind::Panicked, message, None)
    }

    /// The kind of failure.
    pub fn kind(&self) -> ActionErrorKind {
        self.kind
    }

    /// The message given by the action (or the panic message).
    pub fn text(&self) -> &str {
        &self.message
    }

    /// Whether the action panicked.
    pub fn is_panic(&self) -> bool {
        self.kind == ActionErrorKind::Panicked
    }
}

/// An action that builds a signal can `?` the builder's error: it fails
/// the action as [`ActionErrorKind::Failed`], the error as `source()`.
impl From<crate::signal::SignalError> for ActionError {
    fn from(e: crate::signal::SignalError) -> Self {
        ActionError::failed(e)
    }
}

impl PartialEq for ActionError {
    /// Equal when kind and message are equal (sources are not compared).
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Eq for ActionError {}

impl fmt::Debug for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ActionErrorKind::Rejected => write!(f, "action rejected the signal: {}", self.message),
            ActionErrorKind::InvalidInput => write!(
                f,
                "action could not use the signal's input: {}",
                self.message
            ),
            ActionErrorKind::Failed => write!(f, "action failed: {}", self.message),
            ActionErrorKind::Panicked => write!(
                f,
                "action panicked: {} (the agent's state was rolled back and the agent keeps serving)",
                self.message
            ),
            ActionErrorKind::Undeliverable => write!(f, "action undone: {}", self.message),
        }
    }
}

impl Error for ActionError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// Runs `f`, turning a panic into [`ActionErrorKind::Panicked`]. Always
/// inlined: it wraps every action, and a call per action shows in the
/// instruction counts.
#[inline(always)]
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, ActionError>) -> Result<T, ActionError> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(ActionError::from_panic(payload)))
}

/// Drops a caught panic's payload without letting a panic in its `Drop`
/// escape (`panic_any(x)` where `x`'s `Drop` panics would otherwise unwind
/// out of the very place that contained the first panic). The payload of
/// such a second panic is leaked: dropping it could panic again.
pub(crate) fn discard_panic(payload: Box<dyn Any + Send>) {
    if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(second);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_errors_with_their_message() {
        let e = guarded::<()>(|| panic!("boom {}", 7)).unwrap_err();
        assert_eq!((e.kind(), e.text()), (ActionErrorKind::Panicked, "boom 7"));
        let e = guarded::<()>(|| std::panic::panic_any(42u8)).unwrap_err();
        assert!(e.is_panic());
        assert!(e.to_string().contains("rolled back"));
    }

    /// A payload whose `Drop` panics: the second panic stays inside.
    #[test]
    fn a_payload_that_panics_when_dropped_is_contained() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("deliberate panic in a payload's drop");
            }
        }
        let e = guarded::<()>(|| std::panic::panic_any(Bomb)).unwrap_err();
        assert!(e.is_panic());
    }

    #[test]
    fn failed_keeps_its_source() {
        let io = std::io::Error::other("disk gone");
        let e = ActionError::failed(io);
        assert_eq!(e.text(), "disk gone");
        assert!(e.source().is_some());
        assert_eq!(e.to_string(), "action failed: disk gone");
    }
}
