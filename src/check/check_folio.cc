// Folio invariants: mapcounts, refcounts, locks and exclusivity against the
// census of page-table entries.
#include <fmt/format.h>

#include "check/checks.h"
#include "mm/rmap.h"

namespace hmmsim::check {

void for_each_allocated_folio(World& world, const std::function<void(Folio)>& fn) {
  MemRange& range = world.mem().system();
  uint64_t idx = 0;
  while (idx < range.nr_pages()) {
    Page& p = range.page(range.base() + idx);
    if (p.test(kPgBuddy)) {
      idx += uint64_t{1} << p.order;
      continue;
    }
    if (p.test(kPgReserved) || p.test(kPgTail) || p.refcount.load() == 0) {
      idx++;
      continue;
    }
    Folio folio(&range, &p);
    fn(folio);
    idx += folio.nr_pages();
  }
}

namespace {

int32_t count_or_zero(const std::unordered_map<uint64_t, int32_t>& m, uint64_t key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

}  // namespace

// I1: every mapping (present, device-private or device-exclusive PTE, and
// present or device-private PMD) adds exactly one to the mapcount of what it
// maps; migration entries add nothing. Linux: __folio_add_rmap /
// __folio_remove_rmap bookkeeping, print_bad_pte, zap_huge_pmd's
// WARN_ON_ONCE(folio_mapcount < 0). I2: the entire mapcount counts the PMDs.
void check_mapcount_matches_mappings(const Ctx& ctx) {
  for_each_allocated_folio(ctx.world, [&](Folio folio) {
    int32_t pmds = count_or_zero(ctx.census.folio_pmd_maps, folio.pfn().v);
    int32_t ptes = 0;
    int32_t pages_mapped = 0;
    for (uint64_t i = 0; i < folio.nr_pages(); i++) {
      int32_t n = count_or_zero(ctx.census.page_pte_maps, folio.pfn().v + i);
      ptes += n;
      if (n > 0) pages_mapped++;
      if (page_pte_mapcount(folio.page(i)) != n) {
        ctx.fail("I1", "check_mapcount_matches_mappings",
                 fmt::format("page {:#x} has mapcount {} but {} PTEs map it",
                             folio.pfn().v + i, page_pte_mapcount(folio.page(i)), n),
                 folio_dump(ctx.world, ctx.census, folio));
        return;
      }
    }
    if (folio_mapcount(folio) != ptes + pmds) {
      ctx.fail("I1", "check_mapcount_matches_mappings",
               fmt::format("folio {:#x} has mapcount {} but {} PTEs and {} PMDs map it",
                           folio.pfn().v, folio_mapcount(folio), ptes, pmds),
               folio_dump(ctx.world, ctx.census, folio));
      return;
    }
    if (!folio.is_large()) return;
    int32_t expect_nr = pages_mapped + (pmds > 0 ? kEntirelyMapped : 0);
    if (folio_entire_mapcount(folio) != pmds || folio_nr_pages_mapped(folio) != expect_nr) {
      ctx.fail("I2", "check_mapcount_matches_mappings",
               fmt::format("folio {:#x}: entire mapcount {} / nr_pages_mapped {:#x}, expected "
                           "{} / {:#x}",
                           folio.pfn().v, folio_entire_mapcount(folio),
                           folio_nr_pages_mapped(folio), pmds, expect_nr),
               folio_dump(ctx.world, ctx.census, folio));
    }
  });
}

// I3: every mapping holds a reference, so refcount >= mapcount.
// Linux: folio_expected_ref_count(), can_split_folio(), folio_migrate_mapping().
void check_refcount_covers_mappings(const Ctx& ctx) {
  for_each_allocated_folio(ctx.world, [&](Folio folio) {
    if (folio_ref_count(folio) < folio_expected_ref_count(folio)) {
      ctx.fail("I3", "check_refcount_covers_mappings",
               fmt::format("folio {:#x} has refcount {} below its {} mappings", folio.pfn().v,
                           folio_ref_count(folio), folio_expected_ref_count(folio)),
               folio_dump(ctx.world, ctx.census, folio));
    }
  });
}

// I4: a folio named by a migration entry is locked by its migrator; waiters
// sleep on that lock (migration_entry_wait_on_locked, rmap_walk_anon's
// VM_WARN_ON_FOLIO(!folio_test_locked)).
void check_migration_entry_folio_locked(const Ctx& ctx) {
  for (const EntryRef& e : ctx.census.entries) {
    bool migration = e.pmd_level ? e.pmd.kind() == PmdKind::kMigration : e.pte.is_migration();
    if (!migration) continue;
    Pfn pfn = e.pmd_level ? e.pmd.pfn() : e.pte.pfn();
    MemRange* range = ctx.world.mem().range_of(pfn);
    if (!range) continue;  // reported by check_entries_point_at_live_folios
    Folio folio = page_folio(*range, pfn);
    if (!folio_test_locked(folio)) {
      ctx.fail("I4", "check_migration_entry_folio_locked",
               fmt::format("migration entry for unlocked folio {:#x}: {}", folio.pfn().v,
                           e.describe()),
               folio_dump(ctx.world, ctx.census, folio));
    }
  }
}

// I10: a writable anon mapping (present, device-private, or a migration
// WRITE entry) maps a PageAnonExclusive page. Linux: try_to_migrate_one's
// VM_WARN_ON_FOLIO(writable && !anon_exclusive), remove_migration_pmd's
// VM_BUG_ON, __folio_add_anon_rmap.
void check_writable_implies_exclusive(const Ctx& ctx) {
  for (const EntryRef& e : ctx.census.entries) {
    bool writable;
    Pfn pfn;
    if (e.pmd_level) {
      writable = (e.pmd.maps_folio() && e.pmd.write()) ||
                 (e.pmd.kind() == PmdKind::kMigration &&
                  e.pmd.migration_kind() == MigrationKind::kWrite);
      pfn = e.pmd.pfn();
    } else {
      writable = (e.pte.maps_folio() && e.pte.write()) ||
                 (e.pte.is_migration() && e.pte.migration_kind() == MigrationKind::kWrite);
      pfn = e.pte.pfn();
    }
    if (!writable) continue;
    MemRange* range = ctx.world.mem().range_of(pfn);
    if (!range) continue;
    Folio folio = page_folio(*range, pfn);
    if (!folio_test_anon(folio)) continue;
    if (!PageAnonExclusive(range->page(pfn))) {
      ctx.fail("I10", "check_writable_implies_exclusive",
               fmt::format("writable mapping of a page that is not anon-exclusive: {}",
                           e.describe()),
               folio_dump(ctx.world, ctx.census, folio));
    }
  }
}

// Free frames (in the buddy allocator) carry no state: no refcount, no
// mapcount, no flags but the buddy marker, no bytes; and every frame is
// either free, allocated or reserved (nothing leaks).
void check_free_pages_unused(const Ctx& ctx) {
  MemRange& range = ctx.world.mem().system();
  uint64_t allocated = 1;  // the reserved zero page
  for_each_allocated_folio(ctx.world, [&](Folio folio) { allocated += folio.nr_pages(); });
  uint64_t free = ctx.world.mem().buddy().nr_free_pages();
  if (allocated + free != range.nr_pages()) {
    ctx.fail("BUDDY", "check_free_pages_unused",
             fmt::format("{} frames allocated + {} free != {} frames: frames leaked", allocated,
                         free, range.nr_pages()));
  }
  for (uint64_t idx = 0; idx < range.nr_pages(); idx++) {
    const Page& p = range.page(range.base() + idx);
    if (p.test(kPgReserved)) continue;
    bool allocated_head = p.refcount.load() > 0 && !p.test(kPgTail);
    if (allocated_head) {
      idx += (uint64_t{1} << p.order) - 1;
      continue;
    }
    bool ok = p.refcount.load() == 0 && p.mapcount.load() == -1 && !p.data &&
              (p.flags.load() & ~static_cast<uint32_t>(kPgBuddy)) == 0;
    if (!ok) {
      ctx.fail("BUDDY", "check_free_pages_unused",
               fmt::format("free frame {:#x} has refcount {} mapcount {} flags {:#x}{}", p.pfn,
                           p.refcount.load(), p.mapcount.load(), p.flags.load(),
                           p.data ? " and data" : ""));
      return;
    }
  }
}

}  // namespace hmmsim::check
