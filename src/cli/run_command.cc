#include "cli/run_command.h"

#include <fmt/format.h>

#include "cli/report.h"
#include "scenario/runner_results.h"

namespace hmmsim::cli {
namespace {

using scenario::CaseRun;
using scenario::LoadedFile;
using scenario::Scenario;
using scenario::Totals;

// What `run` has printed or collected so far.
class RunReport {
 public:
  RunReport(const RunArgs& args, std::ostream& out, std::ostream& err)
      : args_(args), out_(out), err_(err) {}

  // Where the step log goes: stdout, or stderr when stdout carries JSON.
  std::ostream& log() { return args_.json ? err_ : out_; }

  void unreadable(const LoadedFile& f) {
    err_ << f.error << '\n';
    totals_.unreadable++;
    files_.push_back(Json{{"file", f.file}, {"error", f.error}});
  }

  void finished(uint64_t n, const CaseRun& run) {
    totals_.add(run.result);
    if (args_.json) {
      cases_.push_back(case_json(n, run));
    } else {
      out_ << scenario::case_line(n, run) << '\n' << std::flush;
    }
  }

  int end() {
    if (args_.json) {
      Json doc = {
          {"unreadable_files", files_}, {"cases", cases_}, {"totals", totals_json(totals_)}};
      out_ << json_text(doc);
    } else {
      out_ << scenario::summary_line(totals_) << '\n';
    }
    return totals_.exit_status();
  }

 private:
  const RunArgs& args_;
  std::ostream& out_;
  std::ostream& err_;
  Totals totals_;
  Json files_ = Json::array();
  Json cases_ = Json::array();
};

}  // namespace

int run_command(const RunArgs& args, std::ostream& out, std::ostream& err) {
  RunReport report(args, out, err);
  scenario::RunOptions options{args.seed, {}};
  if (args.verbose) options.log = [&](std::string_view line) { write_comment(report.log(), line); };
  uint64_t n = 0;
  for (const std::string& file : args.files) {
    const LoadedFile loaded = scenario::load_file(file);
    if (!loaded.ok()) {
      report.unreadable(loaded);
      continue;
    }
    for (const Scenario& s : loaded.cases) {
      ++n;
      if (args.verbose) {
        write_comment(report.log(), fmt::format("case {}: {}{} seed={}", n, s.file,
                                                scenario::vary_suffix(s.vary),
                                                args.seed.value_or(s.config.seed)));
      }
      report.finished(n, CaseRun{&s, scenario::run_case(s, options)});
    }
  }
  return report.end();
}

}  // namespace hmmsim::cli
