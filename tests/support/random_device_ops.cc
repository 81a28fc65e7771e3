// The random driver's dmirror operations (RandomMix::kDevice): migrate_to_dev
// and migrate_to_sys over page-aligned sub-ranges of a process's mappings
// (PMD-aligned ones make device THPs), FAIL_ALLOC before some migrations,
// release of a device, close of a mirror (reopened by the next command), and
// CPU access to device-resident pages. The THP ops cut device THPs with
// munmap, mprotect and mremap; fork and exit take device pages along.
//
// Moving pages to a device changes no data: what the device reads back after
// migrate_to_dev (dmirror_do_read of the pages now on the device) and what
// the CPU reads afterwards (faulting them back) must both equal the oracle's
// bytes. A successful migrate_to_dev of pages already on the device is the
// device-side read-back.
//
// The mirror commands are checked the same way: READ and EXCLUSIVE return
// the oracle's bytes, WRITE changes them (all of them, or on failure the
// pages the device table already mapped writable), and SNAPSHOT's bytes
// must agree with each page's protection. Their error is predicted from
// the oracle's Vmas (hmm_range_fault's -EFAULT and -EPERM, in address
// order, 32 pages at a time).
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "support/random_driver.h"
#include "support/test_world.h"

namespace hmmsim::testing {
namespace {

// The range of the last successful migrate_to_dev, which later operations
// come back to (device-resident pages are there, unless something moved them).
struct DeviceOpsState {
  int pid = -1;
  Vaddr addr;
  uint64_t npages = 0;
};

DmirrorDevice& pick_device(RandomDriver& d) {
  return *d.devices()[d.rng().below(d.devices().size())];
}

// A command range: around the last device range, a PMD-aligned range of a
// readable mapping, any page-aligned sub-range of a mapping, or (rarely)
// whatever a range syscall would get (unaligned, empty, holes).
std::pair<Vaddr, uint64_t> pick_cmd_range(RandomDriver& d, RandomProc& p,
                                          const DeviceOpsState& st) {
  Rng& rng = d.rng();
  uint64_t r = rng.below(100);
  if (r < 30 && st.pid == p.mm->pid() && st.npages > 0) {
    uint64_t first = rng.chance(50) ? 0 : rng.below(st.npages);
    uint64_t n = rng.chance(50) ? st.npages - first : rng.range(1, st.npages - first);
    return {st.addr + first * kPageSize, n};
  }
  std::vector<OracleRange> readable;
  for (const OracleRange& range : p.oracle.ranges()) {
    if (range.attrs.prot & kProtRead) readable.push_back(range);
  }
  if (r < 90 && !readable.empty()) {
    const OracleRange& range = readable[rng.below(readable.size())];
    uint64_t first_pmd = (range.start.v + kPmdSize - 1) & ~(kPmdSize - 1);
    if (r < 65 && first_pmd + kPmdSize <= range.end.v) {
      uint64_t n = (range.end.v - first_pmd) / kPmdSize;
      Vaddr a{first_pmd + rng.below(n) * kPmdSize};
      uint64_t pages = std::min<uint64_t>(kHPageNr * rng.range(1, 2), (range.end - a) >> kPageShift);
      return {a, pages};
    }
    uint64_t first = rng.range(range.start.page_index(), range.end.page_index() - 1);
    uint64_t max = range.end.page_index() - first;
    return {Vaddr{first << kPageShift}, rng.range(1, std::min<uint64_t>(max, 600))};
  }
  auto [addr, len] = random_pick_range(d, p);
  return {addr, len >> kPageShift};
}

// The dmirror ioctls' -EINVAL: an unaligned or empty command, or a page of
// the range outside every Vma or in one without VM_READ.
bool cmd_invalid(RandomProc& p, Vaddr addr, uint64_t npages) {
  if (!addr.page_aligned() || npages == 0) return true;
  for (uint64_t i = 0; i < npages; i++) {
    const OracleAttrs* attrs = p.oracle.attrs_at(addr + i * kPageSize);
    if (!attrs || !(attrs->prot & kProtRead)) return true;
  }
  return false;
}

// FAIL_ALLOC for the next allocation decision of `m`; the flag is cleared
// after the command, so it never reaches a later CPU fault.
void set_fail_alloc(RandomDriver& d, Dmirror& m, uint64_t flags) {
  // FLAGS with npages 0 is -EINVAL like every command: clear with 2, a bit
  // the driver ignores.
  DmirrorCmd cmd(Vaddr{0}, flags == 0 ? 2 : flags);
  Status st = m.set_flags(cmd);
  if (!st.ok()) d.fail("dmirror FLAGS returned " + random_status_str(st));
}

enum class Direction { kToDev, kToSys };

// One MIGRATE_TO_DEV or MIGRATE_TO_SYS on a random device, FAIL_ALLOC
// armed for it 15% of the time. Returns the command's status, or nullopt
// when the range was invalid (the -EINVAL is checked here).
struct MigrateCmdResult {
  Dmirror* mirror;
  Vaddr addr;
  uint64_t npages;
  bool fail_alloc;
  DmirrorCmd cmd;
  Status got;
};

std::optional<MigrateCmdResult> run_migrate_cmd(RandomDriver& d, RandomProc& p,
                                                DeviceOpsState& st, Direction dir) {
  const char* name = dir == Direction::kToDev ? "migrate_to_dev" : "migrate_to_sys";
  DmirrorDevice& dev = pick_device(d);
  Dmirror& m = dev.open(*p.mm);
  auto [addr, npages] = pick_cmd_range(d, p, st);
  bool fail_alloc = d.rng().chance(15);
  d.log(fmt::format("pid {} dev{} {}({:#x}, {} pages){}", p.mm->pid(), dev.id(), name, addr.v,
                    npages, fail_alloc ? " FAIL_ALLOC" : ""));
  if (fail_alloc) set_fail_alloc(d, m, kDmirrorFlagFailAlloc);
  DmirrorCmd cmd(addr, npages);
  Status got = dir == Direction::kToDev ? m.migrate_to_dev(cmd) : m.migrate_to_sys(cmd);
  if (fail_alloc) set_fail_alloc(d, m, 0);
  d.log(fmt::format("  = {} cpages {}", random_status_str(got), cmd.cpages));
  if (cmd_invalid(p, addr, npages)) {
    // The windows run in order: with FAIL_ALLOC, a window before the bad
    // page may end MIGRATE_TO_SYS with -ENOMEM first.
    bool earlier_enomem = dir == Direction::kToSys && fail_alloc && !got.ok() &&
                          got.error() == Errno::kNoMem && !cmd_invalid(p, addr, 1);
    if (!earlier_enomem) d.expect_status(name, got, Err{Errno::kInval});
    return std::nullopt;
  }
  return MigrateCmdResult{&m, addr, npages, fail_alloc, std::move(cmd), got};
}

void op_to_dev(RandomDriver& d, RandomProc& p, DeviceOpsState& st) {
  std::optional<MigrateCmdResult> r = run_migrate_cmd(d, p, st, Direction::kToDev);
  if (!r) return;
  // -ENOENT: the read-back found a page that did not move to this device
  // (on the other device, shared after fork, busy, or no device page).
  if (!r->got.ok()) {
    if (r->got.error() != Errno::kNoEnt) {
      d.fail("migrate_to_dev returned " + random_status_str(r->got));
    }
    return;
  }
  std::vector<std::byte> want(r->npages * kPageSize);
  p.oracle.peek(r->addr, want);
  const std::vector<std::byte>& data = r->cmd.data;
  if (data.size() != want.size() || std::memcmp(data.data(), want.data(), want.size())) {
    for (uint64_t i = 0; i < want.size(); i++) {
      if (i < data.size() && data[i] == want[i]) continue;
      d.fail(fmt::format("pid {} dev{} reads back {:#04x} at {:#x}, the oracle expects {:#04x}",
                         p.mm->pid(), r->mirror->device().id(),
                         i < data.size() ? std::to_integer<int>(data[i]) : -1, r->addr.v + i,
                         std::to_integer<int>(want[i])));
      break;
    }
    return;
  }
  st = DeviceOpsState{p.mm->pid(), r->addr, r->npages};
}

void op_to_sys(RandomDriver& d, RandomProc& p, DeviceOpsState& st) {
  std::optional<MigrateCmdResult> r = run_migrate_cmd(d, p, st, Direction::kToSys);
  if (!r) return;
  // -ENOMEM only when FAIL_ALLOC refused a small page (VM_FAULT_OOM).
  if (!r->got.ok() && !(r->fail_alloc && r->got.error() == Errno::kNoMem)) {
    d.fail("migrate_to_sys returned " + random_status_str(r->got));
    return;
  }
  if (d.rng().chance(60)) {
    (void)d.expect_read_matches(p, r->addr, std::min<uint64_t>(r->npages, 64) * kPageSize);
  }
}

// CPU access to the last device range: a read faults device pages back (and
// must read the oracle's bytes); a store faults them back and writes.
void op_dev_cpu(RandomDriver& d, RandomProc& p, DeviceOpsState& st) {
  RandomProc* target = &p;
  for (auto& q : d.procs()) {
    if (q->mm->pid() == st.pid) target = q.get();
  }
  Rng& rng = d.rng();
  Vaddr addr;
  if (target->mm->pid() == st.pid && st.npages > 0) {
    uint64_t page = rng.below(st.npages);  // one draw per statement: the order is fixed
    addr = st.addr + page * kPageSize + rng.below(kPageSize / 4) * 4;
  } else {
    addr = d.pick_page_allowing(*target, kProtRead);
  }
  uint64_t len = rng.chance(60) ? 4 : rng.range(1, 3 * kPageSize);
  if (rng.chance(50)) {
    d.log(fmt::format("pid {} load {:#x} bytes at {:#x} (device range)", target->mm->pid(), len,
                      addr.v));
    d.log("  = " + random_status_str(d.expect_read_matches(*target, addr, len)));
    return;
  }
  std::vector<std::byte> bytes(len);
  random_fill(rng, bytes);
  random_cpu_store(d, *target, addr, bytes);
}

// --- mirror commands ---

constexpr uint64_t kMirrorMaxPages = 128;  // keeps the random buffers small
constexpr uint64_t kRangePages = 32;      // dmirror_fault()'s hmm range

// What hmm_range_fault needs from the Vma at `a` for a device access.
Status vma_allows(RandomProc& p, Vaddr a, bool write) {
  const OracleAttrs* attrs = p.oracle.attrs_at(a);
  if (!attrs || !(attrs->prot & kProtRead)) return Err{Errno::kFault};
  if (write && !(attrs->prot & kProtWrite)) return Err{Errno::kPerm};
  return Ok();
}

// What a WRITE's hmm_range_fault finds at `a`: the device's own
// device-private page (reported as it is, never faulted; a read-only one,
// after fork, makes dmirror_do_fault() fail with -EFAULT), a writable
// present page, or anything else (which needs a write fault).
enum class WriteView : uint8_t { kOwnWritable, kOwnReadonly, kWritable, kNeedsFault };

WriteView write_view(DmirrorDevice& dev, MmStruct& mm, Vaddr a) {
  PmdTable* t = mm.pmd_table(a, MmStruct::Alloc::kNo);
  if (!t) return WriteView::kNeedsFault;
  MutexLock guard(t->ptl);
  const PmdSlot& slot = t->slot(a.pmd_index());
  bool device = false;
  bool write = false;
  Pfn pfn;
  if (slot.entry.is_table()) {
    MutexLock pte_guard(slot.table->ptl);
    Pte pte = slot.table->get(a.pte_index());
    device = pte.kind() == PteKind::kDevicePrivate;
    if (!device && pte.kind() != PteKind::kPresent) return WriteView::kNeedsFault;
    write = pte.write();
    pfn = pte.pfn();
  } else {
    device = slot.entry.kind() == PmdKind::kDevicePrivate;
    if (!device && slot.entry.kind() != PmdKind::kPresent) return WriteView::kNeedsFault;
    write = slot.entry.write();
    pfn = slot.entry.pfn();
  }
  if (device && dev.owns(pfn)) return write ? WriteView::kOwnWritable : WriteView::kOwnReadonly;
  return !device && write ? WriteView::kWritable : WriteView::kNeedsFault;
}

// What a READ or WRITE will do: the pages its first pass copies (those the
// table maps, writable for a write), then the status of its fault round.
struct CopyPlan {
  uint64_t prefix = 0;
  Status status;
};

// One 32-page hmm range of the fault round, walked as hmm_range_fault
// does: Vma checks first; for a write, once a page needs a fault, every
// later page of the same PMD and Vma is faulted with it (hmm_vma_fault).
Status plan_range(Dmirror& m, RandomProc& p, Vaddr from, Vaddr to, bool write) {
  bool own_readonly = false;
  bool faulting = false;
  Vaddr chunk{~uint64_t{0}};
  for (Vaddr a = from; a < to; a = a + kPageSize) {
    Status st = vma_allows(p, a, /*write=*/false);
    if (!st.ok()) return st;
    if (!write) continue;
    Vaddr key = std::max(a.pmd_down(), vma_at(*p.mm, a)->start());
    if (key != chunk) {
      chunk = key;
      faulting = false;
    }
    if (faulting) continue;
    switch (write_view(m.device(), *p.mm, a)) {
      case WriteView::kOwnReadonly: own_readonly = true; break;
      case WriteView::kOwnWritable:
      case WriteView::kWritable: break;
      case WriteView::kNeedsFault:
        HMM_TRY(vma_allows(p, a, /*write=*/true));
        faulting = true;
        break;
    }
  }
  return own_readonly ? Status(Err{Errno::kFault}) : Ok();
}

bool cmd_malformed(Vaddr addr, uint64_t npages) { return !addr.page_aligned() || npages == 0; }

CopyPlan plan_copy(Dmirror& m, RandomProc& p, Vaddr addr, uint64_t npages, bool write) {
  if (cmd_malformed(addr, npages)) return CopyPlan{0, Err{Errno::kInval}};
  CopyPlan plan;
  while (plan.prefix < npages) {
    std::optional<DptEntry> e = m.pt_lookup(addr + plan.prefix * kPageSize);
    if (!e || (write && !e->write)) break;
    plan.prefix++;
  }
  for (uint64_t s = plan.prefix; s < npages; s += kRangePages) {
    Vaddr to = addr + std::min(npages, s + kRangePages) * kPageSize;
    plan.status = plan_range(m, p, addr + s * kPageSize, to, write);
    if (!plan.status.ok()) return plan;
  }
  return plan;
}

// The mirror command's range, at most kMirrorMaxPages pages.
std::pair<Vaddr, uint64_t> pick_mirror_range(RandomDriver& d, RandomProc& p,
                                             const DeviceOpsState& st) {
  auto [addr, npages] = pick_cmd_range(d, p, st);
  return {addr, std::min(npages, kMirrorMaxPages)};
}

void expect_bytes(RandomDriver& d, RandomProc& p, const char* what, Vaddr addr,
                  const std::vector<std::byte>& got) {
  std::vector<std::byte> want(got.size());
  p.oracle.peek(addr, want);
  for (uint64_t i = 0; i < want.size(); i++) {
    if (got[i] == want[i]) continue;
    d.fail(fmt::format("pid {} {} gives {:#04x} at {:#x}, the oracle expects {:#04x}",
                       p.mm->pid(), what, std::to_integer<int>(got[i]), addr.v + i,
                       std::to_integer<int>(want[i])));
    return;
  }
}

void op_dev_read(RandomDriver& d, RandomProc& p, DeviceOpsState& st) {
  DmirrorDevice& dev = pick_device(d);
  Dmirror& m = dev.open(*p.mm);
  auto [addr, npages] = pick_mirror_range(d, p, st);
  d.log(fmt::format("pid {} dev{} read({:#x}, {} pages)", p.mm->pid(), dev.id(), addr.v, npages));
  CopyPlan plan = plan_copy(m, p, addr, npages, /*write=*/false);
  DmirrorCmd cmd(addr, npages);
  Status got = m.read(cmd);
  d.log(fmt::format("  = {} cpages {} faults {}", random_status_str(got), cmd.cpages, cmd.faults));
  d.expect_status("dmirror READ", got, plan.status);
  if (!got.ok() || d.failed()) return;
  if (cmd.cpages != npages) d.fail(fmt::format("READ cpages {} for {} pages", cmd.cpages, npages));
  expect_bytes(d, p, "device READ", addr, cmd.data);
}

void op_dev_write(RandomDriver& d, RandomProc& p, DeviceOpsState& st) {
  DmirrorDevice& dev = pick_device(d);
  Dmirror& m = dev.open(*p.mm);
  auto [addr, npages] = pick_mirror_range(d, p, st);
  d.log(fmt::format("pid {} dev{} write({:#x}, {} pages)", p.mm->pid(), dev.id(), addr.v, npages));
  CopyPlan plan = plan_copy(m, p, addr, npages, /*write=*/true);
  DmirrorCmd cmd(addr, npages);
  cmd.data.resize(npages * kPageSize);
  random_fill(d.rng(), cmd.data);
  std::vector<std::byte> bytes = cmd.data;
  Status got = m.write(cmd);
  d.log(fmt::format("  = {} cpages {} faults {}", random_status_str(got), cmd.cpages, cmd.faults));
  d.expect_status("dmirror WRITE", got, plan.status);
  if (d.failed() || cmd_malformed(addr, npages)) return;
  uint64_t written = got.ok() ? npages : plan.prefix;
  p.oracle.write(addr, std::span(bytes).first(written * kPageSize));
  if (got.ok() && cmd.cpages != npages) {
    d.fail(fmt::format("WRITE cpages {} for {} pages", cmd.cpages, npages));
    return;
  }
  if (d.rng().chance(50)) (void)d.expect_read_matches(p, addr, npages * kPageSize);
}

// The SNAPSHOT bytes a page may give: 0xFF where the device may not read;
// elsewhere one of the encodings, writable only where the Vma is.
bool snapshot_byte_allowed(RandomProc& p, Vaddr a, uint8_t b) {
  const OracleAttrs* attrs = p.oracle.attrs_at(a);
  if (!attrs || !(attrs->prot & kProtRead)) return b == kDmirrorProtError;
  if (b == kDmirrorProtError || b == kDmirrorProtNone) return true;  // another device's page
  if ((b & kDmirrorProtWrite) && !(attrs->prot & kProtWrite)) return false;
  uint8_t type = b & 0xF0;
  uint8_t access = b & 0x03;
  bool known_type = type == 0 || type == kDmirrorProtZero || type == kDmirrorProtDevPrivateLocal;
  bool zero_ok = type != kDmirrorProtZero || access == kDmirrorProtRead;
  return known_type && zero_ok && (access == kDmirrorProtRead || access == kDmirrorProtWrite) &&
         (b & 0x08) == 0;
}

void op_dev_snapshot(RandomDriver& d, RandomProc& p, DeviceOpsState& st) {
  DmirrorDevice& dev = pick_device(d);
  Dmirror& m = dev.open(*p.mm);
  auto [addr, npages] = pick_mirror_range(d, p, st);
  d.log(fmt::format("pid {} dev{} snapshot({:#x}, {} pages)", p.mm->pid(), dev.id(), addr.v,
                    npages));
  DmirrorCmd cmd(addr, npages);
  Status got = m.snapshot(cmd);
  d.log(fmt::format("  = {} cpages {}", random_status_str(got), cmd.cpages));
  d.expect_status("dmirror SNAPSHOT", got,
                  cmd_malformed(addr, npages) ? Status(Err{Errno::kInval}) : Ok());
  if (!got.ok() || d.failed()) return;
  if (cmd.cpages != npages || cmd.data.size() != npages) {
    d.fail(fmt::format("SNAPSHOT cpages {} bytes {} for {} pages", cmd.cpages, cmd.data.size(),
                       npages));
    return;
  }
  for (uint64_t i = 0; i < npages; i++) {
    uint8_t b = std::to_integer<uint8_t>(cmd.data[i]);
    if (snapshot_byte_allowed(p, addr + i * kPageSize, b)) continue;
    d.fail(fmt::format("pid {} SNAPSHOT byte {:#04x} at {:#x} contradicts its protection",
                       p.mm->pid(), b, addr.v + i * kPageSize));
    return;
  }
}

// EXCLUSIVE needs a writable Vma for every page (GUP for write), in order;
// a success reads back the oracle's bytes, CHECK_EXCLUSIVE then says
// -EPERM, and once the CPU has touched every page it says 0.
void op_dev_exclusive(RandomDriver& d, RandomProc& p, DeviceOpsState& st) {
  DmirrorDevice& dev = pick_device(d);
  Dmirror& m = dev.open(*p.mm);
  auto [addr, npages] = pick_mirror_range(d, p, st);
  d.log(fmt::format("pid {} dev{} exclusive({:#x}, {} pages)", p.mm->pid(), dev.id(), addr.v,
                    npages));
  Status want = cmd_malformed(addr, npages) ? Status(Err{Errno::kInval}) : Ok();
  for (uint64_t i = 0; want.ok() && i < npages; i++) {
    const OracleAttrs* attrs = p.oracle.attrs_at(addr + i * kPageSize);
    if (!attrs || !(attrs->prot & kProtWrite)) want = Err{Errno::kFault};
  }
  DmirrorCmd cmd(addr, npages);
  Status got = m.exclusive(cmd);
  d.log(fmt::format("  = {} cpages {}", random_status_str(got), cmd.cpages));
  d.expect_status("dmirror EXCLUSIVE", got, want);
  if (!got.ok() || d.failed()) return;
  expect_bytes(d, p, "device EXCLUSIVE read-back", addr, cmd.data);
  if (d.failed() || !d.rng().chance(50)) return;
  DmirrorCmd check(addr, npages);
  d.expect_status("CHECK_EXCLUSIVE while exclusive", m.check_exclusive(check),
                  Err{Errno::kPerm});
  if (d.failed()) return;
  bool readable = true;
  for (uint64_t i = 0; i < npages; i++) {
    readable = readable && (p.oracle.attrs_at(addr + i * kPageSize)->prot & kProtRead);
  }
  if (!readable) return;
  (void)d.expect_read_matches(p, addr, npages * kPageSize);
  d.expect_status("CHECK_EXCLUSIVE after CPU access", m.check_exclusive(check), Ok());
}

void op_release(RandomDriver& d, RandomProc& /*p*/) {
  DmirrorDevice& dev = pick_device(d);
  d.log(fmt::format("dev{} release", dev.id()));
  Status st = dev.release();
  d.log("  = " + random_status_str(st));
  d.expect_status("dmirror RELEASE", st, Ok());
}

void op_close(RandomDriver& d, RandomProc& /*p*/) {
  DmirrorDevice& dev = pick_device(d);
  if (dev.mirrors().empty()) return;
  Dmirror& m = *dev.mirrors()[d.rng().below(dev.mirrors().size())];
  d.log(fmt::format("dev{} close of the mirror of pid {}", dev.id(), m.pid()));
  Status st = dev.close(m);
  d.log("  = " + random_status_str(st));
  d.expect_status("dmirror close", st, Ok());
}

}  // namespace

void add_device_ops(RandomDriver& driver) {
  auto st = std::make_shared<DeviceOpsState>();
  driver.add_op("migrate_to_dev", 14,
                [st](RandomDriver& d, RandomProc& p) { op_to_dev(d, p, *st); });
  driver.add_op("migrate_to_sys", 6,
                [st](RandomDriver& d, RandomProc& p) { op_to_sys(d, p, *st); });
  driver.add_op("dev_cpu", 8, [st](RandomDriver& d, RandomProc& p) { op_dev_cpu(d, p, *st); });
  driver.add_op("dev_read", 4, [st](RandomDriver& d, RandomProc& p) { op_dev_read(d, p, *st); });
  driver.add_op("dev_write", 4,
                [st](RandomDriver& d, RandomProc& p) { op_dev_write(d, p, *st); });
  driver.add_op("dev_snapshot", 2,
                [st](RandomDriver& d, RandomProc& p) { op_dev_snapshot(d, p, *st); });
  driver.add_op("dev_exclusive", 3,
                [st](RandomDriver& d, RandomProc& p) { op_dev_exclusive(d, p, *st); });
  driver.add_op("dev_release", 1, op_release);
  driver.add_op("dev_close", 1, op_close);
}

}  // namespace hmmsim::testing
