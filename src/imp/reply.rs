//! Where reply slots come from: a fresh `Arc` per request (plain), or a small
//! per-thread stack of slots per slot type (`pooling`). The caller re-arms a
//! slot with a new ticket on reuse, so a late answer to an abandoned request
//! can never be mistaken for the next one. Generic over the slot type (any
//! `Default` one), so this seam names nothing of the crate above it.

use super::PoolKind;
use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// Slots kept per slot type per thread (nested calls need one each).
const SLOTS_PER_TYPE: usize = 8;

type Stacks = HashMap<TypeId, Box<dyn Any>, foldhash::fast::FixedState>;

thread_local! {
    static STACKS: RefCell<Stacks> = RefCell::new(HashMap::with_hasher(foldhash::fast::FixedState::default()));
}

/// A reply slot for one request.
#[inline]
pub fn lease<Slot: Default + 'static>(kind: PoolKind) -> Arc<Slot> {
    if kind != PoolKind::Allocate {
        let pooled = STACKS
            .try_with(|stacks| {
                let mut stacks = stacks.try_borrow_mut().ok()?;
                stacks
                    .get_mut(&TypeId::of::<Slot>())?
                    .downcast_mut::<Vec<Arc<Slot>>>()?
                    .pop()
            })
            .ok()
            .flatten();
        if let Some(slot) = pooled {
            return slot;
        }
    }
    Arc::new(Slot::default())
}

/// Hands a slot back once its request is over.
#[inline]
pub fn release<Slot: 'static>(kind: PoolKind, slot: Arc<Slot>) {
    if kind == PoolKind::Allocate {
        return;
    }
    let _ = STACKS.try_with(|stacks| {
        if let Ok(mut stacks) = stacks.try_borrow_mut() {
            let stack = stacks
                .entry(TypeId::of::<Slot>())
                .or_insert_with(|| Box::new(Vec::<Arc<Slot>>::with_capacity(SLOTS_PER_TYPE)));
            if let Some(stack) = stack.downcast_mut::<Vec<Arc<Slot>>>()
                && stack.len() < SLOTS_PER_TYPE
            {
                stack.push(slot);
            }
        }
    });
}
