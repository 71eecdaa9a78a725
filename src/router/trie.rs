//! The segment trie behind [`Router::lookup`](super::Router::lookup).
//!
//! Each node has a hash map of exact children (keyed by segment text, hashed
//! with `foldhash`), an optional `*` child and an optional `**` child, and the
//! slots of the routes whose pattern ends at that node. Nodes live in one
//! arena `Vec` and refer to each other by `u32` index.
//!
//! # The walk
//!
//! A lookup visits each trie node **at most once**, carrying the *set* of type
//! positions (`0..=n` for a type of `n` segments) at which the node's pattern
//! prefix matches a prefix of the type, as a `u128` bit set. For a node with
//! position set `S`:
//!
//! - if `n ∈ S`, the routes ending at the node match;
//! - exact child `c`: `{i + 1 | i ∈ S, i < n, seg[i] == c}` (positions with the
//!   same segment text are grouped so each child is entered once);
//! - `*` child: `{i + 1 | i ∈ S, i < n}`;
//! - `**` child: `{j | min(S) <= j <= n}` (zero or more segments from any
//!   position of `S`).
//!
//! Because a node has exactly one parent and the parent computes the child's
//! complete position set before entering it, no `(node, position)` pair is
//! ever expanded twice: the exponential blow-up of a naive backtracking walk
//! over patterns like `**.*.**.*` cannot happen. The cost is `O(V × n)` bit
//! operations plus at most `n + 1` hash lookups per visited node, where `V` is
//! the number of nodes whose pattern prefix matches some prefix of the type
//! (for patterns without `**`, at most two per level: the exact and the `*`
//! child). Routes whose patterns diverge from the type are never looked at.
//!
//! Scratch state is the bit set passed by value and the recursion itself,
//! whose depth is at most the longest pattern (64 segments): nothing is
//! allocated.

use foldhash::HashMap;

use super::RouteSlot;
use super::pattern::{Pattern, Segment};

/// Most type segments the trie walk supports: positions `0..=n` must fit the
/// 128 bits of a `u128`.
pub(crate) const MAX_WALK_SEGMENTS: usize = 127;

/// One trie node; see the module docs.
#[derive(Clone, Debug, Default)]
struct Node {
    exact: HashMap<Box<str>, u32>,
    star: Option<u32>,
    globstar: Option<u32>,
    routes: Vec<RouteSlot>,
}

/// The trie; node 0 is the root (the empty pattern prefix).
#[derive(Clone, Debug)]
pub(crate) struct Trie {
    nodes: Vec<Node>,
}

impl Default for Trie {
    fn default() -> Self {
        Self {
            nodes: vec![Node::default()],
        }
    }
}

impl Trie {
    /// Registers `slot` at the node for `pattern`, creating the path.
    pub(crate) fn insert(&mut self, pattern: &Pattern, slot: RouteSlot) {
        let mut at = 0usize;
        for seg in pattern.segments() {
            let next = match seg {
                Segment::Exact(text) => self.nodes[at].exact.get(text).copied(),
                Segment::Star => self.nodes[at].star,
                Segment::Globstar => self.nodes[at].globstar,
            };
            let next = match next {
                Some(n) => n,
                None => {
                    let n = u32::try_from(self.nodes.len())
                        .expect("router trie is limited to u32::MAX nodes");
                    self.nodes.push(Node::default());
                    let node = &mut self.nodes[at];
                    match seg {
                        Segment::Exact(text) => {
                            node.exact.insert(text.into(), n);
                        }
                        Segment::Star => node.star = Some(n),
                        Segment::Globstar => node.globstar = Some(n),
                    }
                    n
                }
            };
            at = next as usize;
        }
        self.nodes[at].routes.push(slot);
    }

    /// Unregisters `slot` from the node for `pattern`; returns whether it was
    /// there. Emptied nodes are left in place (the router compacts the whole
    /// trie once removed routes outnumber live ones).
    pub(crate) fn remove(&mut self, pattern: &Pattern, slot: RouteSlot) -> bool {
        let mut at = 0usize;
        for seg in pattern.segments() {
            let node = &self.nodes[at];
            let next = match seg {
                Segment::Exact(text) => node.exact.get(text).copied(),
                Segment::Star => node.star,
                Segment::Globstar => node.globstar,
            };
            match next {
                Some(n) => at = n as usize,
                None => return false,
            }
        }
        let routes = &mut self.nodes[at].routes;
        match routes.iter().position(|&s| s == slot) {
            Some(i) => {
                routes.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Number of nodes, root included (tests bound lookup work with it).
    #[cfg(test)]
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Appends the slots of every route matching the type whose segments are
    /// `segs` (1 to [`MAX_WALK_SEGMENTS`] of them), each once, unordered.
    /// `steps` counts work units (node visits and segment comparisons).
    pub(crate) fn collect(&self, segs: &[&str], out: &mut Vec<RouteSlot>, steps: &mut u64) {
        debug_assert!((1..=MAX_WALK_SEGMENTS).contains(&segs.len()));
        let walk = Walk {
            nodes: &self.nodes,
            segs,
            // Positions 0..=n, n <= 127.
            all: u128::MAX >> (MAX_WALK_SEGMENTS - segs.len()),
            end: 1u128 << segs.len(),
        };
        walk.visit(0, 1, out, steps);
    }
}

/// Read-only context of one walk, so the recursion passes few arguments.
struct Walk<'t, 's> {
    nodes: &'t [Node],
    segs: &'t [&'s str],
    /// Bit set of every position `0..=n`.
    all: u128,
    /// The bit of position `n` (the whole type consumed).
    end: u128,
}

impl Walk<'_, '_> {
    /// Visits `node`, active at the type positions in `set` (never empty).
    fn visit(&self, node: u32, set: u128, out: &mut Vec<RouteSlot>, steps: &mut u64) {
        *steps += 1;
        let node = &self.nodes[node as usize];
        if set & self.end != 0 {
            out.extend_from_slice(&node.routes);
        }
        // Positions that still have a segment to consume.
        let open = set & !self.end;
        if open != 0 {
            if !node.exact.is_empty() {
                let mut rest = open;
                while rest != 0 {
                    let i = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    let seg = self.segs[i];
                    // Group the later positions holding the same text, so the
                    // child is entered once with its complete position set.
                    let mut group = 1u128 << i;
                    let mut others = rest;
                    while others != 0 {
                        let j = others.trailing_zeros() as usize;
                        others &= others - 1;
                        *steps += 1;
                        if self.segs[j] == seg {
                            group |= 1 << j;
                        }
                    }
                    rest &= !group;
                    if let Some(&child) = node.exact.get(seg) {
                        self.visit(child, group << 1, out, steps);
                    }
                }
            }
            if let Some(child) = node.star {
                self.visit(child, open << 1, out, steps);
            }
        }
        if let Some(child) = node.globstar {
            let from = set.trailing_zeros();
            self.visit(child, self.all & (u128::MAX << from), out, steps);
        }
    }
}
