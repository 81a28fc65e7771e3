#include "mm/page_alloc.h"

#include "base/assert.h"
#include "mm/deferred_split.h"
#include "mm/folio.h"

namespace hmmsim {

MemRange::MemRange(MemKind kind, Pfn base, uint64_t nr_pages, Scheduler& sched)
    : kind_(kind), base_(base), nr_pages_(nr_pages),
      pages_(std::make_unique<Page[]>(nr_pages)), bytes_(nr_pages), sched_(&sched) {
  HMM_ASSERT(base.v + nr_pages <= UINT32_MAX, "pfn space exhausted");
  for (uint64_t i = 0; i < nr_pages; i++) {
    pages_[i].pfn = static_cast<uint32_t>(base.v + i);
    pages_[i].bytes = bytes_.frame(i);
  }
}

Page& MemRange::page(Pfn pfn) {
  HMM_ASSERT(contains(pfn), "pfn {:#x} outside range [{:#x}, {:#x})", pfn.v, base_.v, end().v);
  return pages_[pfn - base_];
}

const Page& MemRange::page(Pfn pfn) const {
  HMM_ASSERT(contains(pfn), "pfn {:#x} outside range", pfn.v);
  return pages_[pfn - base_];
}

BuddyAllocator::BuddyAllocator(MemRange& range, Scheduler& sched) : range_(range), lock_(sched) {
  MutexLock guard(lock_);
  free_head_.fill(kNil);
  // Hand the whole range to the free lists in the largest aligned blocks.
  uint64_t idx = 0;
  while (idx < range_.nr_pages()) {
    uint32_t order = kMaxPageOrder;
    while (order > 0 && ((idx & ((1u << order) - 1)) != 0 || idx + (1u << order) > range_.nr_pages()))
      order--;
    list_add(static_cast<uint32_t>(idx), order);
    idx += uint64_t{1} << order;
  }
}

void BuddyAllocator::list_add(uint32_t idx, uint32_t order) {
  Page& p = range_.page(range_.base() + idx);
  p.order = static_cast<uint8_t>(order);
  p.set(kPgBuddy);
  p.list_prev = kNil;
  p.list_next = free_head_[order];
  if (free_head_[order] != kNil) range_.page(range_.base() + free_head_[order]).list_prev = idx;
  free_head_[order] = idx;
  nr_free_[order]++;
}

void BuddyAllocator::list_del(uint32_t idx, uint32_t order) {
  Page& p = range_.page(range_.base() + idx);
  HMM_ASSERT(p.test(kPgBuddy) && p.order == order, "frame {} is not a free block of order {}",
             idx, order);
  if (p.list_prev != kNil) {
    range_.page(range_.base() + p.list_prev).list_next = p.list_next;
  } else {
    free_head_[order] = p.list_next;
  }
  if (p.list_next != kNil) range_.page(range_.base() + p.list_next).list_prev = p.list_prev;
  p.clear(kPgBuddy);
  p.order = 0;
  p.list_prev = p.list_next = 0;
  nr_free_[order]--;
}

bool BuddyAllocator::is_free_block(uint32_t idx, uint32_t order) const {
  if (idx + (uint64_t{1} << order) > range_.nr_pages()) return false;
  const Page& p = range_.page(range_.base() + idx);
  return p.test(kPgBuddy) && p.order == order;
}

std::optional<Pfn> BuddyAllocator::alloc_pages(Order order) {
  HMM_ASSERT(order.v <= kMaxPageOrder, "order {} too large", order.v);
  MutexLock guard(lock_);
  uint32_t o = order.v;
  while (o <= kMaxPageOrder && free_head_[o] == kNil) o++;
  if (o > kMaxPageOrder) return std::nullopt;
  uint32_t idx = free_head_[o];
  list_del(idx, o);
  // expand(): give back the upper halves until the block has the asked order.
  while (o > order.v) {
    o--;
    list_add(idx + (1u << o), o);
  }
  return range_.base() + idx;
}

void BuddyAllocator::free_pages_locked(uint32_t idx, uint32_t order) {
  while (order < kMaxPageOrder) {
    uint32_t buddy = idx ^ (1u << order);
    if (!is_free_block(buddy, order)) break;
    list_del(buddy, order);
    idx &= ~(1u << order);
    order++;
  }
  list_add(idx, order);
}

void BuddyAllocator::free_pages(Pfn pfn, Order order) {
  HMM_ASSERT(range_.contains(pfn), "freeing foreign pfn {:#x}", pfn.v);
  uint32_t idx = static_cast<uint32_t>(pfn - range_.base());
  HMM_ASSERT((idx & (order.nr_pages() - 1)) == 0, "misaligned free of pfn {:#x} order {}", pfn.v,
             order.v);
  MutexLock guard(lock_);
  for (uint64_t i = 0; i < order.nr_pages(); i++) {
    Page& p = range_.page(pfn + i);
    HMM_ASSERT(!p.test(kPgBuddy) && !p.test(kPgReserved), "double free of pfn {:#x}", pfn.v + i);
    p.order = 0;
  }
  free_pages_locked(idx, order.v);
}

void BuddyAllocator::reserve(Pfn pfn) {
  MutexLock guard(lock_);
  // Find the free block holding pfn, split it down to the single frame.
  uint32_t idx = static_cast<uint32_t>(pfn - range_.base());
  for (uint32_t order = 0; order <= kMaxPageOrder; order++) {
    uint32_t start = idx & ~((1u << order) - 1);
    if (!is_free_block(start, order)) continue;
    list_del(start, order);
    while (order > 0) {
      order--;
      uint32_t half = 1u << order;
      if (idx >= start + half) {
        list_add(start, order);
        start += half;
      } else {
        list_add(start + half, order);
      }
    }
    range_.page(pfn).set(kPgReserved);
    return;
  }
  HMM_BUG("reserve of a frame that is not free: {:#x}", pfn.v);
}

void BuddyAllocator::free_folio(Folio folio) {
  free_pages(folio.pfn(), folio.order());
}

uint64_t BuddyAllocator::nr_free_pages() const {
  MutexLock guard(lock_);
  uint64_t n = 0;
  for (uint32_t o = 0; o <= kMaxPageOrder; o++) n += nr_free_[o] << o;
  return n;
}

uint64_t BuddyAllocator::nr_free_blocks(Order order) const {
  MutexLock guard(lock_);
  return nr_free_[order.v];
}

PhysMem::PhysMem(uint64_t sysmem_bytes, Scheduler& sched, VmStat& stats) : sched_(&sched) {
  uint64_t nr = sysmem_bytes / kPageSize;
  HMM_ASSERT(nr >= 2 * kHPageNr, "system memory too small: {} bytes", sysmem_bytes);
  ranges_.push_back(std::make_unique<MemRange>(MemKind::kSystem, Pfn{0}, nr, sched));
  buddy_ = std::make_unique<BuddyAllocator>(*ranges_.front(), sched);
  ranges_.front()->set_owner(buddy_.get());
  deferred_split_ = std::make_unique<DeferredSplitQueue>(*ranges_.front(), sched, stats);
  ranges_.front()->set_deferred_split(deferred_split_.get());
  // The shared zero page: the last frame, so low memory stays buddy-aligned.
  zero_pfn_ = Pfn{nr - 1};
  buddy_->reserve(zero_pfn_);
}

PhysMem::~PhysMem() = default;

MemRange& PhysMem::add_range(MemKind kind, uint64_t nr_pages) {
  Pfn base = ranges_.back()->end();
  // Device ranges start PMD-aligned so that their folios are naturally aligned.
  base.v = (base.v + kHPageNr - 1) & ~uint64_t{kHPageNr - 1};
  ranges_.push_back(std::make_unique<MemRange>(kind, base, nr_pages, *sched_));
  return *ranges_.back();
}

void PhysMem::remove_range(MemRange& range) {
  HMM_ASSERT(&range != ranges_.front().get(), "system memory cannot be removed");
  for (uint64_t i = 0; i < range.nr_pages(); i++) {
    HMM_ASSERT(range.page(range.base() + i).refcount.load() == 0,
               "removing range with page {:#x} in use", range.base().v + i);
  }
  std::erase_if(ranges_, [&](const auto& r) { return r.get() == &range; });
}

MemRange* PhysMem::range_of(Pfn pfn) {
  for (auto& r : ranges_) {
    if (r->contains(pfn)) return r.get();
  }
  return nullptr;
}

Page& PhysMem::page(Pfn pfn) {
  MemRange* r = range_of(pfn);
  HMM_ASSERT(r != nullptr, "pfn {:#x} is outside physical memory", pfn.v);
  return r->page(pfn);
}

}  // namespace hmmsim
