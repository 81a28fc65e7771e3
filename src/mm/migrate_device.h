// Migration to and from device memory (Linux mm/migrate_device.c,
// include/linux/migrate.h): the migrate_vma_* protocol a driver uses to move
// a range of a process's anonymous memory between RAM and its device-private
// memory, and the migrate_device_* variant that evicts device pages by pfn.
//
//   migrate_vma_setup()    collect the range into src[] (holes, zero pages,
//                          RAM pages, this owner's device pages; a whole
//                          PMD-mapped THP or empty PMD range as one compound
//                          entry followed by 511 empty ones), lock each page
//                          and unmap it everywhere into migration entries
//   (driver)               allocate destinations, copy, fill dst[]
//   migrate_vma_pages()    move each page's identity to its destination;
//                          insert new pages for holes; split a compound
//                          source whose destination is not compound
//   migrate_vma_finalize() restore the migration entries (device-private
//                          entries for device destinations) and drop the
//                          references the protocol took
//
// The kernel's src/dst arrays of `pfn << 6 | MIGRATE_PFN_*` bits are
// structs here; their meaning is the kernel's.
//
// Thread safety: the caller holds mmap_lock of the Vma's mm for read for
// the whole protocol (not for the migrate_device_* eviction path).
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "base/result.h"
#include "base/types.h"
#include "mm/folio.h"

namespace hmmsim {

class Vma;
class World;

// One src[]/dst[] slot (MIGRATE_PFN_VALID, _MIGRATE, _WRITE, _COMPOUND).
struct MigratePfn {
  Pfn pfn{};
  bool valid = false;     // pfn names a page
  bool migrate = false;   // this entry is (still) being migrated
  bool write = false;     // the source mapping was writable
  bool compound = false;  // the entry covers a PMD-order folio or range

  // migrate_pfn(): a destination page.
  static MigratePfn page(Pfn pfn, bool compound = false) {
    return MigratePfn{pfn, true, false, false, compound};
  }
  bool empty() const { return !valid && !migrate && !write && !compound; }
};

// enum migrate_vma_direction.
enum MigrateSelect : uint32_t {
  kSelectSystem = 1u << 0,         // MIGRATE_VMA_SELECT_SYSTEM
  kSelectDevicePrivate = 1u << 1,  // MIGRATE_VMA_SELECT_DEVICE_PRIVATE
  kSelectCompound = 1u << 3,       // MIGRATE_VMA_SELECT_COMPOUND
};

// struct migrate_vma.
struct MigrateVma {
  Vma* vma = nullptr;
  Vaddr start;
  Vaddr end;
  std::span<MigratePfn> src;  // one slot per page of [start, end)
  std::span<MigratePfn> dst;
  uint64_t cpages = 0;  // out: entries being migrated
  uint64_t npages = 0;  // out: entries filled
  const void* pgmap_owner = nullptr;
  uint32_t flags = 0;  // MigrateSelect bits
  // Set only from migrate_to_ram(): the device page faulted on, which the
  // fault path holds locked and referenced.
  std::optional<Pfn> fault_page;
};

// The number of slots a compound entry spans.
inline constexpr uint64_t kMigrateCompoundSlots = kHPageNr;

Status migrate_vma_setup(World& world, MigrateVma& args);
void migrate_vma_pages(World& world, MigrateVma& args);
void migrate_vma_finalize(World& world, MigrateVma& args);

// migrate_device_range(): collect and unmap the device pages
// [start, start + npages) for eviction (no Vma known). src must hold
// npages slots; a large folio may not cross the end of the range.
Status migrate_device_range(World& world, std::span<MigratePfn> src, Pfn start, uint64_t npages);
// migrate_device_pfns(): the same for a list of pfns given in src[i].pfn.
Status migrate_device_pfns(World& world, std::span<MigratePfn> src);
void migrate_device_pages(World& world, std::span<MigratePfn> src, std::span<MigratePfn> dst);
void migrate_device_finalize(World& world, std::span<MigratePfn> src,
                             std::span<MigratePfn> dst);

}  // namespace hmmsim
