// `vary NAME = V1 | V2 | ...` and `${NAME}` substitution.
//
// scenario-format.md: the scenario runs once per value, every combination of
// several vary lines is its own case, and `${NAME}` in any later line is
// replaced by the case's value. Values are the space-separated tokens between
// `|` tokens (a value may hold several tokens, an extension), and a vary line
// may use the variables of earlier vary lines in its values.
//
// Substitution is textual and single-pass: the text a variable brings in is
// not scanned again. `${NAME}` before NAME's vary line is an error, and so is
// a vary line that uses its own variable (a circular definition).
//
// Cases are numbered like an odometer: the last vary line changes fastest.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "scenario/ast.h"
#include "scenario/diagnostic.h"
#include "scenario/lexer.h"

namespace hmmsim::scenario {

// More cases than this is a parse error (a typo should not start a million runs).
inline constexpr size_t kMaxCases = 1024;

struct VaryDecl {
  std::string name;
  SourceLoc loc;
  size_t line_index = 0;                   // index into the lexed lines
  std::vector<std::vector<Token>> values;  // as written
};

// The vary lines of `lines`, checked; empty optional after an error.
std::optional<std::vector<VaryDecl>> collect_vary(const std::vector<SourceLine>& lines,
                                                  DiagSink& diag);

// Every choice of one value per vary line, in case order.
std::vector<std::vector<size_t>> vary_combinations(const std::vector<VaryDecl>& decls);

// The lines of one case, substituted. A vary line is kept as `vary NAME`.
struct CaseSource {
  std::vector<VaryBinding> bindings;
  std::vector<SourceLine> lines;
};

std::optional<CaseSource> substitute_case(const std::vector<SourceLine>& lines,
                                          const std::vector<VaryDecl>& decls,
                                          const std::vector<size_t>& choice, DiagSink& diag);

}  // namespace hmmsim::scenario
