//! Shared by the criterion benchmarks.
#![allow(dead_code)]

use agentry::{AgentSpec, Instruction, Signal};

/// The global allocator of every benchmark binary when `mimalloc` is on.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A counter agent: adds the payload length to its state, replies the total.
pub fn counter() -> AgentSpec<u64, u64> {
    AgentSpec::new(0).on("tick", |n: &mut u64, ins: &mut Instruction| {
        *n += ins.data().len() as u64 + 1;
        Ok(*n)
    })
}

/// A small signal sharing `payload`.
pub fn tick(payload: &bytes::Bytes) -> Signal {
    Signal::builder("tick", "/bench")
        .data(payload.clone())
        .build()
        .expect("valid")
}

/// The features this benchmark binary was built with, for the report header.
pub fn features() -> String {
    format!("[{}]", agentry::imp::enabled_features().join(", "))
}
