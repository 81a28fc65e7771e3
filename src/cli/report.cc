#include "cli/report.h"

namespace hmmsim::cli {

void write_comment(std::ostream& out, std::string_view text) {
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    out << (line.empty() ? "#" : "# ") << line << '\n';
    start = end + 1;
  }
}

Json case_json(uint64_t n, const scenario::CaseRun& run) {
  Json vary = Json::object();
  for (const scenario::VaryBinding& b : run.scenario->vary) vary[b.name] = b.value;
  Json c = {{"n", n},
            {"file", run.scenario->file},
            {"vary", vary},
            {"status", run.result.passed ? "pass" : "fail"}};
  if (!run.result.passed) {
    c["line"] = run.result.line;
    c["message"] = run.result.message;
  }
  return c;
}

std::string json_text(const Json& doc) {
  return doc.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Json totals_json(const scenario::Totals& totals) {
  return Json{
      {"passed", totals.passed}, {"failed", totals.failed}, {"unreadable", totals.unreadable}};
}

}  // namespace hmmsim::cli
