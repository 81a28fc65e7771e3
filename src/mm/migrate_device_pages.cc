// The unmap, pages and finalize phases of device migration, and eviction by
// pfn (Linux mm/migrate_device.c: migrate_device_unmap,
// __migrate_device_pages, migrate_vma_insert_page,
// migrate_vma_insert_huge_pmd_page, migrate_vma_split_unmapped_folio,
// __migrate_device_finalize, migrate_device_range/pfns).
#include "base/assert.h"
#include "mm/deferred_split.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "mm/memremap.h"
#include "mm/migrate.h"
#include "mm/migrate_device.h"
#include "mm/migrate_device_internal.h"
#include "mm/mmu_notifier.h"
#include "mm/rmap.h"
#include "mm/vmstat.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

Folio slot_folio(World& world, const MigratePfn& m) {
  return m.valid ? pfn_folio(world.mem(), m.pfn) : Folio();
}

bool is_fault_page(const std::optional<Pfn>& fault_page, Pfn pfn) {
  return fault_page && *fault_page == pfn;
}

// migrate_vma_check_page(): only the collect/isolation reference (plus the
// fault path's, plus the slack Linux keeps for ZONE_DEVICE pages) may
// exist beyond the mappings.
bool migrate_vma_check_page(Folio folio, Pfn pfn, const std::optional<Pfn>& fault_page) {
  int32_t extra = 1;
  if (is_fault_page(fault_page, pfn)) extra++;
  if (folio.is_device_private()) extra++;
  return folio_ref_count(folio) - extra <= folio_mapcount(folio);
}

// Gives a restored entry's page back: remap it, unlock, unreference.
void restore_slot(World& world, MigratePfn& m, const std::optional<Pfn>& fault_page) {
  Folio folio = slot_folio(world, m);
  remove_migration_ptes(folio, folio, RmpFlags::kNone);
  m = MigratePfn{};
  Folio fault_folio = fault_page ? pfn_folio(world.mem(), *fault_page) : Folio();
  if (!(folio == fault_folio)) folio_unlock(folio);
  folio_put(folio);
}

}  // namespace

uint64_t migrate_device_unmap(World& world, std::span<MigratePfn> src,
                              std::optional<Pfn> fault_page) {
  uint64_t unmapped = 0;
  uint64_t restore = 0;
  for (MigratePfn& m : src) {
    if (!m.migrate) continue;
    if (!m.valid) {
      unmapped++;  // a hole to populate
      continue;
    }
    Folio folio = slot_folio(world, m);
    if (folio.is_large()) m.compound = true;
    if (!folio.is_device_private()) {
      // folio_isolate_lru(): the isolation reference replaces the collect one.
      if (!folio.test(kPgLru)) {
        m.migrate = false;
        restore++;
        continue;
      }
      folio.head().clear(kPgLru);
    }
    if (folio_mapped(folio)) try_to_migrate(folio);
    if (folio_mapped(folio) || !migrate_vma_check_page(folio, m.pfn, fault_page)) {
      if (!folio.is_device_private()) folio.head().set(kPgLru);  // folio_putback_lru
      m.migrate = false;
      restore++;
      continue;
    }
    unmapped++;
  }
  for (MigratePfn& m : src) {
    if (restore == 0) break;
    if (!m.valid || m.migrate) continue;
    restore_slot(world, m, fault_page);
    restore--;
  }
  return unmapped;
}

namespace {

// migrate_vma_insert_page(): map a new page where the source had none.
void insert_page(Vma& vma, Vaddr addr, Folio folio, MigratePfn& src)
    NO_THREAD_SAFETY_ANALYSIS {
  // pte_offset_map_lock() below; the table cannot go while mmap_lock is held.
  // The huge zero page is split so that one of its pages can be replaced;
  // any other PMD leaf means the range was populated meanwhile.
  PmdTable* pmdt = vma.mm().pmd_table(addr, MmStruct::Alloc::kYes);
  bool huge_zero = false;
  {
    MutexLock guard(pmdt->ptl);
    Pmd pmd = pmdt->slot(addr.pmd_index()).entry;
    if (pmd.is_huge() && pmd.kind() != PmdKind::kHugeZero) {
      src.migrate = false;
      return;
    }
    huge_zero = pmd.kind() == PmdKind::kHugeZero;
  }
  if (huge_zero) split_huge_pmd_address(vma, addr, Freeze::kNo);
  vma_anon_prepare(vma);
  PteTable* table = pte_table_lookup(vma.mm(), addr, MmStruct::Alloc::kYes);
  if (!table) {  // a huge entry appeared
    src.migrate = false;
    return;
  }
  MutexLock guard(table->ptl);
  Pte old = table->get(addr.pte_index());
  if (!old.is_none() && old.kind() != PteKind::kZero) {
    src.migrate = false;
    return;
  }
  bool write = vma.has(kVmWrite);
  Pte pte = folio.is_device_private()
                ? Pte::device_private(folio.pfn(), write)
                : Pte::present(folio.pfn(), EntryBits{.write = write, .dirty = write, .young = true});
  vma.mm().add_anon_rss(1);
  folio_add_new_anon_rmap(folio, vma, addr, RmapFlags::kExclusive);
  if (!folio.is_device_private()) folio.head().set(kPgLru);
  folio_get(folio);
  table->set(addr.pte_index(), pte);
  src = MigratePfn{.migrate = true};
}

// migrate_vma_insert_huge_pmd_page(): map a new THP (RAM or device) where
// the source was an empty PMD range. Success leaves the slots as they are;
// on any failure every slot of the range stops migrating (no small-page
// fallback, as in 6.19).
void insert_huge_pmd_page(World& world, Vma& vma, Vaddr haddr, Folio folio,
                          std::span<MigratePfn> src) NO_THREAD_SAFETY_ANALYSIS {
  auto abort = [&] {
    for (MigratePfn& m : src) m.migrate = false;
  };
  if (haddr < vma.start() || haddr + kPmdSize > vma.end()) return abort();
  vma_anon_prepare(vma);
  PmdTable* pmdt = vma.mm().pmd_table(haddr, MmStruct::Alloc::kYes);
  PmdRef pmd{pmdt, haddr.pmd_index(), haddr};
  MutexLock guard(pmdt->ptl);
  PmdSlot& slot = pmd.slot();
  bool huge_zero = slot.entry.kind() == PmdKind::kHugeZero;
  if (!slot.entry.is_none() && !huge_zero) return abort();
  bool write = vma.has(kVmWrite);
  slot.entry = folio.is_device_private()
                   ? Pmd::device_private(folio.pfn(), write)
                   : Pmd::present(folio.pfn(),
                                  EntryBits{.write = write, .dirty = write, .young = true});
  if (!huge_zero) {
    slot.deposit = std::make_unique<PteTable>(world.sched());
    vma.mm().add_nr_ptes(1);
  }
  folio_get(folio);
  vma.mm().add_anon_rss(kHPageNr);
  folio_add_new_anon_rmap(folio, vma, haddr, RmapFlags::kExclusive);
  if (!folio.is_device_private()) {
    folio.head().set(kPgLru);
    world.mem().deferred_split().add(folio, false);
  }
}

// The PMD migration entries of `folio` outside the migrating Vma: a THP
// shared after fork was unmapped from every process when it was collected
// (B15), each PMD mapping becoming a PMD migration entry. Split each into
// 512 PTE migration entries, freezing, as the caller's own PMD was, so that
// no PMD migration entry names a folio that is about to be split.
//
// Linux 6.19 splits only the PMD of the migrating Vma here; a sharer's PMD
// migration entry would then be restored as a PMD over a page of a split
// folio. hmmsim splits them all (docs/findings.md, F1).
void split_other_pmd_migration_entries(Folio folio) {
  rmap_walk(
      folio,
      [&](Vma& vma, Vaddr addr) {
        auto [start, end] = folio_range_in_vma(folio, vma, addr);
        MmuNotifierInvalidation inv(
            mmu_notifier_range_init(MmuNotifyEvent::kClear, vma.mm(), start, end));
        PageVmaMappedWalk pvmw(folio, vma, addr, PvmwFlags::kMigration);
        while (pvmw.next()) {
          if (!pvmw.pmd_level()) continue;
          folio_get(folio);  // the freezing PMD split drops one
          __split_huge_pmd_locked(vma, pvmw.pmd_ref(), Freeze::kYes);
          pvmw.restart();
        }
        return true;
      },
      RmapLocked::kNo);
}

// migrate_vma_split_unmapped_folio(): the source THP is unmapped (a PMD
// migration entry) but the destination is 512 small pages: split the PMD
// entry (freezing) and the folio, and give every page its own slot.
Status split_unmapped_folio(World& world, Vma& vma, Vaddr addr, Folio folio,
                            std::span<MigratePfn> src) {
  folio_get(folio);  // the freezing PMD split drops one
  split_huge_pmd_address(vma, addr, Freeze::kYes);
  split_other_pmd_migration_entries(folio);
  Status ret = folio_split_unmapped(world, folio);
  if (!ret.ok()) return ret;
  MigratePfn head = src[0];
  head.compound = false;
  for (uint64_t i = 0; i < src.size(); i++) {
    src[i] = head;
    src[i].pfn = head.pfn + i;
  }
  return Ok();
}

// folio_migrate_mapping() + folio_migrate_flags() for one anon page.
void migrate_one(World& world, MigratePfn& src, const MigratePfn& dst,
                 const std::optional<Pfn>& fault_page, Pfn slot_page) {
  if (!src.migrate || !dst.valid) {
    src.migrate = false;
    return;
  }
  Folio folio = slot_folio(world, src);
  Folio newfolio = slot_folio(world, dst);
  int32_t extra = is_fault_page(fault_page, slot_page) ? 1 : 0;
  if (folio_ref_count(folio) != folio_expected_ref_count(folio) + 1 + extra) {
    src.migrate = false;
    return;
  }
  newfolio.head().mapping = folio.head().mapping;
  newfolio.head().index = folio.head().index;
  newfolio.head().set(kPgAnon);
  if (folio.test(kPgSwapBacked)) newfolio.head().set(kPgSwapBacked);
  if (folio.test(kPgDirty)) newfolio.head().set(kPgDirty);
}

}  // namespace

// __migrate_device_pages(); `vma` is null for eviction.
void migrate_device_pages_common(World& world, std::span<MigratePfn> src,
                                 std::span<MigratePfn> dst, Vma* vma, Vaddr start,
                                 const void* pgmap_owner, const std::optional<Pfn>& fault_page) {
  uint64_t npages = src.size();
  // Filling the first hole begins an MMU_NOTIFY_MIGRATE from there to the
  // end of the range, which lasts until every page is done.
  std::optional<MmuNotifierInvalidation> inv;
  for (uint64_t i = 0; i < npages;) {
    uint64_t nr = 1;
    Vaddr addr = start + (i << kPageShift);
    Folio newfolio = slot_folio(world, dst[i]);
    if (!newfolio) {
      src[i].migrate = false;
      i++;
      continue;
    }
    if (!src[i].valid) {
      if (src[i].migrate && vma) {
        if (!inv) {
          inv.emplace(mmu_notifier_range_init_owner(MmuNotifyEvent::kMigrate, vma->mm(), addr,
                                                    start + (npages << kPageShift), pgmap_owner));
        }
        if (src[i].compound && !dst[i].compound) {
          nr = std::min<uint64_t>(kMigrateCompoundSlots, npages - i);
          src[i].compound = false;
          for (uint64_t j = 0; j < nr; j++) {
            src[i + j].migrate = true;
            Folio f = slot_folio(world, dst[i + j]);
            if (f) insert_page(*vma, addr + j * kPageSize, f, src[i + j]);
            else src[i + j].migrate = false;
          }
        } else if (dst[i].compound) {
          // One slot, like any insert; a failure stops all 512 from here.
          uint64_t span = std::min<uint64_t>(kMigrateCompoundSlots, npages - i);
          insert_huge_pmd_page(world, *vma, addr, newfolio, src.subspan(i, span));
        } else {
          insert_page(*vma, addr, newfolio, src[i]);
        }
      } else {
        src[i].migrate = false;
      }
      i += nr;
      continue;
    }
    if (src[i].compound && !dst[i].compound && src[i].migrate) {
      nr = std::min<uint64_t>(kMigrateCompoundSlots, npages - i);
      Folio folio = slot_folio(world, src[i]);
      if (!vma || !split_unmapped_folio(world, *vma, addr, folio, src.subspan(i, nr)).ok()) {
        src[i].migrate = false;
        src[i].compound = false;
        i += nr;
        continue;
      }
    } else if (!src[i].compound && dst[i].compound) {
      src[i].migrate = false;  // no collapse into a larger destination
      i++;
      continue;
    }
    Pfn slot_page = src[i].pfn;
    for (uint64_t j = 0; j < nr; j++) migrate_one(world, src[i + j], dst[i + j], fault_page, slot_page);
    i += nr;
  }
}

namespace {

// I13: between setup and finalize a compound slot sits at a PMD-aligned
// address with 511 empty slots after it, and every slot still migrating a
// page holds that page's folio locked.
void check_migrate_arrays(World& world, const MigrateVma& args) {
  for (uint64_t i = 0; i < args.npages; i++) {
    const MigratePfn& m = args.src[i];
    if (m.compound) {
      HMM_ASSERT((args.start + i * kPageSize).pmd_aligned() && i + kMigrateCompoundSlots <= args.npages,
                 "I13: compound slot {} at a misaligned address", i);
      for (uint64_t j = 1; j < kMigrateCompoundSlots; j++) {
        HMM_ASSERT(args.src[i + j].empty(), "I13: slot {} after compound slot {} is not empty",
                   i + j, i);
      }
    }
    if (m.migrate && m.valid) {
      HMM_ASSERT(folio_test_locked(slot_folio(world, m)),
                 "I13: slot {} migrates an unlocked folio {:#x}", i, m.pfn.v);
    }
  }
}

}  // namespace

void migrate_vma_pages(World& world, MigrateVma& args) {
  check_migrate_arrays(world, args);
  migrate_device_pages_common(world, args.src.first(args.npages), args.dst.first(args.npages),
                              args.vma, args.start, args.pgmap_owner, args.fault_page);
}

void migrate_device_pages(World& world, std::span<MigratePfn> src, std::span<MigratePfn> dst) {
  migrate_device_pages_common(world, src, dst, nullptr, Vaddr{0}, nullptr, std::nullopt);
}

// __migrate_device_finalize().
void migrate_device_finalize_common(World& world, std::span<MigratePfn> src,
                                    std::span<MigratePfn> dst,
                                    const std::optional<Pfn>& fault_page) {
  Folio fault_folio = fault_page ? pfn_folio(world.mem(), *fault_page) : Folio();
  for (uint64_t i = 0; i < src.size(); i++) {
    Folio dst_folio = slot_folio(world, dst[i]);
    Folio folio = slot_folio(world, src[i]);
    if (!folio) {
      if (dst_folio) {
        folio_unlock(dst_folio);
        folio_put(dst_folio);
      }
      continue;
    }
    Folio target = dst_folio;
    if (!src[i].migrate || !dst_folio) {
      if (dst_folio) {
        folio_unlock(dst_folio);
        folio_put(dst_folio);
      }
      target = folio;
    }
    HMM_ASSERT(!(target == fault_folio) || target == folio,
               "I14: the fault folio {:#x} was used as a destination", fault_folio.pfn().v);
    if (!target.is_device_private()) target.head().set(kPgLru);
    remove_migration_ptes(folio, target, RmpFlags::kNone);
    if (!(folio == fault_folio)) folio_unlock(folio);
    folio_put(folio);
    if (!(target == folio)) {
      folio_unlock(target);
      folio_put(target);
    }
  }
}

void migrate_vma_finalize(World& world, MigrateVma& args) {
  migrate_device_finalize_common(world, args.src.first(args.npages), args.dst.first(args.npages),
                                 args.fault_page);
}

void migrate_device_finalize(World& world, std::span<MigratePfn> src,
                             std::span<MigratePfn> dst) {
  migrate_device_finalize_common(world, src, dst, std::nullopt);
}

namespace {

// migrate_device_pfn_lock(): a referenced, locked head page, or nothing.
MigratePfn device_pfn_lock(World& world, Pfn pfn) {
  MemRange* range = world.mem().range_of(pfn);
  if (!range) return MigratePfn{};
  Page& page = range->page(pfn);
  if (page.test(kPgTail) || page.refcount.load() == 0) return MigratePfn{};
  Folio folio(range, &page);
  if (!folio_try_get(folio)) return MigratePfn{};
  if (!folio_trylock(folio)) {
    folio_put(folio);
    return MigratePfn{};
  }
  return MigratePfn{.pfn = pfn, .valid = true, .migrate = true};
}

Status collect_device_pfns(World& world, std::span<MigratePfn> src) {
  for (uint64_t i = 0; i < src.size(); i++) {
    Pfn pfn = src[i].pfn;
    src[i] = device_pfn_lock(world, pfn);
    if (!src[i].valid) continue;
    Folio folio = slot_folio(world, src[i]);
    uint64_t nr = folio.nr_pages();
    if (nr > 1) {
      HMM_ASSERT(i + nr <= src.size(), "large device folio {:#x} crosses the array end",
                 pfn.v);
      src[i].compound = true;
      for (uint64_t j = 1; j < nr; j++) src[i + j] = MigratePfn{};
      i += nr - 1;
    }
  }
  migrate_device_unmap(world, src, std::nullopt);
  return Ok();
}

}  // namespace

Status migrate_device_range(World& world, std::span<MigratePfn> src, Pfn start, uint64_t npages) {
  if (src.size() < npages) return Err{Errno::kInval};
  for (uint64_t i = 0; i < npages; i++) src[i].pfn = start + i;
  return collect_device_pfns(world, src.first(npages));
}

Status migrate_device_pfns(World& world, std::span<MigratePfn> src) {
  return collect_device_pfns(world, src);
}

}  // namespace hmmsim
