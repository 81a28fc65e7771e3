// Walking the page tables of a range (Linux mm/pagewalk.c, and the
// pmd_range/pte_range loops of zap, mprotect and friends).
#include "base/assert.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

// The start of the next PUD range after `addr`, capped at `end`.
Vaddr next_pud(Vaddr addr, Vaddr end) {
  Vaddr next{(addr.v & ~(kPudSize - 1)) + kPudSize};
  return next > end ? end : next;
}

// Handles the PMD slot of [addr, next): a leaf goes to `huge` or is split;
// returns the PTE table to walk, if any.
PteTable* walk_pmd(Vma& vma, PmdTable& pmdt, Vaddr addr, Vaddr next, const HugePmdFn& huge) {
  PmdRef pmd{&pmdt, addr.pmd_index(), addr.pmd_down()};
  {
    MutexLock guard(pmdt.ptl);
    PmdSlot& slot = pmd.slot();
    if (!slot.entry.is_huge()) return slot.entry.is_table() ? slot.table.get() : nullptr;
    if (huge && huge(pmd, addr, next) == HugeAction::kHandled) return nullptr;
    if (!slot.entry.is_huge()) return slot.table.get();  // the callback split it
  }
  // __split_huge_pmd() tells the mmu notifiers, which it may not do under
  // the PMD lock: drop it, and look at the slot again afterwards, as the
  // zap and mprotect loops do.
  __split_huge_pmd(vma, pmd, Freeze::kNo);
  MutexLock guard(pmdt.ptl);
  PmdSlot& slot = pmd.slot();
  return slot.entry.is_table() ? slot.table.get() : nullptr;
}

}  // namespace

void walk_page_range(Vma& vma, Vaddr start, Vaddr end, const HugePmdFn& huge,
                     const PteRangeFn& ptes) {
  MmStruct& mm = vma.mm();
  Vaddr addr = start;
  while (addr < end) {
    PmdTable* pmdt = mm.pmd_table(addr, MmStruct::Alloc::kNo);
    if (!pmdt) {
      addr = next_pud(addr, end);
      continue;
    }
    Vaddr next = addr.pmd_down() + kPmdSize;
    if (next > end || next < addr) next = end;
    if (PteTable* table = walk_pmd(vma, *pmdt, addr, next, huge)) {
      MutexLock guard(table->ptl);
      ptes(*table, addr, next);
    }
    addr = next;
  }
}

}  // namespace hmmsim
