#include "scenario/vary.h"

#include <fmt/format.h>

#include <map>

namespace hmmsim::scenario {
namespace {

SourceLoc after(const Token& t) {
  return shifted(t.loc, t.text.size());
}

// Splits the tokens after `vary NAME =` at `|` tokens.
std::optional<std::vector<std::vector<Token>>> split_values(const SourceLine& line,
                                                            const std::string& name,
                                                            DiagSink& diag) {
  std::vector<std::vector<Token>> values(1);
  for (size_t i = 3; i < line.tokens.size(); ++i) {
    const Token& t = line.tokens[i];
    if (t.text == "=>") {
      diag.error(t.loc, "'vary' takes no expectations");
      return std::nullopt;
    }
    if (t.text != "|") {
      values.back().push_back(t);
    } else if (values.back().empty()) {
      diag.error(t.loc, fmt::format("expected a value before '|' in 'vary {}'", name));
      return std::nullopt;
    } else {
      values.emplace_back();
    }
  }
  if (values.back().empty()) {
    const Token& last = line.tokens.back();
    const std::string ctx =
        last.text == "|" ? "'|' in 'vary " + name + "'" : "'vary " + name + " ='";
    diag.error(after(last), fmt::format("expected a value after {}", ctx));
    return std::nullopt;
  }
  return values;
}

std::optional<VaryDecl> parse_vary(const SourceLine& line, size_t index, DiagSink& diag) {
  const std::vector<Token>& t = line.tokens;
  if (t.size() < 2 || !is_name(t[1].text)) {
    if (t.size() < 2) {
      diag.error(after(t[0]), "expected a variable name after 'vary'");
    } else {
      diag.error(t[1].loc,
                 fmt::format("expected a variable name after 'vary', got {}", quote(t[1].text)));
    }
    return std::nullopt;
  }
  if (t.size() < 3 || t[2].text != "=") {
    const std::string got = t.size() < 3 ? "" : ", got " + quote(t[2].text);
    diag.error(t.size() < 3 ? after(t[1]) : t[2].loc,
               fmt::format("expected '=' after 'vary {}'{}", t[1].text, got));
    return std::nullopt;
  }
  std::optional<std::vector<std::vector<Token>>> values = split_values(line, t[1].text, diag);
  if (!values) return std::nullopt;
  return VaryDecl{t[1].text, t[0].loc, index, std::move(*values)};
}

// Substitution state while walking one case's lines.
struct Env {
  const std::vector<VaryDecl>& decls;
  std::map<std::string, std::string, std::less<>> values;  // defined so far
  const VaryDecl* defining = nullptr;                      // the vary line being expanded
};

void lookup_error(const Env& env, const Token& tok, size_t at, std::string_view name,
                  DiagSink& diag) {
  const SourceLoc loc = shifted(tok.loc, at);
  if (env.defining && env.defining->name == name) {
    diag.error(loc, fmt::format("circular '${{{}}}': the 'vary {}' line uses itself", name, name));
    return;
  }
  for (const VaryDecl& d : env.decls) {
    if (d.name != name) continue;
    diag.error(loc,
               fmt::format("'${{{}}}' is used before its 'vary' line (line {})", name, d.loc.line));
    return;
  }
  diag.error(loc,
             fmt::format("undefined variable '${{{}}}' (no 'vary {} = ...' line)", name, name));
}

// `tok` with every ${NAME} replaced.
std::optional<std::string> substitute_token(const Token& tok, const Env& env, DiagSink& diag) {
  const std::string& s = tok.text;
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t dollar = s.find("${", i);
    if (dollar == std::string::npos) break;
    out.append(s, i, dollar - i);
    const size_t close = s.find('}', dollar + 2);
    const SourceLoc loc = shifted(tok.loc, dollar);
    if (close == std::string::npos) {
      diag.error(loc, fmt::format("unterminated '${{' in {}", quote(s)));
      return std::nullopt;
    }
    const std::string_view name(s.data() + dollar + 2, close - dollar - 2);
    if (!is_name(name)) {
      diag.error(loc, fmt::format("expected a variable name in '${{...}}', got {}",
                                  quote(s.substr(dollar, close - dollar + 1))));
      return std::nullopt;
    }
    auto it = env.values.find(name);
    if (it == env.values.end() || (env.defining && env.defining->name == name)) {
      lookup_error(env, tok, dollar, name, diag);
      return std::nullopt;
    }
    out += it->second;
    i = close + 1;
  }
  if (i < s.size()) out.append(s, i, std::string::npos);
  return out;
}

// Appends `tok`, substituted and split again, to `out`.
bool push_substituted(const Token& tok, const Env& env, std::vector<Token>& out, DiagSink& diag) {
  if (tok.text.find("${") == std::string::npos) {
    out.push_back(tok);
    return true;
  }
  std::optional<std::string> text = substitute_token(tok, env, diag);
  if (!text) return false;
  for (Token& t : split_tokens(*text, tok.loc)) out.push_back(std::move(t));
  return true;
}

// Binds the chosen value of `decl` in `env`; returns the value's text.
std::optional<std::string> bind_value(const VaryDecl& decl, size_t choice, Env& env,
                                      DiagSink& diag) {
  env.defining = &decl;
  std::string text;
  for (const Token& t : decl.values[choice]) {
    std::optional<std::string> s = substitute_token(t, env, diag);
    if (!s) return std::nullopt;
    if (!text.empty()) text += ' ';
    text += *s;
  }
  env.defining = nullptr;
  env.values[decl.name] = text;
  return text;
}

}  // namespace

std::optional<std::vector<VaryDecl>> collect_vary(const std::vector<SourceLine>& lines,
                                                  DiagSink& diag) {
  std::vector<VaryDecl> decls;
  size_t cases = 1;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!lines[i].is_vary) continue;
    std::optional<VaryDecl> d = parse_vary(lines[i], i, diag);
    if (!d) return std::nullopt;
    for (const VaryDecl& prev : decls) {
      if (prev.name != d->name) continue;
      diag.error(lines[i].tokens[1].loc,
                 fmt::format("'vary {}' is already declared at line {}", d->name, prev.loc.line));
      return std::nullopt;
    }
    cases *= d->values.size();
    if (cases > kMaxCases) {
      diag.error(d->loc, fmt::format("the 'vary' lines give more than {} cases", kMaxCases));
      return std::nullopt;
    }
    decls.push_back(std::move(*d));
  }
  return decls;
}

std::vector<std::vector<size_t>> vary_combinations(const std::vector<VaryDecl>& decls) {
  std::vector<std::vector<size_t>> out;
  std::vector<size_t> choice(decls.size(), 0);
  for (;;) {
    out.push_back(choice);
    size_t k = decls.size();
    while (k > 0 && ++choice[k - 1] == decls[k - 1].values.size()) choice[--k] = 0;
    if (k == 0) return out;
  }
}

std::optional<CaseSource> substitute_case(const std::vector<SourceLine>& lines,
                                          const std::vector<VaryDecl>& decls,
                                          const std::vector<size_t>& choice, DiagSink& diag) {
  Env env{decls, {}, nullptr};
  CaseSource out;
  size_t next_decl = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const SourceLine& line = lines[i];
    if (line.is_vary) {
      const VaryDecl& d = decls[next_decl];
      HMM_ASSERT(d.line_index == i, "vary line {} out of step", line.number);
      std::optional<std::string> v = bind_value(d, choice[next_decl++], env, diag);
      if (!v) return std::nullopt;
      out.bindings.push_back(VaryBinding{d.name, *v});
      out.lines.push_back(SourceLine{line.number, {line.tokens[0], line.tokens[1]}, true});
      continue;
    }
    SourceLine sub{line.number, {}, false};
    for (const Token& t : line.tokens) {
      if (!push_substituted(t, env, sub.tokens, diag)) return std::nullopt;
    }
    if (!sub.tokens.empty()) out.lines.push_back(std::move(sub));
  }
  return out;
}

}  // namespace hmmsim::scenario
