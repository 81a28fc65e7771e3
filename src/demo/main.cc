// hmmsim_demo: a short story told by the model, checked at every step.
//
// A process maps anonymous memory, writes it, forks; the child breaks
// copy-on-write; a page shared by both is migrated to a new frame through
// migration entries; part of the mapping is protected and unmapped; both
// processes exit. After each step the whole invariant checker runs and the
// state of the folios involved is printed.
#include <fmt/format.h>

#include <cstdlib>
#include <string>

#include "check/checker.h"
#include "mm/folio.h"
#include "mm/internal.h"
#include "mm/mm.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

class Story {
 public:
  Story() : world_(Config{.sysmem_bytes = 64ull << 20, .seed = 1}) {}

  void step(const std::string& what) {
    steps_++;
    CheckReport report = check_world(world_);
    fmt::print("{:2}. {}\n", steps_, what);
    if (!report.ok()) {
      fmt::print("    invariant violated:\n{}", report.to_string());
      std::exit(1);
    }
  }

  void show(MmStruct& mm, Vaddr addr, const char* label) {
    Pte pte = pte_of(mm, addr);
    std::string line = fmt::format("    {:<7} {:#x}: {}", label, addr.v, pte.describe());
    if (pte.has_pfn()) {
      Folio f = pfn_folio(world_.mem(), pte.pfn());
      line += fmt::format("  (folio refcount={} mapcount={}{})", folio_ref_count(f),
                          folio_mapcount(f),
                          PageAnonExclusive(f.head()) ? " anon-exclusive" : "");
    }
    fmt::print("{}\n", line);
  }

  uint32_t read(MmStruct& mm, Vaddr addr) {
    Result<uint32_t> r = cpu_read_u32(mm, addr);
    if (!r.ok()) fail(fmt::format("read at {:#x}: {}", addr.v, errno_name(r.error())));
    return r.value();
  }

  void write(MmStruct& mm, Vaddr addr, uint32_t v) {
    Status st = cpu_write_u32(mm, addr, v);
    if (!st.ok()) fail(fmt::format("write at {:#x}: {}", addr.v, errno_name(st.error())));
  }

  [[noreturn]] void fail(const std::string& why) {
    fmt::print("unexpected: {}\n", why);
    std::exit(1);
  }

  World& world() { return world_; }
  int steps() const { return steps_; }

 private:
  static Pte pte_of(MmStruct& mm, Vaddr addr) NO_THREAD_SAFETY_ANALYSIS {
    PteTable* t = pte_table_lookup(mm, addr, MmStruct::Alloc::kNo);
    if (!t) return Pte::none();
    MutexLock guard(t->ptl);
    return t->get(addr.pte_index());
  }

  World world_;
  int steps_ = 0;
};

int run() {
  Story s;
  World& w = s.world();
  uint64_t free_at_start = w.mem().buddy().nr_free_pages();
  fmt::print("hmmsim demo: {} MiB of RAM, {} free frames\n\n", w.config().sysmem_bytes >> 20,
             free_at_start);

  MmStruct& parent = w.create_mm();
  Result<Vaddr> mapped = do_mmap(parent, Vaddr{0}, 8 * kPageSize, kProtRead | kProtWrite,
                                 MapFlags::kPrivate);
  if (!mapped.ok()) s.fail("mmap");
  Vaddr buf = *mapped;
  s.step(fmt::format("process {} maps 8 pages at {:#x}", parent.pid(), buf.v));

  s.read(parent, buf);
  s.step("a read of untouched memory maps the shared zero page");
  s.show(parent, buf, "parent");

  for (uint64_t i = 0; i < 8; i++) s.write(parent, buf + i * kPageSize, uint32_t(0x1000 + i));
  s.step("writes replace it with 8 private pages, each exclusive to the parent");
  s.show(parent, buf, "parent");

  MmStruct& child = dup_mm(parent);
  s.step(fmt::format("fork: process {} shares every page, both sides write-protected",
                     child.pid()));
  s.show(parent, buf, "parent");
  s.show(child, buf, "child");

  s.write(child, buf, 0xc0ffee);
  s.step("the child writes page 0: copy-on-write gives it its own page");
  s.show(parent, buf, "parent");
  s.show(child, buf, "child");
  if (s.read(parent, buf) != 0x1000 || s.read(child, buf) != 0xc0ffee) s.fail("COW data");

  Vaddr shared = buf + kPageSize;
  Result<Pfn> moved = migrate_page(parent, shared);
  if (!moved.ok()) s.fail("migrate_page");
  s.step(fmt::format("page 1, still shared, migrates to pfn {:#x}: try_to_migrate turned both "
                     "mappings into migration entries, remove_migration_ptes restored them",
                     moved->v));
  s.show(parent, shared, "parent");
  s.show(child, shared, "child");
  if (s.read(parent, shared) != 0x1001 || s.read(child, shared) != 0x1001) s.fail("migrated data");

  if (!do_mprotect(parent, buf, 4 * kPageSize, kProtRead).ok()) s.fail("mprotect");
  Status denied = cpu_write_u32(parent, buf, 1);
  s.step(fmt::format("the parent makes its first 4 pages read-only; a write now fails with {}",
                     denied.ok() ? "nothing" : errno_name(denied.error())));

  if (!do_munmap(parent, buf + 2 * kPageSize, 4 * kPageSize).ok()) s.fail("munmap");
  s.step("the parent unmaps pages 2..5: its mapping splits in two, the child keeps all 8");
  if (s.read(child, buf + 3 * kPageSize) != 0x1003) s.fail("child data after parent munmap");

  exit_mmap(parent);
  s.step("the parent exits");
  s.write(child, shared, 7);
  s.step("the child writes the once-shared page 1: it is the only user now, so it is reused");
  s.show(child, shared, "child");

  exit_mmap(child);
  s.step("the child exits");
  if (w.mem().buddy().nr_free_pages() != free_at_start) s.fail("frames leaked");
  fmt::print("\nall invariants held after each of {} steps; every frame is free again\n",
             s.steps());
  return 0;
}

}  // namespace
}  // namespace hmmsim

int main() { return hmmsim::run(); }
