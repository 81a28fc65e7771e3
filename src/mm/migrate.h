// Migration of folios through migration entries (Linux mm/migrate.c and
// the migration half of mm/rmap.c).
//
// The protocol, for a locked folio:
//   1. try_to_migrate(): every mapping of the folio, in every process, is
//      replaced by a migration entry that remembers its write/exclusive
//      state; each replaced mapping drops its rmap and its reference.
//   2. the caller moves the data (or gives up);
//   3. remove_migration_ptes(src, dst): every migration entry for `src`
//      becomes a mapping of `dst` again (dst == src on failure).
// While entries exist the folio stays locked, and faults on them wait for
// the unlock (migration_entry_wait).
#pragma once

#include "base/result.h"
#include "mm/folio.h"

namespace hmmsim {

class World;

// try_to_migrate(): false if some mapping could not be converted (it is
// left in place). Requires: folio locked.
bool try_to_migrate(Folio folio);

enum class RmpFlags : uint8_t { kNone, kLocked };
// remove_migration_ptes(). Requires: src locked.
void remove_migration_ptes(Folio src, Folio dst, RmpFlags flags);

// migrate_pages() of one isolated folio to a new RAM folio. The caller's
// reference counts as the isolation reference; on success it is consumed
// and the new folio is returned (unlocked, held only by its mappings); on
// failure the folio is put back and nothing changed.
Result<Folio> migrate_folio_to_new(World& world, Folio src);

}  // namespace hmmsim
