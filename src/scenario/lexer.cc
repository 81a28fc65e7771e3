#include "scenario/lexer.h"

#include <climits>

namespace hmmsim::scenario {
namespace {

bool is_separator(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

int clamp_int(size_t v) {
  return v > INT_MAX ? INT_MAX : static_cast<int>(v);
}

// Tokens of one line; columns are 1-based byte offsets.
std::vector<Token> tokenize(std::string_view line, int number) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < line.size()) {
    if (is_separator(line[i])) {
      ++i;
      continue;
    }
    const size_t start = i;
    while (i < line.size() && !is_separator(line[i])) ++i;
    tokens.push_back(
        Token{std::string(line.substr(start, i - start)), SourceLoc{number, clamp_int(start + 1)}});
  }
  return tokens;
}

}  // namespace

std::vector<SourceLine> lex_lines(std::string_view text) {
  std::vector<SourceLine> lines;
  size_t start = 0;
  size_t number = 1;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    line = line.substr(0, line.find('#'));
    std::vector<Token> tokens = tokenize(line, clamp_int(number));
    if (!tokens.empty()) {
      const bool vary = tokens[0].text == "vary";
      lines.push_back(SourceLine{clamp_int(number), std::move(tokens), vary});
    }
    start = end + 1;
    ++number;
  }
  return lines;
}

SourceLoc shifted(SourceLoc loc, size_t bytes) {
  return SourceLoc{loc.line, clamp_int(static_cast<size_t>(loc.column) + bytes)};
}

bool is_name(std::string_view text) {
  if (text.empty()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    if (!alpha && (i == 0 || c < '0' || c > '9')) return false;
  }
  return true;
}

std::vector<Token> split_tokens(std::string_view text, SourceLoc loc) {
  std::vector<Token> tokens = tokenize(text, loc.line);
  for (Token& t : tokens) t.loc = loc;
  return tokens;
}

}  // namespace hmmsim::scenario
