// THP invariants: the deferred split queue.
#include <fmt/format.h>

#include <set>

#include "check/checks.h"
#include "mm/deferred_split.h"

namespace hmmsim::check {

// DSQ: the deferred split queue holds only live, large, anonymous RAM
// folios, and PG_partially_mapped is set only on queued ones. Linux:
// deferred_split_folio() from __folio_remove_rmap(), the partially_mapped
// flag kept under split_queue_lock, folio_unqueue_deferred_split() on free
// and split. Device-private folios are never queued (I9).
//
// A THP mapped in part is not always queued: only removing a mapping
// queues it. Eviction of a partly unmapped device THP restores migration
// entries into a new RAM THP that was never fully mapped, and 6.19 leaves it
// off the queue (docs/findings.md, F2), so that is not checked.
void check_deferred_split_queue(const Ctx& ctx) {
  DeferredSplitQueue& queue = ctx.world.mem().deferred_split();
  std::set<uint64_t> queued;
  for (Folio folio : queue.snapshot()) {
    queued.insert(folio.pfn().v);
    bool ok = folio.is_large() && folio_test_anon(folio) && !folio.is_device_private() &&
              folio_ref_count(folio) > 0;
    if (!ok) {
      ctx.fail("DSQ", "check_deferred_split_queue",
               fmt::format("folio {:#x} on the deferred split queue is not a live anon THP",
                           folio.pfn().v),
               folio_dump(ctx.world, ctx.census, folio));
    }
  }
  for_each_allocated_folio(ctx.world, [&](Folio folio) {
    if (!folio.is_large()) return;
    bool flagged = folio.test(kPgPartiallyMapped);
    if (flagged != queue.queued(folio) && flagged) {
      ctx.fail("DSQ", "check_deferred_split_queue",
               fmt::format("folio {:#x} is marked partially mapped but not queued",
                           folio.pfn().v),
               folio_dump(ctx.world, ctx.census, folio));
      return;
    }
    if (queue.queued(folio) != (queued.count(folio.pfn().v) != 0)) {
      ctx.fail("DSQ", "check_deferred_split_queue",
               fmt::format("folio {:#x}: queued flag disagrees with the queue", folio.pfn().v));
      return;
    }
  });
}

}  // namespace hmmsim::check
