// ZONE_DEVICE invariants: device-private folios and their pagemaps.
#include <fmt/format.h>

#include <map>
#include <optional>
#include <utility>

#include "check/checks.h"
#include "mm/memremap.h"
#include "mm/mmu_notifier.h"

namespace hmmsim::check {

// I9: device-private folios are never on an LRU list nor on the deferred
// split queue (lru_add_split_folio's early return, __folio_remove_rmap's
// exclusion, migrate_device_unmap skipping isolation).
void check_device_folios_off_lists(const Ctx& ctx) {
  for_each_allocated_folio(ctx.world, [&](Folio folio) {
    if (!folio.is_device_private()) return;
    if (folio.test(kPgLru) || folio.test(kPgDeferredQueued) || folio.test(kPgPartiallyMapped)) {
      ctx.fail("I9", "check_device_folios_off_lists",
               fmt::format("device-private folio {:#x} is on an LRU or split list",
                           folio.pfn().v),
               folio_dump(ctx.world, ctx.census, folio));
    }
  });
}

// I15: a pagemap holds one reference per allocated page (percpu_ref taken
// in zone_device_page_init, dropped in free_zone_device_folio); a free
// device page has refcount 0 and no mapping.
void check_pgmap_refs(const Ctx& ctx) {
  for (const auto& owned : ctx.world.mem().ranges()) {
    MemRange& range = *owned;
    DevPagemap* pgmap = range.pgmap();
    if (!pgmap) continue;
    int64_t allocated = 0;
    for (uint64_t i = 0; i < range.nr_pages(); i++) {
      const Page& p = range.page(range.base() + i);
      if (p.test(kPgTail)) continue;
      if (p.refcount.load() > 0) {
        allocated += int64_t{1} << p.order;
        i += (uint64_t{1} << p.order) - 1;
      } else if (p.mapcount.load() != -1) {
        ctx.fail("I15", "check_pgmap_refs",
                 fmt::format("free device page {:#x} has mapcount {}", p.pfn,
                             p.mapcount.load() + 1));
      }
    }
    if (pgmap->ref() != allocated) {
      ctx.fail("I15", "check_pgmap_refs",
               fmt::format("pagemap at pfn {:#x} holds {} references for {} allocated pages",
                           range.base().v, pgmap->ref(), allocated));
    }
  }
}

namespace {

// What the CPU maps at one address: the page and whether it may write it.
struct CpuView {
  Pfn pfn;
  bool write = false;
};

// The leaf entries of the census by address space and address.
class EntryIndex {
 public:
  explicit EntryIndex(const Census& census) {
    for (const EntryRef& e : census.entries) {
      if (e.pmd_level) {
        pmds_[{e.mm, e.addr.pmd_down().v}] = &e;
      } else {
        ptes_[{e.mm, e.addr.page_index()}] = &e;
      }
    }
  }
  const EntryRef* pte(const MmStruct* mm, Vaddr a) const {
    auto it = ptes_.find({mm, a.page_index()});
    return it == ptes_.end() ? nullptr : it->second;
  }
  const EntryRef* pmd(const MmStruct* mm, Vaddr a) const {
    auto it = pmds_.find({mm, a.pmd_down().v});
    return it == pmds_.end() ? nullptr : it->second;
  }

 private:
  std::map<std::pair<const MmStruct*, uint64_t>, const EntryRef*> ptes_;
  std::map<std::pair<const MmStruct*, uint64_t>, const EntryRef*> pmds_;
};

std::optional<CpuView> pte_view(World& world, const EntryRef& e) {
  switch (e.pte.kind()) {
    case PteKind::kPresent:
    case PteKind::kDevicePrivate:
      return CpuView{e.pte.pfn(), e.pte.write()};
    case PteKind::kZero:
      return CpuView{world.mem().zero_pfn(), false};
    case PteKind::kDeviceExclusive:
      // It stands for the writable PTE it replaced while the Vma allows it.
      return CpuView{e.pte.pfn(), e.vma && e.vma->has(kVmWrite)};
    case PteKind::kNone:
    case PteKind::kMigration:
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<CpuView> pmd_view(World& world, const EntryRef& e, Vaddr a) {
  switch (e.pmd.kind()) {
    case PmdKind::kPresent:
    case PmdKind::kDevicePrivate:
      return CpuView{e.pmd.pfn() + a.pte_index(), e.pmd.write()};
    case PmdKind::kHugeZero:
      return CpuView{world.mem().zero_pfn(), false};
    case PmdKind::kNone:
    case PmdKind::kTable:
    case PmdKind::kMigration:
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<CpuView> cpu_view(World& world, const EntryIndex& index, const MmStruct* mm,
                                Vaddr a) {
  if (const EntryRef* e = index.pte(mm, a)) return pte_view(world, *e);
  if (const EntryRef* e = index.pmd(mm, a)) return pmd_view(world, *e, a);
  return std::nullopt;
}

}  // namespace

// I16: after an invalidation returns, the device maps nothing of the
// range (mmu_interval_read_begin/read_retry contract; dmirror's
// invalidate()). So between steps every page a mirror maps is the page
// the CPU maps at that address (a RAM page through a present, zero-page
// or device-exclusive entry; a device page through its device-private
// entry), and a writable mirror entry needs a writable CPU entry.
void check_mirrors_coherent_with_cpu(const Ctx& ctx) {
  EntryIndex index(ctx.census);
  for (MmStruct* mm : ctx.world.mms()) {
    for (MmuIntervalNotifier* sub : mm->notifier_subscriptions().debug_subscriptions()) {
      for (const auto& page : sub->ops()->debug_mirrored_pages()) {
        std::optional<CpuView> cpu = cpu_view(ctx.world, index, mm, page.addr);
        std::string why;
        if (!cpu) {
          why = ", where the CPU maps nothing";
        } else if (cpu->pfn != page.pfn) {
          why = fmt::format(", where the CPU maps pfn {:#x}", cpu->pfn.v);
        } else if (page.write && !cpu->write) {
          why = ", which the CPU maps read-only";
        } else {
          continue;
        }
        ctx.fail("I16", "check_mirrors_coherent_with_cpu",
                 fmt::format("mirror of pid {} maps pfn {:#x}{} at {:#x}{}", mm->pid(), page.pfn.v,
                             page.write ? " writable" : "", page.addr.v, why),
                 mm_dump(ctx.census, *mm));
      }
    }
  }
}

}  // namespace hmmsim::check
