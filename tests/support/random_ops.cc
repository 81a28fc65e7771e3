// The random driver's operations on the syscall interface (mm/mm.h). Each
// chooses its arguments from the driver's Rng, logs the call, runs it on the
// model and on the oracle, and reports any difference through fail().
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "support/random_driver.h"
#include "support/test_world.h"

namespace hmmsim::testing {
namespace {

std::string status_str(const Status& st) {
  return st.ok() ? "ok" : fmt::format("-{}", errno_name(st.error()));
}

std::string prot_str(uint32_t prot) {
  if (prot == kProtNone) return "none";
  std::string out;
  if (prot & kProtRead) out += 'r';
  if (prot & kProtWrite) out += 'w';
  if (prot & kProtExec) out += 'x';
  return out;
}

// A byte length of `pages` pages, sometimes short of the last page's end
// (the syscalls round it up).
uint64_t ragged_len(Rng& rng, uint64_t pages) {
  uint64_t len = pages * kPageSize;
  return rng.chance(25) ? len - rng.below(kPageSize) : len;
}

void fill_random(Rng& rng, std::vector<std::byte>& buf) {
  for (size_t i = 0; i < buf.size(); i += 8) {
    uint64_t v = rng.next();
    size_t n = std::min<size_t>(8, buf.size() - i);
    for (size_t j = 0; j < n; j++) buf[i + j] = std::byte(static_cast<uint8_t>(v >> (8 * j)));
  }
}

// munmap of one whole mapping: keeps a process under its size budget.
void unmap_some_range(RandomDriver& d, RandomProc& p) {
  std::vector<OracleRange> ranges = p.oracle.ranges();
  const OracleRange& r = ranges[d.rng().below(ranges.size())];
  d.log(fmt::format("pid {} munmap({:#x}, {:#x}) to stay in budget", p.mm->pid(), r.start.v,
                    r.end - r.start));
  Status got = do_munmap(*p.mm, r.start, r.end - r.start);
  d.log("  = " + status_str(got));
  d.expect_status("munmap", got, p.oracle.munmap(r.start, r.end - r.start));
}

uint64_t pick_mmap_pages(Rng& rng, uint64_t align) {
  // A PMD-aligned mapping of exactly one PMD, or one that ends inside
  // the next PMD.
  if (align == kPmdSize) return rng.chance(50) ? kHPageNr : rng.range(1, kHPageNr + 160);
  uint64_t r = rng.below(100);
  if (r < 55) return rng.range(1, 16);
  if (r < 90) return rng.range(17, 128);
  return rng.range(129, 640);
}

// Checks where a non-fixed mmap put the new mapping.
void check_placement(RandomDriver& d, RandomProc& p, Vaddr got, Vaddr hint, uint64_t size,
                     uint64_t align) {
  if (!got.page_aligned() || (got.v & (align - 1)) != 0 || got.v < kUserMin ||
      got.v + size > kUserMax) {
    d.fail(fmt::format("mmap returned {:#x}, not aligned to {:#x} in user space", got.v, align));
  } else if (!p.oracle.range_free(got, got + size)) {
    d.fail(
        fmt::format("mmap without MAP_FIXED placed [{:#x}, +{:#x}) over a mapping", got.v, size));
  } else if (hint.v != 0 && align == kPageSize && hint.v + size <= kUserMax &&
             p.oracle.range_free(hint, hint + size) && got != hint) {
    // get_unmapped_area() takes a free, page-aligned hint as it is.
    d.fail(fmt::format("mmap ignored the free hint {:#x} and returned {:#x}", hint.v, got.v));
  }
}

void op_mmap(RandomDriver& d, RandomProc& p) {
  Rng& rng = d.rng();
  uint64_t align = rng.chance(15) ? kPmdSize : kPageSize;
  uint64_t pages =
      std::min(pick_mmap_pages(rng, align), d.config().max_mapped_per_proc / kPageSize);
  uint64_t len = ragged_len(rng, pages);
  uint32_t prot = d.pick_prot();
  uint64_t mode = rng.below(100);
  Vaddr addr = mode < 30 ? d.pick_page(p) : Vaddr{0};
  if (mode < 2) len = 0;                       // EINVAL
  if (mode >= 2 && mode < 4) addr = addr + 8;  // MAP_FIXED, unaligned: EINVAL
  MapFlags flags = mode < 20 ? MapFlags::kFixed : MapFlags::kPrivate;
  uint64_t size = pages * kPageSize;
  uint64_t overlap = flags == MapFlags::kFixed ? p.oracle.mapped_bytes_in(addr, addr + size) : 0;
  if (p.oracle.mapped_bytes() - overlap + size > d.config().max_mapped_per_proc) {
    unmap_some_range(d, p);
    return;
  }
  d.log(fmt::format("pid {} mmap({:#x}, {:#x}, {}, {}, align {:#x})", p.mm->pid(), addr.v, len,
                    prot_str(prot),
                    flags == MapFlags::kFixed ? "MAP_FIXED"
                    : addr.v                  ? "hint"
                                              : "anywhere",
                    align));
  Result<Vaddr> got = do_mmap(*p.mm, addr, len, prot, flags, align);
  d.log(got.ok() ? fmt::format("  = {:#x}", got->v) : "  = " + status_str(Err{got.error()}));
  bool invalid = len == 0 || (flags == MapFlags::kFixed && !addr.page_aligned());
  if (invalid || !got.ok()) {
    Status want = invalid ? Status(Err{Errno::kInval}) : Ok();
    d.expect_status("mmap", got.ok() ? Ok() : Status(Err{got.error()}), want);
    return;
  }
  if (flags == MapFlags::kFixed && *got != addr) {
    d.fail(fmt::format("mmap(MAP_FIXED) at {:#x} returned {:#x}", addr.v, got->v));
    return;
  }
  if (flags != MapFlags::kFixed) check_placement(d, p, *got, addr, size, align);
  p.oracle.map(*got, *got + size, prot);
}

// Start and length of a range syscall: near the mappings, sometimes exactly
// one whole mapping, sometimes unaligned or empty.
std::pair<Vaddr, uint64_t> pick_range(RandomDriver& d, RandomProc& p) {
  Rng& rng = d.rng();
  uint64_t r = rng.below(100);
  std::vector<OracleRange> ranges = p.oracle.ranges();
  if (r < 2) {
    Vaddr page = d.pick_page(p);  // one draw per statement: the order is fixed
    return {page + 1 + rng.below(kPageSize - 1), kPageSize};
  }
  if (r < 4) return {d.pick_page(p), 0};
  if (r < 15 && !ranges.empty()) {
    const OracleRange& whole = ranges[rng.below(ranges.size())];
    return {whole.start, whole.end - whole.start};
  }
  Vaddr start = d.pick_page(p);
  return {start, ragged_len(rng, d.pick_len_pages(p, start))};
}

void op_munmap(RandomDriver& d, RandomProc& p) {
  auto [addr, len] = pick_range(d, p);
  random_munmap(d, p, addr, len);
}

void op_mprotect(RandomDriver& d, RandomProc& p) {
  auto [addr, len] = pick_range(d, p);
  random_mprotect(d, p, addr, len);
}

void op_madvise(RandomDriver& d, RandomProc& p) {
  auto [addr, len] = pick_range(d, p);
  uint64_t r = d.rng().below(100);
  Advice advice = r < 50 ? Advice::kDontNeed : r < 75 ? Advice::kHugePage : Advice::kNoHugePage;
  const char* name = advice == Advice::kDontNeed   ? "DONTNEED"
                     : advice == Advice::kHugePage ? "HUGEPAGE"
                                                   : "NOHUGEPAGE";
  d.log(fmt::format("pid {} madvise({:#x}, {:#x}, {})", p.mm->pid(), addr.v, len, name));
  Status got = do_madvise(*p.mm, addr, len, advice);
  d.log("  = " + status_str(got));
  d.expect_status("madvise", got, p.oracle.madvise(addr, len, advice));
}

void op_exit(RandomDriver& d, RandomProc& p);

void op_fork(RandomDriver& d, RandomProc& p) {
  if (d.procs().size() >= d.config().max_procs) {
    op_exit(d, p);
    return;
  }
  d.log(fmt::format("pid {} fork", p.mm->pid()));
  auto child = std::make_unique<RandomProc>();
  child->mm = &dup_mm(*p.mm);
  child->oracle = p.oracle;
  d.log(fmt::format("  = pid {}", child->mm->pid()));
  d.procs().push_back(std::move(child));
}

void op_exit(RandomDriver& d, RandomProc& p) {
  if (d.procs().size() <= 1) {
    op_fork(d, p);
    return;
  }
  d.log(fmt::format("pid {} exit", p.mm->pid()));
  d.exit_proc(p);
}

// An address for a CPU access: mostly word aligned, sometimes straddling
// the end of a page.
Vaddr pick_access_addr(RandomDriver& d, RandomProc& p, uint64_t len, uint32_t prot) {
  Vaddr page = d.pick_page_allowing(p, prot);
  if (d.rng().chance(10)) return page + kPageSize - 1 - d.rng().below(std::min(len, kPageSize));
  return page + (d.rng().below(kPageSize / 4) * 4);
}

// Stores `bytes` at addr through the CPU, checks the result against the
// oracle, and reads the range back.
void cpu_store(RandomDriver& d, RandomProc& p, Vaddr addr, const std::vector<std::byte>& bytes,
               bool as_u32) {
  AccessPlan plan = p.oracle.plan_access(addr, bytes.size(), AccessKind::kWrite);
  Status got = Ok();
  if (as_u32) {
    uint32_t v;
    std::memcpy(&v, bytes.data(), sizeof(v));
    d.log(fmt::format("pid {} store u32 {:#x} at {:#x}", p.mm->pid(), v, addr.v));
    got = cpu_write_u32(*p.mm, addr, v);
  } else {
    d.log(fmt::format("pid {} store {:#x} bytes at {:#x}", p.mm->pid(), bytes.size(), addr.v));
    got = cpu_write(*p.mm, addr, bytes);
  }
  d.log("  = " + status_str(got));
  d.expect_status("CPU store", got, plan.status);
  p.oracle.write(addr, std::span(bytes).first(plan.done));
  if (!d.failed()) (void)d.expect_read_matches(p, addr, bytes.size());
}

void op_store_u32(RandomDriver& d, RandomProc& p) {
  std::vector<std::byte> bytes(4);
  fill_random(d.rng(), bytes);
  cpu_store(d, p, pick_access_addr(d, p, 4, kProtWrite), bytes, /*as_u32=*/true);
}

void op_store_bytes(RandomDriver& d, RandomProc& p) {
  uint64_t len =
      d.rng().chance(80) ? d.rng().range(1, 3 * kPageSize) : d.rng().range(1, 16) * kPageSize;
  std::vector<std::byte> bytes(len);
  fill_random(d.rng(), bytes);
  Vaddr page = d.pick_page_allowing(p, kProtWrite);
  Vaddr addr = page + d.rng().below(kPageSize);
  cpu_store(d, p, addr, bytes, /*as_u32=*/false);
}

void op_load_u32(RandomDriver& d, RandomProc& p) {
  Vaddr addr = pick_access_addr(d, p, 4, kProtRead);
  AccessPlan plan = p.oracle.plan_access(addr, 4, AccessKind::kRead);
  d.log(fmt::format("pid {} load u32 at {:#x}", p.mm->pid(), addr.v));
  Result<uint32_t> got = cpu_read_u32(*p.mm, addr);
  d.log(got.ok() ? fmt::format("  = {:#x}", *got) : "  = " + status_str(Err{got.error()}));
  d.expect_status("CPU load", got.ok() ? Ok() : Status(Err{got.error()}), plan.status);
  if (!got.ok() || !plan.status.ok()) return;
  uint32_t want = 0;
  p.oracle.peek(addr, std::as_writable_bytes(std::span(&want, 1)));
  if (*got != want) {
    d.fail(fmt::format("pid {} u32 at {:#x} reads {:#x}, the oracle expects {:#x}", p.mm->pid(),
                       addr.v, *got, want));
  }
}

void op_load_bytes(RandomDriver& d, RandomProc& p) {
  uint64_t len =
      d.rng().chance(80) ? d.rng().range(1, 3 * kPageSize) : d.rng().range(1, 16) * kPageSize;
  Vaddr page = d.pick_page_allowing(p, kProtRead);
  Vaddr addr = page + d.rng().below(kPageSize);
  d.log(fmt::format("pid {} load {:#x} bytes at {:#x}", p.mm->pid(), len, addr.v));
  d.log("  = " + status_str(d.expect_read_matches(p, addr, len)));
}

// move_pages() of one page: -EFAULT outside every mapping, -ENOENT where no
// page is present (never written, or zapped); otherwise the page moves to a
// new frame and its bytes stay the same.
void op_migrate(RandomDriver& d, RandomProc& p) {
  // Half the time a page that holds data, which must move.
  uint64_t nr = p.oracle.nr_populated();
  Vaddr page =
      nr > 0 && d.rng().chance(50) ? p.oracle.populated_page(d.rng().below(nr)) : d.pick_page(p);
  Vaddr addr = page + d.rng().below(kPageSize);
  d.log(fmt::format("pid {} migrate_page({:#x})", p.mm->pid(), addr.v));
  Result<Pfn> got = migrate_page(*p.mm, addr);
  d.log(got.ok() ? fmt::format("  = pfn {:#x}", got->v) : "  = " + status_str(Err{got.error()}));
  if (d.config().thp != ThpPolicy::kNever || d.config().devices != 0) {
    // Whether a page is there to move depends on THP faults (an unwritten
    // page may sit in a THP) and on device migrations (a device-private
    // entry is not a present page: -ENOENT): the oracle knows only
    // -EFAULT and the bytes of a page that moved.
    bool mapped = p.oracle.attrs_at(addr) != nullptr;
    Errno e = got.ok() ? Errno::kFault : got.error();
    bool allowed = mapped ? got.ok() || e == Errno::kNoEnt || e == Errno::kBusy ||
                                e == Errno::kAgain
                          : !got.ok() && e == Errno::kFault;
    if (!allowed) {
      d.fail(fmt::format("migrate_page({:#x}) of {} page returned {}", addr.v,
                         mapped ? "a mapped" : "an unmapped",
                         got.ok() ? "ok" : status_str(Err{e})));
    }
    if (got.ok() && !d.failed()) (void)d.expect_read_matches(p, addr.page_down(), kPageSize);
    return;
  }
  Status want = !p.oracle.attrs_at(addr)    ? Status(Err{Errno::kFault})
                : !p.oracle.populated(addr) ? Status(Err{Errno::kNoEnt})
                                            : Ok();
  d.expect_status("migrate_page", got.ok() ? Ok() : Status(Err{got.error()}), want);
  if (!got.ok() || d.failed()) return;
  Pte pte = pte_at(*p.mm, addr);
  if (pte.kind() != PteKind::kPresent || pte.pfn() != *got) {
    d.fail(fmt::format("after migrate_page to pfn {:#x} the PTE at {:#x} is {}", got->v, addr.v,
                       pte.describe()));
    return;
  }
  (void)d.expect_read_matches(p, addr.page_down(), kPageSize);
}

}  // namespace

std::pair<Vaddr, uint64_t> random_pick_range(RandomDriver& d, RandomProc& p) {
  return pick_range(d, p);
}

void random_fill(Rng& rng, std::vector<std::byte>& buf) { fill_random(rng, buf); }

std::string random_status_str(const Status& st) { return status_str(st); }

void random_munmap(RandomDriver& d, RandomProc& p, Vaddr addr, uint64_t len) {
  d.log(fmt::format("pid {} munmap({:#x}, {:#x})", p.mm->pid(), addr.v, len));
  Status got = do_munmap(*p.mm, addr, len);
  d.log("  = " + status_str(got));
  d.expect_status("munmap", got, p.oracle.munmap(addr, len));
}

void random_mprotect(RandomDriver& d, RandomProc& p, Vaddr addr, uint64_t len) {
  uint32_t prot = d.pick_prot();
  d.log(fmt::format("pid {} mprotect({:#x}, {:#x}, {})", p.mm->pid(), addr.v, len, prot_str(prot)));
  Status got = do_mprotect(*p.mm, addr, len, prot);
  d.log("  = " + status_str(got));
  d.expect_status("mprotect", got, p.oracle.mprotect(addr, len, prot));
}

void random_cpu_store(RandomDriver& d, RandomProc& p, Vaddr addr,
                      const std::vector<std::byte>& bytes) {
  cpu_store(d, p, addr, bytes, /*as_u32=*/false);
}

void add_mm_ops(RandomDriver& driver) {
  driver.add_op("mmap", 12, op_mmap);
  driver.add_op("munmap", 7, op_munmap);
  driver.add_op("mprotect", 8, op_mprotect);
  driver.add_op("madvise", 7, op_madvise);
  driver.add_op("fork", 3, op_fork);
  driver.add_op("exit", 4, op_exit);
  driver.add_op("store_u32", 18, op_store_u32);
  driver.add_op("load_u32", 10, op_load_u32);
  driver.add_op("store_bytes", 12, op_store_bytes);
  driver.add_op("load_bytes", 8, op_load_bytes);
  driver.add_op("migrate_page", 10, op_migrate);
}

}  // namespace hmmsim::testing
