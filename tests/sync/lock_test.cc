#include "sync/lock.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace hmmsim {
namespace {

// A Mutex excludes: concurrent increments under it are never lost.
TEST(Mutex, ExcludesConcurrentWriters) {
  NativeScheduler sched;
  Mutex m(sched);
  int64_t counter = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; i++) {
        MutexLock guard(m);
        counter++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, 40000);
  EXPECT_FALSE(m.is_locked());
}

// try_lock fails while the lock is held and succeeds after release. (The
// test drives the lock through states the analysis only allows for correct
// callers, so it runs unchecked.)
void try_lock_sequence(Mutex& m) NO_THREAD_SAFETY_ANALYSIS {
  ASSERT_TRUE(m.try_lock());
  EXPECT_FALSE(m.try_lock());
  m.unlock();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST(Mutex, TryLock) {
  NativeScheduler sched;
  Mutex m(sched);
  try_lock_sequence(m);
}

// Readers share an RwSem; a writer excludes them (unchecked, as above).
void rwsem_sequence(RwSem& s) NO_THREAD_SAFETY_ANALYSIS {
  ASSERT_TRUE(s.try_lock_shared());
  ASSERT_TRUE(s.try_lock_shared());
  EXPECT_FALSE(s.try_lock());
  s.unlock_shared();
  s.unlock_shared();
  ASSERT_TRUE(s.try_lock());
  EXPECT_TRUE(s.is_write_locked());
  EXPECT_FALSE(s.try_lock_shared());
  s.unlock();
  EXPECT_FALSE(s.is_locked());
}

TEST(RwSem, ReadersShareWriterExcludes) {
  NativeScheduler sched;
  RwSem s(sched);
  rwsem_sequence(s);
}

// Counts every yield point so tests can see the hook is called.
class CountingScheduler final : public Scheduler {
 public:
  void yield(YieldKind) override { yields++; }
  void block(const void*) override { blocks++; }
  void wake(const void*) override { wakes++; }
  int yields = 0, blocks = 0, wakes = 0;
};

// Every lock operation is a yield point of the world's scheduler.
TEST(Scheduler, LocksYield) {
  CountingScheduler sched;
  Mutex m(sched);
  m.lock();
  m.unlock();
  EXPECT_EQ(sched.yields, 2);
  EXPECT_EQ(sched.wakes, 1);
  AtomicCounter c(sched);
  c.add(3);
  EXPECT_EQ(c.read(), 3);
  EXPECT_EQ(sched.yields, 3);
}

}  // namespace
}  // namespace hmmsim
