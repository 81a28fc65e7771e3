// Tests of fork and exit (src/mm/fork.cc; Linux kernel/fork.c dup_mmap,
// mm/memory.c copy_page_range, mm/rmap.c anon_vma_fork, mm/mmap.c
// exit_mmap): the counters fork moves, the entries it rewrites, the
// anon_vma hierarchy it builds, and the teardown of everything at exit.
#include <gtest/gtest.h>

#include <algorithm>

#include "mm/rmap.h"
#include "support/mm_fixture.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

constexpr uint64_t kP = kPageSize;

class Fork : public MmTest {
 protected:
  static bool chained(const Vma& vma, const AnonVma* av) {
    const auto& chain = vma.anon_vma_chain();
    return std::find(chain.begin(), chain.end(), av) != chain.end();
  }
};

// fork shares every page: ref +1, mapcount 2, not exclusive, both PTEs RO, child's old.
TEST_F(Fork, WriteProtectsBothSides) {
  Vaddr a = map(4);
  write_pattern(mm_, a, 4, 10);
  uint64_t free_before = nr_free_pages();
  MmStruct& child = dup_mm(mm_);
  expect_clean(world_);
  EXPECT_EQ(nr_free_pages(), free_before);
  EXPECT_EQ(child.anon_rss(), 4);
  EXPECT_EQ(mm_.anon_rss(), 4);
  EXPECT_EQ(child.nr_ptes(), 1);
  for (uint64_t i = 0; i < 4; i++) {
    Vaddr p = a + i * kP;
    Folio folio = folio_at(mm_, p);
    EXPECT_EQ(folio_ref_count(folio), 2) << i;
    EXPECT_EQ(folio_mapcount(folio), 2) << i;
    EXPECT_FALSE(PageAnonExclusive(folio.head())) << i;
    Pte parent_pte = pte_at(mm_, p);
    Pte child_pte = pte_at(child, p);
    EXPECT_EQ(child_pte.kind(), PteKind::kPresent);
    EXPECT_EQ(child_pte.pfn(), parent_pte.pfn());
    EXPECT_FALSE(parent_pte.write()) << i;
    EXPECT_FALSE(child_pte.write()) << i;
    EXPECT_TRUE(parent_pte.young()) << i;
    EXPECT_FALSE(child_pte.young()) << i;
    EXPECT_TRUE(parent_pte.dirty()) << i;
    EXPECT_TRUE(child_pte.dirty()) << i;
  }
  expect_pattern(child, a, 4, 10);
  expect_pattern(mm_, a, 4, 10);
  EXPECT_EQ(nr_free_pages(), free_before);
  expect_clean(world_);
}

// The child gets the same Vmas with the same flags and pgoff.
TEST_F(Fork, CopiesVmas) {
  Vaddr a = map(4);
  Vaddr b = map(2, kProtRead);
  must_write(mm_, a, 1);
  MmStruct& child = dup_mm(mm_);
  ASSERT_EQ(nr_vmas(child), 2u);
  for (Vaddr addr : {a, b}) {
    Vma* pv = vma_at(mm_, addr);
    Vma* cv = vma_at(child, addr);
    ASSERT_NE(cv, nullptr);
    EXPECT_NE(cv, pv);
    EXPECT_EQ(&cv->mm(), &child);
    EXPECT_EQ(cv->start(), pv->start());
    EXPECT_EQ(cv->end(), pv->end());
    EXPECT_EQ(cv->flags(), pv->flags());
    EXPECT_EQ(cv->pgoff(), pv->pgoff());
  }
  // The Vma that never had an anon_vma gets none in the child either.
  EXPECT_EQ(vma_at(child, b)->anon_vma(), nullptr);
  expect_clean(world_);
}

// fork copies zero-page PTEs without rss, and no tables of a Vma without anon_vma.
TEST_F(Fork, ZeroPagesAndUntouchedVmas) {
  Vaddr a = map(2);
  must_write(mm_, a, 1);
  EXPECT_EQ(must_read(mm_, a + kP), 0u);
  Result<Vaddr> far = do_mmap(mm_, Vaddr{0x500000000000}, kP, kProtRw, MapFlags::kPrivate);
  ASSERT_TRUE(far.ok());
  EXPECT_EQ(must_read(mm_, *far), 0u);
  EXPECT_EQ(mm_.nr_ptes(), 2);
  MmStruct& child = dup_mm(mm_);
  EXPECT_EQ(pte_at(child, a + kP).kind(), PteKind::kZero);
  EXPECT_EQ(child.anon_rss(), 1);
  EXPECT_EQ(child.nr_ptes(), 1);
  EXPECT_EQ(pte_at(child, *far).kind(), PteKind::kNone);
  EXPECT_EQ(must_read(child, *far), 0u);
  EXPECT_EQ(child.nr_ptes(), 2);
  expect_clean(world_);
}

// The child's Vma chains to the parent's anon_vma and to its own child anon_vma.
TEST_F(Fork, ChildAnonVmaChainsToParent) {
  Vaddr a = map(2);
  must_write(mm_, a, 1);
  Vma* pv = vma_at(mm_, a);
  AnonVma* pav = pv->anon_vma();
  ASSERT_NE(pav, nullptr);
  EXPECT_EQ(pv->anon_vma_chain().size(), 1u);
  EXPECT_EQ(pav->root, pav);
  MmStruct& child = dup_mm(mm_);
  Vma* cv = vma_at(child, a);
  AnonVma* cav = cv->anon_vma();
  ASSERT_NE(cav, nullptr);
  EXPECT_NE(cav, pav);
  EXPECT_EQ(cav->parent, pav);
  EXPECT_EQ(cav->root, pav);
  EXPECT_EQ(cv->anon_vma_chain().size(), 2u);
  EXPECT_TRUE(chained(*cv, pav));
  EXPECT_TRUE(chained(*cv, cav));
  EXPECT_EQ(pav->vmas.count(cv), 1u);
  EXPECT_EQ(pav->vmas.count(pv), 1u);
  EXPECT_EQ(cav->vmas.count(pv), 0u);
  EXPECT_EQ(world_.nr_anon_vmas(), 2u);
  // A folio from before fork is found in both processes by its rmap.
  RmapCount seen = rmap_count(folio_at(mm_, a));
  EXPECT_EQ(seen.vmas, 2);
  EXPECT_EQ(seen.mappings, 2);
  expect_clean(world_);
}

// A folio created after fork is found by the rmap in its own process only.
TEST_F(Fork, FolioCreatedAfterForkIsSeenInOneProcess) {
  Vaddr a = map(4);
  must_write(mm_, a, 1);
  MmStruct& child = dup_mm(mm_);
  must_write(child, a + kP, 2);
  must_write(mm_, a + 2 * kP, 3);
  Folio cf = folio_at(child, a + kP);
  Folio pf = folio_at(mm_, a + 2 * kP);
  EXPECT_EQ(cf.head().mapping, vma_at(child, a)->anon_vma());
  EXPECT_EQ(pf.head().mapping, vma_at(mm_, a)->anon_vma());
  RmapCount c = rmap_count(cf);
  EXPECT_EQ(c.vmas, 1);
  EXPECT_EQ(c.mappings, 1);
  RmapCount p = rmap_count(pf);
  EXPECT_EQ(p.vmas, 2);
  EXPECT_EQ(p.mappings, 1);
  EXPECT_EQ(pte_at(mm_, a + kP).kind(), PteKind::kNone);
  EXPECT_EQ(pte_at(child, a + 2 * kP).kind(), PteKind::kNone);
  EXPECT_EQ(folio_ref_count(cf), 1);
  EXPECT_EQ(folio_ref_count(pf), 1);
  expect_clean(world_);
}

// A grandchild chains to three anon_vmas and maps pre-fork folios a third time.
TEST_F(Fork, ForkOfFork) {
  Vaddr a = map(2);
  write_pattern(mm_, a, 2, 7);
  MmStruct& child = dup_mm(mm_);
  MmStruct& grandchild = dup_mm(child);
  expect_clean(world_);
  AnonVma* root = vma_at(mm_, a)->anon_vma();
  AnonVma* cav = vma_at(child, a)->anon_vma();
  Vma* gv = vma_at(grandchild, a);
  AnonVma* gav = gv->anon_vma();
  EXPECT_EQ(gv->anon_vma_chain().size(), 3u);
  EXPECT_TRUE(chained(*gv, root));
  EXPECT_TRUE(chained(*gv, cav));
  EXPECT_TRUE(chained(*gv, gav));
  EXPECT_EQ(gav->parent, cav);
  EXPECT_EQ(gav->root, root);
  EXPECT_EQ(world_.nr_anon_vmas(), 3u);
  Folio folio = folio_at(mm_, a);
  EXPECT_EQ(folio_ref_count(folio), 3);
  EXPECT_EQ(folio_mapcount(folio), 3);
  EXPECT_EQ(rmap_count(folio).mappings, 3);
  EXPECT_EQ(grandchild.anon_rss(), 2);
  expect_pattern(grandchild, a, 2, 7);
  // The child's own folio is seen by the child and the grandchild only.
  must_write(child, a + kP, 70);
  MmStruct& grandchild2 = dup_mm(child);
  Folio cf = folio_at(child, a + kP);
  EXPECT_EQ(folio_ref_count(cf), 2);
  RmapCount seen = rmap_count(cf);
  EXPECT_EQ(seen.vmas, 3);  // child, grandchild and grandchild2 chain to cav
  EXPECT_EQ(seen.mappings, 2);
  EXPECT_EQ(must_read(grandchild2, a + kP), 70u);
  EXPECT_EQ(must_read(grandchild, a + kP), 8u);
  expect_clean(world_);
  exit_mmap(child);
  expect_clean(world_);
  EXPECT_EQ(folio_ref_count(folio), 3) << "parent, grandchild, grandchild2";
  expect_pattern(grandchild, a, 2, 7);
  expect_clean(world_);
}

// fork reuses an anon_vma that no Vma owns and that has one child.
TEST_F(Fork, ReusesAnonVmaOfExitedAncestor) {
  Vaddr a = map(2);
  must_write(mm_, a, 1);
  MmStruct& b = dup_mm(mm_);
  MmStruct& c = dup_mm(b);
  AnonVma* av_b = vma_at(b, a)->anon_vma();
  AnonVma* av_c = vma_at(c, a)->anon_vma();
  exit_mmap(b);
  expect_clean(world_);
  EXPECT_EQ(world_.nr_anon_vmas(), 3u) << "c still links to b's anon_vma";
  EXPECT_EQ(av_b->num_active_vmas, 0);
  EXPECT_EQ(av_b->num_children, 1);
  MmStruct& d = dup_mm(c);
  expect_clean(world_);
  Vma* dv = vma_at(d, a);
  EXPECT_EQ(dv->anon_vma(), av_b);
  EXPECT_EQ(dv->anon_vma_chain().size(), 3u);
  EXPECT_TRUE(chained(*dv, av_c));
  EXPECT_EQ(world_.nr_anon_vmas(), 3u);
  EXPECT_EQ(av_b->num_active_vmas, 1);
  must_write(d, a + kP, 2);
  Folio folio = folio_at(d, a + kP);
  EXPECT_EQ(folio.head().mapping, av_b);
  RmapCount seen = rmap_count(folio);
  EXPECT_EQ(seen.vmas, 2);  // c's and d's Vmas link to av_b
  EXPECT_EQ(seen.mappings, 1);
  // The root is never reused: it counts itself among its children.
  MmStruct& e = dup_mm(mm_);
  EXPECT_NE(vma_at(e, a)->anon_vma(), vma_at(mm_, a)->anon_vma());
  EXPECT_EQ(world_.nr_anon_vmas(), 4u);
  expect_clean(world_);
}

// After the parent exits, the child's write reuses the formerly shared page.
TEST_F(Fork, ParentExitThenChildWriteReuses) {
  Vaddr a = map(2);
  write_pattern(mm_, a, 2, 5);
  MmStruct& child = dup_mm(mm_);
  Folio folio = folio_at(child, a);
  exit_mmap(mm_);
  expect_clean(world_);
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(folio_mapcount(folio), 1);
  EXPECT_EQ(world_.nr_anon_vmas(), 2u) << "the root lives on for the child";
  uint64_t free_before = nr_free_pages();
  must_write(child, a, 50);
  EXPECT_EQ(pte_at(child, a).pfn(), folio.pfn());
  EXPECT_TRUE(pte_at(child, a).write());
  EXPECT_TRUE(PageAnonExclusive(folio.head()));
  EXPECT_EQ(folio.head().mapping, vma_at(child, a)->anon_vma());
  EXPECT_EQ(nr_free_pages(), free_before);
  EXPECT_EQ(must_read(child, a + kP), 6u);
  expect_clean(world_);
}

// exit_mmap of both processes gives every frame back and frees every anon_vma.
TEST_F(Fork, ExitFreesEverything) {
  Vaddr a = map(8);
  write_pattern(mm_, a, 8, 0);
  MmStruct& child = dup_mm(mm_);
  write_pattern(child, a, 3, 100);  // three copies in the child
  must_write(mm_, a + 7 * kP, 1);   // and one in the parent
  EXPECT_EQ(nr_free_pages(), initial_free_pages_ - 12);
  // The child's copies and the page 7 original only it still mapped go.
  exit_mmap(child);
  expect_clean(world_);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_ - 8);
  expect_pattern(mm_, a, 7, 0);
  EXPECT_EQ(world_.nr_anon_vmas(), 1u);
  exit_mmap(mm_);
  expect_clean(world_);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_);
  EXPECT_EQ(world_.nr_anon_vmas(), 0u);
  EXPECT_TRUE(world_.mms().empty());
}

}  // namespace
}  // namespace hmmsim
