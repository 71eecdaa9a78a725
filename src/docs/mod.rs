//! Design notes for maintainers: how the runtime is built, and why.
//!
//! Each page is an empty module whose documentation is the page (as in
//! `arc-swap`'s `docs` module). Nothing here is API; file paths are relative
//! to the crate root.
//!
//! * [`concurrency`]: the claim protocol, one agent's locks and the order
//!   they are taken in, the run queue, and why no wake-up is lost.
//! * [`lifecycle`]: keyed agents, required emits, restart policies,
//!   monitors and the graceful drain.
//! * [`layers`]: which module may import which (arrows point down only).
//! * [`pool`]: where instruction objects and reply slots come from.
//! * [`snapshot`]: the `fast-path` state snapshot and when it is stale.
//! * [`features`]: what each cargo feature really switches.
//! * [`time`]: timers, the virtual clock, async callers and async work.
//!
//! The pages describe the code of this version: whoever changes `src/agent`
//! or `src/exec` updates [`concurrency`] in the same commit.

pub mod concurrency;
pub mod features;
pub mod layers;
pub mod lifecycle;
pub mod pool;
pub mod snapshot;
pub mod time;
