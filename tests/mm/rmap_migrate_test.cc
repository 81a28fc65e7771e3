// Tests of migration through migration entries (src/mm/migrate.cc,
// src/mm/rmap.cc; Linux mm/migrate.c, mm/rmap.c try_to_migrate_one and
// remove_migration_pte): migrate_page() end to end, its failures, and the
// two halves of the protocol driven by hand, including fork and munmap
// while migration entries are installed.
#include <gtest/gtest.h>

#include <vector>

#include "mm/migrate.h"
#include "mm/rmap.h"
#include "support/mm_fixture.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

constexpr uint64_t kP = kPageSize;

class Migrate : public MmTest {
 protected:
  // Expects pfn's frame to be back in the buddy allocator.
  void expect_frame_freed(Pfn pfn) {
    const Page& p = world_.mem().page(pfn);
    EXPECT_EQ(p.refcount.load(), 0);
    EXPECT_EQ(p.mapcount.load(), -1);
    EXPECT_FALSE(p.has_data());
    EXPECT_EQ(p.flags.load() & ~static_cast<uint32_t>(kPgBuddy), 0u);
  }
};

// Starts a migration of `folio` by hand: takes the reference the migrating
// thread would hold, locks the folio and installs migration entries.
void start_migration(Folio folio) {
  folio_get(folio);
  folio_lock(folio);
  EXPECT_TRUE(try_to_migrate(folio));
}

// Ends it: restores the mappings to `folio` itself, unlocks and drops the
// migrating thread's reference.
void abort_migration(Folio folio) {
  remove_migration_ptes(folio, folio, RmpFlags::kNone);
  folio_unlock(folio);
  folio_put(folio);
}

// An exclusive written page moves to a new frame, still exclusive and writable.
TEST_F(Migrate, ExclusiveWrittenPage) {
  Vaddr a = map(2);
  must_write(mm_, a + kP, 0xfeed);
  must_write(mm_, a + kP + 0x800, 0xbeef);
  Folio old = folio_at(mm_, a + kP);
  Pfn old_pfn = old.pfn();
  uint64_t free_before = nr_free_pages();
  Result<Pfn> moved = migrate_page(mm_, a + kP + 0x10);
  ASSERT_TRUE(moved.ok()) << errno_name(moved.error());
  expect_clean(world_);
  EXPECT_NE(*moved, old_pfn);
  Pte pte = pte_at(mm_, a + kP);
  EXPECT_EQ(pte.kind(), PteKind::kPresent);
  EXPECT_EQ(pte.pfn(), *moved);
  EXPECT_TRUE(pte.write());
  EXPECT_TRUE(pte.dirty());
  EXPECT_TRUE(pte.young());
  Folio folio = folio_at(mm_, a + kP);
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(folio_mapcount(folio), 1);
  EXPECT_TRUE(PageAnonExclusive(folio.head()));
  EXPECT_TRUE(folio_test_anon(folio));
  EXPECT_TRUE(folio.test(kPgLru));
  EXPECT_TRUE(folio.test(kPgDirty));
  EXPECT_FALSE(folio_test_locked(folio));
  EXPECT_EQ(folio.head().mapping, vma_at(mm_, a)->anon_vma());
  EXPECT_EQ(folio.head().index, (a + kP).page_index());
  expect_frame_freed(old_pfn);
  EXPECT_EQ(nr_free_pages(), free_before);
  EXPECT_EQ(mm_.anon_rss(), 1);
  EXPECT_EQ(must_read(mm_, a + kP), 0xfeedu);
  EXPECT_EQ(must_read(mm_, a + kP + 0x800), 0xbeefu);
  must_write(mm_, a + kP, 1);
  EXPECT_EQ(pte_at(mm_, a + kP).pfn(), *moved) << "writable: no fault, no copy";
  expect_clean(world_);
}

// A page shared after fork moves in both processes, read-only in both.
TEST_F(Migrate, SharedAfterForkMovesBothMappings) {
  Vaddr a = map(1);
  must_write(mm_, a, 77);
  MmStruct& child = dup_mm(mm_);
  Pfn old_pfn = pte_at(mm_, a).pfn();
  Result<Pfn> moved = migrate_page(child, a);
  ASSERT_TRUE(moved.ok()) << errno_name(moved.error());
  expect_clean(world_);
  EXPECT_EQ(pte_at(mm_, a).pfn(), *moved);
  EXPECT_EQ(pte_at(child, a).pfn(), *moved);
  EXPECT_FALSE(pte_at(mm_, a).write());
  EXPECT_FALSE(pte_at(child, a).write());
  Folio folio = folio_at(mm_, a);
  EXPECT_EQ(folio_ref_count(folio), 2);
  EXPECT_EQ(folio_mapcount(folio), 2);
  EXPECT_FALSE(PageAnonExclusive(folio.head()));
  EXPECT_EQ(folio.head().mapping, vma_at(mm_, a)->anon_vma());
  expect_frame_freed(old_pfn);
  EXPECT_EQ(must_read(mm_, a), 77u);
  EXPECT_EQ(must_read(child, a), 77u);
  // Writes still copy on write.
  must_write(child, a, 78);
  EXPECT_NE(pte_at(child, a).pfn(), *moved);
  EXPECT_EQ(must_read(mm_, a), 77u);
  expect_clean(world_);
}

// A read-only exclusive page comes back exclusive (READ_EXCLUSIVE entry).
TEST_F(Migrate, ReadOnlyExclusivePageStaysExclusive) {
  Vaddr a = map(1);
  must_write(mm_, a, 9);
  ASSERT_TRUE(do_mprotect(mm_, a, kP, kProtRead).ok());
  Result<Pfn> moved = migrate_page(mm_, a);
  ASSERT_TRUE(moved.ok());
  expect_clean(world_);
  Folio folio = folio_at(mm_, a);
  EXPECT_EQ(folio.pfn(), *moved);
  EXPECT_TRUE(PageAnonExclusive(folio.head()));
  EXPECT_FALSE(pte_at(mm_, a).write());
  ASSERT_TRUE(do_mprotect(mm_, a, kP, kProtRw).ok());
  EXPECT_TRUE(pte_at(mm_, a).write());
  must_write(mm_, a, 10);
  EXPECT_EQ(pte_at(mm_, a).pfn(), *moved);
  expect_clean(world_);
}

// Nothing to migrate (untouched page or zero page) gives -ENOENT.
TEST_F(Migrate, UntouchedOrZeroPageIsEnoent) {
  Vaddr a = map(3);
  EXPECT_EQ(migrate_page(mm_, a).error(), Errno::kNoEnt);
  EXPECT_EQ(must_read(mm_, a + kP), 0u);
  EXPECT_EQ(migrate_page(mm_, a + kP).error(), Errno::kNoEnt);
  EXPECT_EQ(migrate_page(mm_, a + 2 * kP).error(), Errno::kNoEnt);
  EXPECT_EQ(pte_at(mm_, a + kP).kind(), PteKind::kZero);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_);
  expect_clean(world_);
}

// An address outside every Vma gives -EFAULT.
TEST_F(Migrate, NoVmaIsEfault) {
  Vaddr a = map(1);
  must_write(mm_, a, 1);
  EXPECT_EQ(migrate_page(mm_, a + kP).error(), Errno::kFault);
  EXPECT_EQ(migrate_page(mm_, Vaddr{0x1000}).error(), Errno::kFault);
  EXPECT_EQ(must_read(mm_, a), 1u);
  expect_clean(world_);
}

// A folio not on the LRU (isolated by someone else) gives -EBUSY and stays as it was.
TEST_F(Migrate, NotOnLruIsEbusy) {
  Vaddr a = map(1);
  must_write(mm_, a, 3);
  Folio folio = folio_at(mm_, a);
  folio.head().clear(kPgLru);
  EXPECT_EQ(migrate_page(mm_, a).error(), Errno::kBusy);
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(folio_mapcount(folio), 1);
  EXPECT_FALSE(folio.test(kPgLru));
  EXPECT_EQ(pte_at(mm_, a).pfn(), folio.pfn());
  EXPECT_TRUE(pte_at(mm_, a).write());
  expect_clean(world_);
  folio.head().set(kPgLru);
  EXPECT_TRUE(migrate_page(mm_, a).ok());
  EXPECT_EQ(must_read(mm_, a), 3u);
  expect_clean(world_);
}

// An extra reference gives -EAGAIN after the unmap; the mapping is restored intact.
TEST_F(Migrate, ExtraReferenceIsEagain) {
  Vaddr a = map(1);
  must_write(mm_, a, 0x1234);
  Folio folio = folio_at(mm_, a);
  folio_get(folio);
  uint64_t free_before = nr_free_pages();
  EXPECT_EQ(migrate_page(mm_, a).error(), Errno::kAgain);
  expect_clean(world_);
  Pte pte = pte_at(mm_, a);
  EXPECT_EQ(pte.kind(), PteKind::kPresent);
  EXPECT_EQ(pte.pfn(), folio.pfn());
  EXPECT_TRUE(pte.write());
  EXPECT_TRUE(pte.dirty());
  EXPECT_TRUE(PageAnonExclusive(folio.head()));
  EXPECT_EQ(folio_ref_count(folio), 2);
  EXPECT_EQ(folio_mapcount(folio), 1);
  EXPECT_TRUE(folio.test(kPgLru));
  EXPECT_FALSE(folio_test_locked(folio));
  EXPECT_EQ(nr_free_pages(), free_before) << "the destination was freed";
  EXPECT_EQ(must_read(mm_, a), 0x1234u);
  folio_put(folio);
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_TRUE(migrate_page(mm_, a).ok());
  EXPECT_EQ(must_read(mm_, a), 0x1234u);
  expect_clean(world_);
}

// Without a free frame -ENOMEM; the folio stays mapped, on the LRU, migratable later.
TEST_F(Migrate, NoFreeFrameIsEnomem) {
  Vaddr a = map(1);
  must_write(mm_, a, 5);
  Folio folio = folio_at(mm_, a);
  std::vector<Folio> hog;
  while (std::optional<Folio> f = folio_alloc(world_.mem(), Order{0})) hog.push_back(*f);
  EXPECT_EQ(migrate_page(mm_, a).error(), Errno::kNoMem);
  expect_clean(world_);
  EXPECT_EQ(pte_at(mm_, a).pfn(), folio.pfn());
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_TRUE(folio.test(kPgLru));
  folio_put(hog.back());
  hog.pop_back();
  Result<Pfn> moved = migrate_page(mm_, a);
  EXPECT_TRUE(moved.ok()) << errno_name(moved.error());
  EXPECT_EQ(must_read(mm_, a), 5u);
  for (Folio f : hog) folio_put(f);
  expect_clean(world_);
}

class TryToMigrate : public Migrate {};

// try_to_migrate leaves a WRITE entry (mapcount 0, ref dropped); restore maps it back.
TEST_F(TryToMigrate, WriteEntryAndRestore) {
  Vaddr a = map(1);
  must_write(mm_, a, 21);
  Folio folio = folio_at(mm_, a);
  start_migration(folio);
  Pte entry = pte_at(mm_, a);
  EXPECT_EQ(entry.kind(), PteKind::kMigration);
  EXPECT_EQ(entry.migration_kind(), MigrationKind::kWrite);
  EXPECT_EQ(entry.pfn(), folio.pfn());
  EXPECT_TRUE(entry.dirty());
  EXPECT_TRUE(entry.young());
  EXPECT_EQ(folio_mapcount(folio), 0);
  EXPECT_EQ(folio_ref_count(folio), 1) << "only the migrating thread's";
  EXPECT_FALSE(PageAnonExclusive(folio.head()));
  EXPECT_TRUE(folio.test(kPgDirty));
  EXPECT_EQ(mm_.anon_rss(), 1) << "migration entries count in rss";
  EXPECT_EQ(folio_at(mm_, a), folio);
  expect_clean_but_locked(world_);

  remove_migration_ptes(folio, folio, RmpFlags::kNone);
  Pte pte = pte_at(mm_, a);
  EXPECT_EQ(pte.kind(), PteKind::kPresent);
  EXPECT_EQ(pte.pfn(), folio.pfn());
  EXPECT_TRUE(pte.write());
  EXPECT_TRUE(pte.dirty());
  EXPECT_EQ(folio_mapcount(folio), 1);
  EXPECT_EQ(folio_ref_count(folio), 2);
  EXPECT_TRUE(PageAnonExclusive(folio.head()));
  folio_unlock(folio);
  folio_put(folio);
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(must_read(mm_, a), 21u);
  expect_clean(world_);
}

// A page shared after fork gets READ entries in both processes and comes back shared.
TEST_F(TryToMigrate, SharedPageGetsReadEntries) {
  Vaddr a = map(1);
  must_write(mm_, a, 4);
  MmStruct& child = dup_mm(mm_);
  Folio folio = folio_at(mm_, a);
  start_migration(folio);
  EXPECT_EQ(pte_at(mm_, a).migration_kind(), MigrationKind::kRead);
  EXPECT_EQ(pte_at(child, a).migration_kind(), MigrationKind::kRead);
  EXPECT_EQ(folio_mapcount(folio), 0);
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(child.anon_rss(), 1);
  expect_clean_but_locked(world_);
  abort_migration(folio);
  EXPECT_EQ(folio_mapcount(folio), 2);
  EXPECT_EQ(folio_ref_count(folio), 2);
  EXPECT_FALSE(PageAnonExclusive(folio.head()));
  EXPECT_FALSE(pte_at(mm_, a).write());
  EXPECT_FALSE(pte_at(child, a).write());
  EXPECT_EQ(must_read(child, a), 4u);
  expect_clean(world_);
}

// A read-only exclusive page gets a READ_EXCLUSIVE entry and comes back exclusive.
TEST_F(TryToMigrate, ReadOnlyExclusiveGetsReadExclusiveEntry) {
  Vaddr a = map(1);
  must_write(mm_, a, 4);
  ASSERT_TRUE(do_mprotect(mm_, a, kP, kProtRead).ok());
  Folio folio = folio_at(mm_, a);
  start_migration(folio);
  EXPECT_EQ(pte_at(mm_, a).migration_kind(), MigrationKind::kReadExclusive);
  EXPECT_FALSE(PageAnonExclusive(folio.head()));
  expect_clean_but_locked(world_);
  abort_migration(folio);
  EXPECT_TRUE(PageAnonExclusive(folio.head()));
  EXPECT_FALSE(pte_at(mm_, a).write());
  EXPECT_EQ(folio_ref_count(folio), 1);
  expect_clean(world_);
}

// fork downgrades a WRITE migration entry to READ in parent and child alike.
TEST_F(TryToMigrate, ForkDowngradesMigrationEntryToRead) {
  Vaddr a = map(2);
  must_write(mm_, a, 31);
  Folio folio = folio_at(mm_, a);
  start_migration(folio);
  ASSERT_EQ(pte_at(mm_, a).migration_kind(), MigrationKind::kWrite);
  MmStruct& child = dup_mm(mm_);
  expect_clean_but_locked(world_);
  Pte parent_entry = pte_at(mm_, a);
  Pte child_entry = pte_at(child, a);
  EXPECT_EQ(parent_entry.kind(), PteKind::kMigration);
  EXPECT_EQ(parent_entry.migration_kind(), MigrationKind::kRead);
  EXPECT_EQ(child_entry.kind(), PteKind::kMigration);
  EXPECT_EQ(child_entry.migration_kind(), MigrationKind::kRead);
  EXPECT_EQ(child_entry.pfn(), folio.pfn());
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(folio_mapcount(folio), 0);
  EXPECT_EQ(child.anon_rss(), 1);
  abort_migration(folio);
  expect_clean(world_);
  EXPECT_EQ(folio_mapcount(folio), 2);
  EXPECT_EQ(folio_ref_count(folio), 2);
  EXPECT_FALSE(PageAnonExclusive(folio.head()));
  EXPECT_FALSE(pte_at(mm_, a).write());
  EXPECT_FALSE(pte_at(child, a).write());
  EXPECT_EQ(must_read(child, a), 31u);
  must_write(mm_, a, 32);
  EXPECT_NE(pte_at(mm_, a).pfn(), folio.pfn()) << "shared: the write copies";
  EXPECT_EQ(must_read(child, a), 31u);
  expect_clean(world_);
}

// munmap of a migration entry drops only rss; the migrator's put frees the folio.
TEST_F(TryToMigrate, MunmapOfMigrationEntry) {
  Vaddr a = map(2);
  must_write(mm_, a, 1);
  must_write(mm_, a + kP, 2);
  Folio folio = folio_at(mm_, a);
  start_migration(folio);
  ASSERT_TRUE(do_munmap(mm_, a, kP).ok());
  EXPECT_EQ(mm_.anon_rss(), 1);
  EXPECT_EQ(folio_ref_count(folio), 1);
  expect_clean_but_locked(world_);
  abort_migration(folio);
  expect_frame_freed(folio.pfn());
  EXPECT_EQ(nr_free_pages(), initial_free_pages_ - 1);
  EXPECT_EQ(must_read(mm_, a + kP), 2u);
  expect_clean(world_);
}

// remove_migration_ptes(src, dst) maps the destination wherever the source was.
TEST_F(TryToMigrate, RestoreToAnotherFolio) {
  Vaddr a = map(1);
  must_write(mm_, a, 0xaa);
  MmStruct& child = dup_mm(mm_);
  Folio src = folio_at(mm_, a);
  std::optional<Folio> dst = folio_alloc(world_.mem(), Order{0});
  ASSERT_TRUE(dst.has_value());
  folio_lock(*dst);
  start_migration(src);
  page_copy(dst->head(), src.head());
  dst->head().mapping = src.head().mapping;
  dst->head().index = src.head().index;
  dst->head().set(kPgAnon);
  remove_migration_ptes(src, *dst, RmpFlags::kNone);
  EXPECT_EQ(pte_at(mm_, a).pfn(), dst->pfn());
  EXPECT_EQ(pte_at(child, a).pfn(), dst->pfn());
  EXPECT_EQ(folio_mapcount(*dst), 2);
  EXPECT_EQ(folio_ref_count(*dst), 3) << "two mappings and the allocation";
  EXPECT_EQ(folio_mapcount(src), 0);
  folio_unlock(src);
  folio_put(src);
  folio_unlock(*dst);
  folio_put(*dst);
  expect_frame_freed(src.pfn());
  EXPECT_EQ(must_read(child, a), 0xaau);
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim
