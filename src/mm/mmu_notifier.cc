#include "mm/mmu_notifier.h"

#include <algorithm>
#include <limits>

#include "base/assert.h"
#include "mm/mm_struct.h"

namespace hmmsim {

const char* mmu_notify_event_name(MmuNotifyEvent event) {
  switch (event) {
    case MmuNotifyEvent::kUnmap: return "UNMAP";
    case MmuNotifyEvent::kClear: return "CLEAR";
    case MmuNotifyEvent::kProtectionVma: return "PROTECTION_VMA";
    case MmuNotifyEvent::kProtectionPage: return "PROTECTION_PAGE";
    case MmuNotifyEvent::kSoftDirty: return "SOFT_DIRTY";
    case MmuNotifyEvent::kRelease: return "RELEASE";
    case MmuNotifyEvent::kMigrate: return "MIGRATE";
    case MmuNotifyEvent::kExclusive: return "EXCLUSIVE";
  }
  return "?";
}

MmuNotifierRange mmu_notifier_range_init(MmuNotifyEvent event, MmStruct& mm, Vaddr start,
                                         Vaddr end) {
  return mmu_notifier_range_init_owner(event, mm, start, end, nullptr);
}

MmuNotifierRange mmu_notifier_range_init_owner(MmuNotifyEvent event, MmStruct& mm, Vaddr start,
                                               Vaddr end, const void* owner) {
  HMM_ASSERT(start < end, "empty invalidation [{:#x}, {:#x})", start.v, end.v);
  return MmuNotifierRange{.mm = &mm, .start = start, .end = end, .event = event, .owner = owner};
}

MmuIntervalNotifier::~MmuIntervalNotifier() {
  HMM_ASSERT(subs_ == nullptr, "interval notifier [{:#x}, {:#x}] destroyed while subscribed",
             start_.v, last_);
}

// ---------------------------------------------------------------------------
// MmuNotifierSubscriptions

MmuNotifierSubscriptions::MmuNotifierSubscriptions(Scheduler& sched)
    : sched_(&sched), lock_(sched) {}

MmuNotifierSubscriptions::~MmuNotifierSubscriptions() {
  // The last owner is gone: the address space, and every subscriber.
  MutexLock guard(lock_);
  HMM_ASSERT(active_invalidate_ranges_ == 0, "notifier state freed during {} invalidations",
             active_invalidate_ranges_);
  HMM_ASSERT(itree_.empty() && deferred_.empty(),
             "notifier state freed with {} interval notifiers subscribed", itree_.size());
}

bool MmuNotifierSubscriptions::in_tree(const MmuIntervalNotifier* sub) const {
  return std::find(itree_.begin(), itree_.end(), sub) != itree_.end();
}

void MmuNotifierSubscriptions::tree_insert(MmuIntervalNotifier* sub) {
  HMM_ASSERT(!in_tree(sub), "interval notifier inserted twice");
  itree_.push_back(sub);
}

void MmuNotifierSubscriptions::tree_remove(MmuIntervalNotifier* sub) {
  auto it = std::find(itree_.begin(), itree_.end(), sub);
  HMM_ASSERT(it != itree_.end(), "removing an interval notifier that is not subscribed");
  itree_.erase(it);
}

MmuNotifierSubscriptions::Overlaps MmuNotifierSubscriptions::inv_start_range(
    const MmuNotifierRange& range) {
  Overlaps out;
  MutexLock guard(lock_);
  active_invalidate_ranges_++;
  // The tree cannot change while the sequence is odd (changes are
  // deferred), so this list is what Linux's lockless tree walk would see.
  for (MmuIntervalNotifier* sub : itree_) {
    if (sub->overlaps(range.start, range.end)) out.subs.push_back(sub);
  }
  if (!out.subs.empty()) invalidate_seq_.store(invalidate_seq() | 1, std::memory_order_release);
  out.cur_seq = invalidate_seq();
  return out;
}

void MmuNotifierSubscriptions::apply_deferred() {
  for (const Deferred& d : deferred_) {
    if (d.change == Change::kInsert) {
      tree_insert(d.sub);
    } else {
      tree_remove(d.sub);
    }
  }
  deferred_.clear();
}

void MmuNotifierSubscriptions::inv_end() {
  {
    MutexLock guard(lock_);
    HMM_ASSERT(active_invalidate_ranges_ > 0, "invalidate_range_end without a start");
    if (--active_invalidate_ranges_ != 0 || !is_invalidating()) return;
    invalidate_seq_.store(invalidate_seq() + 1, std::memory_order_release);
    apply_deferred();
  }
  sched_->wake(this);  // wake_up_all(&subscriptions->wq)
}

void MmuNotifierSubscriptions::invalidate(const MmuNotifierRange& range) {
  Overlaps overlaps = inv_start_range(range);
  for (MmuIntervalNotifier* sub : overlaps.subs) {
    // Every model context is blockable, so a callback may not refuse
    // (Linux warns and carries on).
    bool ok = sub->ops_->invalidate(*sub, range, overlaps.cur_seq);
    HMM_ASSERT(ok, "invalidate() refused a blockable {} of [{:#x}, {:#x})",
               mmu_notify_event_name(range.event), range.start.v, range.end.v);
  }
}

void MmuNotifierSubscriptions::insert(MmuIntervalNotifier& sub) {
  MutexLock guard(lock_);
  if (active_invalidate_ranges_ == 0) {
    HMM_ASSERT(!is_invalidating(), "odd sequence with no invalidation running");
    // Odd, different from the mm's and far from it: read_begin of a
    // subscription nothing has invalidated yet never waits.
    sub.invalidate_seq_.store(invalidate_seq() - 1, std::memory_order_release);
    tree_insert(&sub);
    return;
  }
  // An invalidation of unknown extent is running: count the new range as
  // covered by it. If the tree is frozen, enter it when the last one ends.
  if (is_invalidating()) {
    deferred_.push_back(Deferred{&sub, Change::kInsert});
  } else {
    invalidate_seq_.store(invalidate_seq() | 1, std::memory_order_release);
    tree_insert(&sub);
  }
  sub.invalidate_seq_.store(invalidate_seq(), std::memory_order_release);
}

std::optional<uint64_t> MmuNotifierSubscriptions::remove(MmuIntervalNotifier& sub) {
  MutexLock guard(lock_);
  if (!is_invalidating()) {
    tree_remove(&sub);
    return std::nullopt;
  }
  if (!in_tree(&sub)) {
    // Inserted during this invalidation and not entered yet: cancel that.
    auto it = std::find_if(deferred_.begin(), deferred_.end(), [&](const Deferred& d) {
      return d.sub == &sub && d.change == Change::kInsert;
    });
    HMM_ASSERT(it != deferred_.end(), "removing an interval notifier that is not subscribed");
    deferred_.erase(it);
    return std::nullopt;
  }
  deferred_.push_back(Deferred{&sub, Change::kRemove});
  return invalidate_seq();
}

MmuNotifierSubscriptions::ReadState MmuNotifierSubscriptions::read_state(
    const MmuIntervalNotifier& sub) const {
  MutexLock guard(lock_);
  uint64_t seq = sub.invalidate_seq();
  return ReadState{seq, seq == invalidate_seq()};
}

void MmuNotifierSubscriptions::wait_seq_change(uint64_t seq) {
  // The check and the block have no yield point between them, so a wake
  // cannot slip in unseen.
  while (invalidate_seq() == seq) sched_->block(this);
}

uint64_t MmuNotifierSubscriptions::active_invalidate_ranges() const {
  MutexLock guard(lock_);
  return active_invalidate_ranges_;
}

bool MmuNotifierSubscriptions::subscribed(const MmuIntervalNotifier& sub) const {
  MutexLock guard(lock_);
  return in_tree(&sub);
}

size_t MmuNotifierSubscriptions::nr_subscriptions() const {
  MutexLock guard(lock_);
  return itree_.size();
}

size_t MmuNotifierSubscriptions::nr_deferred() const {
  MutexLock guard(lock_);
  return deferred_.size();
}

std::vector<MmuIntervalNotifier*> MmuNotifierSubscriptions::debug_subscriptions() const {
  MutexLock guard(lock_);
  return itree_;
}

// ---------------------------------------------------------------------------
// The interval notifier API

Status mmu_interval_notifier_insert(MmuIntervalNotifier& sub, MmStruct& mm, Vaddr start,
                                    uint64_t length, MmuIntervalNotifierOps& ops) {
  HMM_ASSERT(sub.subs_ == nullptr, "interval notifier inserted while subscribed");
  if (length == 0 || start.v > std::numeric_limits<uint64_t>::max() - (length - 1))
    return Err{Errno::kOverflow};
  sub.mm_ = &mm;
  sub.subs_ = mm.notifier_subscriptions_grab();
  sub.ops_ = &ops;
  sub.start_ = start;
  sub.last_ = start.v + (length - 1);
  sub.subs_->insert(sub);
  return Ok();
}

void mmu_interval_notifier_remove(MmuIntervalNotifier& sub) {
  HMM_ASSERT(sub.subs_ != nullptr, "removing an interval notifier that was never inserted");
  MmuNotifierSubscriptions& subs = *sub.subs_;
  // Sleeping here needs the caller to hold no lock that invalidate() takes.
  if (std::optional<uint64_t> seq = subs.remove(sub)) subs.wait_seq_change(*seq);
  sub.mm_ = nullptr;
  sub.ops_ = nullptr;
  sub.subs_.reset();  // mmdrop()
}

uint64_t mmu_interval_read_begin(MmuIntervalNotifier& sub) {
  HMM_ASSERT(sub.subs_ != nullptr, "read_begin on an interval notifier that is not inserted");
  MmuNotifierSubscriptions& subs = *sub.subs_;
  // The subscription's seq equals the mm's odd seq exactly while an
  // invalidation covering it runs; invalidate() only ever stores odd
  // values, and the mm's idle seq is even, so the wait always ends.
  MmuNotifierSubscriptions::ReadState state = subs.read_state(sub);
  if (state.invalidating) subs.wait_seq_change(state.seq);
  // read_retry may already be true here: callers loop with their own bound.
  return state.seq;
}

bool mmu_interval_read_retry(const MmuIntervalNotifier& sub, uint64_t seq) {
  return sub.invalidate_seq() != seq;
}

bool mmu_interval_check_retry(const MmuIntervalNotifier& sub, uint64_t seq) {
  return sub.invalidate_seq() != seq;
}

void mmu_interval_set_seq(MmuIntervalNotifier& sub, uint64_t cur_seq) {
  HMM_ASSERT((cur_seq & 1) != 0, "set_seq with even sequence {}", cur_seq);
  sub.invalidate_seq_.store(cur_seq, std::memory_order_release);
}

// ---------------------------------------------------------------------------
// The write side

void mmu_notifier_invalidate_range_start(const MmuNotifierRange& range) {
  HMM_ASSERT(range.mm != nullptr && range.start < range.end, "bad invalidation range");
  range.mm->notifier_subscriptions().invalidate(range);
}

void mmu_notifier_invalidate_range_end(const MmuNotifierRange& range) {
  range.mm->notifier_subscriptions().inv_end();
}

void mmu_notifier_release(MmStruct& mm) {
  MmuNotifierRange range = mmu_notifier_range_init(MmuNotifyEvent::kRelease, mm, Vaddr{0},
                                                   Vaddr{std::numeric_limits<uint64_t>::max()});
  mmu_notifier_invalidate_range_start(range);
  mmu_notifier_invalidate_range_end(range);
}

}  // namespace hmmsim
