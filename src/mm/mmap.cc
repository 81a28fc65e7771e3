// mmap, munmap and the Vma split/merge they rely on (Linux mm/mmap.c,
// mm/vma.c), for private anonymous memory.
#include "base/assert.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "mm/mm.h"
#include "mm/rmap.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

uint32_t prot_to_vm_flags(uint32_t prot) {
  uint32_t flags = kVmMayRead | kVmMayWrite | kVmMayExec;
  if (prot & kProtRead) flags |= kVmRead;
  if (prot & kProtWrite) flags |= kVmWrite;
  if (prot & kProtExec) flags |= kVmExec;
  return flags;
}

bool valid_range(Vaddr addr, uint64_t len) {
  return addr.v >= kUserMin && len <= kUserMax && addr.v <= kUserMax - len;
}

// round_hint_to_min() and the x86 hint masking: a hint is used from the
// start of its page, and a non-zero hint below mmap_min_addr is raised to it.
Vaddr round_hint_to_min(Vaddr hint) {
  hint = hint.page_down();
  return hint.v != 0 && hint.v < kUserMin ? Vaddr{kUserMin} : hint;
}

// The checks __get_unmapped_area() and security_mmap_addr() make on a
// MAP_FIXED address, in their order.
Status check_fixed_addr(Vaddr addr, uint64_t size) {
  if (addr.v > kUserMax - size) return Err{Errno::kNoMem};
  if (!addr.page_aligned()) return Err{Errno::kInval};
  if (addr.v < kUserMin) return Err{Errno::kPerm};  // below mmap_min_addr
  return Ok();
}

bool range_is_free(MmStruct& mm, Vaddr addr, uint64_t len) REQUIRES(mm.mmap_lock) {
  Vma* vma = mm.find_vma(addr);
  return !vma || vma->start() >= addr + len;
}

// is_mergeable_anon_vma(): folios of both may be found through one anon_vma.
bool anon_vmas_compatible(const Vma& a, const Vma& b) {
  if (a.anon_vma() == b.anon_vma()) return a.anon_vma_chain() == b.anon_vma_chain();
  const Vma& without = a.anon_vma() ? b : a;
  const Vma& with = a.anon_vma() ? a : b;
  return without.anon_vma() == nullptr && with.anon_vma_chain().size() == 1;
}

// can_vma_merge: adjacent, same flags, contiguous pgoff, compatible anon_vma.
bool can_merge(const Vma& lo, const Vma& hi) {
  return lo.end() == hi.start() && lo.flags() == hi.flags() &&
         lo.pgoff() + lo.nr_pages() == hi.pgoff() && anon_vmas_compatible(lo, hi);
}

// Folds `hi` into `lo`.
void merge_into(MmStruct& mm, Vma& lo, Vma& hi) REQUIRES(mm.mmap_lock) {
  if (!lo.anon_vma() && hi.anon_vma()) anon_vma_clone(lo, hi);
  unlink_anon_vmas(mm.world(), hi);
  Vaddr end = hi.end();
  std::unique_ptr<Vma> gone = mm.remove_vma(&hi);
  lo.set_range(lo.start(), end, lo.pgoff());
}

}  // namespace

// get_unmapped_area(): the highest free gap below the mmap base that fits
// `len` at `align`; 0 when there is none.
Vaddr get_unmapped_area(MmStruct& mm, uint64_t len, uint64_t align) {
  // Anonymous mappings whose length is a multiple of the PMD size are
  // PMD-aligned (thp_get_unmapped_area), so that they can get THPs.
  if (len % kPmdSize == 0 && align < kPmdSize) align = kPmdSize;
  uint64_t top = MmStruct::kMmapBase;
  const auto& vmas = mm.vmas();
  auto it = vmas.lower_bound(top);
  // Walk gaps from the top down: [prev->end, next->start).
  while (true) {
    uint64_t gap_end = top;
    uint64_t gap_start = kUserMin;
    if (it != vmas.begin()) {
      auto prev = std::prev(it);
      gap_start = prev->second->end().v;
      if (gap_start > gap_end) gap_start = gap_end;
    }
    if (gap_end >= len) {
      uint64_t cand = (gap_end - len) & ~(align - 1);
      if (cand >= gap_start && cand >= kUserMin) return Vaddr{cand};
    }
    if (it == vmas.begin()) return Vaddr{0};
    --it;
    top = it->second->start().v;
  }
}

Vma* split_vma(MmStruct& mm, Vma& vma, Vaddr addr) {
  HMM_ASSERT(addr > vma.start() && addr < vma.end() && addr.page_aligned(),
             "split of [{:#x}, {:#x}) at {:#x}", vma.start().v, vma.end().v, addr.v);
  // A PMD leaf may not straddle a Vma boundary.
  vma_adjust_trans_huge(vma, addr);
  uint64_t pgoff = vma.linear_page_index(addr);
  auto upper = std::make_unique<Vma>(mm, addr, vma.end(), vma.flags(), pgoff);
  anon_vma_clone(*upper, vma);
  vma.set_range(vma.start(), addr, vma.pgoff());
  return mm.insert_vma(std::move(upper));
}

void vma_split_range(MmStruct& mm, Vaddr start, Vaddr end) {
  if (Vma* vma = mm.vma_lookup(start); vma && vma->start() < start) split_vma(mm, *vma, start);
  if (Vma* vma = mm.vma_lookup(end); vma && vma->start() < end) split_vma(mm, *vma, end);
}

Vma* vma_merge_neighbours(MmStruct& mm, Vma& vma) {
  // The previous Vma comes first: when both neighbours could take `vma` but
  // not each other (different anon_vmas), Linux merges to the left only
  // (can_vma_merge_right).
  Vma* cur = &vma;
  if (Vma* prev = mm.vma_prev(cur->start());
      prev && prev->end() == cur->start() && can_merge(*prev, *cur)) {
    merge_into(mm, *prev, *cur);
    cur = prev;
  }
  if (Vma* next = mm.vma_lookup(cur->end()); next && can_merge(*cur, *next)) {
    merge_into(mm, *cur, *next);
  }
  return cur;
}

// do_vmi_munmap() with the lock held: split at the edges, zap, unlink.
void unmap_range_locked(MmStruct& mm, Vaddr start, Vaddr end) {
  vma_split_range(mm, start, end);
  std::vector<Vma*> doomed;
  for (Vma* vma = mm.find_vma(start); vma && vma->start() < end;
       vma = mm.find_vma(vma->end())) {
    doomed.push_back(vma);
  }
  // vms_clear_ptes(): one MMU_NOTIFY_UNMAP of the whole range, when
  // anything is mapped in it (do_vmi_munmap returns early otherwise).
  if (!doomed.empty()) unmap_vmas(mm, doomed, start, end);
  for (Vma* vma : doomed) {
    unlink_anon_vmas(mm.world(), *vma);
    std::unique_ptr<Vma> gone = mm.remove_vma(vma);
  }
  free_pgtables(mm, start, end);
}

Result<Vaddr> do_mmap(MmStruct& mm, Vaddr addr, uint64_t len, uint32_t prot, MapFlags flags,
                      uint64_t align) {
  // Like do_mmap(), unknown protection bits are not an error: they are
  // ignored when the Vma flags are computed (calc_vm_prot_bits).
  if (len == 0) return Err{Errno::kInval};
  if (align < kPageSize || (align & (align - 1)) != 0) return Err{Errno::kInval};
  uint64_t size = page_align_up(len);
  if (size < len || size > kUserMax) return Err{Errno::kNoMem};
  WriteLock guard(mm.mmap_lock);
  if (flags == MapFlags::kFixed) {
    HMM_TRY(check_fixed_addr(addr, size));
    unmap_range_locked(mm, addr, addr + size);
  } else {
    addr = round_hint_to_min(addr);
    if (addr.v == 0 || (addr.v & (align - 1)) != 0 || !valid_range(addr, size) ||
        !range_is_free(mm, addr, size)) {
      addr = get_unmapped_area(mm, size, align);
      if (addr.v == 0) return Err{Errno::kNoMem};
    }
  }
  auto vma = std::make_unique<Vma>(mm, addr, addr + size, prot_to_vm_flags(prot),
                                   addr.page_index());
  Vma* raw = mm.insert_vma(std::move(vma));
  vma_merge_neighbours(mm, *raw);
  return addr;
}

Status do_munmap(MmStruct& mm, Vaddr addr, uint64_t len) {
  if (!addr.page_aligned() || len == 0) return Err{Errno::kInval};
  uint64_t size = page_align_up(len);
  if (size < len || addr.v > kUserMax || size > kUserMax - addr.v) return Err{Errno::kInval};
  WriteLock guard(mm.mmap_lock);
  unmap_range_locked(mm, addr, addr + size);
  return Ok();
}

}  // namespace hmmsim
