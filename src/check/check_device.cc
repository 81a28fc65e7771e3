// ZONE_DEVICE invariants: device-private folios and their pagemaps.
#include <fmt/format.h>

#include "check/checks.h"
#include "mm/memremap.h"

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

}  // namespace hmmsim::check
