//! The attribute rules, shared by [`SignalBuilder::build`] and JSON decoding
//! (which goes through `build`), so a signal is valid however it was made.
//!
//! Every check is a scan of borrowed bytes: nothing here allocates on the
//! success path (errors clone a `Text`, a refcount bump at most).
//!
//! A `type` or `source` given as a `&'static str` is scanned once per thread:
//! its bytes can never change, so a small per-thread cache keyed by its
//! address and length remembers that the scan passed (and, for a type, its
//! key hash, which the `Text` then carries to the route memo). Only the length
//! limit, which depends on the builder's [`Limits`](super::Limits), is checked
//! every time.

use super::error::{Attribute, Rule, SignalError};
use super::{SignalBuilder, SignalId, Text, timestamp};
use crate::signal::ExtensionValue;
use std::cell::Cell;

/// Most dot-separated segments a `type` may have.
pub(super) const MAX_TYPE_SEGMENTS: usize = 64;
/// Longest extension name, in characters (CloudEvents 1.0 recommendation,
/// enforced here).
pub(super) const MAX_EXTENSION_NAME_LEN: usize = 20;
/// Names an extension may not take: the CloudEvents context attributes and the
/// JSON data members.
pub(super) const RESERVED_NAMES: [&str; 10] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "data_base64",
];

impl SignalBuilder {
    /// Checks every attribute against its rule and the builder's limits; the
    /// first failure wins, in the order type, source, id, subject, time,
    /// datacontenttype, dataschema, extensions, data.
    pub(super) fn validate(&self) -> Result<(), SignalError> {
        let max = self.limits.max_attribute_len();
        check(Attribute::Type, &self.ty, proven_type_rule(&self.ty, max))?;
        check(
            Attribute::Source,
            &self.source,
            proven_source_rule(&self.source, max),
        )?;
        if let Some(SignalId::Text(id)) = &self.id {
            check(Attribute::Id, id, text_rule(id, max))?;
        }
        if let Some(subject) = &self.subject {
            check(Attribute::Subject, subject, text_rule(subject, max))?;
        }
        if let Some(t) = self.time
            && !timestamp::in_range(t)
        {
            return Err(SignalError::new(
                Attribute::Time,
                Rule::TimeOutOfRange,
                None,
            ));
        }
        if let Some(ct) = &self.datacontenttype {
            check(Attribute::DataContentType, ct, media_type_rule(ct, max))?;
        }
        if let Some(schema) = &self.dataschema {
            check(
                Attribute::DataSchema,
                schema,
                absolute_uri_rule(schema, max),
            )?;
        }
        self.validate_extensions()?;
        if let Some(message) = &self.data_error {
            let rule = Rule::Serialization {
                message: message.clone(),
            };
            return Err(SignalError::new(Attribute::Data, rule, None));
        }
        let size = self.payload_len();
        let limit = self.limits.max_payload();
        if size > limit {
            let rule = Rule::PayloadTooLarge { size, limit };
            return Err(SignalError::new(Attribute::Data, rule, None));
        }
        Ok(())
    }

    fn validate_extensions(&self) -> Result<(), SignalError> {
        let max = self.limits.max_extensions();
        if let Some((name, _)) = self.extensions.get(max) {
            let rule = Rule::TooManyExtensions {
                count: self.extensions.len(),
                max,
            };
            return Err(SignalError::new(
                Attribute::Extension(name.clone()),
                rule,
                None,
            ));
        }
        for (name, value) in &self.extensions {
            if let Some(rule) = extension_name_rule(name) {
                return Err(SignalError::new(
                    Attribute::Extension(name.clone()),
                    rule,
                    None,
                ));
            }
            if let ExtensionValue::String(s) = value
                && let Some(rule) = extension_string_rule(s, self.limits.max_attribute_len())
            {
                let attribute = Attribute::Extension(name.clone());
                return Err(SignalError::new(attribute, rule, Some(s.clone())));
            }
        }
        Ok(())
    }
}

/// Entries per cache (per thread): distinct literal types or sources that a
/// thread builds signals from, beyond which entries evict each other (and
/// those strings are scanned again; correctness never depends on a hit).
const PROVEN_SLOTS: usize = 64;

/// A proven `&'static str`: address, length and a tag (a type's key hash; 1
/// for a source). Address 0 never holds a non-empty string, so the all-zero
/// entry matches nothing that reaches the cache.
type Proven = Cell<(usize, usize, u32)>;

thread_local! {
    static PROVEN_TYPES: [Proven; PROVEN_SLOTS] =
        const { [const { Cell::new((0, 0, 0)) }; PROVEN_SLOTS] };
    static PROVEN_SOURCES: [Proven; PROVEN_SLOTS] =
        const { [const { Cell::new((0, 0, 0)) }; PROVEN_SLOTS] };
}

/// The cache slot of a string at `addr`.
fn proven_slot(addr: usize) -> usize {
    // Fibonacci hashing: the top bits of the product mix every address bit.
    (addr as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) as usize >> (usize::BITS - 6)
}

/// [`type_rule`], with the scan skipped for a `&'static str` this thread
/// already proved; fills the type's key hash from the cache.
fn proven_type_rule(ty: &Text, max: usize) -> Option<Rule> {
    let Some(s) = ty.as_static() else {
        return type_rule(ty, max);
    };
    if let Some(rule) = length_rule(s, max) {
        return Some(rule);
    }
    let key = (s.as_ptr() as usize, s.len());
    PROVEN_TYPES.with(|cache| {
        let slot = &cache[proven_slot(key.0) % PROVEN_SLOTS];
        let (addr, len, hash) = slot.get();
        if (addr, len) == key {
            ty.set_key_hash(hash);
            return None;
        }
        let rule = type_rule(s, max);
        if rule.is_none() {
            let hash = Text::compute_key_hash(s);
            ty.set_key_hash(hash);
            slot.set((key.0, key.1, hash));
        }
        rule
    })
}

/// [`uri_reference_rule`], with the scan skipped for a `&'static str` this
/// thread already proved.
fn proven_source_rule(source: &Text, max: usize) -> Option<Rule> {
    let Some(s) = source.as_static() else {
        return uri_reference_rule(source, max);
    };
    if let Some(rule) = length_rule(s, max) {
        return Some(rule);
    }
    let key = (s.as_ptr() as usize, s.len());
    PROVEN_SOURCES.with(|cache| {
        let slot = &cache[proven_slot(key.0) % PROVEN_SLOTS];
        if slot.get() == (key.0, key.1, 1) {
            return None;
        }
        let rule = uri_characters_rule(s);
        if rule.is_none() {
            slot.set((key.0, key.1, 1));
        }
        rule
    })
}

/// Turns a broken rule into an error quoting the value.
fn check(attribute: Attribute, value: &Text, rule: Option<Rule>) -> Result<(), SignalError> {
    match rule {
        None => Ok(()),
        Some(rule) => Err(SignalError::new(attribute, rule, Some(value.clone()))),
    }
}

/// The character starting at byte `index` (a char boundary by construction).
fn char_at(s: &str, index: usize) -> char {
    s.get(index..)
        .and_then(|rest| rest.chars().next())
        .unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Non-empty and at most `max` bytes.
fn length_rule(s: &str, max: usize) -> Option<Rule> {
    if s.is_empty() {
        Some(Rule::Empty)
    } else if s.len() > max {
        Some(Rule::TooLong { len: s.len(), max })
    } else {
        None
    }
}

/// Whether the CloudEvents String type disallows `c`: the control
/// characters (C0 U+0000-U+001F, DEL and C1 U+007F-U+009F) and the Unicode
/// noncharacters (U+FDD0-U+FDEF, and the last two code points of every plane,
/// U+xFFFE and U+xFFFF). Surrogates cannot occur in a Rust string.
fn is_disallowed_char(c: char) -> bool {
    let cp = u32::from(c);
    c.is_control() || (0xFDD0..=0xFDEF).contains(&cp) || cp & 0xFFFE == 0xFFFE
}

/// The first character the CloudEvents String type disallows, if any.
fn string_chars_rule(s: &str) -> Option<Rule> {
    s.char_indices()
        .find(|&(_, c)| is_disallowed_char(c))
        .map(|(index, found)| Rule::InvalidCharacter { index, found })
}

/// `id` and `subject`: non-empty, bounded, CloudEvents String characters.
fn text_rule(s: &str, max: usize) -> Option<Rule> {
    length_rule(s, max).or_else(|| string_chars_rule(s))
}

/// Extension string values: like [`text_rule`] but may be empty.
fn extension_string_rule(s: &str, max: usize) -> Option<Rule> {
    if s.len() > max {
        return Some(Rule::TooLong { len: s.len(), max });
    }
    string_chars_rule(s)
}

/// `type`: dot-separated segments of `[A-Za-z0-9_-]+`, at most 64 of them.
fn type_rule(s: &str, max: usize) -> Option<Rule> {
    if let Some(rule) = length_rule(s, max) {
        return Some(rule);
    }
    let mut segment = 0;
    let mut segment_start = 0;
    for (index, byte) in s.bytes().enumerate() {
        match byte {
            b'.' => {
                if index == segment_start {
                    return Some(Rule::EmptySegment { index: segment });
                }
                segment += 1;
                segment_start = index + 1;
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => {}
            // Every byte before this one was ASCII, so `index` starts a char.
            _ => {
                let found = char_at(s, index);
                return Some(Rule::InvalidCharacter { index, found });
            }
        }
    }
    if segment_start == s.len() {
        return Some(Rule::EmptySegment { index: segment });
    }
    let count = segment + 1;
    (count > MAX_TYPE_SEGMENTS).then_some(Rule::TooManySegments {
        count,
        max: MAX_TYPE_SEGMENTS,
    })
}

/// `source`: a light URI-reference check (not a full RFC 3986 parse): no
/// whitespace, control characters or `<>"{}|\^` and backtick, and every `%`
/// starts a `%XX` escape. Non-ASCII letters pass (IRIs are common in
/// practice), Unicode noncharacters do not (RFC 3987 excludes them too).
fn uri_reference_rule(s: &str, max: usize) -> Option<Rule> {
    length_rule(s, max).or_else(|| uri_characters_rule(s))
}

fn uri_characters_rule(s: &str) -> Option<Rule> {
    let bytes = s.as_bytes();
    for (index, c) in s.char_indices() {
        let forbidden = matches!(c, '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`');
        if forbidden || c.is_whitespace() || is_disallowed_char(c) {
            return Some(Rule::InvalidCharacter { index, found: c });
        }
        if c == '%' {
            let hex = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(index + 1) && hex(index + 2)) {
                return Some(Rule::InvalidPercentEncoding { index });
            }
        }
    }
    None
}

/// `dataschema`: `scheme:` with scheme `[A-Za-z][A-Za-z0-9+.-]*`, then the
/// URI character rules.
fn absolute_uri_rule(s: &str, max: usize) -> Option<Rule> {
    if let Some(rule) = length_rule(s, max) {
        return Some(rule);
    }
    let bytes = s.as_bytes();
    let scheme_len = bytes
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'))
        .count();
    let starts_alpha = bytes.first().is_some_and(u8::is_ascii_alphabetic);
    if !starts_alpha || bytes.get(scheme_len) != Some(&b':') {
        return Some(Rule::NotAbsoluteUri);
    }
    uri_characters_rule(s)
}

/// RFC 2045 `token` characters: visible ASCII except the tspecials.
fn is_token_byte(b: u8) -> bool {
    TOKEN_BYTES[usize::from(b)]
}

/// [`is_token_byte`] as a table: every content type is checked when a
/// signal is built and again when one is decoded, and a scan of the 16
/// tspecials per byte showed in the NATS bridge's profile.
const TOKEN_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        let mut special = false;
        let tspecials = b"()<>@,;:\\\"/[]?=";
        let mut i = 0;
        while i < tspecials.len() {
            special |= tspecials[i] == byte;
            i += 1;
        }
        table[b] = byte.is_ascii_graphic() && !special;
        b += 1;
    }
    table
};

/// `datacontenttype`: `type "/" subtype *( OWS ";" OWS attribute "=" value )`
/// with RFC 2045 tokens and quoted-string values (RFC 2046 / RFC 9110).
fn media_type_rule(s: &str, max: usize) -> Option<Rule> {
    if let Some(rule) = text_rule(s, max) {
        return Some(rule);
    }
    (!is_media_type(s.as_bytes())).then_some(Rule::InvalidMediaType)
}

fn is_media_type(b: &[u8]) -> bool {
    let token_end = |from: usize| {
        from + b
            .get(from..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&c| is_token_byte(c))
            .count()
    };
    let skip_ows = |mut i: usize| {
        while matches!(b.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        i
    };
    // type "/" subtype
    let type_end = token_end(0);
    if type_end == 0 || b.get(type_end) != Some(&b'/') {
        return false;
    }
    let subtype_end = token_end(type_end + 1);
    if subtype_end == type_end + 1 {
        return false;
    }
    // *( OWS ";" OWS parameter )
    let mut i = subtype_end;
    while i < b.len() {
        i = skip_ows(i);
        if b.get(i) != Some(&b';') {
            return false;
        }
        i = skip_ows(i + 1);
        let name_end = token_end(i);
        if name_end == i || b.get(name_end) != Some(&b'=') {
            return false;
        }
        i = name_end + 1;
        if b.get(i) == Some(&b'"') {
            match quoted_string_end(b, i) {
                Some(end) => i = end,
                None => return false,
            }
        } else {
            let value_end = token_end(i);
            if value_end == i {
                return false;
            }
            i = value_end;
        }
    }
    true
}

/// The index just past the quoted-string opening at `b[start] == b'"'`.
fn quoted_string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => {
                b.get(i + 1)?;
                i += 2;
            }
            // qdtext: HTAB / SP / visible ASCII but '"' and '\' / obs-text
            b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => i += 1,
            _ => return None,
        }
    }
}

/// Extension names: 1 to 20 of `[a-z0-9]`, not a reserved attribute name.
fn extension_name_rule(name: &str) -> Option<Rule> {
    if RESERVED_NAMES.contains(&name) {
        return Some(Rule::ReservedName);
    }
    let ok = (1..=MAX_EXTENSION_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (!ok).then_some(Rule::InvalidName)
}

/// Whether a `datacontenttype` declares JSON content: after dropping
/// parameters, the subtype is `json` or ends in `+json` (case-insensitive),
/// per the CloudEvents JSON format (`*/json`, `*/*+json`).
pub(super) fn is_json_content_type(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or_default().trim();
    let Some((_, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.as_bytes();
    subtype.eq_ignore_ascii_case(b"json")
        || (subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::{Limits, Payload, Signal};
    use std::collections::HashMap;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn the_token_table_is_visible_ascii_without_the_tspecials() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b);
            assert_eq!(is_token_byte(b), expected, "byte {b:#04x}");
        }
    }

    fn b() -> SignalBuilder {
        Signal::builder("o.c", "/shop")
    }

    fn ext(name: &'static str) -> Attribute {
        Attribute::Extension(Text::from(name))
    }

    fn segments(n: usize) -> String {
        vec!["s"; n].join(".")
    }

    fn ch(index: usize, found: char) -> Rule {
        Rule::InvalidCharacter { index, found }
    }

    #[test]
    fn rejection_table() {
        let small = Limits::default()
            .with_max_attribute_len(8)
            .with_max_extensions(2)
            .with_max_payload(4);
        let mut bad_json: HashMap<(i32, i32), i32> = HashMap::new();
        bad_json.insert((1, 2), 3);
        let far_future = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        let far_past = UNIX_EPOCH - Duration::from_secs(70_000_000_000);
        let rows: Vec<(&str, SignalBuilder, Attribute, Rule)> = vec![
            (
                "empty type",
                Signal::builder("", "/s"),
                Attribute::Type,
                Rule::Empty,
            ),
            (
                "long type",
                Signal::builder("a".repeat(4097), "/s"),
                Attribute::Type,
                Rule::TooLong {
                    len: 4097,
                    max: 4096,
                },
            ),
            (
                "double dot",
                Signal::builder("order..created", "/s"),
                Attribute::Type,
                Rule::EmptySegment { index: 1 },
            ),
            (
                "leading dot",
                Signal::builder(".order", "/s"),
                Attribute::Type,
                Rule::EmptySegment { index: 0 },
            ),
            (
                "trailing dot",
                Signal::builder("order.", "/s"),
                Attribute::Type,
                Rule::EmptySegment { index: 1 },
            ),
            (
                "wildcard",
                Signal::builder("order.*", "/s"),
                Attribute::Type,
                ch(6, '*'),
            ),
            (
                "space in type",
                Signal::builder("a b", "/s"),
                Attribute::Type,
                ch(1, ' '),
            ),
            (
                "non-ascii type",
                Signal::builder("ordér", "/s"),
                Attribute::Type,
                ch(3, 'é'),
            ),
            (
                "65 segments",
                Signal::builder(segments(65), "/s"),
                Attribute::Type,
                Rule::TooManySegments { count: 65, max: 64 },
            ),
            (
                "empty source",
                Signal::builder("t", ""),
                Attribute::Source,
                Rule::Empty,
            ),
            (
                "long source",
                Signal::builder("t", "/123456789").limits(small),
                Attribute::Source,
                Rule::TooLong { len: 10, max: 8 },
            ),
            (
                "space in source",
                Signal::builder("t", "/a b"),
                Attribute::Source,
                ch(2, ' '),
            ),
            (
                "tab in source",
                Signal::builder("t", "/a\tb"),
                Attribute::Source,
                ch(2, '\t'),
            ),
            (
                "< in source",
                Signal::builder("t", "/a<b"),
                Attribute::Source,
                ch(2, '<'),
            ),
            (
                "backtick in source",
                Signal::builder("t", "/`"),
                Attribute::Source,
                ch(1, '`'),
            ),
            (
                "BEL in source",
                Signal::builder("t", "/\u{7}"),
                Attribute::Source,
                ch(1, '\u{7}'),
            ),
            (
                "short % escape",
                Signal::builder("t", "/a%2"),
                Attribute::Source,
                Rule::InvalidPercentEncoding { index: 2 },
            ),
            (
                "non-hex % escape",
                Signal::builder("t", "/a%zz/b"),
                Attribute::Source,
                Rule::InvalidPercentEncoding { index: 2 },
            ),
            ("empty id", b().id(""), Attribute::Id, Rule::Empty),
            ("newline in id", b().id("a\nb"), Attribute::Id, ch(1, '\n')),
            (
                "long id",
                b().id("123456789").limits(small),
                Attribute::Id,
                Rule::TooLong { len: 9, max: 8 },
            ),
            (
                "empty subject",
                b().subject(""),
                Attribute::Subject,
                Rule::Empty,
            ),
            (
                "NUL in subject",
                b().subject("x\0"),
                Attribute::Subject,
                ch(1, '\0'),
            ),
            (
                "C1 in subject",
                b().subject("\u{85}"),
                Attribute::Subject,
                ch(0, '\u{85}'),
            ),
            (
                "noncharacter U+FDD0 in subject",
                b().subject("a\u{fdd0}"),
                Attribute::Subject,
                ch(1, '\u{fdd0}'),
            ),
            (
                "noncharacter U+FDEF in subject",
                b().subject("\u{fdef}"),
                Attribute::Subject,
                ch(0, '\u{fdef}'),
            ),
            (
                "noncharacter U+FFFE in id",
                b().id("ab\u{fffe}"),
                Attribute::Id,
                ch(2, '\u{fffe}'),
            ),
            (
                "noncharacter U+FFFF in id",
                b().id("\u{ffff}"),
                Attribute::Id,
                ch(0, '\u{ffff}'),
            ),
            (
                "noncharacter U+1FFFE in subject",
                b().subject("\u{1fffe}"),
                Attribute::Subject,
                ch(0, '\u{1fffe}'),
            ),
            (
                "noncharacter U+10FFFF in extension value",
                b().extension("e", "x\u{10ffff}"),
                ext("e"),
                ch(1, '\u{10ffff}'),
            ),
            (
                "noncharacter U+EFFFF in source",
                Signal::builder("t", "/a\u{effff}"),
                Attribute::Source,
                ch(2, '\u{effff}'),
            ),
            (
                "DEL in extension value",
                b().extension("e", "\u{7f}"),
                ext("e"),
                ch(0, '\u{7f}'),
            ),
            (
                "last C1 control in subject",
                b().subject("\u{9f}"),
                Attribute::Subject,
                ch(0, '\u{9f}'),
            ),
            (
                "time after 9999",
                b().time(far_future),
                Attribute::Time,
                Rule::TimeOutOfRange,
            ),
            (
                "time before 0000",
                b().time(far_past),
                Attribute::Time,
                Rule::TimeOutOfRange,
            ),
            (
                "empty content type",
                b().datacontenttype(""),
                Attribute::DataContentType,
                Rule::Empty,
            ),
            (
                "no slash",
                b().datacontenttype("json"),
                Attribute::DataContentType,
                Rule::InvalidMediaType,
            ),
            (
                "no subtype",
                b().datacontenttype("application/"),
                Attribute::DataContentType,
                Rule::InvalidMediaType,
            ),
            (
                "parameter without value",
                b().datacontenttype("application/json; charset"),
                Attribute::DataContentType,
                Rule::InvalidMediaType,
            ),
            (
                "space before slash",
                b().datacontenttype("application /json"),
                Attribute::DataContentType,
                Rule::InvalidMediaType,
            ),
            (
                "unterminated quoted parameter",
                b().datacontenttype("text/plain; a=\"x"),
                Attribute::DataContentType,
                Rule::InvalidMediaType,
            ),
            (
                "control char in content type",
                b().datacontenttype("text/\u{1}"),
                Attribute::DataContentType,
                ch(5, '\u{1}'),
            ),
            (
                "empty schema",
                b().dataschema(""),
                Attribute::DataSchema,
                Rule::Empty,
            ),
            (
                "relative schema",
                b().dataschema("/schemas/a.json"),
                Attribute::DataSchema,
                Rule::NotAbsoluteUri,
            ),
            (
                "scheme starting with a digit",
                b().dataschema("1http://x"),
                Attribute::DataSchema,
                Rule::NotAbsoluteUri,
            ),
            (
                "space in schema",
                b().dataschema("https://a b"),
                Attribute::DataSchema,
                ch(9, ' '),
            ),
            (
                "bad escape in schema",
                b().dataschema("urn:%g0"),
                Attribute::DataSchema,
                Rule::InvalidPercentEncoding { index: 4 },
            ),
            (
                "uppercase extension name",
                b().extension("Trace", 1),
                ext("Trace"),
                Rule::InvalidName,
            ),
            (
                "21-char extension name",
                b().extension("abcdefghijklmnopqrstu", 1),
                ext("abcdefghijklmnopqrstu"),
                Rule::InvalidName,
            ),
            (
                "empty extension name",
                b().extension("", 1),
                ext(""),
                Rule::InvalidName,
            ),
            (
                "underscore in name",
                b().extension("trace_id", 1),
                ext("trace_id"),
                Rule::InvalidName,
            ),
            (
                "reserved name type",
                b().extension("type", "x"),
                ext("type"),
                Rule::ReservedName,
            ),
            (
                "reserved name data",
                b().extension("data", "x"),
                ext("data"),
                Rule::ReservedName,
            ),
            (
                "reserved name data_base64",
                b().extension("data_base64", "x"),
                ext("data_base64"),
                Rule::ReservedName,
            ),
            (
                "ESC in extension value",
                b().extension("e", "a\u{1b}"),
                ext("e"),
                ch(1, '\u{1b}'),
            ),
            (
                "long extension value",
                b().extension("e", "123456789").limits(small),
                ext("e"),
                Rule::TooLong { len: 9, max: 8 },
            ),
            (
                "too many extensions",
                b().extension("a", 1)
                    .extension("b", 2)
                    .extension("c", 3)
                    .limits(small),
                ext("c"),
                Rule::TooManyExtensions { count: 3, max: 2 },
            ),
            (
                "payload over the limit",
                b().data("12345").limits(small),
                Attribute::Data,
                Rule::PayloadTooLarge { size: 5, limit: 4 },
            ),
            (
                "json_data failure",
                b().json_data(&bad_json),
                Attribute::Data,
                Rule::Serialization {
                    message: Text::from("key must be a string"),
                },
            ),
        ];
        assert!(rows.len() >= 25);
        for (name, builder, attribute, rule) in rows {
            let err = builder.build().expect_err(name);
            assert_eq!(err.attribute(), &attribute, "{name}: {err}");
            assert_eq!(err.rule(), &rule, "{name}: {err}");
            // Every message names the attribute and says what is wrong.
            let text = err.to_string();
            assert!(text.starts_with("invalid signal "), "{name}: {text}");
            assert!(text.contains(attribute.name()), "{name}: {text}");
        }
    }

    #[test]
    fn static_strings_proven_once_still_meet_every_limit() {
        let tight = Limits::default().with_max_attribute_len(5);
        for _ in 0..3 {
            let ok = Signal::builder("cache.proven.type", "/cache/src").build();
            assert!(ok.is_ok());
            // Proven before, but the length limit depends on the builder.
            let err = Signal::builder("cache.proven.type", "/s")
                .limits(tight)
                .build()
                .unwrap_err();
            assert_eq!(err.rule(), &Rule::TooLong { len: 17, max: 5 });
            let err = Signal::builder("t", "/cache/src")
                .limits(tight)
                .build()
                .unwrap_err();
            assert_eq!(err.attribute(), &Attribute::Source);
            // A failure is never remembered as a pass.
            let err = Signal::builder("cache..bad", "/s").build().unwrap_err();
            assert_eq!(err.rule(), &Rule::EmptySegment { index: 1 });
            let err = Signal::builder("t", "/cache bad").build().unwrap_err();
            assert_eq!(err.rule(), &ch(6, ' '));
        }
    }

    #[test]
    fn the_cache_keys_on_address_and_length() {
        // One literal, three views: a proven prefix proves nothing about the
        // whole, nor the whole about a prefix, nor a type about a source.
        static WHOLE: &str = "order.created.";
        let prefix = &WHOLE[..13];
        for _ in 0..2 {
            assert!(Signal::builder(prefix, "/s").build().is_ok());
            let err = Signal::builder(WHOLE, "/s").build().unwrap_err();
            assert_eq!(err.rule(), &Rule::EmptySegment { index: 2 });
            let err = Signal::builder("t", "order created").build().unwrap_err();
            assert_eq!(err.attribute(), &Attribute::Source);
        }
    }

    #[test]
    fn a_static_type_carries_its_key_hash_from_the_cache() {
        let dynamic = Text::from(String::from("hash.me"));
        for _ in 0..2 {
            let s = Signal::builder("hash.me", "/s").build().unwrap();
            assert_eq!(s.type_text().key_hash(), dynamic.key_hash());
        }
    }

    #[test]
    fn more_static_strings_than_slots_evict_but_never_lie() {
        let types: Vec<&'static str> = (0..4 * PROVEN_SLOTS)
            .map(|i| &*Box::leak(format!("evict.t{i}").into_boxed_str()))
            .collect();
        let bad: &'static str = Box::leak(String::from("evict..bad").into_boxed_str());
        for _ in 0..3 {
            for &ty in &types {
                let s = Signal::builder(ty, ty).build().unwrap();
                assert_eq!(
                    s.type_text().key_hash(),
                    Text::from(ty.to_owned()).key_hash()
                );
            }
            assert!(Signal::builder(bad, "/s").build().is_err());
        }
    }

    #[test]
    fn accepted_edge_cases() {
        let limits = Limits::default()
            .with_max_payload(4)
            .with_max_attribute_len(8);
        let at_limit = "x".repeat(4096);
        let accepted: Vec<(&str, SignalBuilder)> = vec![
            ("64 segments", Signal::builder(segments(64), "/s")),
            ("mixed type", Signal::builder("a-b_c.D9", "/s")),
            ("one-char type", Signal::builder("a", "/s")),
            (
                "type at max length",
                Signal::builder(at_limit.clone(), "/s"),
            ),
            (
                "20-char extension name",
                b().extension("abcdefghijklmnopqrst", true),
            ),
            ("digit extension name", b().extension("0", 0)),
            ("empty extension string", b().extension("e", "")),
            ("payload at the limit", b().data("1234").limits(limits)),
            (
                "attribute at the limit",
                Signal::builder("t", "/1234567")
                    .id("12345678")
                    .limits(limits),
            ),
            (
                "absolute source",
                Signal::builder("t", "https://example.com/a?b=c#d"),
            ),
            ("urn source", Signal::builder("t", "urn:event:from:myapi")),
            ("escaped source", Signal::builder("t", "/a%2Fb%e9")),
            ("non-ascii source", Signal::builder("t", "/café")),
            ("id with spaces", b().id("A234 1234")),
            ("subject with unicode", b().subject("naïve ✓")),
            (
                "neighbours of the noncharacters",
                b().subject("\u{a0}\u{fdcf}\u{fdf0}\u{fffd}\u{1fffd}\u{10000}\u{10fffd}"),
            ),
            (
                "extension value with neighbours of the noncharacters",
                b().extension("e", "\u{fdcf}\u{fdf0}\u{fffd}\u{2fffd}"),
            ),
            ("id with a private-use character", b().id("\u{e000}")),
            ("json content type", b().datacontenttype("application/json")),
            (
                "parameters",
                b().datacontenttype("text/plain; charset=utf-8"),
            ),
            (
                "no space parameter",
                b().datacontenttype("text/plain;charset=utf-8"),
            ),
            (
                "quoted parameter",
                b().datacontenttype("text/plain; a=\"x; \\\"y\\\"\""),
            ),
            (
                "structured suffix",
                b().datacontenttype("application/cloudevents+json"),
            ),
            (
                "vendor type",
                b().datacontenttype("application/vnd.apache.thrift.binary"),
            ),
            ("urn schema", b().dataschema("urn:isbn:0451450523")),
            ("https schema", b().dataschema("https://example.com/s.json")),
            (
                "year 0",
                b().time(UNIX_EPOCH - Duration::from_secs(62_167_219_200)),
            ),
            (
                "year 9999",
                b().time(UNIX_EPOCH + Duration::from_secs(253_402_300_799)),
            ),
            ("empty payload", b().data(Payload::new())),
            ("extensions up to the limit", {
                let mut b = b();
                for i in 0..64 {
                    b = b.extension(format!("e{i}"), i);
                }
                b
            }),
        ];
        for (name, builder) in accepted {
            if let Err(e) = builder.build() {
                panic!("{name}: {e}");
            }
        }
        let _ = SystemTime::now();
    }

    #[test]
    fn messages_are_actionable() {
        let err = Signal::builder("order..created", "/s").build().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid signal `type` \"order..created\": segment 2 is empty; a type is one or more \
             segments of [A-Za-z0-9_-] separated by '.' (at most 64 segments), e.g. \"order.created\""
        );
        let err = b().extension("Bad", 1).build().unwrap_err();
        assert_eq!(err.value(), None);
        assert!(err.to_string().contains("extension `Bad`"), "{err}");
        assert!(err.to_string().contains("[a-z0-9]"), "{err}");
        let err = b()
            .data(vec![0; 11])
            .limits(Limits::default().with_max_payload(10))
            .build();
        let text = err.unwrap_err().to_string();
        assert!(
            text.contains("11 bytes") && text.contains("max_payload"),
            "{text}"
        );
        // Long values are clipped and control characters escaped.
        let err = b()
            .subject(format!("{}\u{1}", "x".repeat(100)))
            .build()
            .unwrap_err();
        assert_eq!(err.value().map(str::len), Some(101));
        let text = err.to_string();
        assert!(
            text.contains("x…\"") && text.contains("'\\u{1}' at byte 100"),
            "{text}"
        );
    }

    #[test]
    fn json_content_types() {
        for ct in [
            "application/json",
            "APPLICATION/JSON",
            "text/json",
            "application/cloudevents+json",
            "application/ld+JSON; charset=utf-8",
            "application/json;charset=utf-8",
        ] {
            assert!(is_json_content_type(ct), "{ct}");
        }
        for ct in [
            "text/plain",
            "application/jsonx",
            "application/+json",
            "json",
            "application/xml",
        ] {
            assert!(!is_json_content_type(ct), "{ct}");
        }
    }
}
