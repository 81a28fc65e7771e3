#include "support/test_world.h"

#include <gtest/gtest.h>

#include "mm/internal.h"

namespace hmmsim::testing {

Config small_config(uint64_t mib, uint64_t seed) {
  return Config{.sysmem_bytes = mib << 20, .seed = seed};
}

Pte pte_at(MmStruct& mm, Vaddr addr) NO_THREAD_SAFETY_ANALYSIS {
  PteTable* table = pte_table_lookup(mm, addr, MmStruct::Alloc::kNo);
  if (!table) return Pte::none();
  MutexLock guard(table->ptl);
  return table->get(addr.pte_index());
}

Folio folio_at(MmStruct& mm, Vaddr addr) {
  Pte pte = pte_at(mm, addr);
  if (!pte.has_pfn()) return Folio();
  return pfn_folio(mm.world().mem(), pte.pfn());
}

void must_write(MmStruct& mm, Vaddr addr, uint32_t v) {
  Status st = cpu_write_u32(mm, addr, v);
  ASSERT_TRUE(st.ok()) << "write at " << std::hex << addr.v << " failed: "
                       << errno_name(st.error());
}

uint32_t must_read(MmStruct& mm, Vaddr addr) {
  Result<uint32_t> r = cpu_read_u32(mm, addr);
  EXPECT_TRUE(r.ok()) << "read at " << std::hex << addr.v << " failed";
  return r.ok() ? r.value() : 0;
}

void exit_all(World& world) {
  for (MmStruct* mm : world.mms()) exit_mmap(*mm);
}

void expect_clean(World& world) {
  CheckReport report = check_world(world);
  EXPECT_TRUE(report.ok()) << report.to_string();
}

}  // namespace hmmsim::testing
