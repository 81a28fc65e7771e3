#include "mm/deferred_split.h"

#include "base/assert.h"
#include "mm/huge_memory.h"
#include "mm/world.h"

namespace hmmsim {

void DeferredSplitQueue::link_tail(Folio folio) {
  Page& head = folio.head();
  head.list_prev = tail_;
  head.list_next = kNil;
  if (tail_ != kNil) {
    at(tail_).list_next = head.pfn;
  } else {
    head_ = head.pfn;
  }
  tail_ = head.pfn;
  head.set(kPgDeferredQueued);
  len_++;
}

void DeferredSplitQueue::unlink(Folio folio) {
  Page& head = folio.head();
  HMM_ASSERT(head.test(kPgDeferredQueued), "folio {:#x} is not queued", folio.pfn().v);
  if (head.list_prev != kNil) {
    at(head.list_prev).list_next = head.list_next;
  } else {
    head_ = head.list_next;
  }
  if (head.list_next != kNil) {
    at(head.list_next).list_prev = head.list_prev;
  } else {
    tail_ = head.list_prev;
  }
  head.list_prev = head.list_next = 0;
  head.clear(kPgDeferredQueued);
  len_--;
}

bool DeferredSplitQueue::add(Folio folio, bool partially_mapped) {
  HMM_ASSERT(folio.is_large() && !folio.is_device_private(),
             "folio {:#x} cannot go on the deferred split queue", folio.pfn().v);
  MutexLock guard(lock_);
  bool newly_partial = false;
  if (partially_mapped && !folio.test(kPgPartiallyMapped)) {
    folio.head().set(kPgPartiallyMapped);
    newly_partial = true;
  }
  if (!queued(folio)) link_tail(folio);
  if (newly_partial) stats_.count(VmEvent::kThpDeferredSplitPage);
  return newly_partial;
}

void DeferredSplitQueue::remove(Folio folio) {
  MutexLock guard(lock_);
  if (queued(folio)) unlink(folio);
  folio.head().clear(kPgPartiallyMapped);
}

std::vector<Folio> DeferredSplitQueue::take(uint64_t n) {
  std::vector<Folio> out;
  MutexLock guard(lock_);
  while (head_ != kNil && out.size() < n) {
    Folio folio = page_folio(range_, Pfn{head_});
    // A folio whose last reference is being dropped is leaving anyway.
    if (folio_try_get(folio)) {
      out.push_back(folio);
    } else {
      folio.head().clear(kPgPartiallyMapped);
    }
    unlink(folio);
  }
  return out;
}

uint64_t DeferredSplitQueue::size() const {
  MutexLock guard(lock_);
  return len_;
}

std::vector<Folio> DeferredSplitQueue::snapshot() const {
  std::vector<Folio> out;
  MutexLock guard(lock_);
  for (uint32_t pfn = head_; pfn != kNil; pfn = at(pfn).list_next) {
    out.push_back(page_folio(range_, Pfn{pfn}));
  }
  return out;
}

// thp_underused(): with khugepaged's default max_ptes_none (511) Linux never
// considers a fully mapped THP underused, so only partially mapped folios
// are split.
static bool thp_underused(Folio) { return false; }

uint64_t deferred_split_scan(World& world, uint64_t nr_to_scan) {
  DeferredSplitQueue& queue = world.mem().deferred_split();
  uint64_t split = 0;
  for (Folio folio : queue.take(nr_to_scan)) {
    bool did_split = false;
    if (folio.test(kPgPartiallyMapped) || thp_underused(folio)) {
      if (folio_trylock(folio)) {
        if (split_folio(world, folio).ok()) {
          did_split = true;
          split++;
        }
        folio_unlock(folio);
      }
    }
    // Requeue a partially mapped folio that could not be split now.
    if (!did_split && folio.test(kPgPartiallyMapped)) queue.add(folio, false);
    folio_put(folio);
  }
  return split;
}

}  // namespace hmmsim
