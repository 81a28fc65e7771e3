// MADV_FREE (Linux mm/madvise.c: madvise_free_pte_range,
// mm/huge_memory.c: madvise_free_huge_pmd).
//
// Pages that only this process maps are marked lazily freeable: their
// entries become clean and old, the folio clean and no longer swap-backed,
// so reclaim could drop them without writing them out. The model has no
// reclaim, so the data stays; what changes is the state, and a THP only
// partly covered by the range is split into small folios first, as Linux
// does. Pages another process also maps are left alone.
#include <set>

#include "base/assert.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "mm/mmu_notifier.h"
#include "mm/rmap.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

// folio_mark_lazyfree()
void mark_lazyfree(Folio folio) {
  folio.head().clear(kPgDirty);
  folio.head().clear(kPgSwapBacked);
}

// A large folio only partly inside [start, end): its mapping here starts
// or ends outside the range.
bool partly_covered(Folio folio, Vaddr first_page, Vaddr start, Vaddr end) {
  Vaddr folio_start = first_page;
  Vaddr folio_end = folio_start + folio.nr_pages() * kPageSize;
  return folio_start < start || folio_end > end;
}

// Phase 1: exclusive THPs the range cuts, each with a reference.
std::vector<Folio> collect_folios_to_split(Vma& vma, Vaddr start, Vaddr end) {
  World& world = vma.mm().world();
  std::vector<Folio> out;
  std::set<uint64_t> seen;
  auto consider = [&](Pfn pfn, Vaddr addr) {
    Folio folio = pfn_folio(world.mem(), pfn);
    if (!folio.is_large() || folio_maybe_mapped_shared(folio)) return;
    Vaddr first = addr - ((pfn - folio.pfn()) << kPageShift);
    if (!partly_covered(folio, first, start, end) || !seen.insert(folio.pfn().v).second) return;
    folio_get(folio);
    out.push_back(folio);
  };
  auto huge = [&](PmdRef pmd, Vaddr from, Vaddr to) NO_THREAD_SAFETY_ANALYSIS {
    // The walk holds the PMD lock.
    Pmd entry = pmd.slot().entry;
    if (entry.kind() == PmdKind::kPresent && to - from != kPmdSize) consider(entry.pfn(), pmd.haddr);
    return HugeAction::kHandled;
  };
  walk_page_range(vma, start, end, huge, [&](PteTable& table, Vaddr from, Vaddr to)
                                             NO_THREAD_SAFETY_ANALYSIS {
    // The walk holds table.ptl.
    for (Vaddr a = from; a < to; a = a + kPageSize) {
      Pte pte = table.get(a.pte_index());
      if (pte.kind() == PteKind::kPresent) consider(pte.pfn(), a);
    }
  });
  return out;
}

// madvise_free_huge_pmd() for a PMD leaf wholly inside the range.
void free_huge_pmd(Vma& vma, PmdRef pmd) {
  Pmd entry = pmd.slot().entry;
  if (entry.kind() != PmdKind::kPresent) return;
  Folio folio = pfn_folio(vma.mm().world().mem(), entry.pfn());
  if (folio_maybe_mapped_shared(folio)) return;
  EntryBits bits = entry.bits();
  bits.dirty = false;
  bits.young = false;
  pmd.slot().entry = Pmd::present(entry.pfn(), bits);
  mark_lazyfree(folio);
}

// madvise_free_pte_range() for one table.
void free_ptes(World& world, PteTable& table, Vaddr from, Vaddr to) REQUIRES(table.ptl) {
  for (Vaddr a = from; a < to; a = a + kPageSize) {
    Pte pte = table.get(a.pte_index());
    if (pte.kind() != PteKind::kPresent) continue;
    Folio folio = pfn_folio(world.mem(), pte.pfn());
    if (folio_maybe_mapped_shared(folio)) continue;
    table.set(a.pte_index(), pte.with_dirty(false).with_young(false));
    mark_lazyfree(folio);
  }
}

}  // namespace

void madvise_free_range(Vma& vma, Vaddr start, Vaddr end) {
  World& world = vma.mm().world();
  // madvise_free_single_vma(): entries become clean and old, and THPs may
  // be split, under one MMU_NOTIFY_CLEAR of the range.
  MmuNotifierInvalidation inv(
      mmu_notifier_range_init(MmuNotifyEvent::kClear, vma.mm(), start, end));
  for (Folio folio : collect_folios_to_split(vma, start, end)) {
    if (folio_trylock(folio)) {
      (void)split_folio(world, folio);  // on failure the folio just stays whole
      folio_unlock(folio);
    }
    folio_put(folio);
  }
  auto huge = [&](PmdRef pmd, Vaddr from, Vaddr to) NO_THREAD_SAFETY_ANALYSIS {
    // The walk holds the PMD lock.
    if (to - from == kPmdSize) free_huge_pmd(vma, pmd);
    return HugeAction::kHandled;
  };
  walk_page_range(vma, start, end, huge, [&](PteTable& table, Vaddr from, Vaddr to)
                                             NO_THREAD_SAFETY_ANALYSIS {
    // The walk holds table.ptl.
    free_ptes(world, table, from, to);
  });
}

}  // namespace hmmsim
