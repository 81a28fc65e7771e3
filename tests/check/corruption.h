// CheckerCatches: the fixture of the checker's corruption tests.
//
// Each test starts from a valid world (one process with kPages written pages
// in a PMD-aligned Vma, checked clean), corrupts ONE thing behind the model's
// back, expects check_world() to report the invariant that thing breaks,
// naming the folio pfn or the address and carrying a dump, then undoes the
// corruption and expects the world clean again. The undo always runs (the
// checks in between are EXPECTs), because teardown asserts on broken state.
//
// The helpers here poke page tables directly, under the page-table locks the
// model would hold, as a buggy mm/ function would.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "base/assert.h"
#include "check/checker.h"
#include "mm/internal.h"
#include "mm/mm.h"
#include "mm/pgtable.h"
#include "support/test_world.h"

namespace hmmsim::testing {

inline std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }

// Runs the checker and expects a violation of `invariant` whose message
// contains `names` (a pfn or an address) and which carries a dump.
inline CheckReport expect_caught(World& world, const std::string& invariant,
                                 const std::string& names) {
  CheckReport report = check_world(world);
  EXPECT_TRUE(report.has(invariant)) << "expected " << invariant << ", got:\n"
                                     << report.to_string();
  bool named = false;
  for (const Violation& v : report.violations()) {
    if (v.invariant != invariant || v.message.find(names) == std::string::npos) continue;
    named = true;
    EXPECT_FALSE(v.dump.empty()) << invariant << " reported without a dump: " << v.message;
  }
  EXPECT_TRUE(named) << "no " << invariant << " violation names " << names << ":\n"
                     << report.to_string();
  return report;
}

// Replaces the PTE at `addr` (whose PTE table must exist) under its ptl and
// returns the old entry.
inline Pte set_pte(MmStruct& mm, Vaddr addr, Pte pte) {
  PteTable* table = pte_table_lookup(mm, addr, MmStruct::Alloc::kNo);
  HMM_ASSERT(table != nullptr, "no PTE table at {:#x}", addr.v);
  MutexLock guard(table->ptl);
  Pte old = table->get(addr.pte_index());
  table->set(addr.pte_index(), pte);
  return old;
}

// The PMD table covering `addr`, which must exist.
inline PmdTable& pmd_table_at(MmStruct& mm, Vaddr addr) {
  PmdTable* pmdt = mm.pmd_table(addr, MmStruct::Alloc::kNo);
  HMM_ASSERT(pmdt != nullptr, "no PMD table at {:#x}", addr.v);
  return *pmdt;
}

// Replaces the PMD entry at `addr` under the PMD lock (leaving its table and
// deposit alone) and returns the old entry.
inline Pmd set_pmd(MmStruct& mm, Vaddr addr, Pmd pmd) {
  PmdTable& pmdt = pmd_table_at(mm, addr);
  MutexLock guard(pmdt.ptl);
  Pmd old = pmdt.slot(addr.pmd_index()).entry;
  pmdt.slot(addr.pmd_index()).entry = pmd;
  return old;
}

// Swaps the deposited table of the PMD slot at `addr` with `deposit`.
inline void swap_deposit(MmStruct& mm, Vaddr addr, std::unique_ptr<PteTable>& deposit) {
  PmdTable& pmdt = pmd_table_at(mm, addr);
  MutexLock guard(pmdt.ptl);
  std::swap(pmdt.slot(addr.pmd_index()).deposit, deposit);
}

class CheckerCatches : public ::testing::Test {
 protected:
  static constexpr uint64_t kPages = 4;

  CheckerCatches() : world_(small_config()), mm_(world_.create_mm()) {}

  void SetUp() override {
    Result<Vaddr> buf = do_mmap(mm_, Vaddr{0}, kPages * kPageSize, kProtRead | kProtWrite,
                                MapFlags::kPrivate, kPmdSize);
    ASSERT_TRUE(buf.ok());
    buf_ = *buf;
    for (uint64_t i = 0; i < kPages; i++) must_write(mm_, page(i), uint32_t(i + 1));
    expect_clean(world_);
  }

  void TearDown() override { exit_all(world_); }

  Vaddr page(uint64_t i) const { return buf_ + i * kPageSize; }
  Folio folio(uint64_t i) { return folio_at(mm_, page(i)); }
  Vma& vma() { return *vma_at(mm_, buf_); }
  // The folio a PMD leaf at `addr` names.
  Folio folio_at_pmd(Vaddr addr) { return pfn_folio(world_.mem(), pmd_at(mm_, addr).pfn()); }

  // A new process sharing buf_'s pages copy-on-write with mm_.
  MmStruct& fork() {
    MmStruct& child = dup_mm(mm_);
    expect_clean(world_);
    return child;
  }

  // A PMD-mapped THP: a 2 MiB Vma with MADV_HUGEPAGE whose first touch is a
  // write (do_huge_pmd_anonymous_page). Returns its address, or Vaddr{0}
  // (and fails the test) if the fault fell back to 4 KiB pages.
  Vaddr map_thp() {
    Result<Vaddr> addr = do_mmap(mm_, Vaddr{0}, kPmdSize, kProtRead | kProtWrite,
                                 MapFlags::kPrivate, kPmdSize);
    EXPECT_TRUE(addr.ok());
    if (!addr.ok()) return Vaddr{0};
    EXPECT_TRUE(do_madvise(mm_, *addr, kPmdSize, Advice::kHugePage).ok());
    must_write(mm_, *addr, 0x7ba);
    Pmd pmd = pmd_at(mm_, *addr);
    EXPECT_EQ(pmd.kind(), PmdKind::kPresent) << "no THP: " << pmd.describe();
    if (pmd.kind() != PmdKind::kPresent) return Vaddr{0};
    expect_clean(world_);
    return *addr;
  }

  World world_;
  MmStruct& mm_;
  Vaddr buf_;
};

}  // namespace hmmsim::testing
