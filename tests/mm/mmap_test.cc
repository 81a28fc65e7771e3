// Tests of mmap and munmap (src/mm/mmap.cc; Linux mm/mmap.c, mm/vma.c,
// arch/x86/kernel/sys_x86_64.c): placement, hints, MAP_FIXED, Vma merging
// and splitting, and the teardown of pages and page tables.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "mm/rmap.h"
#include "support/mm_fixture.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;

// [start, end) of every Vma of `mm`, in address order.
Ranges vma_ranges(MmStruct& mm) {
  Ranges out;
  for (const auto& [start, vma] : mm.vmas_quiesced()) out.emplace_back(start, vma->end().v);
  return out;
}

constexpr uint64_t kBase = MmStruct::kMmapBase;
constexpr uint64_t kP = kPageSize;

class Mmap : public MmTest {};
class Munmap : public MmTest {};

// The first mapping ends at the mmap base, with VM_MAY* bits, linear pgoff, no anon_vma.
TEST_F(Mmap, FirstMappingEndsAtMmapBase) {
  Vaddr addr = map(8);
  EXPECT_EQ(addr.v, kBase - 8 * kP);
  ASSERT_EQ(nr_vmas(mm_), 1u);
  Vma* vma = vma_at(mm_, addr);
  ASSERT_NE(vma, nullptr);
  EXPECT_EQ(vma->start(), addr);
  EXPECT_EQ(vma->end().v, kBase);
  EXPECT_EQ(vma->flags(), kVmRead | kVmWrite | kVmMayRead | kVmMayWrite | kVmMayExec);
  EXPECT_EQ(vma->pgoff(), addr.page_index());
  EXPECT_EQ(vma->anon_vma(), nullptr);
  EXPECT_TRUE(vma->anon_vma_chain().empty());
  EXPECT_TRUE(vma->is_cow_mapping());
  EXPECT_EQ(mm_.nr_ptes(), 0);
  EXPECT_EQ(mm_.anon_rss(), 0);
  expect_clean(world_);
}

// A length that is not a multiple of the page size is rounded up.
TEST_F(Mmap, LengthRoundsUpToPages) {
  Result<Vaddr> addr = do_mmap(mm_, Vaddr{0}, 5000, kProtRw, MapFlags::kPrivate);
  ASSERT_TRUE(addr.ok());
  EXPECT_EQ(addr->v, kBase - 2 * kP);
  EXPECT_EQ(vma_at(mm_, *addr)->size(), 2 * kP);
  must_write(mm_, *addr + kP + 0x100, 9);
  expect_clean(world_);
}

// Mappings go top-down, each below the last; equal protections merge, others do not.
TEST_F(Mmap, TopDownPlacementAndMerge) {
  Vaddr a = map(4);
  Vaddr b = map(2);
  EXPECT_EQ(b.v, a.v - 2 * kP);
  EXPECT_EQ(vma_ranges(mm_), (Ranges{{b.v, kBase}}));
  Vaddr c = map(3, kProtRead);
  EXPECT_EQ(c.v, b.v - 3 * kP);
  EXPECT_EQ(vma_ranges(mm_), (Ranges{{c.v, b.v}, {b.v, kBase}}));
  expect_clean(world_);
}

// A mapping merging into a Vma with pages takes its anon_vma; folios stay reachable.
TEST_F(Mmap, MergeKeepsAnonVmaAndData) {
  Vaddr a = map(4);
  write_pattern(mm_, a, 4, 100);
  AnonVma* av = vma_at(mm_, a)->anon_vma();
  ASSERT_NE(av, nullptr);
  Vaddr b = map(4);
  EXPECT_EQ(b.v, a.v - 4 * kP);
  ASSERT_EQ(nr_vmas(mm_), 1u);
  Vma* vma = vma_at(mm_, b);
  EXPECT_EQ(vma->anon_vma(), av);
  EXPECT_EQ(vma->pgoff(), b.page_index());
  expect_pattern(mm_, a, 4, 100);
  write_pattern(mm_, b, 4, 200);
  EXPECT_EQ(folio_at(mm_, b).head().mapping, av);
  EXPECT_EQ(rmap_count(folio_at(mm_, a)).mappings, 1);
  EXPECT_EQ(mm_.anon_rss(), 8);
  expect_clean(world_);
}

// With align = 2 MiB a mapping starts at the highest 2 MiB boundary that fits.
TEST_F(Mmap, AlignedPlacement) {
  Vaddr small = map(3);
  Result<Vaddr> huge = do_mmap(mm_, Vaddr{0}, 4 * kPmdSize, kProtRw, MapFlags::kPrivate, kPmdSize);
  ASSERT_TRUE(huge.ok());
  EXPECT_TRUE(huge->pmd_aligned());
  EXPECT_EQ(huge->v, (small.v - 4 * kPmdSize) & ~(kPmdSize - 1));
  EXPECT_EQ(vma_at(mm_, *huge)->size(), 4 * kPmdSize);
  // The highest 2 MiB-aligned page that fits is in the gap left between the
  // two mappings, right after the aligned one.
  Result<Vaddr> one = do_mmap(mm_, Vaddr{0}, kP, kProtRw, MapFlags::kPrivate, kPmdSize);
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->pmd_aligned());
  EXPECT_EQ(one->v, huge->v + 4 * kPmdSize);
  expect_clean(world_);
}

// A free, page-aligned hint is used as is.
TEST_F(Mmap, FreeHintIsUsed) {
  Vaddr hint{0x500000000000};
  Result<Vaddr> addr = do_mmap(mm_, hint, 4 * kP, kProtRw, MapFlags::kPrivate);
  ASSERT_TRUE(addr.ok());
  EXPECT_EQ(*addr, hint);
  must_write(mm_, hint, 1);
  expect_clean(world_);
}

// An unaligned hint is rounded down to its page (x86 masks the offset).
TEST_F(Mmap, UnalignedHintIsRoundedDown) {
  Result<Vaddr> addr = do_mmap(mm_, Vaddr{0x500000000123}, kP, kProtRw, MapFlags::kPrivate);
  ASSERT_TRUE(addr.ok());
  EXPECT_EQ(addr->v, 0x500000000000u);
  expect_clean(world_);
}

// A non-zero hint below mmap_min_addr is raised to mmap_min_addr.
TEST_F(Mmap, LowHintIsRaisedToMmapMinAddr) {
  Result<Vaddr> addr = do_mmap(mm_, Vaddr{0x2000}, kP, kProtRw, MapFlags::kPrivate);
  ASSERT_TRUE(addr.ok());
  EXPECT_EQ(addr->v, kUserMin);
  expect_clean(world_);
}

// A hint that overlaps a mapping or does not fit is ignored: placement is top-down.
TEST_F(Mmap, UnusableHintFallsBackToTopDown) {
  Vaddr a = map(4);
  write_pattern(mm_, a, 4, 10);
  Result<Vaddr> b = do_mmap(mm_, a + kP, 2 * kP, kProtRead, MapFlags::kPrivate);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->v, a.v - 2 * kP);
  Result<Vaddr> c = do_mmap(mm_, Vaddr{kUserMax - kP}, 2 * kP, kProtRead, MapFlags::kPrivate);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->v, b->v - 2 * kP);
  expect_pattern(mm_, a, 4, 10);
  EXPECT_EQ(vma_ranges(mm_), (Ranges{{c->v, a.v}, {a.v, kBase}}));
  expect_clean(world_);
}

// MAP_FIXED over the middle of a mapping frees its pages and merges with both sides.
TEST_F(Mmap, FixedReplacesExistingPages) {
  Vaddr a = map(8);
  write_pattern(mm_, a, 8, 50);
  EXPECT_EQ(mm_.anon_rss(), 8);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_ - 8);
  map_fixed(a + 2 * kP, 4);
  expect_clean(world_);
  EXPECT_EQ(mm_.anon_rss(), 4);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_ - 4);
  for (uint64_t i = 2; i < 6; i++) {
    EXPECT_EQ(pte_at(mm_, a + i * kP).kind(), PteKind::kNone) << i;
    EXPECT_EQ(must_read(mm_, a + i * kP), 0u) << i;
  }
  expect_pattern(mm_, a, 2, 50);
  expect_pattern(mm_, a + 6 * kP, 2, 56);
  EXPECT_EQ(vma_ranges(mm_), (Ranges{{a.v, kBase}}));
  EXPECT_EQ(mm_.anon_rss(), 4);
  expect_clean(world_);
}

// MAP_FIXED with another protection splits the old mapping in three.
TEST_F(Mmap, FixedWithOtherProtSplits) {
  Vaddr a = map(8);
  write_pattern(mm_, a, 8, 50);
  map_fixed(a + 2 * kP, 4, kProtRead);
  EXPECT_EQ(vma_ranges(mm_),
            (Ranges{{a.v, a.v + 2 * kP}, {a.v + 2 * kP, a.v + 6 * kP}, {a.v + 6 * kP, kBase}}));
  EXPECT_FALSE(cpu_write_u32(mm_, a + 3 * kP, 1).ok());
  EXPECT_EQ(must_read(mm_, a + 3 * kP), 0u);
  expect_pattern(mm_, a + 6 * kP, 2, 56);
  // The outer parts keep the old anon_vma and pgoff.
  EXPECT_EQ(vma_at(mm_, a)->anon_vma(), vma_at(mm_, a + 6 * kP)->anon_vma());
  EXPECT_EQ(vma_at(mm_, a + 6 * kP)->pgoff(), (a + 6 * kP).page_index());
  expect_clean(world_);
}

// Between Vmas with different anon_vmas, a new mapping merges with the previous one.
TEST_F(Mmap, MergePrefersPreviousWhenNeighboursDiffer) {
  Vaddr base{0x600000000000};
  map_fixed(base, 2);
  map_fixed(base + 3 * kP, 2);
  write_pattern(mm_, base, 2, 1);
  write_pattern(mm_, base + 3 * kP, 2, 4);
  AnonVma* left = vma_at(mm_, base)->anon_vma();
  AnonVma* right = vma_at(mm_, base + 3 * kP)->anon_vma();
  ASSERT_NE(left, right);
  map_fixed(base + 2 * kP, 1);
  EXPECT_EQ(vma_ranges(mm_),
            (Ranges{{base.v, base.v + 3 * kP}, {base.v + 3 * kP, base.v + 5 * kP}}));
  EXPECT_EQ(vma_at(mm_, base + 2 * kP)->anon_vma(), left);
  must_write(mm_, base + 2 * kP, 3);
  EXPECT_EQ(folio_at(mm_, base + 2 * kP).head().mapping, left);
  expect_pattern(mm_, base, 5, 1);
  expect_clean(world_);
}

// A mapping filling the gap between two compatible Vmas merges all three.
TEST_F(Mmap, FillingAGapMergesBothSides) {
  Vaddr base{0x600000000000};
  map_fixed(base, 2);
  map_fixed(base + 3 * kP, 2);
  write_pattern(mm_, base + 3 * kP, 2, 4);
  EXPECT_EQ(nr_vmas(mm_), 2u);
  map_fixed(base + 2 * kP, 1);
  EXPECT_EQ(vma_ranges(mm_), (Ranges{{base.v, base.v + 5 * kP}}));
  EXPECT_EQ(vma_at(mm_, base)->pgoff(), base.page_index());
  expect_pattern(mm_, base + 3 * kP, 2, 4);
  EXPECT_EQ(rmap_count(folio_at(mm_, base + 4 * kP)).mappings, 1);
  expect_clean(world_);
}

// A Vma with fork ancestry does not merge with a new mapping; the parent's Vma does.
TEST_F(Mmap, NoMergeWithForkedAnonVma) {
  Vaddr a = map(4);
  write_pattern(mm_, a, 4, 1);
  MmStruct& child = dup_mm(mm_);
  ASSERT_TRUE(do_mmap(child, a - 4 * kP, 4 * kP, kProtRw, MapFlags::kFixed).ok());
  EXPECT_EQ(vma_ranges(child), (Ranges{{a.v - 4 * kP, a.v}, {a.v, kBase}}));
  map_fixed(a - 4 * kP, 4);
  EXPECT_EQ(vma_ranges(mm_), (Ranges{{a.v - 4 * kP, kBase}}));
  expect_pattern(child, a, 4, 1);
  expect_pattern(mm_, a, 4, 1);
  expect_clean(world_);
}

// munmap of a whole mapping frees its pages, its page table and its anon_vma.
TEST_F(Munmap, WholeMapping) {
  Vaddr a = map(16);
  write_pattern(mm_, a, 16, 0);
  EXPECT_EQ(mm_.nr_ptes(), 1);
  EXPECT_EQ(world_.nr_anon_vmas(), 1u);
  ASSERT_TRUE(do_munmap(mm_, a, 16 * kP).ok());
  EXPECT_EQ(nr_vmas(mm_), 0u);
  EXPECT_EQ(mm_.anon_rss(), 0);
  EXPECT_EQ(mm_.nr_ptes(), 0);
  EXPECT_EQ(world_.nr_anon_vmas(), 0u);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_);
  EXPECT_FALSE(cpu_read_u32(mm_, a).ok());
  expect_clean(world_);
}

// munmap of the front or back shrinks the Vma; the rest keeps data and linear pgoff.
TEST_F(Munmap, FrontAndBack) {
  Vaddr a = map(8);
  write_pattern(mm_, a, 8, 20);
  ASSERT_TRUE(do_munmap(mm_, a, 2 * kP).ok());
  EXPECT_EQ(vma_ranges(mm_), (Ranges{{a.v + 2 * kP, kBase}}));
  EXPECT_EQ(vma_at(mm_, a + 2 * kP)->pgoff(), (a + 2 * kP).page_index());
  EXPECT_EQ(mm_.anon_rss(), 6);
  expect_clean(world_);
  ASSERT_TRUE(do_munmap(mm_, a + 7 * kP, kP).ok());
  EXPECT_EQ(vma_ranges(mm_), (Ranges{{a.v + 2 * kP, a.v + 7 * kP}}));
  EXPECT_EQ(mm_.anon_rss(), 5);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_ - 5);
  expect_pattern(mm_, a + 2 * kP, 5, 22);
  EXPECT_EQ(cpu_read_u32(mm_, a + kP).error(), Errno::kFault);
  EXPECT_EQ(cpu_read_u32(mm_, a + 7 * kP).error(), Errno::kFault);
  EXPECT_EQ(mm_.nr_ptes(), 1);
  expect_clean(world_);
}

// munmap of the middle splits the Vma in two sharing the anon_vma and the PTE table.
TEST_F(Munmap, MiddleSplitsVma) {
  Vaddr a = map(8);
  write_pattern(mm_, a, 8, 30);
  ASSERT_TRUE(do_munmap(mm_, a + 3 * kP, 2 * kP).ok());
  EXPECT_EQ(vma_ranges(mm_), (Ranges{{a.v, a.v + 3 * kP}, {a.v + 5 * kP, kBase}}));
  Vma* lo = vma_at(mm_, a);
  Vma* hi = vma_at(mm_, a + 5 * kP);
  EXPECT_EQ(lo->anon_vma(), hi->anon_vma());
  EXPECT_EQ(hi->pgoff(), (a + 5 * kP).page_index());
  EXPECT_EQ(mm_.anon_rss(), 6);
  EXPECT_EQ(mm_.nr_ptes(), 1);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_ - 6);
  expect_pattern(mm_, a, 3, 30);
  expect_pattern(mm_, a + 5 * kP, 3, 35);
  EXPECT_EQ(cpu_write_u32(mm_, a + 4 * kP, 1).error(), Errno::kFault);
  // Both halves are still reachable by the rmap of their folios.
  EXPECT_EQ(rmap_count(folio_at(mm_, a + 6 * kP)).mappings, 1);
  expect_clean(world_);
  ASSERT_TRUE(do_munmap(mm_, a, 8 * kP).ok());
  EXPECT_EQ(mm_.nr_ptes(), 0);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_);
  expect_clean(world_);
}

// A PTE table is freed only when no Vma covers any of its 2 MiB.
TEST_F(Munmap, FreesPageTablesWhenNoVmaUsesThem) {
  Result<Vaddr> r = do_mmap(mm_, Vaddr{0}, 2 * kPmdSize, kProtRw, MapFlags::kPrivate, kPmdSize);
  ASSERT_TRUE(r.ok());
  Vaddr a = *r;
  must_write(mm_, a, 1);
  must_write(mm_, a + kPmdSize - kP, 2);
  must_write(mm_, a + kPmdSize, 3);
  EXPECT_EQ(mm_.nr_ptes(), 2);
  // The first table still serves [a + kP, a + 2 MiB).
  ASSERT_TRUE(do_munmap(mm_, a, kP).ok());
  EXPECT_EQ(mm_.nr_ptes(), 2);
  ASSERT_TRUE(do_munmap(mm_, a + kP, kPmdSize - kP).ok());
  EXPECT_EQ(mm_.nr_ptes(), 1);
  EXPECT_EQ(must_read(mm_, a + kPmdSize), 3u);
  expect_clean(world_);
  ASSERT_TRUE(do_munmap(mm_, a + kPmdSize, kPmdSize).ok());
  EXPECT_EQ(mm_.nr_ptes(), 0);
  EXPECT_EQ(mm_.anon_rss(), 0);
  expect_clean(world_);
}

// munmap over a range with holes unmaps the Vmas inside it and succeeds.
TEST_F(Munmap, RangeWithHoles) {
  Vaddr base{0x600000000000};
  map_fixed(base, 2);
  map_fixed(base + 4 * kP, 2);
  map_fixed(base + 8 * kP, 2);
  map_fixed(base + 12 * kP, 2);
  write_pattern(mm_, base, 2, 1);
  write_pattern(mm_, base + 4 * kP, 2, 2);
  write_pattern(mm_, base + 8 * kP, 2, 3);
  write_pattern(mm_, base + 12 * kP, 2, 4);
  EXPECT_EQ(nr_vmas(mm_), 4u);
  ASSERT_TRUE(do_munmap(mm_, base + kP, 10 * kP).ok());
  EXPECT_EQ(vma_ranges(mm_), (Ranges{{base.v, base.v + kP}, {base.v + 12 * kP, base.v + 14 * kP}}));
  EXPECT_EQ(mm_.anon_rss(), 3);
  expect_pattern(mm_, base, 1, 1);
  expect_pattern(mm_, base + 12 * kP, 2, 4);
  expect_clean(world_);
}

// munmap of a range where nothing is mapped succeeds and changes nothing.
TEST_F(Munmap, NothingMappedIsNoop) {
  Vaddr a = map(2);
  write_pattern(mm_, a, 2, 5);
  ASSERT_TRUE(do_munmap(mm_, Vaddr{0x100000000}, 16 * kP).ok());
  EXPECT_EQ(nr_vmas(mm_), 1u);
  expect_pattern(mm_, a, 2, 5);
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim
