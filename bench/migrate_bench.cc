// Migrating a 64 MiB buffer to the dmirror device and back, as THPs and as
// 4 KiB pages, beside a plain memcpy of the same bytes in the same run.
//
// bytes_per_second counts the 64 MiB each way (128 MiB per iteration) for
// the migrations and for both memcpy baselines, so the ratio of the rates
// is the figure to read: BM_MemcpyRoundTrip is the two copies a move there
// and back needs, BM_MemcpyRoundTripWithReadBack adds the third copy the
// dmirror driver makes (its read-back), i.e. the same bytes copied as the
// migration copies.
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
  // One command block for the whole run, as a process reuses its buffer.
  DmirrorCmd to_dev(buf, npages), to_sys(buf, npages);
  auto round_trip = [&] {
    if (!mirror.migrate_to_dev(to_dev).ok()) state.SkipWithError("migrate_to_dev failed");
    to_sys.cpages = 0;
    if (!mirror.migrate_to_sys(to_sys).ok()) state.SkipWithError("migrate_to_sys failed");
  };
  // Warm-up: until every frame the run cycles through has been touched
  // once, the host's first-touch faults, not the model, set the pace.
  for (int i = 0; i < 8; i++) round_trip();
  for (auto _ : state) round_trip();
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

// The copies the round trip does, with memcpy: MIGRATE_TO_DEV copies the
// buffer to the device and then reads it back into the caller's buffer
// (lib/test_hmm.c returns the migrated data for verification), and
// MIGRATE_TO_SYS copies it back. Three copies of 64 MiB per iteration; the
// same bytes_per_second accounting as the migration (128 MiB moved), so
// the rates compare like for like.
void BM_MemcpyRoundTripWithReadBack(benchmark::State& state) {
  std::vector<std::byte> ram(kBufBytes, std::byte{0x5a}), dev(kBufBytes), bounce(kBufBytes);
  for (auto _ : state) {
    std::memcpy(dev.data(), ram.data(), kBufBytes);
    std::memcpy(bounce.data(), dev.data(), kBufBytes);
    std::memcpy(ram.data(), dev.data(), kBufBytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(2 * kBufBytes));
}
BENCHMARK(BM_MemcpyRoundTripWithReadBack)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace hmmsim
