//! Actions: the user code an agent runs, and the errors it reports.
//!
//! An [`Action`] runs against `&mut` state with an [`Instruction`] and returns
//! a reply (for `call`) or an [`ActionError`]. The runtime makes every action
//! atomic: if it returns an error or panics, the agent's state is restored to
//! what it was before the action began, and nothing the action emitted is
//! sent. A [`Query`] is the read-only kind: it sees `&S`, can be answered from
//! a snapshot on the caller's thread (`fast-path`), and never emits.

use crate::instruction::Instruction;
use crate::signal::{Signal, Text};
use std::sync::Arc;

pub(crate) use crate::vocab::action_error::guarded;
pub use crate::vocab::action_error::{ActionError, ActionErrorKind};

/// User code that handles an instruction against an agent's state.
///
/// Implemented for closures `Fn(&mut S, &mut Instruction) -> Result<R, ActionError>`.
pub trait Action<S, R>: Send + Sync + 'static {
    /// Handles one instruction. Mutations of `state` are kept only if this
    /// returns `Ok`; on `Err` or panic the state is rolled back.
    fn run(&self, state: &mut S, ins: &mut Instruction) -> Result<R, ActionError>;
}

impl<S, R, F> Action<S, R> for F
where
    F: Fn(&mut S, &mut Instruction) -> Result<R, ActionError> + Send + Sync + 'static,
{
    fn run(&self, state: &mut S, ins: &mut Instruction) -> Result<R, ActionError> {
        self(state, ins)
    }
}

/// A read-only action: answers from the committed state without changing it.
///
/// Implemented for closures `Fn(&S, &Signal) -> Result<R, ActionError>`.
pub trait Query<S, R>: Send + Sync + 'static {
    /// Answers `signal` from `state`.
    fn query(&self, state: &S, signal: &Signal) -> Result<R, ActionError>;
}

impl<S, R, F> Query<S, R> for F
where
    F: Fn(&S, &Signal) -> Result<R, ActionError> + Send + Sync + 'static,
{
    fn query(&self, state: &S, signal: &Signal) -> Result<R, ActionError> {
        self(state, signal)
    }
}

/// A registered action: one that answers calls with an `R`, or a
/// send-only one (returns `()`; a `call` routed to it first is refused).
pub(crate) enum Handler<S, R> {
    Reply(Arc<dyn Action<S, R>>),
    SendOnly(Arc<dyn Action<S, ()>>),
}

impl<S, R> Clone for Handler<S, R> {
    fn clone(&self) -> Self {
        match self {
            Handler::Reply(a) => Handler::Reply(a.clone()),
            Handler::SendOnly(a) => Handler::SendOnly(a.clone()),
        }
    }
}

impl<S: 'static, R: 'static> Handler<S, R> {
    /// Runs the action; a send-only one has no reply.
    #[inline]
    pub fn run(&self, state: &mut S, ins: &mut Instruction) -> Result<Option<R>, ActionError> {
        match self {
            Handler::Reply(a) => a.run(state, ins).map(Some),
            Handler::SendOnly(a) => a.run(state, ins).map(|()| None),
        }
    }

    /// Whether it answers calls.
    pub fn replies(&self) -> bool {
        matches!(self, Handler::Reply(_))
    }
}

/// An agent type's named actions (the registry routes point into).
pub(crate) struct ActionSet<S, R> {
    entries: Vec<(Text, Handler<S, R>)>,
}

impl<S, R> Default for ActionSet<S, R> {
    fn default() -> Self {
        ActionSet {
            entries: Vec::new(),
        }
    }
}

impl<S, R> ActionSet<S, R> {
    /// Registers `action` under `name`; `false` if the name is taken.
    pub fn register(&mut self, name: Text, action: Handler<S, R>) -> bool {
        if self.index_of(&name).is_some() {
            return false;
        }
        self.entries.push((name, action));
        true
    }

    pub fn index_of(&self, name: &str) -> Option<u32> {
        self.entries
            .iter()
            .position(|(n, _)| n.as_str() == name)
            .map(|i| i as u32)
    }

    pub fn get(&self, index: u32) -> Option<&Handler<S, R>> {
        self.entries.get(index as usize).map(|(_, a)| a)
    }

    /// The name of the action at `index` (`""` if there is none).
    pub fn name(&self, index: u32) -> &str {
        self.entries
            .get(index as usize)
            .map_or("", |(n, _)| n.as_str())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_refuses_duplicate_names() {
        let mut set = ActionSet::<u8, ()>::default();
        let noop = |_: &mut u8, _: &mut Instruction| Ok(());
        assert!(set.register(Text::from("a"), Handler::Reply(Arc::new(noop))));
        assert!(!set.register(Text::from("a"), Handler::SendOnly(Arc::new(noop))));
        assert_eq!(set.index_of("a"), Some(0));
        assert_eq!(set.names().collect::<Vec<_>>(), ["a"]);
    }
}
