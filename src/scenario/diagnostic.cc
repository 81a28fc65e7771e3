#include "scenario/diagnostic.h"

#include <fmt/format.h>

namespace hmmsim::scenario {
namespace {

constexpr size_t kQuoteMax = 48;

bool printable(unsigned char c) {
  return c >= 0x20 && c < 0x7f;
}

}  // namespace

std::string Diagnostic::format() const {
  return fmt::format("{}:{}:{}: error: {}", file, loc.line, loc.column, message);
}

void DiagSink::error(SourceLoc loc, std::string message) {
  errors_.push_back(Diagnostic{file_, loc, std::move(message)});
}

std::string quote(std::string_view text) {
  std::string out = "'";
  size_t shown = 0;
  for (unsigned char c : text) {
    if (shown == kQuoteMax) {
      out += "...";
      break;
    }
    if (printable(c) && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
    ++shown;
  }
  out += "'";
  return out;
}

}  // namespace hmmsim::scenario
