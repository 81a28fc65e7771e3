// madvise (Linux mm/madvise.c) for the advice the model knows.
#include "base/assert.h"
#include "mm/internal.h"
#include "mm/mm.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

// madvise_update_vma(): set or clear a Vma flag over [start, end).
void madvise_update_flags(MmStruct& mm, Vma& vma, Vaddr start, Vaddr end, uint32_t set,
                          uint32_t clear) REQUIRES(mm.mmap_lock) {
  uint32_t newflags = (vma.flags() & ~clear) | set;
  if (newflags == vma.flags()) return;
  vma_split_range(mm, start, end);
  Vma* target = mm.vma_lookup(start);
  HMM_ASSERT(target && target->start() == start && target->end() == end,
             "split for madvise failed");
  target->set_flags(newflags);
  vma_merge_neighbours(mm, *target);
}

// Applies `fn` to each Vma piece of [start, end); true if a hole was met.
template <typename Fn>
bool for_each_vma_piece(MmStruct& mm, Vaddr start, Vaddr end, Fn fn)
    REQUIRES_SHARED(mm.mmap_lock) {
  bool hole = false;
  Vaddr cur = start;
  while (cur < end) {
    Vma* vma = mm.find_vma(cur);
    if (!vma || vma->start() >= end) return true;
    if (vma->start() > cur) hole = true;
    Vaddr from = vma->start() > cur ? vma->start() : cur;
    Vaddr to = vma->end() < end ? vma->end() : end;
    fn(*vma, from, to);
    cur = to;
  }
  return hole;
}

// Linux applies an advice to the mapped parts and then reports a hole.
Status hole_status(bool hole) { return hole ? Status(Err{Errno::kNoMem}) : Ok(); }

Status madvise_update_range(MmStruct& mm, Vaddr addr, Vaddr end, Advice advice) {
  WriteLock guard(mm.mmap_lock);
  uint32_t set = advice == Advice::kHugePage ? kVmHugepage : kVmNoHugepage;
  uint32_t clear = advice == Advice::kHugePage ? kVmNoHugepage : kVmHugepage;
  bool hole = for_each_vma_piece(mm, addr, end, [&](Vma& vma, Vaddr from, Vaddr to)
                                                    NO_THREAD_SAFETY_ANALYSIS {
    // The write lock is held by `guard` in the enclosing scope.
    madvise_update_flags(mm, vma, from, to, set, clear);
  });
  return hole_status(hole);
}

Status madvise_zap_or_free(MmStruct& mm, Vaddr addr, Vaddr end, Advice advice) {
  // MADV_DONTNEED and MADV_FREE change entries only: mmap_lock for read.
  ReadLock guard(mm.mmap_lock);
  bool hole = for_each_vma_piece(mm, addr, end, [&](Vma& vma, Vaddr from, Vaddr to) {
    if (advice == Advice::kDontNeed) {
      zap_page_range(vma, from, to);
    } else {
      madvise_free_range(vma, from, to);
    }
  });
  return hole_status(hole);
}

}  // namespace

Status do_madvise(MmStruct& mm, Vaddr addr, uint64_t len, Advice advice) {
  if (!addr.page_aligned()) return Err{Errno::kInval};
  uint64_t size = page_align_up(len);
  // is_valid_madvise(): only a length that overflows when rounded up, or a
  // range that wraps, is invalid; a range above the address space is just
  // unmapped (-ENOMEM below).
  if (size < len || addr.v + size < addr.v) return Err{Errno::kInval};
  if (size == 0) return Ok();
  Vaddr end = addr + size;
  switch (advice) {
    case Advice::kDontNeed:
    case Advice::kFree:
      return madvise_zap_or_free(mm, addr, end, advice);
    case Advice::kHugePage:
    case Advice::kNoHugePage:
      return madvise_update_range(mm, addr, end, advice);
    case Advice::kCollapse:
      return madvise_collapse(mm, addr, end);
  }
  return Err{Errno::kInval};
}

}  // namespace hmmsim
