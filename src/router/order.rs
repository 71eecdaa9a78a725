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

    /// Joins segments into a valid pattern: a `**` right after a `**` is
    /// dropped (the grammar forbids adjacent globstars), so every generated
    /// case is used and none is filtered out.
    fn pattern(segments: &[&str]) -> String {
        let mut kept: Vec<&str> = Vec::with_capacity(segments.len());
        for &seg in segments {
            if !(seg == "**" && kept.last() == Some(&"**")) {
                kept.push(seg);
            }
        }
        kept.join(".")
    }

    fn segments(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<&'static str>> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "*", "**"]), len)
    }

    /// Two patterns of 1 to 6 segments: independent, or (most cases) sharing
    /// a prefix, so that comparisons often get past the first positions and
    /// one pattern ends where the other goes on (the "ended" rank).
    fn pattern_pair() -> impl Strategy<Value = (String, String)> {
        prop_oneof![
            1 => (segments(1..=6), segments(1..=6)),
            3 => (segments(1..=3), segments(0..=3), segments(0..=3)).prop_map(|(p, x, y)| {
                ([&p[..], &x[..]].concat(), [&p[..], &y[..]].concat())
            }),
        ]
        .prop_map(|(a, b)| (pattern(&a), pattern(&b)))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn key_order_is_lexicographic_kind_order((a, b) in pattern_pair()) {
            let pa = Pattern::parse(&a).map_err(|e| TestCaseError::fail(format!("{a}: {e}")))?;
            let pb = Pattern::parse(&b).map_err(|e| TestCaseError::fail(format!("{b}: {e}")))?;
            let key_order = pa.specificity().cmp(&pb.specificity());
            prop_assert_eq!(key_order, naive(&a, &b), "{} vs {}", a, b);
        }
    }

    /// The generator reaches every rank at the first difference, the
    /// "pattern ended" rank included (so the property above checks it).
    #[test]
    fn pair_generator_reaches_every_rank() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let mut seen = [[false; 4]; 4];
        let strategy = pattern_pair();
        for _ in 0..2000 {
            let (a, b) = strategy.new_tree(&mut runner).unwrap().current();
            let kind = |p: &str, i: usize| p.split('.').nth(i).map_or(2, rank);
            if let Some(i) = (0..6).find(|&i| kind(&a, i) != kind(&b, i)) {
                seen[usize::from(kind(&a, i))][usize::from(kind(&b, i))] = true;
            }
        }
        for (x, row) in seen.iter().enumerate() {
            for (y, &hit) in row.iter().enumerate() {
                // Two patterns cannot both have ended.
                assert!(hit || x == y, "ranks {x} vs {y} never compared");
            }
        }
    }
}
