//! How signal types and route patterns become NATS subjects.
//!
//! A signal of type `order.paid` travels on `<prefix>.signal.order.paid._`.
//! The trailing `_` token is what lets a pattern map exactly: NATS `>`
//! matches one or more tokens where a pattern's `**` matches zero or more,
//! so `order.**` becomes `<prefix>.signal.order.>`, which matches
//! `order._` (the type `order` itself) as well as `order.x._`; `*` stays
//! `*`. Signal types are dot-separated `[A-Za-z0-9_-]+` segments, so every
//! type is a valid subject. A `**` before the last segment (`a.**.z`) has
//! no NATS spelling: its filter widens to the text before it followed by
//! `>`, and the import checks each signal against the pattern itself.

use crate::router::Pattern;

/// The token every signal subject ends with.
const END: &str = "_";

/// The subject a signal of type `ty` is published on.
pub(super) fn of_type(prefix: &str, ty: &str) -> String {
    let mut subject = String::with_capacity(prefix.len() + ty.len() + 10);
    subject.push_str(prefix);
    subject.push_str(".signal.");
    subject.push_str(ty);
    subject.push('.');
    subject.push_str(END);
    subject
}

/// Every signal subject under `prefix` (what the stream captures).
pub(super) fn all_signals(prefix: &str) -> String {
    format!("{prefix}.signal.>")
}

/// The dead-letter subject of the import `consumer`.
pub(super) fn dead_letters(prefix: &str, consumer: &str) -> String {
    format!("{prefix}.dead.{consumer}")
}

/// Every dead-letter subject under `prefix`.
pub(super) fn all_dead_letters(prefix: &str) -> String {
    format!("{prefix}.dead.>")
}

/// The request subject of agents served as `name`.
pub(super) fn call(prefix: &str, name: &str) -> String {
    format!("{prefix}.call.{name}")
}

/// A consumer's filter subject for `pattern`, and whether it is exact
/// (otherwise it is wider, and each signal must be matched again).
pub(super) fn filter(prefix: &str, pattern: &Pattern) -> (String, bool) {
    let mut subject = format!("{prefix}.signal");
    let segments: Vec<&str> = pattern.as_str().split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        if *segment == "**" {
            subject.push_str(".>");
            return (subject, i + 1 == segments.len());
        }
        subject.push('.');
        subject.push_str(segment);
    }
    subject.push('.');
    subject.push_str(END);
    (subject, true)
}

/// Whether `token` may be one token of a subject (a prefix part or a
/// served name): non-empty, no whitespace, no wildcard, no dot.
pub(super) fn is_token(token: &str) -> bool {
    !token.is_empty()
        && !token
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>'))
}

/// Whether `prefix` is a valid subject prefix: one or more tokens.
pub(super) fn is_prefix(prefix: &str) -> bool {
    prefix.split('.').all(is_token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter_of(pattern: &str) -> (String, bool) {
        filter("p", &Pattern::parse(pattern).unwrap())
    }

    #[test]
    fn types_map_to_subjects_with_an_end_token() {
        assert_eq!(
            of_type("agentry", "order.paid"),
            "agentry.signal.order.paid._"
        );
    }

    #[test]
    fn patterns_map_exactly_when_globstar_is_last() {
        assert_eq!(
            filter_of("order.paid"),
            ("p.signal.order.paid._".into(), true)
        );
        assert_eq!(filter_of("order.*"), ("p.signal.order.*._".into(), true));
        assert_eq!(filter_of("order.**"), ("p.signal.order.>".into(), true));
        assert_eq!(filter_of("**"), ("p.signal.>".into(), true));
        assert_eq!(filter_of("a.**.z"), ("p.signal.a.>".into(), false));
    }

    #[test]
    fn prefixes_and_names_are_checked() {
        assert!(is_prefix("agentry"));
        assert!(is_prefix("acme.orders"));
        assert!(!is_prefix(""));
        assert!(!is_prefix("a..b"));
        assert!(!is_prefix("a.*"));
        assert!(is_token("billing"));
        assert!(!is_token("bil ling"));
        assert!(!is_token("a.b"));
    }
}
