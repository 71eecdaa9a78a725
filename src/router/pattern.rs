//! Route patterns: parsing, validation and the reference matcher.
//!
//! See the [module docs](super) for the grammar and the matching semantics.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::error::PatternError;
use super::order::Specificity;

/// One parsed segment, stored compactly; exact text is a byte range into the
/// pattern text (patterns are at most 1024 bytes, so `u16` suffices).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seg {
    Exact { start: u16, end: u16 },
    Star,
    Globstar,
}

/// A borrowed view of one pattern segment, used by the trie and the ordering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Segment<'a> {
    /// Matches exactly this text.
    Exact(&'a str),
    /// `*`: exactly one segment.
    Star,
    /// `**`: zero or more segments.
    Globstar,
}

/// A validated route pattern such as `order.*.created` or `audit.**`.
///
/// Parsing once up front means routing never has to re-validate, and the
/// router can precompute everything it needs (trie path, ordering key).
/// Equality and hashing compare the original text, which is canonical because
/// the grammar has exactly one spelling per pattern.
#[derive(Clone)]
pub struct Pattern {
    text: Box<str>,
    segs: Box<[Seg]>,
    spec: Specificity,
}

impl Pattern {
    /// Maximum number of segments in a pattern; keeps lookups allocation-free
    /// (the matcher's state fits in a `u128`) and their cost bounded.
    pub const MAX_SEGMENTS: usize = 64;

    /// Maximum length of a pattern in bytes; bounds memory per route.
    pub const MAX_LEN: usize = 1024;

    /// Parses and validates `text`, so that routes can only ever be built
    /// from well-formed patterns.
    ///
    /// # Errors
    /// A [`PatternError`] naming the first broken rule and where it is.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let owned = || text.to_owned();
        if text.len() > Self::MAX_LEN {
            return Err(PatternError::TooLong {
                pattern: owned(),
                len: text.len(),
                max: Self::MAX_LEN,
            });
        }
        if text.is_empty() {
            return Err(PatternError::Empty { pattern: owned() });
        }
        let count = text.bytes().filter(|&b| b == b'.').count() + 1;
        if count > Self::MAX_SEGMENTS {
            return Err(PatternError::TooManySegments {
                pattern: owned(),
                count,
                max: Self::MAX_SEGMENTS,
            });
        }
        let mut segs = Vec::with_capacity(count);
        let mut offset = 0usize;
        for (index, seg) in text.split('.').enumerate() {
            let segment = index + 1;
            if seg.is_empty() {
                return Err(PatternError::EmptySegment {
                    pattern: owned(),
                    segment,
                    offset,
                });
            }
            if let Some((at, ch)) = seg
                .char_indices()
                .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*')))
            {
                return Err(PatternError::InvalidChar {
                    pattern: owned(),
                    ch,
                    segment,
                    offset: offset + at,
                });
            }
            let parsed = match seg {
                "*" => Seg::Star,
                "**" => {
                    if segs.last() == Some(&Seg::Globstar) {
                        return Err(PatternError::AdjacentGlobstars {
                            pattern: owned(),
                            segment,
                            offset,
                        });
                    }
                    Seg::Globstar
                }
                s if s.contains('*') => {
                    return Err(PatternError::InvalidWildcard {
                        pattern: owned(),
                        segment,
                        offset,
                    });
                }
                // Both bounds are <= MAX_LEN (1024), checked above.
                s => Seg::Exact {
                    start: offset as u16,
                    end: (offset + s.len()) as u16,
                },
            };
            segs.push(parsed);
            offset += seg.len() + 1;
        }
        let mut pattern = Self {
            text: text.into(),
            segs: segs.into_boxed_slice(),
            spec: Specificity::EMPTY,
        };
        pattern.spec = Specificity::of(pattern.segments());
        Ok(pattern)
    }

    /// The original text, for logs, config round-trips and error messages.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Reference matcher: does this pattern match the signal type `ty`?
    ///
    /// It exists as a simple, independent oracle for the router's trie (and
    /// for cold paths); routing many patterns should go through
    /// [`Router::lookup`](super::Router::lookup). `ty` is split on `.` and its
    /// segments are taken literally, without validation (see the module docs).
    ///
    /// Runs a bit-parallel NFA simulation over pattern positions: one `u128`
    /// of states (a pattern has at most 64 segments), one pass over the type.
    /// Time is `O(type segments × pattern segments)`, never exponential, and it
    /// does not allocate.
    pub fn matches(&self, ty: &str) -> bool {
        let m = self.segs.len();
        let accept = 1u128 << m;
        let mut states = self.closure(1);
        for seg in ty.split('.') {
            let mut next = 0u128;
            let mut live = states & !accept;
            while live != 0 {
                let k = live.trailing_zeros() as usize;
                live &= live - 1;
                match self.segs[k] {
                    Seg::Globstar => next |= 1 << k,
                    Seg::Star => next |= 1 << (k + 1),
                    Seg::Exact { start, end } => {
                        if &self.text[usize::from(start)..usize::from(end)] == seg {
                            next |= 1 << (k + 1);
                        }
                    }
                }
            }
            states = self.closure(next);
            if states == 0 {
                return false;
            }
        }
        states & accept != 0
    }

    /// Adds the states reachable without consuming a segment: a `**` at
    /// position `k` may match nothing, so state `k` also enables `k + 1`.
    /// One ascending pass suffices because these moves only go forward.
    fn closure(&self, mut states: u128) -> u128 {
        for (k, seg) in self.segs.iter().enumerate() {
            if *seg == Seg::Globstar && states & (1 << k) != 0 {
                states |= 1 << (k + 1);
            }
        }
        states
    }

    /// The segments, borrowed, in order.
    pub(crate) fn segments(&self) -> impl ExactSizeIterator<Item = Segment<'_>> + '_ {
        self.segs.iter().map(|s| match *s {
            Seg::Exact { start, end } => {
                Segment::Exact(&self.text[usize::from(start)..usize::from(end)])
            }
            Seg::Star => Segment::Star,
            Seg::Globstar => Segment::Globstar,
        })
    }

    /// The precomputed specificity key used by the order rule.
    pub(crate) fn specificity(&self) -> Specificity {
        self.spec
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Pattern {}

impl Hash for Pattern {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&&*self.text).finish()
    }
}

impl FromStr for Pattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which rule a parse should break (`None`: accepted).
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Rule {
        Empty,
        TooLong,
        TooMany,
        EmptySeg(usize, usize),
        Char(char, usize, usize),
        Wildcard(usize, usize),
        Adjacent(usize, usize),
    }

    fn rule_of(e: &PatternError) -> Rule {
        match *e {
            PatternError::Empty { .. } => Rule::Empty,
            PatternError::TooLong { .. } => Rule::TooLong,
            PatternError::TooManySegments { .. } => Rule::TooMany,
            PatternError::EmptySegment {
                segment, offset, ..
            } => Rule::EmptySeg(segment, offset),
            PatternError::InvalidChar {
                ch,
                segment,
                offset,
                ..
            } => Rule::Char(ch, segment, offset),
            PatternError::InvalidWildcard {
                segment, offset, ..
            } => Rule::Wildcard(segment, offset),
            PatternError::AdjacentGlobstars {
                segment, offset, ..
            } => Rule::Adjacent(segment, offset),
        }
    }

    fn segments_n(n: usize) -> String {
        vec!["a"; n].join(".")
    }

    #[test]
    fn parse_table() {
        let long = "a".repeat(1025);
        let max_len = "a".repeat(1024);
        let s64 = segments_n(64);
        let s65 = segments_n(65);
        let rows: Vec<(&str, Option<Rule>)> = vec![
            // Rejected.
            ("", Some(Rule::Empty)),
            (".", Some(Rule::EmptySeg(1, 0))),
            ("a.", Some(Rule::EmptySeg(2, 2))),
            (".a", Some(Rule::EmptySeg(1, 0))),
            ("a..b", Some(Rule::EmptySeg(2, 2))),
            ("a.b*", Some(Rule::Wildcard(2, 2))),
            ("*b", Some(Rule::Wildcard(1, 0))),
            ("a*", Some(Rule::Wildcard(1, 0))),
            ("***", Some(Rule::Wildcard(1, 0))),
            ("a.*x*.b", Some(Rule::Wildcard(2, 2))),
            ("**.**", Some(Rule::Adjacent(2, 3))),
            ("a.**.**.b", Some(Rule::Adjacent(3, 5))),
            ("a b", Some(Rule::Char(' ', 1, 1))),
            ("ä", Some(Rule::Char('ä', 1, 0))),
            ("x.aä", Some(Rule::Char('ä', 2, 3))),
            ("a/b", Some(Rule::Char('/', 1, 1))),
            ("a.b.c?", Some(Rule::Char('?', 3, 5))),
            (&s65, Some(Rule::TooMany)),
            (&long, Some(Rule::TooLong)),
            // Accepted.
            ("a", None),
            ("*", None),
            ("**", None),
            ("a.*.c", None),
            ("**.x", None),
            ("a.**.z", None),
            ("A-b_9.c", None),
            ("**.*.**", None),
            ("*.*", None),
            ("order.item.created", None),
            (&s64, None),
            (&max_len, None),
        ];
        assert!(rows.len() >= 20);
        for (text, expected) in rows {
            let got = Pattern::parse(text);
            match (expected, &got) {
                (None, Ok(p)) => {
                    assert_eq!(p.as_str(), text);
                    assert_eq!(p.to_string(), text);
                    assert_eq!(text.parse::<Pattern>().as_ref(), Ok(p));
                }
                (Some(rule), Err(e)) => {
                    assert_eq!(rule_of(e), rule, "pattern {text:?}: {e}");
                    assert_eq!(e.pattern(), text);
                }
                _ => panic!("pattern {text:?}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn error_messages_are_actionable() {
        let e = Pattern::parse("a..b").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid route pattern \"a..b\": segment 2 is empty at byte 2 \
             (segments are [A-Za-z0-9_-]+, `*` or `**`, separated by '.')"
        );
        let e = Pattern::parse("a.b*").unwrap_err();
        assert!(e.to_string().contains("segment 2"), "{e}");
        assert!(e.to_string().contains("`*`"), "{e}");
        let e = Pattern::parse("a b").unwrap_err();
        assert!(e.to_string().contains("' '"), "{e}");
        let e = Pattern::parse("**.**").unwrap_err();
        assert!(e.to_string().contains("second `**`"), "{e}");
        let e = Pattern::parse(&segments_n(70)).unwrap_err();
        assert!(e.to_string().contains("the maximum is 64"), "{e}");
        // Huge inputs are quoted truncated, the field keeps the whole text.
        let huge = "x".repeat(5000);
        let e = Pattern::parse(&huge).unwrap_err();
        assert!(e.to_string().len() < 300, "{e}");
        assert_eq!(e.pattern().len(), 5000);
        // Truncation respects char boundaries.
        let e = Pattern::parse(&"ä".repeat(600)).unwrap_err();
        assert!(e.to_string().contains("..."));
    }

    #[test]
    fn equality_and_hash_follow_text() {
        use std::collections::HashSet;
        let a = Pattern::parse("a.*").unwrap();
        let b: Pattern = "a.*".parse().unwrap();
        let c = Pattern::parse("a.**").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let set: HashSet<Pattern> = [a.clone(), b, c].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert_eq!(format!("{a:?}"), "Pattern(\"a.*\")");
    }

    #[test]
    fn segments_round_trip() {
        let p = Pattern::parse("ab.*.**.c-d").unwrap();
        let segs: Vec<_> = p.segments().collect();
        assert_eq!(
            segs,
            [
                Segment::Exact("ab"),
                Segment::Star,
                Segment::Globstar,
                Segment::Exact("c-d")
            ]
        );
    }

    #[test]
    fn matcher_is_polynomial_on_pathological_input() {
        // `**.a.**.a...` against 64 `a`s would be exponential for a naive
        // backtracking matcher; the NFA simulation is linear in the type.
        let text = std::iter::repeat_n("**.a", 32)
            .collect::<Vec<_>>()
            .join(".");
        let p = Pattern::parse(&text).unwrap();
        let ty = segments_n(64);
        assert!(p.matches(&ty));
        let ty_b = format!("{}.b", segments_n(63));
        assert!(!p.matches(&ty_b));
        // Very long types are fine too.
        let long = segments_n(10_000);
        assert!(p.matches(&long));
    }
}
