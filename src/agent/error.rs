//! Errors of sending to, calling, querying and spawning agents.

pub use crate::vocab::error::{
    CallError, LookupError, QueryError, ScheduleError, SendError, SendErrorKind, SpawnError,
};
