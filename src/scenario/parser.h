// The `.scn` parser: text in, checked Scenario cases out (scenario-format.md).
//
// Parsing runs in three stages: lexing (lexer.h), `vary` expansion with
// `${NAME}` substitution (vary.h), and one pass per case over the
// substituted lines, which builds the AST (ast.h) while it checks every name,
// size, region spec, pattern and expectation, and the nesting of
// `concurrent`/`thread`/`repeat`/`end` blocks.
//
// The first error rejects the whole file: nothing of a file runs if any of
// its cases does not parse. Errors come back as Diagnostics
// (`FILE:LINE:COL: error: message`); nothing throws and no input (binary
// garbage, NUL bytes, huge numbers, very long lines, deep nesting) makes the
// parser crash. Stateless: each call is independent and may run on any
// thread.
#pragma once

#include <string_view>
#include <vector>

#include "scenario/ast.h"
#include "scenario/diagnostic.h"

namespace hmmsim::scenario {

// Blocks nested deeper than this are an error.
inline constexpr size_t kMaxBlockDepth = 64;

// Every case of `text`: one per combination of the `vary` lines, in odometer
// order (the last vary line changes fastest); one case when there is no
// `vary`. `file` is the name diagnostics and Scenario::file use.
ParseResult<std::vector<Scenario>> parse_cases(std::string_view file, std::string_view text);

// The only case of `text`; an error if its `vary` lines give several.
ParseResult<Scenario> parse_scenario(std::string_view file, std::string_view text);

}  // namespace hmmsim::scenario
