#include "mm/memremap.h"

#include "base/assert.h"
#include "mm/world.h"

namespace hmmsim {

DevPagemap::DevPagemap(World& world, uint64_t nr_pages, const void* owner, DevPagemapOps& ops)
    : range_(&world.mem().add_range(MemKind::kDevicePrivate, nr_pages)), owner_(owner),
      ops_(&ops), ref_(world.sched()) {
  range_->set_owner(this);
  range_->set_pgmap(this);
}

Folio DevPagemap::zone_device_folio_init(Pfn pfn, Order order) {
  HMM_ASSERT(range_->contains(pfn) && range_->contains(pfn + (order.nr_pages() - 1)),
             "device folio [{:#x}, +{}) outside its pagemap", pfn.v, order.nr_pages());
  HMM_ASSERT((pfn.v & (order.nr_pages() - 1)) == 0, "misaligned device folio {:#x}", pfn.v);
  Folio folio = folio_prep_new(*range_, pfn, order);
  if (order.v > 0) folio.head().set(kPgLargeRmappable);
  bool locked = folio_trylock(folio);
  HMM_ASSERT(locked, "a new device folio is locked by somebody");
  ref_.add(static_cast<int64_t>(order.nr_pages()));
  return folio;
}

void DevPagemap::free_folio(Folio folio) {
  // free_zone_device_folio(): the common free path (folio.cc) has already
  // cleared AnonExclusive on every page and the mapping; the driver gets the
  // memory back, then the pgmap references go.
  uint64_t nr = folio.nr_pages();
  ops_->folio_free(folio);
  int64_t left = ref_.sub(static_cast<int64_t>(nr));
  HMM_ASSERT(left >= 0, "pgmap reference underflow");
}

DevPagemap* folio_pgmap(Folio folio) { return folio.range().pgmap(); }

}  // namespace hmmsim
