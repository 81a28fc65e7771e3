// Tests of the folio API (src/mm/folio.cc): allocation, references,
// freezing, the folio lock, page_folio() and the mapcount readers.
#include "mm/folio.h"

#include <gtest/gtest.h>

#include <vector>

#include <cstring>

#include "mm/page.h"
#include "support/mm_fixture.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

class FolioTest : public MmTest {
 protected:
  Folio alloc(uint32_t order) {
    std::optional<Folio> folio = folio_alloc(world_.mem(), Order{order});
    EXPECT_TRUE(folio.has_value());
    return folio ? *folio : Folio();
  }
  static bool page_is_free(const Page& p) {
    return p.refcount.load() == 0 && p.mapcount.load() == -1 && !p.has_data() &&
           (p.flags.load() & ~static_cast<uint32_t>(kPgBuddy)) == 0;
  }
};

class FolioAlloc : public FolioTest {};
class FolioRef : public FolioTest {};
class FolioLock : public FolioTest {};
class FolioMapcount : public FolioTest {};

// A new order-0 folio: one reference, no mapping, no flags, one frame from the buddy.
TEST_F(FolioAlloc, AllocOrder0) {
  Folio folio = alloc(0);
  ASSERT_TRUE(folio);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_ - 1);
  EXPECT_EQ(folio.order().v, 0u);
  EXPECT_EQ(folio.nr_pages(), 1u);
  EXPECT_FALSE(folio.is_large());
  EXPECT_FALSE(folio.is_device_private());
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(folio_mapcount(folio), 0);
  EXPECT_EQ(folio_entire_mapcount(folio), 0);
  EXPECT_FALSE(folio_mapped(folio));
  EXPECT_FALSE(folio_test_anon(folio));
  EXPECT_FALSE(folio_test_locked(folio));
  EXPECT_FALSE(PageAnonExclusive(folio.head()));
  EXPECT_EQ(folio.head().flags.load(), 0u);
  EXPECT_EQ(folio_expected_ref_count(folio), 0);
  expect_clean(world_);
  folio_put(folio);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_);
  expect_clean(world_);
}

// A new order-9 folio: head plus 511 tails, large_rmappable, mapcounts 0, 512 frames.
TEST_F(FolioAlloc, AllocOrder9) {
  Folio folio = alloc(9);
  ASSERT_TRUE(folio);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_ - 512);
  EXPECT_EQ(folio.pfn().v % 512, 0u);
  EXPECT_EQ(folio.order().v, 9u);
  EXPECT_EQ(folio.nr_pages(), 512u);
  EXPECT_TRUE(folio.is_large());
  EXPECT_TRUE(folio.test(kPgHead));
  EXPECT_TRUE(folio.test(kPgLargeRmappable));
  EXPECT_FALSE(folio.test(kPgTail));
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(folio_mapcount(folio), 0);
  EXPECT_EQ(folio_large_mapcount(folio), 0);
  EXPECT_EQ(folio_entire_mapcount(folio), 0);
  EXPECT_EQ(folio_nr_pages_mapped(folio), 0);
  for (uint64_t i = 1; i < 512; i++) {
    const Page& tail = folio.page(i);
    ASSERT_TRUE(tail.test(kPgTail)) << i;
    ASSERT_FALSE(tail.test(kPgHead)) << i;
    ASSERT_EQ(tail.head_offset, i);
    ASSERT_EQ(tail.refcount.load(), 0);
    ASSERT_EQ(page_pte_mapcount(tail), 0);
  }
  expect_clean(world_);
  folio_put(folio);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_);
  for (uint64_t i = 0; i < 512; i++) ASSERT_TRUE(page_is_free(world_.mem().page(folio.pfn() + i)));
  expect_clean(world_);
}

// page_folio() and pfn_folio() of any page of a large folio find its head.
TEST_F(FolioAlloc, PageFolioOfTailPages) {
  Folio folio = alloc(9);
  for (uint64_t i : {0u, 1u, 2u, 255u, 511u}) {
    Pfn pfn = folio.pfn() + i;
    EXPECT_EQ(page_folio(world_.mem().system(), pfn), folio) << i;
    EXPECT_EQ(pfn_folio(world_.mem(), pfn), folio) << i;
    EXPECT_TRUE(folio.contains(pfn));
    EXPECT_EQ(folio.page_index(world_.mem().page(pfn)), i);
  }
  EXPECT_FALSE(folio.contains(folio.pfn() + 512));
  Folio small = alloc(0);
  EXPECT_EQ(pfn_folio(world_.mem(), small.pfn()), small);
  EXPECT_FALSE(small == folio);
  folio_put(small);
  folio_put(folio);
  expect_clean(world_);
}

// folio_get/folio_put count references; the last put frees the folio and its data.
TEST_F(FolioRef, GetPutFreesAtZero) {
  Folio folio = alloc(0);
  uint32_t v = 0xabcd1234;
  page_write(folio.head(), 100, &v, sizeof(v));
  ASSERT_TRUE(folio.head().has_data());
  folio_get(folio);
  folio_get(folio);
  EXPECT_EQ(folio_ref_count(folio), 3);
  folio_put(folio);
  EXPECT_EQ(folio_ref_count(folio), 2);
  uint32_t back = 0;
  page_read(folio.head(), 100, &back, sizeof(back));
  EXPECT_EQ(back, v);
  expect_clean(world_);
  folio_put(folio);
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_ - 1);
  folio_put(folio);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_);
  EXPECT_TRUE(page_is_free(folio.head()));
  EXPECT_FALSE(folio.head().has_data()) << "a freed frame keeps no bytes";
  expect_clean(world_);
}

// A page's first partial write zero-fills the rest of it; page_zero makes
// it read as zeros again.
TEST_F(FolioRef, FirstWriteZeroFillsThePage) {
  Folio folio = alloc(0);
  std::vector<std::byte> junk(kPageSize, std::byte{0xee});
  page_write(folio.head(), 0, junk.data(), kPageSize);
  page_zero(folio.head());
  EXPECT_FALSE(folio.head().has_data());
  uint8_t one = 7;
  page_write(folio.head(), 10, &one, 1);
  std::vector<std::byte> back(kPageSize);
  page_read(folio.head(), 0, back.data(), kPageSize);
  for (uint64_t i = 0; i < kPageSize; i++)
    ASSERT_EQ(back[i], std::byte{i == 10 ? uint8_t{7} : uint8_t{0}}) << "byte " << i;
  folio_put(folio);
  expect_clean(world_);
}

// folio_copy moves every page of a THP, whether every page holds bytes (one
// copy of the span) or only some do (page by page: the others stay empty).
TEST_F(FolioRef, FolioCopyCopiesEveryPage) {
  for (bool all : {true, false}) {
    Folio src = alloc(kHPageOrder), dst = alloc(kHPageOrder);
    for (uint64_t i = 0; i < kHPageNr; i++) {
      if (!all && i % 3 == 0) continue;
      uint64_t v = i * 0x10001 + 1;
      page_write(src.page(i), kPageSize - 8, &v, sizeof(v));
    }
    uint64_t junk = 0xbad;
    page_write(dst.page(0), 0, &junk, sizeof(junk));
    folio_copy(dst, src);
    for (uint64_t i = 0; i < kHPageNr; i++) {
      ASSERT_EQ(dst.page(i).has_data(), src.page(i).has_data()) << "page " << i;
      EXPECT_TRUE(std::memcmp(dst.page(i).bytes, src.page(i).bytes, kPageSize) == 0 ||
                  !src.page(i).has_data()) << "page " << i;
      EXPECT_EQ(page_is_zero_filled(dst.page(i)), !src.page(i).has_data()) << "page " << i;
    }
    folio_put(src);
    folio_put(dst);
    expect_clean(world_);
  }
}

// pages_read gives the bytes of consecutive frames, zeros for those that
// hold none.
TEST_F(FolioRef, PagesReadCopiesRunsAndZeroFillsTheRest) {
  Folio thp = alloc(kHPageOrder);
  for (uint64_t i = 0; i < 8; i++) {
    if (i == 3 || i == 4) continue;
    uint64_t v = 0x1000 + i;
    page_write(thp.page(i), 16, &v, sizeof(v));
  }
  std::vector<std::byte> out(8 * kPageSize, std::byte{0xff});
  pages_read(thp.head(), 8, out.data());
  for (uint64_t i = 0; i < 8; i++) {
    uint64_t v = 1;
    std::memcpy(&v, out.data() + i * kPageSize + 16, sizeof(v));
    EXPECT_EQ(v, (i == 3 || i == 4) ? 0 : 0x1000 + i) << "page " << i;
    EXPECT_EQ(out[i * kPageSize], std::byte{0}) << "page " << i;
  }
  folio_put(thp);
  expect_clean(world_);
}

// The frames of a range have their bytes at fixed, 2 MiB-aligned places: a
// THP's pages are one contiguous span.
TEST_F(FolioRef, FrameBytesAreContiguousAndAligned) {
  Folio thp = alloc(kHPageOrder);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(thp.head().bytes) % kPmdSize, 0u);
  for (uint64_t i = 1; i < kHPageNr; i++)
    ASSERT_EQ(thp.page(i).bytes, thp.head().bytes + i * kPageSize) << "page " << i;
  folio_put(thp);
  expect_clean(world_);
}

// folio_ref_add/sub and folio_put_refs move the count by n; the last refs free it.
TEST_F(FolioRef, RefAddSubAndPutRefs) {
  Folio folio = alloc(9);
  folio_ref_add(folio, 4);
  EXPECT_EQ(folio_ref_count(folio), 5);
  folio_ref_sub(folio, 2);
  EXPECT_EQ(folio_ref_count(folio), 3);
  folio_put_refs(folio, 2);
  EXPECT_EQ(folio_ref_count(folio), 1);
  expect_clean(world_);
  folio_put_refs(folio, 1);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_);
  expect_clean(world_);
}

// folio_try_get fails on a frozen folio and works again after folio_ref_unfreeze.
TEST_F(FolioRef, TryGetFailsOnFrozenFolio) {
  Folio folio = alloc(0);
  EXPECT_TRUE(folio_try_get(folio));
  EXPECT_EQ(folio_ref_count(folio), 2);
  ASSERT_TRUE(folio_ref_freeze(folio, 2));
  EXPECT_EQ(folio_ref_count(folio), 0);
  EXPECT_FALSE(folio_try_get(folio));
  EXPECT_EQ(folio_ref_count(folio), 0);
  folio_ref_unfreeze(folio, 2);
  EXPECT_EQ(folio_ref_count(folio), 2);
  EXPECT_TRUE(folio_try_get(folio));
  EXPECT_EQ(folio_ref_count(folio), 3);
  expect_clean(world_);
  folio_put_refs(folio, 3);
  expect_clean(world_);
}

// folio_ref_freeze(n) succeeds only at refcount n and leaves it alone otherwise.
TEST_F(FolioRef, FreezeNeedsExactCount) {
  Folio folio = alloc(9);
  folio_get(folio);
  EXPECT_FALSE(folio_ref_freeze(folio, 1));
  EXPECT_EQ(folio_ref_count(folio), 2);
  EXPECT_FALSE(folio_ref_freeze(folio, 3));
  EXPECT_EQ(folio_ref_count(folio), 2);
  EXPECT_TRUE(folio_ref_freeze(folio, 2));
  EXPECT_EQ(folio_ref_count(folio), 0);
  EXPECT_FALSE(folio_ref_freeze(folio, 2)) << "already frozen";
  folio_ref_unfreeze(folio, 1);
  EXPECT_EQ(folio_ref_count(folio), 1);
  expect_clean(world_);
  folio_put(folio);
  expect_clean(world_);
}

// folio_trylock fails while the folio is locked; folio_unlock releases it.
TEST_F(FolioLock, LockTrylockUnlock) {
  Folio folio = alloc(0);
  EXPECT_FALSE(folio_test_locked(folio));
  EXPECT_TRUE(folio_trylock(folio));
  EXPECT_TRUE(folio_test_locked(folio));
  EXPECT_TRUE(folio.test(kPgLocked));
  EXPECT_FALSE(folio_trylock(folio));
  EXPECT_TRUE(folio_test_locked(folio));
  expect_clean_but_locked(world_);
  folio_unlock(folio);
  EXPECT_FALSE(folio_test_locked(folio));
  folio_lock(folio);  // free: does not wait
  EXPECT_TRUE(folio_test_locked(folio));
  folio_unlock(folio);
  EXPECT_EQ(folio_ref_count(folio), 1) << "the lock holds no reference";
  expect_clean(world_);
  folio_put(folio);
  expect_clean(world_);
}

// The checker reports a folio left locked between steps.
TEST_F(FolioLock, CheckerReportsLockedFolio) {
  Folio folio = alloc(0);
  folio_lock(folio);
  CheckReport report = check_world(world_);
  EXPECT_TRUE(report.has("LOCK")) << report.to_string();
  folio_unlock(folio);
  folio_put(folio);
  expect_clean(world_);
}

// A first write makes an exclusive anon folio of the Vma's anon_vma at its index.
TEST_F(FolioMapcount, FirstWriteMakesExclusiveAnonFolio) {
  Vaddr addr = map(4);
  must_write(mm_, addr + 2 * kPageSize, 7);
  Folio folio = folio_at(mm_, addr + 2 * kPageSize);
  ASSERT_TRUE(folio);
  Vma* vma = vma_at(mm_, addr);
  ASSERT_NE(vma, nullptr);
  EXPECT_TRUE(folio_test_anon(folio));
  EXPECT_TRUE(folio.test(kPgSwapBacked));
  EXPECT_TRUE(folio.test(kPgLru));
  EXPECT_EQ(folio.head().mapping, vma->anon_vma());
  EXPECT_EQ(folio.head().index, (addr + 2 * kPageSize).page_index());
  EXPECT_EQ(folio.head().index, vma->linear_page_index(addr + 2 * kPageSize));
  EXPECT_TRUE(PageAnonExclusive(folio.head()));
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(folio_mapcount(folio), 1);
  EXPECT_EQ(page_mapcount(folio, folio.head()), 1);
  EXPECT_EQ(folio_expected_ref_count(folio), 1);
  expect_clean(world_);
}

// folio_expected_ref_count counts mappings only, through fork and exit.
TEST_F(FolioMapcount, ExpectedRefCountFollowsMappings) {
  Vaddr addr = map(1);
  must_write(mm_, addr, 1);
  Folio folio = folio_at(mm_, addr);
  MmStruct& child = dup_mm(mm_);
  EXPECT_EQ(folio_mapcount(folio), 2);
  EXPECT_EQ(folio_expected_ref_count(folio), 2);
  EXPECT_EQ(folio_ref_count(folio), 2);
  folio_get(folio);
  EXPECT_EQ(folio_expected_ref_count(folio), 2);
  EXPECT_EQ(folio_ref_count(folio), 3);
  expect_clean(world_);
  exit_mmap(child);
  EXPECT_EQ(folio_expected_ref_count(folio), 1);
  EXPECT_EQ(folio_ref_count(folio), 2);
  folio_put(folio);
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim
