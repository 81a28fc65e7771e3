// `hmmsim selftest [FILTER]`: the built-in port of the Linux hmm-tests
// kselftest (tools/testing/selftests/mm/hmm-tests.c).
//
// Every `.scn` under `scenarios/hmm-tests/hmm/` and `.../hmm2/` is one
// kernel test, named as the kselftest harness names it: `hmm/migrate.scn`
// is `hmm.hmm_device_private.migrate`, `hmm2/double_map.scn` is
// `hmm2.hmm2_device_private.double_map`. A test passes when every case of
// its file (every vary combination) passes. Output follows the harness:
// TAP version 13, `#  RUN` / `#            OK` / `#          FAIL` lines,
// `ok N NAME` / `not ok N NAME`, then the pass count and the Totals line.
//
// The scenarios directory is found without configuration (see
// find_scenarios_dir). Tests run in name order, each on fresh Worlds.
#pragma once

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace hmmsim::cli {

struct SelftestArgs {
  std::string filter;  // run only tests whose name contains it
  bool json = false;
  bool verbose = false;
};

// The first of: $HMMSIM_SCENARIOS; `<exe dir>/../../../scenarios` (the
// build tree); `<exe dir>/../share/hmmsim/scenarios` (an install);
// HMMSIM_SOURCE_DIR/scenarios (compiled in) that holds `hmm-tests/`.
// `searched` receives every candidate, for the error message.
std::optional<std::filesystem::path> find_scenarios_dir(const std::filesystem::path& exe,
                                                        std::vector<std::string>& searched);

// One kernel test: its harness name and its scenario file.
struct SelftestCase {
  std::string name;
  std::filesystem::path file;
};

// The tests under `dir/hmm-tests`, sorted by fixture then file name.
std::vector<SelftestCase> list_selftests(const std::filesystem::path& dir);

// Exit status 0 when every selected test passed, 1 when one failed, 2 when
// the scenarios directory cannot be found.
int selftest_command(const SelftestArgs& args, const std::filesystem::path& exe, std::ostream& out,
                     std::ostream& err);

}  // namespace hmmsim::cli
