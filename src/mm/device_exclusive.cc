// Device-exclusive entries (Linux mm/rmap.c make_device_exclusive, with
// the GUP step of mm/gup.c get_user_page_vma_remote(FOLL_GET | FOLL_WRITE |
// FOLL_SPLIT_PMD); mm/memory.c restore_exclusive_pte).
#include "mm/device_exclusive.h"

#include <optional>

#include "base/assert.h"
#include "mm/folio.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "mm/memory.h"
#include "mm/mm_struct.h"
#include "mm/mmu_notifier.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

// follow_page_mask() with FOLL_WRITE | FOLL_SPLIT_PMD | FOLL_GET: a PMD
// leaf (THP or huge zero page) is split to PTEs first; then the page mapped
// writable at `addr`, with a reference, or nothing when a fault is needed.
std::optional<Pfn> follow_page_write(Vma& vma, Vaddr addr) {
  MmStruct& mm = vma.mm();
  PmdTable* pmdt = mm.pmd_table(addr, MmStruct::Alloc::kNo);
  if (!pmdt) return std::nullopt;
  bool split = false;
  {
    MutexLock guard(pmdt->ptl);
    PmdKind kind = pmdt->slot(addr.pmd_index()).entry.kind();
    split = kind == PmdKind::kPresent || kind == PmdKind::kHugeZero;
  }
  if (split) split_huge_pmd_address(vma, addr, Freeze::kNo);
  PteTable* table = pte_table_lookup(mm, addr, MmStruct::Alloc::kNo);
  if (!table) return std::nullopt;
  MutexLock guard(table->ptl);
  Pte pte = table->get(addr.pte_index());
  if (pte.kind() != PteKind::kPresent || !pte.write()) return std::nullopt;
  folio_get(pte_folio(mm.world(), pte));
  return pte.pfn();
}

// get_user_page_vma_remote() for one page, writable: fault until it is
// mapped writable (breaking COW, bringing device pages back).
Result<Pfn> gup_write(MmStruct& mm, Vaddr addr) {
  mm.mmap_lock.assert_held();
  for (int attempt = 0;; attempt++) {
    HMM_ASSERT(attempt < 1000, "GUP at {:#x} keeps faulting", addr.v);
    Vma* vma = mm.vma_lookup(addr);
    if (!vma || !vma->has(kVmWrite)) return Err{Errno::kFault};  // check_vma_flags
    if (std::optional<Pfn> pfn = follow_page_write(*vma, addr)) return *pfn;
    switch (handle_mm_fault(*vma, addr, kFaultWrite | kFaultRemote)) {
      case VmFault::kDone:
      case VmFault::kRetry:
        break;
      case VmFault::kOom:
        return Err{Errno::kNoMem};
      case VmFault::kSigbus:
      case VmFault::kSigsegv:
      case VmFault::kFallback:
        return Err{Errno::kFault};
    }
  }
}

// The folio_walk half of make_device_exclusive(): inside the
// MMU_NOTIFY_EXCLUSIVE invalidation, the PTE must still map `page`
// writable; it becomes a device-exclusive entry. False: start over.
bool install_exclusive_pte(MmStruct& mm, Vaddr addr, const void* owner, Pfn page) {
  MmuNotifierInvalidation inv(mmu_notifier_range_init_owner(MmuNotifyEvent::kExclusive, mm, addr,
                                                            addr + kPageSize, owner));
  PteTable* table = pte_table_lookup(mm, addr, MmStruct::Alloc::kNo);
  if (!table) return false;
  MutexLock guard(table->ptl);
  Pte pte = table->get(addr.pte_index());
  if (pte.kind() != PteKind::kPresent || pte.pfn() != page || !pte.write()) return false;
  // The dirty bit moves to the folio; the mapping keeps its reference and
  // mapcount.
  if (pte.dirty()) pte_folio(mm.world(), pte).head().set(kPgDirty);
  table->set(addr.pte_index(), Pte::device_exclusive(page, pte.soft_dirty()));
  return true;
}

}  // namespace

Result<Pfn> make_device_exclusive(MmStruct& mm, Vaddr addr, const void* owner) {
  mm.mmap_lock.assert_held();
  HMM_ASSERT(addr.page_aligned(), "make_device_exclusive at unaligned {:#x}", addr.v);
  for (int attempt = 0;; attempt++) {
    HMM_ASSERT(attempt < 1000, "make_device_exclusive at {:#x} never settles", addr.v);
    Result<Pfn> page = gup_write(mm, addr);
    if (!page.ok()) return page;
    // Linux refuses non-anonymous and hugetlb folios here; the model maps
    // only anonymous memory.
    Folio folio = pfn_folio(mm.world().mem(), *page);
    folio_lock(folio);
    if (install_exclusive_pte(mm, addr, owner, *page)) return *page;
    folio_unlock(folio);
    folio_put(folio);
  }
}

Pte restore_exclusive_pte(const Vma& vma, const Pte& orig) {
  World& world = vma.mm().world();
  HMM_ASSERT(orig.kind() == PteKind::kDeviceExclusive, "restoring a {} entry",
             pte_kind_name(orig.kind()));
  Folio folio = pte_folio(world, orig);
  HMM_ASSERT(folio_test_locked(folio), "restoring exclusive page {:#x} without its folio lock",
             orig.pfn().v);
  EntryBits bits{.soft_dirty = orig.soft_dirty()};
  if (vma.has(kVmWrite) && PageAnonExclusive(world.mem().page(orig.pfn()))) {
    bits.write = true;
    bits.dirty = folio.head().test(kPgDirty);
  }
  return Pte::present(orig.pfn(), bits);
}

}  // namespace hmmsim
