// The folio invariants of the checker (src/check/check_folio.cc): each test
// corrupts one counter or flag and expects the invariant it breaks.
#include <gtest/gtest.h>

#include "check/corruption.h"
#include "mm/migrate.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

// I1: a page whose mapcount says two mappings while one PTE maps it.
TEST_F(CheckerCatches, MapcountTooHigh) {
  Folio f = folio(1);
  f.head().mapcount.fetch_add(1);
  expect_caught(world_, "I1", hex(f.pfn().v));
  f.head().mapcount.fetch_sub(1);
  expect_clean(world_);
}

// I1: a page shared by fork whose mapcount forgot the child's mapping.
TEST_F(CheckerCatches, MapcountTooLowAfterFork) {
  fork();
  Folio f = folio(0);
  ASSERT_EQ(folio_mapcount(f), 2);
  f.head().mapcount.fetch_sub(1);
  expect_caught(world_, "I1", hex(f.pfn().v));
  f.head().mapcount.fetch_add(1);
  expect_clean(world_);
}

// I1: a PMD-mapped THP whose large mapcount counts a mapping that is not there.
TEST_F(CheckerCatches, LargeMapcountTooHigh) {
  Vaddr thp = map_thp();
  ASSERT_NE(thp.v, 0u);
  Folio f = folio_at_pmd(thp);
  f.head().large_mapcount.fetch_add(1);
  expect_caught(world_, "I1", hex(f.pfn().v));
  f.head().large_mapcount.fetch_sub(1);
  expect_clean(world_);
}

// I2: a THP whose entire mapcount says two PMDs while one maps it.
TEST_F(CheckerCatches, EntireMapcountTooHigh) {
  Vaddr thp = map_thp();
  ASSERT_NE(thp.v, 0u);
  Folio f = folio_at_pmd(thp);
  f.head().entire_mapcount.fetch_add(1);
  expect_caught(world_, "I2", hex(f.pfn().v));
  f.head().entire_mapcount.fetch_sub(1);
  expect_clean(world_);
}

// I2: a PMD-mapped THP whose nr_pages_mapped lost ENTIRELY_MAPPED.
TEST_F(CheckerCatches, NrPagesMappedWithoutEntirelyMapped) {
  Vaddr thp = map_thp();
  ASSERT_NE(thp.v, 0u);
  Folio f = folio_at_pmd(thp);
  f.head().nr_pages_mapped.fetch_sub(kEntirelyMapped);
  expect_caught(world_, "I2", hex(f.pfn().v));
  f.head().nr_pages_mapped.fetch_add(kEntirelyMapped);
  expect_clean(world_);
}

// I3: a page shared by fork that holds one reference for its two mappings.
TEST_F(CheckerCatches, RefcountBelowMapcount) {
  fork();
  Folio f = folio(2);
  ASSERT_EQ(folio_ref_count(f), 2);
  f.head().refcount.fetch_sub(1);
  expect_caught(world_, "I3", hex(f.pfn().v));
  f.head().refcount.fetch_add(1);
  expect_clean(world_);
}

// I3: a mapped page whose last reference was dropped without freeing it.
TEST_F(CheckerCatches, RefcountZeroWhileMapped) {
  Folio f = folio(0);
  f.head().refcount.fetch_sub(1);
  expect_caught(world_, "I3", hex(f.pfn().v));
  f.head().refcount.fetch_add(1);
  expect_clean(world_);
}

// I4: a migration entry written for a folio nobody has locked.
TEST_F(CheckerCatches, MigrationEntryForUnlockedFolio) {
  Folio f = folio(3);
  Pte old = set_pte(mm_, page(3), Pte::migration(f.pfn(), MigrationKind::kWrite));
  expect_caught(world_, "I4", hex(f.pfn().v));
  set_pte(mm_, page(3), old);
  expect_clean(world_);
}

// I4: a migrator that unlocks the folio before removing its migration entries.
TEST_F(CheckerCatches, MigrationEntryOutlivesFolioLock) {
  Folio f = folio(1);
  folio_get(f);  // the isolation reference
  folio_lock(f);
  ASSERT_TRUE(try_to_migrate(f));
  expect_clean_but_locked(world_);  // a valid mid-migration state
  folio_unlock(f);
  expect_caught(world_, "I4", hex(f.pfn().v));
  folio_lock(f);
  remove_migration_ptes(f, f, RmpFlags::kNone);
  folio_unlock(f);
  folio_put(f);
  expect_clean(world_);
  EXPECT_EQ(must_read(mm_, page(1)), 2u);
}

// I10: a writable PTE on a page that fork made shared.
TEST_F(CheckerCatches, WritablePteOnSharedPage) {
  fork();
  Folio f = folio(0);
  Pte old = set_pte(mm_, page(0), pte_at(mm_, page(0)).with_write(true));
  expect_caught(world_, "I10", hex(f.pfn().v));
  set_pte(mm_, page(0), old);
  expect_clean(world_);
}

// I10: a page marked anon-exclusive while two processes map it.
TEST_F(CheckerCatches, ExclusivePageMappedTwice) {
  fork();
  Folio f = folio(2);
  f.head().set(kPgAnonExclusive);
  expect_caught(world_, "I10", hex(f.pfn().v));
  f.head().clear(kPgAnonExclusive);
  expect_clean(world_);
}

// I10: a writable migration entry for a page another process also maps.
TEST_F(CheckerCatches, ExclusiveMigrationEntryNotAlone) {
  MmStruct& child = fork();
  Folio f = folio(1);
  folio_get(f);
  folio_lock(f);
  ASSERT_TRUE(try_to_migrate(f));
  expect_clean_but_locked(world_);
  Pte old = set_pte(child, page(1), Pte::migration(f.pfn(), MigrationKind::kWrite));
  expect_caught(world_, "I10", hex(f.pfn().v));
  set_pte(child, page(1), old);
  expect_clean_but_locked(world_);
  remove_migration_ptes(f, f, RmpFlags::kNone);
  folio_unlock(f);
  folio_put(f);
  expect_clean(world_);
}

// BUDDY: a frame taken from the buddy allocator and never made a folio.
TEST_F(CheckerCatches, LeakedFrame) {
  std::optional<Pfn> pfn = world_.mem().buddy().alloc_pages(Order{0});
  ASSERT_TRUE(pfn.has_value());
  expect_caught(world_, "BUDDY", hex(pfn->v));
  world_.mem().buddy().free_pages(*pfn, Order{0});
  expect_clean(world_);
}

// BUDDY: bytes left on a frame that is back in the buddy allocator.
TEST_F(CheckerCatches, DataOnFreeFrame) {
  std::optional<Folio> f = folio_alloc(world_.mem(), Order{0});
  ASSERT_TRUE(f.has_value());
  Pfn pfn = f->pfn();
  folio_put(*f);
  Page& frame = world_.mem().page(pfn);
  uint32_t junk = 0xdead;
  page_write(frame, 0, &junk, sizeof(junk));
  expect_caught(world_, "BUDDY", hex(pfn.v));
  frame.clear(kPgHasData);
  expect_clean(world_);
}

// BUDDY: a free frame that still carries a folio flag.
TEST_F(CheckerCatches, FlagOnFreeFrame) {
  std::optional<Folio> f = folio_alloc(world_.mem(), Order{0});
  ASSERT_TRUE(f.has_value());
  Pfn pfn = f->pfn();
  folio_put(*f);
  Page& frame = world_.mem().page(pfn);
  frame.set(kPgDirty);
  expect_caught(world_, "BUDDY", hex(pfn.v));
  frame.clear(kPgDirty);
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim
