// Files in, cases out: loading scenario files and reporting their cases the
// way `hmmsim run` prints them (scenario-format.md, "Results and exit
// status").
//
//   ok 1 - scenarios/x.scn [thp=always]
//   not ok 2 - scenarios/y.scn:12: cpages: expected 512, got 0
//   1 passed, 1 failed
//
// A file that cannot be read or parsed runs no case at all; its error is the
// parser's `FILE:LINE:COL: error: ...` (or `FILE: error: cannot read ...`).
// Plain functions and values; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "scenario/ast.h"
#include "scenario/runner.h"

namespace hmmsim::scenario {

// A scenario file, read and parsed: its cases, or why it cannot run.
struct LoadedFile {
  std::string file;
  std::vector<Scenario> cases;
  std::string error;  // "" when the file parsed

  bool ok() const { return error.empty(); }
};

// Reads and parses `path`; messages and Scenario::file name it `display`
// (the path itself when empty).
LoadedFile load_file(const std::string& path, const std::string& display = "");
LoadedFile load_text(const std::string& file, std::string_view text);

// One case and how it ended.
struct CaseRun {
  const Scenario* scenario = nullptr;
  CaseResult result;
};

struct Totals {
  uint64_t passed = 0;
  uint64_t failed = 0;
  uint64_t unreadable = 0;  // files that could not be read or parsed

  void add(const CaseResult& r) { (r.passed ? passed : failed)++; }
  // 0 all passed, 1 a case failed, 2 a file could not be read or parsed.
  int exit_status() const { return unreadable ? 2 : failed ? 1 : 0; }
};

// `ok N - FILE [vary]` or `not ok N - FILE:LINE: MESSAGE [vary]`.
std::string case_line(uint64_t n, const CaseRun& run);
// `N passed, N failed`.
std::string summary_line(const Totals& totals);

}  // namespace hmmsim::scenario
