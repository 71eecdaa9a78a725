//! The commit stamps that say whether the `fast-path` snapshot may answer a
//! read (see [`super::snapshot`]): kept apart so that `tests/loom_snapshot.rs`
//! can model-check them against loom's atomics.
//!
//! The claim holder counts every commit point in `committed`; when it copies
//! the state into the snapshot it first stores the copy, then `shown` (the
//! commit the copy holds), then `committed`. A reader loads `committed`, then
//! `shown`, and uses the snapshot only if `shown >= committed`. A commit
//! point that happened before the read (its effects, which leave after it,
//! told the reader) is in the reader's `committed`, so a snapshot without it
//! is never served. `wanted` is only a hint: a lost one costs a read through
//! the read lane, never a stale answer.

use super::sync::{AtomicBool, AtomicU64, Ordering};

/// See the module docs.
pub struct Stamps {
    /// Commit points so far; written only by the claim holder.
    committed: AtomicU64,
    /// The commit the snapshot shows.
    shown: AtomicU64,
    /// A reader looked since the last commit point: the next one copies.
    wanted: AtomicBool,
}

impl Default for Stamps {
    fn default() -> Self {
        Self::new()
    }
}

impl Stamps {
    /// A snapshot that shows the initial state (commit 0).
    pub fn new() -> Self {
        Stamps {
            committed: AtomicU64::new(0),
            shown: AtomicU64::new(0),
            wanted: AtomicBool::new(false),
        }
    }

    /// A reader: records that someone reads, and says whether the snapshot
    /// shows the latest commit (load it after this returns `true`).
    #[inline]
    pub fn current(&self) -> bool {
        if !self.wanted.load(Ordering::Relaxed) {
            self.wanted.store(true, Ordering::Relaxed);
        }
        let committed = self.committed.load(Ordering::Acquire);
        self.shown.load(Ordering::Acquire) >= committed
    }

    /// The claim holder at a commit point: whether a reader looked since the
    /// last one (then copy, call [`copied`](Self::copied), and in any case
    /// [`commit`](Self::commit)).
    #[inline]
    pub fn take_wanted(&self) -> bool {
        if self.wanted.load(Ordering::Relaxed) {
            self.wanted.store(false, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// The snapshot now holds the state of the commit point being counted.
    #[inline]
    pub fn copied(&self) {
        let upcoming = self.committed.load(Ordering::Relaxed) + 1;
        self.shown.store(upcoming, Ordering::Release);
    }

    /// Counts a commit point: from here on a snapshot without it is not used.
    #[inline]
    pub fn commit(&self) {
        let next = self.committed.load(Ordering::Relaxed) + 1;
        self.committed.store(next, Ordering::Release);
    }

    /// The snapshot now holds the live state (a copy the read lane made
    /// between instructions).
    pub fn refreshed(&self) {
        let committed = self.committed.load(Ordering::Relaxed);
        self.shown.store(committed, Ordering::Release);
    }

    /// Whether the snapshot is behind the live state (claim holder only).
    pub fn is_behind(&self) -> bool {
        self.shown.load(Ordering::Relaxed) < self.committed.load(Ordering::Relaxed)
    }
}
