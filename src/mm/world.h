// World: everything one simulated machine has, built from a Config.
//
// There are no globals: physical memory, the scheduler, the random source,
// the anon_vma pool and every process's address space hang off a World, and
// a test can build as many small Worlds as it likes. All nondeterminism comes
// from the World's seed.
//
// Thread safety: the set of address spaces is guarded by `mms_lock_`; the
// objects it points at have their own locks.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "base/rng.h"
#include "base/thread_annotations.h"
#include "base/types.h"
#include "mm/fault_point.h"
#include "mm/page_alloc.h"
#include "mm/vmstat.h"
#include "sync/lock.h"
#include "sync/scheduler.h"

namespace hmmsim {

class AnonVma;
class MmStruct;

// Transparent hugepage policy (/sys/kernel/mm/transparent_hugepage/enabled).
enum class ThpPolicy : uint8_t { kAlways, kMadvise, kNever };

struct Config {
  uint64_t sysmem_bytes = uint64_t{1} << 30;
  uint64_t seed = 1;
  ThpPolicy thp = ThpPolicy::kMadvise;
};

class World {
 public:
  explicit World(const Config& config);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  const Config& config() const { return config_; }
  Scheduler& sched() { return *sched_; }
  PhysMem& mem() { return mem_; }
  Rng& rng() { return rng_; }
  VmStat& stats() { return stats_; }
  FaultPoints& fault_points() { return fault_points_; }

  // A new process with an empty address space.
  MmStruct& create_mm() EXCLUDES(mms_lock_);
  // The address space of pid, or nullptr.
  MmStruct* find_mm(int pid) EXCLUDES(mms_lock_);
  // Destroys an address space that exit_mmap() has emptied.
  void destroy_mm(MmStruct& mm) EXCLUDES(mms_lock_);
  std::vector<MmStruct*> mms() EXCLUDES(mms_lock_);

  // anon_vma allocation and the registry the checker uses to tell live ones.
  AnonVma* anon_vma_alloc() EXCLUDES(anon_vmas_lock_);
  void anon_vma_free(AnonVma* av) EXCLUDES(anon_vmas_lock_);
  bool anon_vma_live(const AnonVma* av) const EXCLUDES(anon_vmas_lock_);
  uint64_t nr_anon_vmas() const EXCLUDES(anon_vmas_lock_);

 private:
  Config config_;
  std::unique_ptr<Scheduler> sched_;
  VmStat stats_;
  FaultPoints fault_points_;
  PhysMem mem_;
  Rng rng_;
  Mutex mms_lock_;
  std::map<int, std::unique_ptr<MmStruct>> mms_ GUARDED_BY(mms_lock_);
  int next_pid_ GUARDED_BY(mms_lock_) = 1;
  mutable Mutex anon_vmas_lock_;
  std::map<const AnonVma*, std::unique_ptr<AnonVma>> anon_vmas_ GUARDED_BY(anon_vmas_lock_);
};

}  // namespace hmmsim
