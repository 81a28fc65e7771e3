// The individual invariant checks. Each reads the World and the census and
// adds a Violation per breach; none changes anything.
#pragma once

#include "check/census.h"
#include "check/checker.h"

namespace hmmsim::check {

struct Ctx {
  World& world;
  const Census& census;
  CheckReport& report;
  void fail(const char* invariant, const char* check, std::string message,
            std::string dump = {}) const {
    report.add(Violation{invariant, check, std::move(message), std::move(dump)});
  }
};

// Calls fn(folio) for every folio that is not free: in RAM, every frame
// outside the buddy allocator's free blocks and the reserved zero page,
// including a head whose refcount fell to zero without being freed; in
// device memory, every folio that holds a reference.
void for_each_allocated_folio(World& world, const std::function<void(Folio)>& fn);

// folio checks (check_folio.cc)
void check_mapcount_matches_mappings(const Ctx& ctx);      // I1, I2
void check_refcount_covers_mappings(const Ctx& ctx);       // I3
void check_migration_entry_folio_locked(const Ctx& ctx);   // I4
void check_writable_implies_exclusive(const Ctx& ctx);     // I10
void check_exclusive_page_mapped_once(const Ctx& ctx);     // I10
void check_free_pages_clean(const Ctx& ctx);               // BUDDY
void check_no_leaked_frames(const Ctx& ctx);               // BUDDY

// page-table checks (check_pgtable.cc)
void check_entries_inside_vmas(const Ctx& ctx);            // PT
void check_entries_point_at_live_folios(const Ctx& ctx);   // PT
void check_no_present_entry_to_device_private(const Ctx& ctx);  // I5
void check_pmd_maps_thp_head(const Ctx& ctx);              // I2
void check_pmd_softleaf_valid(const Ctx& ctx);             // I6
void check_nr_ptes_and_deposits(const Ctx& ctx);           // I7
void check_anon_rss(const Ctx& ctx);                       // I8

// Vma and rmap checks (check_vma.cc)
void check_vma_tree(const Ctx& ctx);                       // VMA
void check_anon_vma_links(const Ctx& ctx);                 // VMA
void check_rmap_reaches_every_mapping(const Ctx& ctx);     // RMAP
void check_no_lock_held(const Ctx& ctx);                   // LOCK

// THP checks (check_thp.cc)
void check_deferred_split_queue(const Ctx& ctx);           // DSQ

// device memory checks (check_device.cc)
void check_device_folios_off_lists(const Ctx& ctx);        // I9
void check_pgmap_refs(const Ctx& ctx);                     // I15
void check_mirrors_coherent_with_cpu(const Ctx& ctx);      // I16

}  // namespace hmmsim::check
