//! Instruction objects from the pool of [`PoolKind`], typed (the seam in
//! `imp::pool` is generic and cannot name an instruction).

use super::Instruction;
use crate::imp::PoolKind;
use crate::imp::pool as seam;

/// Takes a blank instruction from the pool of `kind`.
#[inline]
pub fn checkout(kind: PoolKind) -> Box<Instruction> {
    seam::checkout(kind)
}

/// Returns an instruction to the pool of `kind`, clearing it in place.
#[inline]
pub fn give_back(kind: PoolKind, ins: Box<Instruction>) {
    seam::give_back(kind, ins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_hands_out_blank_instructions() {
        for kind in [PoolKind::Allocate, PoolKind::FreeList, PoolKind::ObjectPool] {
            for _ in 0..3 * crate::imp::pool::MAGAZINE {
                let ins = checkout(kind);
                assert!(ins.is_blank(), "{kind:?} handed out a used instruction");
                give_back(kind, ins);
            }
        }
    }
}
