// Finding the scenarios directory of `hmmsim selftest`.
#include <algorithm>
#include <cstdlib>
#include <system_error>

#include "cli/selftest.h"

namespace hmmsim::cli {

std::optional<std::filesystem::path> find_scenarios_dir(const std::filesystem::path& exe,
                                                        std::vector<std::string>& searched) {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("HMMSIM_SCENARIOS"); env && *env) candidates.emplace_back(env);
  const fs::path bin = exe.parent_path();
  candidates.push_back(bin / ".." / ".." / ".." / "scenarios");
  candidates.push_back(bin / ".." / "share" / "hmmsim" / "scenarios");
  candidates.push_back(fs::path(HMMSIM_SOURCE_DIR) / "scenarios");
  for (const fs::path& c : candidates) {
    fs::path dir = c.lexically_normal();
    if (dir.filename().empty()) dir = dir.parent_path();  // "a/b/" -> "a/b"
    searched.push_back(dir.string());
    std::error_code ec;
    if (fs::is_directory(dir / "hmm-tests", ec)) return dir;
  }
  return std::nullopt;
}

std::vector<SelftestCase> list_selftests(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::vector<SelftestCase> tests;
  for (const std::string fixture : {"hmm", "hmm2"}) {
    std::vector<SelftestCase> in_fixture;
    std::error_code ec;
    for (fs::directory_iterator it(dir / "hmm-tests" / fixture, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (it->path().extension() != ".scn") continue;
      const std::string name =
          fixture + "." + fixture + "_device_private." + it->path().stem().string();
      in_fixture.push_back(SelftestCase{name, it->path()});
    }
    std::sort(in_fixture.begin(), in_fixture.end(),
              [](const SelftestCase& a, const SelftestCase& b) { return a.name < b.name; });
    tests.insert(tests.end(), in_fixture.begin(), in_fixture.end());
  }
  return tests;
}

}  // namespace hmmsim::cli
