// Physical memory: memory ranges of page descriptors and the buddy allocator.
//
// Linux counterpart: `mm/page_alloc.c` (the buddy allocator of a zone) and the
// memmap. System RAM is one MemRange handed out by a BuddyAllocator in blocks
// of order 0..kMaxPageOrder, splitting and merging buddies exactly like a
// buddy allocator so that fragmentation behaves as in Linux (an order-9 block
// exists only if 512 aligned free frames can be merged). Later ranges (device
// memory) are added with their own FolioOwner, which receives their folios
// when the last reference is dropped.
//
// Thread safety: BuddyAllocator::lock_ (zone->lock) guards the free lists.
// A MemRange's page array is fixed at construction.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "base/thread_annotations.h"
#include "base/types.h"
#include "mm/frame_bytes.h"
#include "mm/page.h"
#include "sync/lock.h"

namespace hmmsim {

class DeferredSplitQueue;
class DevPagemap;
class VmStat;
class Folio;

enum class MemKind : uint8_t {
  kSystem,         // ordinary RAM, reachable by the CPU
  kDevicePrivate,  // ZONE_DEVICE device-private memory: never CPU-mapped
};

// Who gets a folio back when its refcount drops to zero
// (free_unref_folios for RAM, pgmap->ops->folio_free for device memory).
class FolioOwner {
 public:
  virtual ~FolioOwner() = default;
  virtual void free_folio(Folio folio) = 0;
};

// A contiguous pfn range with one descriptor per frame.
class MemRange {
 public:
  MemRange(MemKind kind, Pfn base, uint64_t nr_pages, Scheduler& sched);

  MemKind kind() const { return kind_; }
  Pfn base() const { return base_; }
  Pfn end() const { return base_ + nr_pages_; }
  uint64_t nr_pages() const { return nr_pages_; }
  bool contains(Pfn pfn) const { return pfn >= base_ && pfn < end(); }
  Page& page(Pfn pfn);
  const Page& page(Pfn pfn) const;
  Scheduler& sched() const { return *sched_; }
  FolioOwner* owner() const { return owner_; }
  void set_owner(FolioOwner* owner) { owner_ = owner; }
  // The deferred split queue of this range's node; nullptr where folios
  // are never queued (device memory).
  DeferredSplitQueue* deferred_split() const { return deferred_split_; }
  // The pagemap of a device range (nullptr for RAM).
  DevPagemap* pgmap() const { return pgmap_; }
  void set_pgmap(DevPagemap* pgmap) { pgmap_ = pgmap; }
  void set_deferred_split(DeferredSplitQueue* q) { deferred_split_ = q; }
  // The bytes of frames [pfn, pfn + nr) are dead (FrameBytes::release).
  void release_bytes(Pfn pfn, uint64_t nr) { bytes_.release(pfn - base_, nr); }

 private:
  MemKind kind_;
  Pfn base_;
  uint64_t nr_pages_;
  std::unique_ptr<Page[]> pages_;
  FrameBytes bytes_;
  Scheduler* sched_;
  FolioOwner* owner_ = nullptr;
  DeferredSplitQueue* deferred_split_ = nullptr;
  DevPagemap* pgmap_ = nullptr;
};

// A binary buddy allocator over one MemRange (one zone's free_area[]).
class BuddyAllocator final : public FolioOwner {
 public:
  BuddyAllocator(MemRange& range, Scheduler& sched);

  // __alloc_pages: a block of 1 << order frames, or empty when none is free.
  std::optional<Pfn> alloc_pages(Order order) EXCLUDES(lock_);
  // __free_pages: return a block, merging it with free buddies.
  void free_pages(Pfn pfn, Order order) EXCLUDES(lock_);
  // Takes frames out of service forever (the zero page).
  void reserve(Pfn pfn) EXCLUDES(lock_);

  void free_folio(Folio folio) override;

  uint64_t nr_free_pages() const EXCLUDES(lock_);
  uint64_t nr_free_blocks(Order order) const EXCLUDES(lock_);
  MemRange& range() { return range_; }

 private:
  static constexpr uint32_t kNil = UINT32_MAX;

  void list_add(uint32_t idx, uint32_t order) REQUIRES(lock_);
  void list_del(uint32_t idx, uint32_t order) REQUIRES(lock_);
  bool is_free_block(uint32_t idx, uint32_t order) const REQUIRES(lock_);
  void free_pages_locked(uint32_t idx, uint32_t order) REQUIRES(lock_);

  MemRange& range_;
  mutable Mutex lock_;
  std::array<uint32_t, kMaxPageOrder + 1> free_head_ GUARDED_BY(lock_);
  std::array<uint64_t, kMaxPageOrder + 1> nr_free_ GUARDED_BY(lock_) = {};
};

// All physical memory of a world: ranges by pfn.
class PhysMem {
 public:
  PhysMem(uint64_t sysmem_bytes, Scheduler& sched, VmStat& stats);
  ~PhysMem();

  BuddyAllocator& buddy() { return *buddy_; }
  // The system node's deferred split queue (pgdat->deferred_split_queue).
  DeferredSplitQueue& deferred_split() { return *deferred_split_; }
  MemRange& system() { return *ranges_.front(); }
  // Adds a range of `nr_pages` frames after every existing range.
  MemRange& add_range(MemKind kind, uint64_t nr_pages);
  // Drops a device range whose pages are all free (memunmap_pages).
  void remove_range(MemRange& range);
  // The range holding pfn, or nullptr for a pfn outside every range.
  MemRange* range_of(Pfn pfn);
  const std::vector<std::unique_ptr<MemRange>>& ranges() const { return ranges_; }
  Pfn zero_pfn() const { return zero_pfn_; }
  // The frame of pfn, which must exist.
  Page& page(Pfn pfn);

 private:
  Scheduler* sched_;
  std::vector<std::unique_ptr<MemRange>> ranges_;
  std::unique_ptr<BuddyAllocator> buddy_;
  std::unique_ptr<DeferredSplitQueue> deferred_split_;
  Pfn zero_pfn_;
};

}  // namespace hmmsim
