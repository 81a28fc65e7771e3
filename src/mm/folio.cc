#include "mm/folio.h"

#include <cstring>

#include "base/assert.h"
#include "mm/deferred_split.h"

namespace hmmsim {

Folio page_folio(MemRange& range, Pfn pfn) {
  Page* p = &range.page(pfn);
  Page* head = p - p->head_offset;
  HMM_ASSERT(!head->test(kPgTail), "head of pfn {:#x} is a tail page", pfn.v);
  return Folio(&range, head);
}

Folio pfn_folio(PhysMem& mem, Pfn pfn) {
  MemRange* r = mem.range_of(pfn);
  HMM_ASSERT(r != nullptr, "pfn {:#x} outside physical memory", pfn.v);
  return page_folio(*r, pfn);
}

Folio folio_prep_new(MemRange& range, Pfn pfn, Order order) {
  Page* head = &range.page(pfn);
  uint64_t nr = order.nr_pages();
  for (uint64_t i = 0; i < nr; i++) {
    Page& p = head[i];
    HMM_ASSERT(p.refcount.load() == 0 && p.mapcount.load() == -1,
               "new folio page {:#x} still in use (ref {}, mapcount {})", p.pfn,
               p.refcount.load(), p.mapcount.load());
    p.flags.store(0);
    p.head_offset = static_cast<uint16_t>(i);
    p.order = 0;
    p.mapping = nullptr;
    p.index = 0;
    if (i > 0) p.set(kPgTail);
  }
  head->order = static_cast<uint8_t>(order.v);
  head->large_mapcount.store(-1);
  head->entire_mapcount.store(-1);
  head->nr_pages_mapped.store(0);
  head->refcount.store(1);
  if (order.v > 0) {
    head->set(kPgHead);
    Folio folio(&range, head);
    folio_set_mm_id_slot(folio, 0, MmIdSlot{0, -1});
    folio_set_mm_id_slot(folio, 1, MmIdSlot{0, -1});
  }
  return Folio(&range, head);
}

std::optional<Folio> folio_alloc(PhysMem& mem, Order order) {
  std::optional<Pfn> pfn = mem.buddy().alloc_pages(order);
  if (!pfn) return std::nullopt;
  Folio folio = folio_prep_new(mem.system(), *pfn, order);
  if (order.v > 0) folio.head().set(kPgLargeRmappable);
  return folio;
}

int32_t folio_ref_count(Folio folio) { return folio.head().refcount.load(std::memory_order_acquire); }

void folio_get(Folio folio) {
  folio.range().sched().yield(YieldKind::kAtomic);
  int32_t old = folio.head().refcount.fetch_add(1, std::memory_order_acq_rel);
  HMM_ASSERT(old > 0, "folio_get on folio {:#x} with refcount {}", folio.pfn().v, old);
}

bool folio_try_get(Folio folio) {
  folio.range().sched().yield(YieldKind::kAtomic);
  int32_t cur = folio.head().refcount.load(std::memory_order_acquire);
  while (cur > 0) {
    if (folio.head().refcount.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel))
      return true;
  }
  return false;
}

void folio_ref_add(Folio folio, int32_t nr) {
  folio.range().sched().yield(YieldKind::kAtomic);
  int32_t old = folio.head().refcount.fetch_add(nr, std::memory_order_acq_rel);
  HMM_ASSERT(old > 0, "folio_ref_add on folio {:#x} with refcount {}", folio.pfn().v, old);
}

void folio_ref_sub(Folio folio, int32_t nr) {
  folio.range().sched().yield(YieldKind::kAtomic);
  int32_t old = folio.head().refcount.fetch_sub(nr, std::memory_order_acq_rel);
  HMM_ASSERT(old > nr, "folio_ref_sub({}) would free folio {:#x} (refcount {})", nr,
             folio.pfn().v, old);
}

namespace {

// free_unref_folios / free_zone_device_folio: the folio is dead; reset what
// the allocator expects to find clean and hand the frames back.
void free_folio(Folio folio) {
  HMM_ASSERT(!folio_mapped(folio), "freeing mapped folio {:#x}", folio.pfn().v);
  HMM_ASSERT(!folio_test_locked(folio), "freeing locked folio {:#x}", folio.pfn().v);
  // __folio_put(): a large folio leaves the deferred split queue.
  if (DeferredSplitQueue* queue = folio.range().deferred_split(); queue && folio.is_large())
    queue->remove(folio);
  bool had_data = false;
  for (uint64_t i = 0; i < folio.nr_pages(); i++) {
    Page& p = folio.page(i);
    HMM_ASSERT(p.mapcount.load() == -1, "freeing page {:#x} with mapcount", p.pfn);
    had_data |= p.has_data();
    p.flags.store(0);  // kPgHasData too: the frame's bytes are gone
    p.head_offset = 0;
    p.mapping = nullptr;
    p.index = 0;
    if (i > 0) p.list_prev = p.list_next = 0;
  }
  if (had_data && folio.nr_pages() >= kHPageNr)
    folio.range().release_bytes(folio.pfn(), folio.nr_pages());
  Page& head = folio.head();
  head.large_mapcount.store(-1);
  head.entire_mapcount.store(-1);
  head.nr_pages_mapped.store(0);
  // The owner still reads the order; it resets it when it takes the frames.
  FolioOwner* owner = folio.range().owner();
  HMM_ASSERT(owner != nullptr, "range of folio {:#x} has no owner", folio.pfn().v);
  owner->free_folio(folio);
}

}  // namespace

void folio_put_refs(Folio folio, int32_t nr) {
  folio.range().sched().yield(YieldKind::kAtomic);
  int32_t old = folio.head().refcount.fetch_sub(nr, std::memory_order_acq_rel);
  HMM_ASSERT(old >= nr, "folio_put on folio {:#x} with refcount {}", folio.pfn().v, old);
  if (old == nr) free_folio(folio);
}

void folio_put(Folio folio) { folio_put_refs(folio, 1); }

void folio_copy(Folio dst, Folio src) {
  HMM_ASSERT(dst.nr_pages() == src.nr_pages(), "folio_copy from order {} to order {}",
             src.order().v, dst.order().v);
  uint64_t nr = src.nr_pages();
  bool all = true;
  for (uint64_t i = 0; i < nr && all; i++) all = src.page(i).has_data();
  if (!all || nr == 1) {
    for (uint64_t i = 0; i < nr; i++) page_copy(dst.page(i), src.page(i));
    return;
  }
  std::memcpy(dst.head().bytes, src.head().bytes, nr * kPageSize);
  for (uint64_t i = 0; i < nr; i++) dst.page(i).set(kPgHasData);
}

bool folio_ref_freeze(Folio folio, int32_t count) {
  folio.range().sched().yield(YieldKind::kAtomic);
  int32_t expected = count;
  return folio.head().refcount.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
}

void folio_ref_unfreeze(Folio folio, int32_t count) {
  folio.range().sched().yield(YieldKind::kAtomic);
  int32_t old = folio.head().refcount.exchange(count, std::memory_order_acq_rel);
  HMM_ASSERT(old == 0, "unfreeze of folio {:#x} that is not frozen ({})", folio.pfn().v, old);
}

bool folio_trylock(Folio folio) {
  folio.range().sched().yield(YieldKind::kLock);
  uint32_t old = folio.head().flags.fetch_or(kPgLocked, std::memory_order_acquire);
  return (old & kPgLocked) == 0;
}

void folio_lock(Folio folio) {
  while (!folio_trylock(folio)) folio.range().sched().block(&folio.head());
}

void folio_unlock(Folio folio) {
  uint32_t old = folio.head().flags.fetch_and(~static_cast<uint32_t>(kPgLocked),
                                              std::memory_order_release);
  HMM_ASSERT(old & kPgLocked, "unlock of unlocked folio {:#x}", folio.pfn().v);
  folio.range().sched().wake(&folio.head());
  folio.range().sched().yield(YieldKind::kUnlock);
}

int32_t folio_mapcount(Folio folio) {
  if (!folio.is_large()) return folio.head().mapcount.load() + 1;
  return folio.head().large_mapcount.load() + 1;
}

int32_t folio_entire_mapcount(Folio folio) {
  if (!folio.is_large()) return 0;
  return folio.head().entire_mapcount.load() + 1;
}

int32_t folio_large_mapcount(Folio folio) { return folio.head().large_mapcount.load() + 1; }

int32_t folio_nr_pages_mapped(Folio folio) { return folio.head().nr_pages_mapped.load(); }

int32_t page_pte_mapcount(const Page& page) { return page.mapcount.load() + 1; }

int32_t page_mapcount(Folio folio, const Page& page) {
  return page_pte_mapcount(page) + folio_entire_mapcount(folio);
}

bool folio_test_anon(Folio folio) { return folio.test(kPgAnon); }

bool folio_maybe_mapped_shared(Folio folio) {
  if (!folio.is_large()) return folio_mapcount(folio) > 1;
  return folio.test(kPgMaybeMappedShared);
}

MmIdSlot folio_mm_id_slot(Folio folio, int slot) {
  const Page& p = folio.page(1);
  uint32_t id = static_cast<uint32_t>(slot == 0 ? p.index : p.index >> 32);
  uint32_t raw = slot == 0 ? p.list_prev : p.list_next;
  return MmIdSlot{id, static_cast<int32_t>(raw)};
}

void folio_set_mm_id_slot(Folio folio, int slot, MmIdSlot value) {
  Page& p = folio.page(1);
  uint64_t other = slot == 0 ? (p.index >> 32) : (p.index & 0xffffffffu);
  p.index = slot == 0 ? (other << 32) | value.id : (uint64_t{value.id} << 32) | other;
  (slot == 0 ? p.list_prev : p.list_next) = static_cast<uint32_t>(value.mapcount);
}

bool PageAnonExclusive(const Page& page) { return page.test(kPgAnonExclusive); }

int32_t folio_expected_ref_count(Folio folio) { return folio_mapcount(folio); }

}  // namespace hmmsim
