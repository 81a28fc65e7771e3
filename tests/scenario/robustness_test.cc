// Hostile input: the parser rejects or accepts, and never crashes, hangs or
// prints an unreadable message.
#include <gtest/gtest.h>

#include <filesystem>

#include "base/rng.h"
#include "scn_test_util.h"

namespace hmmsim::scenario {
namespace {

// Parses `text`; an accepted file must print to canonical text that is a
// fixed point, a rejected one must give a one-line diagnostic of sane size.
void survives(std::string_view text) {
  ParseResult<std::vector<Scenario>> r = parse_cases("x.scn", text);
  if (!r.ok()) {
    const std::string msg = r.errors()[0].format();
    EXPECT_EQ(msg.rfind("x.scn:", 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\0'), std::string::npos);
    EXPECT_LT(msg.size(), 1200u) << msg;
    return;
  }
  for (Scenario c : r.value()) {
    c.vary.clear();
    const std::string canon = format_scenario(c);
    ParseResult<Scenario> again = parse_scenario("canon.scn", canon);
    ASSERT_TRUE(again.ok()) << again.errors()[0].format() << "\n" << canon;
    EXPECT_EQ(format_scenario(again.value()), canon);
  }
}

// Empty files, blank lines and comments are a valid scenario with no steps.
TEST(Robustness, EmptyInputs) {
  for (std::string_view text : {"", "\n", "\n\n\r\n", "# only a comment", "   \t  \n#\n"}) {
    EXPECT_TRUE(testing::parse_ok(text).steps.empty());
  }
}

// NUL and other control bytes are part of tokens and are shown escaped.
TEST(Robustness, NulAndControlBytes) {
  const std::string text("process p\x00q\n", 12);
  EXPECT_EQ(testing::parse_error(text),
            "t.scn:1:9: error: expected a new process name after 'process', got 'p\\x00q'");
  EXPECT_EQ(testing::parse_error("proc\x01\xff\n"),
            "t.scn:1:1: error: unknown step 'proc\\x01\\xff'");
  survives(std::string(64, '\0'));
  survives("\xef\xbb\xbfprocess p\n");  // a UTF-8 byte order mark is not whitespace
}

// Huge numbers overflow into an error instead of wrapping.
TEST(Robustness, HugeNumbers) {
  EXPECT_EQ(testing::parse_error("process p\nmmap p a 99999999999999999999999999\n"),
            "t.scn:2:10: error: invalid '99999999999999999999999999' after 'mmap p a': number "
            "overflows 64 bits");
  EXPECT_EQ(testing::parse_error("process p\nmmap p a 0x8000000000000000\n"),
            "t.scn:2:10: error: invalid '0x8000000000000000' after 'mmap p a': number overflows "
            "64 bits");
  survives("process p\nmmap p a 0x7fffffffffffffff\nread p a+0x7ffffffffffffffe:1\n");
  survives("repeat 0xffffffffffffffff\nend\n");
}

// Very long lines and tokens are parsed in linear time and quoted short.
TEST(Robustness, LongLines) {
  const std::string token(1 << 20, 'a');
  const std::string msg = testing::parse_error("process " + token + "!\n");
  EXPECT_LT(msg.size(), 200u);
  EXPECT_NE(msg.find("aaa...'"), std::string::npos) << msg;
  std::string many = "process p\nmmap p a 4K\n";
  for (int i = 0; i < 20000; ++i) many += "read p a";
  many += "\n";
  survives(many);
  std::string lines = "process p\nmmap p a 4K\n";
  for (int i = 0; i < 20000; ++i) lines += "read p a => data=zero\n";
  EXPECT_EQ(testing::parse_ok(lines).steps.size(), 20002u);
}

// Deep parentheses and deep blocks hit their limits, not the stack.
TEST(Robustness, DeepNesting) {
  const std::string parens(200000, '(');
  EXPECT_EQ(testing::parse_error("process p\nmmap p a " + parens + "\n"),
            "t.scn:2:42: error: invalid '" + std::string(48, '(') +
                "...' after 'mmap p a': parentheses nested deeper than 32");
  std::string blocks;
  for (int i = 0; i < 100000; ++i) blocks += "repeat 1\n";
  survives(blocks);
}

// Random bytes and random edits of the seed corpus never crash the parser.
TEST(Robustness, RandomMutations) {
  std::vector<std::string> seeds;
  const std::filesystem::path dir = std::string(HMMSIM_SOURCE_DIR) + "/tests/scenario/corpus";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    seeds.push_back(testing::read_file(entry.path()));
  }
  ASSERT_FALSE(seeds.empty());
  Rng rng(20261128);
  const std::string alphabet = " \n\t#=>+-*/():|[].,${}0123456789xKMGPHabdeimpr_\0\xff";
  for (int round = 0; round < 3000; ++round) {
    std::string text = seeds[rng.below(seeds.size())];
    const uint64_t edits = 1 + rng.below(8);
    for (uint64_t e = 0; e < edits && !text.empty(); ++e) {
      const uint64_t at = rng.below(text.size());
      switch (rng.below(4)) {
        case 0: text[at] = alphabet[rng.below(alphabet.size())]; break;
        case 1: text.erase(at, 1 + rng.below(8)); break;
        case 2: text.insert(at, 1, alphabet[rng.below(alphabet.size())]); break;
        default: text.insert(at, text.substr(rng.below(text.size()), rng.below(24))); break;
      }
    }
    survives(text);
  }
  for (int round = 0; round < 300; ++round) {
    std::string bytes(rng.below(512), '\0');
    for (char& c : bytes) c = static_cast<char>(rng.below(256));
    survives(bytes);
  }
}

}  // namespace
}  // namespace hmmsim::scenario
