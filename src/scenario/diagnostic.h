// Diagnostics of the scenario parser, and ParseResult<T>: an AST or the
// errors that rejected its file.
//
// A scenario file either parses completely or does not run at all
// (scenario-format.md, "Results and exit status": exit status 2). The parser
// therefore reports errors as values: a ParseResult holds the parsed value or
// a non-empty list of Diagnostics, each printed as
// `FILE:LINE:COL: error: message`. LINE and COL are 1-based; COL counts bytes.
// Like Result<T> in base/, nothing here throws.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/assert.h"

namespace hmmsim::scenario {

// A position in a scenario file.
struct SourceLoc {
  int line = 0;    // 1-based
  int column = 0;  // 1-based byte offset in the line
};

struct Diagnostic {
  std::string file;
  SourceLoc loc;
  std::string message;

  // `FILE:LINE:COL: error: message`.
  std::string format() const;
};

template <typename T>
class [[nodiscard]] ParseResult {
 public:
  ParseResult(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  ParseResult(std::vector<Diagnostic> errors)     // NOLINT: implicit by design
      : v_(std::move(errors)) {
    HMM_ASSERT(!std::get<1>(v_).empty(), "ParseResult built from no diagnostics");
  }

  bool ok() const { return v_.index() == 0; }
  const std::vector<Diagnostic>& errors() const {
    HMM_ASSERT(!ok(), "ParseResult::errors() on a value");
    return std::get<1>(v_);
  }
  T& value() & {
    HMM_ASSERT(ok(), "ParseResult::value() on an error: {}", std::get<1>(v_)[0].format());
    return std::get<0>(v_);
  }
  const T& value() const& {
    HMM_ASSERT(ok(), "ParseResult::value() on an error: {}", std::get<1>(v_)[0].format());
    return std::get<0>(v_);
  }
  T&& value() && {
    HMM_ASSERT(ok(), "ParseResult::value() on an error: {}", std::get<1>(v_)[0].format());
    return std::get<0>(std::move(v_));
  }

 private:
  std::variant<T, std::vector<Diagnostic>> v_;
};

// Collects the diagnostics of one parse. The parser stops at the first error
// (one error is enough to reject a file), so `failed()` is checked after
// every call that can report.
class DiagSink {
 public:
  explicit DiagSink(std::string file) : file_(std::move(file)) {}

  void error(SourceLoc loc, std::string message);
  bool failed() const { return !errors_.empty(); }
  const std::string& file() const { return file_; }
  std::vector<Diagnostic> take() { return std::move(errors_); }

 private:
  std::string file_;
  std::vector<Diagnostic> errors_;
};

// `text` quoted for a message: non-printable bytes as \xNN, and cut to a
// readable length with "..." so that garbage input gives a short message.
std::string quote(std::string_view text);

}  // namespace hmmsim::scenario
