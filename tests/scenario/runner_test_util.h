// Helpers for the runner tests: run an inline scenario and look at how it
// ended and at its step log.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "scenario/runner.h"
#include "scn_test_util.h"

namespace hmmsim::scenario::testing {

struct Run {
  CaseResult result;
  std::string failure;           // `t.scn:LINE: MESSAGE`, "" when the case passed
  std::vector<std::string> log;  // the step log, one entry per line
};

// Parses the one case of `text` (a parse error fails the test) and runs it.
inline Run run_text(std::string_view text, std::optional<uint64_t> seed = std::nullopt) {
  const Scenario s = parse_ok(text);
  Run run;
  RunOptions options{seed, [&](std::string_view line) { run.log.emplace_back(line); }};
  run.result = run_case(s, options);
  if (!run.result.passed) run.failure = format_failure(s, run.result);
  return run;
}

// The failure of a case that must fail ("" and a test failure if it passed).
inline std::string failure_of(std::string_view text) {
  Run run = run_text(text);
  EXPECT_FALSE(run.result.passed) << "the case passed:\n" << text;
  return run.failure;
}

// Expects the case to pass; prints the failure and the log otherwise.
inline void expect_pass(std::string_view text) {
  Run run = run_text(text);
  std::string log;
  for (const std::string& l : run.log) log += l + "\n";
  EXPECT_TRUE(run.result.passed) << run.failure << "\n" << log;
}

// The log lines that start with `prefix`.
inline std::vector<std::string> lines_starting(const Run& run, std::string_view prefix) {
  std::vector<std::string> out;
  for (const std::string& l : run.log) {
    if (l.rfind(prefix, 0) == 0) out.push_back(l);
  }
  return out;
}

}  // namespace hmmsim::scenario::testing
