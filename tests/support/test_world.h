// Helpers for tests: small worlds and short-hands for common steps.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "check/checker.h"
#include "mm/folio.h"
#include "mm/mm.h"
#include "mm/mm_struct.h"
#include "mm/world.h"

namespace hmmsim::testing {

// A world with `mib` MiB of RAM (default 64).
Config small_config(uint64_t mib = 64, uint64_t seed = 1);

// The folio mapped by the PTE at `addr` of `mm` (present or migration
// entry), or an empty Folio.
Folio folio_at(MmStruct& mm, Vaddr addr);
// The PTE at `addr`, or none when no table exists.
Pte pte_at(MmStruct& mm, Vaddr addr);

// Writes/reads one 32-bit word and asserts success (gtest failure otherwise).
void must_write(MmStruct& mm, Vaddr addr, uint32_t v);
uint32_t must_read(MmStruct& mm, Vaddr addr);

// Tears down every process of the world (exit_mmap), so that the World's
// destructor finds nothing live.
void exit_all(World& world);

// Runs the whole checker and fails the test with its report on a violation.
void expect_clean(World& world);

}  // namespace hmmsim::testing
