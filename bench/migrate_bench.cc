// Migrating a 64 MiB buffer to the dmirror device and back, as THPs and as
// 4 KiB pages, beside a plain memcpy of the same bytes in the same run.
//
// bytes_per_second counts the 64 MiB each way (128 MiB per iteration) for
// the migrations and 128 MiB of memcpy for the baseline, so the ratio of
// the three rates is the figure to read.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "driver/dmirror.h"
#include "mm/mm.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

constexpr uint64_t kBufBytes = 64ull << 20;

void BM_MigrateRoundTrip(benchmark::State& state) {
  bool thp = state.range(0) != 0;
  Config cfg;
  cfg.sysmem_bytes = 512ull << 20;
  cfg.thp = thp ? ThpPolicy::kAlways : ThpPolicy::kNever;
  World world(cfg);
  DmirrorDevice dev(world, 0, 1ull << 30);
  MmStruct& mm = world.create_mm();
  Vaddr buf = do_mmap(mm, Vaddr{0}, kBufBytes, kProtRead | kProtWrite, MapFlags::kPrivate).value();
  std::vector<std::byte> pattern(kBufBytes, std::byte{0x5a});
  (void)cpu_write(mm, buf, pattern);
  Dmirror& mirror = dev.open(mm);
  uint64_t npages = kBufBytes / kPageSize;
  for (auto _ : state) {
    DmirrorCmd to_dev(buf, npages);
    if (!mirror.migrate_to_dev(to_dev).ok()) state.SkipWithError("migrate_to_dev failed");
    DmirrorCmd to_sys(buf, npages);
    if (!mirror.migrate_to_sys(to_sys).ok()) state.SkipWithError("migrate_to_sys failed");
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(2 * kBufBytes));
  (void)dev.close(mirror);
  exit_mmap(mm);
}
BENCHMARK(BM_MigrateRoundTrip)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond);

void BM_MemcpyRoundTrip(benchmark::State& state) {
  std::vector<std::byte> a(kBufBytes, std::byte{0x5a}), b(kBufBytes);
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), kBufBytes);
    std::memcpy(a.data(), b.data(), kBufBytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(2 * kBufBytes));
}
BENCHMARK(BM_MemcpyRoundTrip)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace hmmsim
