#include "support/test_world.h"

#include <gtest/gtest.h>

#include "mm/internal.h"
#include "mm/rmap.h"

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

Pmd pmd_at(MmStruct& mm, Vaddr addr) NO_THREAD_SAFETY_ANALYSIS {
  PmdTable* table = mm.pmd_table(addr, MmStruct::Alloc::kNo);
  if (!table) return Pmd::none();
  MutexLock guard(table->ptl);
  return table->slot(addr.pmd_index()).entry;
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

void expect_clean_but_locked(World& world) {
  CheckReport report = check_world(world);
  CheckReport others;
  for (const Violation& v : report.violations()) {
    bool folio_lock = v.invariant == "LOCK" && v.message.rfind("folio ", 0) == 0;
    if (!folio_lock) {
      others.add(v);
    }
  }
  EXPECT_TRUE(others.ok()) << others.to_string();
}

Vma* vma_at(MmStruct& mm, Vaddr addr) {
  const auto& vmas = mm.vmas_quiesced();
  auto it = vmas.upper_bound(addr.v);
  if (it == vmas.begin()) return nullptr;
  Vma* vma = std::prev(it)->second.get();
  return vma->contains(addr) ? vma : nullptr;
}

size_t nr_vmas(MmStruct& mm) {
  return mm.vmas_quiesced().size();
}

void write_pattern(MmStruct& mm, Vaddr addr, uint64_t pages, uint32_t tag) {
  for (uint64_t i = 0; i < pages; i++) must_write(mm, addr + i * kPageSize, tag + uint32_t(i));
}

void expect_pattern(MmStruct& mm, Vaddr addr, uint64_t pages, uint32_t tag) {
  for (uint64_t i = 0; i < pages; i++) {
    EXPECT_EQ(must_read(mm, addr + i * kPageSize), tag + uint32_t(i))
        << "page " << i << " at " << std::hex << (addr + i * kPageSize).v;
  }
}

RmapCount rmap_count(Folio folio) {
  RmapCount count;
  folio_lock(folio);
  rmap_walk(
      folio,
      [&](Vma& vma, Vaddr addr) {
        count.vmas++;
        PageVmaMappedWalk pvmw(folio, vma, addr, PvmwFlags::kNone);
        while (pvmw.next()) count.mappings++;
        return true;
      },
      RmapLocked::kNo);
  folio_unlock(folio);
  return count;
}

}  // namespace hmmsim::testing
