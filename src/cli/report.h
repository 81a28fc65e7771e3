// Shared output helpers of the hmmsim commands: `# ` comment lines for step
// logs, and the JSON form of case results (nlohmann::ordered_json, so keys
// keep the order they are written in and output is byte-for-byte stable).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>

#include "scenario/runner_results.h"

namespace hmmsim::cli {

using Json = nlohmann::ordered_json;

// Writes `text` as comment lines: `# ` before each of its lines.
void write_comment(std::ostream& out, std::string_view text);

// {"n", "file", "vary": {NAME: VALUE...}, "status": "pass"|"fail", "line", "message"}
Json case_json(uint64_t n, const scenario::CaseRun& run);
// The document as indented text; bytes that are not UTF-8 (a file may hold
// any) are replaced rather than thrown about.
std::string json_text(const Json& doc);

// {"passed", "failed", "unreadable"}
Json totals_json(const scenario::Totals& totals);

}  // namespace hmmsim::cli
