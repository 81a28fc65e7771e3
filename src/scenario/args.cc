// The argument helpers of the line parsers: cursor, names, sizes.
#include <fmt/format.h>

#include "base/types.h"
#include "scenario/parse_internal.h"
#include "scenario/size_expr.h"

namespace hmmsim::scenario::internal {

std::string LineCursor::where() const {
  // quote() shows at most 48 bytes, so a few more are enough to join.
  constexpr size_t kEnough = 64;
  std::string text;
  for (size_t i = 0; i < pos_ && text.size() <= kEnough; ++i) {
    if (i) text += ' ';
    text.append(tokens_[i].text, 0, kEnough);
  }
  return "after " + quote(text);
}

SourceLoc LineCursor::end_loc() const {
  const Token& last = tokens_[pos_ - 1];
  return shifted(last.loc, last.text.size());
}

std::optional<KeyValue> split_key(const Token& tok) {
  const size_t eq = tok.text.find('=');
  if (eq == std::string::npos) return std::nullopt;
  std::string_view text(tok.text);
  return KeyValue{text.substr(0, eq), text.substr(eq + 1), eq + 1};
}

const Token* need(ParseCtx& ctx, LineCursor& cur, std::string_view what) {
  if (!cur.at_end()) return &cur.take();
  ctx.fail(cur.end_loc(), fmt::format("expected {} {}", what, cur.where()));
  return nullptr;
}

std::nullopt_t wrong(ParseCtx& ctx, SourceLoc loc, std::string_view what, std::string_view where,
                     std::string_view got) {
  return ctx.fail(loc, fmt::format("expected {} {}, got {}", what, where, quote(got)));
}

namespace {

const Token* take_name_token(ParseCtx& ctx, LineCursor& cur, std::string_view what) {
  const std::string where = cur.where();
  const Token* t = need(ctx, cur, what);
  if (!t) return nullptr;
  if (!is_name(t->text)) {
    wrong(ctx, t->loc, what, where, t->text);
    return nullptr;
  }
  return t;
}

}  // namespace

std::optional<std::string> take_name(ParseCtx& ctx, LineCursor& cur, std::string_view what) {
  const Token* t = take_name_token(ctx, cur, what);
  if (!t) return std::nullopt;
  return t->text;
}

std::optional<std::string> take_process(ParseCtx& ctx, LineCursor& cur) {
  const Token* t = take_name_token(ctx, cur, "a process name");
  if (!t) return std::nullopt;
  if (!ctx.names.processes.contains(t->text)) {
    return ctx.fail(t->loc, fmt::format("unknown process '{}' (declare it with 'process {}' or "
                                        "'fork')",
                                        t->text, t->text));
  }
  return t->text;
}

std::optional<std::string> take_new_process(ParseCtx& ctx, LineCursor& cur) {
  const Token* t = take_name_token(ctx, cur, "a new process name");
  if (!t) return std::nullopt;
  auto it = ctx.names.processes.find(t->text);
  if (it != ctx.names.processes.end()) {
    return ctx.fail(
        t->loc, fmt::format("process '{}' is already declared at line {}", t->text, it->second));
  }
  return t->text;
}

bool device_declared(ParseCtx& ctx, SourceLoc loc, std::string_view name) {
  if (ctx.names.devices.contains(name)) return true;
  ctx.fail(loc,
           fmt::format("unknown device '{}' (declare it with 'device {} private')", name, name));
  return false;
}

std::optional<std::string> take_device(ParseCtx& ctx, LineCursor& cur) {
  const Token* t = take_name_token(ctx, cur, "a device name");
  if (!t) return std::nullopt;
  if (!device_declared(ctx, t->loc, t->text)) return std::nullopt;
  return t->text;
}

std::optional<int64_t> eval_expr(ParseCtx& ctx, const Token& tok, size_t offset,
                                 std::string_view text, std::string_view what,
                                 std::string_view where) {
  const SourceLoc loc = shifted(tok.loc, offset);
  if (text.empty()) return ctx.fail(loc, fmt::format("expected {} {}", what, where));
  std::variant<int64_t, SizeError> v = evaluate_size(text);
  if (const SizeError* e = std::get_if<SizeError>(&v)) {
    if (e->not_a_size) return wrong(ctx, loc, what, where, text);
    return ctx.fail(shifted(loc, e->offset),
                    fmt::format("invalid {} {}: {}", quote(text), where, e->message));
  }
  return std::get<int64_t>(v);
}

std::optional<uint64_t> eval_size(ParseCtx& ctx, const Token& tok, size_t offset,
                                  std::string_view text, std::string_view what,
                                  std::string_view where) {
  std::optional<int64_t> v = eval_expr(ctx, tok, offset, text, what, where);
  if (!v) return std::nullopt;
  if (*v < 0) {
    return ctx.fail(shifted(tok.loc, offset),
                    fmt::format("{} {} is negative ({})", quote(text), where, *v));
  }
  return static_cast<uint64_t>(*v);
}

std::optional<uint64_t> take_size(ParseCtx& ctx, LineCursor& cur, std::string_view what) {
  const std::string where = cur.where();
  const Token* t = need(ctx, cur, what);
  if (!t) return std::nullopt;
  return eval_size(ctx, *t, 0, t->text, what, where);
}

std::optional<uint64_t> memory_size(ParseCtx& ctx, const Token& t, const KeyValue& kv, uint64_t min,
                                    uint64_t max) {
  const std::string where = fmt::format("for '{}='", kv.key);
  std::optional<uint64_t> size = eval_size(ctx, t, kv.value_offset, kv.value, "a size", where);
  if (!size) return std::nullopt;
  if (*size == 0 || *size % kPageSize != 0) {
    return ctx.fail(
        shifted(t.loc, kv.value_offset),
        fmt::format("{}={} must be a positive multiple of the page size (4K)", kv.key, kv.value));
  }
  if (*size < min || *size > max) {
    return ctx.fail(shifted(t.loc, kv.value_offset),
                    fmt::format("{}={} is outside what the model supports ({} to {})", kv.key,
                                kv.value, human_size(min), human_size(max)));
  }
  return size;
}

std::string human_size(uint64_t bytes) {
  constexpr std::pair<uint64_t, char> kUnits[] = {
      {1ull << 30, 'G'}, {1ull << 20, 'M'}, {1ull << 10, 'K'}};
  for (const auto& [unit, suffix] : kUnits) {
    if (bytes >= unit && bytes % unit == 0) return fmt::format("{}{}", bytes / unit, suffix);
  }
  return fmt::format("{}", bytes);
}

}  // namespace hmmsim::scenario::internal
