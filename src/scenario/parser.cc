#include "scenario/parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "scenario/lexer.h"
#include "scenario/parse_internal.h"
#include "scenario/vary.h"

namespace hmmsim::scenario {
namespace {

using internal::LineCursor;
using internal::ParseCtx;

enum class Scope { kAnywhere, kTopLevel };

struct VerbInfo {
  std::string_view verb;
  internal::StepParser parse;
  unsigned keys;  // expectations the step can compare
  Scope scope;
};

constexpr unsigned kRet = internal::kExpectRet;
constexpr unsigned kCpages = internal::kExpectCpages;
constexpr unsigned kFaults = internal::kExpectFaults;
constexpr unsigned kData = internal::kExpectData;
constexpr unsigned kProt = internal::kExpectProt;

// The step verbs, with what each can compare (the "compare with" column of
// scenario-format.md).
constexpr VerbInfo kVerbs[] = {
    {"device", internal::parse_device, 0, Scope::kTopLevel},
    {"process", internal::parse_process, 0, Scope::kTopLevel},
    {"mmap", internal::parse_mmap, kRet, Scope::kAnywhere},
    {"munmap", internal::parse_munmap, kRet, Scope::kAnywhere},
    {"mprotect", internal::parse_mprotect, kRet, Scope::kAnywhere},
    {"madvise", internal::parse_madvise, kRet, Scope::kAnywhere},
    {"mremap", internal::parse_mremap, kRet, Scope::kAnywhere},
    {"region", internal::parse_region, 0, Scope::kAnywhere},
    {"fork", internal::parse_fork, kRet, Scope::kAnywhere},
    {"exit", internal::parse_exit, kRet, Scope::kAnywhere},
    {"write", internal::parse_write, kRet, Scope::kAnywhere},
    {"read", internal::parse_read, kRet | kData, Scope::kAnywhere},
    {"inc", internal::parse_inc, kRet, Scope::kAnywhere},
    {"dev_read", internal::parse_dev_read, kRet | kCpages | kFaults | kData, Scope::kAnywhere},
    {"dev_write", internal::parse_dev_write, kRet | kCpages | kFaults, Scope::kAnywhere},
    {"migrate_to_dev", internal::parse_migrate_to_dev, kRet | kCpages | kData, Scope::kAnywhere},
    {"migrate_to_sys", internal::parse_migrate_to_sys, kRet | kCpages, Scope::kAnywhere},
    {"snapshot", internal::parse_snapshot, kRet | kCpages | kProt, Scope::kAnywhere},
    {"exclusive", internal::parse_exclusive, kRet | kCpages | kData, Scope::kAnywhere},
    {"check_exclusive", internal::parse_check_exclusive, kRet, Scope::kAnywhere},
    {"release", internal::parse_release, kRet, Scope::kAnywhere},
    {"fail_alloc", internal::parse_fail_alloc, kRet, Scope::kAnywhere},
    {"open", internal::parse_open, kRet, Scope::kAnywhere},
    {"close", internal::parse_close, kRet, Scope::kAnywhere},
    {"check", internal::parse_check, 0, Scope::kAnywhere},
    {"shrink", internal::parse_shrink, 0, Scope::kAnywhere},
    {"expect_folio", internal::parse_expect_folio, 0, Scope::kAnywhere},
};

const VerbInfo* find_verb(std::string_view verb) {
  for (const VerbInfo& v : kVerbs) {
    if (v.verb == verb) return &v;
  }
  return nullptr;
}

// The region spec a step works on, if it has one.
const RegionSpec* step_spec(const StepKind& kind) {
  return std::visit(
      [](const auto& s) -> const RegionSpec* {
        if constexpr (requires { s.spec; }) {
          return &s.spec;
        } else {
          return nullptr;
        }
      },
      kind);
}

// An open block while its lines are read.
struct Frame {
  enum class Kind { kTop, kConcurrent, kThread, kRepeat };
  Kind kind = Kind::kTop;
  SourceLoc loc;
  std::vector<Step> steps;           // kTop, kThread, kRepeat
  std::vector<ThreadBlock> threads;  // kConcurrent
  std::string name;                  // kThread
  uint64_t count = 0;                // kRepeat
};

std::string_view frame_name(Frame::Kind kind) {
  switch (kind) {
    case Frame::Kind::kTop: return "the file";
    case Frame::Kind::kConcurrent: return "concurrent";
    case Frame::Kind::kThread: return "thread";
    case Frame::Kind::kRepeat: return "repeat";
  }
  return "?";
}

// Parses the substituted lines of one case into a Scenario.
class CaseParser {
 public:
  CaseParser(DiagSink& diag, std::string file) : ctx_{diag, {}}, file_(std::move(file)) {
    stack_.push_back(Frame{});
  }

  std::optional<Scenario> parse(const CaseSource& src);

 private:
  bool line(const SourceLine& l);
  bool block_line(const SourceLine& l, const std::vector<Token>& tokens);
  bool step_line(const std::vector<Token>& tokens, const Token* arrow,
                 const std::vector<Token>& expect);
  bool top_level_only(const Token& verb);
  bool open_concurrent(LineCursor& cur);
  bool open_thread(LineCursor& cur);
  bool open_repeat(LineCursor& cur);
  bool close_block(LineCursor& cur);
  void close_thread();
  bool push_frame(Frame frame);
  bool finish();
  const Frame* enclosing(Frame::Kind kind) const;

  ParseCtx ctx_;
  std::string file_;
  Config config_;
  std::map<std::string, int, std::less<>> config_seen_;
  std::vector<Frame> stack_;
};

std::optional<Scenario> CaseParser::parse(const CaseSource& src) {
  for (const SourceLine& l : src.lines) {
    if (!line(l)) return std::nullopt;
  }
  if (!finish()) return std::nullopt;
  return Scenario{file_, config_, src.bindings, std::move(stack_[0].steps)};
}

bool CaseParser::line(const SourceLine& l) {
  const std::vector<Token>& all = l.tokens;
  auto arrow = std::find_if(all.begin(), all.end(), [](const Token& t) { return t.text == "=>"; });
  if (arrow == all.begin()) {
    ctx_.fail(arrow->loc, "expected a step before '=>'");
    return false;
  }
  const std::vector<Token> tokens(all.begin(), arrow);
  const std::string& verb = tokens[0].text;
  const bool block = verb == "concurrent" || verb == "thread" || verb == "end" ||
                     verb == "repeat" || verb == "config" || verb == "vary";
  if (block && arrow != all.end()) {
    ctx_.fail(arrow->loc, fmt::format("'{}' takes no expectations", verb));
    return false;
  }
  if (block) return block_line(l, tokens);
  const std::vector<Token> expect(arrow == all.end() ? all.end() : arrow + 1, all.end());
  return step_line(tokens, arrow == all.end() ? nullptr : &*arrow, expect);
}

bool CaseParser::step_line(const std::vector<Token>& tokens, const Token* arrow,
                           const std::vector<Token>& expect) {
  const Token& verb = tokens[0];
  const VerbInfo* info = find_verb(verb.text);
  if (!info) {
    ctx_.fail(verb.loc, fmt::format("unknown step {}", quote(verb.text)));
    return false;
  }
  if (info->scope == Scope::kTopLevel && !top_level_only(verb)) return false;
  if (stack_.back().kind == Frame::Kind::kConcurrent) {
    ctx_.fail(verb.loc, fmt::format("expected 'thread NAME' after 'concurrent' (line {}), got {}",
                                    stack_.back().loc.line, quote(verb.text)));
    return false;
  }
  LineCursor cur(tokens);
  std::optional<StepKind> kind = info->parse(ctx_, cur);
  if (!kind) return false;
  if (!cur.at_end()) {
    ctx_.fail(cur.peek().loc, fmt::format("unexpected {} {}", quote(cur.peek().text), cur.where()));
    return false;
  }
  Step step{verb.loc, std::move(*kind), {}};
  if (arrow) {
    if (info->keys == 0) {
      ctx_.fail(arrow->loc, fmt::format("'{}' takes no expectations", verb.text));
      return false;
    }
    const RegionSpec* spec = step_spec(step.kind);
    const uint64_t pages = spec ? internal::spec_pages(ctx_, *spec) : 0;
    std::optional<Expectations> e =
        internal::parse_expectations(ctx_, expect, *arrow, verb.text, info->keys, pages);
    if (!e) return false;
    step.expect = std::move(*e);
  }
  stack_.back().steps.push_back(std::move(step));
  return true;
}

bool CaseParser::top_level_only(const Token& verb) {
  if (stack_.size() == 1) return true;
  const Frame& f = stack_.back();
  ctx_.fail(verb.loc, fmt::format("'{}' must be at the top level, not inside '{}' (line {})",
                                  verb.text, frame_name(f.kind), f.loc.line));
  return false;
}

bool CaseParser::block_line(const SourceLine& l, const std::vector<Token>& tokens) {
  const Token& verb = tokens[0];
  LineCursor cur(tokens);
  if (verb.text == "concurrent") return open_concurrent(cur);
  if (verb.text == "thread") return open_thread(cur);
  if (verb.text == "repeat") return open_repeat(cur);
  if (verb.text == "end") return close_block(cur);
  if (!top_level_only(verb)) return false;
  if (verb.text == "config") return internal::parse_config(ctx_, cur, config_, config_seen_);
  if (!l.is_vary) {
    ctx_.fail(verb.loc, "'vary' must be written in the file, not produced by a '${...}'");
    return false;
  }
  return true;
}

const Frame* CaseParser::enclosing(Frame::Kind kind) const {
  for (auto it = stack_.rbegin(); it != stack_.rend(); ++it) {
    if (it->kind == kind) return &*it;
  }
  return nullptr;
}

bool CaseParser::push_frame(Frame frame) {
  if (stack_.size() > kMaxBlockDepth) {
    ctx_.fail(frame.loc, fmt::format("blocks nested deeper than {}", kMaxBlockDepth));
    return false;
  }
  stack_.push_back(std::move(frame));
  return true;
}

bool CaseParser::open_concurrent(LineCursor& cur) {
  if (!cur.at_end()) {
    ctx_.fail(cur.peek().loc, fmt::format("unexpected {} {}", quote(cur.peek().text), cur.where()));
    return false;
  }
  if (const Frame* t = enclosing(Frame::Kind::kThread)) {
    ctx_.fail(cur.verb().loc, fmt::format("'concurrent' cannot be nested inside thread '{}' "
                                          "(line {})",
                                          t->name, t->loc.line));
    return false;
  }
  if (stack_.back().kind == Frame::Kind::kConcurrent) {
    ctx_.fail(cur.verb().loc, fmt::format("expected 'thread NAME' after 'concurrent' (line {}), "
                                          "got 'concurrent'",
                                          stack_.back().loc.line));
    return false;
  }
  return push_frame(Frame{Frame::Kind::kConcurrent, cur.verb().loc, {}, {}, {}, 0});
}

bool CaseParser::open_thread(LineCursor& cur) {
  const SourceLoc loc = cur.verb().loc;
  if (stack_.back().kind == Frame::Kind::kThread) close_thread();
  if (stack_.back().kind != Frame::Kind::kConcurrent) {
    if (const Frame* t = enclosing(Frame::Kind::kThread)) {
      const Frame& inner = stack_.back();
      ctx_.fail(loc, fmt::format("'thread' inside '{}' (line {}) of thread '{}': close it with "
                                 "'end' first",
                                 frame_name(inner.kind), inner.loc.line, t->name));
    } else {
      ctx_.fail(loc, "'thread' outside 'concurrent'");
    }
    return false;
  }
  const SourceLoc name_loc = cur.at_end() ? cur.end_loc() : cur.peek().loc;
  std::optional<std::string> name = internal::take_name(ctx_, cur, "a thread name");
  if (!name) return false;
  if (!cur.at_end()) {
    ctx_.fail(cur.peek().loc, fmt::format("unexpected {} {}", quote(cur.peek().text), cur.where()));
    return false;
  }
  for (const ThreadBlock& t : stack_.back().threads) {
    if (t.name != *name) continue;
    ctx_.fail(name_loc,
              fmt::format("thread '{}' is already declared at line {}", *name, t.loc.line));
    return false;
  }
  return push_frame(Frame{Frame::Kind::kThread, loc, {}, {}, *name, 0});
}

bool CaseParser::open_repeat(LineCursor& cur) {
  if (stack_.back().kind == Frame::Kind::kConcurrent) {
    ctx_.fail(cur.verb().loc, fmt::format("expected 'thread NAME' after 'concurrent' (line {}), "
                                          "got 'repeat'",
                                          stack_.back().loc.line));
    return false;
  }
  std::optional<uint64_t> count = internal::take_size(ctx_, cur, "a repeat count");
  if (!count) return false;
  if (!cur.at_end()) {
    ctx_.fail(cur.peek().loc, fmt::format("unexpected {} {}", quote(cur.peek().text), cur.where()));
    return false;
  }
  return push_frame(Frame{Frame::Kind::kRepeat, cur.verb().loc, {}, {}, {}, *count});
}

void CaseParser::close_thread() {
  Frame f = std::move(stack_.back());
  stack_.pop_back();
  stack_.back().threads.push_back(ThreadBlock{f.name, f.loc, std::move(f.steps)});
}

bool CaseParser::close_block(LineCursor& cur) {
  const SourceLoc loc = cur.verb().loc;
  if (!cur.at_end()) {
    ctx_.fail(cur.peek().loc, fmt::format("unexpected {} {}", quote(cur.peek().text), cur.where()));
    return false;
  }
  Frame::Kind kind = stack_.back().kind;
  if (kind == Frame::Kind::kTop) {
    ctx_.fail(loc, "'end' without 'concurrent' or 'repeat'");
    return false;
  }
  if (kind == Frame::Kind::kThread) close_thread();
  Frame f = std::move(stack_.back());
  if (f.kind == Frame::Kind::kConcurrent && f.threads.empty()) {
    ctx_.fail(loc, fmt::format("'concurrent' (line {}) has no 'thread'", f.loc.line));
    return false;
  }
  stack_.pop_back();
  if (f.kind == Frame::Kind::kConcurrent) {
    stack_.back().steps.push_back(Step{f.loc, ConcurrentStep{std::move(f.threads), loc}, {}});
  } else {
    stack_.back().steps.push_back(Step{f.loc, RepeatStep{f.count, std::move(f.steps), loc}, {}});
  }
  return true;
}

bool CaseParser::finish() {
  if (stack_.size() == 1) return true;
  const Frame* open = &stack_.back();
  if (open->kind == Frame::Kind::kThread) open = &stack_[stack_.size() - 2];
  ctx_.fail(open->loc, fmt::format("'{}' at line {} is not closed by 'end'", frame_name(open->kind),
                                   open->loc.line));
  return false;
}

// Names the case in a diagnostic when the file has vary lines.
std::vector<Diagnostic> in_case(std::vector<Diagnostic> errors,
                                const std::vector<VaryBinding>& bindings) {
  if (bindings.empty()) return errors;
  std::string values;
  for (const VaryBinding& b : bindings) values += fmt::format(" {}={}", b.name, b.value);
  for (Diagnostic& d : errors) d.message += " (in the case" + values + ")";
  return errors;
}

}  // namespace

ParseResult<std::vector<Scenario>> parse_cases(std::string_view file, std::string_view text) {
  DiagSink diag{std::string(file)};
  const std::vector<SourceLine> lines = lex_lines(text);
  std::optional<std::vector<VaryDecl>> decls = collect_vary(lines, diag);
  if (!decls) return diag.take();
  std::vector<Scenario> cases;
  for (const std::vector<size_t>& choice : vary_combinations(*decls)) {
    std::optional<CaseSource> src = substitute_case(lines, *decls, choice, diag);
    if (!src) return diag.take();
    std::optional<Scenario> s = CaseParser(diag, std::string(file)).parse(*src);
    if (!s) return in_case(diag.take(), src->bindings);
    cases.push_back(std::move(*s));
  }
  return cases;
}

ParseResult<Scenario> parse_scenario(std::string_view file, std::string_view text) {
  ParseResult<std::vector<Scenario>> cases = parse_cases(file, text);
  if (!cases.ok()) return cases.errors();
  if (cases.value().size() != 1) {
    const std::vector<SourceLine> lines = lex_lines(text);
    const auto vary =
        std::find_if(lines.begin(), lines.end(), [](const SourceLine& l) { return l.is_vary; });
    return std::vector<Diagnostic>{
        Diagnostic{std::string(file), vary->tokens[0].loc,
                   fmt::format("the 'vary' lines give {} cases where one was expected",
                               cases.value().size())}};
  }
  return std::move(cases.value()[0]);
}

}  // namespace hmmsim::scenario
