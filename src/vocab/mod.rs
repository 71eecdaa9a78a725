//! Vocabulary: the ids, errors and reports that several layers name.
//!
//! It sits below every domain layer and above only `signal`, `router` and
//! `imp`, so a type shared by, say, an instruction and the runtime lives here
//! instead of making one of them import the other. Each item is re-exported
//! at its public path (`agentry::action::ActionError`,
//! `agentry::agent::error::SendError`, `agentry::runtime::report::*`, ...).

pub(crate) mod action_error;
pub(crate) mod error;
pub(crate) mod id;
pub(crate) mod report;

pub use action_error::ActionError;
pub use id::{AgentId, SubscriptionId, TimerId};
