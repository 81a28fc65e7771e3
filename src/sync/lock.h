// The model's locks: Mutex, SpinLock and RwSem, annotated for clang's
// thread-safety analysis, each operation a scheduler yield point.
//
// Linux counterparts: `struct mutex`, `spinlock_t` (page-table locks) and
// `struct rw_semaphore` (mmap_lock, anon_vma->rwsem). A lock never blocks the
// OS thread directly: acquisition is try-then-Scheduler::block, so the same
// code runs under real threads and under a deterministic scheduler.
//
// Lock order is Linux's and is written in docs/lock_order.md.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/assert.h"
#include "base/thread_annotations.h"
#include "sync/scheduler.h"

namespace hmmsim {

// A mutual-exclusion lock. SpinLock is the same lock with the kernel's name
// for it; the model does not distinguish sleeping from spinning.
class CAPABILITY("mutex") Mutex {
 public:
  explicit Mutex(Scheduler& sched) : sched_(&sched) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ACQUIRE();
  bool try_lock() TRY_ACQUIRE(true);
  void unlock() RELEASE();
  bool is_locked() const { return locked_.load(std::memory_order_relaxed); }
  // Tells the analysis the caller holds this lock; aborts if nobody does.
  void assert_held() const ASSERT_CAPABILITY(this) {
    HMM_ASSERT(is_locked(), "lock not held");
  }

 private:
  Scheduler* sched_;
  std::atomic<bool> locked_{false};
};

using SpinLock = Mutex;

// A reader-writer semaphore (mmap_lock, anon_vma lock).
class CAPABILITY("rwsem") RwSem {
 public:
  explicit RwSem(Scheduler& sched) : sched_(&sched) {}
  RwSem(const RwSem&) = delete;
  RwSem& operator=(const RwSem&) = delete;

  void lock() ACQUIRE();
  bool try_lock() TRY_ACQUIRE(true);
  void unlock() RELEASE();
  void lock_shared() ACQUIRE_SHARED();
  bool try_lock_shared() TRY_ACQUIRE_SHARED(true);
  void unlock_shared() RELEASE_SHARED();
  bool is_write_locked() const { return state_.load(std::memory_order_relaxed) < 0; }
  bool is_locked() const { return state_.load(std::memory_order_relaxed) != 0; }
  void assert_held() const ASSERT_CAPABILITY(this) { HMM_ASSERT(is_locked(), "rwsem not held"); }
  void assert_write_held() const ASSERT_CAPABILITY(this) {
    HMM_ASSERT(is_write_locked(), "rwsem not write-held");
  }

 private:
  Scheduler* sched_;
  // -1: write-locked; 0: free; n > 0: n readers.
  std::atomic<int32_t> state_{0};
};

// Scoped holders.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& m) ACQUIRE(m) : m_(m) { m_.lock(); }
  ~MutexLock() RELEASE() { m_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& m_;
};

class SCOPED_CAPABILITY WriteLock {
 public:
  explicit WriteLock(RwSem& s) ACQUIRE(s) : s_(s) { s_.lock(); }
  ~WriteLock() RELEASE() { s_.unlock(); }
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;

 private:
  RwSem& s_;
};

class SCOPED_CAPABILITY ReadLock {
 public:
  explicit ReadLock(RwSem& s) ACQUIRE_SHARED(s) : s_(s) { s_.lock_shared(); }
  ~ReadLock() RELEASE() { s_.unlock_shared(); }
  ReadLock(const ReadLock&) = delete;
  ReadLock& operator=(const ReadLock&) = delete;

 private:
  RwSem& s_;
};

// A counter whose every update is a yield point (atomic_t, percpu_ref).
class AtomicCounter {
 public:
  explicit AtomicCounter(Scheduler& sched, int64_t v = 0) : sched_(&sched), v_(v) {}
  int64_t read() const { return v_.load(std::memory_order_acquire); }
  int64_t add(int64_t n) {
    sched_->yield(YieldKind::kAtomic);
    return v_.fetch_add(n, std::memory_order_acq_rel) + n;
  }
  int64_t sub(int64_t n) { return add(-n); }

 private:
  Scheduler* sched_;
  std::atomic<int64_t> v_;
};

}  // namespace hmmsim
