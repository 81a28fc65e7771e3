// RandomDriver: the model-based random test of the syscall interface.
//
// It runs a seeded random sequence of operations over several processes of
// one small World — mmap (MAP_FIXED, hints, 2 MiB alignment), munmap,
// mprotect and madvise over ranges that split, span and miss Vmas, fork,
// exit, CPU loads and stores of words and of byte ranges that cross pages,
// and move_pages of one page — and mirrors each one on an OracleMm per
// process. After every step it runs the invariant checker and compares the
// step's result (value, errno, partial effect, bytes read back), every
// process's Vma layout, protections and THP advice, and its MM_ANONPAGES
// with the oracle. Every `full_check_every` steps, and at the end, it reads
// back every readable page of every process.
//
// Every choice comes from one Rng seeded from the seed, so a run replays
// exactly from (seed, steps). On a mismatch run() stops and returns a report
// with the seed, the step, the last operations and the command that replays
// the run; an assertion abort inside the model prints the same context from
// a SIGABRT hook.
//
// Later issues extend the operation mix with add_op() (THP, device
// operations): an operation gets the chosen process and the driver, and
// reports a mismatch through fail().
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/rng.h"
#include "driver/dmirror.h"
#include "mm/mm.h"
#include "mm/world.h"
#include "support/oracle.h"

namespace hmmsim::testing {

// Which operations a run mixes in (each mix includes the ones before it).
enum class RandomMix : uint8_t {
  kBase,    // 4 KiB pages only (THP off): the syscalls, CPU access, move_pages
  kThp,     // + THP: huge mmaps, PMD-crossing ranges, MADV_FREE/COLLAPSE,
            //   mremap, the deferred split shrinker
  kDevice,  // + dmirror devices: migrate to and from device memory
};

const char* random_mix_name(RandomMix mix);

struct RandomConfig {
  RandomMix mix = RandomMix::kBase;
  uint64_t seed = 1;
  uint64_t steps = 2500;
  // The world is small so that the checker's scans stay cheap, yet large
  // enough for every mapped page of every process to hold its own frame:
  // sysmem must exceed max_procs * max_mapped_per_proc, so no allocation
  // can fail and -ENOMEM from a CPU store is always a model bug (a leak).
  uint64_t sysmem_mib = 20;
  size_t max_procs = 6;
  // mmap stops growing a process beyond this many bytes.
  uint64_t max_mapped_per_proc = 3ull << 20;
  uint64_t full_check_every = 50;
  // The oracle does not model THP faults yet (a write to a VM_HUGEPAGE
  // range may populate 512 pages at once), so runs keep THP off.
  ThpPolicy thp = ThpPolicy::kNever;
  // Print every operation to stderr as it runs (for replays).
  bool verbose = false;
  // kDevice: this many dmirror devices of this much device memory each.
  uint32_t devices = 0;
  uint64_t device_mem_bytes = 2 * kDevmemChunkSize;

  // The settings of one mix: THP on (kMadvise) for kThp and kDevice, with
  // more memory per process (THPs), and devices for kDevice.
  static RandomConfig for_mix(RandomMix mix, uint64_t seed, uint64_t steps);
  // Whether the oracle predicts MM_ANONPAGES exactly (4 KiB pages only,
  // no device migrations that populate holes).
  bool exact_rss() const { return thp == ThpPolicy::kNever && devices == 0; }
};

// One simulated process: its address space and what the oracle expects of it.
struct RandomProc {
  MmStruct* mm = nullptr;
  OracleMm oracle;
};

class RandomDriver {
 public:
  using OpFn = std::function<void(RandomDriver&, RandomProc&)>;

  explicit RandomDriver(const RandomConfig& config);
  ~RandomDriver();
  RandomDriver(const RandomDriver&) = delete;
  RandomDriver& operator=(const RandomDriver&) = delete;

  // Adds an operation chosen with probability weight / (sum of weights).
  void add_op(std::string name, uint32_t weight, OpFn fn);
  // Runs config.steps steps; the failure report, or nothing when all agreed.
  std::optional<std::string> run();

  // For operations.
  World& world() { return *world_; }
  Rng& rng() { return rng_; }
  const RandomConfig& config() const { return config_; }
  std::vector<std::unique_ptr<RandomProc>>& procs() { return procs_; }
  std::vector<std::unique_ptr<DmirrorDevice>>& devices() { return devices_; }
  // A process exits: exit_mmap, then its mirrors close (exit_mm runs
  // before exit_files), and the process leaves procs().
  void exit_proc(RandomProc& p);
  // Records what the current step does (shown in failure reports).
  void log(std::string what);
  // Reports a mismatch; the run stops after the current step.
  void fail(std::string why);
  bool failed() const { return failure_.has_value(); }
  // A running digest of every operation and result, to compare two runs.
  uint64_t digest() const { return digest_; }

  // Address choices near the process's mappings (page aligned).
  Vaddr pick_page(RandomProc& p);
  // Mostly a page whose protection includes `prot`, else any pick_page().
  Vaddr pick_page_allowing(RandomProc& p, uint32_t prot);
  uint64_t pick_len_pages(RandomProc& p, Vaddr start);
  uint32_t pick_prot();
  // Checks helpers shared by operations.
  void expect_status(const char* what, const Status& got, const Status& want);
  // Reads [addr, addr + len) through the CPU and compares the result and
  // the bytes with the oracle; returns what the read returned.
  Status expect_read_matches(RandomProc& p, Vaddr addr, uint64_t len);

 private:
  struct Op {
    std::string name;
    uint32_t weight;
    OpFn fn;
  };

  void step();
  void check_after_step();
  void check_layout(RandomProc& p);
  void full_readback();
  std::string report() const;

  RandomConfig config_;
  std::unique_ptr<World> world_;
  // After world_: destroyed (evicted) before it.
  std::vector<std::unique_ptr<DmirrorDevice>> devices_;
  Rng rng_;
  std::vector<Op> ops_;
  uint64_t total_weight_ = 0;
  std::vector<std::unique_ptr<RandomProc>> procs_;
  uint64_t step_ = 0;
  std::deque<std::string> recent_;  // the last operations, newest last
  std::optional<std::string> failure_;
  uint64_t digest_ = 0;
};

// The operations of the syscall interface (random_ops.cc): mmap, munmap,
// mprotect, madvise, fork, exit, CPU loads and stores, migrate_page.
void add_mm_ops(RandomDriver& driver);
// THP operations (random_thp_ops.cc): PMD-aligned huge mappings, ranges
// around PMD boundaries, MADV_FREE/COLLAPSE, mremap, deferred_split_scan.
void add_thp_ops(RandomDriver& driver);
// dmirror operations (random_device_ops.cc).
void add_device_ops(RandomDriver& driver);

// For operations in other files: the range a range syscall takes, random
// bytes, an errno's name, a CPU store checked against the oracle.
std::pair<Vaddr, uint64_t> random_pick_range(RandomDriver& d, RandomProc& p);
void random_fill(Rng& rng, std::vector<std::byte>& buf);
std::string random_status_str(const Status& st);
void random_cpu_store(RandomDriver& d, RandomProc& p, Vaddr addr,
                      const std::vector<std::byte>& bytes);
// munmap / mprotect (with a random protection) of [addr, addr + len),
// checked against the oracle.
void random_munmap(RandomDriver& d, RandomProc& p, Vaddr addr, uint64_t len);
void random_mprotect(RandomDriver& d, RandomProc& p, Vaddr addr, uint64_t len);

// The replay command for one seed of a mix.
std::string random_replay_command(RandomMix mix, uint64_t seed, uint64_t steps);

}  // namespace hmmsim::testing
