// The simulated CPU: loads and stores through the MMU, faulting like the
// hardware would and handling the fault like do_user_addr_fault().
//
// The hardware walk is modelled under the PTE lock of the entry it uses and
// with mmap_lock held for read around each page, so that an access never
// sees a page table being freed; the byte copy happens while the PTE lock is
// held, which makes it atomic with respect to migration and unmapping.
#include <cstring>

#include "base/assert.h"
#include "mm/internal.h"
#include "mm/memory.h"
#include "mm/mm.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

enum class AccessDone : uint8_t { kNo, kYes, kNotHuge };

// The access through a PMD leaf, under the PMD lock; kNotHuge when the PMD
// holds a table (or nothing).
AccessDone try_huge_access(MmStruct& mm, Vaddr addr, std::byte* buf, uint64_t len,
                           uint32_t flags) {
  PmdTable* pmdt = mm.pmd_table(addr, MmStruct::Alloc::kNo);
  if (!pmdt) return AccessDone::kNo;
  MutexLock guard(pmdt->ptl);
  PmdSlot& slot = pmdt->slot(addr.pmd_index());
  if (!slot.entry.is_huge()) return slot.entry.is_table() ? AccessDone::kNotHuge : AccessDone::kNo;
  bool write = flags & kFaultWrite;
  Pmd pmd = slot.entry;
  if (pmd.kind() == PmdKind::kHugeZero && !write) {
    std::memset(buf, 0, len);
    return AccessDone::kYes;
  }
  if (pmd.kind() != PmdKind::kPresent || (write && !pmd.write())) return AccessDone::kNo;
  Page& page = mm.world().mem().page(pmd.pfn() + addr.pte_index());
  uint64_t off = addr.v & (kPageSize - 1);
  EntryBits bits = pmd.bits();
  bits.young = true;
  if (write) {
    page_write(page, off, buf, len);
    bits.dirty = true;
  } else {
    page_read(page, off, buf, len);
  }
  slot.entry = Pmd::present(pmd.pfn(), bits);
  return AccessDone::kYes;
}

// Tries the access through the existing translation; kNo means it faulted.
AccessDone try_translated_access(MmStruct& mm, Vaddr addr, std::byte* buf, uint64_t len,
                                 uint32_t flags) {
  AccessDone huge = try_huge_access(mm, addr, buf, len, flags);
  if (huge != AccessDone::kNotHuge) return huge;
  PteTable* table = pte_table_lookup(mm, addr, MmStruct::Alloc::kNo);
  if (!table) return AccessDone::kNo;
  MutexLock guard(table->ptl);
  Pte pte = table->get(addr.pte_index());
  bool write = flags & kFaultWrite;
  uint64_t off = addr.v & (kPageSize - 1);
  if (pte.kind() == PteKind::kZero && !write) {
    std::memset(buf, 0, len);
    return AccessDone::kYes;
  }
  if (pte.kind() != PteKind::kPresent || (write && !pte.write())) return AccessDone::kNo;
  Page& page = mm.world().mem().page(pte.pfn());
  if (write) {
    page_write(page, off, buf, len);
    table->set(addr.pte_index(), pte.with_dirty(true).with_young(true));
  } else {
    page_read(page, off, buf, len);
    if (!pte.young()) table->set(addr.pte_index(), pte.with_young(true));
  }
  return AccessDone::kYes;
}

// A fault that keeps returning VM_FAULT_OOM this many times in a row ends
// the access with -ENOMEM: the point where Linux's allocator would have
// invoked the OOM killer, which the model does not have.
constexpr int kOomRetries = 8;

// One access within one page.
Status access_page(MmStruct& mm, Vaddr addr, std::byte* buf, uint64_t len, uint32_t flags) {
  ReadLock guard(mm.mmap_lock);
  int ooms = 0;
  for (int attempt = 0;; attempt++) {
    HMM_ASSERT(attempt < 1000, "CPU access at {:#x} keeps faulting", addr.v);
    Vma* vma = mm.vma_lookup(addr);
    if (!vma || access_error(*vma, flags)) return Err{Errno::kFault};
    if (try_translated_access(mm, addr, buf, len, flags) == AccessDone::kYes) return Ok();
    switch (handle_mm_fault(*vma, addr, flags)) {
      case VmFault::kDone:
      case VmFault::kRetry:
        break;
      case VmFault::kOom:
        // pagefault_out_of_memory() only warns (since 5.16): the access
        // is retried, and a one-shot failure (dmirror's FAIL_ALLOC) passes.
        if (++ooms == kOomRetries) return Err{Errno::kNoMem};
        break;
      case VmFault::kSigbus:
      case VmFault::kSigsegv:
        return Err{Errno::kFault};
      case VmFault::kFallback:
        HMM_BUG("handle_mm_fault returned an internal fallback at {:#x}", addr.v);
    }
  }
}

Status access_range(MmStruct& mm, Vaddr addr, std::byte* buf, uint64_t len, uint32_t flags) {
  if (addr.v > kUserMax || len > kUserMax - addr.v) return Err{Errno::kFault};
  while (len > 0) {
    uint64_t chunk = kPageSize - (addr.v & (kPageSize - 1));
    if (chunk > len) chunk = len;
    HMM_TRY(access_page(mm, addr, buf, chunk, flags));
    addr = addr + chunk;
    buf += chunk;
    len -= chunk;
  }
  return Ok();
}

}  // namespace

Status cpu_read(MmStruct& mm, Vaddr addr, std::span<std::byte> out) {
  return access_range(mm, addr, out.data(), out.size(), kFaultRead);
}

Status cpu_write(MmStruct& mm, Vaddr addr, std::span<const std::byte> in) {
  // access_range only reads from the buffer on a write.
  return access_range(mm, addr, const_cast<std::byte*>(in.data()), in.size(), kFaultWrite);
}

Result<uint32_t> cpu_read_u32(MmStruct& mm, Vaddr addr) {
  uint32_t v = 0;
  Status st = cpu_read(mm, addr, std::as_writable_bytes(std::span(&v, 1)));
  if (!st.ok()) return Err{st.error()};
  return v;
}

Status cpu_write_u32(MmStruct& mm, Vaddr addr, uint32_t value) {
  return cpu_write(mm, addr, std::as_bytes(std::span(&value, 1)));
}

}  // namespace hmmsim
