// Helpers shared by the migrate_device*.cc files.
#pragma once

#include <optional>
#include <span>

#include "base/result.h"
#include "mm/folio.h"
#include "mm/migrate_device.h"

namespace hmmsim {

// migrate_device_unmap(): lock-step the collected entries through
// try_to_migrate and the reference check; entries that cannot go are
// restored. Returns the number still migrating.
uint64_t migrate_device_unmap(World& world, std::span<MigratePfn> src,
                              std::optional<Pfn> fault_page);

// migrate_vma_split_folio(): split a PTE-mapped large folio met during
// collect, moving the fault path's lock and reference to the folio that
// holds the faulting page afterwards.
Status migrate_vma_split_folio(World& world, Folio folio, std::optional<Pfn> fault_page);

}  // namespace hmmsim
