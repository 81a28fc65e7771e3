// Tests of madvise (src/mm/madvise.cc; Linux mm/madvise.c): MADV_DONTNEED
// zaps pages, MADV_HUGEPAGE/NOHUGEPAGE change Vma flags with split and
// merge, and holes in the range give -ENOMEM after the advice was applied
// to the mapped parts.
#include <gtest/gtest.h>

#include "support/mm_fixture.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

constexpr uint64_t kP = kPageSize;

class Madvise : public MmTest {
 protected:
  Status madvise(Vaddr addr, uint64_t pages, Advice advice) {
    return do_madvise(mm_, addr, pages * kP, advice);
  }
};

// MADV_DONTNEED frees the pages and lowers rss; they read back as zero, the Vma stays.
TEST_F(Madvise, DontNeedDropsPages) {
  Vaddr a = map(8);
  write_pattern(mm_, a, 8, 100);
  ASSERT_EQ(mm_.anon_rss(), 8);
  ASSERT_TRUE(madvise(a + 2 * kP, 4, Advice::kDontNeed).ok());
  expect_clean(world_);
  EXPECT_EQ(mm_.anon_rss(), 4);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_ - 4);
  for (uint64_t i = 2; i < 6; i++) EXPECT_EQ(pte_at(mm_, a + i * kP).kind(), PteKind::kNone) << i;
  EXPECT_EQ(nr_vmas(mm_), 1u);
  EXPECT_EQ(mm_.nr_ptes(), 1);
  EXPECT_NE(vma_at(mm_, a)->anon_vma(), nullptr);
  for (uint64_t i = 2; i < 6; i++) EXPECT_EQ(must_read(mm_, a + i * kP), 0u) << i;
  EXPECT_EQ(pte_at(mm_, a + 2 * kP).kind(), PteKind::kZero);
  EXPECT_EQ(mm_.anon_rss(), 4);
  expect_pattern(mm_, a, 2, 100);
  expect_pattern(mm_, a + 6 * kP, 2, 106);
  expect_clean(world_);
  // Writing again allocates fresh, zero-filled pages.
  must_write(mm_, a + 3 * kP + 8, 7);
  EXPECT_EQ(must_read(mm_, a + 3 * kP), 0u);
  EXPECT_EQ(mm_.anon_rss(), 5);
  expect_clean(world_);
}

// MADV_DONTNEED over two neighbouring Vmas zaps both and keeps them.
TEST_F(Madvise, DontNeedAcrossVmas) {
  Vaddr base{0x600000000000};
  map_fixed(base, 2);
  map_fixed(base + 2 * kP, 2, kProtRead | kProtWrite | kProtExec);
  write_pattern(mm_, base, 4, 1);
  ASSERT_TRUE(madvise(base + kP, 2, Advice::kDontNeed).ok());
  EXPECT_EQ(nr_vmas(mm_), 2u);
  EXPECT_EQ(mm_.anon_rss(), 2);
  EXPECT_EQ(must_read(mm_, base), 1u);
  EXPECT_EQ(must_read(mm_, base + kP), 0u);
  EXPECT_EQ(must_read(mm_, base + 2 * kP), 0u);
  EXPECT_EQ(must_read(mm_, base + 3 * kP), 4u);
  expect_clean(world_);
}

// MADV_DONTNEED also removes zero-page entries, which count in no rss.
TEST_F(Madvise, DontNeedRemovesZeroPageEntries) {
  Vaddr a = map(2);
  EXPECT_EQ(must_read(mm_, a), 0u);
  EXPECT_EQ(must_read(mm_, a + kP), 0u);
  ASSERT_TRUE(madvise(a, 2, Advice::kDontNeed).ok());
  EXPECT_EQ(pte_at(mm_, a).kind(), PteKind::kNone);
  EXPECT_EQ(pte_at(mm_, a + kP).kind(), PteKind::kNone);
  EXPECT_EQ(mm_.anon_rss(), 0);
  expect_clean(world_);
}

// MADV_DONTNEED of a page shared with a child drops only this process's mapping.
TEST_F(Madvise, DontNeedOfSharedPageKeepsOtherMapping) {
  Vaddr a = map(1);
  must_write(mm_, a, 42);
  MmStruct& child = dup_mm(mm_);
  Folio folio = folio_at(child, a);
  ASSERT_EQ(folio_ref_count(folio), 2);
  ASSERT_TRUE(madvise(a, 1, Advice::kDontNeed).ok());
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(folio_mapcount(folio), 1);
  EXPECT_EQ(mm_.anon_rss(), 0);
  EXPECT_EQ(child.anon_rss(), 1);
  EXPECT_EQ(must_read(mm_, a), 0u);
  EXPECT_EQ(must_read(child, a), 42u);
  expect_clean(world_);
}

// MADV_HUGEPAGE/NOHUGEPAGE over part of a Vma split it and set the flag on the part.
TEST_F(Madvise, HugePageFlagsSplit) {
  Vaddr a = map(8);
  write_pattern(mm_, a, 8, 0);
  ASSERT_TRUE(madvise(a + 2 * kP, 4, Advice::kHugePage).ok());
  expect_clean(world_);
  ASSERT_EQ(nr_vmas(mm_), 3u);
  Vma* mid = vma_at(mm_, a + 2 * kP);
  EXPECT_EQ(mid->start(), a + 2 * kP);
  EXPECT_EQ(mid->end(), a + 6 * kP);
  EXPECT_TRUE(mid->has(kVmHugepage));
  EXPECT_FALSE(mid->has(kVmNoHugepage));
  EXPECT_FALSE(vma_at(mm_, a)->has(kVmHugepage));
  EXPECT_FALSE(vma_at(mm_, a + 6 * kP)->has(kVmHugepage));
  ASSERT_TRUE(madvise(a + 2 * kP, 4, Advice::kNoHugePage).ok());
  ASSERT_EQ(nr_vmas(mm_), 3u);
  mid = vma_at(mm_, a + 2 * kP);
  EXPECT_FALSE(mid->has(kVmHugepage));
  EXPECT_TRUE(mid->has(kVmNoHugepage));
  EXPECT_EQ(mm_.anon_rss(), 8);
  expect_pattern(mm_, a, 8, 0);
  expect_clean(world_);
}

// Advice the Vma already has splits nothing; advice equalising neighbours merges them.
TEST_F(Madvise, HugePageFlagsMerge) {
  Vaddr a = map(8);
  write_pattern(mm_, a, 8, 0);
  ASSERT_TRUE(madvise(a, 8, Advice::kHugePage).ok());
  ASSERT_EQ(nr_vmas(mm_), 1u);
  EXPECT_TRUE(vma_at(mm_, a)->has(kVmHugepage));
  ASSERT_TRUE(madvise(a + 2 * kP, 2, Advice::kHugePage).ok());
  EXPECT_EQ(nr_vmas(mm_), 1u);
  ASSERT_TRUE(madvise(a + 2 * kP, 2, Advice::kNoHugePage).ok());
  EXPECT_EQ(nr_vmas(mm_), 3u);
  expect_clean(world_);
  ASSERT_TRUE(madvise(a + 2 * kP, 2, Advice::kHugePage).ok());
  ASSERT_EQ(nr_vmas(mm_), 1u);
  EXPECT_EQ(vma_at(mm_, a)->end(), a + 8 * kP);
  EXPECT_TRUE(vma_at(mm_, a)->has(kVmHugepage));
  expect_pattern(mm_, a, 8, 0);
  expect_clean(world_);
}

// With holes in the range the advice applies to the mapped parts, then -ENOMEM.
TEST_F(Madvise, HolesFailAfterApplyingToMappedParts) {
  Vaddr base{0x600000000000};
  map_fixed(base, 2);
  map_fixed(base + 4 * kP, 2);
  write_pattern(mm_, base, 2, 1);
  write_pattern(mm_, base + 4 * kP, 2, 5);
  EXPECT_EQ(do_madvise(mm_, base, 6 * kP, Advice::kHugePage).error(), Errno::kNoMem);
  EXPECT_TRUE(vma_at(mm_, base)->has(kVmHugepage));
  EXPECT_TRUE(vma_at(mm_, base + 4 * kP)->has(kVmHugepage));
  expect_clean(world_);
  // A range that starts in a hole and ends past the last Vma.
  EXPECT_EQ(do_madvise(mm_, base - 2 * kP, 20 * kP, Advice::kDontNeed).error(), Errno::kNoMem);
  EXPECT_EQ(mm_.anon_rss(), 0);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_);
  EXPECT_EQ(must_read(mm_, base), 0u);
  EXPECT_EQ(must_read(mm_, base + 5 * kP), 0u);
  EXPECT_EQ(nr_vmas(mm_), 2u);
  expect_clean(world_);
}

// A range with no Vma at all fails with -ENOMEM and changes nothing.
TEST_F(Madvise, NothingMappedIsEnomem) {
  Vaddr a = map(2);
  write_pattern(mm_, a, 2, 3);
  EXPECT_EQ(do_madvise(mm_, Vaddr{0x100000000}, 4 * kP, Advice::kDontNeed).error(), Errno::kNoMem);
  EXPECT_EQ(do_madvise(mm_, Vaddr{0x100000000}, 4 * kP, Advice::kHugePage).error(), Errno::kNoMem);
  expect_pattern(mm_, a, 2, 3);
  EXPECT_EQ(nr_vmas(mm_), 1u);
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim
