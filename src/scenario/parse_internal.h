// Private to src/scenario/: the pieces the line parsers share.
//
// A ParseCtx carries what is known at the current line of one case (the
// names declared so far and the size of every region) and the DiagSink that
// collects the first error. A LineCursor walks the tokens of one step. Every
// helper reports its own error and returns an empty optional (or nullptr),
// so a caller only has to stop: `if (!v) return std::nullopt;`.
//
// Messages name what was expected and where, e.g.
//   expected a size after 'mmap p buf', got 'x2'
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "scenario/ast.h"
#include "scenario/diagnostic.h"
#include "scenario/lexer.h"

namespace hmmsim::scenario::internal {

// A region as the parser sees it at a point of the file.
struct RegionInfo {
  uint64_t size = 0;
  uint64_t page_offset = 0;  // base address mod 4096 (regions made by `region` may be unaligned)
  int line = 0;              // where it was (last) defined
};

struct Names {
  std::map<std::string, int, std::less<>> processes;  // name -> line declared
  std::map<std::string, int, std::less<>> devices;
  std::map<std::string, RegionInfo, std::less<>> regions;
};

struct ParseCtx {
  DiagSink& diag;
  Names names;

  // Reports an error; returns nullopt so that `return ctx.fail(...)` ends a parse.
  std::nullopt_t fail(SourceLoc loc, std::string message) {
    diag.error(loc, std::move(message));
    return std::nullopt;
  }
};

// The tokens of one step (before any `=>`).
class LineCursor {
 public:
  explicit LineCursor(const std::vector<Token>& tokens) : tokens_(tokens) {}

  bool at_end() const { return pos_ == tokens_.size(); }
  const Token& peek() const { return tokens_[pos_]; }
  const Token& take() { return tokens_[pos_++]; }
  const Token& verb() const { return tokens_[0]; }

  // `after 'mmap p buf'`: the tokens before the current one.
  std::string where() const;
  // Just past the last token taken, for "expected ... after" at the line end.
  SourceLoc end_loc() const;

 private:
  const std::vector<Token>& tokens_;
  size_t pos_ = 1;  // the verb is taken
};

// A `key=value` token split at its first '='.
struct KeyValue {
  std::string_view key;
  std::string_view value;
  size_t value_offset = 0;  // of the value in the token
};
std::optional<KeyValue> split_key(const Token& tok);

// The next token, or an error `expected WHAT after '...'` at the line end.
const Token* need(ParseCtx& ctx, LineCursor& cur, std::string_view what);

// `expected WHAT WHERE, got TOKEN`.
std::nullopt_t wrong(ParseCtx& ctx, SourceLoc loc, std::string_view what, std::string_view where,
                     std::string_view got);

// Names: syntax, and declared (or not yet declared) as the step needs.
std::optional<std::string> take_name(ParseCtx& ctx, LineCursor& cur, std::string_view what);
std::optional<std::string> take_process(ParseCtx& ctx, LineCursor& cur);
std::optional<std::string> take_new_process(ParseCtx& ctx, LineCursor& cur);
std::optional<std::string> take_device(ParseCtx& ctx, LineCursor& cur);
bool device_declared(ParseCtx& ctx, SourceLoc loc, std::string_view name);

// A size expression found at byte `offset` of `tok` (the value of a key, or
// the whole token). `where` ends the message: "after 'mmap p buf'".
std::optional<int64_t> eval_expr(ParseCtx& ctx, const Token& tok, size_t offset,
                                 std::string_view text, std::string_view what,
                                 std::string_view where);
// The same, and not negative.
std::optional<uint64_t> eval_size(ParseCtx& ctx, const Token& tok, size_t offset,
                                  std::string_view text, std::string_view what,
                                  std::string_view where);
std::optional<uint64_t> take_size(ParseCtx& ctx, LineCursor& cur, std::string_view what);
// The value of `mem=` or `sysmem=`: positive, whole pages, within what the
// model can build ([min, max]).
std::optional<uint64_t> memory_size(ParseCtx& ctx, const Token& t, const KeyValue& kv, uint64_t min,
                                    uint64_t max);
// The bounds of `config sysmem=` (the buddy allocator needs two PMD blocks;
// page descriptors cost memory) and of `device ... mem=` (whole 256 MiB chunks).
inline constexpr uint64_t kMinSysmem = uint64_t{4} << 20;
inline constexpr uint64_t kMaxSysmem = uint64_t{16} << 30;
inline constexpr uint64_t kMinDeviceMem = uint64_t{256} << 20;
inline constexpr uint64_t kMaxDeviceMem = uint64_t{64} << 30;

// Region specs, checked against the region sizes in ctx.names.
std::optional<RegionSpec> eval_spec(ParseCtx& ctx, const Token& tok, size_t offset,
                                    std::string_view text, std::string_view where);
std::optional<RegionSpec> take_spec(ParseCtx& ctx, LineCursor& cur);
// Where in its page the spec starts (a `region` may start mid-page).
uint64_t spec_page_offset(const ParseCtx& ctx, const RegionSpec& spec);
// How many pages the spec touches (for prot[...] bounds).
uint64_t spec_pages(const ParseCtx& ctx, const RegionSpec& spec);
// Defines (or redefines) region `name`.
void define_region(ParseCtx& ctx, const std::string& name, RegionInfo info);

std::optional<Pattern> eval_pattern(ParseCtx& ctx, const Token& tok, size_t offset,
                                    std::string_view text, std::string_view where);
std::optional<Pattern> take_pattern(ParseCtx& ctx, LineCursor& cur);

// One of a fixed set of words: `expected rw, r or none WHERE, got 'x'`.
template <typename E>
using Keywords = std::initializer_list<std::pair<std::string_view, E>>;

template <typename E>
std::optional<E> eval_keyword(ParseCtx& ctx, SourceLoc loc, std::string_view text,
                              Keywords<E> words, std::string_view where) {
  for (const auto& [word, value] : words) {
    if (word == text) return value;
  }
  std::vector<std::string_view> names;
  for (const auto& [word, value] : words) names.push_back(word);
  std::string list;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) list += i + 1 == names.size() ? " or " : ", ";
    list += names[i];
  }
  if (text.empty()) return ctx.fail(loc, "expected " + list + " " + std::string(where));
  return wrong(ctx, loc, list, where, text);
}

template <typename E>
std::optional<E> take_keyword(ParseCtx& ctx, LineCursor& cur, Keywords<E> words) {
  const std::string where = cur.where();
  if (cur.at_end()) return eval_keyword(ctx, cur.end_loc(), "", words, where);
  const Token& t = cur.take();
  return eval_keyword(ctx, t.loc, t.text, words, where);
}

// `12M` for 12582912: sizes in messages.
std::string human_size(uint64_t bytes);

// Expectation keys a step can compare (bit mask).
enum ExpectKey : unsigned {
  kExpectRet = 1u << 0,
  kExpectCpages = 1u << 1,
  kExpectFaults = 1u << 2,
  kExpectData = 1u << 3,
  kExpectProt = 1u << 4,
};

// Parses `key=value ...` after `=>`; `keys` says what the step can compare.
std::optional<Expectations> parse_expectations(ParseCtx& ctx, const std::vector<Token>& tokens,
                                               const Token& arrow, std::string_view verb,
                                               unsigned keys, uint64_t spec_pages);

// Line parsers, one per verb: the verb is taken, the rest is theirs.
using StepParser = std::optional<StepKind> (*)(ParseCtx&, LineCursor&);

std::optional<StepKind> parse_process(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_device(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_mmap(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_munmap(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_mprotect(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_madvise(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_mremap(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_region(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_fork(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_exit(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_write(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_read(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_inc(ParseCtx& ctx, LineCursor& cur);

std::optional<StepKind> parse_dev_read(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_dev_write(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_migrate_to_dev(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_migrate_to_sys(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_snapshot(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_exclusive(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_check_exclusive(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_release(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_fail_alloc(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_open(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_close(ParseCtx& ctx, LineCursor& cur);

std::optional<StepKind> parse_check(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_shrink(ParseCtx& ctx, LineCursor& cur);
std::optional<StepKind> parse_expect_folio(ParseCtx& ctx, LineCursor& cur);

// `config KEY=VALUE ...` into `config`; `seen` remembers where each key was set.
bool parse_config(ParseCtx& ctx, LineCursor& cur, Config& config,
                  std::map<std::string, int, std::less<>>& seen);

}  // namespace hmmsim::scenario::internal
