// THP costs: faulting 2 MiB in as one THP or as 512 small pages, splitting
// a PMD, and splitting a folio (unmap, freeze, split, remap).
//
// Run: build/bench/hmmsim_bench --benchmark_filter=Thp
// Compare the ratios printed in the same run, not absolute times.
#include <benchmark/benchmark.h>

#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "mm/mm.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

Config bench_config(ThpPolicy thp) {
  Config c;
  c.sysmem_bytes = 64ull << 20;
  c.thp = thp;
  return c;
}

// Maps and writes one 2 MiB range; returns its address.
Vaddr map_and_touch(MmStruct& mm) {
  Vaddr a = do_mmap(mm, Vaddr{0}, kPmdSize, kProtRead | kProtWrite, MapFlags::kPrivate).value();
  for (uint64_t off = 0; off < kPmdSize; off += kPageSize) (void)cpu_write_u32(mm, a + off, 1);
  return a;
}

// The THP a PMD leaf maps at `a`.
Folio pmd_folio_at(World& world, MmStruct& mm, Vaddr a) {
  PmdTable* t = mm.pmd_table(a, MmStruct::Alloc::kNo);
  MutexLock guard(t->ptl);
  return pfn_folio(world.mem(), t->slot(a.pmd_index()).entry.pfn());
}

// Fault in 2 MiB, then unmap it: arg 1 = THP, 0 = 4 KiB pages.
void BM_ThpFault2M(benchmark::State& state) {
  World world(bench_config(state.range(0) ? ThpPolicy::kAlways : ThpPolicy::kNever));
  MmStruct& mm = world.create_mm();
  for (auto _ : state) {
    Vaddr a = map_and_touch(mm);
    (void)do_munmap(mm, a, kPmdSize);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kPmdSize));
  exit_mmap(mm);
}
BENCHMARK(BM_ThpFault2M)->Arg(1)->Arg(0);

// split_huge_pmd (non-freeze) of a PMD-mapped THP.
void BM_PmdSplit(benchmark::State& state) {
  World world(bench_config(ThpPolicy::kAlways));
  MmStruct& mm = world.create_mm();
  for (auto _ : state) {
    state.PauseTiming();
    Vaddr a = map_and_touch(mm);
    state.ResumeTiming();
    {
      ReadLock guard(mm.mmap_lock);
      split_huge_pmd_address(*mm.vma_lookup(a), a, Freeze::kNo);
    }
    state.PauseTiming();
    (void)do_munmap(mm, a, kPmdSize);
    state.ResumeTiming();
  }
  exit_mmap(mm);
}
BENCHMARK(BM_PmdSplit);

// split_folio of a PMD-mapped THP: unmap to migration entries, freeze,
// split to 512 folios, unfreeze, remap.
void BM_FolioSplit(benchmark::State& state) {
  World world(bench_config(ThpPolicy::kAlways));
  MmStruct& mm = world.create_mm();
  for (auto _ : state) {
    state.PauseTiming();
    Vaddr a = map_and_touch(mm);
    Folio f = pmd_folio_at(world, mm, a);
    folio_get(f);
    folio_lock(f);
    state.ResumeTiming();
    (void)split_folio(world, f);
    state.PauseTiming();
    folio_unlock(f);
    folio_put(f);
    (void)do_munmap(mm, a, kPmdSize);
    state.ResumeTiming();
  }
  exit_mmap(mm);
}
BENCHMARK(BM_FolioSplit);

}  // namespace
}  // namespace hmmsim
