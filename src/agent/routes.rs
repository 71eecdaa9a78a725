//! An agent's route table: a trie of patterns to actions plus, with
//! `fast-path`, a memo of exact types. Tables are immutable once published;
//! changing a route builds a new table (with an empty memo) and swaps it in,
//! so senders resolve routes without locking.

use crate::action::guarded;
use crate::instruction::Resolved;
use crate::router::memo::{MemoOutcome, RouteMemo};
use crate::router::{Pattern, Priority, RouteError, RouteId, RouteSlot, Router};
use crate::signal::{Signal, Text};
use std::fmt;
use std::sync::Arc;

/// A route predicate: the route fires only for signals it accepts.
pub type Predicate = Arc<dyn Fn(&Signal) -> bool + Send + Sync>;

/// A route to declare on an [`AgentSpec`](crate::AgentSpec) or add to a running
/// agent: pattern, the action it runs, priority and an optional predicate.
///
/// ```
/// use agentry::RouteSpec;
/// let r = RouteSpec::new("order.*.created", "record")
///     .priority(10)
///     .when(|s| s.data().len() < 1024);
/// assert_eq!(r.pattern(), "order.*.created");
/// ```
#[derive(Clone)]
pub struct RouteSpec {
    pattern: Text,
    action: Text,
    priority: i32,
    predicate: Option<Predicate>,
}

impl RouteSpec {
    /// Routes signals whose type matches `pattern` to the action named `action`.
    pub fn new(pattern: impl Into<Text>, action: impl Into<Text>) -> Self {
        RouteSpec {
            pattern: pattern.into(),
            action: action.into(),
            priority: 0,
            predicate: None,
        }
    }

    /// Priority in -100..=100 (default 0); among equally specific routes the
    /// higher runs first. Checked when the route is installed.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Fires the route only for signals `predicate` accepts. Predicates run on
    /// the sender's thread when the signal is routed; keep them cheap.
    pub fn when(mut self, predicate: impl Fn(&Signal) -> bool + Send + Sync + 'static) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// The pattern text.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The action name.
    pub fn action(&self) -> &str {
        &self.action
    }

    pub(crate) fn parts(&self) -> Result<(Pattern, Priority), RouteError> {
        let pattern = Pattern::parse(&self.pattern)?;
        let priority = Priority::new(self.priority)?;
        Ok((pattern, priority))
    }

    pub(crate) fn predicate(&self) -> Option<Predicate> {
        self.predicate.clone()
    }

    pub(crate) fn action_text(&self) -> &Text {
        &self.action
    }
}

impl fmt::Debug for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteSpec")
            .field("pattern", &self.pattern)
            .field("action", &self.action)
            .field("priority", &self.priority)
            .field("predicate", &self.predicate.is_some())
            .finish()
    }
}

/// What an action route points at.
#[derive(Clone)]
pub(crate) struct ActionTarget {
    pub action: u32,
    pub predicate: Option<Predicate>,
}

/// A trie plus its memo; `T` is what a route points at.
pub(crate) struct RouteTable<T> {
    pub router: Router<T>,
    pub memo: RouteMemo,
}

impl<T: Clone> RouteTable<T> {
    pub fn new(router: Router<T>, fast_path: bool) -> Self {
        RouteTable {
            router,
            memo: RouteMemo::new(fast_path),
        }
    }

    /// A copy of this table's routes with an empty memo.
    pub fn copy(&self) -> Self {
        RouteTable::new(self.router.clone(), matches!(self.memo, RouteMemo::On(_)))
    }

    /// Empties the memo: its slots name routes of the table before a change.
    pub fn reset_memo(&mut self) {
        self.memo = RouteMemo::new(matches!(self.memo, RouteMemo::On(_)));
    }

    /// Appends the matching routes for `ty` to `slots` (trie or memo).
    #[inline]
    pub fn candidates(&self, ty: &Text, slots: &mut Vec<RouteSlot>) -> MemoOutcome {
        self.memo.candidates(&self.router, ty, slots)
    }
}

/// A predicate that panicked during routing.
pub(crate) struct PredicatePanic {
    pub route: RouteId,
    pub message: String,
}

impl RouteTable<ActionTarget> {
    /// Resolves `signal` to actions in route order, evaluating predicates;
    /// `out` receives the resolved actions. A memoized type is resolved
    /// straight from the memo; otherwise the trie fills a scratch buffer.
    pub fn resolve(
        &self,
        signal: &Signal,
        out: &mut Vec<Resolved>,
    ) -> Result<MemoOutcome, PredicatePanic> {
        if let Some(resolved) = self.memo.with_hit(signal.type_text(), |slots| {
            self.resolve_slots(signal, slots, out)
        }) {
            return resolved.map(|()| MemoOutcome::Hit);
        }
        let mut slots = crate::router::scratch::take();
        slots.clear();
        let outcome = self.candidates(signal.type_text(), &mut slots);
        let resolved = self.resolve_slots(signal, &slots, out);
        slots.clear();
        crate::router::scratch::put(slots);
        resolved.map(|()| outcome)
    }

    fn resolve_slots(
        &self,
        signal: &Signal,
        slots: &[RouteSlot],
        out: &mut Vec<Resolved>,
    ) -> Result<(), PredicatePanic> {
        // Exact, not amortized, growth: a queued signal keeps this buffer.
        out.reserve_exact(slots.len());
        for &slot in slots {
            let Some(route) = self.router.slot(slot) else {
                continue;
            };
            let target = route.target();
            if let Some(predicate) = &target.predicate {
                match guarded(|| Ok(predicate(signal))) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        return Err(PredicatePanic {
                            route: route.id(),
                            message: e.text().to_owned(),
                        });
                    }
                }
            }
            out.push(Resolved {
                action: target.action,
                route: route.id(),
            });
        }
        Ok(())
    }
}

/// Route resolution as the runtime performs it for every send (trie, or memo
/// with `fast-path`, then predicates), exposed for benchmarks only.
#[doc(hidden)]
pub struct RouteResolver {
    table: RouteTable<ActionTarget>,
    out: Vec<Resolved>,
}

impl RouteResolver {
    /// A table routing every pattern to action 0.
    pub fn new<'a>(
        patterns: impl IntoIterator<Item = &'a str>,
        fast_path: bool,
    ) -> Result<Self, RouteError> {
        let mut router = Router::new();
        for p in patterns {
            router.insert(
                Pattern::parse(p)?,
                Priority::DEFAULT,
                ActionTarget {
                    action: 0,
                    predicate: None,
                },
            );
        }
        Ok(RouteResolver {
            table: RouteTable::new(router, fast_path),
            out: Vec::new(),
        })
    }

    /// Resolves `signal`; returns how many routes matched.
    pub fn resolve(&mut self, signal: &Signal) -> usize {
        self.out.clear();
        match self.table.resolve(signal, &mut self.out) {
            Ok(_) => self.out.len(),
            Err(_) => 0,
        }
    }
}
