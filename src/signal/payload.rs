//! [`Payload`]: the data of a signal.

use crate::imp::payload::ActiveBuf;
use bytes::Bytes;
use std::fmt;
use std::ops::{Bound, Deref, Range, RangeBounds};

/// The data carried by a [`Signal`](crate::Signal): immutable bytes.
///
/// With the `zero-copy` feature it is a shared `bytes::Bytes`: cloning, slicing
/// and fanning out to many receivers copy nothing. Without it, it is an owned
/// buffer that is deep-copied at each clone. The API and every observable
/// result are the same either way; only cost differs.
///
/// ```
/// use agentry::Payload;
/// let p = Payload::from(b"hello world".to_vec());
/// assert_eq!(p.len(), 11);
/// assert_eq!(p.slice(6..).unwrap(), Payload::from_static(b"world"));
/// assert!(p.slice(5..40).is_none()); // out of bounds is a `None`, never a panic
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Payload(ActiveBuf);

impl Payload {
    /// An empty payload.
    pub fn new() -> Self {
        Payload::default()
    }

    /// A payload over static bytes (no copy with `zero-copy`).
    pub fn from_static(bytes: &'static [u8]) -> Self {
        Payload(ActiveBuf::from_static(bytes))
    }

    /// A payload holding a copy of `bytes`.
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        Payload(ActiveBuf::copy_from_slice(bytes))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sub-range `range` as a payload, or `None` if it is out of bounds.
    /// Shares the bytes with `zero-copy`, copies them otherwise.
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Option<Payload> {
        let len = self.len();
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.checked_add(1)?,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.checked_add(1)?,
            Bound::Excluded(&e) => e,
            Bound::Unbounded => len,
        };
        (start <= end && end <= len).then(|| Payload(self.0.slice(Range { start, end })))
    }

    /// The payload as `bytes::Bytes`: shared with `zero-copy`, copied otherwise.
    pub fn to_bytes(&self) -> Bytes {
        self.0.to_bytes()
    }

    /// The payload as a vector (no copy when the buffer is not shared).
    pub fn into_vec(self) -> Vec<u8> {
        self.0.into_vec()
    }
}

impl Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<Vec<u8>> for Payload {
    fn from(v: Vec<u8>) -> Self {
        Payload(ActiveBuf::from_vec(v))
    }
}

impl From<String> for Payload {
    fn from(s: String) -> Self {
        Payload::from(s.into_bytes())
    }
}

impl From<Bytes> for Payload {
    fn from(b: Bytes) -> Self {
        Payload(ActiveBuf::from_bytes(b))
    }
}

impl From<&'static [u8]> for Payload {
    fn from(s: &'static [u8]) -> Self {
        Payload::from_static(s)
    }
}

impl From<&'static str> for Payload {
    fn from(s: &'static str) -> Self {
        Payload::from_static(s.as_bytes())
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 32;
        let b = self.as_bytes();
        write!(f, "Payload({} B", b.len())?;
        if !b.is_empty() {
            let head = &b[..b.len().min(SHOWN)];
            write!(f, ": {:?}", Bytes::copy_from_slice(head))?;
            if b.len() > SHOWN {
                f.write_str("…")?;
            }
        }
        f.write_str(")")
    }
}
