// Folio invariants: mapcounts, refcounts, locks and exclusivity against the
// census of page-table entries; and the frames outside any folio.
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "check/checks.h"
#include "mm/rmap.h"

namespace hmmsim::check {

void for_each_allocated_folio(World& world, const std::function<void(Folio)>& fn) {
  for (const auto& owned : world.mem().ranges()) {
    MemRange& range = *owned;
    bool ram = range.kind() == MemKind::kSystem;
    uint64_t idx = 0;
    while (idx < range.nr_pages()) {
      Page& p = range.page(range.base() + idx);
      if (p.test(kPgBuddy)) {
        idx += uint64_t{1} << p.order;
        continue;
      }
      // A tail met here has lost its head; check_no_leaked_frames names it.
      if (p.test(kPgReserved) || p.test(kPgTail) || (!ram && p.refcount.load() == 0)) {
        idx++;
        continue;
      }
      Folio folio(&range, &p);
      fn(folio);
      idx += folio.nr_pages();
    }
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

// I3: every mapping holds a reference, so refcount >= mapcount; a mapped
// folio whose refcount fell to zero is reported here too.
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

// I10: a writable anon mapping (a present or device-private entry with the
// write bit) maps a PageAnonExclusive page; for a PMD the flag lives on the
// head page. Linux: try_to_migrate_one's VM_WARN_ON_FOLIO(writable && anon
// && !anon_exclusive), remove_migration_pmd's VM_BUG_ON(pmd_write && anon &&
// !PageAnonExclusive). A migration WRITE entry is not checked here: while a
// folio migrates its pages are no longer PageAnonExclusive
// (folio_try_share_anon_rmap_pte cleared it) and the entry itself records the
// exclusivity; see check_exclusive_page_mapped_once.
void check_writable_implies_exclusive(const Ctx& ctx) {
  for (const EntryRef& e : ctx.census.entries) {
    bool writable = e.pmd_level ? e.pmd.maps_folio() && e.pmd.write()
                                : e.pte.maps_folio() && e.pte.write();
    if (!writable) continue;
    Pfn pfn = e.pmd_level ? e.pmd.pfn() : e.pte.pfn();
    MemRange* range = ctx.world.mem().range_of(pfn);
    if (!range) continue;
    Folio folio = page_folio(*range, pfn);
    if (!folio_test_anon(folio)) continue;
    if (!PageAnonExclusive(range->page(pfn))) {
      ctx.fail("I10", "check_writable_implies_exclusive",
               fmt::format("writable mapping of page {:#x}, which is not anon-exclusive: {}",
                           pfn.v, e.describe()),
               folio_dump(ctx.world, ctx.census, folio));
    }
  }
}

namespace {

// Whether `other` names the page `e` names (a PMD entry names every page of
// its folio).
bool names_same_page(const EntryRef& e, const EntryRef& other) {
  return e.pmd_level || other.pmd_level || e.pte.pfn() == other.pte.pfn();
}

bool is_exclusive_migration(const EntryRef& e) {
  if (e.pmd_level) {
    return e.pmd.kind() == PmdKind::kMigration && e.pmd.migration_kind() != MigrationKind::kRead;
  }
  return e.pte.is_migration() && e.pte.migration_kind() != MigrationKind::kRead;
}

// A write or read-exclusive migration entry stands for an exclusive mapping
// (remove_migration_pte restores it with RMAP_EXCLUSIVE), so it is the only
// entry naming its page.
void check_exclusive_migration_entries(const Ctx& ctx) {
  for (const EntryRef& e : ctx.census.entries) {
    if (!is_exclusive_migration(e)) continue;
    Pfn pfn = e.pmd_level ? e.pmd.pfn() : e.pte.pfn();
    MemRange* range = ctx.world.mem().range_of(pfn);
    if (!range) continue;
    Folio folio = page_folio(*range, pfn);
    for (size_t idx : ctx.census.folio_entries.at(folio.pfn().v)) {
      const EntryRef& other = ctx.census.entries[idx];
      if (&other == &e || !names_same_page(e, other)) continue;
      ctx.fail("I10", "check_exclusive_page_mapped_once",
               fmt::format("exclusive migration entry for page {:#x} ({}) is not alone: {}",
                           pfn.v, e.describe(), other.describe()),
               folio_dump(ctx.world, ctx.census, folio));
      break;
    }
  }
}

// A PageAnonExclusive page is mapped by at most one entry, PTE or PMD.
void check_exclusive_pages(const Ctx& ctx) {
  for_each_allocated_folio(ctx.world, [&](Folio folio) {
    int32_t pmds = count_or_zero(ctx.census.folio_pmd_maps, folio.pfn().v);
    for (uint64_t i = 0; i < folio.nr_pages(); i++) {
      if (!PageAnonExclusive(folio.page(i))) continue;
      int32_t maps = count_or_zero(ctx.census.page_pte_maps, folio.pfn().v + i) + pmds;
      if (maps <= 1) continue;
      ctx.fail("I10", "check_exclusive_page_mapped_once",
               fmt::format("anon-exclusive page {:#x} is mapped {} times", folio.pfn().v + i,
                           maps),
               folio_dump(ctx.world, ctx.census, folio));
      return;
    }
  });
}

}  // namespace

// I10: exclusivity belongs to one mapping. A PageAnonExclusive page is
// mapped once (Linux: __folio_add_anon_rmap's VM_WARN_ON_FOLIO(large &&
// entire_mapcount > 1 && PageAnonExclusive) and its _mapcount > 0 warning),
// and an exclusive migration entry is the only entry naming its page
// (try_to_migrate_one encodes PageAnonExclusive in the entry it installs).
void check_exclusive_page_mapped_once(const Ctx& ctx) {
  check_exclusive_pages(ctx);
  check_exclusive_migration_entries(ctx);
}

namespace {

// The first frame of the free block [idx, idx + nr) that carries state:
// only the block's head may have a flag, PG_buddy.
const Page* first_dirty_free_frame(const MemRange& range, uint64_t idx, uint64_t nr) {
  for (uint64_t i = 0; i < nr; i++) {
    const Page& p = range.page(range.base() + idx + i);
    uint32_t allowed = i == 0 ? static_cast<uint32_t>(kPgBuddy) : 0;
    bool clean = p.refcount.load() == 0 && p.mapcount.load() == -1 && !p.has_data() &&
                 p.mapping == nullptr && p.flags.load() == allowed;
    if (!clean) return &p;
  }
  return nullptr;
}

// Calls fn(idx, nr) for every free block of RAM (a PG_buddy head and its order).
void for_each_free_block(const MemRange& range, const std::function<void(uint64_t, uint64_t)>& fn) {
  uint64_t idx = 0;
  while (idx < range.nr_pages()) {
    const Page& p = range.page(range.base() + idx);
    if (!p.test(kPgBuddy)) {
      idx++;
      continue;
    }
    uint64_t nr = std::min(uint64_t{1} << p.order, range.nr_pages() - idx);
    fn(idx, nr);
    idx += nr;
  }
}

}  // namespace

// Free frames carry no state: no refcount, no mapcount, no mapping, no flags
// but PG_buddy on a block's head, no bytes; and the free lists hold exactly
// the frames so marked. Linux: free_page_is_bad() when a page is freed and
// check_new_page() when it is allocated (bad_page()).
void check_free_pages_clean(const Ctx& ctx) {
  MemRange& range = ctx.world.mem().system();
  uint64_t marked = 0;
  for_each_free_block(range, [&](uint64_t idx, uint64_t nr) {
    marked += nr;
    if (const Page* bad = first_dirty_free_frame(range, idx, nr)) {
      ctx.fail("BUDDY", "check_free_pages_clean",
               fmt::format("free frame {:#x} (in the free block at {:#x}) is not clean",
                           bad->pfn, range.base().v + idx),
               page_dump(*bad));
    }
  });
  uint64_t listed = ctx.world.mem().buddy().nr_free_pages();
  if (listed != marked) {
    ctx.fail("BUDDY", "check_free_pages_clean",
             fmt::format("the free lists count {} frames but {} frames are in free blocks",
                         listed, marked));
  }
}

// Every frame of RAM is free, reserved, or in a folio somebody holds a
// reference on. A frame taken from the buddy allocator and never made into a
// folio, or a folio whose last reference went away without __free_pages(),
// is lost for good; Linux has no assertion for it (the frames just vanish
// from MemFree), so the model checks it here.
void check_no_leaked_frames(const Ctx& ctx) {
  MemRange& range = ctx.world.mem().system();
  std::vector<bool> accounted(range.nr_pages());
  auto account = [&](uint64_t idx, uint64_t nr) {
    for (uint64_t i = idx; i < idx + nr && i < accounted.size(); i++) accounted[i] = true;
  };
  for_each_free_block(range, account);
  std::vector<const Page*> unreferenced;
  for_each_allocated_folio(ctx.world, [&](Folio folio) {
    if (&folio.range() != &range) return;
    account(folio.pfn() - range.base(), folio.nr_pages());
    if (folio_ref_count(folio) == 0) unreferenced.push_back(&folio.head());
  });
  for (uint64_t idx = 0; idx < range.nr_pages(); idx++) {
    if (range.page(range.base() + idx).test(kPgReserved)) accounted[idx] = true;
  }
  if (!unreferenced.empty()) {
    ctx.fail("BUDDY", "check_no_leaked_frames",
             fmt::format("frame {:#x} (and {} more) is neither free nor referenced: leaked",
                         unreferenced.front()->pfn, unreferenced.size() - 1),
             page_dump(*unreferenced.front()));
  }
  for (uint64_t idx = 0; idx < range.nr_pages(); idx++) {
    if (accounted[idx]) continue;
    const Page& p = range.page(range.base() + idx);
    ctx.fail("BUDDY", "check_no_leaked_frames",
             fmt::format("frame {:#x} is neither free, reserved nor in a folio", p.pfn),
             page_dump(p));
    return;
  }
}

}  // namespace hmmsim::check
