//! Model-checks the `fast-path` snapshot's commit stamps
//! (`src/imp/stamp.rs`) with loom: the real `Stamps` code compiled against
//! loom's atomics, the snapshot cell modelled as an atomic holding the
//! number of the instruction whose state it copied (`arc-swap` stores and
//! loads it with at least release/acquire ordering).
//!
//! The agent runs three instructions; after each it reaches a commit point
//! (copying the state only if a reader asked) and then lets an effect
//! leave (a reply: a release store the reader may see). Checked in every
//! interleaving: a reader that has seen instruction `k`'s effect and then
//! reads from the snapshot gets the state of `k` or later (a read never
//! misses a commit that happened before it); one that cannot use the
//! snapshot gets the live state from the read lane instead, which is never
//! older either.

mod sync {
    pub use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
}

#[path = "../src/imp/stamp.rs"]
#[allow(dead_code)]
mod stamp;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::thread;
use stamp::Stamps;

struct Agent {
    stamps: Stamps,
    /// The snapshot cell: which instruction's state it holds.
    cell: AtomicU64,
    /// The last instruction whose effect (reply) left the agent.
    replied: AtomicU64,
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

#[test]
fn a_read_never_misses_a_commit_that_happened_before_it() {
    model(|| {
        let agent = Arc::new(Agent {
            stamps: Stamps::new(),
            cell: AtomicU64::new(0),
            replied: AtomicU64::new(0),
        });
        let runner = {
            let agent = agent.clone();
            thread::spawn(move || {
                for k in 1..=3u64 {
                    // Instruction k ran; its commit point:
                    if agent.stamps.take_wanted() {
                        agent.cell.store(k, Ordering::Release);
                        agent.stamps.copied();
                    }
                    agent.stamps.commit();
                    // Then its effect leaves.
                    agent.replied.store(k, Ordering::Release);
                }
            })
        };
        for _ in 0..2 {
            let seen = agent.replied.load(Ordering::Acquire);
            if agent.stamps.current() {
                let got = agent.cell.load(Ordering::Acquire);
                assert!(
                    got >= seen,
                    "served instruction {got}'s state after {seen}'s reply"
                );
            }
            // Otherwise the read lane serves the live state: at least `seen`.
        }
        runner.join().unwrap();
    });
}

#[test]
fn a_refresh_by_the_read_lane_is_served_until_the_next_commit() {
    model(|| {
        let agent = Arc::new(Agent {
            stamps: Stamps::new(),
            cell: AtomicU64::new(0),
            replied: AtomicU64::new(0),
        });
        // Commit 1 with nobody reading: no copy.
        assert!(!agent.stamps.take_wanted());
        agent.stamps.commit();
        agent.replied.store(1, Ordering::Release);
        let reader = {
            let agent = agent.clone();
            thread::spawn(move || {
                let seen = agent.replied.load(Ordering::Acquire);
                if agent.stamps.current() {
                    assert!(agent.cell.load(Ordering::Acquire) >= seen);
                }
            })
        };
        // The read lane (claim holder, between instructions) refreshes.
        if agent.stamps.is_behind() {
            agent.cell.store(1, Ordering::Release);
            agent.stamps.refreshed();
        }
        assert!(agent.stamps.current());
        reader.join().unwrap();
    });
}
