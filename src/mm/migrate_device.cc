// migrate_vma_setup(): collect and unmap (Linux mm/migrate_device.c,
// migrate_vma_collect*, migrate_device_unmap).
#include "mm/migrate_device.h"

#include "base/assert.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "mm/memremap.h"
#include "mm/migrate.h"
#include "mm/migrate_device_internal.h"
#include "mm/mmu_notifier.h"
#include "mm/rmap.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

// The state of one collect walk (struct migrate_vma + mm_walk).
class Collector {
 public:
  Collector(World& world, MigrateVma& args) : world_(world), a_(args), vma_(*args.vma) {
    if (args.fault_page) fault_folio_ = pfn_folio(world.mem(), *args.fault_page);
  }

  void walk();

 private:
  enum class Huge : uint8_t { kHandled, kSkip, kHole, kPteLevel };
  enum class Step : uint8_t { kNext, kSplit };

  void put(MigratePfn m) {
    a_.src[a_.npages] = m;
    a_.dst[a_.npages] = MigratePfn{};
    a_.npages++;
  }
  void skip(Vaddr start, Vaddr end) {
    for (Vaddr a = start; a < end; a = a + kPageSize) put(MigratePfn{});
  }
  void hole(Vaddr start, Vaddr end);
  void collect_pmd(Vaddr start, Vaddr end);
  Huge collect_huge_pmd(PmdRef pmd, Vaddr start, Vaddr end);
  Huge huge_fallback(Folio folio);
  Step collect_pte(PteTable& table, Vaddr addr) REQUIRES(table.ptl);
  Step unmap_pte(PteTable& table, Vaddr addr, Pte pte, MigratePfn mpfn) REQUIRES(table.ptl);
  bool selects_device(Folio folio) const {
    DevPagemap* pgmap = folio_pgmap(folio);
    return (a_.flags & kSelectDevicePrivate) && pgmap && pgmap->owner() == a_.pgmap_owner;
  }
  bool lock_collected(Folio folio) {
    if (folio == fault_folio_) return true;
    return folio_trylock(folio);
  }

  World& world_;
  MigrateVma& a_;
  Vma& vma_;
  Folio fault_folio_;
  Folio large_;  // the PTE-mapped large folio met by the walk (kSplit)
};

// migrate_vma_collect_hole(): an empty range becomes entries to populate.
void Collector::hole(Vaddr start, Vaddr end) {
  if ((a_.flags & kSelectCompound) && start.pmd_aligned() && end - start == kPmdSize) {
    put(MigratePfn{.migrate = true, .compound = true});
    a_.cpages++;
    skip(start + kPageSize, end);  // room for a later split
    return;
  }
  for (Vaddr a = start; a < end; a = a + kPageSize) {
    put(MigratePfn{.migrate = true});
    a_.cpages++;
  }
}

// The fallback of migrate_vma_collect_huge_pmd(): split the folio itself
// and let the PTE walk collect its pages. Entered with the folio locked
// (unless it is the fault folio) and referenced.
Collector::Huge Collector::huge_fallback(Folio folio) {
  Status split = split_folio(world_, folio);
  if (!(folio == fault_folio_)) folio_unlock(folio);
  folio_put(folio);
  return split.ok() ? Huge::kPteLevel : Huge::kSkip;
}

// migrate_vma_collect_huge_pmd().
Collector::Huge Collector::collect_huge_pmd(PmdRef pmd, Vaddr start, Vaddr end)
    NO_THREAD_SAFETY_ANALYSIS {
  // Entered with the PMD lock held; every return path releases it.
  Pmd entry = pmd.slot().entry;
  bool write = false;
  switch (entry.kind()) {
    case PmdKind::kHugeZero:
      pmd.table->ptl.unlock();
      return Huge::kHole;
    case PmdKind::kPresent:
      if (!(a_.flags & kSelectSystem)) {
        pmd.table->ptl.unlock();
        return Huge::kSkip;
      }
      write = entry.write();
      break;
    case PmdKind::kDevicePrivate:
      if (!selects_device(pfn_folio(world_.mem(), entry.pfn()))) {
        pmd.table->ptl.unlock();
        return Huge::kSkip;
      }
      write = entry.write();
      break;
    default:  // a PMD migration entry is skipped, not waited for (6.19)
      pmd.table->ptl.unlock();
      return Huge::kSkip;
  }
  Folio folio = pfn_folio(world_.mem(), entry.pfn());
  folio_get(folio);
  if (!lock_collected(folio)) {
    pmd.table->ptl.unlock();
    folio_put(folio);
    return Huge::kSkip;
  }
  bool whole = (a_.flags & kSelectCompound) && start.pmd_aligned() && end - start == kPmdSize;
  if (whole) {
    PageVmaMappedWalk pvmw(folio, vma_, pmd.haddr, PvmwFlags::kNone);
    pmd.table->ptl.unlock();  // the walk takes it again
    bool hit = pvmw.next();
    HMM_ASSERT(hit && pvmw.pmd_level(), "lost the PMD mapping of {:#x}", folio.pfn().v);
    if (set_pmd_migration_entry(pvmw, folio)) {
      pvmw.done();
      put(MigratePfn{.pfn = folio.pfn(), .valid = true, .migrate = true, .write = write,
                     .compound = true});
      a_.cpages++;
      skip(start + kPageSize, end);
      return Huge::kHandled;
    }
    pvmw.done();
    return huge_fallback(folio);
  }
  pmd.table->ptl.unlock();
  return huge_fallback(folio);
}

// The unmap half of migrate_vma_collect_pmd() for one page: lock it,
// replace its entry by a migration entry, drop the mapping.
Collector::Step Collector::unmap_pte(PteTable& table, Vaddr addr, Pte pte, MigratePfn mpfn) {
  Folio folio = pfn_folio(world_.mem(), pte.pfn());
  uint64_t idx = pte.pfn() - folio.pfn();
  if (!folio_test_anon(folio)) {
    put(MigratePfn{});
    return Step::kNext;
  }
  folio_get(folio);
  if (!lock_collected(folio)) {
    folio_put(folio);
    put(MigratePfn{});
    return Step::kNext;
  }
  bool anon_exclusive = PageAnonExclusive(folio.page(idx));
  table.set(addr.pte_index(), Pte::none());
  if (anon_exclusive && !folio_try_share_anon_rmap_pte(folio, idx).ok()) {
    table.set(addr.pte_index(), pte);
    if (!(folio == fault_folio_)) folio_unlock(folio);
    folio_put(folio);
    put(MigratePfn{});
    return Step::kNext;
  }
  MigrationKind mk = mpfn.write        ? MigrationKind::kWrite
                     : anon_exclusive ? MigrationKind::kReadExclusive
                                      : MigrationKind::kRead;
  EntryBits bits{.soft_dirty = pte.soft_dirty()};
  if (pte.kind() == PteKind::kPresent) {
    bits.dirty = pte.dirty();
    bits.young = pte.young();
    // folio_mark_dirty(): the PTE is gone, the folio keeps its dirtiness.
    if (pte.dirty()) folio.head().set(kPgDirty);
  }
  table.set(addr.pte_index(), Pte::migration(pte.pfn(), mk, bits));
  folio_remove_rmap_ptes(folio, idx, 1, vma_);
  folio_put(folio);  // the mapping's reference; the collect one stays
  put(mpfn);
  a_.cpages++;
  return Step::kNext;
}

// The per-PTE part of migrate_vma_collect_pmd().
Collector::Step Collector::collect_pte(PteTable& table, Vaddr addr) {
  Pte pte = table.get(addr.pte_index());
  switch (pte.kind()) {
    case PteKind::kNone:
      put(MigratePfn{.migrate = true});
      a_.cpages++;
      return Step::kNext;
    case PteKind::kZero:
      if (!(a_.flags & kSelectSystem)) {
        put(MigratePfn{});
        return Step::kNext;
      }
      put(MigratePfn{.migrate = true});
      a_.cpages++;
      return Step::kNext;
    case PteKind::kMigration:
    case PteKind::kDeviceExclusive:
      put(MigratePfn{});
      return Step::kNext;
    case PteKind::kPresent:
    case PteKind::kDevicePrivate:
      break;
  }
  Folio folio = pfn_folio(world_.mem(), pte.pfn());
  bool device = pte.kind() == PteKind::kDevicePrivate;
  if (device ? !selects_device(folio) : !(a_.flags & kSelectSystem)) {
    put(MigratePfn{});
    return Step::kNext;
  }
  if (folio.is_large()) {
    large_ = folio;
    return Step::kSplit;
  }
  MigratePfn mpfn{.pfn = pte.pfn(), .valid = true, .migrate = true, .write = pte.write()};
  return unmap_pte(table, addr, pte, mpfn);
}

void Collector::collect_pmd(Vaddr start, Vaddr end) NO_THREAD_SAFETY_ANALYSIS {
  // The PMD lock taken below is released on every path: here, or by
  // collect_huge_pmd(), which receives it.
  Vaddr addr = start;
  while (addr < end) {
    PmdTable* pmdt = vma_.mm().pmd_table(addr, MmStruct::Alloc::kNo);
    if (!pmdt) return hole(addr, end);
    PmdRef pmd{pmdt, addr.pmd_index(), addr.pmd_down()};
    pmdt->ptl.lock();
    Pmd entry = pmd.slot().entry;
    if (entry.is_none()) {
      pmdt->ptl.unlock();
      return hole(addr, end);
    }
    if (entry.is_huge()) {
      switch (collect_huge_pmd(pmd, addr, end)) {
        case Huge::kHandled: return;
        case Huge::kSkip: return skip(addr, end);
        case Huge::kHole: return hole(addr, end);
        case Huge::kPteLevel: continue;  // look at the PMD again
      }
    }
    PteTable* table = pmd.slot().table.get();
    pmdt->ptl.unlock();
    Step step = Step::kNext;
    {
      MutexLock guard(table->ptl);
      for (; addr < end && step == Step::kNext; addr = addr + kPageSize) {
        step = collect_pte(*table, addr);
        if (step != Step::kNext) break;
      }
    }
    if (step == Step::kNext) return;
    // A PTE-mapped large folio: split it (without the PTE lock) and resume
    // at the same address (6.19), or skip the rest of this PMD on failure.
    // Like Linux, nothing but mmap_lock keeps the folio alive meanwhile.
    if (!migrate_vma_split_folio(world_, large_, a_.fault_page).ok()) return skip(addr, end);
  }
}

void Collector::walk() {
  for (Vaddr addr = a_.start; addr < a_.end;) {
    Vaddr next = std::min(addr.pmd_down() + kPmdSize, a_.end);
    collect_pmd(addr, next);
    addr = next;
  }
}

Status check_setup_args(World& world, const MigrateVma& a) {
  if (!a.vma) return Err{Errno::kInval};
  if (a.start >= a.end) return Err{Errno::kInval};
  if (a.start < a.vma->start() || a.end > a.vma->end()) return Err{Errno::kInval};
  uint64_t npages = (a.end - a.start) >> kPageShift;
  if (a.src.size() < npages || a.dst.size() < npages) return Err{Errno::kInval};
  if (a.fault_page) {
    MemRange* range = world.mem().range_of(*a.fault_page);
    if (!range || range->kind() != MemKind::kDevicePrivate) return Err{Errno::kInval};
    if (!folio_test_locked(page_folio(*range, *a.fault_page))) return Err{Errno::kInval};
  }
  return Ok();
}

}  // namespace

Status migrate_vma_split_folio(World& world, Folio folio, std::optional<Pfn> fault_page) {
  Folio fault_folio;
  if (fault_page) fault_folio = pfn_folio(world.mem(), *fault_page);
  bool is_fault_folio = fault_folio && folio == fault_folio;
  if (!is_fault_folio) {
    folio_get(folio);
    folio_lock(folio);
  }
  Status ret = split_folio(world, folio);
  if (!ret.ok()) {
    if (!is_fault_folio) {
      folio_unlock(folio);
      folio_put(folio);
    }
    return ret;
  }
  // Move the fault path's lock and reference to the folio that now holds
  // the faulting page.
  Folio new_fault_folio;
  if (fault_page) new_fault_folio = pfn_folio(world.mem(), *fault_page);
  if (!new_fault_folio) {
    folio_unlock(folio);
    folio_put(folio);
  } else if (!(folio == new_fault_folio)) {
    if (!(new_fault_folio == fault_folio)) {
      folio_get(new_fault_folio);
      folio_lock(new_fault_folio);
    }
    folio_unlock(folio);
    folio_put(folio);
  }
  return Ok();
}

Status migrate_vma_setup(World& world, MigrateVma& args) {
  // Like Linux, an unaligned range is rounded down to whole pages first.
  args.start = args.start.page_down();
  args.end = args.end.page_down();
  HMM_TRY(check_setup_args(world, args));
  for (MigratePfn& m : args.src) m = MigratePfn{};
  args.cpages = 0;
  args.npages = 0;
  {
    // migrate_vma_collect(): MMU_NOTIFY_MIGRATE of the range, naming the
    // owner so that the driver migrating can skip its own event.
    MmuNotifierInvalidation inv(mmu_notifier_range_init_owner(
        MmuNotifyEvent::kMigrate, args.vma->mm(), args.start, args.end, args.pgmap_owner));
    Collector(world, args).walk();
  }
  HMM_ASSERT(args.npages == (args.end - args.start) >> kPageShift,
             "collect filled {} slots for {} pages", args.npages,
             (args.end - args.start) >> kPageShift);
  if (args.cpages) args.cpages = migrate_device_unmap(world, args.src.first(args.npages),
                                                      args.fault_page);
  return Ok();
}

}  // namespace hmmsim
