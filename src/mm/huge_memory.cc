// PMD-level THP operations: faults, zap, fork, mprotect, mremap and PMD
// migration entries (Linux mm/huge_memory.c).
#include "mm/huge_memory.h"

#include "base/assert.h"
#include "mm/deferred_split.h"
#include "mm/internal.h"
#include "mm/migrate.h"
#include "mm/mmu_notifier.h"
#include "mm/rmap.h"
#include "mm/vmstat.h"
#include "mm/world.h"

namespace hmmsim {

bool thp_vma_allowable(const Vma& vma, Vaddr addr) {
  if (vma.has(kVmNoHugepage)) return false;
  switch (vma.mm().world().config().thp) {
    case ThpPolicy::kNever: return false;
    case ThpPolicy::kMadvise:
      if (!vma.has(kVmHugepage)) return false;
      break;
    case ThpPolicy::kAlways: break;
  }
  Vaddr haddr = addr.pmd_down();
  return haddr >= vma.start() && haddr + kPmdSize <= vma.end();
}

namespace {

// The PMD entry for a freshly mapped anonymous THP (folio_mk_pmd +
// maybe_pmd_mkwrite).
Pmd mk_anon_pmd(const Vma& vma, Pfn head) {
  bool write = vma.has(kVmWrite);
  return Pmd::present(head, EntryBits{.write = write, .dirty = write, .young = true});
}

// map_anon_folio_pmd(): install a new exclusive THP in an empty (or huge
// zero) slot that already has its deposit.
void map_anon_folio_pmd(Vma& vma, PmdRef pmd, Folio folio) {
  World& world = vma.mm().world();
  folio_add_new_anon_rmap(folio, vma, pmd.haddr, RmapFlags::kExclusive);
  folio.head().set(kPgLru);
  pmd.slot().entry = mk_anon_pmd(vma, folio.pfn());
  vma.mm().add_anon_rss(kHPageNr);
  world.mem().deferred_split().add(folio, false);
  world.stats().count(VmEvent::kThpFaultAlloc);
}

// do_huge_zero_wp_pmd(): a write to the huge zero page gets a new THP, or
// falls back to 4 KiB pages (the caller splits).
VmFault do_huge_zero_wp_pmd(Vma& vma, PmdRef pmd, Pmd orig) {
  World& world = vma.mm().world();
  std::optional<Folio> folio = folio_alloc(world.mem(), Order{kHPageOrder});
  if (!folio) {
    world.stats().count(VmEvent::kThpFaultFallback);
    return VmFault::kFallback;
  }
  // The huge zero page's mapping is replaced: MMU_NOTIFY_CLEAR of the PMD.
  MmuNotifierInvalidation inv(mmu_notifier_range_init(MmuNotifyEvent::kClear, vma.mm(), pmd.haddr,
                                                      pmd.haddr + kPmdSize));
  MutexLock guard(pmd.table->ptl);
  if (!(pmd.slot().entry.kind() == orig.kind())) {
    folio_put(*folio);
    return VmFault::kDone;
  }
  map_anon_folio_pmd(vma, pmd, *folio);  // reuses the zero page's deposit
  return VmFault::kDone;
}

}  // namespace

VmFault do_huge_pmd_anonymous_page(Vma& vma, PmdRef pmd, uint32_t flags) {
  World& world = vma.mm().world();
  MmStruct& mm = vma.mm();
  vma_anon_prepare(vma);
  auto deposit = std::make_unique<PteTable>(world.sched());
  if (!(flags & kFaultWrite)) {
    // A read maps the huge zero page (transparent_hugepage/use_zero_page).
    MutexLock guard(pmd.table->ptl);
    if (!pmd.slot().entry.is_none()) return VmFault::kDone;
    pmd.slot().entry = Pmd::huge_zero();
    pmd.slot().deposit = std::move(deposit);
    mm.add_nr_ptes(1);
    return VmFault::kDone;
  }
  std::optional<Folio> folio = folio_alloc(world.mem(), Order{kHPageOrder});
  if (!folio) {
    world.stats().count(VmEvent::kThpFaultFallback);
    return VmFault::kFallback;
  }
  MutexLock guard(pmd.table->ptl);
  if (!pmd.slot().entry.is_none()) {
    folio_put(*folio);
    return VmFault::kDone;
  }
  pmd.slot().deposit = std::move(deposit);
  mm.add_nr_ptes(1);
  map_anon_folio_pmd(vma, pmd, *folio);
  return VmFault::kDone;
}

// Reuse an exclusive THP in place (wp_page_reuse at PMD level).
static void reuse_huge_pmd(PmdRef pmd, Pmd orig) {
  Pmd entry = Pmd::present(orig.pfn(), EntryBits{.write = true, .dirty = true, .young = true,
                                                 .soft_dirty = orig.soft_dirty()});
  pmd.slot().entry = entry;
}

VmFault do_huge_pmd_wp_page(Vma& vma, PmdRef pmd, Pmd orig) {
  if (orig.kind() == PmdKind::kHugeZero) {
    VmFault ret = do_huge_zero_wp_pmd(vma, pmd, orig);
    if (ret != VmFault::kFallback) return ret;
    __split_huge_pmd(vma, pmd, Freeze::kNo);
    return VmFault::kFallback;
  }
  World& world = vma.mm().world();
  Folio folio = pfn_folio(world.mem(), orig.pfn());
  {
    pmd.table->ptl.lock();
    if (!(pmd.slot().entry == orig)) {
      pmd.table->ptl.unlock();
      return VmFault::kDone;
    }
    if (!folio_trylock(folio)) {
      // Sleep for the folio lock without the PMD lock, then recheck.
      folio_get(folio);
      pmd.table->ptl.unlock();
      folio_lock(folio);
      pmd.table->ptl.lock();
      if (!(pmd.slot().entry == orig)) {
        pmd.table->ptl.unlock();
        folio_unlock(folio);
        folio_put(folio);
        return VmFault::kDone;
      }
      folio_put(folio);
    }
    bool reuse = PageAnonExclusive(folio.head());
    if (!reuse && folio_ref_count(folio) == 1) {
      folio_move_anon_rmap(folio, vma);
      folio.head().set(kPgAnonExclusive);
      reuse = true;
    }
    folio_unlock(folio);
    if (reuse) {
      reuse_huge_pmd(pmd, orig);
      pmd.table->ptl.unlock();
      return VmFault::kDone;
    }
    pmd.table->ptl.unlock();
  }
  // Shared: split the PMD and let the PTE fault copy one 4 KiB page.
  __split_huge_pmd(vma, pmd, Freeze::kNo);
  return VmFault::kFallback;
}

void huge_pmd_set_accessed(PmdRef pmd, Pmd orig, uint32_t flags) {
  if (!(pmd.slot().entry == orig) || orig.kind() != PmdKind::kPresent) return;
  EntryBits bits = orig.bits();
  bits.young = true;
  if ((flags & kFaultWrite) && bits.write) bits.dirty = true;
  pmd.slot().entry = Pmd::present(orig.pfn(), bits);
}

void zap_huge_pmd(Vma& vma, PmdRef pmd) {
  MmStruct& mm = vma.mm();
  PmdSlot& slot = pmd.slot();
  Pmd entry = slot.entry;
  HMM_ASSERT(entry.is_huge(), "zap_huge_pmd on a {} PMD", pmd_kind_name(entry.kind()));
  slot.entry = Pmd::none();
  HMM_ASSERT(slot.deposit != nullptr, "PMD leaf at {:#x} without deposit", pmd.haddr.v);
  slot.deposit.reset();  // zap_deposited_table
  mm.add_nr_ptes(-1);
  if (!entry.has_pfn()) return;  // the huge zero page
  mm.add_anon_rss(-static_cast<int64_t>(kHPageNr));
  if (!entry.maps_folio()) return;  // a migration entry holds nothing
  Folio folio = pfn_folio(mm.world().mem(), entry.pfn());
  if (entry.kind() == PmdKind::kPresent && entry.dirty()) folio.head().set(kPgDirty);
  folio_remove_rmap_pmd(folio, vma);
  HMM_ASSERT(folio_mapcount(folio) >= 0, "negative mapcount after zap of {:#x}", folio.pfn().v);
  folio_put(folio);
}

void change_huge_pmd(Vma& vma, PmdRef pmd, uint32_t newflags) {
  PmdSlot& slot = pmd.slot();
  Pmd entry = slot.entry;
  bool want_write = (newflags & kVmWrite) != 0;
  switch (entry.kind()) {
    case PmdKind::kNone:
    case PmdKind::kTable:
    case PmdKind::kHugeZero:
      return;
    case PmdKind::kPresent: {
      if (!want_write) {
        slot.entry = entry.with_write(false);
        return;
      }
      // can_change_pmd_writable(): only an exclusive anon THP.
      Folio folio = pfn_folio(vma.mm().world().mem(), entry.pfn());
      if (!entry.write() && PageAnonExclusive(folio.head())) slot.entry = entry.with_write(true);
      return;
    }
    case PmdKind::kMigration:
      // change_non_present_huge_pmd(): a writable migration entry becomes
      // readable-exclusive (anon) whatever the new protection.
      if (entry.migration_kind() == MigrationKind::kWrite) {
        slot.entry = Pmd::migration(entry.pfn(), MigrationKind::kReadExclusive, entry.bits());
      }
      return;
    case PmdKind::kDevicePrivate:
      if (entry.write()) slot.entry = entry.with_write(false);
      return;
  }
}

void copy_huge_pmd(Vma& dst_vma, Vma& src_vma, PmdRef dst, PmdRef src) {
  (void)src_vma;
  MmStruct& dst_mm = dst_vma.mm();
  World& world = dst_mm.world();
  PmdSlot& s = src.slot();
  PmdSlot& d = dst.slot();
  HMM_ASSERT(d.entry.is_none(), "copy_huge_pmd into a used slot at {:#x}", dst.haddr.v);
  Pmd entry = s.entry;
  switch (entry.kind()) {
    case PmdKind::kNone:
    case PmdKind::kTable:
      HMM_BUG("copy_huge_pmd of a {} PMD", pmd_kind_name(entry.kind()));
    case PmdKind::kHugeZero:
      d.entry = entry;
      break;
    case PmdKind::kMigration:
      if (entry.migration_kind() != MigrationKind::kRead) {
        entry = Pmd::migration(entry.pfn(), MigrationKind::kRead, entry.bits());
        s.entry = entry;
      }
      d.entry = entry;
      dst_mm.add_anon_rss(kHPageNr);
      break;
    case PmdKind::kPresent: {
      Folio folio = pfn_folio(world.mem(), entry.pfn());
      folio_get(folio);
      Status dup = folio_try_dup_anon_rmap_pmd(folio, dst_vma);
      HMM_ASSERT(dup.ok(), "dup of an unpinned THP cannot fail");
      dst_mm.add_anon_rss(kHPageNr);
      s.entry = entry.with_write(false);
      EntryBits bits = entry.bits();
      bits.write = false;
      bits.young = false;
      d.entry = Pmd::present(entry.pfn(), bits);
      break;
    }
    case PmdKind::kDevicePrivate: {
      // copy_huge_non_present_pmd(): both sides keep a read-only entry.
      Folio folio = pfn_folio(world.mem(), entry.pfn());
      if (entry.write()) {
        entry = entry.with_write(false);
        s.entry = entry;
      }
      folio_get(folio);
      Status dup = folio_try_dup_anon_rmap_pmd(folio, dst_vma);
      HMM_ASSERT(dup.ok(), "device-private folios cannot be pinned");
      dst_mm.add_anon_rss(kHPageNr);
      d.entry = entry;
      break;
    }
  }
  d.deposit = std::make_unique<PteTable>(world.sched());
  dst_mm.add_nr_ptes(1);
}

void move_huge_pmd(PmdRef old_pmd, PmdRef new_pmd) {
  PmdSlot& o = old_pmd.slot();
  PmdSlot& n = new_pmd.slot();
  HMM_ASSERT(o.entry.is_huge() && n.entry.is_none() && !n.table,
             "move_huge_pmd from {} to {}", o.entry.describe(), n.entry.describe());
  n.entry = o.entry;
  n.deposit = std::move(o.deposit);
  o.entry = Pmd::none();
}

}  // namespace hmmsim

namespace hmmsim {

bool set_pmd_migration_entry(PageVmaMappedWalk& pvmw, Folio folio) {
  Pmd pmd = pvmw.pmd();
  HMM_ASSERT(pmd.maps_folio() && pmd.pfn() == folio.pfn(), "PMD {} does not map folio {:#x}",
             pmd.describe(), folio.pfn().v);
  bool anon_exclusive = PageAnonExclusive(folio.head());
  pvmw.set_pmd(Pmd::none());  // pmdp_invalidate
  if (pmd.kind() == PmdKind::kPresent && pmd.dirty()) folio.head().set(kPgDirty);
  if (anon_exclusive && !folio_try_share_anon_rmap_pmd(folio).ok()) {
    pvmw.set_pmd(pmd);
    return false;
  }
  MigrationKind mk = pmd.write()       ? MigrationKind::kWrite
                     : anon_exclusive ? MigrationKind::kReadExclusive
                                      : MigrationKind::kRead;
  EntryBits bits{.soft_dirty = pmd.soft_dirty()};
  if (pmd.kind() == PmdKind::kPresent) {
    bits.dirty = pmd.dirty();
    bits.young = pmd.young();
  }
  pvmw.set_pmd(Pmd::migration(pmd.pfn(), mk, bits));
  folio_remove_rmap_pmd(folio, pvmw.vma());
  folio_put(folio);
  return true;
}

void remove_migration_pmd(PageVmaMappedWalk& pvmw, Folio dst) {
  Pmd entry = pvmw.pmd();
  Vma& vma = pvmw.vma();
  HMM_ASSERT(entry.kind() == PmdKind::kMigration, "remove_migration_pmd on {}", entry.describe());
  HMM_ASSERT(dst.order().v == kHPageOrder, "PMD restore to order {} folio", dst.order().v);
  MigrationKind mk = entry.migration_kind();
  folio_get(dst);
  folio_add_anon_rmap_pmd(dst, vma, pvmw.address(),
                          mk == MigrationKind::kRead ? RmapFlags::kNone : RmapFlags::kExclusive);
  bool write = mk == MigrationKind::kWrite;
  HMM_ASSERT(!write || PageAnonExclusive(dst.head()), "writable PMD of a shared folio {:#x}",
             dst.pfn().v);
  pvmw.set_pmd(dst.is_device_private()
                   ? Pmd::device_private(dst.pfn(), write, entry.soft_dirty())
                   : Pmd::present(dst.pfn(), EntryBits{.write = write, .dirty = entry.dirty(),
                                                       .young = entry.young(),
                                                       .soft_dirty = entry.soft_dirty()}));
}

}  // namespace hmmsim
