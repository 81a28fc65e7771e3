// The system-call level interface of the model: what a process does to its
// address space, and what its CPU does to memory.
//
// Linux counterparts: mm/mmap.c (mmap, munmap), mm/mprotect.c, mm/madvise.c,
// kernel/fork.c (dup_mm), kernel/exit.c (exit_mmap), the architecture's page
// fault handler (do_user_addr_fault) and copy_{to,from}_user for CPU access,
// and mm/migrate.c (move_pages of one page).
//
// Every function validates its arguments like Linux and returns the errno
// Linux returns; none of them crashes on bad input. Each takes the locks it
// needs (mmap_lock for write for the syscalls that change VMAs, for read for
// faults and CPU access).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/result.h"
#include "base/types.h"
#include "mm/mm_struct.h"

namespace hmmsim {

enum Prot : uint32_t {
  kProtNone = 0,
  kProtRead = 1,
  kProtWrite = 2,
  kProtExec = 4,
};

enum class MapFlags : uint32_t {
  kPrivate = 0,  // MAP_PRIVATE | MAP_ANONYMOUS
  kFixed = 1,    // ... | MAP_FIXED: place exactly at `addr`, replacing what is there
};

enum class Advice : uint8_t {
  kDontNeed,    // MADV_DONTNEED: drop the pages
  kFree,        // MADV_FREE: the pages may be reclaimed without writeback
  kHugePage,    // MADV_HUGEPAGE
  kNoHugePage,  // MADV_NOHUGEPAGE
  kCollapse,    // MADV_COLLAPSE: collapse PMD ranges into THPs now
};

enum MremapFlag : uint32_t {
  kMremapMaymove = 1,    // MREMAP_MAYMOVE
  kMremapFixed = 2,      // MREMAP_FIXED
  kMremapDontunmap = 4,  // MREMAP_DONTUNMAP
};

// mmap(addr, len, prot, MAP_PRIVATE|MAP_ANONYMOUS[|MAP_FIXED]). Without
// kFixed, `addr` is a hint (0 for none); placement is top-down and aligned
// to `align` (a power of two, at least the page size).
Result<Vaddr> do_mmap(MmStruct& mm, Vaddr addr, uint64_t len, uint32_t prot, MapFlags flags,
                      uint64_t align = kPageSize);
Status do_munmap(MmStruct& mm, Vaddr addr, uint64_t len);
Status do_mprotect(MmStruct& mm, Vaddr addr, uint64_t len, uint32_t prot);
Status do_madvise(MmStruct& mm, Vaddr addr, uint64_t len, Advice advice);
// mremap(old_addr, old_len, new_len, flags, new_addr); returns the new
// address. `new_addr` is used only with kMremapFixed.
Result<Vaddr> do_mremap(MmStruct& mm, Vaddr old_addr, uint64_t old_len, uint64_t new_len,
                        uint32_t flags, Vaddr new_addr = Vaddr{0});

// fork(): a new address space that is a copy-on-write copy of `parent`.
MmStruct& dup_mm(MmStruct& parent);
// exit(): tears the address space down and destroys it.
void exit_mmap(MmStruct& mm);

// The CPU of a task of `mm` loads or stores bytes through the MMU, faulting
// as the hardware would. -EFAULT means the access raised SIGSEGV; it stopped
// at the first page that could not be accessed, and the pages before it
// were transferred.
Status cpu_read(MmStruct& mm, Vaddr addr, std::span<std::byte> out);
Status cpu_write(MmStruct& mm, Vaddr addr, std::span<const std::byte> in);
Result<uint32_t> cpu_read_u32(MmStruct& mm, Vaddr addr);
Status cpu_write_u32(MmStruct& mm, Vaddr addr, uint32_t value);

// move_pages() of the one page at `addr`: migrate the folio mapping it to a
// new RAM folio through migration entries. -EFAULT when nothing is mapped
// there, -EBUSY/-EAGAIN when the folio cannot be migrated now (it stays
// mapped and intact), -ENOMEM without a free destination.
Result<Pfn> migrate_page(MmStruct& mm, Vaddr addr);

}  // namespace hmmsim
