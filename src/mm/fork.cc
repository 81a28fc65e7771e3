// fork and exit of an address space (Linux kernel/fork.c dup_mmap,
// mm/memory.c copy_page_range, mm/mmap.c exit_mmap).
#include "base/assert.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "mm/mm.h"
#include "mm/mmu_notifier.h"
#include "mm/rmap.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

// copy_present_pte(): share the page, write-protecting both sides of a COW
// mapping. Returns the child's entry; may rewrite the parent's.
Pte copy_present_pte(World& world, Vma& src_vma, Vma& dst_vma, Pte& src) {
  Folio folio = pte_folio(world, src);
  uint64_t idx = src.pfn() - folio.pfn();
  folio_get(folio);
  Status dup = folio_try_dup_anon_rmap_ptes(folio, idx, 1, dst_vma);
  HMM_ASSERT(dup.ok(), "dup of an unpinned page cannot fail");
  dst_vma.mm().add_anon_rss(1);
  if (src_vma.is_cow_mapping() && src.write()) src = src.with_write(false);
  return src.with_young(false);
}

// copy_nonpresent_pte() for migration entries: both sides get a read entry.
Pte copy_migration_pte(Vma& src_vma, MmStruct& dst_mm, Pte& src) {
  if (src.migration_kind() != MigrationKind::kRead && src_vma.is_cow_mapping()) {
    src = Pte::migration(src.pfn(), MigrationKind::kRead, src.bits());
  }
  dst_mm.add_anon_rss(1);
  return src;
}

// copy_nonpresent_pte() for a device-private entry: a mapping like any
// other; a writable one of a COW mapping becomes read-only on both sides.
Pte copy_device_private_pte(World& world, Vma& src_vma, Vma& dst_vma, Pte& src) {
  Folio folio = pte_folio(world, src);
  folio_get(folio);
  Status dup = folio_try_dup_anon_rmap_ptes(folio, src.pfn() - folio.pfn(), 1, dst_vma);
  HMM_ASSERT(dup.ok(), "device-private folios cannot be pinned");
  dst_vma.mm().add_anon_rss(1);
  if (src.write() && src_vma.is_cow_mapping()) src = src.with_write(false);
  return src;
}

Pte copy_one_pte(World& world, Vma& src_vma, Vma& dst_vma, Pte& src) {
  switch (src.kind()) {
    case PteKind::kNone:
    case PteKind::kZero:
      return src;
    case PteKind::kPresent:
      return copy_present_pte(world, src_vma, dst_vma, src);
    case PteKind::kMigration:
      return copy_migration_pte(src_vma, dst_vma.mm(), src);
    case PteKind::kDevicePrivate:
      return copy_device_private_pte(world, src_vma, dst_vma, src);
    case PteKind::kDeviceExclusive:
      HMM_BUG("device-exclusive entry left for the copy (restore_exclusive_ptes missed it)");
  }
  return Pte::none();
}

// copy_nonpresent_pte() for device-exclusive entries: the parent gets its
// present PTE back (try_restore_exclusive_pte) and the copy then treats it
// as present. Linux retries with -EBUSY when the folio lock is taken; the
// model waits for it before taking the page-table locks. No invalidation:
// copy_page_range() has started one over the Vma.
void restore_exclusive_ptes(Vma& src_vma, PteTable& table, Vaddr addr, Vaddr end) {
  World& world = src_vma.mm().world();
  for (Vaddr a = addr; a < end; a = a + kPageSize) {
    Pte pte;
    Folio folio;
    {
      MutexLock guard(table.ptl);
      pte = table.get(a.pte_index());
      if (pte.kind() != PteKind::kDeviceExclusive) continue;
      folio = pte_folio(world, pte);
      folio_get(folio);
    }
    folio_lock(folio);
    {
      MutexLock guard(table.ptl);
      if (table.get(a.pte_index()) == pte) {
        table.set(a.pte_index(), restore_exclusive_pte(src_vma, pte));
      }
    }
    folio_unlock(folio);
    folio_put(folio);
  }
}

// copy_pte_range(): one PTE table's worth of [addr, end).
void copy_pte_range(Vma& dst_vma, Vma& src_vma, Vaddr addr, Vaddr end) NO_THREAD_SAFETY_ANALYSIS {
  // Both PTLs are held below, the child's first like Linux's copy_pte_range
  // (the child is not yet visible to anyone).
  World& world = src_vma.mm().world();
  PteTable* src_table = pte_table_lookup(src_vma.mm(), addr, MmStruct::Alloc::kNo);
  if (!src_table) return;
  restore_exclusive_ptes(src_vma, *src_table, addr, end);
  PteTable* dst_table = pte_table_lookup(dst_vma.mm(), addr, MmStruct::Alloc::kYes);
  HMM_ASSERT(dst_table, "child PMD at {:#x} is not a table", addr.v);
  MutexLock dst_guard(dst_table->ptl);
  MutexLock src_guard(src_table->ptl);
  for (Vaddr a = addr; a < end; a = a + kPageSize) {
    Pte src = src_table->get(a.pte_index());
    if (src.is_none()) continue;
    Pte child = copy_one_pte(world, src_vma, dst_vma, src);
    src_table->set(a.pte_index(), src);
    dst_table->set(a.pte_index(), child);
  }
}

// copy_pmd_range() for one PMD: a huge leaf is copied whole
// (copy_huge_pmd); returns false when the slot holds a table or nothing.
bool copy_huge_pmd_range(Vma& dst_vma, Vma& src_vma, Vaddr addr) NO_THREAD_SAFETY_ANALYSIS {
  PmdTable* src_pmdt = src_vma.mm().pmd_table(addr, MmStruct::Alloc::kNo);
  if (!src_pmdt) return false;
  {
    MutexLock guard(src_pmdt->ptl);
    if (!src_pmdt->slot(addr.pmd_index()).entry.is_huge()) return false;
  }
  // The source cannot change while the parent's mmap_lock is held for
  // write, so the check above stays true.
  PmdTable* dst_pmdt = dst_vma.mm().pmd_table(addr, MmStruct::Alloc::kYes);
  PmdRef dst{dst_pmdt, addr.pmd_index(), addr.pmd_down()};
  PmdRef src{src_pmdt, addr.pmd_index(), addr.pmd_down()};
  MutexLock dst_guard(dst_pmdt->ptl);
  MutexLock src_guard(src_pmdt->ptl);
  copy_huge_pmd(dst_vma, src_vma, dst, src);
  return true;
}

// copy_page_range() for one Vma. A COW mapping write-protects the
// parent's entries, so the parent's secondary MMUs hear of it first
// (MMU_NOTIFY_PROTECTION_PAGE over the whole source Vma).
void copy_page_range(Vma& dst_vma, Vma& src_vma) {
  std::optional<MmuNotifierInvalidation> inv;
  if (src_vma.is_cow_mapping()) {
    inv.emplace(mmu_notifier_range_init(MmuNotifyEvent::kProtectionPage, src_vma.mm(),
                                        src_vma.start(), src_vma.end()));
  }
  for (Vaddr addr = src_vma.start(); addr < src_vma.end();) {
    Vaddr next = addr.pmd_down() + kPmdSize;
    if (next > src_vma.end()) next = src_vma.end();
    if (!copy_huge_pmd_range(dst_vma, src_vma, addr)) copy_pte_range(dst_vma, src_vma, addr, next);
    addr = next;
  }
}

}  // namespace

MmStruct& dup_mm(MmStruct& parent) {
  World& world = parent.world();
  MmStruct& child = world.create_mm();
  WriteLock parent_guard(parent.mmap_lock);
  WriteLock child_guard(child.mmap_lock);
  for (const auto& [start, vma] : parent.vmas()) {
    auto copy = std::make_unique<Vma>(child, vma->start(), vma->end(), vma->flags(), vma->pgoff());
    Vma* cvma = child.insert_vma(std::move(copy));
    anon_vma_fork(world, *cvma, *vma);
    if (vma->anon_vma()) copy_page_range(*cvma, *vma);
  }
  return child;
}

void exit_mmap(MmStruct& mm) {
  // The subscriptions hear that the address space goes away before
  // anything is unmapped, without mmap_lock (mmu_notifier_release).
  mmu_notifier_release(mm);
  {
    WriteLock guard(mm.mmap_lock);
    std::vector<Vma*> vmas;
    for (const auto& [start, vma] : mm.vmas()) vmas.push_back(vma.get());
    // unmap_vmas(tlb, ..., 0, ULONG_MAX): one MMU_NOTIFY_UNMAP of everything.
    if (!vmas.empty()) unmap_vmas(mm, vmas, Vaddr{0}, Vaddr{~uint64_t{0}});
    for (Vma* vma : vmas) {
      unlink_anon_vmas(mm.world(), *vma);
      std::unique_ptr<Vma> gone = mm.remove_vma(vma);
    }
    free_pgtables(mm, Vaddr{0}, Vaddr{kUserMax});
  }
  mm.world().destroy_mm(mm);
}

}  // namespace hmmsim
