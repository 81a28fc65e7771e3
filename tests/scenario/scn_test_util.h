// Helpers for the scenario parser tests.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "scenario/format.h"
#include "scenario/parser.h"

namespace hmmsim::scenario::testing {

// Parses a one-case file; a parse error fails the test.
inline Scenario parse_ok(std::string_view text) {
  ParseResult<Scenario> r = parse_scenario("t.scn", text);
  if (!r.ok()) {
    ADD_FAILURE() << "unexpected parse error: " << r.errors()[0].format() << "\n" << text;
    return Scenario{};
  }
  return std::move(r).value();
}

// The first diagnostic of a file that must not parse, formatted.
inline std::string parse_error(std::string_view text) {
  ParseResult<std::vector<Scenario>> r = parse_cases("t.scn", text);
  if (r.ok()) {
    ADD_FAILURE() << "parsed, but an error was expected:\n" << text;
    return "";
  }
  return r.errors()[0].format();
}

// The canonical text of a one-case file (format.h).
inline std::string canonical(std::string_view text) {
  return format_scenario(parse_ok(text));
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace hmmsim::scenario::testing
