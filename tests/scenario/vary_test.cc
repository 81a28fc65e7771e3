// vary lines: every combination is a case, in a stable order, with ${NAME}
// substituted in every later line.
#include <gtest/gtest.h>

#include "scn_test_util.h"

namespace hmmsim::scenario {
namespace {

std::vector<Scenario> cases_of(std::string_view text) {
  ParseResult<std::vector<Scenario>> r = parse_cases("v.scn", text);
  if (!r.ok()) {
    ADD_FAILURE() << r.errors()[0].format();
    return {};
  }
  return std::move(r).value();
}

std::string bindings(const Scenario& s) {
  std::string out;
  for (const VaryBinding& b : s.vary) out += (out.empty() ? "" : " ") + b.name + "=" + b.value;
  return out;
}

// Without vary there is one case with no bindings.
TEST(Vary, NoVaryOneCase) {
  std::vector<Scenario> cases = cases_of("process p\n");
  ASSERT_EQ(cases.size(), 1u);
  EXPECT_TRUE(cases[0].vary.empty());
}

// Several vary lines give every combination, the last line changing fastest.
TEST(Vary, CombinationsInOdometerOrder) {
  std::vector<Scenario> cases = cases_of(
      "vary thp = always | never\nconfig thp=${thp}\nvary a = 1 | 2 | 3\nprocess p\n"
      "vary s = 4K | 8K\nmmap p buf ${s}*${a}\n");
  ASSERT_EQ(cases.size(), 12u);
  std::vector<std::string> seen;
  for (const Scenario& c : cases) seen.push_back(bindings(c));
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "thp=always a=1 s=4K", "thp=always a=1 s=8K", "thp=always a=2 s=4K",
                      "thp=always a=2 s=8K", "thp=always a=3 s=4K", "thp=always a=3 s=8K",
                      "thp=never a=1 s=4K", "thp=never a=1 s=8K", "thp=never a=2 s=4K",
                      "thp=never a=2 s=8K", "thp=never a=3 s=4K", "thp=never a=3 s=8K"}));
  EXPECT_EQ(cases[0].config.thp, ThpMode::kAlways);
  EXPECT_EQ(cases[11].config.thp, ThpMode::kNever);
  EXPECT_EQ(std::get<MmapStep>(cases[5].steps[1].kind).size, 3u * 8192);
  // The same file gives the same cases, in the same order, every time.
  std::vector<Scenario> again = cases_of(
      "vary thp = always | never\nconfig thp=${thp}\nvary a = 1 | 2 | 3\nprocess p\n"
      "vary s = 4K | 8K\nmmap p buf ${s}*${a}\n");
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(format_scenario(cases[i]), format_scenario(again[i]));
  }
}

// A vary line may use earlier variables; substitution is textual.
TEST(Vary, ValuesUseEarlierVariables) {
  std::vector<Scenario> cases = cases_of(
      "vary len = 2M | 4M+64K\nvary half = (${len})/2\nvary raw = ${len}/2\nprocess p\n"
      "mmap p buf ${len}\nread p buf+${half}\nread p buf:${raw}\n");
  ASSERT_EQ(cases.size(), 2u);
  EXPECT_EQ(bindings(cases[1]), "len=4M+64K half=(4M+64K)/2 raw=4M+64K/2");
  const auto& half = std::get<ReadStep>(cases[1].steps[2].kind);
  EXPECT_EQ(half.spec.offset, ((4u << 20) + (64u << 10)) / 2);
  const auto& raw = std::get<ReadStep>(cases[1].steps[3].kind);
  EXPECT_EQ(raw.spec.length, (4u << 20) + (32u << 10));  // 4M + 64K/2
}

// A value may be several tokens, and a variable may sit inside a token.
TEST(Vary, MultiTokenValuesAndInnerReferences) {
  std::vector<Scenario> cases = cases_of(
      "vary opts = shared | align=2M hugepage | prot=r\nvary off = 4K | 1M\nprocess p\n"
      "mmap p buf 2M ${opts}\nmunmap p buf+${off}:4K\nread p buf:4K => data=const(${off})\n");
  ASSERT_EQ(cases.size(), 6u);
  EXPECT_EQ(std::get<MmapStep>(cases[0].steps[1].kind).sharing, Sharing::kShared);
  const auto& huge = std::get<MmapStep>(cases[2].steps[1].kind);
  EXPECT_EQ(huge.align, 2u << 20);
  EXPECT_EQ(huge.thp, ThpHint::kHugepage);
  EXPECT_EQ(std::get<MmapStep>(cases[4].steps[1].kind).prot, Prot::kRead);
  EXPECT_EQ(std::get<MunmapStep>(cases[3].steps[2].kind).spec.offset, 1u << 20);
  EXPECT_EQ(cases[3].steps[3].expect.data->pattern.value, 1u << 20);
  EXPECT_EQ(bindings(cases[2]), "opts=align=2M hugepage off=4K");
}

// Tokens a substitution produces point at the token that held the ${...}.
TEST(Vary, SubstitutedTokensKeepTheirColumn) {
  EXPECT_EQ(testing::parse_error("vary opts = shared bogus\nprocess p\nmmap p buf 2M ${opts}\n"),
            "t.scn:3:15: error: unexpected 'bogus' after 'mmap p buf 2M shared' (options: "
            "prot=rw|r|none shared align=SIZE hugepage nohugepage) (in the case opts=shared "
            "bogus)");
}

// Only lines after a vary line see its variable; vary is a top-level line.
TEST(Vary, ScopeAndPlacement) {
  std::vector<Scenario> cases =
      cases_of("process p\nmmap p a 4K\nvary n = 1 | 2\nrepeat ${n}\nread p a\nend\n");
  ASSERT_EQ(cases.size(), 2u);
  EXPECT_EQ(std::get<RepeatStep>(cases[1].steps[2].kind).count, 2u);
  EXPECT_EQ(testing::parse_error("repeat 2\nvary n = 1\nend\n"),
            "t.scn:2:1: error: 'vary' must be at the top level, not inside 'repeat' (line 1) (in "
            "the case n=1)");
}

}  // namespace
}  // namespace hmmsim::scenario
