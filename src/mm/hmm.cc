// hmm_range_fault() (Linux mm/hmm.c: hmm_range_fault, hmm_vma_walk_test,
// hmm_vma_walk_hole, hmm_vma_walk_pmd, hmm_vma_handle_pmd,
// hmm_vma_handle_absent_pmd, hmm_vma_handle_pte, hmm_vma_fault).
//
// The walk goes Vma by Vma and PMD by PMD. Each PMD's part of the range is
// classified once (nothing, a PTE table, a present or huge-zero leaf, a
// migration entry, a device-private leaf) and handed to a small function.
// A function that needs a fault or a wait returns kRestart after it; the
// loop then checks the notifier sequence and walks again from the page
// that needed it (hmm_vma_walk.last).
#include "mm/hmm.h"

#include <algorithm>

#include "base/assert.h"
#include "mm/folio.h"
#include "mm/internal.h"
#include "mm/memory.h"
#include "mm/memremap.h"
#include "mm/mm_struct.h"
#include "mm/mmu_notifier.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

// HMM_NEED_FAULT / HMM_NEED_WRITE_FAULT
enum NeedFault : uint8_t { kNeedFault = 1u << 0, kNeedWriteFault = 1u << 1 };

enum class WalkEnd : uint8_t { kDone, kRestart };

// struct hmm_vma_walk
struct HmmWalk {
  HmmRange& range;
  MmStruct& mm;
  Vaddr last;  // where the next walk starts
};

HmmPfn& pfn_at(HmmWalk& w, Vaddr a) { return w.range.hmm_pfns[(a - w.range.start) >> kPageShift]; }

// hmm_pte_need_fault(): what one page's request needs, given what the CPU
// maps there (`cpu_flags`: kHmmPfnValid/kHmmPfnWrite).
uint8_t pte_need_fault(const HmmRange& r, const HmmPfn& in, uint8_t cpu_flags) {
  uint8_t req = static_cast<uint8_t>((in.flags & r.pfn_flags_mask) | r.default_flags);
  if (!(req & kHmmPfnReqFault)) return 0;
  if ((req & kHmmPfnReqWrite) && !(cpu_flags & kHmmPfnWrite)) return kNeedFault | kNeedWriteFault;
  if (!(cpu_flags & kHmmPfnValid)) return kNeedFault;
  return 0;
}

// hmm_range_need_fault(): the union over [from, to).
uint8_t range_need_fault(HmmWalk& w, Vaddr from, Vaddr to, uint8_t cpu_flags) {
  const HmmRange& r = w.range;
  if (!((r.default_flags | r.pfn_flags_mask) & kHmmPfnReqFault)) return 0;
  uint8_t need = 0;
  for (Vaddr a = from; a < to; a = a + kPageSize) need |= pte_need_fault(r, pfn_at(w, a), cpu_flags);
  return need;
}

// hmm_pfns_fill(): no pfn, just `flags` (0 or kHmmPfnError).
void pfns_fill(HmmWalk& w, Vaddr from, Vaddr to, uint8_t flags) {
  for (Vaddr a = from; a < to; a = a + kPageSize) pfn_at(w, a) = HmmPfn{.flags = flags};
}

// hmm_vma_fault(): fault every page of [from, to) as a remote access, then
// walk again from `from`.
Result<WalkEnd> vma_fault(HmmWalk& w, Vma& vma, Vaddr from, Vaddr to, uint8_t required) {
  HMM_ASSERT(required & kNeedFault, "fault at {:#x} nobody asked for", from.v);
  w.last = from;
  uint32_t flags = kFaultRemote;
  if (required & kNeedWriteFault) {
    if (!vma.has(kVmWrite)) return Err{Errno::kPerm};
    flags |= kFaultWrite;
  }
  for (Vaddr a = from; a < to; a = a + kPageSize) {
    switch (handle_mm_fault(vma, a, flags)) {
      case VmFault::kDone:
      case VmFault::kRetry:
        break;
      case VmFault::kOom:
      case VmFault::kSigbus:
      case VmFault::kSigsegv:
      case VmFault::kFallback:
        return Err{Errno::kFault};  // VM_FAULT_ERROR
    }
  }
  return WalkEnd::kRestart;
}

// A migration entry that a fault needs: wait for the migration to end,
// then walk again from `addr`.
WalkEnd wait_migration(HmmWalk& w, Vaddr addr, Pfn pfn) {
  w.last = addr;
  migration_entry_wait(w.mm.world(), pfn);
  return WalkEnd::kRestart;
}

// hmm_vma_walk_hole() inside a Vma: nothing mapped in [from, to).
Result<WalkEnd> walk_hole(HmmWalk& w, Vma& vma, Vaddr from, Vaddr to) {
  uint8_t need = range_need_fault(w, from, to, 0);
  if (need) return vma_fault(w, vma, from, to, need);
  pfns_fill(w, from, to, 0);
  return WalkEnd::kDone;
}

// [from, to) of a PMD leaf, reported at order 9: page i of the PMD is
// head + i, or `head` itself for every page of the huge zero page.
void fill_from_pmd(HmmWalk& w, Vaddr from, Vaddr to, uint8_t flags, Pfn head, bool huge_zero) {
  for (Vaddr a = from; a < to; a = a + kPageSize) {
    Pfn pfn = huge_zero ? head : head + a.pte_index();
    pfn_at(w, a) = HmmPfn{.flags = flags, .order = kHPageOrder, .pfn = pfn};
  }
}

// hmm_vma_handle_pmd(): a present THP or the huge zero page.
Result<WalkEnd> handle_pmd(HmmWalk& w, Vma& vma, Vaddr from, Vaddr to, const Pmd& pmd) {
  bool huge_zero = pmd.kind() == PmdKind::kHugeZero;
  uint8_t cpu = kHmmPfnValid | (pmd.write() && !huge_zero ? kHmmPfnWrite : 0);
  uint8_t need = range_need_fault(w, from, to, cpu);
  if (need) return vma_fault(w, vma, from, to, need);
  if (huge_zero) {
    fill_from_pmd(w, from, to, cpu | kHmmPfnHugeZero, w.mm.world().mem().zero_pfn(), true);
  } else {
    fill_from_pmd(w, from, to, cpu, pmd.pfn(), false);
  }
  return WalkEnd::kDone;
}

bool owned_device_private(const HmmWalk& w, Pfn pfn) {
  Folio folio = pfn_folio(w.mm.world().mem(), pfn);
  return folio_pgmap(folio)->owner() == w.range.dev_private_owner;
}

// hmm_vma_handle_absent_pmd(): a device-private PMD. The owner's pages are
// reported whole, at order 9; another owner's are faulted back when the
// caller needs them and are an error otherwise (unlike a PTE, which reads
// as 0).
Result<WalkEnd> handle_absent_pmd(HmmWalk& w, Vma& vma, Vaddr from, Vaddr to, const Pmd& pmd) {
  if (owned_device_private(w, pmd.pfn())) {
    fill_from_pmd(w, from, to, kHmmPfnValid | (pmd.write() ? kHmmPfnWrite : 0), pmd.pfn(), false);
    return WalkEnd::kDone;
  }
  uint8_t need = range_need_fault(w, from, to, 0);
  if (need) return vma_fault(w, vma, from, to, need);
  pfns_fill(w, from, to, kHmmPfnError);
  return WalkEnd::kDone;
}

// What hmm_vma_handle_pte() decided for one PTE.
struct PteStep {
  enum class Kind : uint8_t { kFilled, kFault, kWait } kind = Kind::kFilled;
  uint8_t required = 0;
  Pfn wait_pfn{};
};

// The CPU flags a present entry gives.
uint8_t present_cpu_flags(const Pte& pte) {
  if (pte.kind() == PteKind::kZero) return kHmmPfnValid;
  return kHmmPfnValid | (pte.write() ? kHmmPfnWrite : 0);
}

// hmm_vma_handle_pte() with the PTE lock held: fill the page's HmmPfn, or
// say which fault or wait it needs.
PteStep handle_pte(HmmWalk& w, Vaddr a, const Pte& pte) {
  HmmPfn& out = pfn_at(w, a);
  switch (pte.kind()) {
    case PteKind::kNone: {
      uint8_t need = pte_need_fault(w.range, out, 0);
      if (need) return PteStep{PteStep::Kind::kFault, need};
      out = HmmPfn{};
      return PteStep{};
    }
    case PteKind::kZero:
    case PteKind::kPresent: {
      uint8_t cpu = present_cpu_flags(pte);
      uint8_t need = pte_need_fault(w.range, out, cpu);
      if (need) return PteStep{PteStep::Kind::kFault, need};
      Pfn pfn = pte.kind() == PteKind::kZero ? w.mm.world().mem().zero_pfn() : pte.pfn();
      out = HmmPfn{.flags = cpu, .pfn = pfn};
      return PteStep{};
    }
    case PteKind::kDevicePrivate:
      if (owned_device_private(w, pte.pfn())) {
        // Reported as it is, never faulted, even for a write request.
        out = HmmPfn{.flags = static_cast<uint8_t>(kHmmPfnValid | (pte.write() ? kHmmPfnWrite : 0)),
                     .pfn = pte.pfn()};
        return PteStep{};
      }
      [[fallthrough]];
    case PteKind::kDeviceExclusive:
    case PteKind::kMigration: {
      uint8_t need = pte_need_fault(w.range, out, 0);
      if (!need) {
        out = HmmPfn{};
        return PteStep{};
      }
      if (pte.kind() == PteKind::kMigration) return PteStep{PteStep::Kind::kWait, 0, pte.pfn()};
      return PteStep{PteStep::Kind::kFault, need};
    }
  }
  HMM_BUG("unknown PTE kind at {:#x}", a.v);
}

// The PTE half of hmm_vma_walk_pmd(): [from, to) inside one PTE table.
Result<WalkEnd> walk_ptes(HmmWalk& w, Vma& vma, PteTable& table, Vaddr from, Vaddr to) {
  Vaddr at = from;
  PteStep step;
  {
    MutexLock guard(table.ptl);
    for (; at < to; at = at + kPageSize) {
      step = handle_pte(w, at, table.get(at.pte_index()));
      if (step.kind != PteStep::Kind::kFilled) break;
    }
  }
  switch (step.kind) {
    case PteStep::Kind::kFilled: return WalkEnd::kDone;
    case PteStep::Kind::kWait: return wait_migration(w, at, step.wait_pfn);
    case PteStep::Kind::kFault: return vma_fault(w, vma, at, to, step.required);
  }
  HMM_BUG("unknown walk step at {:#x}", at.v);
}

// A snapshot of one PMD slot: its entry and, for a table, the table.
struct PmdView {
  Pmd entry = Pmd::none();
  PteTable* table = nullptr;
};

PmdView read_pmd(MmStruct& mm, Vaddr addr) {
  PmdTable* pmdt = mm.pmd_table(addr, MmStruct::Alloc::kNo);
  if (!pmdt) return PmdView{};
  MutexLock guard(pmdt->ptl);
  PmdSlot& slot = pmdt->slot(addr.pmd_index());
  return PmdView{slot.entry, slot.entry.is_table() ? slot.table.get() : nullptr};
}

// hmm_vma_walk_pmd(): [from, to) inside one PMD of `vma`.
Result<WalkEnd> walk_pmd(HmmWalk& w, Vma& vma, Vaddr from, Vaddr to) {
  PmdView pmd = read_pmd(w.mm, from);
  switch (pmd.entry.kind()) {
    case PmdKind::kNone:
      return walk_hole(w, vma, from, to);
    case PmdKind::kTable:
      return walk_ptes(w, vma, *pmd.table, from, to);
    case PmdKind::kPresent:
    case PmdKind::kHugeZero:
      return handle_pmd(w, vma, from, to, pmd.entry);
    case PmdKind::kMigration:
      if (range_need_fault(w, from, to, 0)) return wait_migration(w, from, pmd.entry.pfn());
      pfns_fill(w, from, to, 0);
      return WalkEnd::kDone;
    case PmdKind::kDevicePrivate:
      return handle_absent_pmd(w, vma, from, to, pmd.entry);
  }
  HMM_BUG("unknown PMD kind at {:#x}", from.v);
}

// [from, to) cannot be faulted in (no Vma there, or one the device may not
// read: hmm_vma_walk_hole() and hmm_vma_walk_test()): errors, or -EFAULT
// when the caller needs a fault there.
Status walk_inaccessible(HmmWalk& w, Vaddr from, Vaddr to) {
  if (range_need_fault(w, from, to, 0)) return Err{Errno::kFault};
  pfns_fill(w, from, to, kHmmPfnError);
  return Ok();
}

// One walk_page_range() from w.last to the end of the range.
Result<WalkEnd> walk_range(HmmWalk& w) {
  w.mm.mmap_lock.assert_held();
  Vaddr end = w.range.end;
  for (Vaddr a = w.last; a < end;) {
    Vma* vma = w.mm.find_vma(a);
    if (!vma || vma->start() >= end) {
      HMM_TRY(walk_inaccessible(w, a, end));
      return WalkEnd::kDone;
    }
    if (vma->start() > a) {
      HMM_TRY(walk_inaccessible(w, a, vma->start()));
      a = vma->start();
    }
    Vaddr vend = std::min(end, vma->end());
    if (!vma->has(kVmRead)) {
      HMM_TRY(walk_inaccessible(w, a, vend));
      a = vend;
      continue;
    }
    while (a < vend) {
      Vaddr next = std::min(vend, a.pmd_down() + kPmdSize);
      Result<WalkEnd> r = walk_pmd(w, *vma, a, next);
      if (!r.ok() || *r == WalkEnd::kRestart) return r;
      a = next;
    }
  }
  return WalkEnd::kDone;
}

}  // namespace

Status hmm_range_fault(HmmRange& range) {
  HMM_ASSERT(range.notifier && range.notifier->mm(), "hmm_range_fault without a live notifier");
  HMM_ASSERT(range.start.page_aligned() && range.end.page_aligned() && range.start < range.end,
             "bad hmm range [{:#x}, {:#x})", range.start.v, range.end.v);
  HMM_ASSERT(range.hmm_pfns.size() == (range.end - range.start) >> kPageShift,
             "hmm_pfns has {} slots for {} pages", range.hmm_pfns.size(),
             (range.end - range.start) >> kPageShift);
  MmStruct& mm = *range.notifier->mm();
  HmmWalk w{.range = range, .mm = mm, .last = range.start};
  for (int attempt = 0;; attempt++) {
    HMM_ASSERT(attempt < 100000, "hmm_range_fault at {:#x} never settles", w.last.v);
    if (mmu_interval_check_retry(*range.notifier, range.notifier_seq)) return Err{Errno::kBusy};
    Result<WalkEnd> r = walk_range(w);
    if (!r.ok()) return Err{r.error()};
    if (*r == WalkEnd::kDone) return Ok();
  }
}

}  // namespace hmmsim
