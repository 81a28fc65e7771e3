// Tests of the page-fault paths (src/mm/memory.cc; Linux mm/memory.c):
// do_anonymous_page (zero page on read, new page on write), do_wp_page
// (reuse of an exclusive or no longer shared page) and wp_page_copy (COW).
#include <gtest/gtest.h>

#include "mm/memory.h"
#include "mm/migrate.h"
#include "support/mm_fixture.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

constexpr uint64_t kP = kPageSize;

class Fault : public MmTest {};

// A read of an untouched page maps the zero page: no folio, no rss, no anon_vma.
TEST_F(Fault, ReadOfUntouchedPageMapsZeroPage) {
  Vaddr a = map(2);
  EXPECT_EQ(must_read(mm_, a + 16), 0u);
  Pte pte = pte_at(mm_, a);
  EXPECT_EQ(pte.kind(), PteKind::kZero);
  EXPECT_FALSE(pte.write());
  EXPECT_EQ(mm_.anon_rss(), 0);
  EXPECT_EQ(mm_.nr_ptes(), 1);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_);
  EXPECT_EQ(vma_at(mm_, a)->anon_vma(), nullptr);
  EXPECT_EQ(world_.nr_anon_vmas(), 0u);
  EXPECT_EQ(pte_at(mm_, a + kP).kind(), PteKind::kNone) << "only the touched page";
  expect_clean(world_);
}

// A write to a zero-page entry maps a new exclusive page: rss and frames up by one.
TEST_F(Fault, WriteReplacesZeroPage) {
  Vaddr a = map(1);
  EXPECT_EQ(must_read(mm_, a), 0u);
  must_write(mm_, a + 4, 0x55);
  Pte pte = pte_at(mm_, a);
  EXPECT_EQ(pte.kind(), PteKind::kPresent);
  EXPECT_TRUE(pte.write());
  EXPECT_TRUE(pte.dirty());
  EXPECT_TRUE(pte.young());
  EXPECT_EQ(mm_.anon_rss(), 1);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_ - 1);
  Folio folio = folio_at(mm_, a);
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(folio_mapcount(folio), 1);
  EXPECT_TRUE(PageAnonExclusive(folio.head()));
  EXPECT_EQ(folio.head().mapping, vma_at(mm_, a)->anon_vma());
  EXPECT_EQ(must_read(mm_, a), 0u) << "the rest of the page is zero";
  EXPECT_EQ(must_read(mm_, a + 4), 0x55u);
  expect_clean(world_);
}

// A write to an untouched page maps a new exclusive, writable, dirty page.
TEST_F(Fault, WriteToFreshPage) {
  Vaddr a = map(4);
  must_write(mm_, a + 3 * kP, 9);
  Pte pte = pte_at(mm_, a + 3 * kP);
  EXPECT_EQ(pte.kind(), PteKind::kPresent);
  EXPECT_TRUE(pte.write());
  EXPECT_TRUE(pte.dirty());
  Folio folio = folio_at(mm_, a + 3 * kP);
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(folio_mapcount(folio), 1);
  EXPECT_TRUE(PageAnonExclusive(folio.head()));
  EXPECT_NE(vma_at(mm_, a)->anon_vma(), nullptr);
  EXPECT_EQ(world_.nr_anon_vmas(), 1u);
  EXPECT_EQ(mm_.anon_rss(), 1);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_ - 1);
  EXPECT_EQ(must_read(mm_, a + 3 * kP), 9u);
  EXPECT_EQ(mm_.anon_rss(), 1);
  expect_clean(world_);
}

// Reads of a page already mapped change nothing (no allocation, no rss).
TEST_F(Fault, ReadOfMappedPageChangesNothing) {
  Vaddr a = map(1);
  must_write(mm_, a, 3);
  Pfn pfn = pte_at(mm_, a).pfn();
  EXPECT_EQ(must_read(mm_, a), 3u);
  EXPECT_EQ(pte_at(mm_, a).pfn(), pfn);
  EXPECT_EQ(mm_.anon_rss(), 1);
  EXPECT_EQ(nr_free_pages(), initial_free_pages_ - 1);
  expect_clean(world_);
}

// A write to a read-only PTE of an AnonExclusive page reuses the page in place.
TEST_F(Fault, WriteProtectFaultReusesExclusivePage) {
  Vaddr a = map(1);
  must_write(mm_, a, 5);
  Folio folio = folio_at(mm_, a);
  // Such an entry is left by a migration whose WRITE entry an mprotect
  // demoted to READ_EXCLUSIVE: the page comes back read-only but exclusive.
  folio_get(folio);
  folio_lock(folio);
  ASSERT_TRUE(try_to_migrate(folio));
  ASSERT_TRUE(do_mprotect(mm_, a, kP, kProtRead).ok());
  ASSERT_TRUE(do_mprotect(mm_, a, kP, kProtRw).ok());
  remove_migration_ptes(folio, folio, RmpFlags::kNone);
  folio_unlock(folio);
  folio_put(folio);
  ASSERT_FALSE(pte_at(mm_, a).write());
  ASSERT_TRUE(PageAnonExclusive(folio.head()));
  expect_clean(world_);

  uint64_t free_before = nr_free_pages();
  must_write(mm_, a + 8, 6);
  Pte pte = pte_at(mm_, a);
  EXPECT_EQ(pte.pfn(), folio.pfn());
  EXPECT_TRUE(pte.write());
  EXPECT_TRUE(pte.dirty());
  EXPECT_EQ(nr_free_pages(), free_before);
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(must_read(mm_, a), 5u);
  EXPECT_EQ(must_read(mm_, a + 8), 6u);
  expect_clean(world_);
}

// A write to a page shared after fork copies it; the old folio loses that mapping.
TEST_F(Fault, CowCopiesSharedPage) {
  Vaddr a = map(1);
  must_write(mm_, a, 0x11);
  must_write(mm_, a + 100, 0x22);
  MmStruct& child = dup_mm(mm_);
  Folio old = folio_at(mm_, a);
  ASSERT_EQ(folio_ref_count(old), 2);
  ASSERT_EQ(folio_mapcount(old), 2);
  uint64_t free_before = nr_free_pages();

  must_write(child, a, 0x33);
  expect_clean(world_);
  Pte cpte = pte_at(child, a);
  EXPECT_NE(cpte.pfn(), old.pfn());
  EXPECT_TRUE(cpte.write());
  EXPECT_TRUE(cpte.dirty());
  EXPECT_TRUE(cpte.young());
  Folio copy = folio_at(child, a);
  EXPECT_EQ(folio_ref_count(copy), 1);
  EXPECT_EQ(folio_mapcount(copy), 1);
  EXPECT_TRUE(PageAnonExclusive(copy.head()));
  EXPECT_EQ(copy.head().mapping, vma_at(child, a)->anon_vma());
  EXPECT_EQ(folio_ref_count(old), 1);
  EXPECT_EQ(folio_mapcount(old), 1);
  EXPECT_FALSE(PageAnonExclusive(old.head()));
  EXPECT_EQ(nr_free_pages(), free_before - 1);
  EXPECT_EQ(child.anon_rss(), 1);
  EXPECT_EQ(mm_.anon_rss(), 1);
  // The parent still maps the old page read-only.
  EXPECT_EQ(pte_at(mm_, a).pfn(), old.pfn());
  EXPECT_FALSE(pte_at(mm_, a).write());
  EXPECT_EQ(must_read(child, a), 0x33u);
  EXPECT_EQ(must_read(child, a + 100), 0x22u) << "the copy has the old bytes";
  EXPECT_EQ(must_read(mm_, a), 0x11u);
  expect_clean(world_);
}

// A write to a zero page shared after fork gives only the writer a private page.
TEST_F(Fault, WriteToZeroPageAfterFork) {
  Vaddr a = map(2);
  must_write(mm_, a, 1);  // gives the Vma an anon_vma, so fork copies it
  EXPECT_EQ(must_read(mm_, a + kP), 0u);
  MmStruct& child = dup_mm(mm_);
  ASSERT_EQ(pte_at(child, a + kP).kind(), PteKind::kZero);
  must_write(child, a + kP, 7);
  EXPECT_EQ(pte_at(child, a + kP).kind(), PteKind::kPresent);
  EXPECT_TRUE(pte_at(child, a + kP).write());
  EXPECT_EQ(pte_at(mm_, a + kP).kind(), PteKind::kZero);
  EXPECT_EQ(child.anon_rss(), 2);
  EXPECT_EQ(mm_.anon_rss(), 1);
  EXPECT_EQ(must_read(mm_, a + kP), 0u);
  EXPECT_EQ(folio_at(child, a + kP).head().mapping, vma_at(child, a)->anon_vma());
  expect_clean(world_);
}

// Once the other process exited, a write reuses the formerly shared page in place.
TEST_F(Fault, ReuseAfterOtherProcessExits) {
  Vaddr a = map(1);
  must_write(mm_, a, 1);
  MmStruct& child = dup_mm(mm_);
  Folio folio = folio_at(mm_, a);
  exit_mmap(child);
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(folio_mapcount(folio), 1);
  EXPECT_FALSE(PageAnonExclusive(folio.head()));
  EXPECT_FALSE(pte_at(mm_, a).write());
  expect_clean(world_);
  uint64_t free_before = nr_free_pages();
  must_write(mm_, a, 2);
  EXPECT_EQ(pte_at(mm_, a).pfn(), folio.pfn());
  EXPECT_TRUE(pte_at(mm_, a).write());
  EXPECT_TRUE(PageAnonExclusive(folio.head()));
  EXPECT_EQ(nr_free_pages(), free_before);
  EXPECT_EQ(folio.head().mapping, vma_at(mm_, a)->anon_vma());
  EXPECT_EQ(must_read(mm_, a), 2u);
  expect_clean(world_);
}

// Once the other process copied the page away, a write reuses it in place.
TEST_F(Fault, ReuseAfterOtherProcessCopied) {
  Vaddr a = map(1);
  must_write(mm_, a, 1);
  MmStruct& child = dup_mm(mm_);
  Folio folio = folio_at(mm_, a);
  must_write(child, a, 2);
  ASSERT_NE(pte_at(child, a).pfn(), folio.pfn());
  uint64_t free_before = nr_free_pages();
  must_write(mm_, a, 3);
  EXPECT_EQ(pte_at(mm_, a).pfn(), folio.pfn());
  EXPECT_TRUE(pte_at(mm_, a).write());
  EXPECT_TRUE(PageAnonExclusive(folio.head()));
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(nr_free_pages(), free_before);
  EXPECT_EQ(must_read(mm_, a), 3u);
  EXPECT_EQ(must_read(child, a), 2u);
  expect_clean(world_);
}

// A page mapped once but with an extra reference is copied, not reused.
TEST_F(Fault, ExtraReferencePreventsReuse) {
  Vaddr a = map(1);
  must_write(mm_, a, 1);
  MmStruct& child = dup_mm(mm_);
  Folio folio = folio_at(mm_, a);
  exit_mmap(child);
  folio_get(folio);
  must_write(mm_, a, 2);
  EXPECT_NE(pte_at(mm_, a).pfn(), folio.pfn());
  EXPECT_EQ(folio_ref_count(folio), 1);
  EXPECT_EQ(folio_mapcount(folio), 0);
  uint32_t old = 0;
  page_read(folio.head(), 0, &old, sizeof(old));
  EXPECT_EQ(old, 1u);
  folio_put(folio);
  EXPECT_EQ(must_read(mm_, a), 2u);
  expect_clean(world_);
}

// Reads after fork copy nothing and leave both PTEs read-only.
TEST_F(Fault, ReadsAfterForkDoNotCopy) {
  Vaddr a = map(1);
  must_write(mm_, a, 8);
  MmStruct& child = dup_mm(mm_);
  uint64_t free_before = nr_free_pages();
  EXPECT_EQ(must_read(child, a), 8u);
  EXPECT_EQ(must_read(mm_, a), 8u);
  EXPECT_EQ(pte_at(child, a).pfn(), pte_at(mm_, a).pfn());
  EXPECT_FALSE(pte_at(child, a).write());
  EXPECT_TRUE(pte_at(child, a).young()) << "the access made it young";
  EXPECT_EQ(nr_free_pages(), free_before);
  expect_clean(world_);
}

// Forbidden accesses fault before any handling; write- or exec-only is still readable.
TEST_F(Fault, AccessChecksFollowX86) {
  Vaddr ro = map(1, kProtRead);
  EXPECT_EQ(cpu_write_u32(mm_, ro, 1).error(), Errno::kFault);
  EXPECT_EQ(pte_at(mm_, ro).kind(), PteKind::kNone);
  Vaddr wo = map(1, kProtWrite);
  EXPECT_EQ(must_read(mm_, wo), 0u);
  must_write(mm_, wo, 4);
  EXPECT_EQ(must_read(mm_, wo), 4u);
  Vaddr xo = map(1, kProtExec);
  EXPECT_EQ(must_read(mm_, xo), 0u);
  EXPECT_EQ(cpu_write_u32(mm_, xo, 1).error(), Errno::kFault);
  Vaddr none = map(1, kProtNone);
  EXPECT_EQ(cpu_read_u32(mm_, none).error(), Errno::kFault);
  expect_clean(world_);
}

// handle_mm_fault answers SIGSEGV for an access the Vma does not allow.
TEST_F(Fault, HandleMmFaultChecksAccess) {
  Vaddr a = map(1, kProtRead);
  {
    ReadLock guard(mm_.mmap_lock);
    Vma* vma = mm_.vma_lookup(a);
    ASSERT_NE(vma, nullptr);
    EXPECT_EQ(handle_mm_fault(*vma, a, kFaultWrite), VmFault::kSigsegv);
    EXPECT_EQ(handle_mm_fault(*vma, a + 8, kFaultRead), VmFault::kDone);
  }
  EXPECT_EQ(pte_at(mm_, a).kind(), PteKind::kZero);
  expect_clean(world_);
}

// A 4 MiB world: 1023 frames besides the zero page.
class FaultOom : public MmTest {
 protected:
  FaultOom() : MmTest(4) {}
};

// A write fault without a free frame fails with -ENOMEM; the world stays consistent.
TEST_F(FaultOom, WriteWithoutFreeMemory) {
  const uint64_t frames = initial_free_pages_;
  ASSERT_EQ(frames, 1023u);
  Vaddr a = map(frames + 1);
  for (uint64_t i = 0; i < frames; i++) must_write(mm_, a + i * kP, uint32_t(i));
  EXPECT_EQ(nr_free_pages(), 0u);
  EXPECT_EQ(cpu_write_u32(mm_, a + frames * kP, 1).error(), Errno::kNoMem);
  EXPECT_EQ(pte_at(mm_, a + frames * kP).kind(), PteKind::kNone);
  EXPECT_EQ(must_read(mm_, a + frames * kP), 0u) << "reads still map the zero page";
  EXPECT_EQ(mm_.anon_rss(), int64_t(frames));
  expect_clean(world_);
  EXPECT_EQ(must_read(mm_, a + 1000 * kP), 1000u);
  // A frame freed elsewhere lets the write through.
  ASSERT_TRUE(do_munmap(mm_, a, kP).ok());
  must_write(mm_, a + frames * kP, 1);
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim
