// The deferred split queue of anonymous THPs (Linux: `struct
// deferred_split`, deferred_split_folio(), deferred_split_scan()).
//
// Every new anonymous THP is queued; one that becomes partially mapped (some
// of its pages unmapped while others stay) is marked PG_partially_mapped and
// counted as THP_DEFERRED_SPLIT_PAGE. The shrinker (deferred_split_scan,
// run only when asked: the model has no memory pressure) splits partially
// mapped folios so that their unmapped pages can be freed, and requeues the
// ones it could not split. A folio leaves the queue when it is split or
// freed. Folios are linked through their head page's list fields.
//
// Thread safety: `lock_` (split_queue_lock) guards the list and the
// PG_partially_mapped transitions made under it.
#pragma once

#include <cstdint>

#include "base/thread_annotations.h"
#include "mm/folio.h"
#include "mm/vmstat.h"
#include "sync/lock.h"

namespace hmmsim {

class World;

class DeferredSplitQueue {
 public:
  DeferredSplitQueue(MemRange& range, Scheduler& sched, VmStat& stats)
      : range_(range), stats_(stats), lock_(sched) {}

  // deferred_split_folio(): queue `folio`; mark it partially mapped when asked.
  // Returns true if it became partially mapped now.
  bool add(Folio folio, bool partially_mapped) EXCLUDES(lock_);
  // folio_unqueue_deferred_split(): take a folio off the queue (split, free).
  void remove(Folio folio) EXCLUDES(lock_);
  // Pops up to `n` folios from the head, taking a reference on each; folios
  // that are being freed (refcount 0) are dropped from the queue instead.
  std::vector<Folio> take(uint64_t n) EXCLUDES(lock_);
  uint64_t size() const EXCLUDES(lock_);
  bool queued(Folio folio) const { return folio.test(kPgDeferredQueued); }
  // The queue's folios in order (checker; world quiesced).
  std::vector<Folio> snapshot() const EXCLUDES(lock_);

 private:
  static constexpr uint32_t kNil = UINT32_MAX;
  void link_tail(Folio folio) REQUIRES(lock_);
  void unlink(Folio folio) REQUIRES(lock_);
  Page& at(uint32_t pfn) const { return range_.page(Pfn{pfn}); }

  MemRange& range_;
  VmStat& stats_;
  mutable Mutex lock_;
  uint32_t head_ GUARDED_BY(lock_) = kNil;
  uint32_t tail_ GUARDED_BY(lock_) = kNil;
  uint64_t len_ GUARDED_BY(lock_) = 0;
};

// deferred_split_scan(): the shrinker pass over up to `nr_to_scan` folios.
// Returns the number of folios split.
uint64_t deferred_split_scan(World& world, uint64_t nr_to_scan);

}  // namespace hmmsim
