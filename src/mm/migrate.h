// Migration of folios through migration entries (Linux mm/migrate.c and
// the migration half of mm/rmap.c).
//
// The protocol, for a locked folio:
//   1. try_to_migrate(): every mapping of the folio, in every process, is
//      replaced by a migration entry that remembers its write/exclusive
//      state (a PMD mapping by a PMD migration entry, or, with
//      kSplitHugePmd, by 512 PTE migration entries); each replaced mapping
//      drops its rmap and its reference;
//   2. the caller moves the data (or gives up);
//   3. remove_migration_ptes(src, dst): every migration entry for `src`
//      becomes a mapping of `dst` again (dst == src on failure).
// While entries exist the folio stays locked, and faults on them wait for
// the unlock (migration_entry_wait).
#pragma once

#include <cstdint>
#include <utility>

#include "base/result.h"
#include "mm/folio.h"
#include "mm/vma.h"

namespace hmmsim {

class World;

// enum ttu_flags
struct TtuFlags {
  enum : uint32_t {
    kNone = 0,
    kSplitHugePmd = 1u << 0,  // TTU_SPLIT_HUGE_PMD: split PMD mappings (freezing)
    kRmapLocked = 1u << 1,    // TTU_RMAP_LOCKED: the caller holds the anon_vma lock
  };
};

// enum rmp_flags
struct RmpFlags {
  enum : uint32_t {
    kNone = 0,
    kLocked = 1u << 0,              // RMP_LOCKED
    kUseSharedZeropage = 1u << 1,   // RMP_USE_SHARED_ZEROPAGE
  };
};

// vma_address() .. vma_address_end(): the part of `folio` that `vma` can
// map when the folio's first page would be at `addr`.
std::pair<Vaddr, Vaddr> folio_range_in_vma(Folio folio, const Vma& vma, Vaddr addr);

// try_to_migrate(): false if some mapping could not be converted (it is
// left in place). Requires: folio locked.
bool try_to_migrate(Folio folio, uint32_t ttu_flags = TtuFlags::kNone);

// remove_migration_ptes(). Requires: src locked. With kUseSharedZeropage
// (src == dst, order 0), an all-zero page is mapped as the shared zero page
// instead and its rss is given back.
void remove_migration_ptes(Folio src, Folio dst, uint32_t rmp_flags);

// migrate_pages() of one isolated folio to a new RAM folio of the same
// order. The caller's reference counts as the isolation reference. On
// success it is consumed and the new folio is returned (unlocked, held only
// by its mappings). When no THP can be allocated for a THP, the folio is
// split and its pages migrated one by one (THP_MIGRATION_SPLIT); the result
// is then the new folio of `keep_page` (an index into the old folio). On
// failure the folio is put back and its mappings are intact.
Result<Folio> migrate_folio_to_new(World& world, Folio src, uint64_t keep_page = 0);

}  // namespace hmmsim
