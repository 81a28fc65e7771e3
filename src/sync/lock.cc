#include "sync/lock.h"

namespace hmmsim {

bool Mutex::try_lock() {
  sched_->yield(YieldKind::kLock);
  bool expected = false;
  return locked_.compare_exchange_strong(expected, true, std::memory_order_acquire);
}

void Mutex::lock() {
  while (!try_lock()) sched_->block(this);
}

void Mutex::unlock() {
  HMM_ASSERT(locked_.load(std::memory_order_relaxed), "unlock of a free mutex");
  locked_.store(false, std::memory_order_release);
  sched_->wake(this);
  sched_->yield(YieldKind::kUnlock);
}

bool RwSem::try_lock() {
  sched_->yield(YieldKind::kLock);
  int32_t expected = 0;
  return state_.compare_exchange_strong(expected, -1, std::memory_order_acquire);
}

void RwSem::lock() {
  while (!try_lock()) sched_->block(this);
}

void RwSem::unlock() {
  HMM_ASSERT(state_.load(std::memory_order_relaxed) == -1, "write-unlock of an rwsem not write-held");
  state_.store(0, std::memory_order_release);
  sched_->wake(this);
  sched_->yield(YieldKind::kUnlock);
}

bool RwSem::try_lock_shared() {
  sched_->yield(YieldKind::kLock);
  int32_t cur = state_.load(std::memory_order_relaxed);
  while (cur >= 0) {
    if (state_.compare_exchange_weak(cur, cur + 1, std::memory_order_acquire)) return true;
  }
  return false;
}

void RwSem::lock_shared() {
  while (!try_lock_shared()) sched_->block(this);
}

void RwSem::unlock_shared() {
  int32_t prev = state_.fetch_sub(1, std::memory_order_release);
  HMM_ASSERT(prev > 0, "read-unlock of an rwsem not read-held");
  sched_->wake(this);
  sched_->yield(YieldKind::kUnlock);
}

}  // namespace hmmsim
