// I16 corruption tests: a mirror entry the CPU side no longer backs.
#include <gtest/gtest.h>

#include "corruption.h"
#include "driver/dmirror.h"

namespace hmmsim::testing {
namespace {

// A device mirroring mm_, with pages 0-3 read into its table.
class MirrorCorruption : public CheckerCatches {
 protected:
  void SetUp() override {
    CheckerCatches::SetUp();
    dev_ = std::make_unique<DmirrorDevice>(world_, 0, kDevmemChunkSize);
    mirror_ = &dev_->open(mm_);
    DmirrorCmd cmd(page(0), kPages);
    cmd.data.resize(kPages * kPageSize);
    ASSERT_TRUE(mirror_->write(cmd).ok());
    ASSERT_EQ(mirror_->pt_size(), kPages);
    expect_clean(world_);
  }
  void TearDown() override {
    EXPECT_TRUE(dev_->close(*mirror_).ok());
    dev_.reset();
    CheckerCatches::TearDown();
  }
  std::unique_ptr<DmirrorDevice> dev_;
  Dmirror* mirror_ = nullptr;
};

// The CPU page went away (zapped behind the mirror's back) but the mirror
// still maps it.
TEST_F(MirrorCorruption, StaleEntryAfterUnmapIsCaught) {
  std::optional<DptEntry> e = mirror_->pt_lookup(page(1));
  ASSERT_TRUE(e);
  mirror_->pt_erase(page(1));
  ASSERT_TRUE(do_madvise(mm_, page(1), kPageSize, Advice::kDontNeed).ok());
  mirror_->debug_pt_store(page(1), *e);
  expect_caught(world_, "I16", hex(page(1).v));
  mirror_->pt_erase(page(1));
  expect_clean(world_);
}

// The mirror maps another page than the CPU does at that address.
TEST_F(MirrorCorruption, EntryNamingAnotherPageIsCaught) {
  std::optional<DptEntry> e = mirror_->pt_lookup(page(2));
  ASSERT_TRUE(e);
  DptEntry wrong = *e;
  wrong.pfn = folio(3).pfn();
  mirror_->debug_pt_store(page(2), wrong);
  expect_caught(world_, "I16", hex(folio(3).pfn().v));
  mirror_->debug_pt_store(page(2), *e);
  expect_clean(world_);
}

// A writable mirror entry over a read-only CPU entry: the write-protect
// did not reach the mirror.
TEST_F(MirrorCorruption, WritableEntryOverReadOnlyPteIsCaught) {
  std::optional<DptEntry> e = mirror_->pt_lookup(page(0));
  ASSERT_TRUE(e);
  ASSERT_TRUE(e->write);
  Pte pte = pte_at(mm_, page(0));
  set_pte(mm_, page(0), pte.with_write(false));
  expect_caught(world_, "I16", "writable");
  set_pte(mm_, page(0), pte);
  expect_clean(world_);
}

// The honest paths keep the mirror coherent: mprotect and munmap drop
// the entries, so the world stays clean.
TEST_F(MirrorCorruption, InvalidationKeepsTheMirrorClean) {
  ASSERT_TRUE(do_mprotect(mm_, page(0), kPageSize, kProtRead).ok());
  EXPECT_FALSE(mirror_->pt_lookup(page(0)).has_value());
  EXPECT_FALSE(mirror_->pt_lookup(page(1)).has_value());
  EXPECT_TRUE(mirror_->pt_lookup(page(2)).has_value());
  ASSERT_TRUE(do_munmap(mm_, page(3), kPageSize).ok());
  EXPECT_FALSE(mirror_->pt_lookup(page(3)).has_value());
  expect_clean(world_);
}

// A device-exclusive entry keeps its page's mapping (I1, I3 clean); one
// that names a device-private page instead of RAM is caught (I5).
TEST_F(MirrorCorruption, DeviceExclusiveEntryNamingDeviceMemoryIsCaught) {
  DmirrorCmd excl(page(0), 1);
  ASSERT_TRUE(mirror_->exclusive(excl).ok());
  Pte exclusive = pte_at(mm_, page(0));
  ASSERT_EQ(exclusive.kind(), PteKind::kDeviceExclusive);
  expect_clean(world_);
  DmirrorCmd mig(page(1), 1);
  ASSERT_TRUE(mirror_->migrate_to_dev(mig).ok());
  Pfn device_pfn = pte_at(mm_, page(1)).pfn();
  mirror_->pt_erase(page(0));
  set_pte(mm_, page(0), Pte::device_exclusive(device_pfn));
  expect_caught(world_, "I5", hex(device_pfn.v));
  set_pte(mm_, page(0), exclusive);
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim::testing
