// hmm_range_fault(): how a device driver reads (and, if it asks, faults in)
// the CPU page tables of a range, to mirror them in its own page table.
//
// Linux counterpart: `mm/hmm.c`, `include/linux/hmm.h` (6.19, with the
// device-private PMD support of "mm/hmm: populate PFNs from PMD swap
// entry"). The DMA-mapping helpers (hmm_dma_map_*) and the sticky
// DMA_MAPPED/P2PDMA flags are not modelled; neither are hugetlb, PUD leaves
// or VM_IO/VM_PFNMAP Vmas (the model maps only private anonymous memory).
//
// Each page of the range has one HmmPfn. On input its flags say what the
// caller needs (kHmmPfnReqFault: a valid entry; kHmmPfnReqWrite: a writable
// one), combined with the range's defaults as Linux does:
//   request = (in.flags & pfn_flags_mask) | default_flags.
// On output it says what the CPU maps there:
//   0                      nothing, but a fault could map something
//   kHmmPfnValid [|Write]  `pfn` (RAM, the zero page, or a device-private
//                          page of `dev_private_owner`), `order` 9 when a
//                          PMD maps it
//   kHmmPfnError           nothing can be mapped (no Vma, no read access,
//                          another owner's device-private PMD)
// A page that needs a fault is faulted through handle_mm_fault (a remote
// fault), then the walk starts again from it.
//
// Sequence protocol (mmu_notifier.h): the caller reads `notifier_seq` with
// mmu_interval_read_begin(), takes mmap_lock for read, calls
// hmm_range_fault(), drops mmap_lock, takes the lock its invalidate() takes
// and uses the result only if mmu_interval_read_retry() is false.
// hmm_range_fault() itself returns -EBUSY as soon as it sees the sequence
// change.
//
// Thread safety: the caller holds mmap_lock for read; entries are read
// under their PMD or PTE lock, and no lock is held across a fault.
#pragma once

#include <cstdint>
#include <span>

#include "base/result.h"
#include "base/types.h"

namespace hmmsim {

class MmuIntervalNotifier;

// enum hmm_pfn_flags, without the bit packing.
enum HmmPfnFlag : uint8_t {
  kHmmPfnValid = 1u << 0,  // HMM_PFN_VALID
  kHmmPfnWrite = 1u << 1,  // HMM_PFN_WRITE
  kHmmPfnError = 1u << 2,  // HMM_PFN_ERROR
  // Model only: the page is the huge zero page. Linux reports that folio's
  // own pfn; the model's huge zero page has no frames, so `pfn` is the
  // small zero page (same bytes) and this flag tells them apart.
  kHmmPfnHugeZero = 1u << 3,
};
inline constexpr uint8_t kHmmPfnReqFault = kHmmPfnValid;  // HMM_PFN_REQ_FAULT
inline constexpr uint8_t kHmmPfnReqWrite = kHmmPfnWrite;  // HMM_PFN_REQ_WRITE

// One element of hmm_pfns[]: request flags in, pfn and flags out.
struct HmmPfn {
  uint8_t flags = 0;
  uint8_t order = 0;  // hmm_pfn_to_map_order(): 9 for a PMD mapping
  Pfn pfn{};

  bool valid() const { return (flags & kHmmPfnValid) != 0; }
  bool write() const { return (flags & kHmmPfnWrite) != 0; }
  bool error() const { return (flags & kHmmPfnError) != 0; }
  bool huge_zero() const { return (flags & kHmmPfnHugeZero) != 0; }
  bool operator==(const HmmPfn&) const = default;
};

// struct hmm_range.
struct HmmRange {
  MmuIntervalNotifier* notifier = nullptr;
  uint64_t notifier_seq = 0;
  Vaddr start;
  Vaddr end;
  std::span<HmmPfn> hmm_pfns;  // (end - start) / kPageSize elements
  uint8_t default_flags = 0;
  uint8_t pfn_flags_mask = 0;
  const void* dev_private_owner = nullptr;
};

// hmm_range_fault(): 0, or -EBUSY (the notifier sequence changed: start
// over from mmu_interval_read_begin), -EFAULT (a needed fault is
// impossible or failed), -EPERM (a write fault in a Vma without write
// permission).
// Requires: mmap_lock of the notifier's mm held for read; start and end
// page aligned, start < end, hmm_pfns sized to match.
Status hmm_range_fault(HmmRange& range);

}  // namespace hmmsim
