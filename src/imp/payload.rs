//! The two payload buffers behind [`crate::Payload`].
//!
//! Both are always compiled (so tests and benchmarks can run them side by
//! side); `zero-copy` only chooses which one [`ActiveBuf`] names.
//!
//! * [`OwnedBuf`] — a `Vec<u8>`. Every clone, slice and hand-off deep-copies.
//! * [`SharedBuf`] — a `bytes::Bytes`. Clone and slice bump a reference count.

use bytes::Bytes;
use std::ops::Range;

/// A plain owned buffer: cloning copies the bytes.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct OwnedBuf(Vec<u8>);

/// A shared, reference-counted buffer: cloning copies nothing.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct SharedBuf(Bytes);

impl OwnedBuf {
    /// Takes ownership of `v` (no copy).
    pub fn from_vec(v: Vec<u8>) -> Self {
        OwnedBuf(v)
    }
    /// Copies the bytes of `b` into an owned buffer.
    pub fn from_bytes(b: Bytes) -> Self {
        OwnedBuf(b.to_vec())
    }
    /// Copies a static slice into an owned buffer.
    pub fn from_static(s: &'static [u8]) -> Self {
        OwnedBuf(s.to_vec())
    }
    /// Copies `s`.
    pub fn copy_from_slice(s: &[u8]) -> Self {
        OwnedBuf(s.to_vec())
    }
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
    /// A copy of `range` (already bounds-checked by the caller).
    pub fn slice(&self, range: Range<usize>) -> Self {
        OwnedBuf(self.0[range].to_vec())
    }
    /// A `Bytes` holding a copy.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(&self.0)
    }
    /// The owned vector (no copy).
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl SharedBuf {
    /// Wraps `v` without copying it.
    pub fn from_vec(v: Vec<u8>) -> Self {
        SharedBuf(Bytes::from(v))
    }
    /// Shares `b` (no copy).
    pub fn from_bytes(b: Bytes) -> Self {
        SharedBuf(b)
    }
    /// Borrows a static slice (no copy, no allocation).
    pub fn from_static(s: &'static [u8]) -> Self {
        SharedBuf(Bytes::from_static(s))
    }
    /// Copies `s`.
    pub fn copy_from_slice(s: &[u8]) -> Self {
        SharedBuf(Bytes::copy_from_slice(s))
    }
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
    /// A shared view of `range` (already bounds-checked by the caller).
    pub fn slice(&self, range: Range<usize>) -> Self {
        SharedBuf(self.0.slice(range))
    }
    /// The shared `Bytes` (a reference-count bump).
    pub fn to_bytes(&self) -> Bytes {
        self.0.clone()
    }
    /// A vector of the bytes (no copy when this is the only reference to a
    /// buffer that came from a `Vec`).
    pub fn into_vec(self) -> Vec<u8> {
        Vec::from(self.0)
    }
}

/// The buffer [`crate::Payload`] uses in this build.
#[cfg(feature = "zero-copy")]
pub type ActiveBuf = SharedBuf;
/// The buffer [`crate::Payload`] uses in this build.
#[cfg(not(feature = "zero-copy"))]
pub type ActiveBuf = OwnedBuf;

// Both buffers are compared operation by operation, against a `Vec<u8>`
// model, in `tests/payload_buffers.rs`.
