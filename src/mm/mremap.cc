// mremap (Linux mm/mremap.c) for private anonymous memory: shrink, grow in
// place, or move to a new place (MREMAP_MAYMOVE), at a given place
// (MREMAP_FIXED, replacing what is there) and leaving the old range mapped
// but empty (MREMAP_DONTUNMAP).
//
// A move keeps the pages where they are and moves their page-table entries:
// whole PMD leaves when source and destination are both PMD aligned and the
// extent covers the PMD (move_huge_pmd), PTE by PTE otherwise (move_ptes),
// splitting a PMD leaf first when only part of it moves. The new Vma keeps
// the old pgoff, so folio indexes and the rmap stay valid.
#include <optional>

#include "base/assert.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "mm/mm.h"
#include "mm/mmu_notifier.h"
#include "mm/rmap.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

struct MremapArgs {
  Vaddr old_addr;
  uint64_t old_len;
  uint64_t new_len;
  uint32_t flags;
  Vaddr new_addr;
};

// check_mremap_params(): the checks that do not need the Vma.
Status check_mremap_params(MremapArgs& a) {
  if (a.flags & ~(kMremapMaymove | kMremapFixed | kMremapDontunmap)) return Err{Errno::kInval};
  if ((a.flags & kMremapFixed) && !(a.flags & kMremapMaymove)) return Err{Errno::kInval};
  if ((a.flags & kMremapDontunmap) && (!(a.flags & kMremapMaymove) || a.old_len != a.new_len))
    return Err{Errno::kInval};
  if (!a.old_addr.page_aligned()) return Err{Errno::kInval};
  uint64_t old_len = page_align_up(a.old_len);
  uint64_t new_len = page_align_up(a.new_len);
  if (old_len < a.old_len || new_len < a.new_len || new_len == 0) return Err{Errno::kInval};
  a.old_len = old_len;
  a.new_len = new_len;
  if (a.old_addr.v > kUserMax || old_len > kUserMax - a.old_addr.v) return Err{Errno::kInval};
  if (a.flags & kMremapFixed) {
    if (!a.new_addr.page_aligned() || new_len > kUserMax || a.new_addr.v > kUserMax - new_len ||
        a.new_addr.v < kUserMin)
      return Err{Errno::kInval};
    bool overlap = a.new_addr < a.old_addr + old_len && a.old_addr < a.new_addr + new_len;
    if (overlap) return Err{Errno::kInval};
  }
  return Ok();
}

// move_ptes(): one PTE table's worth of [old, old + len) to `new_addr`.
void move_ptes(MmStruct& mm, Vaddr old_addr, Vaddr new_addr, uint64_t len)
    NO_THREAD_SAFETY_ANALYSIS {
  PteTable* src = pte_table_lookup(mm, old_addr, MmStruct::Alloc::kNo);
  if (!src) return;
  PteTable* dst = pte_table_lookup(mm, new_addr, MmStruct::Alloc::kYes);
  HMM_ASSERT(dst, "no destination table at {:#x}", new_addr.v);
  // Both tables' locks, the destination's taken nested as in move_ptes(),
  // and only once when both ranges lie in one table (new_ptl == old_ptl).
  MutexLock src_guard(src->ptl);
  std::optional<MutexLock> dst_guard;
  if (dst != src) dst_guard.emplace(dst->ptl);
  for (uint64_t off = 0; off < len; off += kPageSize) {
    Pte pte = src->get((old_addr + off).pte_index());
    if (pte.is_none()) continue;
    HMM_ASSERT(dst->get((new_addr + off).pte_index()).is_none(), "mremap target {:#x} in use",
               (new_addr + off).v);
    src->set((old_addr + off).pte_index(), Pte::none());
    dst->set((new_addr + off).pte_index(), pte);
  }
}

// Tries to move a whole PMD leaf; false when the old PMD is not a leaf.
bool try_move_huge_pmd(MmStruct& mm, Vaddr old_addr, Vaddr new_addr) NO_THREAD_SAFETY_ANALYSIS {
  PmdTable* old_t = mm.pmd_table(old_addr, MmStruct::Alloc::kNo);
  if (!old_t) return false;
  PmdTable* new_t = mm.pmd_table(new_addr, MmStruct::Alloc::kYes);
  PmdRef old_pmd{old_t, old_addr.pmd_index(), old_addr};
  PmdRef new_pmd{new_t, new_addr.pmd_index(), new_addr};
  // Two PMD locks: the old one first; when both slots share a table they
  // share the lock too (move_huge_pmd takes the second only if it differs).
  MutexLock old_guard(old_t->ptl);
  if (!old_pmd.slot().entry.is_huge()) return false;
  if (new_t == old_t) {
    move_huge_pmd(old_pmd, new_pmd);
    return true;
  }
  MutexLock new_guard(new_t->ptl);
  move_huge_pmd(old_pmd, new_pmd);
  return true;
}

// move_page_tables(): move every entry of [old, old + len) to `new_addr`.
void move_page_tables(Vma& old_vma, Vaddr old_addr, Vaddr new_addr, uint64_t len) {
  MmStruct& mm = old_vma.mm();
  // The old range loses its entries: MMU_NOTIFY_UNMAP of all of it.
  MmuNotifierInvalidation inv(
      mmu_notifier_range_init(MmuNotifyEvent::kUnmap, mm, old_addr, old_addr + len));
  uint64_t done = 0;
  while (done < len) {
    Vaddr from = old_addr + done;
    Vaddr to = new_addr + done;
    // The extent: up to the next PMD boundary of either side.
    uint64_t extent = std::min(kPmdSize - (from.v & (kPmdSize - 1)),
                               kPmdSize - (to.v & (kPmdSize - 1)));
    extent = std::min(extent, len - done);
    if (extent == kPmdSize && try_move_huge_pmd(mm, from, to)) {
      done += extent;
      continue;
    }
    // Part of a PMD leaf moves: split it first (split_huge_pmd, which
    // looks before it tells the notifiers).
    if (PmdTable* old_t = mm.pmd_table(from, MmStruct::Alloc::kNo))
      split_huge_pmd(old_vma, PmdRef{old_t, from.pmd_index(), from.pmd_down()}, Freeze::kNo);
    move_ptes(mm, from, to, extent);
    done += extent;
  }
}

// move_vma(): a new Vma at `new_addr` for [old_addr, old_addr + old_len),
// grown to new_len, then the old range unmapped unless DONTUNMAP.
Vaddr move_vma(MmStruct& mm, Vma& vma, const MremapArgs& a) REQUIRES(mm.mmap_lock) {
  uint64_t pgoff = vma.linear_page_index(a.old_addr);
  auto copy = std::make_unique<Vma>(mm, a.new_addr, a.new_addr + a.new_len, vma.flags(), pgoff);
  anon_vma_clone(*copy, vma);
  Vma* new_vma = mm.insert_vma(std::move(copy));
  move_page_tables(vma, a.old_addr, a.new_addr, a.old_len);
  if (!(a.flags & kMremapDontunmap)) unmap_range_locked(mm, a.old_addr, a.old_addr + a.old_len);
  vma_merge_neighbours(mm, *new_vma);
  return a.new_addr;
}

// Whether [end, end + grow) after `vma` is free.
bool can_expand_in_place(MmStruct& mm, Vma& vma, uint64_t grow) REQUIRES(mm.mmap_lock) {
  if (vma.end().v > kUserMax - grow) return false;
  Vma* next = mm.find_vma(vma.end());
  return !next || next->start() >= vma.end() + grow;
}

}  // namespace

Result<Vaddr> do_mremap(MmStruct& mm, Vaddr old_addr, uint64_t old_len, uint64_t new_len,
                        uint32_t flags, Vaddr new_addr) {
  MremapArgs a{old_addr, old_len, new_len, flags, new_addr};
  HMM_TRY(check_mremap_params(a));
  WriteLock guard(mm.mmap_lock);
  Vma* vma = mm.vma_lookup(a.old_addr);
  if (!vma) return Err{Errno::kFault};
  if (a.old_len == 0) return Err{Errno::kInval};  // duplicating needs a shared mapping
  if (a.old_len > vma->end() - a.old_addr) return Err{Errno::kFault};
  if (a.flags & kMremapFixed) {
    unmap_range_locked(mm, a.new_addr, a.new_addr + a.new_len);
    if (a.old_len > a.new_len) {
      unmap_range_locked(mm, a.old_addr + a.new_len, a.old_addr + a.old_len);
      a.old_len = a.new_len;
    }
  } else if (!(a.flags & kMremapDontunmap) && a.new_len <= a.old_len) {
    if (a.new_len < a.old_len)
      unmap_range_locked(mm, a.old_addr + a.new_len, a.old_addr + a.old_len);
    return a.old_addr;
  } else if (!(a.flags & kMremapDontunmap) && a.old_addr + a.old_len == vma->end() &&
             can_expand_in_place(mm, *vma, a.new_len - a.old_len)) {
    vma->set_range(vma->start(), vma->end() + (a.new_len - a.old_len), vma->pgoff());
    vma_merge_neighbours(mm, *vma);
    return a.old_addr;
  } else {
    if (!(a.flags & kMremapMaymove)) return Err{Errno::kNoMem};
    a.new_addr = get_unmapped_area(mm, a.new_len, kPageSize);
    if (a.new_addr.v == 0) return Err{Errno::kNoMem};
  }
  // The moved part becomes a Vma of its own first.
  vma_split_range(mm, a.old_addr, a.old_addr + a.old_len);
  vma = mm.vma_lookup(a.old_addr);
  return move_vma(mm, *vma, a);
}

}  // namespace hmmsim
