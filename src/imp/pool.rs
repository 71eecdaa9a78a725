//! Where pooled objects (instructions) come from: the allocator, a per-thread
//! free list, or the `object-pool` crate. Generic over the pooled type
//! ([`Recycle`]), so this seam names nothing of the crate above it.
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

use std::cell::RefCell;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::LocalKey;

/// An object a pool can hand out and take back (sharded-slab's `Clear`): it
/// has a blank state, can be cleared in place, and names its own pools.
pub trait Recycle: Sized + Send + 'static {
    /// An empty object, as a pool hands it out.
    fn blank() -> Self;
    /// Clears in place for reuse, keeping (bounded) buffer capacity.
    fn recycle(&mut self);
    /// This type's pools: a `static` (statics cannot be generic, so each
    /// pooled type declares its own; see [`Pools::new`]).
    fn pools() -> &'static Pools<Self>;
    /// The thread's magazine (a `thread_local!` of the implementer's, named
    /// statically so the access compiles to a direct TLS access).
    fn magazine() -> &'static LocalKey<Magazine<Self>>;
}

/// The source of pooled objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// `Box::new` on checkout, drop on return (the plain implementation).
    Allocate,
    /// A thread-local magazine free list with a bounded global depot.
    FreeList,
    /// The `object-pool` crate (a `Mutex<Vec<T>>`), kept for comparison.
    ObjectPool,
}

/// Objects held per thread before a full magazine moves to the depot.
pub const MAGAZINE: usize = 64;
/// Full magazines the depot keeps; beyond that, returned objects are freed.
pub const MAX_DEPOT_MAGAZINES: usize = 64;
/// Bound of the `object-pool` candidate.
pub const OBJECT_POOL_CAPACITY: usize = MAGAZINE * MAX_DEPOT_MAGAZINES;

/// A thread's magazine of pooled objects.
pub type Magazine<T> = RefCell<Vec<Box<T>>>;

/// The pools of one type: the free list's thread-local magazine and global
/// depot, and the `object-pool` candidate.
pub struct Pools<T: 'static> {
    depot: Mutex<Depot<T>>,
    object_pool: OnceLock<object_pool::Pool<Box<T>>>,
}

struct Depot<T> {
    full: Vec<Vec<Box<T>>>,
    empty: Vec<Vec<Box<T>>>,
}

impl<T> Default for Pools<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Pools<T> {
    /// Empty pools, `const` so a pooled type can keep them in a `static`
    /// (its magazine is its own `thread_local!`, see [`Recycle::magazine`]).
    pub const fn new() -> Self {
        Pools {
            depot: Mutex::new(Depot {
                full: Vec::new(),
                empty: Vec::new(),
            }),
            object_pool: OnceLock::new(),
        }
    }
}

/// Takes a blank object from the pool of `kind`.
#[inline(always)]
pub fn checkout<T: Recycle>(kind: PoolKind) -> Box<T> {
    match kind {
        PoolKind::Allocate => Box::new(T::blank()),
        PoolKind::FreeList => free_list::checkout(T::pools()),
        PoolKind::ObjectPool => object_pool_candidate::checkout(T::pools()),
    }
}

/// Returns an object to the pool of `kind`, clearing it in place.
#[inline]
pub fn give_back<T: Recycle>(kind: PoolKind, mut obj: Box<T>) {
    match kind {
        PoolKind::Allocate => drop(obj),
        PoolKind::FreeList => {
            obj.recycle();
            free_list::give_back(T::pools(), obj)
        }
        PoolKind::ObjectPool => {
            obj.recycle();
            object_pool_candidate::give_back(T::pools(), obj)
        }
    }
}

mod free_list {
    use super::*;

    pub fn checkout<T: Recycle>(pools: &Pools<T>) -> Box<T> {
        T::magazine()
            .try_with(|local| {
                let mut local = local.try_borrow_mut().ok()?;
                if local.is_empty() {
                    refill(pools, &mut local);
                }
                local.pop()
            })
            .ok()
            .flatten()
            .unwrap_or_else(|| Box::new(T::blank()))
    }

    pub fn give_back<T: Recycle>(pools: &Pools<T>, obj: Box<T>) {
        // If the thread-local is gone (thread exit) or busy, the object is
        // simply freed: a pool may always decline.
        let _ = T::magazine().try_with(|local| {
            if let Ok(mut local) = local.try_borrow_mut() {
                if local.len() >= MAGAZINE {
                    spill(pools, &mut local);
                }
                if local.len() < MAGAZINE {
                    local.push(obj);
                }
            }
        });
    }

    fn refill<T>(pools: &Pools<T>, local: &mut Vec<Box<T>>) {
        let mut depot = pools.depot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(full) = depot.full.pop() {
            let empty = std::mem::replace(local, full);
            if empty.capacity() != 0 {
                depot.empty.push(empty);
            }
        }
    }

    fn spill<T>(pools: &Pools<T>, local: &mut Vec<Box<T>>) {
        let mut depot = pools.depot.lock().unwrap_or_else(PoisonError::into_inner);
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

    fn pool<T: Recycle>(pools: &Pools<T>) -> &Pool<Box<T>> {
        pools
            .object_pool
            .get_or_init(|| Pool::new(0, || Box::new(T::blank())))
    }

    pub fn checkout<T: Recycle>(pools: &Pools<T>) -> Box<T> {
        match pool(pools).try_pull() {
            Some(reusable) => reusable.detach().1,
            None => Box::new(T::blank()),
        }
    }

    pub fn give_back<T: Recycle>(pools: &Pools<T>, obj: Box<T>) {
        let pool = pool(pools);
        if pool.len() < OBJECT_POOL_CAPACITY {
            pool.attach(obj);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pooled object that remembers whether it was used.
    struct Probe(Vec<u8>);

    impl Recycle for Probe {
        fn blank() -> Self {
            Probe(Vec::new())
        }
        fn recycle(&mut self) {
            self.0.clear();
        }
        fn pools() -> &'static Pools<Self> {
            static POOLS: Pools<Probe> = Pools::new();
            &POOLS
        }
        fn magazine() -> &'static LocalKey<Magazine<Self>> {
            thread_local! {
                static LOCAL: Magazine<Probe> = const { RefCell::new(Vec::new()) };
            }
            &LOCAL
        }
    }

    impl Probe {
        fn is_blank(&self) -> bool {
            self.0.is_empty()
        }
        fn used(mut self: Box<Self>) -> Box<Self> {
            self.0.push(1);
            self
        }
    }

    #[test]
    fn every_kind_hands_out_blank_instructions_and_takes_them_back() {
        for kind in [PoolKind::Allocate, PoolKind::FreeList, PoolKind::ObjectPool] {
            for _ in 0..3 * MAGAZINE {
                let ins: Box<Probe> = checkout(kind);
                assert!(ins.is_blank(), "{kind:?} handed out a used object");
                give_back(kind, ins.used());
            }
        }
    }

    #[test]
    fn free_list_survives_checkout_on_one_thread_and_return_on_another() {
        let (tx, rx) = std::sync::mpsc::channel::<Box<Probe>>();
        let consumer = std::thread::spawn(move || {
            for ins in rx {
                give_back(PoolKind::FreeList, ins);
            }
        });
        for _ in 0..10 * MAGAZINE {
            let ins: Box<Probe> = checkout(PoolKind::FreeList);
            assert!(ins.is_blank());
            tx.send(ins.used()).unwrap();
        }
        drop(tx);
        consumer.join().unwrap();
        for _ in 0..2 * MAGAZINE {
            let ins: Box<Probe> = checkout(PoolKind::FreeList);
            assert!(ins.is_blank());
            give_back(PoolKind::FreeList, ins.used());
        }
    }
}
