// hmmsim: the command line of the model.
//
//   hmmsim run [--seed N] [--json] [-v] FILE...   run scenario files
//   hmmsim selftest [--json] [-v] [FILTER]        the ported Linux hmm-tests
//   hmmsim --help | --version
//
// Bad command lines get CLI11's message and exit status 2, like a file
// that cannot be parsed.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <system_error>

#include "cli/run_command.h"
#include "cli/selftest.h"

namespace {

// The path of this executable, for finding the scenarios next to it.
std::filesystem::path self_path(const char* argv0) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) return p;
  return std::filesystem::absolute(argv0, ec);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hmmsim: an executable model of Linux heterogeneous memory management"};
  app.set_version_flag("--version", "hmmsim " HMMSIM_VERSION);
  app.require_subcommand(1);

  hmmsim::cli::RunArgs run;
  CLI::App* run_cmd = app.add_subcommand("run", "Run scenario files (.scn) and report each case");
  run_cmd->add_option("FILE", run.files, "Scenario files")->required();
  run_cmd->add_option("--seed", run.seed, "Replace every file's config seed");
  run_cmd->add_flag("--json", run.json, "Print the results as one JSON document");
  run_cmd->add_flag("-v,--verbose", run.verbose, "Log every step and its result");

  hmmsim::cli::SelftestArgs self;
  CLI::App* self_cmd =
      app.add_subcommand("selftest", "Run the port of the Linux hmm-tests kselftest");
  self_cmd->add_option("FILTER", self.filter, "Run only the tests whose name contains FILTER");
  self_cmd->add_flag("--json", self.json, "Print the results as one JSON document");
  self_cmd->add_flag("-v,--verbose", self.verbose, "Log every step and its result");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);
    return status == 0 ? 0 : 2;
  }
  if (run_cmd->parsed()) return hmmsim::cli::run_command(run, std::cout, std::cerr);
  return hmmsim::cli::selftest_command(self, self_path(argv[0]), std::cout, std::cerr);
}
