//! [`Text`]: the string type of signal attributes.
//!
//! Attribute strings are cloned on every fan-out and every hand-off, and most of
//! them are literals (`"order.created"`, `"/shop/checkout"`). `Text` keeps a
//! `&'static str` as-is and everything else in an `Arc<str>`, so building a
//! signal from literals allocates nothing and cloning one never copies bytes.
//!
//! A `Text` also carries room for its own hash (inside the 24 bytes), filled
//! the first time a route memo looks it up or, for a `&'static str` type, by
//! validation from its per-thread cache: a signal's type is hashed at most
//! once, not once per lookup.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// An immutable, cheaply cloned string: a `&'static str` or a shared `Arc<str>`.
///
/// ```
/// use agentry::Text;
/// let literal = Text::from("order.created"); // no allocation
/// let owned = Text::from(format!("order.{}", "created")); // one allocation, shared by clones
/// assert_eq!(literal, owned);
/// assert_eq!(owned.as_str(), "order.created");
/// ```
pub struct Text(Repr);

// The hash sits next to the enum tag, in what would be padding: a `Text` is
// 24 bytes with it as without it (a test holds this).
enum Repr {
    Static(KeyHash, &'static str),
    Shared(KeyHash, Arc<str>),
}

/// The string's [`key hash`](Text::key_hash), or 0 while not computed yet.
/// Every thread that computes it computes the same value, so a relaxed
/// store/load is enough.
struct KeyHash(AtomicU32);

impl KeyHash {
    const fn unknown() -> Self {
        KeyHash(AtomicU32::new(0))
    }

    fn copy(&self) -> Self {
        KeyHash(AtomicU32::new(self.0.load(Ordering::Relaxed)))
    }
}

/// Seed of [`Text::key_hash`] (any fixed value: the hash must depend on the
/// string only, so that equal strings in different `Text`s hash alike).
const KEY_SEED: u64 = 0x243f_6a88_85a3_08d3;

impl Text {
    /// A `Text` borrowing a string literal; usable in `const` context.
    pub const fn from_static(s: &'static str) -> Self {
        Text(Repr::Static(KeyHash::unknown(), s))
    }

    /// Copies a borrowed string into a new shared `Text`.
    pub fn copy_from(s: &str) -> Self {
        Text::shared(Arc::from(s))
    }

    fn shared(s: Arc<str>) -> Self {
        Text(Repr::Shared(KeyHash::unknown(), s))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(_, s) => s,
            Repr::Shared(_, s) => s,
        }
    }

    /// The string when it is a `&'static str` (whose bytes can never change,
    /// so what was proven about them once stays true).
    pub(crate) fn as_static(&self) -> Option<&'static str> {
        match &self.0 {
            Repr::Static(_, s) => Some(s),
            Repr::Shared(..) => None,
        }
    }

    fn cell(&self) -> &AtomicU32 {
        match &self.0 {
            Repr::Static(h, _) | Repr::Shared(h, _) => &h.0,
        }
    }

    /// A 64-bit hash of the string (foldhash, fixed seed), computed once per
    /// `Text` and kept (clones made afterwards keep it too), for maps that key
    /// on signal types. Equal strings give equal hashes.
    #[inline]
    pub(crate) fn key_hash(&self) -> u64 {
        let mut h = self.cell().load(Ordering::Relaxed);
        if h == 0 {
            h = Text::compute_key_hash(self.as_str());
            self.cell().store(h, Ordering::Relaxed);
        }
        widen(h)
    }

    /// Stores a key hash computed earlier by [`compute_key_hash`](Self::compute_key_hash)
    /// for this same string.
    pub(crate) fn set_key_hash(&self, h: u32) {
        debug_assert_eq!(h, Text::compute_key_hash(self.as_str()));
        self.cell().store(h, Ordering::Relaxed);
    }

    /// The 32 bits [`key_hash`](Self::key_hash) keeps for `s` (never 0).
    pub(crate) fn compute_key_hash(s: &str) -> u32 {
        use std::hash::BuildHasher;
        let h = foldhash::fast::FixedState::with_seed(KEY_SEED).hash_one(s);
        ((h >> 32) as u32).max(1)
    }
}

/// 32 stored bits spread over 64: hash tables take the bucket from the low
/// bits and a tag from the top ones.
#[inline]
fn widen(h: u32) -> u64 {
    (u64::from(h) << 32) | u64::from(h)
}

impl Clone for Text {
    fn clone(&self) -> Self {
        Text(match &self.0 {
            Repr::Static(h, s) => Repr::Static(h.copy(), s),
            Repr::Shared(h, s) => Repr::Shared(h.copy(), Arc::clone(s)),
        })
    }
}

impl Default for Text {
    fn default() -> Self {
        Text::from_static("")
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&'static str> for Text {
    fn from(s: &'static str) -> Self {
        Text::from_static(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text::shared(Arc::from(s))
    }
}

impl From<Arc<str>> for Text {
    fn from(s: Arc<str>) -> Self {
        Text::shared(s)
    }
}

impl From<&Text> for Text {
    fn from(s: &Text) -> Self {
        s.clone()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_and_shared_compare_equal_and_hash_alike() {
        use std::collections::hash_map::DefaultHasher;
        let a = Text::from("a.b");
        let b = Text::from(String::from("a.b"));
        assert_eq!(a, b);
        let h = |t: &Text| {
            let mut h = DefaultHasher::new();
            t.hash(&mut h);
            h.finish()
        };
        assert_eq!(h(&a), h(&b));
        assert_eq!(&*a, "a.b");
        assert_eq!(format!("{a} {b:?}"), "a.b \"a.b\"");
    }

    #[test]
    fn the_key_hash_fits_in_the_24_bytes_and_depends_on_the_string_only() {
        assert_eq!(size_of::<Text>(), 24);
        assert_eq!(size_of::<Option<Text>>(), 24);
        let a = Text::from("order.created");
        let b = Text::from(String::from("order.created"));
        let before = a.clone();
        assert_eq!(a.key_hash(), b.key_hash());
        assert_eq!(a.key_hash(), before.key_hash());
        let after = a.clone();
        assert_eq!(
            after.cell().load(Ordering::Relaxed),
            a.cell().load(Ordering::Relaxed)
        );
        assert_ne!(a.key_hash(), Text::from("order.updated").key_hash());
        assert_ne!(Text::from("").key_hash(), 0);
        assert_eq!(a.as_static(), Some("order.created"));
        assert_eq!(b.as_static(), None);
    }
}
