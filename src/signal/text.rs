//! [`Text`]: the string type of signal attributes.
//!
//! Attribute strings are cloned on every fan-out and every hand-off, and most of
//! them are literals (`"order.created"`, `"/shop/checkout"`). `Text` keeps a
//! `&'static str` as-is and everything else in an `Arc<str>`, so building a
//! signal from literals allocates nothing and cloning one never copies bytes.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// An immutable, cheaply cloned string: a `&'static str` or a shared `Arc<str>`.
///
/// ```
/// use agentry::Text;
/// let literal = Text::from("order.created"); // no allocation
/// let owned = Text::from(format!("order.{}", "created")); // one allocation, shared by clones
/// assert_eq!(literal, owned);
/// assert_eq!(owned.as_str(), "order.created");
/// ```
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Text {
    /// A `Text` borrowing a string literal; usable in `const` context.
    pub const fn from_static(s: &'static str) -> Self {
        Text(Repr::Static(s))
    }

    /// Copies a borrowed string into a new shared `Text`.
    pub fn copy_from(s: &str) -> Self {
        Text(Repr::Shared(Arc::from(s)))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Shared(s) => s,
        }
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
        Text(Repr::Shared(Arc::from(s)))
    }
}

impl From<Arc<str>> for Text {
    fn from(s: Arc<str>) -> Self {
        Text(Repr::Shared(s))
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
}
