// Splitting a PMD mapping into PTE mappings of the same folio (Linux
// mm/huge_memory.c: __split_huge_pmd_locked and its callers).
//
//   PMD leaf --------------------------------> PTE table, 512 entries
//   present THP, non-freeze:  512 present PTEs, refcount +511, mapcount
//                             1 -> 512 (entire 1 -> 0), AnonExclusive copied
//                             to every page
//   present THP, freeze:      512 migration PTEs, PMD rmap and its
//                             reference dropped (unless sharing the
//                             exclusive folio fails: then non-freeze)
//   migration PMD:            512 migration PTEs; no rmap change, but a
//                             freezing split still drops one reference
//   huge zero page:           512 zero-page PTEs
#include "base/assert.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "mm/mmu_notifier.h"
#include "mm/rmap.h"
#include "mm/vmstat.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

MigrationKind migration_kind_for(bool write, bool anon_exclusive) {
  if (write) return MigrationKind::kWrite;
  return anon_exclusive ? MigrationKind::kReadExclusive : MigrationKind::kRead;
}

// Fills `table` with the 512 PTEs a split of `old` produces.
void fill_split_ptes(PteTable& table, const Pmd& old, Freeze freeze, bool anon_exclusive)
    NO_THREAD_SAFETY_ANALYSIS {
  // The table was just withdrawn from the deposit: nobody else can see it
  // until the caller installs it under the PMD lock.
  for (unsigned i = 0; i < kPtrsPerTable; i++) {
    Pte pte;
    switch (old.kind()) {
      case PmdKind::kHugeZero:
        pte = Pte::zero_page();
        break;
      case PmdKind::kMigration:
        pte = Pte::migration(old.pfn() + i, old.migration_kind(), old.bits());
        break;
      case PmdKind::kPresent:
        pte = freeze == Freeze::kYes
                  ? Pte::migration(old.pfn() + i, migration_kind_for(old.write(), anon_exclusive),
                                   EntryBits{.dirty = old.dirty(), .young = old.young(),
                                             .soft_dirty = old.soft_dirty()})
                  : Pte::present(old.pfn() + i, old.bits());
        break;
      case PmdKind::kDevicePrivate:
        pte = freeze == Freeze::kYes
                  ? Pte::migration(old.pfn() + i, migration_kind_for(old.write(), anon_exclusive),
                                   EntryBits{.soft_dirty = old.soft_dirty()})
                  : Pte::device_private(old.pfn() + i, old.write(), old.soft_dirty());
        break;
      case PmdKind::kNone:
      case PmdKind::kTable:
        HMM_BUG("split of a {} PMD", pmd_kind_name(old.kind()));
    }
    table.set(i, pte);
  }
}

struct SplitRmap {
  Freeze freeze;
  bool anon_exclusive;
};

// The rmap and refcount side of splitting a PMD that maps `folio`.
SplitRmap split_folio_rmap(Vma& vma, Folio folio, Vaddr haddr, Freeze freeze) {
  bool anon_exclusive = PageAnonExclusive(folio.head());
  if (freeze == Freeze::kYes && anon_exclusive && !folio_try_share_anon_rmap_pmd(folio).ok()) {
    freeze = Freeze::kNo;  // a later try_to_migrate_one will fail instead
  }
  if (freeze == Freeze::kNo) {
    folio_ref_add(folio, kHPageNr - 1);
    folio_add_anon_rmap_ptes(folio, 0, kHPageNr, vma, haddr,
                             anon_exclusive ? RmapFlags::kExclusive : RmapFlags::kNone);
  }
  return SplitRmap{freeze, anon_exclusive};
}

}  // namespace

void __split_huge_pmd_locked(Vma& vma, PmdRef pmd, Freeze freeze) {
  World& world = vma.mm().world();
  PmdSlot& slot = pmd.slot();
  Pmd old = slot.entry;
  HMM_ASSERT(old.is_huge(), "split of a {} PMD at {:#x}", pmd_kind_name(old.kind()),
             pmd.haddr.v);
  HMM_ASSERT(slot.deposit != nullptr, "PMD leaf at {:#x} without deposit", pmd.haddr.v);
  HMM_ASSERT(pmd.haddr >= vma.start() && pmd.haddr + kPmdSize <= vma.end(),
             "PMD at {:#x} not inside its Vma", pmd.haddr.v);
  world.stats().count(VmEvent::kThpSplitPmd);
  std::unique_ptr<PteTable> table = std::move(slot.deposit);
  bool anon_exclusive = false;
  Folio folio;
  if (old.maps_folio()) {
    folio = pfn_folio(world.mem(), old.pfn());
    // A dirty PMD hands its dirtiness to the folio before it goes away.
    if (old.kind() == PmdKind::kPresent && old.dirty()) folio.head().set(kPgDirty);
    SplitRmap r = split_folio_rmap(vma, folio, pmd.haddr, freeze);
    freeze = r.freeze;
    anon_exclusive = r.anon_exclusive;
  } else if (old.kind() == PmdKind::kMigration) {
    folio = pfn_folio(world.mem(), old.pfn());
  }
  fill_split_ptes(*table, old, freeze, anon_exclusive);
  slot.entry = Pmd::table();
  slot.table = std::move(table);
  if (old.maps_folio()) folio_remove_rmap_pmd(folio, vma);
  // A freezing split drops the PMD's reference: the mapping's when there
  // was one, and (a Linux quirk kept on purpose) one more on a migration
  // PMD, whose holder is the migrating thread.
  if (folio && freeze == Freeze::kYes) folio_put(folio);
}

void __split_huge_pmd(Vma& vma, PmdRef pmd, Freeze freeze) {
  // The secondary MMUs drop the 2 MiB first: MMU_NOTIFY_CLEAR, whether or
  // not a leaf is still there once the lock is taken.
  MmuNotifierInvalidation inv(mmu_notifier_range_init(MmuNotifyEvent::kClear, vma.mm(), pmd.haddr,
                                                      pmd.haddr + kPmdSize));
  MutexLock guard(pmd.table->ptl);
  if (pmd.slot().entry.is_huge()) __split_huge_pmd_locked(vma, pmd, freeze);
}

void split_huge_pmd(Vma& vma, PmdRef pmd, Freeze freeze) {
  bool huge = false;
  {
    MutexLock guard(pmd.table->ptl);
    huge = pmd.slot().entry.is_huge();
  }
  if (huge) __split_huge_pmd(vma, pmd, freeze);
}

void split_huge_pmd_address(Vma& vma, Vaddr addr, Freeze freeze) {
  PmdTable* table = vma.mm().pmd_table(addr, MmStruct::Alloc::kNo);  // mm_find_pmd
  if (!table) return;
  __split_huge_pmd(vma, PmdRef{table, addr.pmd_index(), addr.pmd_down()}, freeze);
}

void vma_adjust_trans_huge(Vma& vma, Vaddr addr) {
  if (addr.pmd_aligned()) return;
  Vaddr haddr = addr.pmd_down();
  if (haddr >= vma.start() && haddr + kPmdSize <= vma.end()) {
    split_huge_pmd_address(vma, addr, Freeze::kNo);
  }
}

}  // namespace hmmsim
