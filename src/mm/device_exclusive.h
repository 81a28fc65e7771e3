// Device-exclusive entries: a device takes exclusive (atomic) access to a
// system RAM page of a process, and any CPU access takes it back.
//
// Linux counterparts: `make_device_exclusive()` in mm/rmap.c (6.15+, the
// folio_walk version that keeps the mapcount), and
// `remove_device_exclusive_entry()` / `restore_exclusive_pte()` in
// mm/memory.c. The entry is PTE-only: a PMD-mapped THP is first split to
// PTEs, the folio itself stays large.
//
// Lifecycle of one page:
//   1. make_device_exclusive(): fault the page in writable (a remote write
//      fault: breaks COW, brings device-private pages back); lock the
//      folio; MMU_NOTIFY_EXCLUSIVE invalidation of the page with `owner`;
//      replace the writable present PTE by a device-exclusive entry. The
//      mapping keeps its reference and its mapcount.
//   2. the driver maps the page in its device page table, then unlocks the
//      folio and drops the reference it was given.
//   3. a CPU access (do_swap_page) or fork (copy_nonpresent_pte) restores
//      a present PTE, writable only if the Vma is writable and the page is
//      still PageAnonExclusive; the access path first invalidates the page
//      so the device drops it.
// mprotect leaves the entry as it is (it has no write bit); munmap zaps it
// like a present PTE.
//
// Thread safety: the caller holds mmap_lock for read; the folio lock is
// taken after it and held across the invalidation and the PTE update.
#pragma once

#include "base/result.h"
#include "base/types.h"

namespace hmmsim {

class MmStruct;

// make_device_exclusive(): the page now mapped device-exclusive at `addr`,
// returned with its folio locked and one extra reference (the caller
// unlocks and puts it). -EFAULT when there is no writable Vma at `addr`
// or the fault fails, -ENOMEM when the fault runs out of memory.
// Requires: mmap_lock of `mm` held for read.
Result<Pfn> make_device_exclusive(MmStruct& mm, Vaddr addr, const void* owner);

}  // namespace hmmsim
