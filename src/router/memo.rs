//! The route memo of `fast-path`: exact signal types mapped to the route
//! candidates the trie found for them, so a type seen before costs one hash
//! lookup instead of a trie walk.
//!
//! A memo belongs to one route-table generation: changing the routes builds a
//! new table with an empty memo, which is the invalidation. Readers never lock:
//! the map sits in an `arc-swap` cell and an insert (once per distinct type)
//! copies it. The number of memoized types is bounded by [`MEMO_CAPACITY`];
//! types beyond it are looked up in the trie every time.
//!
//! The map hashes no string: a type [`Text`] carries its key hash, computed
//! once per signal (for a literal type, once per thread, by validation), and
//! the map's hasher passes it through; a hit then compares the strings once.

use crate::router::{RouteSlot, Router};
use crate::signal::Text;
use arc_swap::ArcSwap;
use hashbrown::{Equivalent, HashMap};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

/// Distinct types memoized per route table.
pub const MEMO_CAPACITY: usize = 4096;

type Map = HashMap<Key, Arc<[RouteSlot]>, BuildHasherDefault<PassThrough>>;

/// A memoized type.
#[derive(Clone)]
pub struct Key(Text);

impl Hash for Key {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.key_hash());
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// A borrowed type looking up a [`Key`] without a clone: it hashes and
/// compares as the key would (hashbrown's `Equivalent`, so no `dyn`
/// borrow and no virtual call per lookup).
struct Lookup<'a>(&'a Text);

impl Hash for Lookup<'_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.key_hash());
    }
}

impl Equivalent<Key> for Lookup<'_> {
    #[inline]
    fn equivalent(&self, key: &Key) -> bool {
        self.0.as_str() == key.0.as_str()
    }
}

impl Eq for Key {}

/// A hasher that returns the one `u64` written to it: the key hash, already
/// well mixed (foldhash).
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `Key`; anything else still hashes
        // deterministically.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
}

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
    /// Runs `f` on the memoized candidates of `ty`, if memoized (no copy,
    /// no scratch buffer: the common path of a send with `fast-path`).
    #[inline]
    #[allow(clippy::mutable_key_type)] // see `candidates`
    pub fn with_hit<R>(&self, ty: &Text, f: impl FnOnce(&[RouteSlot]) -> R) -> Option<R> {
        let RouteMemo::On(cell) = self else {
            return None;
        };
        cell.load().get(&Lookup(ty)).map(|slots| f(slots))
    }

    #[inline]
    // `Text`'s interior mutability is its key-hash cache, which holds the
    // same value (a function of the string) whether filled or not: a key's
    // hash and equality never change.
    #[allow(clippy::mutable_key_type)]
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
        if let Some(slots) = cell.load().get(&Lookup(ty)) {
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
                map.insert(Key(ty.clone()), found.clone());
            }
            map
        });
        MemoOutcome::Miss
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::{Pattern, Priority};

    fn router() -> Router<()> {
        let mut r = Router::new();
        for p in ["a.b", "a.*", "x.**"] {
            r.insert(Pattern::parse(p).unwrap(), Priority::DEFAULT, ());
        }
        r
    }

    fn lookup(memo: &RouteMemo, r: &Router<()>, ty: &Text) -> (MemoOutcome, Vec<RouteSlot>) {
        let mut out = Vec::new();
        let outcome = memo.candidates(r, ty, &mut out);
        (outcome, out)
    }

    #[test]
    fn equal_strings_share_an_entry_whatever_their_text_form() {
        let (r, memo) = (router(), RouteMemo::new(true));
        let (first, slots) = lookup(&memo, &r, &Text::from("a.b"));
        assert_eq!((first, slots.len()), (MemoOutcome::Miss, 2));
        let shared = Text::from(String::from("a.b"));
        assert_eq!(
            lookup(&memo, &r, &shared),
            (MemoOutcome::Hit, slots.clone())
        );
        // A clone keeps the hash the lookup computed.
        assert_eq!(
            lookup(&memo, &r, &shared.clone()),
            (MemoOutcome::Hit, slots)
        );
        let (outcome, other) = lookup(&memo, &r, &Text::from("a.c"));
        assert_eq!((outcome, other.len()), (MemoOutcome::Miss, 1));
        assert_eq!(lookup(&memo, &r, &Text::from("a.c")).0, MemoOutcome::Hit);
        let off = RouteMemo::new(false);
        assert_eq!(lookup(&off, &r, &Text::from("x.y.z")).0, MemoOutcome::Off);
    }

    #[test]
    fn the_memo_agrees_with_the_trie_past_its_capacity() {
        let (r, memo) = (router(), RouteMemo::new(true));
        for round in 0..2 {
            for i in 0..MEMO_CAPACITY + 100 {
                let ty = Text::from(format!("x.{i}"));
                let (outcome, slots) = lookup(&memo, &r, &ty);
                let mut trie = Vec::new();
                r.lookup(&ty, &mut trie);
                assert_eq!(slots, trie, "{ty}");
                let expected = match (round, i < MEMO_CAPACITY) {
                    (_, false) => MemoOutcome::Miss,
                    (0, true) => MemoOutcome::Miss,
                    _ => MemoOutcome::Hit,
                };
                assert_eq!(outcome, expected, "{ty} round {round}");
            }
        }
    }
}
