// Page-table invariants: where entries may be, what they may point at, and
// the per-mm counters that account for them.
#include <fmt/format.h>

#include "check/checks.h"

namespace hmmsim::check {

// Page-table entries exist only inside Vmas, and a PMD leaf only where one
// Vma covers its whole 2 MiB: munmap zaps before it removes a Vma, faults
// happen only inside one, and a Vma split splits a PMD leaf it cuts through
// (Linux: unmap_region, the find_vma checks of the fault path,
// vma_adjust_trans_huge / split_huge_pmd_if_needed).
void check_entries_inside_vmas(const Ctx& ctx) {
  for (const EntryRef& e : ctx.census.entries) {
    if (!e.vma) {
      ctx.fail("PT", "check_entries_inside_vmas",
               fmt::format("entry outside any Vma: {}", e.describe()),
               mm_dump(ctx.census, *e.mm));
    } else if (e.pmd_level && e.vma->end() < e.addr + kPmdSize) {
      ctx.fail("PT", "check_entries_inside_vmas",
               fmt::format("PMD leaf runs past the end {:#x} of its Vma: {}", e.vma->end().v,
                           e.describe()),
               mm_dump(ctx.census, *e.mm));
    }
  }
}

// Every entry that names a pfn names a frame of a live folio (an entry never
// outlives the reference it holds, and a migration entry's folio is held by
// its migrator).
void check_entries_point_at_live_folios(const Ctx& ctx) {
  for (const EntryRef& e : ctx.census.entries) {
    bool has_pfn = e.pmd_level ? e.pmd.has_pfn() : e.pte.has_pfn();
    if (!has_pfn) continue;
    Pfn pfn = e.pmd_level ? e.pmd.pfn() : e.pte.pfn();
    MemRange* range = ctx.world.mem().range_of(pfn);
    if (!range) {
      ctx.fail("PT", "check_entries_point_at_live_folios",
               fmt::format("entry names pfn {:#x}, outside memory: {}", pfn.v, e.describe()),
               mm_dump(ctx.census, *e.mm));
      continue;
    }
    const Page& p = range->page(pfn);
    bool live = !p.test(kPgBuddy) && !p.test(kPgReserved) &&
                (p.test(kPgTail) || p.refcount.load() > 0 || p.test(kPgLocked));
    if (!live) {
      ctx.fail("PT", "check_entries_point_at_live_folios",
               fmt::format("entry names free frame {:#x}: {}", pfn.v, e.describe()),
               page_dump(p));
    }
  }
}

// I5: the CPU never maps device-private memory. Present (and
// device-exclusive) entries name RAM; device-private pages are reached only
// through device-private entries, and those name device-private pages.
// Linux has no single assertion; construction sites keep it
// (migrate_vma_insert_page, remove_migration_pte/pmd turn a device-private
// destination into a device-private entry).
void check_no_present_entry_to_device_private(const Ctx& ctx) {
  for (const EntryRef& e : ctx.census.entries) {
    if (e.pmd_level ? !e.pmd.maps_folio() : !e.pte.maps_folio()) continue;
    Pfn pfn = e.pmd_level ? e.pmd.pfn() : e.pte.pfn();
    MemRange* range = ctx.world.mem().range_of(pfn);
    if (!range) continue;  // reported by check_entries_point_at_live_folios
    bool device_page = range->kind() == MemKind::kDevicePrivate;
    bool device_entry = e.pmd_level ? e.pmd.kind() == PmdKind::kDevicePrivate
                                    : e.pte.kind() == PteKind::kDevicePrivate;
    // A device-private PMD naming RAM is an invalid softleaf (I6).
    if (device_entry == device_page || (device_entry && e.pmd_level)) continue;
    ctx.fail("I5", "check_no_present_entry_to_device_private",
             fmt::format("entry names {} page {:#x}: {}", device_page ? "device-private" : "RAM",
                         pfn.v, e.describe()),
             folio_dump(ctx.world, ctx.census, page_folio(*range, pfn)));
  }
}

// I2: a PMD leaf maps the head of a PMD-order folio, whether present,
// migration or device-private. Linux: VM_BUG_ON_PAGE(!PageHead) in
// zap_huge_pmd and copy_huge_pmd, VM_WARN_ON(!folio_test_large) in
// copy_huge_non_present_pmd.
void check_pmd_maps_thp_head(const Ctx& ctx) {
  for (const EntryRef& e : ctx.census.entries) {
    if (!e.pmd_level || !e.pmd.has_pfn()) continue;
    MemRange* range = ctx.world.mem().range_of(e.pmd.pfn());
    if (!range) continue;
    Folio folio = page_folio(*range, e.pmd.pfn());
    if (folio.pfn() != e.pmd.pfn() || folio.order().v != kHPageOrder) {
      ctx.fail("I2", "check_pmd_maps_thp_head",
               fmt::format("PMD leaf names pfn {:#x}, not the head of an order-9 folio: {}",
                           e.pmd.pfn().v, e.describe()),
               folio_dump(ctx.world, ctx.census, folio));
    }
  }
}

// I6: a PMD that is neither none, a table, a present THP nor the huge zero
// page is a valid softleaf (pmd_is_valid_softleaf): a migration entry, or a
// device-private entry that names device-private memory. The model's closed
// Pmd type cannot hold any other softleaf kind, so what is left to go wrong
// is the memory it names. Linux: VM_WARN_ON(!pmd_is_valid_softleaf) in
// copy_huge_non_present_pmd, change_non_present_huge_pmd and
// __split_huge_pmd_locked; remove_migration_pmd makes a device-private PMD
// only for a device-private folio.
void check_pmd_softleaf_valid(const Ctx& ctx) {
  for (const EntryRef& e : ctx.census.entries) {
    if (!e.pmd_level || e.pmd.kind() != PmdKind::kDevicePrivate) continue;
    MemRange* range = ctx.world.mem().range_of(e.pmd.pfn());
    if (!range || range->kind() == MemKind::kDevicePrivate) continue;
    ctx.fail("I6", "check_pmd_softleaf_valid",
             fmt::format("device-private PMD names RAM page {:#x}: {}", e.pmd.pfn().v,
                         e.describe()),
             folio_dump(ctx.world, ctx.census, page_folio(*range, e.pmd.pfn())));
  }
}

// I7: mm->nr_ptes counts every PTE table, including the one deposited under
// each PMD leaf (pgtable_trans_huge_deposit, mm_inc_nr_ptes); a PMD slot
// holds a table exactly when its entry says so, and a deposit exactly when it
// is a leaf. Every anonymous PMD leaf has one: a THP, its migration or
// device-private entry, and the huge zero page (set_huge_zero_folio deposits
// too, and zap_huge_pmd withdraws it).
void check_nr_ptes_and_deposits(const Ctx& ctx) {
  for (MmStruct* mm : ctx.world.mms()) {
    auto it = ctx.census.mms.find(mm);
    int64_t tables = it == ctx.census.mms.end() ? 0 : it->second.pte_tables;
    if (mm->nr_ptes() != tables) {
      ctx.fail("I7", "check_nr_ptes_and_deposits",
               fmt::format("mm {} nr_ptes is {} but {} PTE tables exist", mm->pid(),
                           mm->nr_ptes(), tables),
               mm_dump(ctx.census, *mm));
    }
    for_each_pmd_slot(*mm, [&](Vaddr base, const PmdTable&, const PmdSlot& slot) {
      if (slot.entry.is_table() == (slot.table != nullptr) &&
          slot.entry.is_huge() == (slot.deposit != nullptr)) {
        return;
      }
      ctx.fail("I7", "check_nr_ptes_and_deposits",
               fmt::format("mm {} PMD at {:#x}: entry {} table {} deposit {}", mm->pid(),
                           base.v, slot.entry.describe(), slot.table ? "yes" : "no",
                           slot.deposit ? "yes" : "no"),
               mm_dump(ctx.census, *mm));
    });
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
                           mm->anon_rss(), counted),
               mm_dump(ctx.census, *mm));
    }
  }
}

}  // namespace hmmsim::check
