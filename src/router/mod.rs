//! Pattern routing: maps a dot-separated type string such as
//! `order.item.created` to every route whose pattern matches it, in a
//! deterministic order.
//!
//! The router is generic over the route target `T` and knows nothing about
//! signals or agents: the caller passes the type string and gets back routes.
//!
//! # Pattern grammar
//!
//! A [`Pattern`] is one or more segments separated by `.`. A segment is
//!
//! - `[A-Za-z0-9_-]+`: matches exactly that text (case-sensitive);
//! - `*`: matches exactly one segment, never zero;
//! - `**`: matches zero or more segments, anywhere in the pattern.
//!
//! Rejected ([`PatternError`]): the empty pattern, empty segments (leading,
//! trailing or doubled `.`), any other character, a segment mixing wildcards
//! and text (`a*`, `*b`, `***`), two adjacent globstars (`**.**`), more than
//! [`Pattern::MAX_SEGMENTS`] (64) segments, more than [`Pattern::MAX_LEN`]
//! (1024) bytes.
//!
//! # Matching semantics
//!
//! - `a.**` matches `a` (zero segments), `a.b`, `a.b.c`.
//! - `**` alone matches every type.
//! - `**` may appear anywhere: `**.created`, `a.**.z`.
//! - No implicit prefix matching: a route on `a` does not fire for `a.b`.
//! - `*` never matches zero segments: `a.*` does not match `a`.
//! - Matching is case-sensitive: `A` does not match `a`.
//!
//! Types are **not validated**: a lookup splits the type on `.` and takes the
//! segments literally, so it never fails or panics. A type that the pattern
//! grammar would reject simply matches what these rules say: `""` is one empty
//! segment (matched by `*` and `**`), `a..b` has an empty middle segment
//! (matched by `a.*.b` and `a.**`), `a b` is one segment matched by `*`.
//!
//! # Order of matches
//!
//! When several routes match, [`Router::lookup`] returns them
//!
//! 1. **more specific first**: patterns are compared segment by segment from
//!    the left by kind; exact beats `*`, `*` beats `**`; at the first position
//!    where the kinds differ, the better kind wins. The end of a pattern ranks
//!    between `*` and `**`: `a.b` comes before `a.b.**` and `a.*` before
//!    `a.*.**`, while `**.x` comes before `**` and `a.**.c` before `a.**`
//!    (catch-alls last).
//!    Specificity beats priority: `a.b` at priority -100 still comes before
//!    `a.*` at priority 100.
//! 2. then **higher [`Priority`] first** (100 before -100);
//! 3. then **registration order** (smaller [`RouteId`] first).
//!
//! This is a total order, so the result is deterministic.
//!
//! # Cost
//!
//! Lookups walk a trie keyed by segment (see the `trie` module): each trie
//! node is visited at most once per lookup with the set of type positions at
//! which it is active, so time is polynomial in the type's depth even for
//! patterns like `**.*.**.*.**` that make backtracking exponential, and (for
//! types of up to 127 segments, see below) it depends on the routes that
//! (partially) match, not on how many routes the router holds. A lookup performs **no heap allocation** when the output
//! vector already has room for the matches: scratch state lives on the stack.
//!
//! Types deeper than 127 segments (far beyond the 64 a pattern or a signal
//! type may have, so only strings passed to [`Router::lookup`] directly can
//! be that deep) take a cold fallback that tests every route with
//! [`Pattern::matches`]: still correct, allocation-free and polynomial, but
//! linear in the number of routes. (The trie walk's position sets are one
//! `u128`; a walk for any depth would need sets sized by the type, that is a
//! heap allocation, on a path no signal reaches.)

mod error;
pub(crate) mod memo;
mod order;
mod pattern;
pub(crate) mod scratch;
mod trie;

use std::fmt;

use foldhash::HashMap;

pub use error::{PatternError, RouteError};
pub use pattern::Pattern;

use trie::{MAX_WALK_SEGMENTS, Trie};

/// Identity of a route, returned by [`Router::insert`] and used to remove it.
///
/// Ids are unique for the life of a router value (never reused, not even after
/// [`Router::clear`]) and increase with registration order, which makes them
/// the final tie-breaker of the order rule. An id also names the router that
/// handed it out (every agent and every bus has its own), so removing it from
/// another router is refused with [`RouteError::ForeignRoute`] instead of
/// removing whichever route of that router has the same number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteId {
    /// The router that handed it out (process-unique).
    owner: u64,
    /// Registration order within that router.
    seq: u64,
}

impl RouteId {
    /// The raw number within its router, for logs and metrics.
    pub fn get(self) -> u64 {
        self.seq
    }
}

impl fmt::Display for RouteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of router {}", self.seq, self.owner)
    }
}

/// Owners for new routers.
static NEXT_OWNER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Tie-breaker between equally specific routes: higher runs first.
///
/// A validated `i8` newtype in `-100..=100`, so priorities stay a small,
/// documented scale instead of an arms race of ever larger numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(i8);

impl Priority {
    /// The priority of routes that do not care (0).
    pub const DEFAULT: Self = Self(0);
    /// Lowest priority (-100): runs after every equally specific route.
    pub const MIN: Self = Self(-100);
    /// Highest priority (100): runs before every equally specific route.
    pub const MAX: Self = Self(100);

    /// Validates `value` so only the documented scale can be used.
    ///
    /// # Errors
    /// [`RouteError::PriorityOutOfRange`] unless `-100 <= value <= 100`.
    pub fn new(value: i32) -> Result<Self, RouteError> {
        if (i32::from(Self::MIN.0)..=i32::from(Self::MAX.0)).contains(&value) {
            // In -100..=100, so it fits an i8.
            Ok(Self(value as i8))
        } else {
            Err(RouteError::PriorityOutOfRange { given: value })
        }
    }

    /// The value, for display and comparisons with plain numbers.
    pub fn get(self) -> i8 {
        self.0
    }
}

impl TryFrom<i32> for Priority {
    type Error = RouteError;

    fn try_from(value: i32) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A registered route: the pattern it listens on, its priority and the
/// caller's target (a handler, an agent address, ...).
#[derive(Clone, Debug)]
pub struct Route<T> {
    id: RouteId,
    pattern: Pattern,
    priority: Priority,
    target: T,
}

impl<T> Route<T> {
    /// The id returned by [`Router::insert`], to remove the route later.
    pub fn id(&self) -> RouteId {
        self.id
    }

    /// The pattern the route listens on.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// The route's priority among equally specific routes.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// What the caller routes to.
    pub fn target(&self) -> &T {
        &self.target
    }
}

/// A `Copy`, `u32`-sized handle to a route produced by [`Router::lookup`], so
/// that a hot dispatch loop can collect matches into a reused `Vec` without
/// cloning targets or holding many references.
///
/// Resolve it with [`Router::slot`]. A slot is valid only until the router is
/// next modified ([`insert`](Router::insert), [`remove`](Router::remove),
/// [`clear`](Router::clear)): removals may compact the internal storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteSlot(u32);

/// Routes type strings to targets by pattern; see the [module docs](self)
/// for the grammar, the semantics, the order rule and the cost guarantees.
///
/// Cloning a router (when `T: Clone`) copies all routes and keeps their ids;
/// both copies then hand out the same future ids independently.
#[derive(Clone)]
pub struct Router<T> {
    /// Routes by slot, in registration order; `None` marks a removed route
    /// until the next compaction.
    routes: Vec<Option<Route<T>>>,
    /// Slot of every live route.
    index: HashMap<RouteId, RouteSlot>,
    trie: Trie,
    live: usize,
    next_id: u64,
    /// Names this router (and its clones) in the ids it hands out.
    owner: u64,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Router<T> {
    /// An empty router.
    pub fn new() -> Self {
        Self {
            routes: Vec::new(),
            index: HashMap::default(),
            trie: Trie::default(),
            live: 0,
            next_id: 0,
            owner: NEXT_OWNER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Registers `target` under `pattern` and returns the new route's id,
    /// which is larger than every id this router handed out before.
    ///
    /// # Panics
    /// If the router would hold more than `u32::MAX` route slots.
    pub fn insert(&mut self, pattern: Pattern, priority: Priority, target: T) -> RouteId {
        let id = RouteId {
            owner: self.owner,
            seq: self.next_id,
        };
        self.next_id += 1;
        let slot = RouteSlot(
            u32::try_from(self.routes.len()).expect("router is limited to u32::MAX routes"),
        );
        self.trie.insert(&pattern, slot);
        self.routes.push(Some(Route {
            id,
            pattern,
            priority,
            target,
        }));
        self.index.insert(id, slot);
        self.live += 1;
        id
    }

    /// Unregisters a route and hands its target back, so the caller can shut
    /// it down. The id is never reused.
    ///
    /// # Errors
    /// [`RouteError::ForeignRoute`] if another router handed the id out;
    /// [`RouteError::UnknownRoute`] if no live route has this id.
    pub fn remove(&mut self, id: RouteId) -> Result<T, RouteError> {
        if id.owner != self.owner {
            return Err(RouteError::ForeignRoute { id });
        }
        let slot = self
            .index
            .remove(&id)
            .ok_or(RouteError::UnknownRoute { id })?;
        let route = self.routes[slot.0 as usize]
            .take()
            .expect("index points at a live route");
        let found = self.trie.remove(&route.pattern, slot);
        debug_assert!(found, "trie holds every live route");
        self.live -= 1;
        // Compact once tombstones outnumber live routes: amortized O(1) per
        // removal, and it drops trie nodes that no longer lead anywhere.
        if self.routes.len() - self.live > self.live {
            self.compact();
        }
        Ok(route.target)
    }

    /// Rebuilds storage and trie from the live routes, keeping their order.
    fn compact(&mut self) {
        let old = std::mem::take(&mut self.routes);
        self.trie = Trie::default();
        self.index.clear();
        self.routes.reserve(self.live);
        for route in old.into_iter().flatten() {
            // Fewer slots than before, so this fits a u32.
            let slot = RouteSlot(self.routes.len() as u32);
            self.trie.insert(&route.pattern, slot);
            self.index.insert(route.id, slot);
            self.routes.push(Some(route));
        }
    }

    /// The live route with this id, if any.
    pub fn get(&self, id: RouteId) -> Option<&Route<T>> {
        let slot = self.index.get(&id)?;
        self.routes[slot.0 as usize].as_ref()
    }

    /// Number of live routes.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the router has no routes (every lookup then matches nothing).
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// All live routes in registration order, e.g. to list or persist them.
    pub fn iter(&self) -> impl Iterator<Item = &Route<T>> + '_ {
        self.routes.iter().flatten()
    }

    /// Removes every route. Ids keep increasing afterwards, so an id from
    /// before the clear can never name a new route.
    pub fn clear(&mut self) {
        self.routes.clear();
        self.index.clear();
        self.trie = Trie::default();
        self.live = 0;
    }

    /// Appends to `out` a slot for every route whose pattern matches `ty`,
    /// each exactly once, in the order rule (see the [module docs](self)).
    ///
    /// This is the hot path: it does not allocate when `out` has capacity for
    /// the matches, and for a type of up to 127 segments (every signal type:
    /// they have at most 64) its cost depends on the type's depth and the
    /// routes that match it, not on how many routes there are. A deeper `ty`
    /// is tested against every route instead (still allocation-free and
    /// polynomial, but linear in the number of routes; see the
    /// [module docs](self#cost)). `ty` is not validated and no input makes it
    /// panic. Entries already in `out` are left untouched. Slots are valid
    /// until the router is next modified.
    pub fn lookup(&self, ty: &str, out: &mut Vec<RouteSlot>) {
        let mut steps = 0;
        self.lookup_counted(ty, out, &mut steps);
    }

    /// [`lookup`](Self::lookup), counting work units into `steps` so tests
    /// can bound the work without timing anything.
    fn lookup_counted(&self, ty: &str, out: &mut Vec<RouteSlot>, steps: &mut u64) {
        if self.live == 0 {
            return;
        }
        /// Stack buffer size for the common shallow types.
        const SHORT: usize = 16;
        let start = out.len();
        let n = ty.bytes().filter(|&b| b == b'.').count() + 1;
        if n <= SHORT {
            let mut buf = [""; SHORT];
            self.trie.collect(split_into(ty, &mut buf), out, steps);
        } else if n <= MAX_WALK_SEGMENTS {
            let mut buf = [""; MAX_WALK_SEGMENTS];
            self.trie.collect(split_into(ty, &mut buf), out, steps);
        } else {
            // Cold fallback for absurdly deep types: test every route.
            for (i, route) in self.routes.iter().enumerate() {
                *steps += 1;
                if let Some(route) = route
                    && route.pattern.matches(ty)
                {
                    // Slots are below u32::MAX by construction.
                    out.push(RouteSlot(i as u32));
                }
            }
        }
        out[start..].sort_unstable_by(|&a, &b| match (self.slot(a), self.slot(b)) {
            (Some(x), Some(y)) => order::compare(x, y),
            _ => a.0.cmp(&b.0),
        });
    }

    /// Resolves a slot from [`lookup`](Self::lookup) to its route; `None` if
    /// the slot is stale (the router was modified since the lookup) or comes
    /// from another router.
    pub fn slot(&self, slot: RouteSlot) -> Option<&Route<T>> {
        self.routes.get(slot.0 as usize).and_then(Option::as_ref)
    }

    /// Every route matching `ty`, in the order rule; a convenience for tests
    /// and cold paths (it allocates the result).
    pub fn matches(&self, ty: &str) -> Vec<&Route<T>> {
        let mut slots = Vec::new();
        self.lookup(ty, &mut slots);
        slots.into_iter().filter_map(|s| self.slot(s)).collect()
    }
}

/// Splits `ty` on `.` into the front of `buf`, which the caller sized to hold
/// every segment (extra segments are left out).
///
/// A plain byte scan: types are short (a few segments of a few bytes), where
/// `str::split`'s memchr searcher costs more than it saves, and whether it
/// got inlined moved a lookup by 200 instructions between builds.
#[inline]
fn split_into<'a, 'b>(ty: &'a str, buf: &'b mut [&'a str]) -> &'b [&'a str] {
    let mut n = 0;
    let mut start = 0;
    for (i, &byte) in ty.as_bytes().iter().enumerate() {
        if byte == b'.' {
            // `.` is ASCII: both ends are character boundaries.
            match (buf.get_mut(n), ty.get(start..i)) {
                (Some(slot), Some(seg)) => *slot = seg,
                _ => return &buf[..n],
            }
            n += 1;
            start = i + 1;
        }
    }
    if let (Some(slot), Some(seg)) = (buf.get_mut(n), ty.get(start..)) {
        *slot = seg;
        n += 1;
    }
    &buf[..n]
}

impl<T: fmt::Debug> fmt::Debug for Router<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// Lists the live routes without collecting them.
        struct Routes<'r, T>(&'r Router<T>);
        impl<T: fmt::Debug> fmt::Debug for Routes<'_, T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.0.iter()).finish()
            }
        }
        f.debug_struct("Router")
            .field("len", &self.live)
            .field("routes", &Routes(self))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
