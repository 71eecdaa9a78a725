//! Errors of sending to, calling, querying and spawning agents.

pub use crate::vocab::error::{
    CallError, QueryError, ScheduleError, SendError, SendErrorKind, SpawnError,
};
