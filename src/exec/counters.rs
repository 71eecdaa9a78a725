//! Counters that many threads bump and few read.
//!
//! A single `AtomicU64` bumped by every sender and every worker moves its
//! cache line between cores on every signal. A [`ShardedCounter`] gives each
//! thread its own cache-padded cell (threads are spread over [`SHARDS`] cells
//! round-robin); a read sums the cells. Sums are exact once writers are
//! quiet, and never run ahead of the events they count.

use crossbeam::utils::CachePadded;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Cells per counter; more than the threads that commonly bump one at once.
pub const SHARDS: usize = 16;

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's cell index.
#[inline]
fn shard() -> usize {
    SHARD
        .try_with(|s| {
            let mut i = s.get();
            if i == usize::MAX {
                i = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
                s.set(i);
            }
            i
        })
        .unwrap_or(0)
}

/// A counter whose increments from different threads touch different cache
/// lines.
pub struct ShardedCounter {
    cells: [CachePadded<AtomicU64>; SHARDS],
}

impl Default for ShardedCounter {
    fn default() -> Self {
        ShardedCounter {
            cells: std::array::from_fn(|_| CachePadded::new(AtomicU64::new(0))),
        }
    }
}

impl ShardedCounter {
    /// Adds `n` with `order` (`Release` where a reader must see what was
    /// done before the count).
    #[inline]
    pub fn add(&self, n: u64, order: Ordering) {
        self.cells[shard()].fetch_add(n, order);
    }

    /// The total, each cell read with `Acquire`.
    pub fn sum(&self) -> u64 {
        self.cells
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .fold(0, u64::wrapping_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_thread() {
        let c = ShardedCounter::default();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        c.add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(c.sum(), 8000);
    }
}
