// Model-based random test of the syscall interface (support/random_driver.h):
// random mmap, munmap, mprotect, madvise, fork, exit, CPU loads and stores
// and migrate_page over up to six processes, each step checked by the
// invariant checker and against a byte-level oracle. Three mixes:
//   base    4 KiB pages only (THP off); the oracle predicts MM_ANONPAGES.
//   thp     THP on (kMadvise for odd seeds, kAlways for even ones): huge
//           mmaps, PMD-crossing munmap/mprotect/madvise (DONTNEED, FREE,
//           COLLAPSE), mremap, fork COW of THPs, the deferred split shrinker.
//   device  thp plus two dmirror devices: migrate_to_dev/to_sys (device
//           THPs), FAIL_ALLOC, release, close, CPU faults of device pages.
//
// Replay: a failure prints its mix, seed, step and the command that replays
// it. RandomMm.Replay runs exactly the seed HMMSIM_RANDOM_SEED=<seed> of the
// mix HMMSIM_RANDOM_MIX=base|thp|device (default base) for
// HMMSIM_RANDOM_STEPS=<n> steps (default 2500), and HMMSIM_RANDOM_VERBOSE=1
// prints every operation as it runs. For example:
//   HMMSIM_RANDOM_MIX=thp HMMSIM_RANDOM_SEED=3 HMMSIM_RANDOM_STEPS=812
//   HMMSIM_RANDOM_VERBOSE=1 build/tests/mm_tests --gtest_filter='RandomMm.Replay'
// HMMSIM_LONG=1 enables RandomMm.Long: 200,000 base steps over eight seeds,
// then 80,000 thp and 100,000 device steps.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <cstring>
#include <string>

#include "support/random_driver.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

constexpr uint64_t kDefaultSteps = 2500;

std::optional<uint64_t> env_u64(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::strtoull(v, nullptr, 0);
}

constexpr uint64_t kThpSteps = 1500;
constexpr uint64_t kDeviceSteps = 600;

void run_seed(uint64_t seed, uint64_t steps, RandomMix mix = RandomMix::kBase) {
  RandomConfig config = RandomConfig::for_mix(mix, seed, steps);
  config.verbose = env_u64("HMMSIM_RANDOM_VERBOSE").value_or(0) != 0;
  std::fprintf(stderr, "random: %s seed %llu, %llu steps\n", random_mix_name(mix),
               static_cast<unsigned long long>(seed), static_cast<unsigned long long>(steps));
  RandomDriver driver(config);
  std::optional<std::string> failure = driver.run();
  ASSERT_FALSE(failure.has_value()) << *failure;
}

class RandomMmSeed : public ::testing::TestWithParam<uint64_t> {};

// 2,500 steps of one seed agree with the oracle and the checker at every
// step; four seeds make the default 10,000 steps.
TEST_P(RandomMmSeed, AgreesWithOracle) {
  run_seed(GetParam(), kDefaultSteps);
}

std::string seed_name(const ::testing::TestParamInfo<uint64_t>& param) {
  return "seed" + std::to_string(param.param);
}

INSTANTIATE_TEST_SUITE_P(Random, RandomMmSeed, ::testing::Values(1, 2, 3, 4), seed_name);

class RandomThpSeed : public ::testing::TestWithParam<uint64_t> {};

// With THP on, 1500 steps of one seed agree with the oracle's bytes and
// the checker at every step.
TEST_P(RandomThpSeed, AgreesWithOracle) {
  run_seed(GetParam(), kThpSteps, RandomMix::kThp);
}

INSTANTIATE_TEST_SUITE_P(Random, RandomThpSeed, ::testing::Values(1, 2, 3, 4), seed_name);

class RandomDeviceSeed : public ::testing::TestWithParam<uint64_t> {};

// With THP and a dmirror device, 600 steps of one seed (the checker scans
// every device page, so a device step costs more): the CPU and
// the devices read the oracle's bytes, and the checker holds at every step.
TEST_P(RandomDeviceSeed, AgreesWithOracle) {
  run_seed(GetParam(), kDeviceSteps, RandomMix::kDevice);
}

INSTANTIATE_TEST_SUITE_P(Random, RandomDeviceSeed, ::testing::Values(1, 2, 3, 4), seed_name);

// Replays the seed named by HMMSIM_RANDOM_SEED (skipped without it) of the
// mix HMMSIM_RANDOM_MIX (base, thp or device; base by default).
TEST(RandomMm, Replay) {
  std::optional<uint64_t> seed = env_u64("HMMSIM_RANDOM_SEED");
  if (!seed) GTEST_SKIP() << "set HMMSIM_RANDOM_SEED=<seed> to replay a seed";
  RandomMix mix = RandomMix::kBase;
  const char* name = std::getenv("HMMSIM_RANDOM_MIX");
  if (name && *name) {
    if (std::strcmp(name, "thp") == 0) {
      mix = RandomMix::kThp;
    } else if (std::strcmp(name, "device") == 0) {
      mix = RandomMix::kDevice;
    } else {
      ASSERT_STREQ(name, "base") << "HMMSIM_RANDOM_MIX is base, thp or device";
    }
  }
  run_seed(*seed, env_u64("HMMSIM_RANDOM_STEPS").value_or(kDefaultSteps), mix);
}

// A seed determines the whole run: two runs of one seed do the same
// operations with the same results, and another seed does not.
TEST(RandomMm, SameSeedSameRun) {
  RandomConfig config{.seed = 42, .steps = 150};
  RandomDriver a(config);
  RandomDriver b(config);
  ASSERT_FALSE(a.run().has_value());
  ASSERT_FALSE(b.run().has_value());
  EXPECT_EQ(a.digest(), b.digest());
  RandomDriver c(RandomConfig{.seed = 43, .steps = 150});
  ASSERT_FALSE(c.run().has_value());
  EXPECT_NE(a.digest(), c.digest());
}

// The long campaign: 200,000 base, 80,000 thp and 100,000 device steps
// (two devices, fork, partial operations on device THPs), opt-in with
// HMMSIM_LONG=1.
TEST(RandomMm, Long) {
  if (env_u64("HMMSIM_LONG").value_or(0) == 0) GTEST_SKIP() << "set HMMSIM_LONG=1 to run";
  for (uint64_t seed = 1001; seed <= 1008; seed++) {
    run_seed(seed, 25000);
    if (HasFatalFailure()) return;
  }
  for (uint64_t seed = 2001; seed <= 2008; seed++) {
    run_seed(seed, 10000, RandomMix::kThp);
    if (HasFatalFailure()) return;
  }
  for (uint64_t seed = 3001; seed <= 3020; seed++) {
    run_seed(seed, 5000, RandomMix::kDevice);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace hmmsim
