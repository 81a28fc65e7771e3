// The Vma, rmap and lock invariants of the checker (src/check/check_vma.cc):
// each test corrupts one link or leaves one lock held and expects the
// invariant it breaks.
#include <gtest/gtest.h>

#include "check/corruption.h"
#include "mm/rmap.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

// VMA: two Vmas of one process that overlap.
TEST_F(CheckerCatches, OverlappingVmas) {
  ASSERT_TRUE(do_mprotect(mm_, page(2), 2 * kPageSize, kProtRead).ok());
  Vma& lower = vma();
  ASSERT_EQ(lower.end(), page(2));
  lower.set_range(lower.start(), page(3), lower.pgoff());
  expect_caught(world_, "VMA", hex(page(2).v));
  lower.set_range(lower.start(), page(2), lower.pgoff());
  expect_clean(world_);
}

// VMA: a Vma whose anon_vma no longer lists it (unlinked from the set).
TEST_F(CheckerCatches, VmaMissingFromAnonVma) {
  AnonVma* av = vma().anon_vma();
  ASSERT_NE(av, nullptr);
  ASSERT_EQ(av->vmas.erase(&vma()), 1u);
  expect_caught(world_, "VMA", hex(buf_.v));
  av->vmas.insert(&vma());
  expect_clean(world_);
}

// RMAP: a folio whose index puts its page at another address than its PTE.
TEST_F(CheckerCatches, FolioIndexWrong) {
  Folio f = folio(1);
  f.head().index += 1;
  expect_caught(world_, "RMAP", hex(f.pfn().v));
  f.head().index -= 1;
  expect_clean(world_);
}

// RMAP: a mapped folio that lost its anon mark, so rmap_walk skips it.
TEST_F(CheckerCatches, MappedFolioNotAnon) {
  Folio f = folio(2);
  f.head().clear(kPgAnon);
  expect_caught(world_, "RMAP", hex(f.pfn().v));
  f.head().set(kPgAnon);
  expect_clean(world_);
}

// RMAP: a mapped folio whose anon_vma is not a live one.
TEST_F(CheckerCatches, FolioAnonVmaDead) {
  Folio f = folio(3);
  AnonVma stale(world_.sched());
  AnonVma* av = f.head().mapping;
  f.head().mapping = &stale;
  expect_caught(world_, "RMAP", hex(f.pfn().v));
  f.head().mapping = av;
  expect_clean(world_);
}

// LOCK: a folio left locked between steps.
TEST_F(CheckerCatches, FolioLeftLocked) {
  Folio f = folio(0);
  folio_lock(f);
  expect_caught(world_, "LOCK", hex(f.pfn().v));
  folio_unlock(f);
  expect_clean(world_);
}

// LOCK: an mmap_lock left held between steps.
TEST_F(CheckerCatches, MmapLockLeftHeld) {
  mm_.mmap_lock.lock_shared();
  expect_caught(world_, "LOCK", fmt::format("mm {} mmap_lock", mm_.pid()));
  mm_.mmap_lock.unlock_shared();
  expect_clean(world_);
}

// LOCK: a PTE table's split lock left held between steps.
TEST_F(CheckerCatches, PteLockLeftHeld) {
  PteTable* table = pte_table_lookup(mm_, buf_, MmStruct::Alloc::kNo);
  ASSERT_NE(table, nullptr);
  table->ptl.lock();
  expect_caught(world_, "LOCK", hex(buf_.pmd_down().v));
  table->ptl.unlock();
  expect_clean(world_);
}

// LOCK: an anon_vma lock left held between steps.
TEST_F(CheckerCatches, AnonVmaLockLeftHeld) {
  AnonVma* root = vma().anon_vma()->root;
  root->rwsem.lock();
  expect_caught(world_, "LOCK", hex(buf_.v));
  root->rwsem.unlock();
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim
