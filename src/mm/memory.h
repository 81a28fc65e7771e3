// Page faults (Linux `mm/memory.c`: handle_mm_fault and its helpers).
//
// A fault resolves one address of one Vma: it allocates page tables, maps
// the shared zero page on a read of an empty anonymous page, allocates and
// maps a new folio on a write, breaks copy-on-write (or reuses an exclusive
// page) on a write to a write-protected entry, and waits for a migration to
// finish when it meets a migration entry, asks the owning driver to
// migrate a device-private page back, and takes a device-exclusive page
// back from the device (remove_device_exclusive_entry). The caller holds
// mmap_lock for read and has checked the access against the Vma
// (access_error()).
#pragma once

#include <cstdint>

#include "base/thread_annotations.h"
#include "base/types.h"
#include "mm/mm_struct.h"
#include "mm/vma.h"

namespace hmmsim {

enum FaultFlag : uint32_t {
  kFaultRead = 0,
  kFaultWrite = 1u << 0,   // FAULT_FLAG_WRITE
  kFaultRemote = 1u << 1,  // FAULT_FLAG_REMOTE (a device or another mm faults)
};

enum class VmFault : uint8_t {
  kDone,     // resolved (or nothing to do): retry the access
  kRetry,    // VM_FAULT_RETRY: the caller retries the fault
  kOom,      // VM_FAULT_OOM
  kSigbus,   // VM_FAULT_SIGBUS
  kSigsegv,  // VM_FAULT_SIGSEGV
  kFallback, // VM_FAULT_FALLBACK: no huge page here, handle at PTE level
};

// Requires: mmap_lock of vma.mm() held (checked at run time).
VmFault handle_mm_fault(Vma& vma, Vaddr addr, uint32_t flags);

// access_error(): whether the Vma forbids this kind of access.
bool access_error(const Vma& vma, uint32_t flags);

}  // namespace hmmsim
