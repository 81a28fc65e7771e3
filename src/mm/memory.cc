#include "mm/memory.h"

#include "base/assert.h"
#include "mm/folio.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "mm/memremap.h"
#include "mm/mmu_notifier.h"
#include "mm/rmap.h"
#include "mm/world.h"

namespace hmmsim {

// The state of one fault (`struct vm_fault`).
struct VmFaultCtx {
  Vma& vma;
  Vaddr addr;  // page aligned
  uint32_t flags;
  PteTable* table = nullptr;
  bool write() const { return (flags & kFaultWrite) != 0; }
  MmStruct& mm() const { return vma.mm(); }
  World& world() const { return vma.mm().world(); }
  unsigned idx() const { return addr.pte_index(); }
};

namespace {

VmFault do_anonymous_page(VmFaultCtx& vmf);
VmFault do_wp_page(VmFaultCtx& vmf, Pte orig) REQUIRES(vmf.table->ptl);
VmFault wp_page_copy(VmFaultCtx& vmf, Pte orig, Folio old);

// Builds the PTE for a freshly mapped anonymous page (mk_pte + maybe_mkwrite).
Pte mk_anon_pte(const Vma& vma, Pfn pfn) {
  bool write = vma.has(kVmWrite);
  return Pte::present(pfn, EntryBits{.write = write, .dirty = write, .young = true});
}

// do_anonymous_page(): first touch of an anonymous page.
VmFault do_anonymous_page(VmFaultCtx& vmf) {
  if (!vmf.write()) {
    // The zero page is no anonymous folio: the Vma needs no anon_vma yet.
    MutexLock guard(vmf.table->ptl);
    if (vmf.table->get(vmf.idx()).is_none()) vmf.table->set(vmf.idx(), Pte::zero_page());
    return VmFault::kDone;
  }
  vma_anon_prepare(vmf.vma);
  std::optional<Folio> folio = folio_alloc(vmf.world().mem(), Order{0});
  if (!folio) return VmFault::kOom;
  MutexLock guard(vmf.table->ptl);
  if (!vmf.table->get(vmf.idx()).is_none()) {
    folio_put(*folio);  // somebody else mapped it first
    return VmFault::kDone;
  }
  folio_add_new_anon_rmap(*folio, vmf.vma, vmf.addr, RmapFlags::kExclusive);
  folio->head().set(kPgLru);
  vmf.mm().add_anon_rss(1);
  vmf.table->set(vmf.idx(), mk_anon_pte(vmf.vma, folio->pfn()));
  return VmFault::kDone;
}

// __wp_can_reuse_large_anon_folio(): a PTE-mapped THP may be reused page
// by page only while no other address space maps it and every reference
// is a mapping.
bool wp_can_reuse_large_anon_folio(Folio folio) {
  if (folio_maybe_mapped_shared(folio)) return false;
  return folio_large_mapcount(folio) == folio_ref_count(folio);
}

// wp_can_reuse_anon_folio(): a small folio is ours alone if nobody else
// holds a reference; lock it so the answer stays true.
bool wp_can_reuse_anon_folio(Folio folio) {
  if (folio.is_large()) return wp_can_reuse_large_anon_folio(folio);
  if (folio_ref_count(folio) > 1) return false;
  if (!folio_trylock(folio)) return false;
  bool reuse = folio_ref_count(folio) == 1;
  if (!reuse) folio_unlock(folio);
  return reuse;
}

// do_wp_page(): a write hit a present entry without write permission.
VmFault do_wp_page(VmFaultCtx& vmf, Pte orig) {
  if (orig.kind() == PteKind::kPresent) {
    Folio folio = pte_folio(vmf.world(), orig);
    uint64_t idx = folio.page_index(vmf.world().mem().page(orig.pfn()));
    bool reuse = PageAnonExclusive(folio.page(idx));
    if (!reuse && wp_can_reuse_anon_folio(folio)) {
      if (!folio.is_large()) {
        folio_move_anon_rmap(folio, vmf.vma);
        folio_unlock(folio);
      }
      folio.page(idx).set(kPgAnonExclusive);
      reuse = true;
    }
    if (reuse) {
      // wp_page_reuse()
      vmf.table->set(vmf.idx(), orig.with_write(true).with_dirty(true).with_young(true));
      return VmFault::kDone;
    }
  }
  return VmFault::kRetry;  // the caller drops the ptl and copies
}

// wp_page_copy(): break COW by copying into a new exclusive folio. `old`
// (empty for the zero page) comes with a reference taken under the ptl.
VmFault wp_page_copy(VmFaultCtx& vmf, Pte orig, Folio old) {
  std::optional<Folio> new_folio = folio_alloc(vmf.world().mem(), Order{0});
  if (!new_folio) {
    if (old) folio_put(old);
    return VmFault::kOom;
  }
  if (old) {
    // Our reference keeps the old page alive; its bytes are stable because
    // a writer would need a writable mapping, and this one is not.
    page_copy(new_folio->head(), vmf.world().mem().page(orig.pfn()));
  }
  vma_anon_prepare(vmf.vma);
  // The old page's mapping is replaced: MMU_NOTIFY_CLEAR of this page,
  // begun before and ended after the PTE lock, even if the entry changed.
  MmuNotifierInvalidation inv(mmu_notifier_range_init(MmuNotifyEvent::kClear, vmf.mm(), vmf.addr,
                                                      vmf.addr + kPageSize));
  MutexLock guard(vmf.table->ptl);
  if (!(vmf.table->get(vmf.idx()) == orig)) {
    folio_put(*new_folio);  // the entry changed under us: retry the access
    if (old) folio_put(old);
    return VmFault::kDone;
  }
  folio_add_new_anon_rmap(*new_folio, vmf.vma, vmf.addr, RmapFlags::kExclusive);
  new_folio->head().set(kPgLru);
  vmf.table->set(vmf.idx(), mk_anon_pte(vmf.vma, new_folio->pfn()));
  if (old) {
    uint64_t idx = old.page_index(vmf.world().mem().page(orig.pfn()));
    folio_remove_rmap_ptes(old, idx, 1, vmf.vma);
    folio_put(old);  // the mapping's reference
    folio_put(old);  // ours
  } else {
    vmf.mm().add_anon_rss(1);  // replaced the zero page
  }
  return VmFault::kDone;
}

// The device-private branch of do_swap_page(): with the folio locked and
// referenced, ask the owning driver to migrate the page back to RAM. When
// the folio is locked by someone else, wait for the unlock and retry (the
// post-6.19 fix; 6.19 as released spun instead).
VmFault do_device_private_fault(VmFaultCtx& vmf, Pte pte) {
  Folio folio = pte_folio(vmf.world(), pte);
  {
    MutexLock guard(vmf.table->ptl);
    if (!(vmf.table->get(vmf.idx()) == pte)) return VmFault::kDone;
    if (folio_trylock(folio)) {
      folio_get(folio);
    } else {
      folio = Folio();
    }
  }
  if (!folio) {
    migration_entry_wait(vmf.world(), pte.pfn());  // softleaf_entry_wait_on_locked
    return VmFault::kDone;
  }
  DevPagemap* pgmap = folio_pgmap(folio);
  HMM_ASSERT(pgmap, "device-private entry at {:#x} names RAM", vmf.addr.v);
  VmFault ret = pgmap->ops().migrate_to_ram(DeviceFault{
      .vma = &vmf.vma, .address = vmf.addr, .page = pte.pfn(), .pmd = false, .flags = vmf.flags});
  // A split during the migration moved our lock and reference to the folio
  // that now holds the page.
  Folio now = pfn_folio(vmf.world().mem(), pte.pfn());
  folio_unlock(now);
  folio_put(now);
  return ret;
}

// remove_device_exclusive_entry(): a CPU access takes the page back from
// the device: with the folio locked (waiting for it), the device drops the
// page (an MMU_NOTIFY_CLEAR of it) and the present PTE comes back; the
// access then retries. `folio` comes with a reference taken under the ptl.
VmFault remove_device_exclusive_entry(VmFaultCtx& vmf, Pte orig, Folio folio) {
  folio_lock(folio);
  {
    MmuNotifierInvalidation inv(mmu_notifier_range_init_owner(
        MmuNotifyEvent::kClear, vmf.mm(), vmf.addr, vmf.addr + kPageSize, nullptr));
    MutexLock guard(vmf.table->ptl);
    if (vmf.table->get(vmf.idx()) == orig) {
      vmf.table->set(vmf.idx(), restore_exclusive_pte(vmf.vma, orig));
    }
  }
  folio_unlock(folio);
  folio_put(folio);
  return VmFault::kDone;
}

// do_huge_pmd_device_private(): the same for a device-private PMD; a
// locked folio makes the access simply fault again.
VmFault do_huge_pmd_device_private(Vma& vma, PmdRef pmd, Pmd orig, uint32_t flags) {
  World& world = vma.mm().world();
  Folio folio = pfn_folio(world.mem(), orig.pfn());
  {
    MutexLock guard(pmd.table->ptl);
    if (!(pmd.slot().entry == orig)) return VmFault::kDone;
    if (!folio_trylock(folio)) return VmFault::kDone;
    folio_get(folio);
  }
  VmFault ret = folio_pgmap(folio)->ops().migrate_to_ram(DeviceFault{
      .vma = &vma, .address = pmd.haddr, .page = orig.pfn(), .pmd = true, .flags = flags});
  folio_unlock(folio);
  folio_put(folio);
  return ret;
}

// handle_pte_fault(): dispatch on what the PTE holds.
VmFault handle_pte_fault(VmFaultCtx& vmf) {
  Pte pte = Pte::none();
  Folio old;  // the folio a COW copies from, referenced under the ptl
  {
    MutexLock guard(vmf.table->ptl);
    pte = vmf.table->get(vmf.idx());
    switch (pte.kind()) {
      case PteKind::kNone:
        break;
      case PteKind::kMigration:
        break;
      case PteKind::kDevicePrivate:
        break;
      case PteKind::kDeviceExclusive:
        old = pte_folio(vmf.world(), pte);  // folio_try_get
        folio_get(old);
        break;
      case PteKind::kPresent:
      case PteKind::kZero:
        if (!vmf.write()) {
          if (pte.kind() == PteKind::kPresent) vmf.table->set(vmf.idx(), pte.with_young(true));
          return VmFault::kDone;
        }
        if (pte.write()) {
          vmf.table->set(vmf.idx(), pte.with_dirty(true).with_young(true));
          return VmFault::kDone;
        }
        if (do_wp_page(vmf, pte) == VmFault::kDone) return VmFault::kDone;
        if (pte.kind() == PteKind::kPresent) {
          old = pte_folio(vmf.world(), pte);
          folio_get(old);
        }
        break;
    }
  }
  switch (pte.kind()) {
    case PteKind::kNone: return do_anonymous_page(vmf);
    case PteKind::kMigration:
      migration_entry_wait(vmf.world(), pte.pfn());
      return VmFault::kDone;
    case PteKind::kDevicePrivate:
      return do_device_private_fault(vmf, pte);
    case PteKind::kDeviceExclusive:
      return remove_device_exclusive_entry(vmf, pte, old);
    default: return wp_page_copy(vmf, pte, old);
  }
}

// The PMD level of __handle_mm_fault(): THP faults on an empty PMD, and
// faults on PMD leaves. kFallback continues at the PTE level.
VmFault handle_pmd_fault(Vma& vma, PmdRef pmd, uint32_t flags) {
  Pmd entry;
  {
    MutexLock guard(pmd.table->ptl);
    entry = pmd.slot().entry;
    bool write = flags & kFaultWrite;
    bool huge = entry.kind() == PmdKind::kPresent || entry.kind() == PmdKind::kHugeZero;
    if (huge && (!write || entry.write())) {
      huge_pmd_set_accessed(pmd, entry, flags);
      return VmFault::kDone;
    }
  }
  switch (entry.kind()) {
    case PmdKind::kNone:
      if (!thp_vma_allowable(vma, pmd.haddr)) return VmFault::kFallback;
      return do_huge_pmd_anonymous_page(vma, pmd, flags);
    case PmdKind::kTable:
      return VmFault::kFallback;
    case PmdKind::kMigration:
      migration_entry_wait(vma.mm().world(), entry.pfn());
      return VmFault::kDone;
    case PmdKind::kPresent:
    case PmdKind::kHugeZero:
      return do_huge_pmd_wp_page(vma, pmd, entry);
    case PmdKind::kDevicePrivate:
      return do_huge_pmd_device_private(vma, pmd, entry, flags);
  }
  return VmFault::kFallback;
}

}  // namespace

void vma_anon_prepare(Vma& vma) { anon_vma_prepare(vma.mm().world(), vma); }

bool access_error(const Vma& vma, uint32_t flags) {
  if (flags & kFaultWrite) return !vma.has(kVmWrite);
  // x86 cannot map a page writable or executable without making it
  // readable: any access bit allows reads (vma_is_accessible).
  return (vma.flags() & kVmAccessFlags) == 0;
}

VmFault handle_mm_fault(Vma& vma, Vaddr addr, uint32_t flags) {
  vma.mm().mmap_lock.assert_held();
  HMM_ASSERT(vma.contains(addr), "fault at {:#x} outside its Vma", addr.v);
  if (access_error(vma, flags)) return VmFault::kSigsegv;
  PmdTable* pmdt = vma.mm().pmd_table(addr, MmStruct::Alloc::kYes);
  VmFault ret = handle_pmd_fault(vma, PmdRef{pmdt, addr.pmd_index(), addr.pmd_down()}, flags);
  if (ret != VmFault::kFallback) return ret;
  VmFaultCtx vmf{.vma = vma, .addr = addr.page_down(), .flags = flags};
  vmf.table = pte_table_lookup(vma.mm(), vmf.addr, MmStruct::Alloc::kYes);
  // A huge entry appeared meanwhile: let the access retry.
  if (!vmf.table) return VmFault::kDone;
  return handle_pte_fault(vmf);
}

PteTable* pte_table_lookup(MmStruct& mm, Vaddr addr, MmStruct::Alloc alloc) {
  PmdTable* pmdt = mm.pmd_table(addr, alloc);
  if (!pmdt) return nullptr;
  MutexLock guard(pmdt->ptl);
  PmdSlot& slot = pmdt->slot(addr.pmd_index());
  if (slot.entry.is_table()) return slot.table.get();
  if (!slot.entry.is_none() || alloc == MmStruct::Alloc::kNo) return nullptr;
  slot.table = std::make_unique<PteTable>(mm.world().sched());
  slot.entry = Pmd::table();
  mm.add_nr_ptes(1);
  return slot.table.get();
}

Folio pte_folio(World& world, const Pte& pte) {
  HMM_ASSERT(pte.has_pfn(), "pte {} has no folio", pte.describe());
  return pfn_folio(world.mem(), pte.pfn());
}

void migration_entry_wait(World& world, Pfn pfn) {
  Folio folio = pfn_folio(world.mem(), pfn);
  // The migrating thread holds the folio lock until every migration entry is
  // gone; wait for the unlock, then let the access retry.
  while (folio_test_locked(folio)) world.sched().block(&folio.head());
}

}  // namespace hmmsim
