// Transparent huge pages: PMD-mapped anonymous folios of order 9 and their
// splitting (Linux mm/huge_memory.c).
//
// PMD level (huge_memory.cc):
//   thp_vma_allowable          may this address get a THP (policy, Vma, range)
//   do_huge_pmd_anonymous_page first fault: a THP, the huge zero page, or
//                              fallback to 4 KiB when no order-9 block is free
//   do_huge_pmd_wp_page        write to a write-protected PMD: reuse when
//                              exclusive, else split the PMD and COW 4 KiB
//   zap_huge_pmd, copy_huge_pmd, change_huge_pmd, move_huge_pmd
//   set_pmd_migration_entry, remove_migration_pmd (PMD migration entries)
// Splitting (huge_split.cc, folio_split.cc):
//   __split_huge_pmd_locked    one PMD -> 512 PTEs of the same folio,
//                              freezing (migration entries) or not
//   (__)split_huge_pmd(_address) the same, taking the PMD lock, inside an
//                              mmu notifier invalidation of the 2 MiB
//   vma_adjust_trans_huge      split PMDs a new Vma boundary would cut
//   split_folio                one order-9 folio -> 512 order-0 folios:
//                              unmap to migration entries, freeze, split,
//                              unfreeze, remap (never while mapped)
//
// Thread safety: PMD entries are changed under PmdTable::ptl (the `_locked`
// functions require it); folio splits need the folio lock.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "base/thread_annotations.h"
#include "mm/folio.h"
#include "mm/memory.h"
#include "mm/mm_struct.h"
#include "mm/pgtable.h"
#include "mm/vma.h"
#include "mm/world.h"

namespace hmmsim {

class World;
class PageVmaMappedWalk;

enum class Freeze : bool { kNo, kYes };

// The PMD slot covering one 2 MiB range of an address space.
//
// Functions that take a PmdRef and say "Requires: the PMD lock" need
// `table->ptl` held. Clang's analysis cannot follow a lock through a
// by-value handle, so slot() checks it at run time instead.
struct PmdRef {
  PmdTable* table = nullptr;
  unsigned idx = 0;
  Vaddr haddr;  // PMD-aligned start of the range
  PmdSlot& slot() const NO_THREAD_SAFETY_ANALYSIS {
    HMM_ASSERT(table->ptl.is_locked(), "PMD slot at {:#x} used without its lock", haddr.v);
    return table->slot_quiesced(idx);
  }
};

// thp_vma_allowable_order() for PMD order at `addr`.
bool thp_vma_allowable(const Vma& vma, Vaddr addr);

// --- faults (the caller holds mmap_lock for read) ---
// kFallback: continue at PTE level.
VmFault do_huge_pmd_anonymous_page(Vma& vma, PmdRef pmd, uint32_t flags);
VmFault do_huge_pmd_wp_page(Vma& vma, PmdRef pmd, Pmd orig);
// Requires: the PMD lock.
void huge_pmd_set_accessed(PmdRef pmd, Pmd orig, uint32_t flags);

// --- whole-PMD operations (Requires: the PMD lock of each PmdRef) ---
// zap_huge_pmd(): clear a PMD leaf, dropping rmap, reference, rss, deposit.
void zap_huge_pmd(Vma& vma, PmdRef pmd);
// change_huge_pmd(): mprotect of a whole PMD leaf to `newflags`.
void change_huge_pmd(Vma& vma, PmdRef pmd, uint32_t newflags);
// copy_huge_pmd(): fork of a PMD leaf into `dst` (whose lock is held too).
void copy_huge_pmd(Vma& dst_vma, Vma& src_vma, PmdRef dst, PmdRef src);
// move_huge_pmd(): mremap of a whole PMD leaf from `old` to `new` (an empty
// slot of the new Vma's address space).
void move_huge_pmd(PmdRef old_pmd, PmdRef new_pmd);

// --- PMD split ---
// Requires: the PMD lock.
void __split_huge_pmd_locked(Vma& vma, PmdRef pmd, Freeze freeze);
// __split_huge_pmd(): inside an MMU_NOTIFY_CLEAR invalidation of the
// 2 MiB, takes the lock and splits the leaf if one is there. The caller
// holds no page-table lock.
void __split_huge_pmd(Vma& vma, PmdRef pmd, Freeze freeze);
// split_huge_pmd(): __split_huge_pmd() only if the slot holds a leaf now
// (the kernel's macro, which peeks without the lock).
void split_huge_pmd(Vma& vma, PmdRef pmd, Freeze freeze);
// split_huge_pmd_address(): __split_huge_pmd() of the PMD covering `addr`,
// if a PMD table exists there (mm_find_pmd).
void split_huge_pmd_address(Vma& vma, Vaddr addr, Freeze freeze);
// vma_adjust_trans_huge(): before `vma` is cut at `addr`, split a PMD leaf
// that straddles it.
void vma_adjust_trans_huge(Vma& vma, Vaddr addr);

// --- PMD migration entries ---
// set_pmd_migration_entry(): the walk holds the PMD lock on a present or
// device-private leaf of `folio`; false if the folio could not be shared.
bool set_pmd_migration_entry(PageVmaMappedWalk& pvmw, Folio folio);
// remove_migration_pmd(): restore a PMD migration entry as a mapping of `dst`.
void remove_migration_pmd(PageVmaMappedWalk& pvmw, Folio dst);

// --- folio split ---
// can_split_folio(): every reference is explained by mappings and
// `caller_pins`.
bool can_split_folio(Folio folio, int32_t caller_pins);
// split_folio(): uniform split of a locked, referenced, mapped anon THP to
// order 0. The head stays locked and referenced for the caller; every other
// new folio is unlocked and keeps only its mappings' references (unmapped
// ones are freed). -EBUSY if unmapped, -EAGAIN on unexpected references
// (then everything is remapped as it was, except that PMD mappings come
// back as PTE mappings).
Status split_folio(World& world, Folio folio);
// folio_split_unmapped(): split a locked anon THP that is already unmapped
// (only migration entries point at it); no unmap, no remap, no unlock.
Status folio_split_unmapped(World& world, Folio folio);

}  // namespace hmmsim
