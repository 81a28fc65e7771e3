#include "check/checker.h"

#include <gtest/gtest.h>

#include "check/corruption.h"
#include "mm/migrate.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

constexpr uint32_t kRw = kProtRead | kProtWrite;

// An empty world and a world with some mapped memory are clean.
TEST(Checker, CleanWorld) {
  World world(small_config());
  expect_clean(world);
  MmStruct& mm = world.create_mm();
  Result<Vaddr> buf = do_mmap(mm, Vaddr{0}, 4 * kPageSize, kProtRead | kProtWrite,
                              MapFlags::kPrivate);
  ASSERT_TRUE(buf.ok());
  must_write(mm, *buf, 1);
  expect_clean(world);
  exit_all(world);
}

// No false positives: THPs, the huge zero page, fork, COW, mprotect and
// munmap splitting a THP, MADV_DONTNEED and migration all leave a clean world.
TEST(Checker, ValidStatesAreClean) {
  World world(small_config());
  MmStruct& parent = world.create_mm();
  Result<Vaddr> buf = do_mmap(parent, Vaddr{0}, 4 * kPmdSize, kRw, MapFlags::kPrivate, kPmdSize);
  ASSERT_TRUE(buf.ok());
  Vaddr thp = *buf, zero = *buf + kPmdSize, small = *buf + 2 * kPmdSize;
  ASSERT_TRUE(do_madvise(parent, thp, 2 * kPmdSize, Advice::kHugePage).ok());
  must_write(parent, thp, 1);                       // a THP
  EXPECT_EQ(must_read(parent, zero), 0u);           // the huge zero page
  for (uint64_t i = 0; i < 8; i++) must_write(parent, small + i * kPageSize, uint32_t(i));
  EXPECT_EQ(pmd_at(parent, thp).kind(), PmdKind::kPresent);
  EXPECT_EQ(pmd_at(parent, zero).kind(), PmdKind::kHugeZero);
  expect_clean(world);

  MmStruct& child = dup_mm(parent);
  expect_clean(world);
  must_write(child, thp + kPageSize, 2);  // COW of a PMD-mapped THP
  must_write(child, small, 3);            // COW of a small page
  must_write(child, zero, 4);             // write to the huge zero page
  expect_clean(world);

  ASSERT_TRUE(do_mprotect(parent, thp + kPmdSize / 2, kPageSize, kProtRead).ok());
  expect_clean(world);
  ASSERT_TRUE(do_munmap(child, thp + kPmdSize - kPageSize, kPageSize).ok());
  expect_clean(world);
  ASSERT_TRUE(do_madvise(parent, small + kPageSize, kPageSize, Advice::kDontNeed).ok());
  expect_clean(world);
  Result<Pfn> moved = migrate_page(parent, small + 2 * kPageSize);
  EXPECT_TRUE(moved.ok());
  expect_clean(world);
  EXPECT_EQ(must_read(parent, small + 2 * kPageSize), 2u);
  EXPECT_EQ(must_read(parent, thp), 1u);
  EXPECT_EQ(must_read(child, thp + kPageSize), 2u);

  // The middle of a migration: every mapping is a migration entry and the
  // folio is locked, which only the lock check objects to.
  Folio f = folio_at(parent, small + 3 * kPageSize);
  ASSERT_TRUE(f);
  folio_get(f);
  folio_lock(f);
  ASSERT_TRUE(try_to_migrate(f));
  CheckReport mid = check_world(world);
  for (const Violation& v : mid.violations()) {
    EXPECT_EQ(v.invariant, "LOCK") << mid.to_string();
  }
  remove_migration_ptes(f, f, RmpFlags::kNone);
  folio_unlock(f);
  folio_put(f);
  expect_clean(world);

  exit_all(world);
  expect_clean(world);
}

// check_world_or_die returns on a clean world and aborts on a violation,
// printing the invariant, the checking function and a dump.
TEST(CheckerDeathTest, CheckWorldOrDieAbortsNamingInvariant) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  World world(small_config());
  MmStruct& mm = world.create_mm();
  Result<Vaddr> buf = do_mmap(mm, Vaddr{0}, kPageSize, kRw, MapFlags::kPrivate);
  ASSERT_TRUE(buf.ok());
  must_write(mm, *buf, 1);
  check_world_or_die(world);
  mm.add_anon_rss(1);
  EXPECT_DEATH(check_world_or_die(world),
               "model bug: invariant check failed.*invariant I8 violated \\(check_anon_rss\\): "
               "mm 1 MM_ANONPAGES is 2 but its entries map 1 pages.*nr_ptes=1 anon_rss=2");
  mm.add_anon_rss(-1);
  check_world_or_die(world);
  exit_all(world);
}

}  // namespace
}  // namespace hmmsim
