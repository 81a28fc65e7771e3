// MmTest: the fixture of the mm unit tests.
//
// Each test gets a fresh World (64 MiB unless the suite asks for another
// size through the constructor) with one process (`mm_`) and is audited
// when it ends: TearDown() exits every process still alive (exit_all), runs
// the invariant checker, and checks that every frame went back to the buddy
// allocator and every anon_vma was freed. A test that leaks a folio, a page
// table or an anon_vma therefore fails even if its own assertions pass.
//
// Tests name their suite by deriving from it: `class Fork : public MmTest {};`
// then `TEST_F(Fork, WriteProtectsBothSides)`.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>

#include "mm/mm.h"
#include "mm/vma.h"
#include "support/test_world.h"

namespace hmmsim::testing {

inline constexpr uint32_t kProtRw = kProtRead | kProtWrite;

class MmTest : public ::testing::Test {
 protected:
  explicit MmTest(uint64_t mib = 64);
  void TearDown() override;

  // mmap of `pages` private anonymous pages, top-down; fails the test and
  // returns Vaddr{0} if the mapping cannot be made.
  Vaddr map(uint64_t pages, uint32_t prot = kProtRw) { return map_in(mm_, pages, prot); }
  Vaddr map_in(MmStruct& mm, uint64_t pages, uint32_t prot = kProtRw);
  // MAP_FIXED mapping of `pages` pages at `addr`.
  void map_fixed(Vaddr addr, uint64_t pages, uint32_t prot = kProtRw);

  uint64_t nr_free_pages() { return world_.mem().buddy().nr_free_pages(); }

  World world_;
  MmStruct& mm_;
  // Free frames right after the World was built (everything but the zero page).
  const uint64_t initial_free_pages_;
};

}  // namespace hmmsim::testing
