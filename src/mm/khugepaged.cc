// MADV_COLLAPSE: synchronous collapse of PMD ranges of small pages into
// THPs (Linux mm/khugepaged.c: madvise_collapse, hpage_collapse_scan_pmd,
// collapse_huge_page).
//
// For each PMD-aligned 2 MiB range of the advised range, with the PTE table
// detached from its PMD so that nothing can fault in meanwhile:
//   scan     every present page must be anonymous, unlocked, on the LRU and
//            referenced only by its mappings; at least one PTE writable;
//   isolate  lock each folio and take it off the LRU;
//   copy     a new order-9 folio gets every page's bytes (zeros for none or
//            zero-page entries); the old mappings are removed;
//   install  the new folio is mapped by the PMD, the old PTE table becomes
//            its deposit.
// A failure puts the table back untouched.
#include <set>

#include "base/assert.h"
#include "mm/deferred_split.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "mm/mmu_notifier.h"
#include "mm/rmap.h"
#include "mm/vmstat.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

// enum scan_result, the values MADV_COLLAPSE can meet here.
enum class Scan : uint8_t {
  kSucceed,
  kPmdMapped,           // already a THP
  kPmdNull,             // no page table, or a non-present PMD
  kPmdNone,             // an empty PMD
  kPteNonPresent,       // a migration (or other non-present) entry
  kPageRo,              // no writable PTE
  kPageLock,            // a folio is locked
  kPageLru,             // a folio is not on the LRU
  kPageCount,           // unexplained references
  kAllocHugePageFail,   // no order-9 block
};

// Whether madvise_collapse() goes on to the next range after this result.
bool continue_after(Scan r) {
  switch (r) {
    case Scan::kPmdNull:
    case Scan::kPteNonPresent:
    case Scan::kPageRo:
    case Scan::kPageLock:
    case Scan::kPageLru:
    case Scan::kPageCount:
      return true;
    default:
      return false;
  }
}

// madvise_collapse_errno()
Errno collapse_errno(Scan r) {
  switch (r) {
    case Scan::kAllocHugePageFail: return Errno::kNoMem;
    case Scan::kPageCount:
    case Scan::kPageLock:
    case Scan::kPageLru:
      return Errno::kAgain;
    default:
      return Errno::kInval;
  }
}

// The checks of hpage_collapse_scan_pmd() for one table.
Scan scan_ptes(World& world, const PteTable& table) REQUIRES(table.ptl) {
  bool writable = false;
  for (unsigned i = 0; i < kPtrsPerTable; i++) {
    Pte pte = table.get(i);
    if (pte.is_none() || pte.kind() == PteKind::kZero) continue;
    if (pte.kind() != PteKind::kPresent) return Scan::kPteNonPresent;
    Folio folio = pfn_folio(world.mem(), pte.pfn());
    if (folio_test_locked(folio)) return Scan::kPageLock;
    if (!folio.test(kPgLru)) return Scan::kPageLru;
    if (folio_ref_count(folio) != folio_expected_ref_count(folio)) return Scan::kPageCount;
    writable |= pte.write();
  }
  return writable ? Scan::kSucceed : Scan::kPageRo;
}

struct Isolation {
  Scan result = Scan::kSucceed;
  std::vector<Folio> folios;  // locked, off the LRU, referenced
};

// __collapse_huge_page_isolate(): lock and isolate every distinct folio.
Isolation isolate_folios(World& world, const PteTable& table) REQUIRES(table.ptl) {
  Isolation out;
  std::set<uint64_t> seen;
  for (unsigned i = 0; i < kPtrsPerTable; i++) {
    Pte pte = table.get(i);
    if (pte.kind() != PteKind::kPresent) continue;
    Folio folio = pfn_folio(world.mem(), pte.pfn());
    if (!seen.insert(folio.pfn().v).second) continue;
    if (!folio_trylock(folio)) {
      out.result = Scan::kPageLock;
      return out;
    }
    if (!folio.test(kPgLru)) {
      folio_unlock(folio);
      out.result = Scan::kPageLru;
      return out;
    }
    folio.head().clear(kPgLru);
    folio_get(folio);
    out.folios.push_back(folio);
  }
  return out;
}

void release_isolated(const std::vector<Folio>& isolated) {
  for (Folio folio : isolated) {
    folio.head().set(kPgLru);
    folio_unlock(folio);
    folio_put(folio);
  }
}

// __collapse_huge_page_copy(): copy into `thp`, drop the old mappings.
void copy_and_unmap(Vma& vma, PteTable& table, Folio thp) REQUIRES(table.ptl) {
  World& world = vma.mm().world();
  for (unsigned i = 0; i < kPtrsPerTable; i++) {
    Pte pte = table.get(i);
    if (pte.kind() != PteKind::kPresent) {
      table.set(i, Pte::none());
      vma.mm().add_anon_rss(1);  // the THP maps this page now
      continue;
    }
    Folio folio = pfn_folio(world.mem(), pte.pfn());
    page_copy(thp.page(i), world.mem().page(pte.pfn()));
    table.set(i, Pte::none());
    folio_remove_rmap_ptes(folio, pte.pfn() - folio.pfn(), 1, vma);
    folio_put(folio);
  }
}

// collapse_huge_page() for the range at `pmd`, whose table is detached.
Scan collapse_detached(Vma& vma, PteTable& table, Folio thp) {
  World& world = vma.mm().world();
  MutexLock guard(table.ptl);
  Scan r = scan_ptes(world, table);
  if (r != Scan::kSucceed) return r;
  Isolation iso = isolate_folios(world, table);
  if (iso.result == Scan::kSucceed) copy_and_unmap(vma, table, thp);
  release_isolated(iso.folios);
  return iso.result;
}

Scan collapse_one(Vma& vma, Vaddr haddr) NO_THREAD_SAFETY_ANALYSIS {
  // The PMD lock is taken and dropped around the detached table, which
  // nobody else can reach meanwhile (mmap_lock is held for write).
  World& world = vma.mm().world();
  PmdTable* pmdt = vma.mm().pmd_table(haddr, MmStruct::Alloc::kNo);
  if (!pmdt) return Scan::kPmdNull;
  PmdRef pmd{pmdt, haddr.pmd_index(), haddr};
  std::unique_ptr<PteTable> table;
  {
    MutexLock guard(pmdt->ptl);
    Pmd entry = pmd.slot().entry;
    if (entry.kind() == PmdKind::kPresent || entry.kind() == PmdKind::kHugeZero)
      return Scan::kPmdMapped;
    if (entry.is_none()) return Scan::kPmdNone;
    if (!entry.is_table()) return Scan::kPmdNull;
    MutexLock ptl(pmd.slot().table->ptl);
    Scan pre = scan_ptes(world, *pmd.slot().table);
    if (pre != Scan::kSucceed) return pre;
  }
  std::optional<Folio> thp = folio_alloc(world.mem(), Order{kHPageOrder});
  if (!thp) return Scan::kAllocHugePageFail;
  world.stats().count(VmEvent::kThpCollapseAlloc);
  anon_vma_lock_write(vma.anon_vma());
  {
    // The PTE mappings go away: MMU_NOTIFY_CLEAR of the 2 MiB, around the
    // detach only (collapse_huge_page).
    MmuNotifierInvalidation inv(mmu_notifier_range_init(MmuNotifyEvent::kClear, vma.mm(), haddr,
                                                        haddr + kPmdSize));
    pmdt->ptl.lock();
    table = std::move(pmd.slot().table);  // pmdp_collapse_flush
    pmd.slot().entry = Pmd::none();
    pmdt->ptl.unlock();
  }
  Scan r = collapse_detached(vma, *table, *thp);
  pmdt->ptl.lock();
  if (r == Scan::kSucceed) {
    folio_add_new_anon_rmap(*thp, vma, haddr, RmapFlags::kExclusive);
    thp->head().set(kPgLru);
    bool write = vma.has(kVmWrite);
    pmd.slot().entry = Pmd::present(thp->pfn(), EntryBits{.write = write, .dirty = true,
                                                          .young = true});
    pmd.slot().deposit = std::move(table);  // the old table is the deposit now
    world.mem().deferred_split().add(*thp, false);
  } else {
    pmd.slot().entry = Pmd::table();
    pmd.slot().table = std::move(table);
  }
  pmdt->ptl.unlock();
  anon_vma_unlock_write(vma.anon_vma());
  if (r != Scan::kSucceed) folio_put(*thp);
  return r;
}

// madvise_collapse() for one Vma piece.
Status collapse_vma_range(Vma& vma, Vaddr start, Vaddr end) {
  if (vma.has(kVmNoHugepage)) return Err{Errno::kInval};
  Vaddr hstart = start.pmd_up();
  Vaddr hend = end.pmd_down();
  uint64_t thps = 0;
  uint64_t total = hend > hstart ? (hend - hstart) / kPmdSize : 0;
  Scan last_fail = Scan::kSucceed;
  for (Vaddr addr = hstart; addr < hend; addr = addr + kPmdSize) {
    Scan r = collapse_one(vma, addr);
    if (r == Scan::kSucceed || r == Scan::kPmdMapped) {
      thps++;
      continue;
    }
    last_fail = r;
    if (!continue_after(r)) break;
  }
  if (thps == total) return Ok();
  return Err{collapse_errno(last_fail)};
}

}  // namespace

Status madvise_collapse(MmStruct& mm, Vaddr start, Vaddr end) {
  WriteLock guard(mm.mmap_lock);
  bool hole = false;
  Vaddr cur = start;
  while (cur < end) {
    Vma* vma = mm.find_vma(cur);
    if (!vma || vma->start() >= end) {
      hole = true;
      break;
    }
    if (vma->start() > cur) hole = true;
    Vaddr from = vma->start() > cur ? vma->start() : cur;
    Vaddr to = vma->end() < end ? vma->end() : end;
    HMM_TRY(collapse_vma_range(*vma, from, to));
    cur = to;
  }
  return hole ? Status(Err{Errno::kNoMem}) : Ok();
}

}  // namespace hmmsim
