// Helpers for tests: small worlds and short-hands for common steps.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "check/checker.h"
#include "mm/folio.h"
#include "mm/mm.h"
#include "mm/mm_struct.h"
#include "mm/vma.h"
#include "mm/world.h"

namespace hmmsim::testing {

// A world with `mib` MiB of RAM (default 64).
Config small_config(uint64_t mib = 64, uint64_t seed = 1);

// The folio mapped by the PTE at `addr` of `mm` (present or migration
// entry), or an empty Folio.
Folio folio_at(MmStruct& mm, Vaddr addr);
// The PTE at `addr`, or none when no table exists.
Pte pte_at(MmStruct& mm, Vaddr addr);
// The PMD entry at `addr`, or none when no PMD table exists.
Pmd pmd_at(MmStruct& mm, Vaddr addr);

// Writes/reads one 32-bit word and asserts success (gtest failure otherwise).
void must_write(MmStruct& mm, Vaddr addr, uint32_t v);
uint32_t must_read(MmStruct& mm, Vaddr addr);

// Tears down every process of the world (exit_mmap), so that the World's
// destructor finds nothing live.
void exit_all(World& world);

// Runs the whole checker and fails the test with its report on a violation.
void expect_clean(World& world);
// The same, but tolerates folios left locked: for tests that drive a
// migration by hand and hold the folio lock while they look at the state.
void expect_clean_but_locked(World& world);

// The Vma containing `addr`, or nullptr (the test is the only thread).
Vma* vma_at(MmStruct& mm, Vaddr addr);
// The number of Vmas of `mm`.
size_t nr_vmas(MmStruct& mm);

// Writes `tag + i` into the first word of page i of [addr, addr + pages),
// and checks that it reads back.
void write_pattern(MmStruct& mm, Vaddr addr, uint64_t pages, uint32_t tag);
void expect_pattern(MmStruct& mm, Vaddr addr, uint64_t pages, uint32_t tag);

// What an rmap walk of a folio finds: the Vmas it visits and the entries
// (present or device) in them that map the folio.
struct RmapCount {
  int vmas = 0;
  int mappings = 0;
};
// Locks the folio, walks its rmap and unlocks it.
RmapCount rmap_count(Folio folio);

}  // namespace hmmsim::testing
