// The lifecycle routes of a device-private THP: what each operation does to the
// PMD and the folio's counts (kernel-semantics §4-§5).
#include <gtest/gtest.h>

#include "driver/dmirror.h"
#include "mm/deferred_split.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "support/test_world.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

class DeviceThp : public ::testing::Test {
 protected:
  DeviceThp() : world_(small_config(128)), dev_(world_, 0, 4 * kDevmemChunkSize) {}
  ~DeviceThp() override { exit_all(world_); }

  // A THP of `mm` written with pattern `tag` and migrated to the device
  // whole: one device-private PMD.
  Vaddr device_thp(MmStruct& mm, uint32_t tag = 7) {
    Result<Vaddr> a = do_mmap(mm, Vaddr{0}, kPmdSize, kProtRead | kProtWrite,
                              MapFlags::kPrivate, kPmdSize);
    EXPECT_TRUE(a.ok());
    EXPECT_TRUE(do_madvise(mm, *a, kPmdSize, Advice::kHugePage).ok());
    write_pattern(mm, *a, kHPageNr, tag);
    DmirrorCmd cmd(*a, kHPageNr);
    EXPECT_TRUE(dev_.open(mm).migrate_to_dev(cmd).ok());
    EXPECT_EQ(pmd_at(mm, *a).kind(), PmdKind::kDevicePrivate);
    return *a;
  }

  Folio device_folio(MmStruct& mm, Vaddr addr) {
    return pfn_folio(world_.mem(), pmd_at(mm, addr).pfn());
  }

  World world_;
  DmirrorDevice dev_;
};

TEST_F(DeviceThp, PartialMunmapSplitsThePmdWithoutFreezing) {
  MmStruct& mm = world_.create_mm();
  Vaddr a = device_thp(mm);
  Folio f = device_folio(mm, a);
  EXPECT_EQ(folio_ref_count(f), 1);
  EXPECT_EQ(folio_mapcount(f), 1);
  ASSERT_TRUE(do_munmap(mm, a + 256 * kPageSize, 128 * kPageSize).ok());
  expect_clean(world_);
  EXPECT_EQ(pmd_at(mm, a).kind(), PmdKind::kTable);
  EXPECT_EQ(pte_at(mm, a).kind(), PteKind::kDevicePrivate);
  EXPECT_EQ(f.order().v, 9u);
  EXPECT_EQ(folio_mapcount(f), 384);
  EXPECT_EQ(folio_ref_count(f), 384);
  expect_pattern(mm, a, 256, 7);
  expect_clean(world_);
}

TEST_F(DeviceThp, PartialMprotectSplitsThePmd) {
  MmStruct& mm = world_.create_mm();
  Vaddr a = device_thp(mm);
  Folio f = device_folio(mm, a);
  ASSERT_TRUE(do_mprotect(mm, a, 16 * kPageSize, kProtRead).ok());
  expect_clean(world_);
  EXPECT_EQ(pte_at(mm, a).kind(), PteKind::kDevicePrivate);
  EXPECT_FALSE(pte_at(mm, a).write());
  EXPECT_TRUE(pte_at(mm, a + 16 * kPageSize).write());
  EXPECT_EQ(folio_mapcount(f), 512);
  EXPECT_EQ(folio_ref_count(f), 512);
  expect_pattern(mm, a, kHPageNr, 7);
  expect_clean(world_);
}

TEST_F(DeviceThp, DontneedOnePage) {
  MmStruct& mm = world_.create_mm();
  Vaddr a = device_thp(mm);
  Folio f = device_folio(mm, a);
  ASSERT_TRUE(do_madvise(mm, a + kPageSize, kPageSize, Advice::kDontNeed).ok());
  expect_clean(world_);
  EXPECT_EQ(folio_mapcount(f), 511);
  EXPECT_EQ(must_read(mm, a + kPageSize), 0u);
  expect_clean(world_);
}

TEST_F(DeviceThp, WholePmdMprotect) {
  MmStruct& mm = world_.create_mm();
  Vaddr a = device_thp(mm);
  ASSERT_TRUE(do_mprotect(mm, a, kPmdSize, kProtRead).ok());
  expect_clean(world_);
  EXPECT_EQ(pmd_at(mm, a).kind(), PmdKind::kDevicePrivate);
  EXPECT_FALSE(pmd_at(mm, a).write());
  expect_pattern(mm, a, kHPageNr, 7);
  expect_clean(world_);
}

TEST_F(DeviceThp, ForkSharesThePmd) {
  MmStruct& mm = world_.create_mm();
  Vaddr a = device_thp(mm);
  Folio f = device_folio(mm, a);
  MmStruct& child = dup_mm(mm);
  expect_clean(world_);
  EXPECT_EQ(folio_entire_mapcount(f), 2);
  EXPECT_EQ(folio_ref_count(f), 2);
  must_write(child, a, 99);
  expect_clean(world_);
  expect_pattern(mm, a, kHPageNr, 7);
  EXPECT_EQ(must_read(child, a), 99u);
  expect_clean(world_);
}

TEST_F(DeviceThp, MremapWholePmd) {
  MmStruct& mm = world_.create_mm();
  Vaddr a = device_thp(mm);
  Result<Vaddr> dst = do_mmap(mm, Vaddr{0}, 2 * kPmdSize, kProtNone, MapFlags::kPrivate, kPmdSize);
  ASSERT_TRUE(dst.ok());
  Result<Vaddr> b = do_mremap(mm, a, kPmdSize, kPmdSize, kMremapMaymove | kMremapFixed, *dst);
  ASSERT_TRUE(b.ok());
  expect_clean(world_);
  EXPECT_EQ(pmd_at(mm, *b).kind(), PmdKind::kDevicePrivate);
  expect_pattern(mm, *b, kHPageNr, 7);
  expect_clean(world_);
}

TEST_F(DeviceThp, MremapPartSplits) {
  MmStruct& mm = world_.create_mm();
  Vaddr a = device_thp(mm);
  Result<Vaddr> b = do_mremap(mm, a + 64 * kPageSize, 64 * kPageSize, 64 * kPageSize,
                              kMremapMaymove, Vaddr{0});
  ASSERT_TRUE(b.ok());
  expect_clean(world_);
  expect_pattern(mm, a, 64, 7);
  expect_clean(world_);
}

TEST_F(DeviceThp, MigrateBackAfterPartialUnmap) {
  MmStruct& mm = world_.create_mm();
  Vaddr a = device_thp(mm);
  ASSERT_TRUE(do_munmap(mm, a + 128 * kPageSize, 128 * kPageSize).ok());
  DmirrorCmd sys(a, 128);
  ASSERT_TRUE(dev_.open(mm).migrate_to_sys(sys).ok());
  expect_clean(world_);
  EXPECT_EQ(pte_at(mm, a).kind(), PteKind::kPresent);
  expect_pattern(mm, a, 128, 7);
  expect_clean(world_);
}

TEST_F(DeviceThp, ReleaseAfterPartialUnmap) {
  MmStruct& mm = world_.create_mm();
  Vaddr a = device_thp(mm);
  ASSERT_TRUE(do_munmap(mm, a + 128 * kPageSize, 128 * kPageSize).ok());
  ASSERT_TRUE(dev_.release().ok());
  expect_clean(world_);
  // Eviction copies the folio whole into a RAM THP (finding F2): 384 of
  // its pages mapped by PTEs, the other 128 unmapped, and the folio is not
  // on the deferred split queue, because no mapping of it was removed.
  EXPECT_EQ(pte_at(mm, a).kind(), PteKind::kPresent);
  Folio back = folio_at(mm, a);
  EXPECT_FALSE(back.is_device_private());
  EXPECT_EQ(back.order().v, 9u);
  EXPECT_EQ(folio_mapcount(back), 384);
  EXPECT_FALSE(world_.mem().deferred_split().queued(back));
  EXPECT_EQ(deferred_split_scan(world_, 16), 0u);
  expect_pattern(mm, a, 128, 7);
  expect_clean(world_);
}

// I11 for device memory: a device-private THP is split only once nothing
// maps it. folio_split_unmapped() on one still mapped by its device-private
// PMD, or by device-private PTEs after a partial munmap, aborts naming I11.
void split_mapped_device_thp(bool partial) NO_THREAD_SAFETY_ANALYSIS {
  World world(small_config(128));
  DmirrorDevice dev(world, 0, 4 * kDevmemChunkSize);
  MmStruct& mm = world.create_mm();
  Vaddr a = do_mmap(mm, Vaddr{0}, kPmdSize, kProtRead | kProtWrite, MapFlags::kPrivate, kPmdSize)
                .value();
  (void)do_madvise(mm, a, kPmdSize, Advice::kHugePage);
  write_pattern(mm, a, kHPageNr, 1);
  DmirrorCmd cmd(a, kHPageNr);
  (void)dev.open(mm).migrate_to_dev(cmd);
  PmdTable* t = mm.pmd_table(a, MmStruct::Alloc::kNo);
  Folio f = pfn_folio(world.mem(), t->slot_quiesced(a.pmd_index()).entry.pfn());
  if (partial) (void)do_munmap(mm, a, 16 * kPageSize);
  folio_get(f);
  folio_lock(f);
  (void)folio_split_unmapped(world, f);
}

TEST(DeviceThpDeathTest, SplittingAPmdMappedDeviceFolioAborts) {
  EXPECT_DEATH(split_mapped_device_thp(false), "I11");
}

TEST(DeviceThpDeathTest, SplittingAPteMappedDeviceFolioAborts) {
  EXPECT_DEATH(split_mapped_device_thp(true), "I11");
}

}  // namespace
}  // namespace hmmsim
