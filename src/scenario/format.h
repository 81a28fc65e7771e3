// Canonical `.scn` text for a parsed case.
//
// format_scenario prints one case with every value resolved: sizes in bytes,
// region specs as `NAME+OFFSET:LENGTH`, every mmap option spelled out and
// blocks indented. The text parses back to the same case (the parser's fuzz
// target checks that format(parse(format(c))) == format(c)), so it doubles as
// a readable dump of the AST for tests and for `hmmsim` users who want to see
// what a file with `vary` lines expands to.
#pragma once

#include <string>

#include "scenario/ast.h"

namespace hmmsim::scenario {

std::string format_spec(const RegionSpec& spec);
std::string format_expectations(const Expectations& e);     // "" or " => key=value ..."
std::string format_step(const Step& step, int indent = 0);  // one or more lines, each ending '\n'
std::string format_scenario(const Scenario& s);

}  // namespace hmmsim::scenario
