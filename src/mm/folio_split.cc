// Splitting a large folio into order-0 folios (Linux mm/huge_memory.c:
// __folio_split, __split_unmapped_folio, folio_split_unmapped).
//
// The rule: a folio is split only while nothing maps it. split_folio()
//   1. locks the anon_vma and checks that every reference is explained
//      (can_split_folio), else -EAGAIN;
//   2. unmaps every mapping into migration entries (try_to_migrate, which
//      also splits PMD mappings with freeze);
//   3. freezes the refcount at exactly the caller's pin (folio_ref_freeze),
//      else -EAGAIN: a reference appeared, nothing is split, and the
//      mappings come back (as PTEs where a PMD was);
//   4. rewrites the page descriptors into 512 folios and unfreezes each;
//   5. restores every migration entry to the new folio it now names, mapping
//      all-zero pages to the shared zero page instead;
//   6. unlocks and releases every new folio but the head.
#include "base/assert.h"
#include "mm/deferred_split.h"
#include "mm/huge_memory.h"
#include "mm/memremap.h"
#include "mm/migrate.h"
#include "mm/rmap.h"
#include "mm/vmstat.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

// Flags every new folio inherits from the old head (__split_folio_to_order).
constexpr uint32_t kSplitInherited =
    kPgLocked | kPgAnon | kPgDirty | kPgLru | kPgSwapBacked;

// __split_unmapped_folio() to order 0: rewrite the descriptors of a frozen,
// unmapped folio and unfreeze every new folio at its expected count + 1.
void split_frozen_folio(Folio folio) {
  Page& head = folio.head();
  HMM_ASSERT(folio_ref_count(folio) == 0, "I11: splitting folio {:#x} that is not frozen",
             folio.pfn().v);
  HMM_ASSERT(!folio_mapped(folio), "I11: splitting mapped folio {:#x} (mapcount {})",
             folio.pfn().v, folio_mapcount(folio));
  if (DeferredSplitQueue* queue = folio.range().deferred_split()) queue->remove(folio);
  uint32_t inherited = head.flags.load() & kSplitInherited;
  uint64_t nr = folio.nr_pages();
  for (uint64_t i = 1; i < nr; i++) {
    Page& p = folio.page(i);
    HMM_ASSERT(p.mapcount.load() == -1, "I12: tail {:#x} of folio {:#x} has mapcount {}", p.pfn,
               folio.pfn().v, p.mapcount.load());
    p.clear(kPgTail);
    p.set(static_cast<PageFlag>(inherited));
    p.head_offset = 0;
    p.order = 0;
    p.mapping = head.mapping;
    p.index = head.index + i;
    p.list_prev = p.list_next = 0;  // page 1 held the MM-id slots
  }
  head.clear(kPgHead);
  head.clear(kPgLargeRmappable);
  head.clear(kPgPartiallyMapped);
  head.clear(kPgMaybeMappedShared);
  head.order = 0;
  head.large_mapcount.store(-1);
  head.entire_mapcount.store(-1);
  head.nr_pages_mapped.store(0);
  // Tails first, head last, each at folio_expected_ref_count() + 1; a
  // device driver hears of each new folio (zone_device_private_split_cb).
  DevPagemap* pgmap = folio_pgmap(folio);
  for (uint64_t i = 1; i < nr; i++) {
    Folio tail = page_folio(folio.range(), folio.pfn() + i);
    if (pgmap) pgmap->ops().folio_split(folio, tail);
    folio_ref_unfreeze(tail, folio_expected_ref_count(tail) + 1);
  }
  if (pgmap) pgmap->ops().folio_split(folio, Folio());
  folio_ref_unfreeze(folio, folio_expected_ref_count(folio) + 1);
}

// remap_page(): restore the migration entries of every new folio.
void remap_page(Folio folio, uint64_t nr, uint32_t rmp_flags) {
  if (nr == 1 || folio.is_large()) {  // the split failed: one folio
    remove_migration_ptes(folio, folio, rmp_flags);
    return;
  }
  for (uint64_t i = 0; i < nr; i++) {
    Folio f = page_folio(folio.range(), folio.pfn() + i);
    remove_migration_ptes(f, f, rmp_flags);
  }
}

// Unlock and release every new folio except `keep` (the caller's).
void release_split_folios(Folio head, uint64_t nr, Folio keep) {
  for (uint64_t i = 0; i < nr; i++) {
    Folio f = page_folio(head.range(), head.pfn() + i);
    if (f == keep) continue;
    folio_unlock(f);
    folio_put(f);
  }
}

void check_splittable(Folio folio) {
  HMM_ASSERT(folio_test_locked(folio), "split of unlocked folio {:#x}", folio.pfn().v);
  HMM_ASSERT(folio.is_large(), "split of small folio {:#x}", folio.pfn().v);
}

}  // namespace

bool can_split_folio(Folio folio, int32_t caller_pins) {
  return folio_mapcount(folio) == folio_ref_count(folio) - caller_pins;
}

Status split_folio(World& world, Folio folio) {
  check_splittable(folio);
  if (!folio_test_anon(folio)) return Err{Errno::kBusy};
  AnonVma* av = folio_get_anon_vma(folio);
  if (!av) return Err{Errno::kBusy};
  uint64_t nr = folio.nr_pages();
  Status ret = Ok();
  anon_vma_lock_write(av);
  if (!can_split_folio(folio, 1)) {
    ret = Err{Errno::kAgain};
  } else {
    try_to_migrate(folio, TtuFlags::kSplitHugePmd | TtuFlags::kRmapLocked);
    world.fault_points().hit("split_folio:before_freeze");
    if (folio_ref_freeze(folio, 1)) {
      split_frozen_folio(folio);
      world.stats().count(VmEvent::kThpSplitPage);
    } else {
      ret = Err{Errno::kAgain};
    }
    uint32_t rmp = RmpFlags::kLocked | (ret.ok() ? RmpFlags::kUseSharedZeropage : 0u);
    remap_page(folio, ret.ok() ? nr : 1, rmp);
  }
  anon_vma_unlock_write(av);
  put_anon_vma(world, av);
  if (!ret.ok()) {
    world.stats().count(VmEvent::kThpSplitPageFailed);
    return ret;
  }
  release_split_folios(folio, nr, folio);
  return Ok();
}

Status folio_split_unmapped(World& world, Folio folio) {
  check_splittable(folio);
  HMM_ASSERT(folio_test_anon(folio), "folio_split_unmapped of non-anon folio {:#x}",
             folio.pfn().v);
  HMM_ASSERT(!folio_mapped(folio), "I11: folio_split_unmapped of mapped folio {:#x}",
             folio.pfn().v);
  if (!can_split_folio(folio, 1)) return Err{Errno::kAgain};
  if (!folio_ref_freeze(folio, 1)) return Err{Errno::kAgain};
  split_frozen_folio(folio);
  world.stats().count(VmEvent::kThpSplitPage);
  return Ok();
}

}  // namespace hmmsim
