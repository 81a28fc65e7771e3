#include "mm/migrate.h"

#include <algorithm>
#include <utility>

#include "base/assert.h"
#include "mm/deferred_split.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "mm/mm.h"
#include "mm/mmu_notifier.h"
#include "mm/rmap.h"
#include "mm/vmstat.h"
#include "mm/world.h"

namespace hmmsim {
// vma_address() and vma_address_end().
std::pair<Vaddr, Vaddr> folio_range_in_vma(Folio folio, const Vma& vma, Vaddr addr) {
  Vaddr end = addr + folio.nr_pages() * kPageSize;
  return {std::max(addr, vma.start()), std::min(end, vma.end())};
}

namespace {

MigrationKind migration_kind_for(bool write, bool anon_exclusive) {
  if (write) return MigrationKind::kWrite;
  return anon_exclusive ? MigrationKind::kReadExclusive : MigrationKind::kRead;
}

// The PTE part of try_to_migrate_one(): false if the page could not be
// shared (then the mapping stays as it was).
bool migrate_one_pte(PageVmaMappedWalk& pvmw, Folio folio) {
  Pte pte = pvmw.pte();
  uint64_t idx = pvmw.subpage();
  bool present = pte.kind() == PteKind::kPresent;
  // A device-exclusive entry stands for the writable PTE it replaced.
  bool exclusive = pte.kind() == PteKind::kDeviceExclusive;
  HMM_ASSERT(present || exclusive || pte.kind() == PteKind::kDevicePrivate,
             "migrating a {} entry", pte_kind_name(pte.kind()));
  bool anon_exclusive = PageAnonExclusive(folio.page(idx));
  pvmw.set_pte(Pte::none());  // ptep_clear_flush
  if (present && pte.dirty()) folio.head().set(kPgDirty);
  if (anon_exclusive && !folio_try_share_anon_rmap_pte(folio, idx).ok()) {
    pvmw.set_pte(pte);
    return false;
  }
  // A device-private entry carries no accessed/dirty bits.
  EntryBits bits{.soft_dirty = pte.soft_dirty()};
  if (present) {
    bits.dirty = pte.dirty();
    bits.young = pte.young();
  }
  bool write = exclusive || pte.write();
  pvmw.set_pte(Pte::migration(pte.pfn(), migration_kind_for(write, anon_exclusive), bits));
  folio_remove_rmap_ptes(folio, idx, 1, pvmw.vma());
  folio_put(folio);
  return true;
}

// try_to_migrate_one(): convert this Vma's mappings of `folio`, inside an
// MMU_NOTIFY_CLEAR invalidation of the folio's range in the Vma (which
// covers the PMD a kSplitHugePmd split rewrites).
bool try_to_migrate_one(Folio folio, Vma& vma, Vaddr addr, uint32_t flags) {
  auto [start, end] = folio_range_in_vma(folio, vma, addr);
  MmuNotifierInvalidation inv(
      mmu_notifier_range_init(MmuNotifyEvent::kClear, vma.mm(), start, end));
  PageVmaMappedWalk pvmw(folio, vma, addr, PvmwFlags::kNone);
  while (pvmw.next()) {
    if (pvmw.pmd_level()) {
      if (flags & TtuFlags::kSplitHugePmd) {
        // The split leaves PTE migration entries, or present PTEs when an
        // exclusive folio could not be shared: walk again to see which.
        __split_huge_pmd_locked(vma, pvmw.pmd_ref(), Freeze::kYes);
        flags &= ~TtuFlags::kSplitHugePmd;
        pvmw.restart();
        continue;
      }
      if (!set_pmd_migration_entry(pvmw, folio)) return false;
      continue;
    }
    if (!migrate_one_pte(pvmw, folio)) return false;
  }
  return true;
}

// try_to_map_unused_to_zeropage(): a page of a just-split folio that holds
// only zeros need not stay: map the shared zero page instead.
bool try_to_map_unused_to_zeropage(PageVmaMappedWalk& pvmw, Folio folio) {
  if (folio.is_large() || folio.is_device_private()) return false;
  if (!page_is_zero_filled(folio.head())) return false;
  pvmw.set_pte(Pte::zero_page());
  pvmw.vma().mm().add_anon_rss(-1);
  return true;
}

// remove_migration_pte(): restore this Vma's migration entries for `src`
// as mappings of `dst`.
bool remove_migration_pte(Folio src, Folio dst, Vma& vma, Vaddr addr, uint32_t flags) {
  PageVmaMappedWalk pvmw(src, vma, addr, PvmwFlags::kMigration);
  while (pvmw.next()) {
    if (pvmw.pmd_level()) {
      remove_migration_pmd(pvmw, dst);
      continue;
    }
    Pte entry = pvmw.pte();
    uint64_t idx = entry.pfn() - src.pfn();
    if ((flags & RmpFlags::kUseSharedZeropage) && try_to_map_unused_to_zeropage(pvmw, dst))
      continue;
    MigrationKind mk = entry.migration_kind();
    bool write = mk == MigrationKind::kWrite && vma.has(kVmWrite);
    folio_get(dst);
    // A device-private destination gets a device-private entry, never a
    // present one (I5).
    Pte pte = dst.is_device_private()
                  ? Pte::device_private(dst.pfn() + idx, write, entry.soft_dirty())
                  : Pte::present(dst.pfn() + idx,
                                 EntryBits{.write = write, .dirty = entry.dirty(),
                                           .young = entry.young(), .soft_dirty = entry.soft_dirty()});
    RmapFlags rf = mk == MigrationKind::kRead ? RmapFlags::kNone : RmapFlags::kExclusive;
    folio_add_anon_rmap_ptes(dst, idx, 1, vma, pvmw.address(), rf);
    pvmw.set_pte(pte);
  }
  return true;
}

// folio_migrate_mapping() + folio_migrate_flags() + the copy, for anon.
Status move_to_new_folio(Folio dst, Folio src) {
  // Only the isolation reference may remain.
  if (folio_ref_count(src) != folio_expected_ref_count(src) + 1) return Err{Errno::kAgain};
  folio_copy(dst, src);
  for (uint64_t i = 0; i < src.nr_pages(); i++) {
    if (PageAnonExclusive(src.page(i))) dst.page(i).set(kPgAnonExclusive);
  }
  dst.head().mapping = src.head().mapping;
  dst.head().index = src.head().index;
  if (src.test(kPgAnon)) dst.head().set(kPgAnon);
  if (src.test(kPgSwapBacked)) dst.head().set(kPgSwapBacked);
  if (src.test(kPgDirty)) dst.head().set(kPgDirty);
  return Ok();
}

// migrate_folio_unmap() + migrate_folio_move() for one folio, given a
// locked destination of the same order.
Status migrate_folio_locked(World& world, Folio src, Folio dst) {
  AnonVma* av = folio_get_anon_vma(src);
  Status rc = Ok();
  if (folio_mapped(src) && !try_to_migrate(src)) rc = Err{Errno::kAgain};
  if (rc.ok()) rc = move_to_new_folio(dst, src);
  remove_migration_ptes(src, rc.ok() ? dst : src, RmpFlags::kNone);
  if (av) put_anon_vma(world, av);
  return rc;
}

// The THP path when no order-9 destination exists: split, then migrate
// every resulting page (try_split_folio + the retry loop of migrate_pages).
Result<Folio> migrate_split_thp(World& world, Folio src, uint64_t keep_page) {
  world.stats().count(VmEvent::kThpMigrationSplit);
  Pfn base = src.pfn();
  uint64_t nr = src.nr_pages();
  MemRange& range = src.range();
  folio_lock(src);
  Status split = split_folio(world, src);
  folio_unlock(src);
  if (!split.ok()) {
    src.head().set(kPgLru);
    folio_put(src);
    return Err{split.error()};
  }
  // The new folios inherited the head's isolation (no PG_lru). Each one
  // still mapped is migrated on its own; the head carries the original
  // isolation reference, the others get one now, as on the split list.
  Result<Folio> kept = Err{Errno::kNoEnt};
  for (uint64_t i = 0; i < nr; i++) {
    Folio f = page_folio(range, base + i);
    if (i > 0) {
      if (folio_ref_count(f) == 0) continue;  // was unmapped: freed by the split
      folio_get(f);
    }
    Result<Folio> moved = migrate_folio_to_new(world, f);
    if (i == keep_page) kept = moved;
  }
  return kept;
}

}  // namespace

bool try_to_migrate(Folio folio, uint32_t ttu_flags) {
  HMM_ASSERT(folio_test_locked(folio), "try_to_migrate of unlocked folio {:#x}", folio.pfn().v);
  bool ok = true;
  rmap_walk(
      folio,
      [&](Vma& vma, Vaddr addr) {
        ok = try_to_migrate_one(folio, vma, addr, ttu_flags) && ok;
        return ok;
      },
      (ttu_flags & TtuFlags::kRmapLocked) ? RmapLocked::kYes : RmapLocked::kNo);
  return ok && !folio_mapped(folio);
}

void remove_migration_ptes(Folio src, Folio dst, uint32_t rmp_flags) {
  HMM_ASSERT(folio_test_locked(src), "remove_migration_ptes of unlocked folio {:#x}",
             src.pfn().v);
  HMM_ASSERT(!(rmp_flags & RmpFlags::kUseSharedZeropage) || src == dst,
             "the shared zero page only replaces pages of a split folio");
  rmap_walk(
      src,
      [&](Vma& vma, Vaddr addr) { return remove_migration_pte(src, dst, vma, addr, rmp_flags); },
      (rmp_flags & RmpFlags::kLocked) ? RmapLocked::kYes : RmapLocked::kNo);
}

Result<Folio> migrate_folio_to_new(World& world, Folio src, uint64_t keep_page) {
  // migrate_pages_batch(): a partially mapped THP on the deferred split
  // list is split first and only its mapped pages move (Linux 6.12,
  // "mm/migrate: split source folio if it is on deferred split list");
  // migrating it whole would leave an unqueued partially mapped copy.
  if (src.is_large() && src.test(kPgPartiallyMapped))
    return migrate_split_thp(world, src, keep_page);
  std::optional<Folio> dst = folio_alloc(world.mem(), src.order());
  if (!dst) {
    if (src.is_large()) return migrate_split_thp(world, src, keep_page);
    src.head().set(kPgLru);
    folio_put(src);
    return Err{Errno::kNoMem};
  }
  folio_lock(src);
  bool locked_dst = folio_trylock(*dst);
  HMM_ASSERT(locked_dst, "a new folio is locked by somebody");
  Status rc = migrate_folio_locked(world, src, *dst);
  folio_unlock(src);
  uint64_t nr = src.nr_pages();
  if (!rc.ok()) {
    world.stats().count(VmEvent::kPgMigrateFail, nr);
    if (src.is_large()) world.stats().count(VmEvent::kThpMigrationFail);
    src.head().set(kPgLru);  // folio_putback_lru
    folio_put(src);
    folio_unlock(*dst);
    folio_put(*dst);
    return Err{rc.error()};
  }
  world.stats().count(VmEvent::kPgMigrateSuccess, nr);
  if (src.is_large()) world.stats().count(VmEvent::kThpMigrationSuccess);
  folio_put(src);  // the isolation reference: src is freed
  dst->head().set(kPgLru);
  if (dst->is_large()) world.mem().deferred_split().add(*dst, false);
  folio_unlock(*dst);
  folio_put(*dst);  // the allocation reference; mappings hold the rest
  return *dst;
}

namespace {

// The folio mapped at `addr` (by a PMD leaf or a PTE) with a reference,
// isolated from the LRU; the index of addr's page in it.
struct Isolated {
  Folio folio;
  uint64_t page;
};

// folio_isolate_lru() of the folio holding `pfn`; the caller holds the
// lock of the entry that maps it, so it cannot go away meanwhile.
Result<Isolated> isolate_pfn(World& world, Pfn pfn) {
  Folio folio = pfn_folio(world.mem(), pfn);
  if (!folio.test(kPgLru)) return Err{Errno::kBusy};  // somebody else has it isolated
  folio.head().clear(kPgLru);
  folio_get(folio);
  return Isolated{folio, pfn - folio.pfn()};
}

Result<Isolated> isolate_mapped_folio(MmStruct& mm, Vaddr addr) {
  World& world = mm.world();
  PmdTable* pmdt = mm.pmd_table(addr, MmStruct::Alloc::kNo);
  if (!pmdt) return Err{Errno::kNoEnt};
  PteTable* table = nullptr;
  {
    MutexLock guard(pmdt->ptl);
    const PmdSlot& slot = pmdt->slot(addr.pmd_index());
    if (slot.entry.kind() == PmdKind::kPresent)
      return isolate_pfn(world, slot.entry.pfn() + addr.pte_index());
    if (!slot.entry.is_table()) return Err{Errno::kNoEnt};
    table = slot.table.get();
  }
  MutexLock guard(table->ptl);
  Pte pte = table->get(addr.pte_index());
  if (pte.kind() != PteKind::kPresent) return Err{Errno::kNoEnt};
  return isolate_pfn(world, pte.pfn());
}

}  // namespace

Result<Pfn> migrate_page(MmStruct& mm, Vaddr addr) {
  if (addr.v > kUserMax) return Err{Errno::kFault};
  Result<Isolated> isolated = Err{Errno::kNoEnt};
  {
    ReadLock guard(mm.mmap_lock);
    if (!mm.vma_lookup(addr)) return Err{Errno::kFault};
    isolated = isolate_mapped_folio(mm, addr);
  }
  if (!isolated.ok()) return Err{isolated.error()};
  Result<Folio> moved = migrate_folio_to_new(mm.world(), isolated->folio, isolated->page);
  if (!moved.ok()) return Err{moved.error()};
  uint64_t offset = moved->is_large() ? isolated->page : 0;
  return moved->pfn() + offset;
}

}  // namespace hmmsim
