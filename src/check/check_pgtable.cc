// Page-table invariants: where entries may be, what they may point at, and
// the per-mm counters that account for them.
#include <fmt/format.h>

#include "check/checks.h"

namespace hmmsim::check {

// Page-table entries exist only inside Vmas: munmap zaps before it removes
// a Vma, and faults happen only inside one (Linux: unmap_region, the
// find_vma checks of the fault path).
void check_entries_inside_vmas(const Ctx& ctx) {
  for (const EntryRef& e : ctx.census.entries) {
    if (!e.vma) {
      ctx.fail("PT", "check_entries_inside_vmas",
               fmt::format("entry outside any Vma: {}", e.describe()));
    }
  }
}

// Every entry that names a pfn names a frame of a live folio (an entry never
// outlives the reference it holds, and a migration entry's folio is held by
// its migrator). Present entries map system RAM only.
void check_entries_point_at_live_folios(const Ctx& ctx) {
  for (const EntryRef& e : ctx.census.entries) {
    bool has_pfn = e.pmd_level ? e.pmd.has_pfn() : e.pte.has_pfn();
    if (!has_pfn) continue;
    Pfn pfn = e.pmd_level ? e.pmd.pfn() : e.pte.pfn();
    MemRange* range = ctx.world.mem().range_of(pfn);
    if (!range) {
      ctx.fail("PT", "check_entries_point_at_live_folios",
               fmt::format("entry names a pfn outside memory: {}", e.describe()));
      continue;
    }
    const Page& p = range->page(pfn);
    bool live = !p.test(kPgBuddy) && !p.test(kPgReserved) &&
                (p.test(kPgTail) || p.refcount.load() > 0 || p.test(kPgLocked));
    if (!live) {
      ctx.fail("PT", "check_entries_point_at_live_folios",
               fmt::format("entry names a free frame: {}", e.describe()));
    }
  }
}

// I6: a PMD that is neither none nor a table is a present THP, the huge zero
// page, a migration entry or a device-private entry (pmd_is_valid_softleaf);
// I2: a PMD leaf maps the head of a PMD-order folio.
void check_pmd_leaf_kinds(const Ctx& ctx) {
  for (const EntryRef& e : ctx.census.entries) {
    if (!e.pmd_level) continue;
    if (!e.addr.pmd_aligned()) {
      ctx.fail("I6", "check_pmd_leaf_kinds", "misaligned PMD leaf: " + e.describe());
      continue;
    }
    if (!e.pmd.has_pfn()) continue;
    MemRange* range = ctx.world.mem().range_of(e.pmd.pfn());
    if (!range) continue;
    Folio folio = page_folio(*range, e.pmd.pfn());
    if (folio.pfn() != e.pmd.pfn() || folio.order().v != kHPageOrder) {
      ctx.fail("I2", "check_pmd_leaf_kinds",
               fmt::format("PMD leaf does not map the head of an order-9 folio: {}",
                           e.describe()));
    }
  }
}

// I7: mm->nr_ptes counts every PTE table, including the one deposited for
// each PMD-mapped THP (pgtable_trans_huge_deposit, mm_inc_nr_ptes); a PMD
// slot holds a table exactly when it says so, and a deposit exactly when it
// maps an anonymous THP.
void check_nr_ptes_and_deposits(const Ctx& ctx) {
  for (MmStruct* mm : ctx.world.mms()) {
    auto it = ctx.census.mms.find(mm);
    int64_t tables = it == ctx.census.mms.end() ? 0 : it->second.pte_tables;
    if (mm->nr_ptes() != tables) {
      ctx.fail("I7", "check_nr_ptes_and_deposits",
               fmt::format("mm {} nr_ptes is {} but {} PTE tables exist", mm->pid(),
                           mm->nr_ptes(), tables));
    }
    const PgdTable& pgd = mm->pgd_quiesced();
    for (unsigned g = 0; g < kPtrsPerTable; g++) {
      if (!pgd.puds[g]) continue;
      for (unsigned u = 0; u < kPtrsPerTable; u++) {
        const PmdTable* pmdt = pgd.puds[g]->pmds[u].get();
        if (!pmdt) continue;
        for (unsigned m = 0; m < kPtrsPerTable; m++) {
          const PmdSlot& slot = pmdt->peek(m);
          bool wants_deposit = slot.entry.is_huge() && slot.entry.kind() != PmdKind::kHugeZero;
          if (slot.entry.is_table() != (slot.table != nullptr) ||
              wants_deposit != (slot.deposit != nullptr)) {
            ctx.fail("I7", "check_nr_ptes_and_deposits",
                     fmt::format("mm {} PMD slot {:#x}: entry {} table {} deposit {}", mm->pid(),
                                 uint64_t{g} * kPgdSize + uint64_t{u} * kPudSize +
                                     uint64_t{m} * kPmdSize,
                                 slot.entry.describe(), slot.table ? "yes" : "no",
                                 slot.deposit ? "yes" : "no"));
          }
        }
      }
    }
  }
}

// I8: MM_ANONPAGES counts every page mapped by a present, migration,
// device-private or device-exclusive entry (512 per PMD leaf).
// Linux: add_mm_counter() in the fault, copy and zap paths.
void check_anon_rss(const Ctx& ctx) {
  for (MmStruct* mm : ctx.world.mms()) {
    auto it = ctx.census.mms.find(mm);
    int64_t counted = it == ctx.census.mms.end() ? 0 : it->second.anon_entries;
    if (mm->anon_rss() != counted) {
      ctx.fail("I8", "check_anon_rss",
               fmt::format("mm {} MM_ANONPAGES is {} but its entries map {} pages", mm->pid(),
                           mm->anon_rss(), counted));
    }
  }
}

}  // namespace hmmsim::check
