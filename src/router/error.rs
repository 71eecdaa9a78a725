//! Typed errors of the router: a bad pattern, a bad priority, a stale route id.
//!
//! Errors carry the offending input and the position (1-based segment index
//! and 0-based byte offset) so a user can fix a pattern without guessing.

use std::error::Error;
use std::fmt;

use super::RouteId;

/// The grammar reminder appended to every pattern error, so each message says
/// what *is* allowed and not only what went wrong.
const GRAMMAR: &str = "segments are [A-Za-z0-9_-]+, `*` or `**`, separated by '.'";

/// Longest prefix of a rejected pattern quoted in a message, so a huge input
/// does not turn into a huge log line (the full text stays in the field).
const QUOTE_MAX: usize = 64;

/// Why a route pattern was rejected by [`Pattern::parse`](super::Pattern::parse).
///
/// Each variant names the broken rule and where it is broken, so the caller can
/// show an actionable message (via `Display`) or react to the rule itself.
/// `segment` fields are 1-based (the first segment is 1); `offset` fields are
/// 0-based byte offsets into `pattern`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatternError {
    /// The pattern is the empty string; a route must name at least one segment
    /// (use `**` to match every type).
    Empty {
        /// The rejected pattern (always empty; kept for uniformity).
        pattern: String,
    },
    /// The pattern is longer than [`Pattern::MAX_LEN`](super::Pattern::MAX_LEN)
    /// bytes; the bound keeps matching cost and memory predictable.
    TooLong {
        /// The rejected pattern.
        pattern: String,
        /// Its length in bytes.
        len: usize,
        /// The maximum accepted length in bytes.
        max: usize,
    },
    /// The pattern has more than
    /// [`Pattern::MAX_SEGMENTS`](super::Pattern::MAX_SEGMENTS) segments; the
    /// bound keeps lookups allocation-free and their cost bounded.
    TooManySegments {
        /// The rejected pattern.
        pattern: String,
        /// How many segments it has.
        count: usize,
        /// The maximum accepted number of segments.
        max: usize,
    },
    /// A segment is empty: a leading, trailing or doubled `.`.
    EmptySegment {
        /// The rejected pattern.
        pattern: String,
        /// 1-based index of the empty segment.
        segment: usize,
        /// Byte offset where the empty segment starts.
        offset: usize,
    },
    /// A character outside `[A-Za-z0-9_-]`, `*` and `.`.
    InvalidChar {
        /// The rejected pattern.
        pattern: String,
        /// The offending character.
        ch: char,
        /// 1-based index of the segment holding it.
        segment: usize,
        /// Byte offset of the character.
        offset: usize,
    },
    /// A segment mixes `*` with text or has three or more stars (`a*`, `*b`,
    /// `***`): wildcards must stand alone as a whole segment.
    InvalidWildcard {
        /// The rejected pattern.
        pattern: String,
        /// 1-based index of the segment.
        segment: usize,
        /// Byte offset where the segment starts.
        offset: usize,
    },
    /// Two `**` segments in a row (`**.**`): redundant, and rejected so every
    /// pattern has one canonical spelling.
    AdjacentGlobstars {
        /// The rejected pattern.
        pattern: String,
        /// 1-based index of the second `**`.
        segment: usize,
        /// Byte offset where the second `**` starts.
        offset: usize,
    },
}

impl PatternError {
    /// The rejected pattern text, whatever the rule broken.
    pub fn pattern(&self) -> &str {
        match self {
            Self::Empty { pattern }
            | Self::TooLong { pattern, .. }
            | Self::TooManySegments { pattern, .. }
            | Self::EmptySegment { pattern, .. }
            | Self::InvalidChar { pattern, .. }
            | Self::InvalidWildcard { pattern, .. }
            | Self::AdjacentGlobstars { pattern, .. } => pattern,
        }
    }
}

/// Writes `text` quoted, cut at a char boundary after [`QUOTE_MAX`] bytes.
fn write_quoted(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    if text.len() <= QUOTE_MAX {
        return write!(f, "{text:?}");
    }
    let mut end = QUOTE_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    write!(f, "{:?}...", &text[..end])
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid route pattern ")?;
        write_quoted(f, self.pattern())?;
        f.write_str(": ")?;
        match self {
            Self::Empty { .. } => write!(f, "the pattern is empty (use `**` to match every type)"),
            Self::TooLong { len, max, .. } => {
                write!(f, "it is {len} bytes long, the maximum is {max} bytes")
            }
            Self::TooManySegments { count, max, .. } => {
                write!(f, "it has {count} segments, the maximum is {max}")
            }
            Self::EmptySegment {
                segment, offset, ..
            } => write!(f, "segment {segment} is empty at byte {offset}"),
            Self::InvalidChar {
                ch,
                segment,
                offset,
                ..
            } => write!(
                f,
                "character {ch:?} at byte {offset} (segment {segment}) is not allowed"
            ),
            Self::InvalidWildcard {
                segment, offset, ..
            } => write!(
                f,
                "segment {segment} (at byte {offset}) mixes `*` with other characters; \
                 a wildcard must be the whole segment"
            ),
            Self::AdjacentGlobstars {
                segment, offset, ..
            } => write!(
                f,
                "segment {segment} (at byte {offset}) is a second `**` in a row; \
                 one `**` already matches any number of segments"
            ),
        }?;
        write!(f, " ({GRAMMAR})")
    }
}

impl Error for PatternError {}

/// Why a router operation failed.
///
/// Marked `#[non_exhaustive]` so the crate can add failure reasons without a
/// breaking change; match with a wildcard arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// The route's pattern did not parse; the inner error says where and why.
    Pattern(PatternError),
    /// A priority outside [`Priority::MIN`](super::Priority::MIN)..=
    /// [`Priority::MAX`](super::Priority::MAX) was given.
    PriorityOutOfRange {
        /// The rejected value.
        given: i32,
    },
    /// No live route has this id: it was removed already, or it came from a
    /// different router.
    UnknownRoute {
        /// The id that was not found.
        id: RouteId,
    },
    /// The id was handed out by another router: another agent's routes, or
    /// another runtime's bus. Nothing was removed.
    ForeignRoute {
        /// The foreign id.
        id: RouteId,
    },
    /// An agent route names an action the agent's spec does not register.
    UnknownAction {
        /// The route's pattern.
        pattern: String,
        /// The action name that was not found.
        action: String,
    },
}

impl From<PatternError> for RouteError {
    fn from(e: PatternError) -> Self {
        Self::Pattern(e)
    }
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Transparent: the pattern error already says everything, and
            // `source()` stays `None` so chains do not print it twice.
            Self::Pattern(e) => fmt::Display::fmt(e, f),
            Self::PriorityOutOfRange { given } => write!(
                f,
                "route priority {given} is out of range: use {}..={} \
                 (higher runs first among equally specific routes; default {})",
                super::Priority::MIN.get(),
                super::Priority::MAX.get(),
                super::Priority::DEFAULT.get(),
            ),
            Self::UnknownRoute { id } => write!(
                f,
                "no route with id {id} in this router (it was removed already)"
            ),
            Self::ForeignRoute { id } => write!(
                f,
                "route id {id} was handed out by another router (another agent's routes, \
                 or another runtime's bus); nothing was removed"
            ),
            Self::UnknownAction { pattern, action } => write!(
                f,
                "route \"{pattern}\" names the action `{action}`, which the agent's spec does not register; register it with `AgentSpec::action` first"
            ),
        }
    }
}

impl Error for RouteError {}
