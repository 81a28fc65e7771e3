// Tests of the mmu interval notifier (src/mm/mmu_notifier.cc; Linux
// mm/mmu_notifier.c): the exact invalidations each mapping change sends
// (event, range, order), the sequence protocol a mirroring driver relies on
// (read_begin / read_retry, invariant I16), and subscription changes while
// invalidations run.
#include "mm/mmu_notifier.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <ostream>
#include <thread>
#include <vector>

#include "mm/huge_memory.h"
#include "mm/migrate_device.h"
#include "support/mm_fixture.h"

namespace hmmsim {

// gtest prints events with this when an expectation fails.
void PrintTo(MmuNotifyEvent e, std::ostream* os) {
  *os << mmu_notify_event_name(e);
}

namespace {

using namespace hmmsim::testing;

constexpr uint64_t kP = kPageSize;
constexpr Vaddr kEverything{~uint64_t{0}};

// One invalidate() call as a secondary MMU saw it.
struct Seen {
  MmuNotifyEvent event;
  Vaddr start;
  Vaddr end;
  const void* owner = nullptr;
  bool operator==(const Seen&) const = default;
};

void PrintTo(const Seen& s, std::ostream* os) {
  *os << mmu_notify_event_name(s.event) << " [" << std::hex << s.start.v << ", " << s.end.v << ")";
  if (s.owner) *os << " owner " << s.owner;
}

// A secondary MMU that only records: it stores the sequence under its own
// lock, as a driver must, and remembers every invalidation it is sent.
class Recorder final : public MmuIntervalNotifierOps {
 public:
  explicit Recorder(World& world) : lock_(world.sched()) {}
  ~Recorder() override {
    if (subscribed_) mmu_interval_notifier_remove(sub_);
  }

  void subscribe(MmStruct& mm, Vaddr start, uint64_t length) {
    ASSERT_TRUE(mmu_interval_notifier_insert(sub_, mm, start, length, *this).ok());
    subscribed_ = true;
  }
  // Everything a user address can be.
  void subscribe_all(MmStruct& mm) { subscribe(mm, Vaddr{0}, kUserMax); }
  void unsubscribe() {
    mmu_interval_notifier_remove(sub_);
    subscribed_ = false;
  }

  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange& range,
                  uint64_t cur_seq) override {
    MutexLock guard(lock_);
    EXPECT_EQ(&sub, &sub_);
    EXPECT_EQ(cur_seq & 1, 1u) << "invalidate() with an even sequence";
    mmu_interval_set_seq(sub, cur_seq);
    seen_.push_back(Seen{range.event, range.start, range.end, range.owner});
    return true;
  }

  // The invalidations seen since the last call.
  std::vector<Seen> take() {
    MutexLock guard(lock_);
    std::vector<Seen> out;
    out.swap(seen_);
    return out;
  }
  // read_retry under the lock invalidate() takes, as the protocol requires.
  bool read_retry(uint64_t seq) {
    MutexLock guard(lock_);
    return mmu_interval_read_retry(sub_, seq);
  }

  MmuIntervalNotifier& sub() { return sub_; }

 private:
  Mutex lock_;
  std::vector<Seen> seen_ GUARDED_BY(lock_);
  MmuIntervalNotifier sub_;
  bool subscribed_ = false;
};

class MmuNotifier : public MmTest {
 protected:
  // A PMD-aligned MADV_HUGEPAGE mapping of one PMD, every page written: one THP.
  Vaddr map_thp(MmStruct& mm) {
    Result<Vaddr> a = do_mmap(mm, Vaddr{0}, kPmdSize, kProtRw, MapFlags::kPrivate, kPmdSize);
    EXPECT_TRUE(a.ok());
    EXPECT_TRUE(do_madvise(mm, *a, kPmdSize, Advice::kHugePage).ok());
    for (uint64_t i = 0; i < kHPageNr; i++) must_write(mm, *a + i * kP, uint32_t(i + 1));
    EXPECT_EQ(pmd_kind(mm, *a), PmdKind::kPresent);
    return *a;
  }

  PmdKind pmd_kind(MmStruct& mm, Vaddr addr) NO_THREAD_SAFETY_ANALYSIS {
    PmdTable* t = mm.pmd_table(addr, MmStruct::Alloc::kNo);
    if (!t) return PmdKind::kNone;
    MutexLock guard(t->ptl);
    return t->slot(addr.pmd_index()).entry.kind();
  }

  // Ends a test: the world is consistent, and every process exits.
  void finish() {
    expect_clean(world_);
    exit_all(world_);
  }

  MmuNotifierSubscriptions& subs() { return mm_.notifier_subscriptions(); }

  Recorder rec_{world_};
};

Seen unmap(Vaddr s, Vaddr e) {
  return Seen{MmuNotifyEvent::kUnmap, s, e};
}
Seen clear(Vaddr s, Vaddr e) {
  return Seen{MmuNotifyEvent::kClear, s, e};
}

// ---------------------------------------------------------------------------
// What each mapping change sends

// munmap of a whole mapping: one UNMAP of the range.
TEST_F(MmuNotifier, MunmapSendsUnmap) {
  Vaddr a = map(4);
  write_pattern(mm_, a, 4, 1);
  rec_.subscribe_all(mm_);
  ASSERT_TRUE(do_munmap(mm_, a, 4 * kP).ok());
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{unmap(a, a + 4 * kP)}));
  finish();
}

// munmap of one page in the middle: the Vma is split, the UNMAP covers just
// the page; munmap of a hole sends nothing (do_vmi_munmap returns early).
TEST_F(MmuNotifier, MunmapPartAndHole) {
  Vaddr a = map(4);
  write_pattern(mm_, a, 4, 1);
  rec_.subscribe_all(mm_);
  ASSERT_TRUE(do_munmap(mm_, a + kP, kP).ok());
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{unmap(a + kP, a + 2 * kP)}));
  ASSERT_TRUE(do_munmap(mm_, a + kP, kP).ok());
  EXPECT_TRUE(rec_.take().empty());
  finish();
}

// MADV_DONTNEED: one CLEAR per Vma piece of the range, the Vmas stay.
TEST_F(MmuNotifier, DontneedSendsClearPerVma) {
  Vaddr a = map(4);
  write_pattern(mm_, a, 4, 1);
  ASSERT_TRUE(do_mprotect(mm_, a + 2 * kP, 2 * kP, kProtRead).ok());  // two Vmas
  rec_.subscribe_all(mm_);
  ASSERT_TRUE(do_madvise(mm_, a + kP, 2 * kP, Advice::kDontNeed).ok());
  EXPECT_EQ(rec_.take(),
            (std::vector<Seen>{clear(a + kP, a + 2 * kP), clear(a + 2 * kP, a + 3 * kP)}));
  EXPECT_EQ(nr_vmas(mm_), 2u);
  finish();
}

// MADV_FREE: one CLEAR of the range.
TEST_F(MmuNotifier, FreeSendsClear) {
  Vaddr a = map(4);
  write_pattern(mm_, a, 4, 1);
  rec_.subscribe_all(mm_);
  ASSERT_TRUE(do_madvise(mm_, a, 4 * kP, Advice::kFree).ok());
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{clear(a, a + 4 * kP)}));
  finish();
}

// mprotect: PROTECTION_VMA over each changed Vma; nothing when the flags do
// not change. change_pud_range() starts the invalidation at the first
// populated PUD entry: a Vma without pages under a populated PUD entry is
// still invalidated, one without any page table is not.
TEST_F(MmuNotifier, MprotectSendsProtectionVma) {
  Vaddr a = map(4);
  write_pattern(mm_, a, 4, 1);
  Vaddr near = map(4);
  ASSERT_EQ(near.v >> kPudShift, a.v >> kPudShift);
  Vaddr far{0x200000000000};
  ASSERT_TRUE(do_mmap(mm_, far, 4 * kP, kProtRw, MapFlags::kFixed).ok());
  rec_.subscribe_all(mm_);
  ASSERT_TRUE(do_mprotect(mm_, a + kP, kP, kProtRead).ok());
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{{MmuNotifyEvent::kProtectionVma, a + kP, a + 2 * kP}}));
  ASSERT_TRUE(do_mprotect(mm_, a + kP, kP, kProtRead).ok());
  EXPECT_TRUE(rec_.take().empty());
  ASSERT_TRUE(do_mprotect(mm_, near, 4 * kP, kProtRead).ok());
  EXPECT_EQ(rec_.take(),
            (std::vector<Seen>{{MmuNotifyEvent::kProtectionVma, near, near + 4 * kP}}));
  ASSERT_TRUE(do_mprotect(mm_, far, 4 * kP, kProtRead).ok());
  EXPECT_TRUE(rec_.take().empty());
  finish();
}

// fork write-protects the parent's COW Vmas that have pages: one
// PROTECTION_PAGE per such Vma, in the parent only; the first write after
// it copies the page under a CLEAR of that page.
TEST_F(MmuNotifier, ForkAndCowWrite) {
  Vaddr a = map(4);
  write_pattern(mm_, a, 4, 1);
  Vaddr never_faulted = map(4, kProtRead);  // no anon_vma: copy_page_range skips it
  ASSERT_NE(vma_at(mm_, never_faulted), vma_at(mm_, a));
  rec_.subscribe_all(mm_);
  MmStruct& child = dup_mm(mm_);
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{{MmuNotifyEvent::kProtectionPage, a, a + 4 * kP}}));
  must_write(mm_, a + 2 * kP, 99);
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{clear(a + 2 * kP, a + 3 * kP)}));
  must_write(child, a + kP, 98);  // another mm: not our subscriber's business
  EXPECT_TRUE(rec_.take().empty());
  finish();
}

// migrate_page: try_to_migrate_one sends CLEAR over the folio's range in the
// Vma; restoring the mappings sends nothing.
TEST_F(MmuNotifier, MigratePageSendsClear) {
  Vaddr a = map(4);
  write_pattern(mm_, a, 4, 1);
  rec_.subscribe_all(mm_);
  ASSERT_TRUE(migrate_page(mm_, a + kP + 8).ok());
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{clear(a + kP, a + 2 * kP)}));
  expect_pattern(mm_, a, 4, 1);
  finish();
}

// A THP migrates whole: one CLEAR of its 2 MiB.
TEST_F(MmuNotifier, MigrateThpSendsClearOfPmd) {
  Vaddr buf = map_thp(mm_);
  rec_.subscribe_all(mm_);
  ASSERT_TRUE(migrate_page(mm_, buf + 5 * kP).ok());
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{clear(buf, buf + kPmdSize)}));
  EXPECT_EQ(pmd_kind(mm_, buf), PmdKind::kPresent);
  finish();
}

// A partial munmap of a THP: the Vma split splits the PMD first (CLEAR of
// the 2 MiB, __split_huge_pmd), then the page is unmapped (UNMAP).
TEST_F(MmuNotifier, PartialMunmapOfThpSplitsPmd) {
  Vaddr buf = map_thp(mm_);
  rec_.subscribe_all(mm_);
  ASSERT_TRUE(do_munmap(mm_, buf, kP).ok());
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{clear(buf, buf + kPmdSize), unmap(buf, buf + kP)}));
  EXPECT_EQ(pmd_kind(mm_, buf), PmdKind::kTable);
  finish();
}

// MADV_DONTNEED of one page of a THP: the CLEAR of the page starts first,
// the PMD split nested in it sends its own CLEAR of the 2 MiB; MADV_COLLAPSE
// then clears the 2 MiB once more when it detaches the PTE table.
TEST_F(MmuNotifier, DontneedInThpThenCollapse) {
  Vaddr buf = map_thp(mm_);
  rec_.subscribe_all(mm_);
  ASSERT_TRUE(do_madvise(mm_, buf + kP, kP, Advice::kDontNeed).ok());
  EXPECT_EQ(rec_.take(),
            (std::vector<Seen>{clear(buf + kP, buf + 2 * kP), clear(buf, buf + kPmdSize)}));
  ASSERT_TRUE(do_madvise(mm_, buf, kPmdSize, Advice::kCollapse).ok());
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{clear(buf, buf + kPmdSize)}));
  EXPECT_EQ(pmd_kind(mm_, buf), PmdKind::kPresent);
  finish();
}

// A write to a THP shared with a child: do_huge_pmd_wp_page splits the PMD
// (CLEAR of the 2 MiB), then the PTE fault copies one page (CLEAR of it).
TEST_F(MmuNotifier, CowWriteOnSharedThp) {
  Vaddr buf = map_thp(mm_);
  MmStruct& child = dup_mm(mm_);
  (void)child;
  rec_.subscribe_all(mm_);
  must_write(mm_, buf + 3 * kP, 7);
  EXPECT_EQ(rec_.take(),
            (std::vector<Seen>{clear(buf, buf + kPmdSize), clear(buf + 3 * kP, buf + 4 * kP)}));
  finish();
}

// A write to the huge zero page replaces it with a THP under a CLEAR of
// the 2 MiB.
TEST_F(MmuNotifier, WriteToHugeZeroPage) {
  Result<Vaddr> a = do_mmap(mm_, Vaddr{0}, kPmdSize, kProtRw, MapFlags::kPrivate, kPmdSize);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(do_madvise(mm_, *a, kPmdSize, Advice::kHugePage).ok());
  EXPECT_EQ(must_read(mm_, *a), 0u);
  ASSERT_EQ(pmd_kind(mm_, *a), PmdKind::kHugeZero);
  rec_.subscribe_all(mm_);
  must_write(mm_, *a + kP, 5);
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{clear(*a, *a + kPmdSize)}));
  EXPECT_EQ(pmd_kind(mm_, *a), PmdKind::kPresent);
  finish();
}

// mremap moving a range: move_page_tables sends UNMAP of the old range,
// then the munmap of the old range sends another; with MREMAP_DONTUNMAP
// only the first.
TEST_F(MmuNotifier, MremapSendsUnmapOfOldRange) {
  Vaddr a = map(4);
  write_pattern(mm_, a, 4, 1);
  Vaddr to = map(4);
  ASSERT_TRUE(do_munmap(mm_, to, 4 * kP).ok());  // a free place to move to,
  ASSERT_EQ(to.pmd_down(), a.pmd_down());        // in the same PTE table
  rec_.subscribe_all(mm_);
  Result<Vaddr> moved = do_mremap(mm_, a, 4 * kP, 4 * kP, kMremapMaymove | kMremapFixed, to);
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{unmap(a, a + 4 * kP), unmap(a, a + 4 * kP)}));
  expect_pattern(mm_, to, 4, 1);
  moved = do_mremap(mm_, to, 4 * kP, 4 * kP, kMremapMaymove | kMremapDontunmap);
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{unmap(to, to + 4 * kP)}));
  finish();
}

// migrate_vma_setup() collects under MMU_NOTIFY_MIGRATE naming the owner;
// migrate_vma_pages() fills holes under another one, from the first hole
// it fills to the end of the range.
TEST_F(MmuNotifier, MigrateVmaSendsMigrateWithOwner) {
  Vaddr a = map(4);
  must_write(mm_, a, 1);  // page 0 is present, pages 1 to 3 are holes
  rec_.subscribe_all(mm_);
  int owner = 0;
  std::vector<MigratePfn> src(4);
  std::vector<MigratePfn> dst(4);
  MigrateVma args{.vma = vma_at(mm_, a),
                  .start = a,
                  .end = a + 4 * kP,
                  .src = src,
                  .dst = dst,
                  .pgmap_owner = &owner,
                  .flags = kSelectSystem,
                  .fault_page = std::nullopt};
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(rec_.take(), (std::vector<Seen>{{MmuNotifyEvent::kMigrate, a, a + 4 * kP, &owner}}));
    std::optional<Folio> page = folio_alloc(world_.mem(), Order{0});
    ASSERT_TRUE(page && folio_trylock(*page));
    dst[2] = MigratePfn::page(page->pfn());  // fill the hole at page 2 only
    migrate_vma_pages(world_, args);
    migrate_vma_finalize(world_, args);
  }
  EXPECT_EQ(rec_.take(),
            (std::vector<Seen>{{MmuNotifyEvent::kMigrate, a + 2 * kP, a + 4 * kP, &owner}}));
  EXPECT_EQ(must_read(mm_, a), 1u);
  EXPECT_EQ(pte_at(mm_, a + 2 * kP).kind(), PteKind::kPresent);
  finish();
}

// exit: RELEASE of everything before anything is unmapped, then one UNMAP
// of everything. The subscription outlives the address space (mmgrab) and
// is removed afterwards.
TEST_F(MmuNotifier, ExitSendsReleaseThenUnmap) {
  MmStruct& mm = world_.create_mm();
  Vaddr a = map_in(mm, 4);
  write_pattern(mm, a, 4, 1);
  rec_.subscribe_all(mm);
  expect_clean(world_);
  exit_mmap(mm);
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{{MmuNotifyEvent::kRelease, Vaddr{0}, kEverything},
                                            unmap(Vaddr{0}, kEverything)}));
  uint64_t seq = mmu_interval_read_begin(rec_.sub());
  EXPECT_FALSE(rec_.read_retry(seq));
  rec_.unsubscribe();
  finish();
}

// An exiting address space with no Vma left only sends RELEASE.
TEST_F(MmuNotifier, ExitOfEmptyMmSendsOnlyRelease) {
  MmStruct& mm = world_.create_mm();
  rec_.subscribe_all(mm);
  exit_mmap(mm);
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{{MmuNotifyEvent::kRelease, Vaddr{0}, kEverything}}));
  finish();
}

// ---------------------------------------------------------------------------
// The sequence protocol

// A retry is reported after an overlapping invalidation, never after one
// that misses the subscription; the odd sequence stored by invalidate()
// is the mm's while it runs, and the mm's is even again afterwards.
TEST_F(MmuNotifier, ReadRetryOnlyAfterOverlap) {
  Vaddr a = map(4);
  Vaddr b = map(4);
  write_pattern(mm_, a, 4, 1);
  write_pattern(mm_, b, 4, 1);
  Recorder other(world_);
  rec_.subscribe(mm_, a, 4 * kP);
  other.subscribe(mm_, b, 4 * kP);

  uint64_t seq_a = mmu_interval_read_begin(rec_.sub());
  uint64_t seq_b = mmu_interval_read_begin(other.sub());
  EXPECT_EQ(seq_a & 1, 1u);
  EXPECT_NE(seq_a, subs().invalidate_seq());
  EXPECT_FALSE(rec_.read_retry(seq_a));

  uint64_t before = subs().invalidate_seq();
  EXPECT_EQ(before & 1, 0u);
  ASSERT_TRUE(do_madvise(mm_, a + kP, kP, Advice::kDontNeed).ok());
  EXPECT_EQ(subs().invalidate_seq(), before + 2);  // |= 1 at start, + 1 at end
  EXPECT_TRUE(rec_.read_retry(seq_a));
  EXPECT_TRUE(mmu_interval_check_retry(rec_.sub(), seq_a));
  EXPECT_EQ(rec_.sub().invalidate_seq(), before + 1);
  EXPECT_FALSE(other.read_retry(seq_b));
  EXPECT_FALSE(mmu_interval_check_retry(other.sub(), seq_b));
  EXPECT_TRUE(other.take().empty());

  // A fresh read section after the invalidation is clean again.
  seq_a = mmu_interval_read_begin(rec_.sub());
  EXPECT_FALSE(rec_.read_retry(seq_a));
  // An invalidation that overlaps nothing leaves the sequence even.
  before = subs().invalidate_seq();
  Vaddr c = map(1);
  write_pattern(mm_, c, 1, 1);
  ASSERT_TRUE(do_munmap(mm_, c, kP).ok());
  EXPECT_EQ(subs().invalidate_seq(), before);
  EXPECT_FALSE(rec_.read_retry(seq_a));
  EXPECT_FALSE(other.read_retry(seq_b));
  finish();
}

// The interval is [start, start + length): an invalidation ending at start
// or starting at the end does not touch it.
TEST_F(MmuNotifier, IntervalBoundsAreExact) {
  Vaddr a = map(8);
  write_pattern(mm_, a, 8, 1);
  rec_.subscribe(mm_, a + 2 * kP, 2 * kP);
  uint64_t seq = mmu_interval_read_begin(rec_.sub());
  ASSERT_TRUE(do_madvise(mm_, a, 2 * kP, Advice::kDontNeed).ok());
  ASSERT_TRUE(do_madvise(mm_, a + 4 * kP, 4 * kP, Advice::kDontNeed).ok());
  EXPECT_FALSE(rec_.read_retry(seq));
  ASSERT_TRUE(do_madvise(mm_, a + 3 * kP, kP, Advice::kDontNeed).ok());
  EXPECT_TRUE(rec_.read_retry(seq));
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{clear(a + 3 * kP, a + 4 * kP)}));
  finish();
}

// Nested invalidations keep the sequence odd until the outermost ends; the
// owner of a MIGRATE range reaches the callback.
TEST_F(MmuNotifier, NestedRangesAndOwner) {
  Vaddr a = map(4);
  rec_.subscribe_all(mm_);
  int owner = 0;
  uint64_t before = subs().invalidate_seq();
  {
    MmuNotifierInvalidation outer(
        mmu_notifier_range_init_owner(MmuNotifyEvent::kMigrate, mm_, a, a + 4 * kP, &owner));
    EXPECT_EQ(subs().invalidate_seq(), before + 1);
    {
      MmuNotifierInvalidation inner(
          mmu_notifier_range_init(MmuNotifyEvent::kClear, mm_, a, a + kP));
      EXPECT_EQ(subs().active_invalidate_ranges(), 2u);
    }
    EXPECT_EQ(subs().active_invalidate_ranges(), 1u);
    EXPECT_EQ(subs().invalidate_seq(), before + 1);
  }
  EXPECT_EQ(subs().active_invalidate_ranges(), 0u);
  EXPECT_EQ(subs().invalidate_seq(), before + 2);
  EXPECT_EQ(rec_.take(), (std::vector<Seen>{{MmuNotifyEvent::kMigrate, a, a + 4 * kP, &owner},
                                            clear(a, a + kP)}));
  finish();
}

// read_begin waits while an invalidation covering the subscription runs,
// and returns once it has ended.
TEST_F(MmuNotifier, ReadBeginWaitsForInvalidation) {
  Vaddr a = map(4);
  rec_.subscribe(mm_, a, 4 * kP);
  std::atomic<bool> returned{false};
  uint64_t seq = 0;
  std::thread reader;
  {
    MmuNotifierInvalidation inv(mmu_notifier_range_init(MmuNotifyEvent::kClear, mm_, a, a + kP));
    reader = std::thread([&] {
      seq = mmu_interval_read_begin(rec_.sub());
      returned = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_FALSE(returned.load());
  }
  reader.join();
  EXPECT_TRUE(returned.load());
  EXPECT_EQ(seq, subs().invalidate_seq() - 1);  // the odd value stored by invalidate()
  EXPECT_FALSE(rec_.read_retry(seq));
  finish();
}

// ---------------------------------------------------------------------------
// Subscriptions

// insert / remove, and the ranges insert refuses.
TEST_F(MmuNotifier, InsertAndRemove) {
  Vaddr a = map(4);
  EXPECT_EQ(subs().nr_subscriptions(), 0u);
  rec_.subscribe(mm_, a, 4 * kP);
  EXPECT_TRUE(subs().subscribed(rec_.sub()));
  EXPECT_EQ(rec_.sub().mm(), &mm_);
  EXPECT_EQ(rec_.sub().start(), a);
  EXPECT_EQ(rec_.sub().last(), (a + 4 * kP).v - 1);
  rec_.unsubscribe();
  EXPECT_EQ(subs().nr_subscriptions(), 0u);

  MmuIntervalNotifier bad;
  EXPECT_EQ(mmu_interval_notifier_insert(bad, mm_, a, 0, rec_).error(), Errno::kOverflow);
  EXPECT_EQ(mmu_interval_notifier_insert(bad, mm_, Vaddr{~uint64_t{0} - kP}, 2 * kP, rec_).error(),
            Errno::kOverflow);

  // Once removed, invalidations of the range reach nobody.
  write_pattern(mm_, a, 4, 1);
  ASSERT_TRUE(do_munmap(mm_, a, 4 * kP).ok());
  EXPECT_TRUE(rec_.take().empty());
  finish();
}

// An insert while the tree is frozen (an overlapping invalidation runs) is
// deferred to the end of the last invalidation; removing it before then
// just cancels it.
TEST_F(MmuNotifier, InsertDuringInvalidationIsDeferred) {
  Vaddr a = map(4);
  rec_.subscribe(mm_, a, 4 * kP);
  Recorder late(world_);
  Recorder cancelled(world_);
  {
    MmuNotifierInvalidation inv(mmu_notifier_range_init(MmuNotifyEvent::kClear, mm_, a, a + kP));
    late.subscribe(mm_, a, 4 * kP);
    cancelled.subscribe(mm_, a, 4 * kP);
    EXPECT_FALSE(subs().subscribed(late.sub()));
    EXPECT_EQ(subs().nr_deferred(), 2u);
    // Its sequence is the running odd one: a reader would wait for the end.
    EXPECT_EQ(late.sub().invalidate_seq(), subs().invalidate_seq());
    cancelled.unsubscribe();
    EXPECT_EQ(subs().nr_deferred(), 1u);
    // A nested invalidation does not reach the newcomer yet.
    MmuNotifierInvalidation nested(mmu_notifier_range_init(MmuNotifyEvent::kClear, mm_, a, a + kP));
  }
  EXPECT_TRUE(subs().subscribed(late.sub()));
  EXPECT_EQ(subs().nr_deferred(), 0u);
  EXPECT_TRUE(late.take().empty());
  uint64_t seq = mmu_interval_read_begin(late.sub());
  EXPECT_FALSE(late.read_retry(seq));
  write_pattern(mm_, a, 1, 1);
  ASSERT_TRUE(do_madvise(mm_, a, kP, Advice::kDontNeed).ok());
  EXPECT_EQ(late.take(), (std::vector<Seen>{clear(a, a + kP)}));
  EXPECT_TRUE(late.read_retry(seq));
  finish();
}

// An insert while an invalidation that overlaps no subscription runs goes
// straight into the tree, and counts as invalidated by it.
TEST_F(MmuNotifier, InsertDuringUnrelatedInvalidation) {
  Vaddr a = map(4);
  uint64_t before = subs().invalidate_seq();
  {
    MmuNotifierInvalidation inv(mmu_notifier_range_init(MmuNotifyEvent::kClear, mm_, a, a + kP));
    EXPECT_EQ(subs().invalidate_seq(), before);
    rec_.subscribe(mm_, a + 2 * kP, kP);
    EXPECT_TRUE(subs().subscribed(rec_.sub()));
    EXPECT_EQ(subs().invalidate_seq(), before + 1);
    EXPECT_EQ(rec_.sub().invalidate_seq(), before + 1);
  }
  EXPECT_EQ(subs().invalidate_seq(), before + 2);
  uint64_t seq = mmu_interval_read_begin(rec_.sub());
  EXPECT_FALSE(rec_.read_retry(seq));
  finish();
}

// remove during an invalidation is deferred: it waits until the last
// invalidation has ended, then the subscription is gone.
TEST_F(MmuNotifier, RemoveDuringInvalidationIsDeferred) {
  Vaddr a = map(4);
  rec_.subscribe(mm_, a, 4 * kP);
  std::atomic<bool> removed{false};
  std::thread remover;
  {
    MmuNotifierInvalidation inv(mmu_notifier_range_init(MmuNotifyEvent::kClear, mm_, a, a + kP));
    remover = std::thread([&] {
      rec_.unsubscribe();
      removed = true;
    });
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (subs().nr_deferred() == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(subs().nr_deferred(), 1u);
    EXPECT_TRUE(subs().subscribed(rec_.sub()));
    EXPECT_FALSE(removed.load());
  }
  remover.join();
  EXPECT_TRUE(removed.load());
  EXPECT_EQ(subs().nr_subscriptions(), 0u);
  EXPECT_EQ(subs().nr_deferred(), 0u);
  finish();
}

}  // namespace
}  // namespace hmmsim
