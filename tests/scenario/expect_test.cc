// Expectations after `=>`: ret forms, counts, data, and prot bytes, sets and
// page ranges, and which keys each step can compare.
#include <gtest/gtest.h>

#include "scn_test_util.h"

namespace hmmsim::scenario {
namespace {

constexpr std::string_view kWorld = "device d private\nprocess p\nmmap p buf 2M\n";

// The expectations of one step appended to kWorld.
Expectations expect_of(std::string_view step) {
  Scenario s = testing::parse_ok(std::string(kWorld) + std::string(step) + "\n");
  if (s.steps.size() != 4) return {};
  return s.steps[3].expect;
}

std::string error_of(std::string_view step) {
  return testing::parse_error(std::string(kWorld) + std::string(step) + "\n");
}

// Every errno of the contract, and the ones the model adds, by name.
TEST(Expect, RetErrnos) {
  const std::pair<const char*, Errno> kErrnos[] = {
      {"-EINVAL", Errno::kInval}, {"-EFAULT", Errno::kFault}, {"-EPERM", Errno::kPerm},
      {"-ENOENT", Errno::kNoEnt}, {"-EBUSY", Errno::kBusy},   {"-ENOMEM", Errno::kNoMem},
      {"-EAGAIN", Errno::kAgain}, {"-EEXIST", Errno::kExist}};
  for (const auto& [name, err] : kErrnos) {
    Expectations e = expect_of(std::string("munmap p buf => ret=") + name);
    ASSERT_TRUE(e.ret.has_value()) << name;
    ASSERT_EQ(e.ret->allowed.size(), 1u);
    EXPECT_EQ(e.ret->allowed[0].kind, RetValue::Kind::kErrno);
    EXPECT_EQ(e.ret->allowed[0].err, err) << name;
  }
}

// 0, segv, any and sets.
TEST(Expect, RetForms) {
  const Expectations zero = expect_of("write p buf zero => ret=0");
  ASSERT_TRUE(zero.ret.has_value());
  EXPECT_FALSE(zero.ret->any);
  ASSERT_EQ(zero.ret->allowed.size(), 1u);
  EXPECT_EQ(zero.ret->allowed[0].kind, RetValue::Kind::kZero);

  const Expectations segv = expect_of("write p buf zero => ret=segv");
  ASSERT_TRUE(segv.ret.has_value());
  ASSERT_EQ(segv.ret->allowed.size(), 1u);
  EXPECT_EQ(segv.ret->allowed[0].kind, RetValue::Kind::kSegv);

  const Expectations any = expect_of("write p buf zero => ret=any");
  ASSERT_TRUE(any.ret.has_value());
  EXPECT_TRUE(any.ret->any);
  EXPECT_TRUE(any.ret->allowed.empty());

  const Expectations set = expect_of("migrate_to_sys d p buf => ret=(0,-EBUSY,segv)");
  ASSERT_TRUE(set.ret.has_value());
  ASSERT_EQ(set.ret->allowed.size(), 3u);
  EXPECT_EQ(set.ret->allowed[0].kind, RetValue::Kind::kZero);
  EXPECT_EQ(set.ret->allowed[1].err, Errno::kBusy);
  EXPECT_EQ(set.ret->allowed[2].kind, RetValue::Kind::kSegv);
  EXPECT_EQ(set.ret->loc.column, 27);

  const Expectations none = expect_of("munmap p buf");
  EXPECT_FALSE(none.ret.has_value());  // means ret=0
}

// cpages and faults take integers or size expressions.
TEST(Expect, Counts) {
  Expectations e = expect_of("dev_read d p buf => cpages=H/P faults=(2*3)+1 data=index");
  EXPECT_EQ(e.cpages->value, 512u);
  EXPECT_EQ(e.faults->value, 7u);
  EXPECT_EQ(e.data->pattern.kind, Pattern::Kind::kIndex);
  EXPECT_EQ(e.faults->loc.column, 32);
  EXPECT_EQ(expect_of("dev_write d p buf zero => cpages=0x200").cpages->value, 512u);
  EXPECT_EQ(error_of("dev_write d p buf zero => faults=1-2"),
            "t.scn:4:34: error: '1-2' for 'faults=' is negative (-1)");
}

// Every protection name has the test_hmm.c value, and names combine with |.
TEST(Expect, ProtNamesAndBytes) {
  const std::pair<const char*, uint8_t> kNames[] = {{"error", 0xFF},
                                                    {"none", 0x00},
                                                    {"read", 0x01},
                                                    {"write", 0x02},
                                                    {"pmd", 0x04},
                                                    {"pud", 0x08},
                                                    {"zero", 0x10},
                                                    {"dev_private_local", 0x20},
                                                    {"dev_private_remote", 0x30},
                                                    {"dev_coherent_local", 0x40},
                                                    {"dev_coherent_remote", 0x50}};
  for (const auto& [name, value] : kNames) {
    Expectations e = expect_of(std::string("snapshot d p buf => prot=") + name);
    ASSERT_EQ(e.prot.size(), 1u);
    EXPECT_EQ(e.prot[0].value, value) << name;
  }
  EXPECT_EQ(expect_of("snapshot d p buf => prot=read|write|pmd").prot[0].value, 0x07);
  EXPECT_EQ(expect_of("snapshot d p buf => prot=0x26").prot[0].value, 0x26);
  EXPECT_EQ(expect_of("snapshot d p buf => prot=0X0").prot[0].value, 0x00);
  EXPECT_EQ(expect_of("snapshot d p buf => prot=0x00ff").prot[0].value, 0xFF);
  EXPECT_EQ(expect_of("snapshot d p buf => prot=pmd|0x03").prot[0].value, 0x07);
}

// prot, prot[I] and prot[A..B] select pages of the spec; several may be given.
TEST(Expect, ProtRanges) {
  Expectations e = expect_of(
      "snapshot d p buf+4K:16K => cpages=4 prot[0]=read prot[1..3]=write prot[3..4]=none");
  ASSERT_EQ(e.prot.size(), 3u);
  EXPECT_EQ(e.prot[0].first, 0u);
  EXPECT_EQ(e.prot[0].end, 1u);
  EXPECT_EQ(e.prot[1].first, 1u);
  EXPECT_EQ(e.prot[1].end, 3u);
  EXPECT_EQ(e.prot[2].end, 4u);
  EXPECT_EQ(e.prot[2].loc.column, 67);
  e = expect_of("snapshot d p buf => prot[H/P-1]=read prot=write");
  EXPECT_EQ(e.prot[0].first, 511u);
  EXPECT_FALSE(e.prot[1].end.has_value());
  EXPECT_EQ(error_of("snapshot d p buf:16K => prot[2..5]=read"),
            "t.scn:4:25: error: 'prot[2..5]' is outside the 4 pages of the spec");
}

// The page count of a spec counts every page it touches, also for regions
// that do not start on a page boundary.
TEST(Expect, ProtBoundsFollowPageOffsets) {
  const std::string world = std::string(kWorld) + "region r = buf+100:8K\n";
  testing::parse_ok(world + "snapshot d p r => prot[2]=read\n");
  EXPECT_EQ(testing::parse_error(world + "snapshot d p r => prot[3]=read\n"),
            "t.scn:5:19: error: 'prot[3]' is outside the 3 pages of the spec");
  testing::parse_ok(world + "snapshot d p r+4K-100:4K => prot[0]=read\n");
  EXPECT_EQ(testing::parse_error(world + "snapshot d p r+4K-100:4K => prot[1]=read\n"),
            "t.scn:5:29: error: 'prot[1]' is outside the 1 pages of the spec");
}

// Each step compares only what its command returns (scenario-format.md,
// "compare with").
TEST(Expect, KeysPerStep) {
  const std::pair<const char*, const char*> kAllowed[] = {
      {"read p buf", "ret, data"},
      {"write p buf zero", "ret"},
      {"inc p buf", "ret"},
      {"fork p q", "ret"},
      {"exit p", "ret"},
      {"mmap p x 4K", "ret"},
      {"mremap p buf x", "ret"},
      {"dev_read d p buf", "ret, cpages, faults, data"},
      {"dev_write d p buf zero", "ret, cpages, faults"},
      {"migrate_to_dev d p buf", "ret, cpages, data"},
      {"migrate_to_sys d p buf", "ret, cpages"},
      {"snapshot d p buf", "ret, cpages, prot"},
      {"exclusive d p buf", "ret, cpages, data"},
      {"check_exclusive d p buf", "ret"},
      {"release d", "ret"},
      {"fail_alloc d p", "ret"},
      {"open d p", "ret"},
      {"close d p", "ret"},
  };
  for (const auto& [step, keys] : kAllowed) {
    const std::string verb = std::string(step).substr(0, std::string(step).find(' '));
    const std::string err = error_of(std::string(step) + " => pud=0");
    EXPECT_NE(err.find("unknown expectation 'pud'"), std::string::npos) << err;
    for (const char* key : {"ret=0", "cpages=1", "faults=1", "data=zero", "prot=read"}) {
      const std::string k(key, std::string_view(key).find('='));
      const bool allowed = std::string(keys).find(k) != std::string::npos;
      const std::string line = std::string(step) + " => " + key;
      if (allowed) {
        expect_of(line);
      } else {
        EXPECT_NE(error_of(line).find("'" + verb + "' has no '" + k +
                                      "' to compare (it gives: " + keys + ")"),
                  std::string::npos)
            << line;
      }
    }
  }
  for (const char* step : {"check", "shrink", "process q", "device e private",
                           "expect_folio p buf order=0", "region r = buf"}) {
    const std::string verb = std::string(step).substr(0, std::string(step).find(' '));
    EXPECT_NE(
        error_of(std::string(step) + " => ret=0").find("'" + verb + "' takes no expectations"),
        std::string::npos)
        << step;
  }
}

}  // namespace
}  // namespace hmmsim::scenario
