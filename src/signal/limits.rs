//! [`Limits`]: the size bounds that building and decoding enforce.

/// Size bounds for signals, applied by [`SignalBuilder::build`](super::SignalBuilder::build)
/// and by JSON decoding, so that one oversized or hostile event cannot exhaust
/// memory in a mailbox or a decoder.
///
/// ```
/// use agentry::Limits;
/// let limits = Limits::default().with_max_payload(1024).with_max_extensions(8);
/// assert_eq!(limits.max_payload(), 1024);
/// assert_eq!(limits.max_attribute_len(), 4096);
/// assert!(limits.max_json_len() > 1024 * 4 / 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    max_payload: usize,
    max_attribute_len: usize,
    max_extensions: usize,
    max_json_len: Option<usize>,
}

impl Default for Limits {
    /// 10 MiB payloads, 4096-byte attributes, 64 extensions, and a JSON input
    /// bound derived from those (see [`Limits::max_json_len`]).
    fn default() -> Self {
        Limits {
            max_payload: 10 * 1024 * 1024,
            max_attribute_len: 4096,
            max_extensions: 64,
            max_json_len: None,
        }
    }
}

/// Room for everything in an encoded event that is not an attribute value or
/// the data: braces, `"specversion":"1.0"`, the `time` string, member names.
const FIXED_JSON_OVERHEAD: usize = 4 * 1024;
/// Per string attribute: its quoted member name (at most 20 characters for an
/// extension, 15 for `datacontenttype`), colon, comma and value quotes.
const PER_ATTRIBUTE_OVERHEAD: usize = 48;
/// `id`, `source`, `type`, `subject`, `datacontenttype`, `dataschema`.
const STRING_ATTRIBUTES: usize = 6;

impl Limits {
    /// Sets the largest payload, in bytes (default 10 MiB).
    pub const fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Sets the longest string attribute or extension string value, in bytes
    /// (default 4096). A UUID id is not checked: its text is always 36 bytes.
    pub const fn with_max_attribute_len(mut self, bytes: usize) -> Self {
        self.max_attribute_len = bytes;
        self
    }

    /// Sets the largest number of extension attributes (default 64).
    pub const fn with_max_extensions(mut self, count: usize) -> Self {
        self.max_extensions = count;
        self
    }

    /// Sets the longest JSON input decoding accepts, in bytes, replacing the
    /// derived default (useful for pretty-printed input from other tools).
    pub const fn with_max_json_len(mut self, bytes: usize) -> Self {
        self.max_json_len = Some(bytes);
        self
    }

    /// The largest payload, in bytes.
    pub const fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// The longest string attribute or extension string value, in bytes.
    pub const fn max_attribute_len(&self) -> usize {
        self.max_attribute_len
    }

    /// The largest number of extension attributes.
    pub const fn max_extensions(&self) -> usize {
        self.max_extensions
    }

    /// The longest JSON input decoding accepts, checked before parsing.
    ///
    /// Unless set, it is the largest encoding of any signal valid under the
    /// other limits: the payload as a JSON string of control characters
    /// (`\u0001` is 6 bytes per byte; base64 and inline JSON take less), plus
    /// every string attribute and extension at `max_attribute_len` with each
    /// byte escaped (2x), plus 4 KiB for the fixed members. So
    /// `from_json_with(&s.to_json_vec(), &limits)` never fails on size for a
    /// signal built with `limits` (about 60.6 MiB with the defaults).
    pub const fn max_json_len(&self) -> usize {
        if let Some(n) = self.max_json_len {
            return n;
        }
        let data = self.max_payload.saturating_mul(6);
        let per_attribute = self
            .max_attribute_len
            .saturating_mul(2)
            .saturating_add(PER_ATTRIBUTE_OVERHEAD);
        let attributes = self
            .max_extensions
            .saturating_add(STRING_ATTRIBUTES)
            .saturating_mul(per_attribute);
        data.saturating_add(attributes)
            .saturating_add(FIXED_JSON_OVERHEAD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_setters() {
        let d = Limits::default();
        assert_eq!(d.max_payload(), 10 * 1024 * 1024);
        assert_eq!(d.max_attribute_len(), 4096);
        assert_eq!(d.max_extensions(), 64);
        assert_eq!(
            d.max_json_len(),
            6 * 10 * 1024 * 1024 + 70 * (8192 + 48) + 4096
        );
        let l = d.with_max_json_len(7).with_max_payload(1);
        assert_eq!((l.max_json_len(), l.max_payload()), (7, 1));
        let huge = d
            .with_max_payload(usize::MAX)
            .with_max_attribute_len(usize::MAX);
        assert_eq!(huge.max_json_len(), usize::MAX);
    }
}
