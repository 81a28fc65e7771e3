// `hmmsim run FILE...`: runs scenario files and reports every case
// (scenario-format.md, "Results and exit status").
//
// Text output (stdout): `ok N - FILE [vary]` / `not ok N - FILE:LINE:
// MESSAGE [vary]` per case as it ends, then `N passed, N failed`. A file
// that cannot be read or parsed prints its diagnostic on stderr and runs no
// case; the other files still run. `--json` prints one JSON document
// instead; `-v` logs every step and its result (on stdout as `# ` comment
// lines, on stderr with `--json`).
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace hmmsim::cli {

struct RunArgs {
  std::vector<std::string> files;
  std::optional<uint64_t> seed;
  bool json = false;
  bool verbose = false;
};

// Returns the exit status: 0 every case passed, 1 a case failed, 2 a file
// could not be read or parsed.
int run_command(const RunArgs& args, std::ostream& out, std::ostream& err);

}  // namespace hmmsim::cli
