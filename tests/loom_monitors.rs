//! Model-checks the monitor registry (`src/exec/monitors.rs`) with loom: a
//! monitor set while the watched agent stops is told exactly once, by the
//! stop or by the monitor call itself, in every interleaving, and never
//! missed.

mod sync {
    pub use loom::sync::atomic::{AtomicU64, Ordering};
    pub use loom::sync::{Mutex, MutexGuard};
}

#[path = "../src/exec/monitors.rs"]
#[allow(dead_code)]
mod monitors;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;
use monitors::Monitors;

const AGENT: u64 = 7;

#[test]
fn a_monitor_set_while_its_agent_stops_is_told_exactly_once() {
    loom::model(|| {
        let monitors = Arc::new(Monitors::<()>::default());
        let closed = Arc::new(AtomicBool::new(false));
        let told = Arc::new(AtomicUsize::new(0));

        // The stop: mark closed, then take the watchers and tell each.
        let stop = {
            let (monitors, closed, told) = (monitors.clone(), closed.clone(), told.clone());
            thread::spawn(move || {
                closed.store(true, Ordering::Release);
                for _ in monitors.take(AGENT) {
                    told.fetch_add(1, Ordering::SeqCst);
                }
            })
        };

        // `AgentRef::monitor`: add, then, if already closed, tell only if
        // this thread removes its own entry.
        let id = monitors.add(AGENT, ());
        if closed.load(Ordering::Acquire) && monitors.remove(AGENT, id) {
            told.fetch_add(1, Ordering::SeqCst);
        }

        stop.join().unwrap();
        assert_eq!(
            told.load(Ordering::SeqCst),
            1,
            "the watcher must hear of the stop exactly once"
        );
    });
}

#[test]
fn a_demonitor_racing_a_stop_never_tells_twice() {
    loom::model(|| {
        let monitors = Arc::new(Monitors::<()>::default());
        let told = Arc::new(AtomicUsize::new(0));
        let id = monitors.add(AGENT, ());
        let stop = {
            let (monitors, told) = (monitors.clone(), told.clone());
            thread::spawn(move || {
                for _ in monitors.take(AGENT) {
                    told.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let removed = monitors.remove(AGENT, id);
        stop.join().unwrap();
        // Exactly one of them had the entry.
        assert_eq!(usize::from(removed) + told.load(Ordering::SeqCst), 1);
    });
}
