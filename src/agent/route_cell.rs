//! A published route table whose changes cost what they change, not the size
//! of the table.
//!
//! Senders read the table through an `arc-swap` cell without locking, so a
//! published table is never modified in place. Copying it for every change
//! made `add_route` and `Bus::subscribe` O(routes): 13 ms at 16,000 routes.
//! Here the writer keeps two copies instead (the left-right idea): the one
//! readers see, and the one it replaced, which is exactly one change behind.
//! A change replays that one change on the spare, applies the new one, and
//! swaps the two. The trie and the lookup path are untouched, so sends cost
//! exactly what they did.
//!
//! The spare may only be modified when no reader still holds it.
//! [`ArcSwap::swap`] returns the replaced table with every reader's hold
//! counted in its strong count (arc-swap settles its borrowed "debts" before
//! returning), and no new reader can reach it once swapped out, so
//! [`Arc::get_mut`] succeeding proves it unshared. When a reader still holds
//! it (a bus callback that subscribes while the publish that runs it holds
//! the table, or a concurrent send), the change falls back to copying the
//! current table: correct, and O(routes) only then.
//!
//! Small tables keep no spare: below [`SPARE_FROM`] routes a copy (about
//! 12 µs at 100 routes) costs less than a second table per agent. (At 64 the
//! spare also changed glibc's heap layout under the gate's 100-subscriber
//! fan-out bench by +15% instructions in `malloc`: features.md, "Route
//! changes".)

use super::routes::RouteTable;
use crate::router::{Pattern, Priority, RouteError, RouteId, Router};
use arc_swap::{ArcSwap, Guard};
use std::sync::{Arc, Mutex, PoisonError};

/// Tables with fewer routes are copied on change instead of double-buffered.
pub(crate) const SPARE_FROM: usize = 128;

/// One change to a router, kept so it can be replayed on the spare.
enum Change<T> {
    Insert(Pattern, Priority, T),
    Remove(RouteId),
}

impl<T: Clone> Change<T> {
    /// Applies the change; an insert returns its id.
    fn apply(&self, router: &mut Router<T>) -> Result<Option<RouteId>, RouteError> {
        match self {
            Change::Insert(pattern, priority, target) => Ok(Some(router.insert(
                pattern.clone(),
                *priority,
                target.clone(),
            ))),
            Change::Remove(id) => router.remove(*id).map(|_| None),
        }
    }
}

/// The writer's side: the table readers saw before the last change, and that
/// change.
struct Spare<T> {
    table: Option<Arc<RouteTable<T>>>,
    behind: Option<Box<Change<T>>>,
}

/// A route table readers load without locking and writers change in time
/// independent of its size (see the module docs).
pub(crate) struct RouteCell<T> {
    current: ArcSwap<RouteTable<T>>,
    writer: Mutex<Spare<T>>,
    /// [`SPARE_FROM`], lowered by tests to exercise the spare on small tables.
    spare_from: usize,
}

impl<T: Clone> RouteCell<T> {
    /// Publishes `table`, which may be shared (an agent kind's routes): the
    /// first change copies it.
    pub fn new(table: Arc<RouteTable<T>>) -> Self {
        RouteCell {
            current: ArcSwap::new(table),
            writer: Mutex::new(Spare {
                table: None,
                behind: None,
            }),
            spare_from: SPARE_FROM,
        }
    }

    /// The published table, for a lookup (hold the guard briefly: a held
    /// table makes the next change copy).
    #[inline]
    pub fn load(&self) -> Guard<Arc<RouteTable<T>>> {
        self.current.load()
    }

    /// Adds a route and publishes the result.
    pub fn insert(&self, pattern: Pattern, priority: Priority, target: T) -> RouteId {
        let id = self.change(Change::Insert(pattern, priority, target));
        // An insert cannot fail and always returns its id.
        match id {
            Ok(Some(id)) => id,
            Ok(None) | Err(_) => unreachable!("Router::insert is infallible"),
        }
    }

    /// Removes a route and publishes the result.
    pub fn remove(&self, id: RouteId) -> Result<(), RouteError> {
        self.change(Change::Remove(id)).map(drop)
    }

    /// Publishes an empty table and forgets the spare (shutdown).
    pub fn clear(&self, fast_path: bool) {
        let mut spare = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.current
            .store(Arc::new(RouteTable::new(Router::new(), fast_path)));
        *spare = Spare {
            table: None,
            behind: None,
        };
    }

    fn change(&self, change: Change<T>) -> Result<Option<RouteId>, RouteError> {
        let mut spare = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let behind = spare.behind.take();
        let mut next = match spare.table.take() {
            Some(mut table) => match (Arc::get_mut(&mut table), behind) {
                (Some(t), Some(last)) => {
                    last.apply(&mut t.router)
                        .expect("the spare is one successful change behind");
                    table
                }
                (Some(_), None) => table,
                // A reader still holds it: copy instead.
                (None, _) => self.copy_current(),
            },
            None => self.copy_current(),
        };
        let t = Arc::get_mut(&mut next).expect("the next table is not published yet");
        let result = change.apply(&mut t.router);
        if result.is_err() {
            // `next` equals the published table: keep it as a spare with
            // nothing to replay.
            spare.table = Some(next);
            return result;
        }
        t.reset_memo();
        let keep = t.router.len() >= self.spare_from;
        let old = self.current.swap(next);
        if keep {
            spare.table = Some(old);
            spare.behind = Some(Box::new(change));
        }
        result
    }

    fn copy_current(&self) -> Arc<RouteTable<T>> {
        Arc::new(self.current.load().copy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::Text;
    use proptest::prelude::*;

    fn plain(router: &Router<u32>, ty: &str) -> Vec<(u64, u32)> {
        router
            .matches(ty)
            .into_iter()
            .map(|r| (r.id().get(), *r.target()))
            .collect()
    }

    fn published(cell: &RouteCell<u32>, ty: &str) -> Vec<(u64, u32)> {
        let table = cell.load();
        let mut slots = Vec::new();
        table.candidates(&Text::from(ty.to_owned()), &mut slots);
        slots
            .into_iter()
            .filter_map(|s| table.router.slot(s))
            .map(|r| (r.id().get(), *r.target()))
            .collect()
    }

    /// A table a reader holds and what it answered when taken.
    type Held = (Arc<RouteTable<u32>>, Vec<Vec<(u64, u32)>>);

    #[derive(Clone, Debug)]
    enum Step {
        Insert(usize),
        /// Removes the n-th live route (modulo), or an unknown id if none.
        Remove(usize),
        /// A reader takes hold of the published table (forcing a copy).
        Hold,
        Release,
    }

    const PATTERNS: [&str; 6] = ["a.b", "a.*", "a.**", "**", "b.*.c", "*.b"];
    const TYPES: [&str; 6] = ["a.b", "a", "a.x.y", "b.q.c", "z.b", "b"];

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0..PATTERNS.len()).prop_map(Step::Insert),
            3 => any::<usize>().prop_map(Step::Remove),
            1 => Just(Step::Hold),
            1 => Just(Step::Release),
        ]
    }

    proptest! {
        /// Whatever the interleaving of changes and held tables, the published
        /// table answers every lookup exactly as one router changed in place,
        /// with the same ids; and a held table keeps answering as it did.
        #[test]
        fn a_double_buffered_table_matches_a_router_changed_in_place(
            steps in proptest::collection::vec(step(), 1..400),
            fast in any::<bool>(),
            spare_from in prop_oneof![Just(0usize), Just(3), Just(SPARE_FROM)],
        ) {
            let mut model = Router::<u32>::new();
            let mut cell = RouteCell::new(Arc::new(RouteTable::new(Router::<u32>::new(), fast)));
            cell.spare_from = spare_from;
            let mut held: Vec<Held> = Vec::new();
            let mut ids = Vec::new();
            let mut next_target = 0u32;
            for step in steps {
                match step {
                    Step::Insert(p) => {
                        let pattern = Pattern::parse(PATTERNS[p]).unwrap();
                        let a = model.insert(pattern.clone(), Priority::DEFAULT, next_target);
                        let b = cell.insert(pattern, Priority::DEFAULT, next_target);
                        prop_assert_eq!(a.get(), b.get());
                        ids.push(b);
                        next_target += 1;
                    }
                    Step::Remove(n) => {
                        if ids.is_empty() {
                            continue;
                        }
                        let id = ids.remove(n % ids.len());
                        prop_assert!(model.remove(id_in(&model, id)).is_ok());
                        prop_assert!(cell.remove(id).is_ok());
                        // A second removal is refused the same way.
                        let again = matches!(cell.remove(id), Err(RouteError::UnknownRoute { .. }));
                        prop_assert!(again);
                    }
                    Step::Hold => {
                        let table = cell.current.load_full();
                        let answers = TYPES.iter().map(|ty| published(&cell, ty)).collect();
                        held.push((table, answers));
                    }
                    Step::Release => {
                        held.pop();
                    }
                }
                for ty in TYPES {
                    prop_assert_eq!(published(&cell, ty), plain(&model, ty), "type {}", ty);
                }
                for (table, answers) in &held {
                    for (ty, answer) in TYPES.iter().zip(answers) {
                        let got: Vec<_> = table.router.matches(ty).into_iter()
                            .map(|r| (r.id().get(), *r.target())).collect();
                        prop_assert_eq!(&got, answer);
                    }
                }
            }
        }
    }

    /// The model router hands out ids of its own owner; map the cell's id to
    /// the model's by sequence number.
    fn id_in(model: &Router<u32>, id: RouteId) -> RouteId {
        model
            .iter()
            .map(|r| r.id())
            .find(|m| m.get() == id.get())
            .expect("the model holds the route")
    }

    #[test]
    fn a_large_table_changes_without_copying_when_nobody_holds_it() {
        let cell = RouteCell::new(Arc::new(RouteTable::new(Router::<u32>::new(), true)));
        for i in 0..SPARE_FROM as u32 + 10 {
            cell.insert(Pattern::parse("a.*").unwrap(), Priority::DEFAULT, i);
        }
        // Two changes later the spare is the table published two changes ago:
        // the same allocation, reused rather than copied.
        let before = Arc::as_ptr(&cell.current.load_full());
        let id = cell.insert(Pattern::parse("x").unwrap(), Priority::DEFAULT, 0);
        cell.remove(id).unwrap();
        assert_eq!(Arc::as_ptr(&cell.current.load_full()), before);
        assert_eq!(published(&cell, "a.q").len(), SPARE_FROM + 10);
        assert!(published(&cell, "x").is_empty());
    }
}
