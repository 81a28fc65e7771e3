// Region specs `NAME[+OFFSET][:LENGTH]` and data patterns as step arguments.
#include <fmt/format.h>

#include <algorithm>

#include "base/types.h"
#include "scenario/parse_internal.h"

namespace hmmsim::scenario::internal {
namespace {

// Length of the name that starts `text` (0 when it does not start with one).
size_t name_length(std::string_view text) {
  size_t n = 0;
  for (; n < text.size(); ++n) {
    const char c = text[n];
    const bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    if (!alpha && (n == 0 || c < '0' || c > '9')) break;
  }
  return n;
}

// Checks that [offset, offset + length) lies inside the region.
bool check_bounds(ParseCtx& ctx, SourceLoc loc, const RegionSpec& spec, uint64_t size) {
  if (spec.offset > size) {
    ctx.fail(loc,
             fmt::format("region spec {} starts at {}, past the end of region '{}' ({})",
                         quote(spec.text), human_size(spec.offset), spec.region, human_size(size)));
    return false;
  }
  if (spec.length > size - spec.offset) {
    ctx.fail(loc, fmt::format("region spec {} ends at {}, past the end of region '{}' ({})",
                              quote(spec.text), human_size(spec.offset + spec.length), spec.region,
                              human_size(size)));
    return false;
  }
  return true;
}

}  // namespace

namespace {

// Reads `[+OFFSET][:LENGTH]` (`rest`, at byte `at` of `tok`) into `spec`,
// whose region is `size` bytes long.
bool eval_range(ParseCtx& ctx, const Token& tok, size_t at, std::string_view rest, uint64_t size,
                RegionSpec& spec) {
  const std::string in_spec = "in region spec " + quote(spec.text);
  if (!rest.empty() && rest[0] == '+') {
    const size_t colon = std::min(rest.find(':'), rest.size());
    std::optional<uint64_t> off =
        eval_size(ctx, tok, at + 1, rest.substr(1, colon - 1), "an offset", "after '+' " + in_spec);
    if (!off) return false;
    spec.offset = *off;
    rest = rest.substr(colon);
    at += colon;
  }
  spec.length = spec.offset <= size ? size - spec.offset : 0;
  if (!rest.empty() && rest[0] == ':') {
    std::optional<uint64_t> len =
        eval_size(ctx, tok, at + 1, rest.substr(1), "a length", "after ':' " + in_spec);
    if (!len) return false;
    spec.length = *len;
  } else if (!rest.empty()) {
    ctx.fail(shifted(tok.loc, at),
             fmt::format("expected '+' or ':' after region name '{}' {}", spec.region, in_spec));
    return false;
  }
  return true;
}

}  // namespace

std::optional<RegionSpec> eval_spec(ParseCtx& ctx, const Token& tok, size_t offset,
                                    std::string_view text, std::string_view where) {
  const SourceLoc loc = shifted(tok.loc, offset);
  const size_t n = name_length(text);
  if (n == 0) {
    if (text.empty()) return ctx.fail(loc, fmt::format("expected a region spec {}", where));
    return wrong(ctx, loc, "a region spec", where, text);
  }
  RegionSpec spec{std::string(text.substr(0, n)), 0, 0, std::string(text), loc};
  auto it = ctx.names.regions.find(spec.region);
  if (it == ctx.names.regions.end()) {
    return ctx.fail(loc, fmt::format("unknown region '{}' (define it with 'mmap', 'region' or "
                                     "'mremap')",
                                     spec.region));
  }
  const uint64_t size = it->second.size;
  if (!eval_range(ctx, tok, offset + n, text.substr(n), size, spec)) return std::nullopt;
  if (!check_bounds(ctx, loc, spec, size)) return std::nullopt;
  return spec;
}

std::optional<RegionSpec> take_spec(ParseCtx& ctx, LineCursor& cur) {
  const std::string where = cur.where();
  const Token* t = need(ctx, cur, "a region spec");
  if (!t) return std::nullopt;
  return eval_spec(ctx, *t, 0, t->text, where);
}

uint64_t spec_page_offset(const ParseCtx& ctx, const RegionSpec& spec) {
  auto it = ctx.names.regions.find(spec.region);
  HMM_ASSERT(it != ctx.names.regions.end(), "spec of unknown region '{}'", spec.region);
  return (it->second.page_offset + spec.offset) % kPageSize;
}

uint64_t spec_pages(const ParseCtx& ctx, const RegionSpec& spec) {
  return (spec_page_offset(ctx, spec) + spec.length + kPageSize - 1) / kPageSize;
}

void define_region(ParseCtx& ctx, const std::string& name, RegionInfo info) {
  ctx.names.regions[name] = info;
}

std::optional<Pattern> eval_pattern(ParseCtx& ctx, const Token& tok, size_t offset,
                                    std::string_view text, std::string_view where) {
  const SourceLoc loc = shifted(tok.loc, offset);
  if (text.empty()) return ctx.fail(loc, fmt::format("expected a pattern {}", where));
  std::variant<Pattern, PatternError> p = parse_pattern(text);
  if (const PatternError* e = std::get_if<PatternError>(&p)) {
    if (e->not_a_pattern) {
      return ctx.fail(loc, fmt::format("expected a pattern {}, got {} (patterns: {})", where,
                                       quote(text), kPatternNames));
    }
    return ctx.fail(shifted(loc, e->offset),
                    fmt::format("invalid pattern {} {}: {}", quote(text), where, e->message));
  }
  return std::get<Pattern>(p);
}

std::optional<Pattern> take_pattern(ParseCtx& ctx, LineCursor& cur) {
  const std::string where = cur.where();
  const Token* t = need(ctx, cur, "a pattern");
  if (!t) return std::nullopt;
  return eval_pattern(ctx, *t, 0, t->text, where);
}

}  // namespace hmmsim::scenario::internal
