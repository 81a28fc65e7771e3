#include "cli/selftest.h"

#include <fmt/format.h>

#include <algorithm>

#include "cli/report.h"
#include "scenario/runner_results.h"

namespace hmmsim::cli {
namespace {

using scenario::CaseRun;
using scenario::LoadedFile;
using scenario::Scenario;

// How one kernel test ended. A test whose only failures are features the
// model lacks ("unsupported: VERB") is skipped, as the kernel harness skips
// a test whose device is missing; it is reported, never passed.
struct TestResult {
  enum class Status { kPass, kFail, kSkip };
  Status status = Status::kPass;
  std::vector<std::string> messages;  // one per failed case, or the parse error
  std::string skip_reason;            // the first "unsupported: ..." message
  Json cases = Json::array();
};

std::string_view status_name(TestResult::Status s) {
  switch (s) {
    case TestResult::Status::kPass: return "pass";
    case TestResult::Status::kFail: return "fail";
    case TestResult::Status::kSkip: return "skip";
  }
  return "?";
}

// The file as messages name it: relative to the scenarios directory's
// parent (`scenarios/hmm-tests/hmm/migrate.scn`), so output does not depend
// on where the tree is.
std::string display_name(const std::filesystem::path& dir, const std::filesystem::path& file) {
  return (dir.filename() / file.lexically_relative(dir)).generic_string();
}

TestResult run_test(const LoadedFile& loaded, const scenario::RunOptions& options) {
  TestResult t;
  if (!loaded.ok()) {
    t.status = TestResult::Status::kFail;
    t.messages.push_back(loaded.error);
    return t;
  }
  bool real_failure = false;
  uint64_t n = 0;
  for (const Scenario& s : loaded.cases) {
    if (options.log) {
      options.log(fmt::format("case {}: {}{}", n + 1, s.file, scenario::vary_suffix(s.vary)));
    }
    CaseRun run{&s, scenario::run_case(s, options)};
    t.cases.push_back(case_json(++n, run));
    if (run.result.passed) continue;
    real_failure |= !run.result.unsupported;
    if (run.result.unsupported && t.skip_reason.empty()) t.skip_reason = run.result.message;
    t.messages.push_back(scenario::format_failure(s, run.result) + scenario::vary_suffix(s.vary));
  }
  if (real_failure) {
    t.status = TestResult::Status::kFail;
  } else if (!t.skip_reason.empty()) {
    t.status = TestResult::Status::kSkip;
  }
  return t;
}

// The kselftest harness's lines for one test.
void print_test(std::ostream& out, uint64_t k, const std::string& name, const TestResult& t) {
  for (const std::string& m : t.messages) write_comment(out, m);
  switch (t.status) {
    case TestResult::Status::kPass:
      out << fmt::format("#            OK  {}\nok {} {}\n", name, k, name);
      break;
    case TestResult::Status::kSkip:
      out << fmt::format("#      SKIP      {}\n#            OK  {}\nok {} {} # SKIP {}\n",
                         t.skip_reason, name, k, name, t.skip_reason);
      break;
    case TestResult::Status::kFail:
      out << fmt::format("#          FAIL  {}\nnot ok {} {}\n", name, k, name);
      break;
  }
  out << std::flush;
}

struct Counts {
  uint64_t pass = 0;
  uint64_t fail = 0;
  uint64_t skip = 0;

  void add(TestResult::Status s) {
    (s == TestResult::Status::kPass ? pass : s == TestResult::Status::kFail ? fail : skip)++;
  }
};

// A skipped test counts as passed in the harness's summary line.
void print_totals(std::ostream& out, const Counts& c) {
  out << fmt::format("# {}: {} / {} tests passed.\n", c.fail ? "FAILED" : "PASSED", c.pass + c.skip,
                     c.pass + c.skip + c.fail);
  out << fmt::format("# Totals: pass:{} fail:{} xfail:0 xpass:0 skip:{} error:0\n", c.pass, c.fail,
                     c.skip);
}

std::vector<SelftestCase> selected(const std::vector<SelftestCase>& all, const std::string& f) {
  std::vector<SelftestCase> out;
  for (const SelftestCase& t : all) {
    if (t.name.find(f) != std::string::npos) out.push_back(t);
  }
  return out;
}

// The fixture.variant part of a test name ("hmm.hmm_device_private").
std::string fixture_of(const std::string& name) {
  return name.substr(0, name.rfind('.'));
}

uint64_t count_fixtures(const std::vector<SelftestCase>& tests) {
  std::vector<std::string> seen;
  for (const SelftestCase& t : tests) {
    const std::string f = fixture_of(t.name);
    if (std::find(seen.begin(), seen.end(), f) == seen.end()) seen.push_back(f);
  }
  return seen.size();
}

}  // namespace

int selftest_command(const SelftestArgs& args, const std::filesystem::path& exe, std::ostream& out,
                     std::ostream& err) {
  std::vector<std::string> searched;
  const std::optional<std::filesystem::path> dir = find_scenarios_dir(exe, searched);
  if (!dir) {
    err << "hmmsim: cannot find the scenarios directory (with hmm-tests/); searched:\n";
    for (const std::string& s : searched) err << "  " << s << '\n';
    err << "set HMMSIM_SCENARIOS to it\n";
    return 2;
  }
  const std::vector<SelftestCase> tests = selected(list_selftests(*dir), args.filter);
  std::ostream& log = args.json ? err : out;
  scenario::RunOptions options;
  if (args.verbose) options.log = [&](std::string_view line) { write_comment(log, line); };
  if (!args.json) {
    out << "TAP version 13\n" << fmt::format("1..{}\n", tests.size());
    out << fmt::format("# Starting {} tests from {} test cases.\n", tests.size(),
                       count_fixtures(tests));
  }
  Counts counts;
  uint64_t k = 0;
  Json json_tests = Json::array();
  for (const SelftestCase& test : tests) {
    if (!args.json) out << fmt::format("#  RUN           {} ...\n", test.name) << std::flush;
    const std::string file = display_name(*dir, test.file);
    TestResult t = run_test(scenario::load_file(test.file.string(), file), options);
    counts.add(t.status);
    ++k;
    if (args.json) {
      json_tests.push_back(Json{{"n", k},
                                {"name", test.name},
                                {"file", file},
                                {"status", status_name(t.status)},
                                {"messages", t.messages},
                                {"cases", t.cases}});
    } else {
      print_test(out, k, test.name, t);
    }
  }
  if (args.json) {
    const Json totals = {{"pass", counts.pass}, {"fail", counts.fail}, {"skip", counts.skip}};
    out << json_text(Json{{"tests", json_tests}, {"totals", totals}});
  } else {
    print_totals(out, counts);
  }
  return counts.fail ? 1 : 0;
}

}  // namespace hmmsim::cli
