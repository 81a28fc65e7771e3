#include "support/random_driver.h"

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "base/assert.h"
#include "check/checker.h"
#include "mm/mm_struct.h"

namespace hmmsim::testing {
namespace {

constexpr size_t kRecentLines = 40;  // about the last 20 operations with results
constexpr uint64_t kReadChunk = 64 * kPageSize;

// The driver whose context a model assertion abort prints. Set only while
// run() is active; the test runs one driver at a time on one thread.
RandomDriver* g_aborting_driver = nullptr;

// The driver's own stream, apart from the World's (which the model may use).
uint64_t driver_seed(uint64_t seed) {
  return Rng::splitmix64(seed);
}

std::string status_str(const Status& st) {
  return st.ok() ? "ok" : fmt::format("-{}", errno_name(st.error()));
}

// Model Vma flags as an OracleRange's attributes.
OracleAttrs vma_attrs(const Vma& vma) {
  OracleAttrs attrs;
  if (vma.has(kVmRead)) attrs.prot |= kProtRead;
  if (vma.has(kVmWrite)) attrs.prot |= kProtWrite;
  if (vma.has(kVmExec)) attrs.prot |= kProtExec;
  attrs.thp = vma.flags() & (kVmHugepage | kVmNoHugepage);
  return attrs;
}

std::string describe_ranges(const std::vector<OracleRange>& ranges) {
  std::string out;
  for (const OracleRange& r : ranges) {
    out += fmt::format("    [{:#x}, {:#x}) prot={} thp={:#x}\n", r.start.v, r.end.v, r.attrs.prot,
                       r.attrs.thp);
  }
  return out.empty() ? "    (none)\n" : out;
}

}  // namespace

const char* random_mix_name(RandomMix mix) {
  switch (mix) {
    case RandomMix::kBase: return "base";
    case RandomMix::kThp: return "thp";
    case RandomMix::kDevice: return "device";
  }
  return "?";
}

RandomConfig RandomConfig::for_mix(RandomMix mix, uint64_t seed, uint64_t steps) {
  RandomConfig c{.mix = mix, .seed = seed, .steps = steps};
  if (mix == RandomMix::kBase) return c;
  // THP: 2-4 MiB huge mappings; a partially unmapped THP keeps all of its
  // 2 MiB until the shrinker splits it, so RAM is generous. Odd seeds run
  // with enabled=madvise, even ones with enabled=always.
  c.thp = seed % 2 ? ThpPolicy::kMadvise : ThpPolicy::kAlways;
  c.max_procs = 4;
  c.max_mapped_per_proc = 8ull << 20;
  c.sysmem_mib = 96;
  if (mix == RandomMix::kDevice) {
    c.devices = 1;
    c.full_check_every = 100;  // a CPU read-back faults device pages back
  }
  return c;
}

std::string random_replay_command(RandomMix mix, uint64_t seed, uint64_t steps) {
  return fmt::format(
      "HMMSIM_RANDOM_MIX={} HMMSIM_RANDOM_SEED={} HMMSIM_RANDOM_STEPS={} "
      "HMMSIM_RANDOM_VERBOSE=1 build/tests/mm_tests --gtest_filter='RandomMm.Replay'",
      random_mix_name(mix), seed, steps);
}

RandomDriver::RandomDriver(const RandomConfig& config)
    : config_(config),
      world_(std::make_unique<World>(
          Config{.sysmem_bytes = config.sysmem_mib << 20, .seed = config.seed, .thp = config.thp})),
      rng_(driver_seed(config.seed)) {
  HMM_ASSERT(
      config.max_procs * config.max_mapped_per_proc + (1ull << 20) <= config.sysmem_mib << 20,
      "random test world of {} MiB is too small for {} processes of {} MiB", config.sysmem_mib,
      config.max_procs, config.max_mapped_per_proc >> 20);
  for (uint32_t i = 0; i < config.devices; i++) {
    devices_.push_back(
        std::make_unique<DmirrorDevice>(*world_, static_cast<int>(i), config.device_mem_bytes));
  }
  add_mm_ops(*this);
  if (config.mix >= RandomMix::kThp) add_thp_ops(*this);
  if (config.mix >= RandomMix::kDevice) add_device_ops(*this);
  procs_.push_back(std::make_unique<RandomProc>());
  procs_.back()->mm = &world_->create_mm();
}

RandomDriver::~RandomDriver() {
  while (!procs_.empty()) exit_proc(*procs_.back());
}

void RandomDriver::exit_proc(RandomProc& p) {
  int pid = p.mm->pid();
  exit_mmap(*p.mm);
  for (auto& dev : devices_) {
    for (const auto& m : dev->mirrors()) {
      if (m->pid() != pid) continue;
      Status st = dev->close(*m);
      if (!st.ok()) fail(fmt::format("close of the mirror of an exited process returned {}",
                                     status_str(st)));
      break;
    }
  }
  std::erase_if(procs_, [&](const auto& q) { return q.get() == &p; });
}

void RandomDriver::add_op(std::string name, uint32_t weight, OpFn fn) {
  ops_.push_back(Op{std::move(name), weight, std::move(fn)});
  total_weight_ += weight;
}

void RandomDriver::log(std::string what) {
  std::string line = fmt::format("[{}] {}", step_, what);
  digest_ = (digest_ ^ std::hash<std::string>{}(line)) * 0x100000001b3ULL;
  if (config_.verbose) std::fprintf(stderr, "%s\n", line.c_str());
  recent_.push_back(std::move(line));
  if (recent_.size() > kRecentLines) recent_.pop_front();
}

void RandomDriver::fail(std::string why) {
  if (!failure_) failure_ = std::move(why);
}

Vaddr RandomDriver::pick_page(RandomProc& p) {
  std::vector<OracleRange> ranges = p.oracle.ranges();
  uint64_t r = rng_.below(100);
  if (r < 15 && procs_.size() > 1) {
    ranges = procs_[rng_.below(procs_.size())]->oracle.ranges();
  }
  if (ranges.empty() || r >= 92) {
    // Anywhere in the window where the mappings live, holes included.
    uint64_t lo = ranges.empty() ? MmStruct::kMmapBase - (16ull << 20) : ranges.front().start.v;
    uint64_t hi = ranges.empty() ? MmStruct::kMmapBase : ranges.back().end.v;
    lo = std::max(lo - 64 * kPageSize, kUserMin);
    hi = std::max(hi, MmStruct::kMmapBase) + 16 * kPageSize;
    return Vaddr{rng_.range(lo >> kPageShift, (hi >> kPageShift) - 1) << kPageShift};
  }
  const OracleRange& range = ranges[rng_.below(ranges.size())];
  uint64_t first = (range.start.v >> kPageShift) - 4;
  uint64_t last = (range.end.v >> kPageShift) + 3;
  return Vaddr{std::max(rng_.range(first, last) << kPageShift, kUserMin)};
}

Vaddr RandomDriver::pick_page_allowing(RandomProc& p, uint32_t prot) {
  std::vector<OracleRange> ranges;
  for (const OracleRange& r : p.oracle.ranges()) {
    if ((r.attrs.prot & prot) == prot) ranges.push_back(r);
  }
  if (ranges.empty() || rng_.chance(40)) return pick_page(p);
  const OracleRange& range = ranges[rng_.below(ranges.size())];
  return Vaddr{rng_.range(range.start.page_index(), range.end.page_index() - 1) << kPageShift};
}

uint64_t RandomDriver::pick_len_pages(RandomProc& p, Vaddr start) {
  uint64_t r = rng_.below(100);
  if (r < 15) {
    // Up to the end of the mapping that holds start, or a little beyond.
    for (const OracleRange& range : p.oracle.ranges()) {
      if (range.start <= start && start < range.end) {
        return ((range.end - start) >> kPageShift) + rng_.below(3);
      }
    }
  }
  if (r < 55) return rng_.range(1, 8);
  if (r < 80) return rng_.range(9, 64);
  if (r < 95) return rng_.range(65, 512);
  return rng_.range(513, 1536);
}

uint32_t RandomDriver::pick_prot() {
  uint64_t r = rng_.below(100);
  if (r < 60) return kProtRead | kProtWrite;
  if (r < 85) return kProtRead;
  return kProtNone;
}

void RandomDriver::expect_status(const char* what, const Status& got, const Status& want) {
  bool same = got.ok() == want.ok() && (got.ok() || got.error() == want.error());
  if (!same) {
    fail(fmt::format("{} returned {}, Linux returns {}", what, status_str(got), status_str(want)));
  }
}

Status RandomDriver::expect_read_matches(RandomProc& p, Vaddr addr, uint64_t len) {
  AccessPlan plan = p.oracle.plan_access(addr, len, AccessKind::kRead);
  std::vector<std::byte> got(len, std::byte{0xa5});
  std::vector<std::byte> want(plan.done);
  Status st = cpu_read(*p.mm, addr, got);
  expect_status(fmt::format("read of [{:#x}, +{:#x}) in pid {}", addr.v, len, p.mm->pid()).c_str(),
                st, plan.status);
  p.oracle.peek(addr, want);
  if (plan.done == 0 || std::memcmp(got.data(), want.data(), plan.done) == 0) return st;
  for (uint64_t i = 0; i < plan.done; i++) {
    if (got[i] == want[i]) continue;
    fail(fmt::format("pid {} byte at {:#x} reads {:#04x}, the oracle expects {:#04x}", p.mm->pid(),
                     addr.v + i, std::to_integer<int>(got[i]), std::to_integer<int>(want[i])));
    break;
  }
  return st;
}

void RandomDriver::check_layout(RandomProc& p) {
  std::vector<OracleRange> model;
  for (const auto& [start, vma] : p.mm->vmas_quiesced()) {
    OracleAttrs attrs = vma_attrs(*vma);
    if (!model.empty() && model.back().end == vma->start() && model.back().attrs == attrs) {
      model.back().end = vma->end();
    } else {
      model.push_back(OracleRange{vma->start(), vma->end(), attrs});
    }
  }
  std::vector<OracleRange> want = p.oracle.ranges();
  bool same = model.size() == want.size();
  for (size_t i = 0; same && i < model.size(); i++) {
    same = model[i].start == want[i].start && model[i].end == want[i].end &&
           model[i].attrs == want[i].attrs;
  }
  if (!same) {
    fail(fmt::format("pid {} maps\n{}  the oracle expects\n{}", p.mm->pid(), describe_ranges(model),
                     describe_ranges(want)));
    return;
  }
  if (!config_.exact_rss()) {
    // With THP a fault maps 512 pages (the huge zero page none), a
    // partially unmapped THP keeps its mapped pages, and migrate_to_dev
    // populates holes with device pages: the oracle knows only that every
    // written page is counted and nothing past the mappings is. The
    // checker's I8 (rss equals the entries) covers the rest.
    uint64_t mapped = p.oracle.mapped_bytes() >> kPageShift;
    if (p.mm->anon_rss() < static_cast<int64_t>(p.oracle.nr_populated()) ||
        p.mm->anon_rss() > static_cast<int64_t>(mapped)) {
      fail(fmt::format("pid {} has MM_ANONPAGES {}, the oracle counts {} written of {} mapped pages",
                       p.mm->pid(), p.mm->anon_rss(), p.oracle.nr_populated(), mapped));
    }
    return;
  }
  if (p.mm->anon_rss() != static_cast<int64_t>(p.oracle.nr_populated())) {
    fail(fmt::format("pid {} has MM_ANONPAGES {}, the oracle counts {} written pages", p.mm->pid(),
                     p.mm->anon_rss(), p.oracle.nr_populated()));
  }
}

void RandomDriver::full_readback() {
  for (auto& p : procs_) {
    for (const OracleRange& range : p->oracle.ranges()) {
      if (!(range.attrs.prot & kProtRead)) {
        (void)expect_read_matches(*p, range.start, 1);  // must fault
        continue;
      }
      for (Vaddr a = range.start; a < range.end && !failed(); a = a + kReadChunk) {
        (void)expect_read_matches(*p, a, std::min<uint64_t>(kReadChunk, range.end - a));
      }
    }
    if (failed()) return;
  }
}

void RandomDriver::check_after_step() {
  CheckReport report = check_world(*world_);
  if (!report.ok()) {
    fail("invariant checker:\n" + report.to_string());
    return;
  }
  for (auto& p : procs_) {
    check_layout(*p);
    if (failed()) return;
  }
  if (step_ % config_.full_check_every == 0) full_readback();
}

void RandomDriver::step() {
  RandomProc& p = *procs_[rng_.below(procs_.size())];
  uint64_t r = rng_.below(total_weight_);
  for (Op& op : ops_) {
    if (r < op.weight) {
      op.fn(*this, p);
      return;
    }
    r -= op.weight;
  }
}

std::string RandomDriver::report() const {
  std::string out = fmt::format("random test failed: seed {} step {} of {}\n", config_.seed, step_,
                                config_.steps);
  if (failure_) out += *failure_ + "\n";
  out += "last operations:\n";
  for (const std::string& line : recent_) out += "  " + line + "\n";
  out += "replay: " + random_replay_command(config_.mix, config_.seed, step_) + "\n";
  return out;
}

std::optional<std::string> RandomDriver::run() {
  // A model assertion aborts the process; print which run and step did it.
  RandomDriver* prev_driver = g_aborting_driver;
  g_aborting_driver = this;
  auto prev_handler = std::signal(SIGABRT, [](int) {
    // Best effort on the way down: the process is aborting anyway.
    if (g_aborting_driver) {
      std::fputs("the random test aborted inside the model\n", stderr);
      std::fputs(g_aborting_driver->report().c_str(), stderr);
    }
    std::signal(SIGABRT, SIG_DFL);
  });
  for (step_ = 1; step_ <= config_.steps && !failed(); step_++) {
    step();
    if (!failed()) check_after_step();
  }
  if (!failed()) {
    step_ = config_.steps;
    log("final read-back of every process");
    full_readback();
  } else {
    step_--;  // the loop advanced past the failing step
  }
  std::signal(SIGABRT, prev_handler);
  g_aborting_driver = prev_driver;
  if (failed()) return report();
  return std::nullopt;
}

}  // namespace hmmsim::testing
