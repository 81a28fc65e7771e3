#include "mm/world.h"

#include "base/assert.h"
#include "mm/mm_struct.h"
#include "mm/rmap.h"

namespace hmmsim {

World::World(const Config& config)
    : config_(config), sched_(std::make_unique<NativeScheduler>()),
      mem_(config.sysmem_bytes, *sched_, stats_), rng_(config.seed), mms_lock_(*sched_),
      anon_vmas_lock_(*sched_) {}

World::~World() {
  MutexLock guard(mms_lock_);
  HMM_ASSERT(mms_.empty(), "world destroyed with {} live address spaces", mms_.size());
}

MmStruct& World::create_mm() {
  MutexLock guard(mms_lock_);
  int pid = next_pid_++;
  auto [it, inserted] = mms_.emplace(pid, std::make_unique<MmStruct>(*this, pid));
  return *it->second;
}

MmStruct* World::find_mm(int pid) {
  MutexLock guard(mms_lock_);
  auto it = mms_.find(pid);
  return it == mms_.end() ? nullptr : it->second.get();
}

void World::destroy_mm(MmStruct& mm) {
  std::unique_ptr<MmStruct> owned;
  {
    MutexLock guard(mms_lock_);
    auto it = mms_.find(mm.pid());
    HMM_ASSERT(it != mms_.end(), "destroying unknown mm {}", mm.pid());
    owned = std::move(it->second);
    mms_.erase(it);
  }
}

std::vector<MmStruct*> World::mms() {
  MutexLock guard(mms_lock_);
  std::vector<MmStruct*> out;
  for (auto& [pid, mm] : mms_) out.push_back(mm.get());
  return out;
}

AnonVma* World::anon_vma_alloc() {
  auto av = std::make_unique<AnonVma>(*sched_);
  AnonVma* raw = av.get();
  MutexLock guard(anon_vmas_lock_);
  anon_vmas_.emplace(raw, std::move(av));
  return raw;
}

void World::anon_vma_free(AnonVma* av) {
  MutexLock guard(anon_vmas_lock_);
  size_t erased = anon_vmas_.erase(av);
  HMM_ASSERT(erased == 1, "freeing unknown anon_vma");
}

bool World::anon_vma_live(const AnonVma* av) const {
  MutexLock guard(anon_vmas_lock_);
  return anon_vmas_.count(av) != 0;
}

uint64_t World::nr_anon_vmas() const {
  MutexLock guard(anon_vmas_lock_);
  return anon_vmas_.size();
}

}  // namespace hmmsim
