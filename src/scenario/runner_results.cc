#include "scenario/runner_results.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "scenario/parser.h"

namespace hmmsim::scenario {

LoadedFile load_text(const std::string& file, std::string_view text) {
  ParseResult<std::vector<Scenario>> parsed = parse_cases(file, text);
  if (!parsed.ok()) return LoadedFile{file, {}, parsed.errors().front().format()};
  return LoadedFile{file, std::move(parsed).value(), ""};
}

LoadedFile load_file(const std::string& path, const std::string& display) {
  const std::string& name = display.empty() ? path : display;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return LoadedFile{name, {}, fmt::format("{}: error: cannot read: Is a directory", name)};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return LoadedFile{
        name, {}, fmt::format("{}: error: cannot read: {}", name, std::strerror(errno))};
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return LoadedFile{name, {}, fmt::format("{}: error: cannot read", name)};
  return load_text(name, text.str());
}

std::string case_line(uint64_t n, const CaseRun& run) {
  const std::string suffix = vary_suffix(run.scenario->vary);
  if (!run.result.passed) {
    return fmt::format("not ok {} - {}{}", n, format_failure(*run.scenario, run.result), suffix);
  }
  return fmt::format("ok {} - {}{}", n, run.scenario->file, suffix);
}

std::string summary_line(const Totals& totals) {
  return fmt::format("{} passed, {} failed", totals.passed, totals.failed);
}

}  // namespace hmmsim::scenario
