// libFuzzer target: the scenario parser on arbitrary bytes.
//
// Checks, beyond "no crash, no sanitizer report":
//   - a rejected input has at least one diagnostic, printed FILE:LINE:COL;
//   - every accepted case prints to canonical text (format_scenario) that
//     parses back as one case printing to the same text.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "scenario/format.h"
#include "scenario/parser.h"

namespace {

using hmmsim::scenario::format_scenario;
using hmmsim::scenario::parse_cases;
using hmmsim::scenario::parse_scenario;
using hmmsim::scenario::Scenario;

[[noreturn]] void fuzz_fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "parser_fuzz: %s\n%s\n", what, detail.c_str());
  std::abort();
}

void check_round_trip(Scenario c) {
  c.vary.clear();  // printed as comments, which do not parse back
  const std::string text = format_scenario(c);
  auto again = parse_scenario("canonical.scn", text);
  if (!again.ok())
    fuzz_fail("canonical text does not parse", again.errors()[0].format() + "\n" + text);
  const std::string text2 = format_scenario(again.value());
  if (text2 != text) fuzz_fail("canonical text is not a fixed point", text + "----\n" + text2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto cases = parse_cases("fuzz.scn", input);
  if (!cases.ok()) {
    const std::string msg = cases.errors()[0].format();
    if (msg.rfind("fuzz.scn:", 0) != 0) fuzz_fail("diagnostic without its file", msg);
    return 0;
  }
  for (const Scenario& c : cases.value()) check_round_trip(c);
  return 0;
}
