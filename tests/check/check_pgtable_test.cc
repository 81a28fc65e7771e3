// The page-table invariants of the checker (src/check/check_pgtable.cc):
// each test corrupts one entry, table or counter and expects the invariant
// it breaks.
#include <gtest/gtest.h>

#include "check/corruption.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

// PT: an entry in a page table where no Vma is.
TEST_F(CheckerCatches, EntryOutsideVma) {
  Vaddr outside = page(kPages);  // same PTE table, just past the Vma
  ASSERT_EQ(vma_at(mm_, outside), nullptr);
  set_pte(mm_, outside, Pte::zero_page());
  expect_caught(world_, "PT", hex(outside.v));
  set_pte(mm_, outside, Pte::none());
  expect_clean(world_);
}

// PT: a PMD leaf whose Vma was cut short without splitting it.
TEST_F(CheckerCatches, PmdLeafPastVmaEnd) {
  Vaddr thp = map_thp();
  ASSERT_NE(thp.v, 0u);
  Vma& v = *vma_at(mm_, thp);
  Vaddr start = v.start(), end = v.end();
  uint64_t pgoff = v.pgoff();
  ASSERT_GE(end, thp + kPmdSize);
  v.set_range(start, thp + kPmdSize / 2, pgoff);
  expect_caught(world_, "PT", hex(thp.v));
  v.set_range(start, end, pgoff);
  expect_clean(world_);
}

// PT: an entry that names a frame back in the buddy allocator.
TEST_F(CheckerCatches, EntryNamesFreeFrame) {
  std::optional<Folio> f = folio_alloc(world_.mem(), Order{0});
  ASSERT_TRUE(f.has_value());
  Pfn free_pfn = f->pfn();
  folio_put(*f);
  Pte old = set_pte(mm_, page(0), Pte::present(free_pfn, EntryBits{.write = true}));
  expect_caught(world_, "PT", hex(free_pfn.v));
  set_pte(mm_, page(0), old);
  expect_clean(world_);
}

// PT: an entry that names a pfn no memory range holds.
TEST_F(CheckerCatches, EntryNamesPfnOutsideMemory) {
  Pfn bogus{uint64_t{1} << 30};
  ASSERT_EQ(world_.mem().range_of(bogus), nullptr);
  Pte old = set_pte(mm_, page(2), Pte::present(bogus, EntryBits{}));
  expect_caught(world_, "PT", hex(bogus.v));
  set_pte(mm_, page(2), old);
  expect_clean(world_);
}

// I5: a present PTE that lets the CPU map a device-private page.
TEST_F(CheckerCatches, PresentPteToDevicePrivate) {
  MemRange& dev = world_.mem().add_range(MemKind::kDevicePrivate, kHPageNr);
  Folio dev_folio = folio_prep_new(dev, dev.base(), Order{0});  // held by its driver
  expect_clean(world_);
  Pte old = set_pte(mm_, page(1), Pte::present(dev_folio.pfn(), EntryBits{}));
  expect_caught(world_, "I5", hex(dev_folio.pfn().v));
  set_pte(mm_, page(1), old);
  expect_clean(world_);
  EXPECT_TRUE(folio_ref_freeze(dev_folio, 1));  // the driver frees it
}

// I6: a device-private PMD softleaf that names RAM.
TEST_F(CheckerCatches, DevicePrivatePmdNamesRam) {
  Vaddr thp = map_thp();
  ASSERT_NE(thp.v, 0u);
  Pmd old = pmd_at(mm_, thp);
  set_pmd(mm_, thp, Pmd::device_private(old.pfn(), /*write=*/true));
  expect_caught(world_, "I6", hex(old.pfn().v));
  set_pmd(mm_, thp, old);
  expect_clean(world_);
}

// I2: a PMD leaf that names a tail page of its THP.
TEST_F(CheckerCatches, PmdMapsTailPage) {
  Vaddr thp = map_thp();
  ASSERT_NE(thp.v, 0u);
  Pmd old = pmd_at(mm_, thp);
  set_pmd(mm_, thp, Pmd::present(old.pfn() + 1, old.bits()));
  expect_caught(world_, "I2", hex(old.pfn().v + 1));
  set_pmd(mm_, thp, old);
  expect_clean(world_);
}

// I2 and I7: a bogus PMD leaf naming a small folio, with no deposited table.
TEST_F(CheckerCatches, BogusPmdLeaf) {
  Result<Vaddr> big = do_mmap(mm_, Vaddr{0}, 2 * kPmdSize, kProtRead | kProtWrite,
                              MapFlags::kPrivate, 2 * kPmdSize);
  ASSERT_TRUE(big.ok());
  must_write(mm_, *big, 1);  // a PTE table for the first 2 MiB only
  Vaddr slot = *big + kPmdSize;
  ASSERT_EQ(pmd_at(mm_, slot).kind(), PmdKind::kNone);
  Pfn small = folio_at(mm_, *big).pfn();
  set_pmd(mm_, slot, Pmd::present(small, EntryBits{}));
  CheckReport report = expect_caught(world_, "I2", hex(small.v));
  EXPECT_TRUE(report.has("I7")) << report.to_string();
  set_pmd(mm_, slot, Pmd::none());
  expect_clean(world_);
}

// I7: mm->nr_ptes counting a PTE table that does not exist.
TEST_F(CheckerCatches, NrPtesTooHigh) {
  mm_.add_nr_ptes(1);
  expect_caught(world_, "I7", fmt::format("mm {} nr_ptes", mm_.pid()));
  mm_.add_nr_ptes(-1);
  expect_clean(world_);
}

// I7: a THP's PMD leaf that lost its deposited page table.
TEST_F(CheckerCatches, PmdLeafWithoutDeposit) {
  Vaddr thp = map_thp();
  ASSERT_NE(thp.v, 0u);
  std::unique_ptr<PteTable> deposit;
  swap_deposit(mm_, thp, deposit);
  ASSERT_NE(deposit, nullptr);
  expect_caught(world_, "I7", hex(thp.v));
  swap_deposit(mm_, thp, deposit);
  expect_clean(world_);
}

// I8: MM_ANONPAGES counting a page no entry maps.
TEST_F(CheckerCatches, AnonRssTooHigh) {
  mm_.add_anon_rss(1);
  expect_caught(world_, "I8", fmt::format("mm {} MM_ANONPAGES", mm_.pid()));
  mm_.add_anon_rss(-1);
  expect_clean(world_);
}

// I8: a PMD-mapped THP that MM_ANONPAGES counts as one page, not 512.
TEST_F(CheckerCatches, AnonRssCountsThpOnce) {
  Vaddr thp = map_thp();
  ASSERT_NE(thp.v, 0u);
  mm_.add_anon_rss(1 - int64_t{kHPageNr});
  expect_caught(world_, "I8", fmt::format("mm {} MM_ANONPAGES", mm_.pid()));
  mm_.add_anon_rss(int64_t{kHPageNr} - 1);
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim
