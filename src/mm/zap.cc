// Unmapping and page-table teardown (Linux mm/memory.c: zap_pte_range,
// unmap_page_range, unmap_single_vma, unmap_vmas, zap_page_range_single;
// mm/memory.c free_pgtables).
//
// unmap_single_vma() removes the entries; its two callers tell the mmu
// notifiers first: unmap_vmas() (munmap, exit) once for the whole range
// with MMU_NOTIFY_UNMAP, zap_page_range() (MADV_DONTNEED) per Vma with
// MMU_NOTIFY_CLEAR.
#include <algorithm>

#include "base/assert.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "mm/mmu_notifier.h"
#include "mm/rmap.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

// zap_present_pte / zap_nonpresent_ptes for one entry.
void zap_one_pte(World& world, Vma& vma, const Pte& pte) {
  switch (pte.kind()) {
    case PteKind::kNone:
    case PteKind::kZero:
      return;
    case PteKind::kMigration:
      // The migrating thread keeps its own reference; only rss moves.
      vma.mm().add_anon_rss(-1);
      return;
    case PteKind::kPresent:
    case PteKind::kDevicePrivate:
    case PteKind::kDeviceExclusive: {
      Folio folio = pte_folio(world, pte);
      uint64_t idx = pte.pfn() - folio.pfn();
      if (pte.kind() == PteKind::kPresent && pte.dirty()) folio.head().set(kPgDirty);
      folio_remove_rmap_ptes(folio, idx, 1, vma);
      vma.mm().add_anon_rss(-1);
      folio_put(folio);
      return;
    }
  }
}

}  // namespace

void unmap_single_vma(Vma& vma, Vaddr start, Vaddr end) {
  HMM_ASSERT(start >= vma.start() && end <= vma.end() && start < end,
             "zap [{:#x}, {:#x}) outside Vma [{:#x}, {:#x})", start.v, end.v, vma.start().v,
             vma.end().v);
  World& world = vma.mm().world();
  // zap_pmd_range(): a whole PMD leaf goes at once, a partial one is split.
  auto huge = [&](PmdRef pmd, Vaddr from, Vaddr to) NO_THREAD_SAFETY_ANALYSIS {
    // The walk holds the PMD lock.
    if (to - from != kPmdSize) return HugeAction::kSplit;
    zap_huge_pmd(vma, pmd);
    return HugeAction::kHandled;
  };
  walk_page_range(vma, start, end, huge, [&](PteTable& table, Vaddr from, Vaddr to)
                                            NO_THREAD_SAFETY_ANALYSIS {
    // walk_page_range holds table.ptl.
    for (Vaddr a = from; a < to; a = a + kPageSize) {
      Pte pte = table.get(a.pte_index());
      if (pte.is_none()) continue;
      table.set(a.pte_index(), Pte::none());
      zap_one_pte(world, vma, pte);
    }
  });
}

void unmap_vmas(MmStruct& mm, std::span<Vma* const> vmas, Vaddr start, Vaddr end) {
  MmuNotifierInvalidation inv(mmu_notifier_range_init(MmuNotifyEvent::kUnmap, mm, start, end));
  for (Vma* vma : vmas) {
    unmap_single_vma(*vma, std::max(start, vma->start()), std::min(end, vma->end()));
  }
}

void zap_page_range(Vma& vma, Vaddr start, Vaddr end) {
  MmuNotifierInvalidation inv(
      mmu_notifier_range_init(MmuNotifyEvent::kClear, vma.mm(), start, end));
  unmap_single_vma(vma, start, end);
}


void free_pgtables(MmStruct& mm, Vaddr start, Vaddr end) {
  for (auto [base, pmdt] : mm.pmd_tables_in(start, end)) {
    for (unsigned i = 0; i < kPtrsPerTable; i++) {
      Vaddr pmd = base + uint64_t{i} * kPmdSize;
      if (pmd + kPmdSize <= start || pmd >= end) continue;
      // A PTE table may go only when no Vma overlaps its 2 MiB any more.
      Vma* vma = mm.find_vma(pmd);
      if (vma && vma->start() < pmd + kPmdSize) continue;
      MutexLock guard(pmdt->ptl);
      PmdSlot& slot = pmdt->slot(i);
      if (!slot.entry.is_table()) continue;
      HMM_ASSERT(slot.table->empty(), "freeing a non-empty PTE table at {:#x}", pmd.v);
      slot.table.reset();
      slot.entry = Pmd::none();
      mm.add_nr_ptes(-1);
    }
  }
  mm.free_empty_upper_tables();
}

}  // namespace hmmsim
