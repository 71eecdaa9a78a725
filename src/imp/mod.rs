//! The swap point: every implementation choice a cargo feature makes.
//!
//! Domain code imports from here and never names a feature itself; `.ci/run`
//! fails if a `cfg(feature = ...)` appears anywhere else under `src/`.
//!
//! Each seam has its plain and its optimized implementation compiled in every
//! build. The features only choose the default [`Strategy`] (and, for the
//! payload, which buffer type [`payload::ActiveBuf`] names), so one test binary
//! can run the plain and the optimized runtime side by side as each other's
//! oracle, and one benchmark run can compare them. The hidden
//! `RuntimeBuilder::strategy` takes a [`Strategy`] explicitly.

/// The NATS JetStream bridge (feature `nats`). Its code lives beside the
/// other layers, in `src/nats/`; only its mount is here, so that every
/// `cfg(feature = ...)` of the crate stays in `imp`.
#[cfg(feature = "nats")]
#[path = "../nats/mod.rs"]
pub mod nats;

/// Bridges to other systems, each present when its feature is on; the
/// crate root re-exports them (`agentry::nats`).
pub mod bridges {
    #[cfg(feature = "nats")]
    pub use super::nats;
}
pub mod observe;
pub mod payload;
pub mod pool;
pub mod reply;
pub mod snapshot;
mod stamp;

/// The atomics `stamp.rs` uses: std's here, loom's in
/// `tests/loom_snapshot.rs`, which compiles the same file.
mod sync {
    pub use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
}

pub use pool::PoolKind;

/// Which implementation each runtime seam uses. Chosen per runtime; the
/// default comes from the enabled cargo features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Strategy {
    /// `fast-path`: committed-state snapshots answer `state()` and queries on
    /// the caller's thread; exact signal types memoize their resolved routes.
    pub fast_path: bool,
    /// `pooling`: where instruction objects and reply slots come from.
    pub pool: PoolKind,
    /// `batching`: a worker drains up to `batch_size` signals per wake-up
    /// (otherwise one).
    pub batching: bool,
}

impl Strategy {
    /// Everything plain: the reference implementation.
    pub const PLAIN: Strategy = Strategy {
        fast_path: false,
        pool: PoolKind::Allocate,
        batching: false,
    };

    /// Every runtime optimization on (what the `full` feature selects).
    pub const OPTIMIZED: Strategy = Strategy {
        fast_path: true,
        pool: PoolKind::FreeList,
        batching: true,
    };

    /// The strategy selected by the enabled cargo features.
    pub const fn from_features() -> Strategy {
        Strategy {
            fast_path: cfg!(feature = "fast-path"),
            pool: if cfg!(feature = "pooling") {
                PoolKind::FreeList
            } else {
                PoolKind::Allocate
            },
            batching: cfg!(feature = "batching"),
        }
    }
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy::from_features()
    }
}

/// The names of the optimization features enabled in this build, for reports.
pub fn enabled_features() -> &'static [&'static str] {
    const ALL: [(&str, bool); 8] = [
        ("fast-path", cfg!(feature = "fast-path")),
        ("zero-copy", cfg!(feature = "zero-copy")),
        ("pooling", cfg!(feature = "pooling")),
        ("batching", cfg!(feature = "batching")),
        ("mimalloc", cfg!(feature = "mimalloc")),
        ("tracing", cfg!(feature = "tracing")),
        ("metrics", cfg!(feature = "metrics")),
        ("nats", cfg!(feature = "nats")),
    ];
    const fn count() -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < ALL.len() {
            if ALL[i].1 {
                n += 1;
            }
            i += 1;
        }
        n
    }
    const N: usize = count();
    const ENABLED: [&str; N] = {
        let mut out = [""; N];
        let mut n = 0;
        let mut i = 0;
        while i < ALL.len() {
            if ALL[i].1 {
                out[n] = ALL[i].0;
                n += 1;
            }
            i += 1;
        }
        out
    };
    &ENABLED
}
