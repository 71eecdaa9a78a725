//! `zero-copy` side by side with the owned buffer, in one binary.
//!
//! The feature only chooses which of the two buffers `Payload` wraps; both
//! are compiled in every build. Here random sequences of every buffer
//! operation run on an `OwnedBuf` (a `Vec<u8>`) and a `SharedBuf` (a
//! `bytes::Bytes`) and on a plain `Vec<u8>` model, and every result must be
//! the same: bytes, lengths, equality and hashes between buffers, and what
//! survives clones, slices of slices, hand-offs and conversions. The
//! equivalence suite (`tests/equivalence.rs`) checks whichever buffer the
//! build selected against the model's own bytes inside the runtime.

use agentry::imp::payload::{OwnedBuf, SharedBuf};
use bytes::Bytes;
use proptest::prelude::*;
use std::hash::{BuildHasher, Hash};

/// The operations both buffers offer, so one driver runs either.
trait Buf: Clone + PartialEq + Hash + Sized {
    fn from_vec(v: Vec<u8>) -> Self;
    fn from_bytes(b: Bytes) -> Self;
    fn from_static(s: &'static [u8]) -> Self;
    fn copy_from_slice(s: &[u8]) -> Self;
    fn as_slice(&self) -> &[u8];
    fn slice(&self, range: std::ops::Range<usize>) -> Self;
    fn to_bytes(&self) -> Bytes;
    fn into_vec(self) -> Vec<u8>;
}

macro_rules! buf {
    ($t:ty) => {
        impl Buf for $t {
            fn from_vec(v: Vec<u8>) -> Self {
                <$t>::from_vec(v)
            }
            fn from_bytes(b: Bytes) -> Self {
                <$t>::from_bytes(b)
            }
            fn from_static(s: &'static [u8]) -> Self {
                <$t>::from_static(s)
            }
            fn copy_from_slice(s: &[u8]) -> Self {
                <$t>::copy_from_slice(s)
            }
            fn as_slice(&self) -> &[u8] {
                <$t>::as_slice(self)
            }
            fn slice(&self, range: std::ops::Range<usize>) -> Self {
                <$t>::slice(self, range)
            }
            fn to_bytes(&self) -> Bytes {
                <$t>::to_bytes(self)
            }
            fn into_vec(self) -> Vec<u8> {
                <$t>::into_vec(self)
            }
        }
    };
}
buf!(OwnedBuf);
buf!(SharedBuf);

static STATIC: &[u8] = b"static bytes: borrowed by the shared buffer, copied by the owned one";

#[derive(Clone, Debug)]
enum Op {
    FromVec(Vec<u8>),
    FromBytes(Vec<u8>),
    FromStatic,
    CopyFromSlice(Vec<u8>),
    /// Clone buffer `n` (modulo the live ones).
    Clone(usize),
    /// Slice buffer `n` at fractions of its length.
    Slice(usize, u8, u8),
    /// Round trip through `Bytes`.
    ThroughBytes(usize),
    /// Hand buffer `n` off as a vector and build a new buffer from it.
    IntoVec(usize),
    /// Compare buffers `a` and `b` (equality and hash).
    Compare(usize, usize),
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..300)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        bytes().prop_map(Op::FromVec),
        bytes().prop_map(Op::FromBytes),
        Just(Op::FromStatic),
        bytes().prop_map(Op::CopyFromSlice),
        any::<usize>().prop_map(Op::Clone),
        (any::<usize>(), any::<u8>(), any::<u8>()).prop_map(|(n, a, b)| Op::Slice(n, a, b)),
        any::<usize>().prop_map(Op::ThroughBytes),
        any::<usize>().prop_map(Op::IntoVec),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Compare(a, b)),
    ]
}

/// A range of `len` from two fractions (in 256ths).
fn range(len: usize, a: u8, b: u8) -> std::ops::Range<usize> {
    let (x, y) = (len * a as usize / 256, len * b as usize / 256);
    x.min(y)..x.max(y)
}

/// Runs `ops` on buffers of type `B`; returns what every step observed.
fn run<B: Buf>(ops: &[Op]) -> Vec<String> {
    let hasher = std::collections::hash_map::RandomState::new();
    let mut live: Vec<B> = Vec::new();
    let mut seen = Vec::new();
    for op in ops {
        let pick = |n: usize, live: &Vec<B>| (!live.is_empty()).then(|| n % live.len());
        let made = match op {
            Op::FromVec(v) => Some(B::from_vec(v.clone())),
            Op::FromBytes(v) => Some(B::from_bytes(Bytes::from(v.clone()))),
            Op::FromStatic => Some(B::from_static(STATIC)),
            Op::CopyFromSlice(v) => Some(B::copy_from_slice(v)),
            Op::Clone(n) => pick(*n, &live).map(|i| live[i].clone()),
            Op::Slice(n, a, b) => pick(*n, &live).map(|i| {
                let r = range(live[i].as_slice().len(), *a, *b);
                live[i].slice(r)
            }),
            Op::ThroughBytes(n) => pick(*n, &live).map(|i| B::from_bytes(live[i].to_bytes())),
            Op::IntoVec(n) => pick(*n, &live).map(|i| {
                let v = live.swap_remove(i).into_vec();
                B::from_vec(v)
            }),
            Op::Compare(a, b) => {
                if let (Some(i), Some(j)) = (pick(*a, &live), pick(*b, &live)) {
                    let equal = live[i] == live[j];
                    let same_hash = hasher.hash_one(&live[i]) == hasher.hash_one(&live[j]);
                    seen.push(format!(
                        "compare {i} {j}: {equal} {}",
                        equal == same_hash || !equal
                    ));
                }
                None
            }
        };
        if let Some(buf) = made {
            live.push(buf);
        }
        // Every live buffer, after every step: no operation may change the
        // bytes of another buffer (a clone, a slice or a hand-off must never
        // alias into something that changes).
        let all: Vec<&[u8]> = live.iter().map(Buf::as_slice).collect();
        seen.push(format!("{all:?}"));
    }
    seen
}

/// The same sequence on plain vectors: the oracle.
fn model(ops: &[Op]) -> Vec<String> {
    let mut live: Vec<Vec<u8>> = Vec::new();
    let mut seen = Vec::new();
    for op in ops {
        let pick = |n: usize, live: &Vec<Vec<u8>>| (!live.is_empty()).then(|| n % live.len());
        let made = match op {
            Op::FromVec(v) | Op::FromBytes(v) | Op::CopyFromSlice(v) => Some(v.clone()),
            Op::FromStatic => Some(STATIC.to_vec()),
            Op::Clone(n) | Op::ThroughBytes(n) => pick(*n, &live).map(|i| live[i].clone()),
            Op::Slice(n, a, b) => {
                pick(*n, &live).map(|i| live[i][range(live[i].len(), *a, *b)].to_vec())
            }
            Op::IntoVec(n) => pick(*n, &live).map(|i| live.swap_remove(i)),
            Op::Compare(a, b) => {
                if let (Some(i), Some(j)) = (pick(*a, &live), pick(*b, &live)) {
                    seen.push(format!("compare {i} {j}: {} true", live[i] == live[j]));
                }
                None
            }
        };
        if let Some(v) = made {
            live.push(v);
        }
        let all: Vec<&[u8]> = live.iter().map(Vec::as_slice).collect();
        seen.push(format!("{all:?}"));
    }
    seen
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn owned_and_shared_buffers_answer_every_sequence_alike(
        ops in prop::collection::vec(op(), 1..40)
    ) {
        let expected = model(&ops);
        let owned = run::<OwnedBuf>(&ops);
        let shared = run::<SharedBuf>(&ops);
        for (i, ((e, o), s)) in expected.iter().zip(&owned).zip(&shared).enumerate() {
            prop_assert_eq!(e, o, "owned buffer, step {}", i);
            prop_assert_eq!(e, s, "shared buffer, step {}", i);
        }
        prop_assert_eq!(expected.len(), owned.len());
        prop_assert_eq!(expected.len(), shared.len());
    }
}

#[test]
fn the_shared_buffer_shares_and_the_owned_one_copies() {
    // What the feature buys, shown on the same operations as above.
    let shared = SharedBuf::from_vec(vec![7; 4096]);
    assert_eq!(
        shared.as_slice().as_ptr(),
        shared.clone().as_slice().as_ptr(),
        "a shared clone points at the same bytes"
    );
    assert_eq!(
        shared.slice(10..20).as_slice().as_ptr(),
        shared.as_slice()[10..].as_ptr(),
        "a shared slice points into the same bytes"
    );
    let owned = OwnedBuf::from_vec(vec![7; 4096]);
    assert_ne!(owned.as_slice().as_ptr(), owned.clone().as_slice().as_ptr());
}
