// Helpers shared by the files of mm/ and not part of its public interface
// (Linux `mm/internal.h`).
#pragma once

#include <span>

#include "base/result.h"
#include "base/thread_annotations.h"
#include "base/types.h"
#include "mm/folio.h"
#include "mm/huge_memory.h"
#include "mm/mm_struct.h"
#include "mm/pgtable.h"
#include "mm/vma.h"

namespace hmmsim {

// The PTE table covering `addr`, allocating it (and the levels above) when
// `alloc` is set (pte_alloc). nullptr when absent, or when the PMD holds a
// huge leaf instead of a table.
PteTable* pte_table_lookup(MmStruct& mm, Vaddr addr, MmStruct::Alloc alloc);

// restore_exclusive_pte(): the present PTE that replaces the
// device-exclusive entry `orig` of `vma` at `addr`: old, writable (and
// dirty if the folio is) only where the Vma allows writes and the page is
// still PageAnonExclusive (can_change_pte_writable). The caller holds the
// folio lock and the PTE lock and writes the result.
Pte restore_exclusive_pte(const Vma& vma, const Pte& orig);

// vm_normal_folio(): the folio a present or folio-mapping entry points at.
Folio pte_folio(World& world, const Pte& pte);

// zap_page_range_single(): removes every mapping in [start, end) of `vma`,
// dropping rmap, references and rss, inside an MMU_NOTIFY_CLEAR
// invalidation of the range. Page tables stay (see free_pgtables).
void zap_page_range(Vma& vma, Vaddr start, Vaddr end);
// unmap_single_vma(): the same without telling the mmu notifiers; the
// caller has started an invalidation covering [start, end).
void unmap_single_vma(Vma& vma, Vaddr start, Vaddr end);
// unmap_vmas(): one MMU_NOTIFY_UNMAP invalidation of [start, end) around
// the unmap of each Vma's part of it (munmap, exit_mmap).
void unmap_vmas(MmStruct& mm, std::span<Vma* const> vmas, Vaddr start, Vaddr end);

// free_pgtables(): frees page tables in [start, end) that no Vma covers any
// more. The caller holds mmap_lock for write and has zapped the range.
void free_pgtables(MmStruct& mm, Vaddr start, Vaddr end) REQUIRES(mm.mmap_lock);

// split_vma(): splits `vma` at `addr`; returns the upper part.
Vma* split_vma(MmStruct& mm, Vma& vma, Vaddr addr) REQUIRES(mm.mmap_lock);
// vma_merge: merges `vma` with its neighbours where Linux would; returns the
// Vma that now covers `vma`'s range.
Vma* vma_merge_neighbours(MmStruct& mm, Vma& vma) REQUIRES(mm.mmap_lock);
// get_unmapped_area(): the highest free gap below the mmap base that fits
// `len` at `align` (raised to the PMD size for PMD-multiple lengths); 0
// when there is none.
Vaddr get_unmapped_area(MmStruct& mm, uint64_t len, uint64_t align) REQUIRES(mm.mmap_lock);
// do_vmi_munmap() with mmap_lock held for write: split at the edges, zap,
// unlink and free the Vmas and page tables of [start, end).
void unmap_range_locked(MmStruct& mm, Vaddr start, Vaddr end) REQUIRES(mm.mmap_lock);

// Splits Vmas so that `start` and `end` fall on Vma boundaries.
void vma_split_range(MmStruct& mm, Vaddr start, Vaddr end) REQUIRES(mm.mmap_lock);

// What a page walk does with a PMD leaf it meets.
enum class HugeAction : uint8_t {
  kHandled,  // the callback dealt with the whole leaf
  kSplit,    // split the PMD (non-freeze) and walk its PTEs instead
};
// Called with the PMD lock held for a leaf covering [from, to).
using HugePmdFn = std::function<HugeAction(PmdRef pmd, Vaddr from, Vaddr to)>;
// Called with the PTE table's lock held for [from, to) inside it.
using PteRangeFn = std::function<void(PteTable& table, Vaddr from, Vaddr to)>;

// walk_page_range() over [start, end) of `vma`: PMD leaves go to `huge`
// (nullptr: always split), existing PTE tables to `ptes`.
void walk_page_range(Vma& vma, Vaddr start, Vaddr end, const HugePmdFn& huge,
                     const PteRangeFn& ptes);

// vmf_anon_prepare(): give `vma` an anon_vma before its first anonymous
// folio, racing faults agreeing on one (the check is repeated under
// mm->page_table_lock inside the anon_vma lock, as Linux does).
void vma_anon_prepare(Vma& vma);

// madvise_free_single_vma() over [start, end) of `vma`: exclusive pages
// become clean, old and lazily freeable; a THP only partly in the range is
// split first. The caller holds mmap_lock for read.
void madvise_free_range(Vma& vma, Vaddr start, Vaddr end);

// madvise_collapse(): MADV_COLLAPSE over [start, end) (khugepaged.cc).
Status madvise_collapse(MmStruct& mm, Vaddr start, Vaddr end);

// migration_entry_wait(): wait until the folio behind a migration entry is
// unlocked (its migration has finished or failed).
void migration_entry_wait(World& world, Pfn pfn);

}  // namespace hmmsim
