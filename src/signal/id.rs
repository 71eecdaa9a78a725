//! [`SignalId`]: the CloudEvents `id` of a signal.

use super::Text;
use std::fmt;
use std::hash::{Hash, Hasher};
use uuid::Uuid;

/// Length of a hyphenated UUID: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
const UUID_LEN: usize = 36;

/// The `id` of a signal: a UUID (the default, generated as UUIDv7) or any
/// other text a producer chose.
///
/// Generated ids are UUIDs stored as 16 bytes, so making one allocates nothing
/// and, being v7, they sort by creation time within the process.
///
/// Equality and hashing follow the CloudEvents string value: a `Uuid` equals a
/// `Text` holding that UUID in canonical form (hyphenated, lowercase). Every id
/// inside a [`Signal`](super::Signal) is normalized (a canonical UUID string is
/// stored as the `Uuid` variant), which is what makes JSON round trips exact.
///
/// ```
/// use agentry::SignalId;
/// let id = SignalId::from("0190163d-8694-739b-aea5-966c26f8ad91");
/// assert!(id.as_uuid().is_some()); // canonical UUID text becomes the Uuid form
/// assert_eq!(id.to_string(), "0190163d-8694-739b-aea5-966c26f8ad91");
/// assert_eq!(SignalId::from("A234-1234-1234").as_uuid(), None);
/// ```
#[derive(Clone, Debug)]
pub enum SignalId {
    /// A UUID, written hyphenated and lowercase.
    Uuid(Uuid),
    /// Any other id text.
    Text(Text),
}

impl SignalId {
    /// A fresh UUIDv7: unique, and ordered by creation within the process
    /// (uuid's shared v7 context), so ids double as an arrival order.
    pub fn now_v7() -> Self {
        SignalId::Uuid(Uuid::now_v7())
    }

    /// `text` as an id, stored as the `Uuid` variant when it is a canonical
    /// (hyphenated, lowercase) UUID, so that equal id strings give equal ids.
    pub fn from_text(text: impl Into<Text>) -> Self {
        let text = text.into();
        match canonical_uuid(&text) {
            Some(uuid) => SignalId::Uuid(uuid),
            None => SignalId::Text(text),
        }
    }

    /// The UUID, when the id is one; lets callers use it as a compact key or
    /// read its v7 timestamp.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            SignalId::Uuid(u) => Some(*u),
            SignalId::Text(_) => None,
        }
    }

    /// The id text, when the id is not a UUID (a UUID has no stored text; use
    /// `Display` for either form).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            SignalId::Uuid(_) => None,
            SignalId::Text(t) => Some(t.as_str()),
        }
    }

    /// Calls `f` with the id's string form, formatting a UUID on the stack
    /// (no allocation).
    pub(crate) fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            SignalId::Uuid(u) => {
                let mut buf = [0u8; UUID_LEN];
                f(u.hyphenated().encode_lower(&mut buf))
            }
            SignalId::Text(t) => f(t.as_str()),
        }
    }
}

/// The UUID in `s` if `s` is exactly its canonical form (36 bytes, hyphenated,
/// lowercase): only then does re-encoding give back the same string.
fn canonical_uuid(s: &str) -> Option<Uuid> {
    let b = s.as_bytes();
    if b.len() != UUID_LEN {
        return None;
    }
    let shape_ok = b.iter().enumerate().all(|(i, &c)| match i {
        8 | 13 | 18 | 23 => c == b'-',
        _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
    });
    if !shape_ok {
        return None;
    }
    Uuid::try_parse(s).ok()
}

impl PartialEq for SignalId {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SignalId::Uuid(a), SignalId::Uuid(b)) => a == b,
            (SignalId::Text(a), SignalId::Text(b)) => a == b,
            (SignalId::Uuid(u), SignalId::Text(t)) | (SignalId::Text(t), SignalId::Uuid(u)) => {
                canonical_uuid(t) == Some(*u)
            }
        }
    }
}

impl Eq for SignalId {}

impl Hash for SignalId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Hash the string form, so the Uuid and Text forms of one id (equal
        // by `PartialEq`) hash alike.
        self.with_str(|s| s.hash(state));
    }
}

impl fmt::Display for SignalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|s| f.write_str(s))
    }
}

impl From<Uuid> for SignalId {
    fn from(u: Uuid) -> Self {
        SignalId::Uuid(u)
    }
}

impl From<Text> for SignalId {
    fn from(t: Text) -> Self {
        SignalId::from_text(t)
    }
}

impl From<&'static str> for SignalId {
    fn from(s: &'static str) -> Self {
        SignalId::from_text(s)
    }
}

impl From<String> for SignalId {
    fn from(s: String) -> Self {
        SignalId::from_text(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash(id: &SignalId) -> u64 {
        let mut h = DefaultHasher::new();
        id.hash(&mut h);
        h.finish()
    }

    #[test]
    fn only_canonical_uuid_text_becomes_the_uuid_form() {
        let canonical = "0190163d-8694-739b-aea5-966c26f8ad91";
        assert!(SignalId::from(canonical).as_uuid().is_some());
        for other in [
            "0190163D-8694-739B-AEA5-966C26F8AD91",
            "0190163d8694739baea5966c26f8ad91",
            "{0190163d-8694-739b-aea5-966c26f8ad91}",
            "urn:uuid:0190163d-8694-739b-aea5-966c26f8ad91",
            "0190163d-8694-739b-aea5-966c26f8ad9g",
            "0190163d+8694-739b-aea5-966c26f8ad91",
            "",
        ] {
            assert_eq!(SignalId::from(other).as_text(), Some(other), "{other}");
        }
    }

    #[test]
    fn uuid_and_text_forms_of_one_id_are_equal_and_hash_alike() {
        let u = Uuid::now_v7();
        let a = SignalId::Uuid(u);
        let b = SignalId::Text(Text::from(u.to_string()));
        assert_eq!(a, b);
        assert_eq!(b, a);
        assert_eq!(hash(&a), hash(&b));
        assert_ne!(a, SignalId::Text(Text::from(u.to_string().to_uppercase())));
        assert_eq!(a.to_string(), u.hyphenated().to_string());
        assert_eq!(SignalId::from("x").to_string(), "x");
    }
}
