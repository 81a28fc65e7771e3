// The lexical layer of `.scn` files: lines and tokens.
//
// scenario-format.md, "Lexical rules": one step per line, `#` starts a
// comment, blank lines are ignored, tokens are separated by spaces. Tabs and
// carriage returns separate tokens too (an extension, so CRLF files and
// tab-indented blocks work). Any other byte, NUL included, belongs to a token
// and is rejected later by whoever expects a name, size or keyword there.
// Lexing cannot fail.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "scenario/diagnostic.h"

namespace hmmsim::scenario {

struct Token {
  std::string text;
  SourceLoc loc;
};

// One non-blank line, comment removed.
struct SourceLine {
  int number = 0;
  std::vector<Token> tokens;  // never empty
  bool is_vary = false;       // written as a `vary` line (see vary.h)
};

std::vector<SourceLine> lex_lines(std::string_view text);

// `loc` moved `bytes` columns to the right (clamped, for absurdly long lines).
SourceLoc shifted(SourceLoc loc, size_t bytes);

// A name of a process, device, region, thread or variable: [A-Za-z_][A-Za-z0-9_]*.
bool is_name(std::string_view text);

// Splits `text` at separators; every piece gets `loc` (used for the tokens a
// `${NAME}` substitution produces, which all point at the `${`'s token).
std::vector<Token> split_tokens(std::string_view text, SourceLoc loc);

}  // namespace hmmsim::scenario
