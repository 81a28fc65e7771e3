// THP faults, PMD operations and splits with exact counts.
#include <gtest/gtest.h>

#include "mm/deferred_split.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "mm/migrate.h"
#include "support/test_world.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

class Thp : public ::testing::Test {
 protected:
  Thp() : world_(config()) {}
  ~Thp() override { exit_all(world_); }

  static Config config() {
    Config c = small_config(64);
    c.thp = ThpPolicy::kMadvise;
    return c;
  }

  // A 2 MiB-aligned mapping of `pmds` PMDs with MADV_HUGEPAGE.
  Vaddr map_huge(MmStruct& mm, uint64_t pmds = 1) {
    Result<Vaddr> a = do_mmap(mm, Vaddr{0}, pmds * kPmdSize, kProtRead | kProtWrite,
                              MapFlags::kPrivate, kPmdSize);
    EXPECT_TRUE(a.ok());
    EXPECT_TRUE(do_madvise(mm, *a, pmds * kPmdSize, Advice::kHugePage).ok());
    return *a;
  }

  Folio thp_at(MmStruct& mm, Vaddr addr) {
    Pmd pmd = pmd_at(mm, addr);
    if (pmd.has_pfn()) return pfn_folio(world_.mem(), pmd.pfn());
    return folio_at(mm, addr);
  }

  uint64_t stat(VmEvent e) { return world_.stats().get(e); }

  World world_;
};

// A write fault in a MADV_HUGEPAGE range maps one order-9 folio by a PMD.
TEST_F(Thp, WriteFaultMapsPmd) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map_huge(mm);
  must_write(mm, buf + 12345 * 4, 7);
  Pmd pmd = pmd_at(mm, buf);
  ASSERT_EQ(pmd.kind(), PmdKind::kPresent);
  Folio f = thp_at(mm, buf);
  EXPECT_EQ(f.order().v, 9u);
  EXPECT_EQ(folio_ref_count(f), 1);
  EXPECT_EQ(folio_mapcount(f), 1);
  EXPECT_EQ(folio_entire_mapcount(f), 1);
  EXPECT_TRUE(PageAnonExclusive(f.head()));
  EXPECT_EQ(mm.anon_rss(), 512);
  EXPECT_EQ(mm.nr_ptes(), 1);  // the deposit
  EXPECT_EQ(stat(VmEvent::kThpFaultAlloc), 1u);
  EXPECT_EQ(must_read(mm, buf + 12345 * 4), 7u);
  EXPECT_EQ(must_read(mm, buf + 4), 0u);
  expect_clean(world_);
}

// Without MADV_HUGEPAGE under thp=madvise, faults stay 4 KiB.
TEST_F(Thp, MadvisePolicyNeedsAdvice) {
  MmStruct& mm = world_.create_mm();
  Result<Vaddr> a = do_mmap(mm, Vaddr{0}, kPmdSize, kProtRead | kProtWrite, MapFlags::kPrivate,
                            kPmdSize);
  ASSERT_TRUE(a.ok());
  must_write(mm, *a, 1);
  EXPECT_EQ(pmd_at(mm, *a).kind(), PmdKind::kTable);
  EXPECT_EQ(folio_at(mm, *a).order().v, 0u);
  expect_clean(world_);
}

// A read maps the huge zero page; a write then replaces it with a THP.
TEST_F(Thp, HugeZeroThenWrite) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map_huge(mm);
  EXPECT_EQ(must_read(mm, buf + 100), 0u);
  EXPECT_EQ(pmd_at(mm, buf).kind(), PmdKind::kHugeZero);
  EXPECT_EQ(mm.anon_rss(), 0);
  EXPECT_EQ(mm.nr_ptes(), 1);
  expect_clean(world_);
  must_write(mm, buf + 100, 5);
  EXPECT_EQ(pmd_at(mm, buf).kind(), PmdKind::kPresent);
  EXPECT_EQ(mm.anon_rss(), 512);
  EXPECT_EQ(mm.nr_ptes(), 1);
  EXPECT_EQ(must_read(mm, buf + 100), 5u);
  expect_clean(world_);
}

// Partial munmap splits the PMD; the folio becomes partially mapped and is
// queued; the shrinker splits it and frees the unmapped half.
TEST_F(Thp, PartialMunmapSplitsAndShrinkerFrees) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map_huge(mm);
  for (uint64_t i = 0; i < 512; i++) must_write(mm, buf + i * kPageSize, uint32_t(i + 1));
  Folio f = thp_at(mm, buf);
  uint64_t free_before = world_.mem().buddy().nr_free_pages();
  ASSERT_TRUE(do_munmap(mm, buf + kPmdSize / 2, kPmdSize / 2).ok());
  EXPECT_EQ(pmd_at(mm, buf).kind(), PmdKind::kTable);
  EXPECT_EQ(stat(VmEvent::kThpSplitPmd), 1u);
  EXPECT_EQ(f.order().v, 9u);
  EXPECT_EQ(folio_ref_count(f), 256);
  EXPECT_EQ(folio_mapcount(f), 256);
  EXPECT_EQ(folio_entire_mapcount(f), 0);
  EXPECT_TRUE(f.test(kPgPartiallyMapped));
  EXPECT_EQ(stat(VmEvent::kThpDeferredSplitPage), 1u);
  EXPECT_EQ(mm.anon_rss(), 256);
  expect_clean(world_);
  EXPECT_EQ(deferred_split_scan(world_, 100), 1u);
  EXPECT_EQ(stat(VmEvent::kThpSplitPage), 1u);
  EXPECT_EQ(folio_at(mm, buf).order().v, 0u);
  EXPECT_EQ(world_.mem().buddy().nr_free_pages(), free_before + 256);
  for (uint64_t i = 0; i < 256; i++) EXPECT_EQ(must_read(mm, buf + i * kPageSize), i + 1);
  expect_clean(world_);
}

// fork shares the PMD read-only; a write by the child splits its PMD and
// copies one 4 KiB page; the parent still maps the THP by its PMD.
TEST_F(Thp, ForkThenCow) {
  MmStruct& parent = world_.create_mm();
  Vaddr buf = map_huge(parent);
  for (uint64_t i = 0; i < 512; i++) must_write(parent, buf + i * kPageSize, uint32_t(i));
  Folio f = thp_at(parent, buf);
  MmStruct& child = dup_mm(parent);
  EXPECT_EQ(folio_ref_count(f), 2);
  EXPECT_EQ(folio_mapcount(f), 2);
  EXPECT_EQ(folio_entire_mapcount(f), 2);
  EXPECT_FALSE(PageAnonExclusive(f.head()));
  EXPECT_FALSE(pmd_at(parent, buf).write());
  EXPECT_FALSE(pmd_at(child, buf).write());
  EXPECT_EQ(child.anon_rss(), 512);
  expect_clean(world_);
  must_write(child, buf + 3 * kPageSize, 99);
  EXPECT_EQ(pmd_at(child, buf).kind(), PmdKind::kTable);
  EXPECT_EQ(pmd_at(parent, buf).kind(), PmdKind::kPresent);
  // Child: 511 PTEs of f plus one new page; parent: one PMD.
  EXPECT_EQ(folio_mapcount(f), 512);
  EXPECT_EQ(folio_ref_count(f), 512);
  EXPECT_EQ(must_read(parent, buf + 3 * kPageSize), 3u);
  EXPECT_EQ(must_read(child, buf + 3 * kPageSize), 99u);
  expect_clean(world_);
  // The parent's write: still shared with the child, so split and copy too.
  must_write(parent, buf + 5 * kPageSize, 77);
  EXPECT_EQ(pmd_at(parent, buf).kind(), PmdKind::kTable);
  EXPECT_EQ(must_read(child, buf + 5 * kPageSize), 5u);
  expect_clean(world_);
}

// After the child exits, the parent's PTE-mapped THP is exclusive again
// and a write reuses the page in place.
TEST_F(Thp, ReuseAfterChildExit) {
  MmStruct& parent = world_.create_mm();
  Vaddr buf = map_huge(parent);
  must_write(parent, buf, 1);
  MmStruct& child = dup_mm(parent);
  must_write(parent, buf + kPageSize, 2);  // split parent's PMD, copy one page
  Folio f = thp_at(child, buf);
  exit_mmap(child);
  expect_clean(world_);
  EXPECT_FALSE(folio_maybe_mapped_shared(f));
  Pfn before = pte_at(parent, buf + 7 * kPageSize).pfn();
  must_write(parent, buf + 7 * kPageSize, 3);
  EXPECT_EQ(pte_at(parent, buf + 7 * kPageSize).pfn(), before);
  expect_clean(world_);
}

// mprotect of part of a THP splits its PMD; of all of it changes it in place.
TEST_F(Thp, Mprotect) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map_huge(mm, 2);
  must_write(mm, buf, 1);
  must_write(mm, buf + kPmdSize, 2);
  ASSERT_TRUE(do_mprotect(mm, buf + kPmdSize, kPmdSize, kProtRead).ok());
  EXPECT_EQ(pmd_at(mm, buf + kPmdSize).kind(), PmdKind::kPresent);
  EXPECT_FALSE(pmd_at(mm, buf + kPmdSize).write());
  EXPECT_EQ(stat(VmEvent::kThpSplitPmd), 0u);
  ASSERT_TRUE(do_mprotect(mm, buf, kPageSize, kProtRead).ok());
  EXPECT_EQ(pmd_at(mm, buf).kind(), PmdKind::kTable);
  EXPECT_EQ(stat(VmEvent::kThpSplitPmd), 1u);
  EXPECT_FALSE(cpu_write_u32(mm, buf, 5).ok());
  must_write(mm, buf + kPageSize, 5);
  ASSERT_TRUE(do_mprotect(mm, buf + kPmdSize, kPmdSize, kProtRead | kProtWrite).ok());
  EXPECT_TRUE(pmd_at(mm, buf + kPmdSize).write());
  expect_clean(world_);
}

// split_folio meets an extra reference: -EAGAIN, and every mapping is back
// (as PTEs), data intact.
TEST_F(Thp, SplitFailsOnExtraReference) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map_huge(mm);
  for (uint64_t i = 0; i < 512; i++) must_write(mm, buf + i * kPageSize, uint32_t(i));
  Folio f = thp_at(mm, buf);
  folio_get(f);  // the caller's pin
  folio_get(f);  // an unexpected extra reference (say, a GUP pin)
  folio_lock(f);
  Status st = split_folio(world_, f);
  folio_unlock(f);
  EXPECT_EQ(st.error(), Errno::kAgain);
  EXPECT_EQ(f.order().v, 9u);
  EXPECT_EQ(folio_mapcount(f), 1);  // the can_split precheck failed: untouched
  EXPECT_EQ(pmd_at(mm, buf).kind(), PmdKind::kPresent);
  folio_put(f);
  folio_put(f);
  expect_clean(world_);
  for (uint64_t i = 0; i < 512; i++) EXPECT_EQ(must_read(mm, buf + i * kPageSize), i);
}

// A reference taken after the mappings became migration entries makes the
// freeze fail: -EAGAIN, the folio stays whole, and every mapping comes back
// as a PTE of the same folio with its data.
TEST_F(Thp, SplitFreezeFailsAndRemaps) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map_huge(mm);
  for (uint64_t i = 0; i < 512; i++) must_write(mm, buf + i * kPageSize, uint32_t(i));
  Folio f = thp_at(mm, buf);
  world_.fault_points().set_hook([&](std::string_view site) {
    if (site == "split_folio:before_freeze") {
      EXPECT_EQ(folio_mapcount(f), 0);
      EXPECT_EQ(pte_at(mm, buf).kind(), PteKind::kMigration);
      folio_get(f);  // a speculative reference appears
    }
  });
  folio_get(f);
  folio_lock(f);
  Status st = split_folio(world_, f);
  folio_unlock(f);
  world_.fault_points().clear_hook();
  EXPECT_EQ(st.error(), Errno::kAgain);
  EXPECT_EQ(f.order().v, 9u);
  EXPECT_EQ(pmd_at(mm, buf).kind(), PmdKind::kTable);
  EXPECT_EQ(folio_mapcount(f), 512);
  EXPECT_EQ(folio_ref_count(f), 514);
  EXPECT_EQ(stat(VmEvent::kThpSplitPageFailed), 1u);
  folio_put(f);
  folio_put(f);
  expect_clean(world_);
  for (uint64_t i = 0; i < 512; i++) EXPECT_EQ(must_read(mm, buf + i * kPageSize), i);
}

// migrate_page of a PMD-mapped THP moves it whole through a PMD migration
// entry; when no THP can be allocated it is split and moved page by page.
TEST_F(Thp, MigrateWholeAndSplitFallback) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map_huge(mm);
  for (uint64_t i = 0; i < 512; i++) must_write(mm, buf + i * kPageSize, uint32_t(i));
  Result<Pfn> moved = migrate_page(mm, buf + 3 * kPageSize);
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(pmd_at(mm, buf).kind(), PmdKind::kPresent);
  EXPECT_EQ(pmd_at(mm, buf).pfn() + 3, *moved);
  EXPECT_EQ(stat(VmEvent::kThpMigrationSuccess), 1u);
  expect_clean(world_);
  // Exhaust order-9 blocks, then migrate again.
  std::vector<Folio> hog;
  while (auto f = folio_alloc(world_.mem(), Order{kHPageOrder})) hog.push_back(*f);
  Result<Pfn> split_moved = migrate_page(mm, buf + 5 * kPageSize);
  ASSERT_TRUE(split_moved.ok()) << errno_name(split_moved.error());
  EXPECT_EQ(stat(VmEvent::kThpMigrationSplit), 1u);
  EXPECT_EQ(pmd_at(mm, buf).kind(), PmdKind::kTable);
  EXPECT_EQ(pte_at(mm, buf + 5 * kPageSize).pfn(), *split_moved);
  for (Folio f : hog) folio_put(f);
  expect_clean(world_);
  for (uint64_t i = 0; i < 512; i++) EXPECT_EQ(must_read(mm, buf + i * kPageSize), i);
}

}  // namespace
}  // namespace hmmsim

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

// I11: the model refuses to split a folio that is still mapped, whatever
// path asks: folio_split_unmapped() on a PMD-mapped THP aborts naming I11.
TEST(ThpDeathTest, SplittingAMappedFolioAborts) {
  EXPECT_DEATH(
      {
        World world(small_config(64));
        MmStruct& mm = world.create_mm();
        Vaddr a = do_mmap(mm, Vaddr{0}, kPmdSize, kProtRead | kProtWrite, MapFlags::kPrivate,
                          kPmdSize)
                      .value();
        (void)do_madvise(mm, a, kPmdSize, Advice::kHugePage);
        (void)cpu_write_u32(mm, a, 1);
        PmdTable* t = mm.pmd_table(a, MmStruct::Alloc::kNo);
        Folio f = pfn_folio(world.mem(), t->slot_quiesced(a.pmd_index()).entry.pfn());
        folio_get(f);
        folio_lock(f);
        (void)folio_split_unmapped(world, f);
      },
      "I11");
}

}  // namespace
}  // namespace hmmsim
