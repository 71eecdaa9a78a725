//! The order rule for several matching routes.
//!
//! 1. More specific first: patterns are compared segment by segment from the
//!    left by kind, where "less" sorts first: exact < `*` < end of pattern <
//!    `**`. So a pattern that ends where the other continues with `**` sorts
//!    first (`a.b` before `a.b.**`), and one that continues with an exact or
//!    `*` segment where the other has ended sorts first too (`**.x` before
//!    `**`): catch-alls come last.
//! 2. Then higher priority first.
//! 3. Then registration order (smaller [`RouteId`](super::RouteId) first).
//!
//! Rule 1 is precomputed per pattern as a [`Specificity`] key so that sorting
//! the matches of a lookup compares three integers per pair.

use std::cmp::Ordering;

use super::Route;
use super::pattern::Segment;

/// Specificity key of a pattern: one 2-bit code per position (exact = 0,
/// `*` = 1, "the pattern has ended" = 2, `**` = 3), the first segment in the
/// most significant bits. A pattern has at most 64 segments, so the key fits a
/// `u128` exactly, and comparing the integers is the lexicographic comparison
/// of the kind sequences, each padded with "ended" to 64 positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Specificity(u128);

impl Specificity {
    /// Placeholder for a pattern under construction.
    pub(crate) const EMPTY: Self = Self(0);

    /// Computes the key of a pattern's segments (at most 64 of them).
    pub(crate) fn of<'a>(segments: impl Iterator<Item = Segment<'a>>) -> Self {
        const ENDED: u128 = 2;
        // Every position starts as "ended" (binary 10 in each 2-bit field).
        let mut key = u128::MAX / 3 * 2;
        for (i, seg) in segments.enumerate().take(64) {
            let code: u128 = match seg {
                Segment::Exact(_) => 0,
                Segment::Star => 1,
                Segment::Globstar => 3,
            };
            let shift = 126 - 2 * i;
            key = (key & !(3 << shift)) | (code << shift);
        }
        debug_assert_eq!(ENDED, 2);
        Self(key)
    }
}

/// The full order rule: a total order on the routes of one router, because
/// route ids are unique (so an unstable sort is deterministic).
pub(crate) fn compare<T>(a: &Route<T>, b: &Route<T>) -> Ordering {
    a.pattern()
        .specificity()
        .cmp(&b.pattern().specificity())
        .then_with(|| b.priority().cmp(&a.priority()))
        .then_with(|| a.id().cmp(&b.id()))
}

#[cfg(test)]
mod tests {
    use super::super::Pattern;
    use super::*;
    use proptest::prelude::*;

    fn key(p: &str) -> Specificity {
        Pattern::parse(p).unwrap().specificity()
    }

    #[test]
    fn specificity_examples() {
        let ordered = [
            ("a.b", "a.b.**"),
            ("a.*", "a.*.**"),
            ("a.b", "a.*"),
            ("a.*", "a.**"),
            ("a.b.c", "a.*.c"),
            ("a.*.c", "a.**.c"),
            ("a.b.**", "a.*"),
            ("a.b.**", "**"),
            ("*", "**"),
            ("a.**.b", "a.**"),
            ("**.x", "**"),
        ];
        for (first, second) in ordered {
            assert!(
                key(first) < key(second),
                "{first} should sort before {second}"
            );
        }
        // Same kinds, different texts: equal specificity.
        assert_eq!(key("a.b"), key("x.y"));
        assert_eq!(key("a.*.**"), key("z.*.**"));
    }

    fn rank(seg: &str) -> u8 {
        match seg {
            "*" => 1,
            "**" => 3,
            _ => 0,
        }
    }

    /// Straightforward lexicographic comparison on the kind sequence, where
    /// a pattern that has ended ranks between `*` and `**`.
    fn naive(a: &str, b: &str) -> Ordering {
        let kind = |p: &str, i: usize| p.split('.').nth(i).map_or(2, rank);
        (0..64)
            .map(|i| kind(a, i).cmp(&kind(b, i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }

    proptest! {
        #[test]
        fn key_order_is_lexicographic_kind_order(
            a in prop::collection::vec(prop::sample::select(vec!["a", "b", "*", "**"]), 1..=64),
            b in prop::collection::vec(prop::sample::select(vec!["a", "b", "*", "**"]), 1..=64),
        ) {
            let (a, b) = (a.join("."), b.join("."));
            if let (Ok(pa), Ok(pb)) = (Pattern::parse(&a), Pattern::parse(&b)) {
                prop_assert_eq!(pa.specificity().cmp(&pb.specificity()), naive(&a, &b));
            }
        }
    }
}
