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

}  // namespace

Status do_madvise(MmStruct& mm, Vaddr addr, uint64_t len, Advice advice) {
  if (!addr.page_aligned()) return Err{Errno::kInval};
  uint64_t size = page_align_up(len);
  if (size < len || addr.v > kUserMax || size > kUserMax - addr.v) return Err{Errno::kInval};
  if (size == 0) return Ok();
  Vaddr end = addr + size;
  bool hole = false;
  if (advice == Advice::kDontNeed) {
    // MADV_DONTNEED only zaps entries: mmap_lock for read, like Linux.
    ReadLock guard(mm.mmap_lock);
    hole = for_each_vma_piece(mm, addr, end, [](Vma& vma, Vaddr from, Vaddr to) {
      zap_page_range(vma, from, to);
    });
  } else {
    WriteLock guard(mm.mmap_lock);
    uint32_t set = advice == Advice::kHugePage ? kVmHugepage : kVmNoHugepage;
    uint32_t clear = advice == Advice::kHugePage ? kVmNoHugepage : kVmHugepage;
    hole = for_each_vma_piece(mm, addr, end, [&](Vma& vma, Vaddr from, Vaddr to)
                                                 NO_THREAD_SAFETY_ANALYSIS {
      // The write lock is held by `guard` in the enclosing scope.
      madvise_update_flags(mm, vma, from, to, set, clear);
    });
  }
  // Linux applies the advice to the mapped parts and then reports the hole.
  return hole ? Status(Err{Errno::kNoMem}) : Ok();
}

}  // namespace hmmsim
