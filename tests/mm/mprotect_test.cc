// Tests of mprotect (src/mm/mprotect.c; Linux mm/mprotect.c): Vma flags,
// splitting and merging, the PTE write bits it clears or sets, and what the
// CPU may then do.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "mm/migrate.h"
#include "mm/rmap.h"
#include "support/mm_fixture.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

constexpr uint64_t kP = kPageSize;

class Mprotect : public MmTest {
 protected:
  // Whether the PTEs of pages [first, first + n) at `addr` are writable.
  std::vector<bool> write_bits(MmStruct& mm, Vaddr addr, uint64_t n) {
    std::vector<bool> out;
    for (uint64_t i = 0; i < n; i++) out.push_back(pte_at(mm, addr + i * kP).write());
    return out;
  }
  Status mprotect(Vaddr addr, uint64_t pages, uint32_t prot) {
    return do_mprotect(mm_, addr, pages * kP, prot);
  }
};

// Read-only clears VM_WRITE and every PTE write bit; writes fault, reads see the data.
TEST_F(Mprotect, ReadOnlyMakesWritesFault) {
  Vaddr a = map(4);
  write_pattern(mm_, a, 4, 10);
  EXPECT_EQ(write_bits(mm_, a, 4), std::vector<bool>(4, true));
  ASSERT_TRUE(mprotect(a, 4, kProtRead).ok());
  expect_clean(world_);
  Vma* vma = vma_at(mm_, a);
  EXPECT_FALSE(vma->has(kVmWrite));
  EXPECT_TRUE(vma->has(kVmRead));
  EXPECT_TRUE(vma->has(kVmMayWrite));
  EXPECT_EQ(write_bits(mm_, a, 4), std::vector<bool>(4, false));
  for (uint64_t i = 0; i < 4; i++) {
    EXPECT_EQ(cpu_write_u32(mm_, a + i * kP, 99).error(), Errno::kFault);
    EXPECT_EQ(pte_at(mm_, a + i * kP).kind(), PteKind::kPresent) << "the mapping stays";
    EXPECT_TRUE(PageAnonExclusive(folio_at(mm_, a + i * kP).head()));
  }
  expect_pattern(mm_, a, 4, 10);
  EXPECT_EQ(mm_.anon_rss(), 4);
  expect_clean(world_);
}

// Back to read-write, exclusive pages get their write bit at once, on the same frames.
TEST_F(Mprotect, BackToRwMakesExclusivePagesWritable) {
  Vaddr a = map(4);
  write_pattern(mm_, a, 4, 10);
  Pfn pfn = pte_at(mm_, a).pfn();
  ASSERT_TRUE(mprotect(a, 4, kProtRead).ok());
  ASSERT_TRUE(mprotect(a, 4, kProtRw).ok());
  expect_clean(world_);
  EXPECT_EQ(write_bits(mm_, a, 4), std::vector<bool>(4, true));
  EXPECT_TRUE(pte_at(mm_, a).dirty());
  uint64_t free_before = nr_free_pages();
  write_pattern(mm_, a, 4, 20);
  EXPECT_EQ(pte_at(mm_, a).pfn(), pfn);
  EXPECT_EQ(nr_free_pages(), free_before);
  expect_pattern(mm_, a, 4, 20);
  expect_clean(world_);
}

// After fork, read-write restores the write bit of exclusive pages only.
TEST_F(Mprotect, SharedPagesStayReadOnly) {
  Vaddr a = map(6);
  write_pattern(mm_, a, 4, 10);
  MmStruct& child = dup_mm(mm_);
  must_write(mm_, a + 4 * kP, 14);  // exclusive, created after fork
  // The child copies page 1 away: the parent's page is mapped once but not
  // exclusive, so it stays read-only until a write fault reuses it.
  must_write(child, a + 1 * kP, 77);
  ASSERT_TRUE(mprotect(a, 6, kProtRead).ok());
  EXPECT_EQ(write_bits(mm_, a, 5), std::vector<bool>(5, false));
  ASSERT_TRUE(mprotect(a, 6, kProtRw).ok());
  expect_clean(world_);
  EXPECT_EQ(write_bits(mm_, a, 5), (std::vector<bool>{false, false, false, false, true}));
  EXPECT_EQ(pte_at(mm_, a + 5 * kP).kind(), PteKind::kNone);
  EXPECT_FALSE(PageAnonExclusive(folio_at(mm_, a + kP).head()));
  EXPECT_EQ(folio_ref_count(folio_at(mm_, a + kP)), 1);
  // The child's entries are not touched by the parent's mprotect.
  EXPECT_EQ(write_bits(child, a, 4), (std::vector<bool>{false, true, false, false}));
  expect_pattern(mm_, a, 5, 10);
  expect_pattern(child, a + 2 * kP, 2, 12);
  EXPECT_EQ(must_read(child, a + kP), 77u);
  expect_clean(world_);
}

// PROT_NONE makes reads and writes fault; the pages stay mapped and come back intact.
TEST_F(Mprotect, ProtNoneBlocksAllAccess) {
  Vaddr a = map(3);
  write_pattern(mm_, a, 2, 40);
  ASSERT_TRUE(mprotect(a, 3, kProtNone).ok());
  expect_clean(world_);
  Vma* vma = vma_at(mm_, a);
  EXPECT_EQ(vma->flags() & kVmAccessFlags, 0u);
  for (uint64_t i = 0; i < 3; i++) {
    EXPECT_EQ(cpu_read_u32(mm_, a + i * kP).error(), Errno::kFault) << i;
    EXPECT_EQ(cpu_write_u32(mm_, a + i * kP, 1).error(), Errno::kFault) << i;
  }
  EXPECT_EQ(write_bits(mm_, a, 2), std::vector<bool>(2, false));
  EXPECT_EQ(pte_at(mm_, a + 2 * kP).kind(), PteKind::kNone) << "no fault was handled";
  EXPECT_EQ(mm_.anon_rss(), 2);
  ASSERT_TRUE(mprotect(a, 3, kProtRead).ok());
  expect_pattern(mm_, a, 2, 40);
  EXPECT_EQ(must_read(mm_, a + 2 * kP), 0u);
  expect_clean(world_);
}

// From PROT_NONE back to read-write, exclusive pages are writable without a fault.
TEST_F(Mprotect, ProtNoneToRwRestoresWriteBits) {
  Vaddr a = map(2);
  write_pattern(mm_, a, 2, 7);
  ASSERT_TRUE(mprotect(a, 2, kProtNone).ok());
  ASSERT_TRUE(mprotect(a, 2, kProtRw).ok());
  EXPECT_EQ(write_bits(mm_, a, 2), std::vector<bool>(2, true));
  expect_pattern(mm_, a, 2, 7);
  expect_clean(world_);
}

// mprotect of part of a Vma splits it; restoring the middle merges the pieces again.
TEST_F(Mprotect, PartialSplitsAndRestoreMerges) {
  Vaddr a = map(8);
  write_pattern(mm_, a, 8, 0);
  AnonVma* av = vma_at(mm_, a)->anon_vma();
  ASSERT_TRUE(mprotect(a + 2 * kP, 4, kProtRead).ok());
  expect_clean(world_);
  ASSERT_EQ(nr_vmas(mm_), 3u);
  Vma* mid = vma_at(mm_, a + 2 * kP);
  EXPECT_EQ(mid->start(), a + 2 * kP);
  EXPECT_EQ(mid->end(), a + 6 * kP);
  EXPECT_FALSE(mid->has(kVmWrite));
  EXPECT_EQ(mid->pgoff(), (a + 2 * kP).page_index());
  EXPECT_EQ(mid->anon_vma(), av);
  EXPECT_TRUE(vma_at(mm_, a)->has(kVmWrite));
  EXPECT_TRUE(vma_at(mm_, a + 6 * kP)->has(kVmWrite));
  EXPECT_EQ(write_bits(mm_, a, 8),
            (std::vector<bool>{true, true, false, false, false, false, true, true}));
  must_write(mm_, a + kP, 101);
  EXPECT_EQ(cpu_write_u32(mm_, a + 2 * kP, 1).error(), Errno::kFault);

  ASSERT_TRUE(mprotect(a + 2 * kP, 4, kProtRw).ok());
  expect_clean(world_);
  ASSERT_EQ(nr_vmas(mm_), 1u);
  EXPECT_EQ(vma_at(mm_, a)->start(), a);
  EXPECT_EQ(vma_at(mm_, a)->end(), a + 8 * kP);
  EXPECT_EQ(write_bits(mm_, a, 8), std::vector<bool>(8, true));
  expect_clean(world_);
}

// Restoring the protection over several pieces merges them back into one Vma.
TEST_F(Mprotect, RestoreOverSeveralVmasMerges) {
  Vaddr a = map(8);
  write_pattern(mm_, a, 8, 0);
  ASSERT_TRUE(mprotect(a + 2 * kP, 2, kProtRead).ok());
  ASSERT_TRUE(mprotect(a + 5 * kP, 1, kProtNone).ok());
  ASSERT_EQ(nr_vmas(mm_), 5u);
  expect_clean(world_);
  ASSERT_TRUE(mprotect(a, 8, kProtRw).ok());
  ASSERT_EQ(nr_vmas(mm_), 1u);
  EXPECT_EQ(write_bits(mm_, a, 8), std::vector<bool>(8, true));
  expect_pattern(mm_, a, 8, 0);
  expect_clean(world_);
}

// Between Vmas with different anon_vmas, a restored Vma merges with the previous one.
TEST_F(Mprotect, MergePrefersPreviousWhenNeighboursDiffer) {
  Vaddr base{0x600000000000};
  map_fixed(base, 2);
  map_fixed(base + 3 * kP, 2);
  write_pattern(mm_, base, 2, 1);
  write_pattern(mm_, base + 3 * kP, 2, 4);
  map_fixed(base + 2 * kP, 1, kProtRead);
  ASSERT_EQ(nr_vmas(mm_), 3u);
  ASSERT_TRUE(mprotect(base + 2 * kP, 1, kProtRw).ok());
  ASSERT_EQ(nr_vmas(mm_), 2u);
  EXPECT_EQ(vma_at(mm_, base + 2 * kP)->start(), base);
  EXPECT_EQ(vma_at(mm_, base + 2 * kP)->end(), base + 3 * kP);
  EXPECT_EQ(vma_at(mm_, base + 3 * kP)->start(), base + 3 * kP);
  must_write(mm_, base + 2 * kP, 3);
  expect_pattern(mm_, base, 5, 1);
  expect_clean(world_);
}

// Neighbours differing in protection share an anon_vma, so mprotect can merge them.
TEST_F(Mprotect, SeparatelyFaultedNeighboursMerge) {
  Vaddr base{0x600000000000};
  map_fixed(base, 2);
  map_fixed(base + 2 * kP, 2, kProtRw | kProtExec);
  ASSERT_EQ(nr_vmas(mm_), 2u);
  write_pattern(mm_, base, 2, 1);
  write_pattern(mm_, base + 2 * kP, 2, 3);
  AnonVma* av = vma_at(mm_, base)->anon_vma();
  ASSERT_NE(av, nullptr);
  EXPECT_EQ(vma_at(mm_, base + 2 * kP)->anon_vma(), av);
  EXPECT_EQ(vma_at(mm_, base + 2 * kP)->anon_vma_chain().size(), 1u);
  EXPECT_EQ(world_.nr_anon_vmas(), 1u);
  EXPECT_EQ(av->vmas.size(), 2u);
  EXPECT_EQ(folio_at(mm_, base + 3 * kP).head().mapping, av);
  expect_clean(world_);
  ASSERT_TRUE(mprotect(base + 2 * kP, 2, kProtRw).ok());
  ASSERT_EQ(nr_vmas(mm_), 1u);
  EXPECT_EQ(vma_at(mm_, base)->end(), base + 4 * kP);
  expect_pattern(mm_, base, 4, 1);
  EXPECT_EQ(rmap_count(folio_at(mm_, base + 3 * kP)).mappings, 1);
  expect_clean(world_);
}

// A neighbour with fork ancestry does not lend its anon_vma, so no merge follows.
TEST_F(Mprotect, ForkedNeighbourDoesNotShareAnonVma) {
  Vaddr base{0x600000000000};
  map_fixed(base, 2);
  map_fixed(base + 2 * kP, 2, kProtRw | kProtExec);
  must_write(mm_, base, 1);
  MmStruct& child = dup_mm(mm_);
  must_write(child, base + 2 * kP, 2);
  EXPECT_NE(vma_at(child, base + 2 * kP)->anon_vma(), vma_at(child, base)->anon_vma());
  ASSERT_TRUE(do_mprotect(child, base + 2 * kP, 2 * kP, kProtRw).ok());
  EXPECT_EQ(nr_vmas(child), 2u);
  expect_clean(world_);
}

// A hole: the Vmas before it change, then -ENOMEM; those after it stay as they were.
TEST_F(Mprotect, HoleFailsAfterChangingWhatPrecedesIt) {
  Vaddr base{0x600000000000};
  map_fixed(base, 4);
  map_fixed(base + 6 * kP, 4);
  write_pattern(mm_, base, 4, 1);
  write_pattern(mm_, base + 6 * kP, 4, 11);
  EXPECT_EQ(do_mprotect(mm_, base + 2 * kP, 8 * kP, kProtRead).error(), Errno::kNoMem);
  expect_clean(world_);
  ASSERT_EQ(nr_vmas(mm_), 3u);
  EXPECT_TRUE(vma_at(mm_, base)->has(kVmWrite));
  EXPECT_FALSE(vma_at(mm_, base + 2 * kP)->has(kVmWrite));
  EXPECT_TRUE(vma_at(mm_, base + 6 * kP)->has(kVmWrite));
  EXPECT_EQ(write_bits(mm_, base, 4), (std::vector<bool>{true, true, false, false}));
  must_write(mm_, base + 6 * kP, 61);
  EXPECT_EQ(cpu_write_u32(mm_, base + 3 * kP, 1).error(), Errno::kFault);
  expect_pattern(mm_, base, 4, 1);
  expect_clean(world_);
}

// A range starting in a hole changes nothing; one running past the last Vma changes it.
TEST_F(Mprotect, HoleAtStartOrEnd) {
  Vaddr base{0x600000000000};
  map_fixed(base + 2 * kP, 4);
  write_pattern(mm_, base + 2 * kP, 4, 1);
  EXPECT_EQ(do_mprotect(mm_, base, 6 * kP, kProtRead).error(), Errno::kNoMem);
  EXPECT_TRUE(vma_at(mm_, base + 2 * kP)->has(kVmWrite));
  EXPECT_EQ(nr_vmas(mm_), 1u);
  EXPECT_EQ(do_mprotect(mm_, base + 4 * kP, 4 * kP, kProtRead).error(), Errno::kNoMem);
  ASSERT_EQ(nr_vmas(mm_), 2u);
  EXPECT_TRUE(vma_at(mm_, base + 2 * kP)->has(kVmWrite));
  EXPECT_FALSE(vma_at(mm_, base + 4 * kP)->has(kVmWrite));
  EXPECT_EQ(do_mprotect(mm_, Vaddr{0x100000000}, kP, kProtRead).error(), Errno::kNoMem);
  expect_clean(world_);
}

// mprotect leaves zero-page entries as they are; a write still replaces them.
TEST_F(Mprotect, ZeroPageEntriesStayZero) {
  Vaddr a = map(2);
  EXPECT_EQ(must_read(mm_, a), 0u);
  ASSERT_TRUE(mprotect(a, 2, kProtRead).ok());
  ASSERT_TRUE(mprotect(a, 2, kProtRw).ok());
  EXPECT_EQ(pte_at(mm_, a).kind(), PteKind::kZero);
  EXPECT_EQ(mm_.anon_rss(), 0);
  must_write(mm_, a, 3);
  EXPECT_EQ(pte_at(mm_, a).kind(), PteKind::kPresent);
  EXPECT_EQ(mm_.anon_rss(), 1);
  expect_clean(world_);
}

// mprotect to the current protection changes nothing, not even migration entries.
TEST_F(Mprotect, UnchangedProtectionLeavesEntriesAlone) {
  Vaddr a = map(1);
  must_write(mm_, a, 5);
  Folio folio = folio_at(mm_, a);
  folio_get(folio);
  folio_lock(folio);
  ASSERT_TRUE(try_to_migrate(folio));
  ASSERT_EQ(pte_at(mm_, a).migration_kind(), MigrationKind::kWrite);
  ASSERT_TRUE(mprotect(a, 1, kProtRw).ok());
  EXPECT_EQ(pte_at(mm_, a).migration_kind(), MigrationKind::kWrite);
  expect_clean_but_locked(world_);
  remove_migration_ptes(folio, folio, RmpFlags::kNone);
  folio_unlock(folio);
  folio_put(folio);
  EXPECT_TRUE(pte_at(mm_, a).write());
  expect_clean(world_);
}

// A protection change demotes a WRITE migration entry to READ_EXCLUSIVE for good.
TEST_F(Mprotect, DemotesWriteMigrationEntry) {
  Vaddr a = map(1);
  must_write(mm_, a, 5);
  Folio folio = folio_at(mm_, a);
  folio_get(folio);
  folio_lock(folio);
  ASSERT_TRUE(try_to_migrate(folio));
  ASSERT_TRUE(mprotect(a, 1, kProtRead).ok());
  EXPECT_EQ(pte_at(mm_, a).kind(), PteKind::kMigration);
  EXPECT_EQ(pte_at(mm_, a).migration_kind(), MigrationKind::kReadExclusive);
  ASSERT_TRUE(mprotect(a, 1, kProtRw).ok());
  EXPECT_EQ(pte_at(mm_, a).migration_kind(), MigrationKind::kReadExclusive);
  expect_clean_but_locked(world_);
  remove_migration_ptes(folio, folio, RmpFlags::kNone);
  folio_unlock(folio);
  folio_put(folio);
  Pte pte = pte_at(mm_, a);
  EXPECT_EQ(pte.kind(), PteKind::kPresent);
  EXPECT_FALSE(pte.write());
  EXPECT_TRUE(PageAnonExclusive(folio.head()));
  EXPECT_EQ(must_read(mm_, a), 5u);
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim
