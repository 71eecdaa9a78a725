//! Where instruction objects come from: the allocator, a per-thread free list,
//! or the `object-pool` crate.
//!
//! All three are compiled; [`PoolKind`] picks one per runtime (the `pooling`
//! feature makes [`PoolKind::FreeList`] the default). A returned instruction is
//! cleared in place, keeping the capacity of its buffers, so a warm runtime
//! dispatches without touching the allocator.
//!
//! The free list is a two-level "magazine" design: each thread keeps up to
//! [`MAGAZINE`] instructions in a thread-local stack (a push or a pop costs a
//! few nanoseconds and no atomic operation), and full or empty stacks are
//! exchanged whole through a global depot under a mutex, once per
//! [`MAGAZINE`] operations. The exchange matters because instructions are
//! checked out on the sender's thread and returned on a worker thread: with
//! purely thread-local lists the sender's list would always be empty and the
//! worker's always full. Both levels are bounded
//! (`MAGAZINE * (1 + MAX_DEPOT_MAGAZINES)` per thread and depot), and an empty
//! pool falls back to allocating.

use crate::instruction::Instruction;
use std::cell::RefCell;
use std::sync::{Mutex, OnceLock, PoisonError};

/// The source of instruction objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// `Box::new` on checkout, drop on return (the plain implementation).
    Allocate,
    /// A thread-local magazine free list with a bounded global depot.
    FreeList,
    /// The `object-pool` crate (a `Mutex<Vec<T>>`), kept for comparison.
    ObjectPool,
}

/// Instructions held per thread before a full magazine moves to the depot.
pub const MAGAZINE: usize = 64;
/// Full magazines the depot keeps; beyond that, returned instructions are freed.
pub const MAX_DEPOT_MAGAZINES: usize = 64;
/// Bound of the `object-pool` candidate.
pub const OBJECT_POOL_CAPACITY: usize = MAGAZINE * MAX_DEPOT_MAGAZINES;

/// Takes a blank instruction from the pool of `kind`.
#[inline]
pub fn checkout(kind: PoolKind) -> Box<Instruction> {
    match kind {
        PoolKind::Allocate => Box::new(Instruction::blank()),
        PoolKind::FreeList => free_list::checkout(),
        PoolKind::ObjectPool => object_pool_candidate::checkout(),
    }
}

/// Returns an instruction to the pool of `kind`, clearing it in place.
#[inline]
pub fn give_back(kind: PoolKind, mut ins: Box<Instruction>) {
    match kind {
        PoolKind::Allocate => drop(ins),
        PoolKind::FreeList => {
            ins.recycle();
            free_list::give_back(ins)
        }
        PoolKind::ObjectPool => {
            ins.recycle();
            object_pool_candidate::give_back(ins)
        }
    }
}

mod free_list {
    use super::*;

    struct Depot {
        full: Vec<Vec<Box<Instruction>>>,
        empty: Vec<Vec<Box<Instruction>>>,
    }

    static DEPOT: Mutex<Depot> = Mutex::new(Depot {
        full: Vec::new(),
        empty: Vec::new(),
    });

    thread_local! {
        static LOCAL: RefCell<Vec<Box<Instruction>>> = const { RefCell::new(Vec::new()) };
    }

    pub fn checkout() -> Box<Instruction> {
        LOCAL
            .try_with(|local| {
                let mut local = local.try_borrow_mut().ok()?;
                if local.is_empty() {
                    refill(&mut local);
                }
                local.pop()
            })
            .ok()
            .flatten()
            .unwrap_or_else(|| Box::new(Instruction::blank()))
    }

    pub fn give_back(ins: Box<Instruction>) {
        // If the thread-local is gone (thread exit) or busy, the instruction is
        // simply freed: a pool may always decline.
        let _ = LOCAL.try_with(|local| {
            if let Ok(mut local) = local.try_borrow_mut() {
                if local.len() >= MAGAZINE {
                    spill(&mut local);
                }
                if local.len() < MAGAZINE {
                    local.push(ins);
                }
            }
        });
    }

    fn refill(local: &mut Vec<Box<Instruction>>) {
        let mut depot = DEPOT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(full) = depot.full.pop() {
            let empty = std::mem::replace(local, full);
            if empty.capacity() != 0 {
                depot.empty.push(empty);
            }
        }
    }

    fn spill(local: &mut Vec<Box<Instruction>>) {
        let mut depot = DEPOT.lock().unwrap_or_else(PoisonError::into_inner);
        if depot.full.len() < MAX_DEPOT_MAGAZINES {
            let empty = depot
                .empty
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(MAGAZINE));
            let full = std::mem::replace(local, empty);
            depot.full.push(full);
        } else {
            drop(depot);
            local.clear();
        }
    }
}

mod object_pool_candidate {
    use super::*;
    use object_pool::Pool;

    fn pool() -> &'static Pool<Box<Instruction>> {
        static POOL: OnceLock<Pool<Box<Instruction>>> = OnceLock::new();
        POOL.get_or_init(|| Pool::new(0, || Box::new(Instruction::blank())))
    }

    pub fn checkout() -> Box<Instruction> {
        match pool().try_pull() {
            Some(reusable) => reusable.detach().1,
            None => Box::new(Instruction::blank()),
        }
    }

    pub fn give_back(ins: Box<Instruction>) {
        let pool = pool();
        if pool.len() < OBJECT_POOL_CAPACITY {
            pool.attach(ins);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_hands_out_blank_instructions_and_takes_them_back() {
        for kind in [PoolKind::Allocate, PoolKind::FreeList, PoolKind::ObjectPool] {
            for _ in 0..3 * MAGAZINE {
                let ins = checkout(kind);
                assert!(ins.is_blank(), "{kind:?} handed out a used instruction");
                give_back(kind, ins);
            }
        }
    }

    #[test]
    fn free_list_survives_checkout_on_one_thread_and_return_on_another() {
        let (tx, rx) = std::sync::mpsc::channel::<Box<Instruction>>();
        let consumer = std::thread::spawn(move || {
            for ins in rx {
                give_back(PoolKind::FreeList, ins);
            }
        });
        for _ in 0..10 * MAGAZINE {
            let ins = checkout(PoolKind::FreeList);
            assert!(ins.is_blank());
            tx.send(ins).unwrap();
        }
        drop(tx);
        consumer.join().unwrap();
        for _ in 0..2 * MAGAZINE {
            let ins = checkout(PoolKind::FreeList);
            assert!(ins.is_blank());
            give_back(PoolKind::FreeList, ins);
        }
    }
}
