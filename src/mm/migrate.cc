#include "mm/migrate.h"

#include "base/assert.h"
#include "mm/internal.h"
#include "mm/mm.h"
#include "mm/rmap.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

// try_to_migrate_one(): convert this Vma's mappings of `folio`.
bool try_to_migrate_one(Folio folio, Vma& vma, Vaddr addr) {
  PageVmaMappedWalk pvmw(folio, vma, addr, PvmwFlags::kNone);
  while (pvmw.next()) {
    Pte pte = pvmw.pte();
    uint64_t idx = pvmw.subpage();
    HMM_ASSERT(pte.kind() == PteKind::kPresent, "migrating a {} entry",
               pte_kind_name(pte.kind()));
    bool anon_exclusive = PageAnonExclusive(folio.page(idx));
    pvmw.set_pte(Pte::none());  // ptep_clear_flush
    if (pte.dirty()) folio.head().set(kPgDirty);
    if (anon_exclusive && !folio_try_share_anon_rmap_pte(folio, idx).ok()) {
      pvmw.set_pte(pte);
      return false;
    }
    MigrationKind mk = pte.write()       ? MigrationKind::kWrite
                       : anon_exclusive ? MigrationKind::kReadExclusive
                                        : MigrationKind::kRead;
    pvmw.set_pte(Pte::migration(pte.pfn(), mk,
                                EntryBits{.dirty = pte.dirty(), .young = pte.young()}));
    folio_remove_rmap_ptes(folio, idx, 1, vma);
    folio_put(folio);
  }
  return true;
}

// remove_migration_pte(): restore this Vma's migration entries for `src`
// as mappings of `dst`.
bool remove_migration_pte(Folio src, Folio dst, Vma& vma, Vaddr addr) {
  PageVmaMappedWalk pvmw(src, vma, addr, PvmwFlags::kMigration);
  while (pvmw.next()) {
    Pte entry = pvmw.pte();
    uint64_t idx = entry.pfn() - src.pfn();
    MigrationKind mk = entry.migration_kind();
    bool write = mk == MigrationKind::kWrite && vma.has(kVmWrite);
    folio_get(dst);
    Pte pte = Pte::present(dst.pfn() + idx,
                           EntryBits{.write = write, .dirty = entry.dirty(), .young = entry.young()});
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
  for (uint64_t i = 0; i < src.nr_pages(); i++) page_copy(dst.page(i), src.page(i));
  dst.head().mapping = src.head().mapping;
  dst.head().index = src.head().index;
  if (src.test(kPgAnon)) dst.head().set(kPgAnon);
  if (src.test(kPgSwapBacked)) dst.head().set(kPgSwapBacked);
  if (src.test(kPgDirty)) dst.head().set(kPgDirty);
  return Ok();
}

}  // namespace

bool try_to_migrate(Folio folio) {
  HMM_ASSERT(folio_test_locked(folio), "try_to_migrate of unlocked folio {:#x}", folio.pfn().v);
  bool ok = true;
  rmap_walk(
      folio,
      [&](Vma& vma, Vaddr addr) {
        ok = try_to_migrate_one(folio, vma, addr) && ok;
        return ok;
      },
      RmapLocked::kNo);
  return ok && !folio_mapped(folio);
}

void remove_migration_ptes(Folio src, Folio dst, RmpFlags flags) {
  HMM_ASSERT(folio_test_locked(src), "remove_migration_ptes of unlocked folio {:#x}",
             src.pfn().v);
  rmap_walk(
      src, [&](Vma& vma, Vaddr addr) { return remove_migration_pte(src, dst, vma, addr); },
      flags == RmpFlags::kLocked ? RmapLocked::kYes : RmapLocked::kNo);
}

Result<Folio> migrate_folio_to_new(World& world, Folio src) {
  std::optional<Folio> dst = folio_alloc(world.mem(), src.order());
  if (!dst) {
    folio_put(src);
    return Err{Errno::kNoMem};
  }
  folio_lock(src);
  bool locked_dst = folio_trylock(*dst);
  HMM_ASSERT(locked_dst, "a new folio is locked by somebody");
  AnonVma* av = folio_get_anon_vma(src);
  Status rc = Ok();
  if (folio_mapped(src) && !try_to_migrate(src)) rc = Err{Errno::kAgain};
  if (rc.ok()) rc = move_to_new_folio(*dst, src);
  remove_migration_ptes(src, rc.ok() ? *dst : src, RmpFlags::kNone);
  folio_unlock(src);
  if (av) put_anon_vma(world, av);
  if (!rc.ok()) {
    src.head().set(kPgLru);  // folio_putback_lru
    folio_put(src);
    folio_unlock(*dst);
    folio_put(*dst);
    return Err{rc.error()};
  }
  folio_put(src);  // the isolation reference: src is freed
  dst->head().set(kPgLru);
  folio_unlock(*dst);
  folio_put(*dst);  // the allocation reference; mappings hold the rest
  return *dst;
}

Result<Pfn> migrate_page(MmStruct& mm, Vaddr addr) {
  if (addr.v > kUserMax) return Err{Errno::kFault};
  World& world = mm.world();
  Folio folio;
  uint64_t offset = 0;
  {
    ReadLock guard(mm.mmap_lock);
    if (!mm.vma_lookup(addr)) return Err{Errno::kFault};
    PteTable* table = pte_table_lookup(mm, addr, MmStruct::Alloc::kNo);
    if (!table) return Err{Errno::kNoEnt};
    MutexLock ptl(table->ptl);
    Pte pte = table->get(addr.pte_index());
    if (pte.kind() != PteKind::kPresent) return Err{Errno::kNoEnt};
    folio = pte_folio(world, pte);
    offset = pte.pfn() - folio.pfn();
    // folio_isolate_lru(): fails if someone else has it isolated.
    if (!folio.test(kPgLru)) return Err{Errno::kBusy};
    folio.head().clear(kPgLru);
    folio_get(folio);
  }
  Result<Folio> moved = migrate_folio_to_new(world, folio);
  if (!moved.ok()) return Err{moved.error()};
  return moved->pfn() + offset;
}

}  // namespace hmmsim
