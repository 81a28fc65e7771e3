// Process steps: the system calls (mmap, munmap, mprotect, madvise, mremap,
// fork, exit) and the bookkeeping declarations (process, region).
#include <fmt/format.h>

#include "mm/mm.h"
#include "scenario/runner_internal.h"

namespace hmmsim::scenario::run {
namespace {

uint32_t prot_bits(Prot p) {
  switch (p) {
    case Prot::kReadWrite: return ::hmmsim::kProtRead | ::hmmsim::kProtWrite;
    case Prot::kRead: return ::hmmsim::kProtRead;
    case Prot::kNone: return ::hmmsim::kProtNone;
  }
  return ::hmmsim::kProtNone;
}

::hmmsim::Advice advice_of(Advice a) {
  switch (a) {
    case Advice::kHugepage: return ::hmmsim::Advice::kHugePage;
    case Advice::kNoHugepage: return ::hmmsim::Advice::kNoHugePage;
    case Advice::kDontneed: return ::hmmsim::Advice::kDontNeed;
    case Advice::kFree: return ::hmmsim::Advice::kFree;
    case Advice::kCollapse: return ::hmmsim::Advice::kCollapse;
  }
  return ::hmmsim::Advice::kDontNeed;
}

uint32_t mremap_flags(const MremapStep& s) {
  uint32_t flags = kMremapMaymove;
  if (s.to) flags |= kMremapFixed;
  if (s.unmap == RemapUnmap::kDontUnmap) flags |= kMremapDontunmap;
  return flags;
}

// The madvise that `mmap ... hugepage|nohugepage` applies right after.
Status mmap_hint(MmStruct& mm, Vaddr addr, uint64_t size, ThpHint hint) {
  if (hint == ThpHint::kNone) return Ok();
  auto advice =
      hint == ThpHint::kHugepage ? ::hmmsim::Advice::kHugePage : ::hmmsim::Advice::kNoHugePage;
  return do_madvise(mm, addr, size, advice);
}

}  // namespace

StepResult execute(RunState& st, const ProcessStep& s) {
  st.add_process(s.name, st.world().create_mm());
  return StepResult{};
}

StepResult execute(RunState& st, const MmapStep& s) {
  if (s.sharing == Sharing::kShared) return unsupported("mmap shared");
  Checked<MmStruct*> mm = st.process(s.process);
  if (!mm.ok()) return failed(mm.why());
  Result<Vaddr> addr =
      do_mmap(**mm, Vaddr{0}, s.size, prot_bits(s.prot), MapFlags::kPrivate, s.align);
  if (!addr.ok()) {
    st.region_not_mapped(s.region,
                         fmt::format("its mmap failed with -{}", errno_name(addr.error())));
    return result_of(Err{addr.error()});
  }
  st.define_region(s.region, *addr, s.size);
  StepResult r = result_of(mmap_hint(**mm, *addr, page_align_up(s.size), s.thp));
  r.note = fmt::format("{} at {:#x}", s.region, addr->v);
  return r;
}

StepResult execute(RunState& st, const MunmapStep& s) {
  Checked<Target> t = st.target(s.process, s.spec);
  if (!t.ok()) return failed(t.why());
  const auto& [mm, r] = *t;
  return result_of(do_munmap(*mm, r.addr, r.len));
}

StepResult execute(RunState& st, const MprotectStep& s) {
  Checked<Target> t = st.target(s.process, s.spec);
  if (!t.ok()) return failed(t.why());
  const auto& [mm, r] = *t;
  return result_of(do_mprotect(*mm, r.addr, r.len, prot_bits(s.prot)));
}

StepResult execute(RunState& st, const MadviseStep& s) {
  Checked<Target> t = st.target(s.process, s.spec);
  if (!t.ok()) return failed(t.why());
  const auto& [mm, r] = *t;
  return result_of(do_madvise(*mm, r.addr, r.len, advice_of(s.advice)));
}

StepResult execute(RunState& st, const MremapStep& s) {
  Checked<Target> t = st.target(s.process, s.spec);
  if (!t.ok()) return failed(t.why());
  const auto& [mm, from] = *t;
  Vaddr target{0};
  if (s.to) {
    Checked<Range> to = st.range(*s.to);
    if (!to.ok()) return failed("mremap target: " + to.why());
    target = to->addr;
  }
  Result<Vaddr> moved = do_mremap(*mm, from.addr, from.len, s.new_size, mremap_flags(s), target);
  if (!moved.ok()) {
    st.region_not_mapped(s.new_region,
                         fmt::format("its mremap failed with -{}", errno_name(moved.error())));
    return result_of(Err{moved.error()});
  }
  st.define_region(s.new_region, *moved, s.new_size);
  StepResult r;
  r.note = fmt::format("{} at {:#x}", s.new_region, moved->v);
  return r;
}

StepResult execute(RunState& st, const RegionStep& s) {
  Checked<Range> r = st.range(s.spec);
  if (!r.ok()) return failed(r.why());
  st.define_region(s.name, r->addr, r->len);
  StepResult out;
  out.note = fmt::format("{} at {:#x}", s.name, r->addr.v);
  return out;
}

StepResult execute(RunState& st, const ForkStep& s) {
  Checked<MmStruct*> parent = st.process(s.parent);
  if (!parent.ok()) return failed(parent.why());
  // A fork inside `repeat` names its child again: the earlier one must have
  // exited first.
  if (st.process(s.child).ok()) {
    return failed(
        fmt::format("process '{}' already exists (exit it before forking it again)", s.child));
  }
  st.add_process(s.child, dup_mm(**parent));
  return StepResult{};
}

StepResult execute(RunState& st, const ExitStep& s, int line) {
  Checked<MmStruct*> mm = st.process(s.process);
  if (!mm.ok()) return failed(mm.why());
  st.exit_process(s.process, line);
  return StepResult{};
}

}  // namespace hmmsim::scenario::run
