// ZONE_DEVICE device-private memory (Linux include/linux/memremap.h,
// mm/memremap.c).
//
// A device driver hands the core a range of device memory with a
// DevPagemap: the range gets page descriptors and pfns of its own (after
// system RAM), an owner cookie that tells migrate_vma and hmm_range_fault
// whose pages these are, and the driver's callbacks. The CPU can never map
// these pages; page tables reach them only through device-private entries,
// which still count as mappings (a reference and a mapcount each).
//
// Lifetime (6.19): a device folio is free at refcount 0. The driver
// allocates one with zone_device_folio_init() (refcount 1, locked, order 0
// or 9, one pgmap reference per page). When the last reference goes,
// free_zone_device_folio() clears the anon state and calls the driver's
// folio_free(), then drops the pgmap references. Device folios are never
// on an LRU list nor on the deferred split queue.
//
// Thread safety: `ref` is atomic; the callbacks run without core locks.
#pragma once

#include <cstdint>

#include "base/types.h"
#include "mm/folio.h"
#include "mm/memory.h"
#include "mm/page_alloc.h"
#include "sync/lock.h"

namespace hmmsim {

class Vma;
class World;

// What a CPU fault on a device-private entry tells the driver (the parts of
// `struct vm_fault` migrate_to_ram() uses).
struct DeviceFault {
  Vma* vma = nullptr;
  Vaddr address;      // the faulting address (page aligned)
  Pfn page;           // vmf->page: the device page faulted on
  bool pmd = false;   // vmf->pte == NULL: the fault came through a PMD entry
  uint32_t flags = 0; // FaultFlag bits
};

// dev_pagemap_ops.
class DevPagemapOps {
 public:
  virtual ~DevPagemapOps() = default;
  // The folio's last reference is gone; take the memory back.
  virtual void folio_free(Folio folio) = 0;
  // Migrate the faulting page (or its whole PMD folio) back to RAM. The
  // core holds the folio lock and a reference; it releases both after.
  virtual VmFault migrate_to_ram(const DeviceFault& vmf) = 0;
  // Called for each new folio when the core splits `head`, then once with
  // an empty `tail`. The driver splits its per-folio state accordingly.
  virtual void folio_split(Folio head, Folio tail) = 0;
};

class DevPagemap final : public FolioOwner {
 public:
  DevPagemap(World& world, uint64_t nr_pages, const void* owner, DevPagemapOps& ops);

  MemRange& range() const { return *range_; }
  const void* owner() const { return owner_; }
  DevPagemapOps& ops() const { return *ops_; }
  // pgmap->ref: one per allocated page.
  int64_t ref() const { return ref_.read(); }
  // Whether `folio` is a free page of this pagemap (refcount 0).
  void free_folio(Folio folio) override;  // free_zone_device_folio()

  // zone_device_folio_init(): make [pfn, pfn + 2^order) one folio with
  // refcount 1, locked, taking 2^order pgmap references. Every page is
  // reinitialised (the post-6.19 fix for reusing memory at another order).
  Folio zone_device_folio_init(Pfn pfn, Order order);

 private:
  MemRange* range_;
  const void* owner_;
  DevPagemapOps* ops_;
  AtomicCounter ref_;
};

// page_pgmap(): the pagemap of a device folio (nullptr for RAM).
DevPagemap* folio_pgmap(Folio folio);

}  // namespace hmmsim
