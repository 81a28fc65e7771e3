// The random driver's THP operations (RandomMix::kThp): PMD-aligned mmaps
// of 2-4 MiB with MADV_HUGEPAGE, stores that fault whole THPs, munmap,
// mprotect and madvise (DONTNEED, FREE, COLLAPSE) over ranges that cross PMD
// boundaries or cut THPs in the middle, mremap, and the deferred split
// shrinker. fork, exit, CPU access and migrate_page come from add_mm_ops().
//
// The oracle stays a byte oracle: THP changes no data. MADV_FREE keeps the
// bytes (nothing reclaims in the model), MADV_COLLAPSE keeps them, mremap
// moves them.
#include <fmt/format.h>

#include <algorithm>

#include "mm/deferred_split.h"
#include "support/random_driver.h"

namespace hmmsim::testing {
namespace {

std::string status_of(Result<Vaddr> r) {
  return r.ok() ? fmt::format("{:#x}", r->v) : random_status_str(Err{r.error()});
}

Status as_status(Result<Vaddr> r) { return r.ok() ? Ok() : Status(Err{r.error()}); }

// A start near a PMD boundary inside one of the process's mappings: on it,
// a little before or after it, or in the middle of the PMD.
Vaddr pick_pmd_start(RandomDriver& d, RandomProc& p) {
  Rng& rng = d.rng();
  std::vector<OracleRange> ranges = p.oracle.ranges();
  if (ranges.empty()) return d.pick_page(p);
  const OracleRange& r = ranges[rng.below(ranges.size())];
  uint64_t first = (r.start.v + kPmdSize - 1) & ~(kPmdSize - 1);
  uint64_t base = r.start.v;
  if (first <= r.end.v) {
    uint64_t n = (r.end.v - first) / kPmdSize + 1;
    base = first + rng.below(n) * kPmdSize;
  }
  uint64_t mode = rng.below(100);
  int64_t delta = 0;  // in pages
  if (mode < 30) {
    delta = 0;
  } else if (mode < 50) {
    delta = rng.chance(50) ? 256 : -256;  // the middle of a THP
  } else if (mode < 75) {
    delta = static_cast<int64_t>(rng.range(1, 16));
    if (rng.chance(50)) delta = -delta;
  } else {
    delta = static_cast<int64_t>(rng.below(1024)) - 512;
  }
  uint64_t v = static_cast<uint64_t>(static_cast<int64_t>(base) + delta * int64_t(kPageSize));
  return Vaddr{std::max(v, kUserMin)};
}

uint64_t pick_pmd_len_pages(Rng& rng) {
  uint64_t r = rng.below(100);
  if (r < 30) return kHPageNr;
  if (r < 45) return rng.range(1, 16);
  if (r < 70) return rng.range(17, 511);
  return rng.range(513, 1100);
}

std::pair<Vaddr, uint64_t> pick_pmd_range(RandomDriver& d, RandomProc& p) {
  if (d.rng().chance(15)) return random_pick_range(d, p);
  Vaddr start = pick_pmd_start(d, p);
  return {start, pick_pmd_len_pages(d.rng()) * kPageSize};
}

// munmap of one whole mapping: keeps a process under its size budget.
void unmap_for_budget(RandomDriver& d, RandomProc& p) {
  std::vector<OracleRange> ranges = p.oracle.ranges();
  if (ranges.empty()) return;
  const OracleRange& r = ranges[d.rng().below(ranges.size())];
  d.log(fmt::format("pid {} munmap({:#x}, {:#x}) to stay in budget", p.mm->pid(), r.start.v,
                    r.end - r.start));
  Status got = do_munmap(*p.mm, r.start, r.end - r.start);
  d.log("  = " + random_status_str(got));
  d.expect_status("munmap", got, p.oracle.munmap(r.start, r.end - r.start));
}

// A PMD-aligned private mapping of 2-4 MiB, mostly with MADV_HUGEPAGE.
void op_mmap_huge(RandomDriver& d, RandomProc& p) {
  Rng& rng = d.rng();
  uint64_t pages = rng.chance(40) ? kHPageNr * rng.range(1, 2) : rng.range(kHPageNr, 2 * kHPageNr);
  uint64_t size = pages * kPageSize;
  if (p.oracle.mapped_bytes() + size > d.config().max_mapped_per_proc) {
    unmap_for_budget(d, p);
    return;
  }
  uint32_t prot = rng.chance(85) ? kProtRead | kProtWrite : kProtRead;
  d.log(fmt::format("pid {} mmap(0, {:#x}, {}, align 2M)", p.mm->pid(), size, prot));
  Result<Vaddr> got = do_mmap(*p.mm, Vaddr{0}, size, prot, MapFlags::kPrivate, kPmdSize);
  d.log("  = " + status_of(got));
  if (!got.ok()) {
    d.fail("huge mmap returned " + status_of(got));
    return;
  }
  if ((got->v & (kPmdSize - 1)) != 0 || !p.oracle.range_free(*got, *got + size)) {
    d.fail(fmt::format("huge mmap placed [{:#x}, +{:#x}) unaligned or over a mapping", got->v,
                       size));
    return;
  }
  p.oracle.map(*got, *got + size, prot);
  if (rng.chance(80)) {
    d.log(fmt::format("pid {} madvise({:#x}, {:#x}, HUGEPAGE)", p.mm->pid(), got->v, size));
    Status st = do_madvise(*p.mm, *got, size, Advice::kHugePage);
    d.log("  = " + random_status_str(st));
    d.expect_status("madvise", st, p.oracle.madvise(*got, size, Advice::kHugePage));
  }
}

// A store into a writable PMD that is wholly mapped: faults a THP when the
// PMD is empty and THP allowed, or COW-breaks one after fork.
void op_store_huge(RandomDriver& d, RandomProc& p) {
  Rng& rng = d.rng();
  std::vector<Vaddr> pmds;
  for (const OracleRange& r : p.oracle.ranges()) {
    if (!(r.attrs.prot & kProtWrite)) continue;
    for (uint64_t a = (r.start.v + kPmdSize - 1) & ~(kPmdSize - 1); a + kPmdSize <= r.end.v;
         a += kPmdSize)
      pmds.push_back(Vaddr{a});
  }
  Vaddr base;
  if (pmds.empty()) {
    base = d.pick_page_allowing(p, kProtWrite);
  } else {
    base = pmds[rng.below(pmds.size())];  // one draw per statement: the order is fixed
    base = base + rng.below(kHPageNr) * kPageSize;
  }
  std::vector<std::byte> bytes(rng.chance(70) ? 4 * rng.range(1, 4) : rng.range(1, 3 * kPageSize));
  random_fill(rng, bytes);
  random_cpu_store(d, p, base + rng.below(kPageSize / 4) * 4, bytes);
}

void op_munmap_thp(RandomDriver& d, RandomProc& p) {
  auto [addr, len] = pick_pmd_range(d, p);
  random_munmap(d, p, addr, len);
}

void op_mprotect_thp(RandomDriver& d, RandomProc& p) {
  auto [addr, len] = pick_pmd_range(d, p);
  random_mprotect(d, p, addr, len);
}

void op_madvise_thp(RandomDriver& d, RandomProc& p) {
  auto [addr, len] = pick_pmd_range(d, p);
  uint64_t r = d.rng().below(100);
  Advice advice = r < 30   ? Advice::kDontNeed
                  : r < 55 ? Advice::kFree
                  : r < 80 ? Advice::kCollapse
                  : r < 92 ? Advice::kHugePage
                           : Advice::kNoHugePage;
  static constexpr const char* kNames[] = {"DONTNEED", "FREE", "HUGEPAGE", "NOHUGEPAGE",
                                           "COLLAPSE"};
  d.log(fmt::format("pid {} madvise({:#x}, {:#x}, {})", p.mm->pid(), addr.v, len,
                    kNames[static_cast<int>(advice)]));
  Status got = do_madvise(*p.mm, addr, len, advice);
  d.log("  = " + random_status_str(got));
  Status want = p.oracle.madvise(addr, len, advice);
  if (advice != Advice::kCollapse) {
    d.expect_status("madvise", got, want);
    return;
  }
  // MADV_COLLAPSE: the oracle knows the argument checks and that the bytes
  // stay; whether each PMD collapses (-EINVAL for a PMD it may not
  // collapse, -EAGAIN for a busy page, -ENOMEM for a hole or no THP) is the
  // model's to decide, and the checker and the read-backs check the result.
  bool arg_error = !want.ok() && want.error() == Errno::kInval;
  uint64_t size = page_align_up(len);
  if (arg_error || size == 0) {
    d.expect_status("madvise(COLLAPSE)", got, want);
    return;
  }
  if (!got.ok() && got.error() != Errno::kInval && got.error() != Errno::kAgain &&
      got.error() != Errno::kNoMem) {
    d.fail("madvise(COLLAPSE) returned " + random_status_str(got));
  }
  if (!d.failed() && p.oracle.attrs_at(addr) && (p.oracle.attrs_at(addr)->prot & kProtRead))
    (void)d.expect_read_matches(p, addr, std::min<uint64_t>(size, 16 * kPageSize));
}

// The end of the model's Vma holding addr (see OracleMm::plan_mremap), or
// addr when none does.
Vaddr model_vma_end(MmStruct& mm, Vaddr addr) {
  for (const auto& [start, vma] : mm.vmas_quiesced()) {
    if (vma->start() <= addr && addr < vma->end()) return vma->end();
  }
  return addr;
}

void op_mremap(RandomDriver& d, RandomProc& p) {
  Rng& rng = d.rng();
  std::vector<OracleRange> ranges = p.oracle.ranges();
  Vaddr old_addr;
  if (ranges.empty() || rng.chance(10)) {
    old_addr = d.pick_page(p);
  } else if (rng.chance(50)) {
    old_addr = pick_pmd_start(d, p);
  } else {
    const OracleRange& r = ranges[rng.below(ranges.size())];
    old_addr = rng.chance(40) ? r.start
                              : Vaddr{rng.range(r.start.page_index(), r.end.page_index() - 1)
                                      << kPageShift};
  }
  Vaddr vma_end = model_vma_end(*p.mm, old_addr);
  uint64_t old_pages;
  uint64_t r = rng.below(100);
  if (r < 3) {
    old_pages = 0;
  } else if (r < 45 && vma_end > old_addr) {
    old_pages = (vma_end - old_addr) >> kPageShift;  // to the end of the Vma
  } else if (r < 70 && vma_end > old_addr) {
    old_pages = rng.range(1, (vma_end - old_addr) >> kPageShift);
  } else {
    old_pages = pick_pmd_len_pages(rng);
  }
  uint32_t flags;
  r = rng.below(100);
  if (r < 20) flags = 0;
  else if (r < 50) flags = kMremapMaymove;
  else if (r < 80) flags = kMremapMaymove | kMremapFixed;
  else if (r < 92) flags = kMremapMaymove | kMremapDontunmap;
  else if (r < 96) flags = kMremapMaymove | kMremapFixed | kMremapDontunmap;
  else flags = rng.chance(50) ? kMremapFixed : kMremapDontunmap;  // -EINVAL
  uint64_t new_pages;
  r = rng.below(100);
  if ((flags & kMremapDontunmap) && r < 95) new_pages = old_pages;
  else if (r < 2) new_pages = 0;
  else if (r < 35) new_pages = old_pages > 1 ? rng.range(1, old_pages - 1) : 1;
  else if (r < 70) new_pages = old_pages + rng.range(1, 600);
  else new_pages = old_pages;
  uint64_t old_len = old_pages * kPageSize;
  uint64_t new_len = new_pages * kPageSize;
  if (!(flags & kMremapDontunmap) && rng.chance(10) && new_len > 0) new_len -= rng.below(kPageSize);
  Vaddr new_addr{0};
  if (flags & kMremapFixed) {
    new_addr = d.pick_page(p);
    // Often with the old address's offset in its PMD: whole PMDs can move.
    if (rng.chance(60)) {
      new_addr = Vaddr{std::max((new_addr.v & ~(kPmdSize - 1)) + (old_addr.v & (kPmdSize - 1)),
                                kUserMin)};
    }
  }
  if (p.oracle.mapped_bytes() + page_align_up(new_len) > d.config().max_mapped_per_proc) {
    unmap_for_budget(d, p);
    return;
  }
  d.log(fmt::format("pid {} mremap({:#x}, {:#x}, {:#x}, flags {}, {:#x})", p.mm->pid(),
                    old_addr.v, old_len, new_len, flags, new_addr.v));
  Result<MremapPlan> plan =
      p.oracle.plan_mremap(old_addr, old_len, new_len, flags, new_addr, vma_end);
  Result<Vaddr> got = do_mremap(*p.mm, old_addr, old_len, new_len, flags, new_addr);
  d.log("  = " + status_of(got));
  if (!plan.ok()) {
    d.expect_status("mremap", as_status(got), Err{plan.error()});
    return;
  }
  if (!got.ok()) {
    d.fail(fmt::format("mremap returned {}, Linux succeeds (plan {})", status_of(got),
                       static_cast<int>(plan->kind)));
    return;
  }
  Vaddr dest{0};
  if (plan->kind == MremapPlan::kMove && !(flags & kMremapFixed)) {
    if (!got->page_aligned() || got->v < kUserMin || got->v > kUserMax - plan->new_len ||
        !p.oracle.range_free(*got, *got + plan->new_len)) {
      d.fail(fmt::format("mremap moved to [{:#x}, +{:#x}), not a free range", got->v,
                         plan->new_len));
      return;
    }
    dest = *got;
  }
  Vaddr want = p.oracle.mremap(*plan, dest);
  if (want != *got) {
    d.fail(fmt::format("mremap returned {:#x}, Linux returns {:#x}", got->v, want.v));
    return;
  }
  const OracleAttrs* attrs = p.oracle.attrs_at(want);
  if (attrs && (attrs->prot & kProtRead)) {
    (void)d.expect_read_matches(p, want, std::min<uint64_t>(plan->new_len, 32 * kPageSize));
  }
}

// deferred_split_scan(): the shrinker splits partially mapped THPs. No
// byte changes; the checker checks the queue and the split folios.
void op_shrink(RandomDriver& d, RandomProc& /*p*/) {
  uint64_t n = d.rng().range(1, 64);
  d.log(fmt::format("deferred_split_scan({})", n));
  uint64_t split = deferred_split_scan(d.world(), n);
  d.log(fmt::format("  = {} split", split));
}

}  // namespace

void add_thp_ops(RandomDriver& driver) {
  driver.add_op("mmap_huge", 6, op_mmap_huge);
  driver.add_op("store_huge", 10, op_store_huge);
  driver.add_op("munmap_thp", 5, op_munmap_thp);
  driver.add_op("mprotect_thp", 5, op_mprotect_thp);
  driver.add_op("madvise_thp", 8, op_madvise_thp);
  driver.add_op("mremap", 8, op_mremap);
  driver.add_op("shrink", 3, op_shrink);
}

}  // namespace hmmsim::testing
