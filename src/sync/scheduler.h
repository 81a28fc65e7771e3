// Scheduler: the hook every lock, atomic and wait in the model goes through.
//
// Code in mm/ and driver/ never touches std::mutex or std::thread directly.
// It uses the primitives of this layer, and each of their operations calls
// the world's Scheduler first: that call is a *yield point*. The native
// scheduler lets real threads run freely (yield points do nothing, blocking
// spins politely). A deterministic scheduler can instead run one simulated
// thread at a time and switch only at yield points; mm/ does not change.
//
// Thread safety: a Scheduler is shared by every thread of its world and must
// be safe to call concurrently.
#pragma once

#include <cstdint>

namespace hmmsim {

// Why a thread reached a yield point; strategies may weigh them differently.
enum class YieldKind : uint8_t {
  kLock,       // about to acquire a lock
  kUnlock,     // just released a lock
  kAtomic,     // an atomic read-modify-write on shared state
  kBlock,      // about to wait for a condition another thread must change
  kStep,       // an explicit step boundary (a syscall, a CPU access)
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  // Called before every modelled synchronisation operation.
  virtual void yield(YieldKind kind) = 0;
  // The caller found `key` (a lock, a folio) busy and waits for a wake on it.
  // May return spuriously: callers re-check their condition in a loop.
  virtual void block(const void* key) = 0;
  // `key` changed state; threads blocked on it may proceed.
  virtual void wake(const void* key) = 0;
};

// Real threads, no interposition: yield points are free, blocking yields the
// OS thread. Used for ordinary runs and for ThreadSanitizer.
class NativeScheduler final : public Scheduler {
 public:
  void yield(YieldKind) override {}
  void block(const void* key) override;
  void wake(const void*) override {}
};

}  // namespace hmmsim
