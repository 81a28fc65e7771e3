// MMU interval notifiers: how a secondary MMU (a device page table that
// mirrors part of a process's address space) learns that CPU mappings are
// about to change, and how it builds its own mappings without racing that.
//
// Linux counterpart: `mm/mmu_notifier.c`, `include/linux/mmu_notifier.h`
// (the interval-tree half; the older hlist notifiers are not modelled).
//
// Write side. Every path of mm/ that changes or removes a mapping brackets
// the change with mmu_notifier_invalidate_range_start(range) and
// mmu_notifier_invalidate_range_end(range), the `range` naming the address
// space, the affected [start, end) and why (MmuNotifyEvent). While at least
// one invalidation overlapping a subscription is active, the address
// space's sequence number is odd:
//   1. start: active ranges + 1; if a subscription overlaps, seq |= 1 and
//      each overlapping subscription's invalidate() runs with that odd seq;
//   2. end: active ranges - 1; when the last one ends and seq is odd,
//      seq + 1 (even again), deferred inserts and removes are applied, and
//      readers waiting in mmu_interval_read_begin() are woken.
// Nested and concurrent invalidations are normal (a PMD split inside an
// munmap, two faults in two threads).
//
// Read side (a driver that fills its device page table, like hmm-tests'
// dmirror):
//   seq = mmu_interval_read_begin(sub)   waits out a running invalidation
//   ... look up CPU mappings (hmm_range_fault) without the driver lock ...
//   lock(driver lock)
//   if (mmu_interval_read_retry(sub, seq)) { unlock; start over; }
//   program the device; unlock(driver lock)
// and in invalidate(): lock(driver lock); mmu_interval_set_seq(sub,
// cur_seq); drop device mappings of the range; unlock. Since invalidate()
// stores an odd value the reader never returned, a reader that raced an
// invalidation always sees a retry (invariant I16).
//
// The model is always a blockable context: invalidate() may sleep and must
// return true (false is reserved for Linux's non-blockable callers).
//
// Thread safety: the per-mm state (MmuNotifierSubscriptions) is guarded by
// its `lock_` (`subscriptions->lock`, a spinlock in Linux); nothing else is
// taken while it is held, and invalidate() runs without it. Invalidations
// start with mmap_lock, and possibly a folio lock and an anon_vma lock,
// held, but never a page-table lock, so a driver lock taken in invalidate()
// ranks after the anon_vma lock and before the page-table locks
// (docs/lock_order.md). A subscription's sequence number is written under
// the driver's lock and read under it (read_retry) or without it
// (check_retry), as Linux's READ_ONCE/WRITE_ONCE.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "base/result.h"
#include "base/thread_annotations.h"
#include "base/types.h"
#include "sync/lock.h"
#include "sync/scheduler.h"

namespace hmmsim {

class MmStruct;
class MmuIntervalNotifier;
class MmuNotifierSubscriptions;

// enum mmu_notifier_event: why a range is being invalidated.
enum class MmuNotifyEvent : uint8_t {
  kUnmap,           // MMU_NOTIFY_UNMAP: the range is unmapped (munmap, mremap)
  kClear,           // MMU_NOTIFY_CLEAR: entries cleared, the Vma stays
  kProtectionVma,   // MMU_NOTIFY_PROTECTION_VMA: mprotect of the Vma
  kProtectionPage,  // MMU_NOTIFY_PROTECTION_PAGE: entries write-protected (fork)
  kSoftDirty,       // MMU_NOTIFY_SOFT_DIRTY: soft-dirty tracking reset
  kRelease,         // MMU_NOTIFY_RELEASE: the address space is going away
  kMigrate,         // MMU_NOTIFY_MIGRATE: migrate_vma collects the range
  kExclusive,       // MMU_NOTIFY_EXCLUSIVE: device-exclusive access
};

const char* mmu_notify_event_name(MmuNotifyEvent event);

// struct mmu_notifier_range. `owner` is set only for kMigrate and
// kExclusive, so that the driver that asked can skip its own event.
struct MmuNotifierRange {
  MmStruct* mm = nullptr;
  Vaddr start;
  Vaddr end;
  MmuNotifyEvent event = MmuNotifyEvent::kClear;
  const void* owner = nullptr;
};

// mmu_notifier_range_init() / mmu_notifier_range_init_owner().
MmuNotifierRange mmu_notifier_range_init(MmuNotifyEvent event, MmStruct& mm, Vaddr start,
                                         Vaddr end);
MmuNotifierRange mmu_notifier_range_init_owner(MmuNotifyEvent event, MmStruct& mm, Vaddr start,
                                               Vaddr end, const void* owner);

// struct mmu_interval_notifier_ops: the driver's callback.
class MmuIntervalNotifierOps {
 public:
  virtual ~MmuIntervalNotifierOps() = default;
  // Called at the start of every invalidation that overlaps `sub`, with
  // the odd sequence number the driver must store (mmu_interval_set_seq)
  // under its own lock before it drops its mappings of `range`. Returns
  // false only when it would have to sleep in a non-blockable context,
  // which the model never asks for: it must return true.
  virtual bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange& range,
                          uint64_t cur_seq) = 0;

  // One page a secondary MMU maps (for the checker, invariant I16).
  struct MirroredPage {
    Vaddr addr;
    Pfn pfn;
    bool write = false;
  };
  // What the subscriber's device maps now. A subscriber without a device
  // page table (a snapshot, a test) keeps the default: nothing.
  virtual std::vector<MirroredPage> debug_mirrored_pages() const { return {}; }
};

// struct mmu_interval_notifier: one subscription to [start, end) of one
// address space. The driver owns it; it is idle until inserted and must be
// removed before it is destroyed. Like Linux's mmgrab(), a subscription
// keeps the notifier state of its address space alive after the process
// has exited, so remove() may come later; mm() must not be used then.
class MmuIntervalNotifier {
 public:
  MmuIntervalNotifier() = default;
  ~MmuIntervalNotifier();
  MmuIntervalNotifier(const MmuIntervalNotifier&) = delete;
  MmuIntervalNotifier& operator=(const MmuIntervalNotifier&) = delete;

  MmStruct* mm() const { return mm_; }
  Vaddr start() const { return start_; }
  // The last byte covered (the kernel's interval-tree `last`).
  uint64_t last() const { return last_; }
  bool overlaps(Vaddr start, Vaddr end) const { return start_.v <= end.v - 1 && start.v <= last_; }
  uint64_t invalidate_seq() const { return invalidate_seq_.load(std::memory_order_acquire); }
  MmuIntervalNotifierOps* ops() const { return ops_; }

 private:
  friend class MmuNotifierSubscriptions;
  friend Status mmu_interval_notifier_insert(MmuIntervalNotifier&, MmStruct&, Vaddr, uint64_t,
                                             MmuIntervalNotifierOps&);
  friend void mmu_interval_notifier_remove(MmuIntervalNotifier&);
  friend void mmu_interval_set_seq(MmuIntervalNotifier&, uint64_t);
  friend uint64_t mmu_interval_read_begin(MmuIntervalNotifier&);

  // Set by insert before the subscription is published, cleared by remove.
  MmStruct* mm_ = nullptr;
  std::shared_ptr<MmuNotifierSubscriptions> subs_;  // the mmgrab() reference
  MmuIntervalNotifierOps* ops_ = nullptr;
  Vaddr start_;
  uint64_t last_ = 0;
  std::atomic<uint64_t> invalidate_seq_{0};
};

// struct mmu_notifier_subscriptions: the per-mm state. MmStruct and every
// inserted subscription share it (mm_count).
class MmuNotifierSubscriptions {
 public:
  explicit MmuNotifierSubscriptions(Scheduler& sched);
  ~MmuNotifierSubscriptions();
  MmuNotifierSubscriptions(const MmuNotifierSubscriptions&) = delete;
  MmuNotifierSubscriptions& operator=(const MmuNotifierSubscriptions&) = delete;

  // mn_itree_invalidate(): inv_start_range, then each overlapping
  // subscription's invalidate(), called without lock_.
  void invalidate(const MmuNotifierRange& range) EXCLUDES(lock_);
  // mn_itree_inv_end()
  void inv_end() EXCLUDES(lock_);
  // The tree half of __mmu_interval_notifier_insert().
  void insert(MmuIntervalNotifier& sub) EXCLUDES(lock_);
  // The tree half of mmu_interval_notifier_remove(): the sequence number
  // to wait for, or nothing when the removal is already done.
  std::optional<uint64_t> remove(MmuIntervalNotifier& sub) EXCLUDES(lock_);
  // The subscription's sequence number, and whether an invalidation
  // covering it is running (it equals the mm's odd one), read together.
  struct ReadState {
    uint64_t seq = 0;
    bool invalidating = false;
  };
  ReadState read_state(const MmuIntervalNotifier& sub) const EXCLUDES(lock_);
  // wait_event(wq, invalidate_seq != seq)
  void wait_seq_change(uint64_t seq);

  // Introspection (tests, checker).
  uint64_t invalidate_seq() const { return invalidate_seq_.load(std::memory_order_acquire); }
  uint64_t active_invalidate_ranges() const EXCLUDES(lock_);
  bool subscribed(const MmuIntervalNotifier& sub) const EXCLUDES(lock_);
  size_t nr_subscriptions() const EXCLUDES(lock_);
  size_t nr_deferred() const EXCLUDES(lock_);
  // The subscriptions in the tree (checker).
  std::vector<MmuIntervalNotifier*> debug_subscriptions() const EXCLUDES(lock_);

 private:
  // A change of the tree postponed until the last invalidation ends
  // (the deferred_list).
  enum class Change : bool { kInsert, kRemove };
  struct Deferred {
    MmuIntervalNotifier* sub;
    Change change;
  };
  struct Overlaps {
    std::vector<MmuIntervalNotifier*> subs;
    uint64_t cur_seq = 0;
  };

  // mn_itree_inv_start_range(): count the range in, and return the
  // subscriptions it overlaps with the sequence number to give them.
  Overlaps inv_start_range(const MmuNotifierRange& range) EXCLUDES(lock_);

  bool is_invalidating() const REQUIRES(lock_) { return (invalidate_seq() & 1) != 0; }
  void tree_insert(MmuIntervalNotifier* sub) REQUIRES(lock_);
  void tree_remove(MmuIntervalNotifier* sub) REQUIRES(lock_);
  bool in_tree(const MmuIntervalNotifier* sub) const REQUIRES(lock_);
  void apply_deferred() REQUIRES(lock_);

  Scheduler* sched_;
  mutable Mutex lock_;
  // Written under lock_; read without it by waiters (READ_ONCE). Starts at
  // 2, as in Linux; odd while an invalidation overlapping a subscription
  // runs.
  std::atomic<uint64_t> invalidate_seq_{2};
  uint64_t active_invalidate_ranges_ GUARDED_BY(lock_) = 0;
  // The interval tree, as a list in insertion order: the model has few
  // subscriptions per mm, and each lookup is a scan.
  std::vector<MmuIntervalNotifier*> itree_ GUARDED_BY(lock_);
  std::vector<Deferred> deferred_ GUARDED_BY(lock_);
};

// mmu_interval_notifier_insert(): subscribe `sub` to [start, start +
// length) of `mm`. While the mm is invalidating, the subscription is
// entered when the last invalidation ends (it must use read_begin as
// usual). -EOVERFLOW for an empty or wrapping range.
Status mmu_interval_notifier_insert(MmuIntervalNotifier& sub, MmStruct& mm, Vaddr start,
                                    uint64_t length, MmuIntervalNotifierOps& ops);
// mmu_interval_notifier_remove(): unsubscribe; while an invalidation is
// running, waits until it has ended, so that no invalidate() of `sub`
// runs after this returns. Must not be called from invalidate().
void mmu_interval_notifier_remove(MmuIntervalNotifier& sub);

// mmu_interval_read_begin(): start a read-side section; waits while an
// invalidation covering `sub` is running. Returns the sequence number to
// check with read_retry.
uint64_t mmu_interval_read_begin(MmuIntervalNotifier& sub);
// mmu_interval_read_retry(): true if an invalidation hit `sub` since
// `seq` was read. Call it under the lock invalidate() takes.
bool mmu_interval_read_retry(const MmuIntervalNotifier& sub, uint64_t seq);
// mmu_interval_check_retry(): the same, without the lock, as an early
// hint (a false answer must still be confirmed by read_retry).
bool mmu_interval_check_retry(const MmuIntervalNotifier& sub, uint64_t seq);
// mmu_interval_set_seq(): from invalidate(), under the driver's lock.
void mmu_interval_set_seq(MmuIntervalNotifier& sub, uint64_t cur_seq);

// mmu_notifier_invalidate_range_start() / _end(). Every start is paired
// with one end of the same range; the caller holds no page-table lock.
void mmu_notifier_invalidate_range_start(const MmuNotifierRange& range);
void mmu_notifier_invalidate_range_end(const MmuNotifierRange& range);
// mmu_notifier_release() (mn_itree_release): exit_mmap() tells every
// subscription that the whole address space goes away (kRelease over
// [0, ULONG_MAX)), before it unmaps anything.
void mmu_notifier_release(MmStruct& mm);

// One invalidation as a scope: start in the constructor, end in the
// destructor.
class MmuNotifierInvalidation {
 public:
  explicit MmuNotifierInvalidation(const MmuNotifierRange& range) : range_(range) {
    mmu_notifier_invalidate_range_start(range_);
  }
  ~MmuNotifierInvalidation() { mmu_notifier_invalidate_range_end(range_); }
  MmuNotifierInvalidation(const MmuNotifierInvalidation&) = delete;
  MmuNotifierInvalidation& operator=(const MmuNotifierInvalidation&) = delete;

  const MmuNotifierRange& range() const { return range_; }

 private:
  MmuNotifierRange range_;
};

}  // namespace hmmsim
