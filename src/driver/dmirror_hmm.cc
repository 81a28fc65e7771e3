// dmirror mirror commands (lib/test_hmm.c: dmirror_read, dmirror_write,
// dmirror_do_read, dmirror_do_write, dmirror_fault, dmirror_range_fault,
// dmirror_do_fault, dmirror_snapshot, dmirror_range_snapshot,
// dmirror_mkentry, dmirror_exclusive, dmirror_atomic_map,
// dmirror_check_atomic).
//
// READ and WRITE copy through the device page table; a page it lacks is
// faulted in through hmm_range_fault (the whole rest of the range, 32 pages
// at a time), and the copy starts again where it stopped. As in the driver,
// a failed command leaves the caller's block untouched: `cpages`, `faults`
// and `data` change only on success.
#include <algorithm>
#include <array>
#include <cstring>

#include "base/assert.h"
#include "driver/dmirror.h"
#include "mm/device_exclusive.h"
#include "mm/folio.h"
#include "mm/mm_struct.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

// The hmm_pfns[] array size of dmirror_fault() and dmirror_snapshot().
constexpr uint64_t kRangePages = 32;
// HMM_RANGE_DEFAULT_TIMEOUT (1000 ms) as a number of attempts: the model
// has no clock, and an honest run settles in a few.
constexpr int kRangeAttempts = 1000;

Vaddr cmd_end(const DmirrorCmd& cmd) { return cmd.addr + cmd.npages * kPageSize; }

}  // namespace

// The temporary notifier of one SNAPSHOT piece (dmirror_interval): it only
// bumps the sequence, so that a racing change makes the piece start over.
class Dmirror::SnapshotNotifier final : public MmuIntervalNotifierOps {
 public:
  explicit SnapshotNotifier(Dmirror& mirror) : mirror_(mirror) {}
  // dmirror_snapshot_invalidate()
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange&, uint64_t cur_seq) override {
    MutexLock guard(mirror_.mutex_);
    mmu_interval_set_seq(sub, cur_seq);
    return true;
  }
  MmuIntervalNotifier notifier;

 private:
  Dmirror& mirror_;
};

Status Dmirror::do_fault(const HmmRange& range) {
  Vaddr a = range.start;
  for (const HmmPfn& p : range.hmm_pfns) {
    // Everything was asked to be faulted in: an invalid entry is a model bug.
    HMM_ASSERT(p.valid() && !p.error(), "hmm_range_fault left {:#x} unfaulted", a.v);
    if (!p.write() && (range.default_flags & kHmmPfnReqWrite)) return Err{Errno::kFault};
    pt_.store(a.page_index(), DptEntry{p.pfn, p.write(), false});
    a = a + kPageSize;
  }
  return Ok();
}

Status Dmirror::walk_stable(MmStruct& mm, MmuIntervalNotifier& notifier, HmmRange& range,
                            const std::function<Status()>& use) {
  for (int attempt = 0; attempt < kRangeAttempts; attempt++) {
    range.notifier_seq = mmu_interval_read_begin(notifier);
    Status st = Ok();
    {
      ReadLock guard(mm.mmap_lock);
      st = hmm_range_fault(range);
    }
    if (!st.ok()) {
      if (st.error() == Errno::kBusy) continue;
      return st;
    }
    MutexLock guard(mutex_);
    if (mmu_interval_read_retry(notifier, range.notifier_seq)) continue;
    return use();
  }
  return Err{Errno::kBusy};
}

Status Dmirror::range_fault(HmmRange& range) {
  MmStruct* mm = live_mm();
  if (!mm) return Err{Errno::kFault};
  // walk_stable() holds mutex_ around the call.
  return walk_stable(*mm, notifier_, range, [&]() NO_THREAD_SAFETY_ANALYSIS {
    return do_fault(range);
  });
}

Status Dmirror::fault(Vaddr start, Vaddr end, Access access) {
  // mmget_not_zero() failing makes dmirror_fault() return 0, and the read
  // loop would then spin; the model ends the command instead.
  MmStruct* mm = live_mm();
  if (!mm) return Err{Errno::kFault};
  std::array<HmmPfn, kRangePages> pfns;
  for (Vaddr addr = start; addr < end;) {
    Vaddr next = std::min(end, addr + kRangePages * kPageSize);
    uint64_t n = (next - addr) >> kPageShift;
    HmmRange range{.notifier = &notifier_,
                   .start = addr,
                   .end = next,
                   .hmm_pfns = std::span(pfns.data(), n),
                   .default_flags = static_cast<uint8_t>(
                       kHmmPfnReqFault | (access == Access::kWrite ? kHmmPfnReqWrite : 0)),
                   .pfn_flags_mask = 0,
                   .dev_private_owner = dev_->owner()};
    HMM_TRY(range_fault(range));
    addr = next;
  }
  return Ok();
}

Status Dmirror::do_read(Vaddr start, Vaddr end, Bounce& bounce) {
  World& world = dev_->world();
  for (Vaddr a = start; a < end;) {
    const DptEntry* e = pt_.find(a.page_index());
    if (!e) return Err{Errno::kNoEnt};
    // A run of pages mapped to consecutive frames of one range (a device
    // THP, say) is read in one go.
    MemRange* range = world.mem().range_of(e->pfn);
    uint64_t run = 1;
    while (a + run * kPageSize < end && range->contains(e->pfn + run)) {
      const DptEntry* next = pt_.find(a.page_index() + run);
      if (!next || next->pfn != e->pfn + run) break;
      run++;
    }
    pages_read(range->page(e->pfn), run, bounce.buf.data() + (a - bounce.addr));
    bounce.cpages += run;
    a = a + run * kPageSize;
  }
  return Ok();
}

Status Dmirror::do_write(Vaddr start, Vaddr end, Bounce& bounce) {
  World& world = dev_->world();
  for (Vaddr a = start; a < end; a = a + kPageSize) {
    const DptEntry* e = pt_.find(a.page_index());
    if (!e || !e->write) return Err{Errno::kNoEnt};
    page_write(world.mem().page(e->pfn), 0, bounce.buf.data() + (a - bounce.addr),
               kPageSize);
    bounce.cpages++;
  }
  return Ok();
}

Status Dmirror::copy_loop(Access access, const DmirrorCmd& cmd, Bounce& bounce) {
  Vaddr start = cmd.addr;
  Vaddr end = cmd_end(cmd);
  for (;;) {
    Status st = Ok();
    {
      MutexLock guard(mutex_);
      st = access == Access::kRead ? do_read(start, end, bounce) : do_write(start, end, bounce);
    }
    if (st.ok() || st.error() != Errno::kNoEnt) return st;
    start = cmd.addr + bounce.cpages * kPageSize;
    HMM_TRY(fault(start, end, access));
    bounce.faults++;
  }
}

Status Dmirror::read(DmirrorCmd& cmd) {
  HMM_TRY(cmd.validate());
  Bounce bounce{cmd.addr, std::vector<std::byte>(cmd.npages * kPageSize)};
  HMM_TRY(copy_loop(Access::kRead, cmd, bounce));
  cmd.data = std::move(bounce.buf);
  cmd.cpages = bounce.cpages;
  cmd.faults = bounce.faults;
  return Ok();
}

Status Dmirror::write(DmirrorCmd& cmd) {
  HMM_TRY(cmd.validate());
  if (cmd.data.size() != cmd.npages * kPageSize) return Err{Errno::kFault};  // copy_from_user
  Bounce bounce{cmd.addr, cmd.data};
  HMM_TRY(copy_loop(Access::kWrite, cmd, bounce));
  cmd.cpages = bounce.cpages;
  cmd.faults = bounce.faults;
  return Ok();
}

uint8_t Dmirror::mkentry(const HmmPfn& entry) const {
  if (entry.error()) return kDmirrorProtError;
  if (!entry.valid()) return kDmirrorProtNone;
  World& world = dev_->world();
  uint8_t perm = kDmirrorProtNone;
  if (world.mem().range_of(entry.pfn)->kind() == MemKind::kDevicePrivate) {
    perm = dev_->owns(entry.pfn) ? kDmirrorProtDevPrivateLocal : kDmirrorProtDevPrivateRemote;
  } else if (entry.pfn == world.mem().zero_pfn() && !entry.huge_zero()) {
    // is_zero_pfn() knows only the small zero page.
    perm = kDmirrorProtZero;
  }
  perm |= entry.write() ? kDmirrorProtWrite : kDmirrorProtRead;
  if (entry.order == kHPageOrder) perm |= kDmirrorProtPmd;
  return perm;
}

Status Dmirror::range_snapshot(HmmRange& range, std::span<uint8_t> perm) {
  MmStruct* mm = live_mm();
  if (!mm) return Err{Errno::kInval};
  SnapshotNotifier snap(*this);
  range.notifier = &snap.notifier;
  HMM_TRY(mmu_interval_notifier_insert(snap.notifier, *mm, range.start,
                                       range.end - range.start, snap));
  Status st = walk_stable(*mm, snap.notifier, range, [&] {
    for (size_t i = 0; i < range.hmm_pfns.size(); i++) perm[i] = mkentry(range.hmm_pfns[i]);
    return Ok();
  });
  mmu_interval_notifier_remove(snap.notifier);
  return st;
}

Status Dmirror::snapshot(DmirrorCmd& cmd) {
  HMM_TRY(cmd.validate());
  MmStruct* mm = live_mm();
  if (!mm) return Err{Errno::kInval};
  std::vector<std::byte> out(cmd.npages);
  std::array<HmmPfn, kRangePages> pfns;
  std::array<uint8_t, kRangePages> perm;
  Vaddr end = cmd_end(cmd);
  uint64_t cpages = 0;
  for (Vaddr addr = cmd.addr; addr < end;) {
    Vaddr next = std::min(end, addr + kRangePages * kPageSize);
    uint64_t n = (next - addr) >> kPageShift;
    HmmRange range{.start = addr,
                   .end = next,
                   .hmm_pfns = std::span(pfns.data(), n),
                   .dev_private_owner = dev_->owner()};
    std::fill(pfns.begin(), pfns.end(), HmmPfn{});
    HMM_TRY(range_snapshot(range, std::span(perm.data(), n)));
    std::memcpy(out.data() + cpages, perm.data(), n);
    cpages += n;
    addr = next;
  }
  cmd.data = std::move(out);
  cmd.cpages = cpages;
  return Ok();
}

void Dmirror::atomic_map(Vaddr addr, Pfn pfn) {
  MutexLock guard(mutex_);
  pt_.store(addr.page_index(), DptEntry{pfn, false, true});
}

Status Dmirror::exclusive(DmirrorCmd& cmd) {
  HMM_TRY(cmd.validate());
  MmStruct* mm = live_mm();
  if (!mm) return Err{Errno::kInval};
  Vaddr end = cmd_end(cmd);
  World& world = dev_->world();
  {
    ReadLock guard(mm->mmap_lock);
    for (Vaddr addr = cmd.addr; addr < end; addr = addr + kPageSize) {
      // The driver passes no owner: its own invalidation drops the page
      // (and the next one) from its table before it maps it atomic.
      Result<Pfn> page = make_device_exclusive(*mm, addr, nullptr);
      if (!page.ok()) return Err{page.error()};
      atomic_map(addr, *page);
      Folio folio = pfn_folio(world.mem(), *page);
      folio_unlock(folio);
      folio_put(folio);
    }
  }
  Bounce bounce{cmd.addr, std::vector<std::byte>(cmd.npages * kPageSize)};
  {
    MutexLock guard(mutex_);
    HMM_TRY(do_read(cmd.addr, end, bounce));
  }
  cmd.data = std::move(bounce.buf);
  cmd.cpages = bounce.cpages;
  return Ok();
}

Status Dmirror::check_exclusive(DmirrorCmd& cmd) {
  HMM_TRY(cmd.validate());
  MutexLock guard(mutex_);
  bool none_atomic = pt_.for_each(cmd.addr.page_index(), cmd_end(cmd).page_index(),
                                  [](uint64_t, const DptEntry& e) { return !e.atomic; });
  return none_atomic ? Ok() : Status(Err{Errno::kPerm});
}

}  // namespace hmmsim
