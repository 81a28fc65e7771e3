// mprotect (Linux mm/mprotect.c): change the protection of whole Vmas,
// splitting them at the range edges, and rewrite their entries.
#include "base/assert.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "mm/mm.h"
#include "mm/mmu_notifier.h"
#include "mm/rmap.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

// can_change_pte_writable() for private anonymous memory: only a page this
// process owns exclusively may become writable without a fault.
bool can_change_pte_writable(World& world, const Pte& pte) {
  if (pte.kind() != PteKind::kPresent) return false;
  return PageAnonExclusive(world.mem().page(pte.pfn()));
}

// change_pte_range() for one entry.
Pte change_one_pte(World& world, const Pte& pte, uint32_t newflags) {
  bool want_write = (newflags & kVmWrite) != 0;
  switch (pte.kind()) {
    case PteKind::kNone:
    case PteKind::kZero:
    case PteKind::kDeviceExclusive:
      return pte;
    case PteKind::kPresent:
      if (!want_write) return pte.with_write(false);
      return can_change_pte_writable(world, pte) ? pte.with_write(true) : pte;
    case PteKind::kMigration: {
      // A writable migration entry becomes readable whatever the new
      // protection: the restore will decide writability again.
      if (pte.migration_kind() != MigrationKind::kWrite) return pte;
      Folio folio = pte_folio(world, pte);
      MigrationKind mk =
          folio_test_anon(folio) ? MigrationKind::kReadExclusive : MigrationKind::kRead;
      return Pte::migration(pte.pfn(), mk, pte.bits());
    }
    case PteKind::kDevicePrivate:
      return pte.write() ? pte.with_write(false) : pte;
  }
  return pte;
}

// change_pmd_range() and the levels below it, over [start, end) of `vma`.
void change_pmd_range(Vma& vma, Vaddr start, Vaddr end, uint32_t newflags) {
  World& world = vma.mm().world();
  // change_pmd_range(): a whole PMD leaf changes in place, a partial one is
  // split first.
  auto huge = [&](PmdRef pmd, Vaddr from, Vaddr to) NO_THREAD_SAFETY_ANALYSIS {
    // The walk holds the PMD lock.
    if (to - from != kPmdSize) return HugeAction::kSplit;
    change_huge_pmd(vma, pmd, newflags);
    return HugeAction::kHandled;
  };
  walk_page_range(vma, start, end, huge, [&](PteTable& table, Vaddr from, Vaddr to)
                                             NO_THREAD_SAFETY_ANALYSIS {
    // walk_page_range holds table.ptl.
    for (Vaddr a = from; a < to; a = a + kPageSize) {
      Pte pte = table.get(a.pte_index());
      Pte changed = change_one_pte(world, pte, newflags);
      if (!(changed == pte)) table.set(a.pte_index(), changed);
    }
  });
}

// pud_addr_end() / pgd_addr_end(): the next `size` boundary after `addr`,
// capped at `end`.
Vaddr table_addr_end(Vaddr addr, Vaddr end, uint64_t size) {
  Vaddr next{(addr.v & ~(size - 1)) + size};
  return next.v - 1 < end.v - 1 ? next : end;
}

// change_pud_range() for the part of a Vma under one PGD entry: the
// invalidation (MMU_NOTIFY_PROTECTION_VMA) starts at the first populated
// PUD entry and covers the rest of the part; with nothing populated,
// nobody is told.
void change_pud_range(Vma& vma, Vaddr start, Vaddr end, uint32_t newflags) {
  MmStruct& mm = vma.mm();
  Vaddr addr = start;
  while (addr < end && !mm.pmd_table(addr, MmStruct::Alloc::kNo))
    addr = table_addr_end(addr, end, kPudSize);
  if (addr >= end) return;
  MmuNotifierInvalidation inv(
      mmu_notifier_range_init(MmuNotifyEvent::kProtectionVma, mm, addr, end));
  change_pmd_range(vma, addr, end, newflags);
}

// change_protection() over one Vma's range (change_protection_range's
// loop over PGD entries).
void change_protection(Vma& vma, uint32_t newflags) {
  for (Vaddr addr = vma.start(); addr < vma.end();) {
    Vaddr next = table_addr_end(addr, vma.end(), kPgdSize);
    change_pud_range(vma, addr, next, newflags);
    addr = next;
  }
}

// Where the run of Vmas that starts at `start` ends: the first hole, or
// `end`. do_mprotect_pkey() changes the Vmas up to there before it notices
// the hole.
Vaddr mapped_prefix_end(MmStruct& mm, Vaddr start, Vaddr end) REQUIRES(mm.mmap_lock) {
  Vaddr addr = start;
  while (addr < end) {
    Vma* vma = mm.vma_lookup(addr);
    if (!vma) return addr;
    addr = vma->end();
  }
  return end;
}

}  // namespace

Status do_mprotect(MmStruct& mm, Vaddr addr, uint64_t len, uint32_t prot) {
  // do_mprotect_pkey() checks, in its order: alignment, empty range,
  // wrap-around, then the protection bits.
  if (!addr.page_aligned()) return Err{Errno::kInval};
  if (len == 0) return Ok();
  uint64_t size = page_align_up(len);
  if (size < len || addr.v + size <= addr.v) return Err{Errno::kNoMem};
  if (prot & ~(kProtRead | kProtWrite | kProtExec)) return Err{Errno::kInval};
  if (addr.v > kUserMax || size > kUserMax - addr.v) return Err{Errno::kNoMem};  // unmapped
  Vaddr end = addr + size;
  WriteLock guard(mm.mmap_lock);
  if (!mm.vma_lookup(addr)) return Err{Errno::kNoMem};
  // Linux changes the Vmas up to the first hole, then reports it.
  Vaddr done = mapped_prefix_end(mm, addr, end);
  vma_split_range(mm, addr, done);
  std::vector<Vma*> vmas;
  for (Vma* vma = mm.find_vma(addr); vma && vma->start() < done; vma = mm.find_vma(vma->end()))
    vmas.push_back(vma);
  for (Vma* vma : vmas) {
    uint32_t newflags = (vma->flags() & ~kVmAccessFlags);
    if (prot & kProtRead) newflags |= kVmRead;
    if (prot & kProtWrite) newflags |= kVmWrite;
    if (prot & kProtExec) newflags |= kVmExec;
    // mprotect_fixup(): nothing to do, not even to the entries, when the
    // flags do not change.
    if (newflags == vma->flags()) continue;
    vma->set_flags(newflags);
    change_protection(*vma, newflags);
  }
  // Merging frees Vmas, so walk by address rather than through `vmas`.
  for (Vaddr cur = addr; cur < done;) cur = vma_merge_neighbours(mm, *mm.vma_lookup(cur))->end();
  return done < end ? Status(Err{Errno::kNoMem}) : Ok();
}

}  // namespace hmmsim
