// Model-based random test of the syscall interface (support/random_driver.h):
// random mmap, munmap, mprotect, madvise, fork, exit, CPU loads and stores
// and migrate_page over up to six processes, each step checked by the
// invariant checker and against a byte-level oracle.
//
// Replay: a failure prints its seed, its step and the command that replays
// it. RandomMm.Replay runs exactly the seed HMMSIM_RANDOM_SEED=<seed> for
// HMMSIM_RANDOM_STEPS=<n> steps (default 2500), and HMMSIM_RANDOM_VERBOSE=1
// prints every operation as it runs. For example:
//   HMMSIM_RANDOM_SEED=3 HMMSIM_RANDOM_STEPS=812 HMMSIM_RANDOM_VERBOSE=1
//   build/tests/mm_tests --gtest_filter='RandomMm.Replay'
// HMMSIM_LONG=1 enables RandomMm.Long, 200,000 steps over eight seeds.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
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

void run_seed(uint64_t seed, uint64_t steps) {
  bool verbose = env_u64("HMMSIM_RANDOM_VERBOSE").value_or(0) != 0;
  RandomConfig config{.seed = seed, .steps = steps, .verbose = verbose};
  std::fprintf(stderr, "random: seed %llu, %llu steps\n", static_cast<unsigned long long>(seed),
               static_cast<unsigned long long>(steps));
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

// Replays the seed named by HMMSIM_RANDOM_SEED (skipped without it).
TEST(RandomMm, Replay) {
  std::optional<uint64_t> seed = env_u64("HMMSIM_RANDOM_SEED");
  if (!seed) GTEST_SKIP() << "set HMMSIM_RANDOM_SEED=<seed> to replay a seed";
  run_seed(*seed, env_u64("HMMSIM_RANDOM_STEPS").value_or(kDefaultSteps));
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

// The long campaign: 200,000 steps, opt-in with HMMSIM_LONG=1.
TEST(RandomMm, Long) {
  if (env_u64("HMMSIM_LONG").value_or(0) == 0) GTEST_SKIP() << "set HMMSIM_LONG=1 to run";
  for (uint64_t seed = 1001; seed <= 1008; seed++) {
    run_seed(seed, 25000);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace hmmsim
