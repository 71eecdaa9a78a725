//! The route memo of `fast-path`: exact signal types mapped to the route
//! candidates the trie found for them, so a type seen before costs one hash
//! lookup instead of a trie walk.
//!
//! A memo belongs to one route-table generation: changing the routes builds a
//! new table with an empty memo, which is the invalidation. Readers never lock:
//! the map sits in an `arc-swap` cell and an insert (once per distinct type)
//! copies it. The number of memoized types is bounded by [`MEMO_CAPACITY`];
//! types beyond it are looked up in the trie every time.

use crate::router::{RouteSlot, Router};
use crate::signal::Text;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::Arc;

/// Distinct types memoized per route table.
pub const MEMO_CAPACITY: usize = 4096;

type Map = HashMap<Text, Arc<[RouteSlot]>, foldhash::fast::FixedState>;

/// What a candidate lookup did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoOutcome {
    /// No memo (plain): the trie was walked.
    Off,
    /// Served from the memo.
    Hit,
    /// Not memoized yet: the trie was walked (and the result memoized if room).
    Miss,
}

/// A route-candidate memo, or none.
pub enum RouteMemo {
    /// Plain: every lookup walks the trie.
    Off,
    /// `fast-path`: exact types are memoized.
    On(ArcSwap<Map>),
}

impl RouteMemo {
    /// A fresh (empty) memo if `fast_path`, else none.
    pub fn new(fast_path: bool) -> Self {
        if fast_path {
            RouteMemo::On(ArcSwap::from_pointee(Map::default()))
        } else {
            RouteMemo::Off
        }
    }

    /// Appends the candidate routes for `ty` to `out`, in the router's order.
    #[inline]
    pub fn candidates<T>(
        &self,
        router: &Router<T>,
        ty: &Text,
        out: &mut Vec<RouteSlot>,
    ) -> MemoOutcome {
        let RouteMemo::On(cell) = self else {
            router.lookup(ty, out);
            return MemoOutcome::Off;
        };
        if let Some(slots) = cell.load().get(ty.as_str()) {
            out.extend_from_slice(slots);
            return MemoOutcome::Hit;
        }
        let start = out.len();
        router.lookup(ty, out);
        if cell.load().len() >= MEMO_CAPACITY {
            return MemoOutcome::Miss;
        }
        let found: Arc<[RouteSlot]> = Arc::from(&out[start..]);
        cell.rcu(|map| {
            let mut map = Map::clone(map);
            if map.len() < MEMO_CAPACITY {
                map.insert(ty.clone(), found.clone());
            }
            map
        });
        MemoOutcome::Miss
    }
}
