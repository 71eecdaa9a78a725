//! Who watches which agent (`AgentRef::monitor`), and the rule that makes
//! each monitor tell exactly once.
//!
//! A stop marks the agent closed, then [`take`](Monitors::take)s its
//! watchers and tells each. A new monitor is [`add`](Monitors::add)ed,
//! then the watcher checks whether the agent is closed already; if so it
//! tries to [`remove`](Monitors::remove) its own entry and tells only if
//! that removal found it. Whichever of the two takes the entry out of the
//! map tells, and the map's lock lets only one of them find it; a monitor
//! set on a closed agent can never be missed either, since the stop marks
//! the agent closed before it takes. `tests/loom_monitors.rs` model-checks
//! this file (the watcher is told exactly once in every interleaving).

use super::sync::{AtomicU64, Mutex, Ordering};
use std::collections::HashMap;

/// Watchers `W` per watched agent (by numeric id), each under a monitor id.
pub(crate) struct Monitors<W> {
    by_agent: Mutex<HashMap<u64, Vec<(u64, W)>>>,
    next: AtomicU64,
}

impl<W> Default for Monitors<W> {
    fn default() -> Self {
        Monitors {
            by_agent: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        }
    }
}

impl<W> Monitors<W> {
    /// Adds `watcher` for `agent`; returns the monitor's id.
    pub fn add(&self, agent: u64, watcher: W) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().entry(agent).or_default().push((id, watcher));
        id
    }

    /// Removes monitor `id` of `agent`; whether it was still there.
    pub fn remove(&self, agent: u64, id: u64) -> bool {
        let mut map = self.lock();
        let Some(list) = map.get_mut(&agent) else {
            return false;
        };
        let before = list.len();
        list.retain(|(m, _)| *m != id);
        let removed = list.len() < before;
        if list.is_empty() {
            map.remove(&agent);
        }
        removed
    }

    /// Takes every watcher of `agent` (it stopped).
    pub fn take(&self, agent: u64) -> Vec<(u64, W)> {
        self.lock().remove(&agent).unwrap_or_default()
    }

    /// Drops every monitor.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> super::sync::MutexGuard<'_, HashMap<u64, Vec<(u64, W)>>> {
        self.by_agent.lock().unwrap_or_else(|e| e.into_inner())
    }
}
