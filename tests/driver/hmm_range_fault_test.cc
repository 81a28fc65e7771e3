// hmm_range_fault(): what it reports for each entry kind, with and without
// fault requests, and its error and retry returns (kernel-semantics §6.1).
#include <gtest/gtest.h>

#include "mm/device_exclusive.h"
#include "mm/hmm.h"
#include "mm/mmu_notifier.h"
#include "migrate_vma_fixture.h"

namespace hmmsim::migrate_vma_test {
namespace {

// A subscriber that only records invalidations (like the snapshot one).
class SeqOnly final : public MmuIntervalNotifierOps {
 public:
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange&, uint64_t seq) override {
    mmu_interval_set_seq(sub, seq);
    calls++;
    return true;
  }
  MmuIntervalNotifier notifier;
  int calls = 0;
};

constexpr uint8_t kFault = kHmmPfnReqFault;
constexpr uint8_t kFaultWrite = kHmmPfnReqFault | kHmmPfnReqWrite;

class HmmRangeFault : public MigrateVmaFixture {
 protected:
  HmmRangeFault() {
    EXPECT_TRUE(mmu_interval_notifier_insert(sub_.notifier, mm_, Vaddr{0}, kUserMax, sub_).ok());
  }
  ~HmmRangeFault() override { mmu_interval_notifier_remove(sub_.notifier); }

  // One hmm_range_fault() of [start, start + npages) with a fresh sequence.
  Status walk(Vaddr start, uint64_t npages, uint8_t default_flags,
              const void* owner = nullptr, uint8_t mask = 0) {
    pfns_.resize(npages);
    HmmRange range{.notifier = &sub_.notifier,
                   .notifier_seq = mmu_interval_read_begin(sub_.notifier),
                   .start = start,
                   .end = start + npages * kPageSize,
                   .hmm_pfns = pfns_,
                   .default_flags = default_flags,
                   .pfn_flags_mask = mask,
                   .dev_private_owner = owner ? owner : dev_.owner()};
    ReadLock guard(mm_.mmap_lock);
    return hmm_range_fault(range);
  }
  // The same, retried while it says -EBUSY, as a driver does.
  Status walk_settled(Vaddr start, uint64_t npages, uint8_t default_flags,
                      const void* owner = nullptr) {
    for (int i = 0; i < 10; i++) {
      Status st = walk(start, npages, default_flags, owner);
      if (st.ok() || st.error() != Errno::kBusy) return st;
    }
    return Err{Errno::kBusy};
  }

  static HmmPfn pfn(uint8_t flags, Pfn p, uint8_t order = 0) {
    return HmmPfn{.flags = flags, .order = order, .pfn = p};
  }
  Pfn zero_pfn() { return world_.mem().zero_pfn(); }

  SeqOnly sub_;
  std::vector<HmmPfn> pfns_;
};

// Nothing mapped and nothing asked: every page reads 0.
TEST_F(HmmRangeFault, EmptyRangeWithoutFaultReadsZero) {
  Vaddr a = map(4 * kPageSize);
  ASSERT_TRUE(walk(a, 4, 0).ok());
  for (const HmmPfn& p : pfns_) EXPECT_EQ(p, HmmPfn{});
  EXPECT_EQ(pte_at(mm_, a).kind(), PteKind::kNone);
}

// A read fault of a hole maps the shared zero page, readable only.
TEST_F(HmmRangeFault, ReadFaultMapsTheZeroPage) {
  Vaddr a = map(2 * kPageSize);
  ASSERT_TRUE(walk(a, 2, kFault).ok());
  EXPECT_EQ(pfns_[0], pfn(kHmmPfnValid, zero_pfn()));
  EXPECT_EQ(pfns_[1], pfn(kHmmPfnValid, zero_pfn()));
  EXPECT_EQ(pte_at(mm_, a).kind(), PteKind::kZero);
}

// A write fault of a hole allocates writable pages.
TEST_F(HmmRangeFault, WriteFaultAllocatesWritablePages) {
  Vaddr a = map(2 * kPageSize);
  ASSERT_TRUE(walk(a, 2, kFaultWrite).ok());
  for (uint64_t i = 0; i < 2; i++) {
    Pte pte = pte_at(mm_, a + i * kPageSize);
    ASSERT_EQ(pte.kind(), PteKind::kPresent);
    EXPECT_TRUE(pte.write());
    EXPECT_EQ(pfns_[i], pfn(kHmmPfnValid | kHmmPfnWrite, pte.pfn()));
  }
}

// Present pages are reported as they are when nothing is asked.
TEST_F(HmmRangeFault, PresentPagesWithoutFault) {
  Vaddr a = map(2 * kPageSize);
  fill(a, 1, 5);
  EXPECT_EQ(must_read(mm_, a + kPageSize), 0u);  // zero page
  ASSERT_TRUE(walk(a, 2, 0).ok());
  EXPECT_EQ(pfns_[0], pfn(kHmmPfnValid | kHmmPfnWrite, pte_at(mm_, a).pfn()));
  EXPECT_EQ(pfns_[1], pfn(kHmmPfnValid, zero_pfn()));
}

// A write request on the zero page breaks COW; the CLEAR invalidation of
// that COW changes the sequence, so the call says -EBUSY and the next one
// finds the new page.
TEST_F(HmmRangeFault, WriteToZeroPageReturnsBusyThenTheNewPage) {
  Vaddr a = map(kPageSize);
  EXPECT_EQ(must_read(mm_, a), 0u);
  int before = sub_.calls;
  Status st = walk(a, 1, kFaultWrite);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), Errno::kBusy);
  EXPECT_EQ(sub_.calls, before + 1);
  Pte pte = pte_at(mm_, a);
  ASSERT_EQ(pte.kind(), PteKind::kPresent);
  ASSERT_TRUE(walk(a, 1, kFaultWrite).ok());
  EXPECT_EQ(pfns_[0], pfn(kHmmPfnValid | kHmmPfnWrite, pte.pfn()));
}

// An invalidation between read_begin and the call: -EBUSY at once.
TEST_F(HmmRangeFault, SequenceChangeReturnsBusy) {
  Vaddr a = map(kPageSize);
  fill(a, 1, 1);
  pfns_.resize(1);
  HmmRange range{.notifier = &sub_.notifier,
                 .notifier_seq = mmu_interval_read_begin(sub_.notifier),
                 .start = a,
                 .end = a + kPageSize,
                 .hmm_pfns = pfns_};
  ASSERT_TRUE(do_mprotect(mm_, a, kPageSize, kProtRead).ok());
  ReadLock guard(mm_.mmap_lock);
  Status st = hmm_range_fault(range);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), Errno::kBusy);
  EXPECT_TRUE(mmu_interval_read_retry(sub_.notifier, range.notifier_seq));
}

// No Vma: an error entry, or -EFAULT when a fault is needed.
TEST_F(HmmRangeFault, NoVmaIsErrorOrEfault) {
  Vaddr a = map(3 * kPageSize);
  ASSERT_TRUE(do_munmap(mm_, a + kPageSize, kPageSize).ok());
  ASSERT_TRUE(walk(a, 3, 0).ok());
  EXPECT_EQ(pfns_[0], HmmPfn{});
  EXPECT_EQ(pfns_[1], pfn(kHmmPfnError, Pfn{}));
  EXPECT_EQ(pfns_[2], HmmPfn{});
  Status st = walk(a, 3, kFault);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), Errno::kFault);
}

// A Vma without read access (PROT_NONE): error entries, -EFAULT to fault.
TEST_F(HmmRangeFault, ProtNoneIsErrorOrEfault) {
  Vaddr a = map(2 * kPageSize, kProtNone);
  ASSERT_TRUE(walk(a, 2, 0).ok());
  EXPECT_EQ(pfns_[0], pfn(kHmmPfnError, Pfn{}));
  EXPECT_EQ(pfns_[1], pfn(kHmmPfnError, Pfn{}));
  Status st = walk(a, 2, kFault);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), Errno::kFault);
}

// A write request in a read-only Vma: -EPERM, nothing faulted.
TEST_F(HmmRangeFault, WriteInReadOnlyVmaIsEperm) {
  Vaddr a = map(2 * kPageSize, kProtRead);
  Status st = walk(a, 2, kFaultWrite);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), Errno::kPerm);
  EXPECT_EQ(pte_at(mm_, a).kind(), PteKind::kNone);
  ASSERT_TRUE(walk(a, 2, kFault).ok());
  EXPECT_EQ(pfns_[0], pfn(kHmmPfnValid, zero_pfn()));
}

// Per-page requests: with default_flags 0 and the fault bit in the mask,
// pages that do not ask are not faulted; but a fault, once needed, covers
// the rest of the PMD's part of the range (hmm_vma_fault from the page to
// the end), so page 2 is faulted as a side effect of page 1.
TEST_F(HmmRangeFault, PerPageRequestThroughTheMask) {
  Vaddr a = map(4 * kPageSize);
  fill(a + 3 * kPageSize, 1, 8);  // a PTE table, pages 0-2 empty
  pfns_.assign(3, HmmPfn{});
  pfns_[1].flags = kFaultWrite;
  HmmRange range{.notifier = &sub_.notifier,
                 .notifier_seq = mmu_interval_read_begin(sub_.notifier),
                 .start = a,
                 .end = a + 3 * kPageSize,
                 .hmm_pfns = pfns_,
                 .default_flags = 0,
                 .pfn_flags_mask = kFaultWrite};
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(hmm_range_fault(range).ok());
  }
  EXPECT_EQ(pfns_[0], HmmPfn{});
  EXPECT_EQ(pfns_[1], pfn(kHmmPfnValid | kHmmPfnWrite, pte_at(mm_, a + kPageSize).pfn()));
  EXPECT_EQ(pfns_[2], pfn(kHmmPfnValid | kHmmPfnWrite, pte_at(mm_, a + 2 * kPageSize).pfn()));
  EXPECT_EQ(pte_at(mm_, a).kind(), PteKind::kNone);
}

// A PMD-mapped THP: every page valid and writable at map order 9.
TEST_F(HmmRangeFault, ThpPmdReportsOrderNine) {
  Vaddr a = map_thp(3);
  Pfn head = pmd_at(a).pfn();
  ASSERT_TRUE(walk(a + 10 * kPageSize, 4, kFault).ok());
  for (uint64_t i = 0; i < 4; i++) {
    EXPECT_EQ(pfns_[i], pfn(kHmmPfnValid | kHmmPfnWrite, head + 10 + i, 9));
  }
}

// The huge zero page: valid, read-only, order 9, flagged as the huge zero
// page.
TEST_F(HmmRangeFault, HugeZeroPmd) {
  Vaddr a = map(kPmdSize);
  ASSERT_TRUE(do_madvise(mm_, a, kPmdSize, Advice::kHugePage).ok());
  EXPECT_EQ(must_read(mm_, a), 0u);
  ASSERT_EQ(pmd_at(a).kind(), PmdKind::kHugeZero);
  ASSERT_TRUE(walk(a, 2, kFault).ok());
  EXPECT_EQ(pfns_[1], pfn(kHmmPfnValid | kHmmPfnHugeZero, zero_pfn(), 9));
}

// The caller's own device-private PTEs are reported as they are; another
// owner's read as 0, or are faulted back to RAM when asked.
TEST_F(HmmRangeFault, DevicePrivatePteOwnedOrNot) {
  Vaddr a = map(2 * kPageSize);
  fill(a, 2, 9);
  to_dev(a, 2);
  Pte dev = pte_at(mm_, a);
  ASSERT_EQ(dev.kind(), PteKind::kDevicePrivate);
  ASSERT_TRUE(walk(a, 2, kFaultWrite).ok());
  EXPECT_EQ(pfns_[0], pfn(kHmmPfnValid | kHmmPfnWrite, dev.pfn()));
  ASSERT_TRUE(walk(a, 2, 0, tdev_.owner()).ok());
  EXPECT_EQ(pfns_[0], HmmPfn{});
  EXPECT_EQ(pfns_[1], HmmPfn{});
  ASSERT_TRUE(walk_settled(a, 2, kFault, tdev_.owner()).ok());
  Pte back = pte_at(mm_, a);
  ASSERT_EQ(back.kind(), PteKind::kPresent);
  EXPECT_EQ(pfns_[0], pfn(kHmmPfnValid | kHmmPfnWrite, back.pfn()));
  expect_cpu(a, 2, 9);
}

// A device-private PMD: the owner gets all 512 pages at order 9; another
// owner reads errors, or faults it back when asked.
TEST_F(HmmRangeFault, DevicePrivatePmdOwnedOrNot) {
  Vaddr a = map_thp(4);
  to_dev(a, kNH);
  Pmd dev = pmd_at(a);
  ASSERT_EQ(dev.kind(), PmdKind::kDevicePrivate);
  ASSERT_TRUE(walk(a + 32 * kPageSize, 32, kFault).ok());
  for (uint64_t i = 0; i < 32; i++) {
    EXPECT_EQ(pfns_[i], pfn(kHmmPfnValid | kHmmPfnWrite, dev.pfn() + 32 + i, 9));
  }
  ASSERT_TRUE(walk(a, 3, 0, tdev_.owner()).ok());
  for (uint64_t i = 0; i < 3; i++) EXPECT_EQ(pfns_[i], pfn(kHmmPfnError, Pfn{}));
  ASSERT_TRUE(walk_settled(a, 3, kFault, tdev_.owner()).ok());
  Pmd back = pmd_at(a);
  ASSERT_EQ(back.kind(), PmdKind::kPresent);
  EXPECT_EQ(pfns_[2], pfn(kHmmPfnValid | kHmmPfnWrite, back.pfn() + 2, 9));
  expect_cpu(a, kNH, 4);
}

// A migration entry: 0 without a fault request.
TEST_F(HmmRangeFault, MigrationEntryWithoutFaultReadsZero) {
  Vaddr a = map(kPageSize);
  fill(a, 1, 2);
  std::vector<MigratePfn> src(1), dst(1);
  MigrateVma args = args_for(a, 1, kSelectSystem, src, dst);
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
  }
  ASSERT_EQ(pte_at(mm_, a).kind(), PteKind::kMigration);
  ASSERT_TRUE(walk(a, 1, 0).ok());
  EXPECT_EQ(pfns_[0], HmmPfn{});
  migrate_vma_finalize(world_, args);
  EXPECT_EQ(pte_at(mm_, a).kind(), PteKind::kPresent);
}

// A device-exclusive entry: 0 without a fault request; a fault restores
// the present PTE (and its invalidation makes the call say -EBUSY once).
TEST_F(HmmRangeFault, DeviceExclusiveReadsZeroOrIsRestored) {
  Vaddr a = map(kPageSize);
  fill(a, 1, 6);
  Pfn page;
  {
    ReadLock guard(mm_.mmap_lock);
    Result<Pfn> r = make_device_exclusive(mm_, a, nullptr);
    ASSERT_TRUE(r.ok());
    page = *r;
  }
  folio_unlock(folio_of(page));
  folio_put(folio_of(page));
  ASSERT_EQ(pte_at(mm_, a).kind(), PteKind::kDeviceExclusive);
  ASSERT_TRUE(walk(a, 1, 0).ok());
  EXPECT_EQ(pfns_[0], HmmPfn{});
  Status st = walk(a, 1, kFault);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), Errno::kBusy);
  ASSERT_TRUE(walk(a, 1, kFault).ok());
  EXPECT_EQ(pfns_[0], pfn(kHmmPfnValid | kHmmPfnWrite, page));
  EXPECT_EQ(pte_at(mm_, a).kind(), PteKind::kPresent);
}

}  // namespace
}  // namespace hmmsim::migrate_vma_test
