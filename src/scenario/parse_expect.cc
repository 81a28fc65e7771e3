// Expectations: `=> key=value ...` after a step (scenario-format.md,
// "Expectations").
#include <fmt/format.h>

#include <array>

#include "scenario/parse_internal.h"

namespace hmmsim::scenario::internal {
namespace {

constexpr std::array<std::pair<std::string_view, uint8_t>, 11> kProtNames = {{
    {"error", kProtError},
    {"none", kProtNone},
    {"read", kProtRead},
    {"write", kProtWrite},
    {"pmd", kProtPmd},
    {"pud", kProtPud},
    {"zero", kProtZero},
    {"dev_private_local", kProtDevPrivateLocal},
    {"dev_private_remote", kProtDevPrivateRemote},
    {"dev_coherent_local", kProtDevCoherentLocal},
    {"dev_coherent_remote", kProtDevCoherentRemote},
}};

constexpr std::array<std::pair<std::string_view, unsigned>, 5> kKeyBits = {{
    {"ret", kExpectRet},
    {"cpages", kExpectCpages},
    {"faults", kExpectFaults},
    {"data", kExpectData},
    {"prot", kExpectProt},
}};

std::string key_list(unsigned keys) {
  std::string out;
  for (const auto& [name, bit] : kKeyBits) {
    if (!(keys & bit)) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

// One of 0, -ERRNO, segv.
std::optional<RetValue> ret_value(ParseCtx& ctx, SourceLoc loc, std::string_view text,
                                  std::string_view expected) {
  if (text == "0") return RetValue{RetValue::Kind::kZero, Errno::kInval};
  if (text == "segv") return RetValue{RetValue::Kind::kSegv, Errno::kInval};
  if (text.size() > 1 && text[0] == '-' && text[1] == 'E') {
    if (std::optional<Errno> e = errno_from_name(text.substr(1))) {
      return RetValue{RetValue::Kind::kErrno, *e};
    }
    return ctx.fail(loc, fmt::format("unknown errno {} for 'ret=' (errnos: -EINVAL -EFAULT "
                                     "-EPERM -ENOENT -EBUSY -ENOMEM -EAGAIN)",
                                     quote(text.substr(1))));
  }
  return wrong(ctx, loc, expected, "for 'ret='", text);
}

// `(V1,V2,...)`.
std::optional<RetExpect> ret_set(ParseCtx& ctx, SourceLoc loc, std::string_view text) {
  if (text.back() != ')') {
    return ctx.fail(shifted(loc, text.size()),
                    fmt::format("expected ')' to close the set {} for 'ret='", quote(text)));
  }
  RetExpect ret{loc, false, {}};
  size_t start = 1;
  while (start < text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size() - 1;
    std::optional<RetValue> v =
        ret_value(ctx, shifted(loc, start), text.substr(start, end - start), "0, -ERRNO or segv");
    if (!v) return std::nullopt;
    ret.allowed.push_back(*v);
    start = end + 1;
  }
  return ret;
}

std::optional<RetExpect> parse_ret(ParseCtx& ctx, const Token& t, const KeyValue& kv) {
  const SourceLoc loc = shifted(t.loc, kv.value_offset);
  if (kv.value == "any") return RetExpect{t.loc, true, {}};
  if (!kv.value.empty() && kv.value[0] == '(') {
    std::optional<RetExpect> set = ret_set(ctx, loc, kv.value);
    if (set) set->loc = t.loc;
    return set;
  }
  std::optional<RetValue> v =
      ret_value(ctx, loc, kv.value, "0, -ERRNO, segv, any or a set like (0,-EBUSY)");
  if (!v) return std::nullopt;
  return RetExpect{t.loc, false, {*v}};
}

// One `|` part of a prot value: a name or a hex byte.
std::optional<uint8_t> prot_part(ParseCtx& ctx, SourceLoc loc, std::string_view part) {
  for (const auto& [name, value] : kProtNames) {
    if (name == part) return value;
  }
  const bool hex = part.size() > 2 && part[0] == '0' && (part[1] == 'x' || part[1] == 'X') &&
                   part.find_first_not_of("0123456789abcdefABCDEF", 2) == std::string_view::npos;
  if (!hex) {
    return ctx.fail(loc, fmt::format("unknown protection {} for 'prot=' (names: error none read "
                                     "write pmd pud zero dev_private_local dev_private_remote "
                                     "dev_coherent_local dev_coherent_remote, or a hex byte "
                                     "like 0x05)",
                                     quote(part)));
  }
  const size_t digits = part.find_first_not_of('0', 2);
  if (digits != std::string_view::npos && part.size() - digits > 2) {
    return ctx.fail(loc, fmt::format("{} is not a byte", quote(part)));
  }
  unsigned v = 0;
  for (char c : part.substr(2)) {
    v = v * 16 + static_cast<unsigned>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return static_cast<uint8_t>(v);
}

std::optional<uint8_t> prot_byte(ParseCtx& ctx, SourceLoc loc, std::string_view text) {
  uint8_t byte = 0;
  size_t start = 0;
  for (;;) {
    const size_t bar = std::min(text.find('|', start), text.size());
    std::optional<uint8_t> part =
        prot_part(ctx, shifted(loc, start), text.substr(start, bar - start));
    if (!part) return std::nullopt;
    byte |= *part;
    if (bar == text.size()) return byte;
    start = bar + 1;
  }
}

// `prot`, `prot[I]` or `prot[A..B]`: the page range, checked against the spec.
bool prot_range(ParseCtx& ctx, const Token& t, std::string_view key, uint64_t pages,
                ProtExpect& out) {
  if (key == "prot") return true;
  if (key.back() != ']') {
    ctx.fail(shifted(t.loc, key.size()), fmt::format("expected ']' to close {}", quote(key)));
    return false;
  }
  const std::string_view inner = key.substr(5, key.size() - 6);
  const size_t dots = inner.find("..");
  const std::string where = "in " + quote(key);
  const std::string_view first_text = inner.substr(0, dots);
  std::optional<uint64_t> first = eval_size(ctx, t, 5, first_text, "a page index", where);
  if (!first) return false;
  uint64_t end = *first + 1;
  if (dots != std::string_view::npos) {
    std::optional<uint64_t> e =
        eval_size(ctx, t, 5 + dots + 2, inner.substr(dots + 2), "a page index", where);
    if (!e) return false;
    if (*e <= *first) {
      ctx.fail(t.loc, fmt::format("{} is an empty page range", quote(key)));
      return false;
    }
    end = *e;
  }
  if (end > pages) {
    ctx.fail(t.loc, fmt::format("{} is outside the {} pages of the spec", quote(key), pages));
    return false;
  }
  out.first = *first;
  out.end = end;
  return true;
}

std::optional<ProtExpect> parse_prot(ParseCtx& ctx, const Token& t, const KeyValue& kv,
                                     uint64_t pages) {
  ProtExpect prot{t.loc, 0, std::nullopt, 0};
  if (!prot_range(ctx, t, kv.key, pages, prot)) return std::nullopt;
  std::optional<uint8_t> byte = prot_byte(ctx, shifted(t.loc, kv.value_offset), kv.value);
  if (!byte) return std::nullopt;
  prot.value = *byte;
  return prot;
}

unsigned key_bit(std::string_view key) {
  if (key == "prot" || key.substr(0, 5) == "prot[") return kExpectProt;
  for (const auto& [name, bit] : kKeyBits) {
    if (name == key) return bit;
  }
  return 0;
}

// One `key=value`, known to be allowed for the step.
bool parse_one(ParseCtx& ctx, const Token& t, const KeyValue& kv, unsigned bit, uint64_t pages,
               Expectations& out) {
  const std::string for_key = fmt::format("for '{}='", kv.key);
  switch (bit) {
    case kExpectRet: out.ret = parse_ret(ctx, t, kv); break;
    case kExpectCpages:
    case kExpectFaults: {
      std::optional<uint64_t> n = eval_size(ctx, t, kv.value_offset, kv.value, "a count", for_key);
      if (n) (bit == kExpectCpages ? out.cpages : out.faults) = CountExpect{t.loc, *n};
      break;
    }
    case kExpectData: {
      std::optional<Pattern> p = eval_pattern(ctx, t, kv.value_offset, kv.value, for_key);
      if (p) out.data = DataExpect{t.loc, *p};
      break;
    }
    default: {
      std::optional<ProtExpect> p = parse_prot(ctx, t, kv, pages);
      if (p) out.prot.push_back(*p);
      break;
    }
  }
  return !ctx.diag.failed();
}

}  // namespace

std::optional<Expectations> parse_expectations(ParseCtx& ctx, const std::vector<Token>& tokens,
                                               const Token& arrow, std::string_view verb,
                                               unsigned keys, uint64_t spec_pages) {
  if (tokens.empty()) return ctx.fail(shifted(arrow.loc, 2), "expected key=value after '=>'");
  Expectations out;
  unsigned seen = 0;
  for (const Token& t : tokens) {
    std::optional<KeyValue> kv = split_key(t);
    if (!kv) return wrong(ctx, t.loc, "key=value", "after '=>'", t.text);
    const unsigned bit = key_bit(kv->key);
    if (bit == 0) {
      return ctx.fail(t.loc,
                      fmt::format("unknown expectation '{}' (keys: {})", kv->key, key_list(~0u)));
    }
    if (!(keys & bit)) {
      return ctx.fail(t.loc, fmt::format("'{}' has no '{}' to compare (it gives: {})", verb,
                                         kv->key.substr(0, kv->key.find('[')), key_list(keys)));
    }
    if ((seen & bit) && bit != kExpectProt) {
      return ctx.fail(t.loc, fmt::format("expectation '{}' is given twice", kv->key));
    }
    seen |= bit;
    if (!parse_one(ctx, t, *kv, bit, spec_pages, out)) return std::nullopt;
  }
  return out;
}

}  // namespace hmmsim::scenario::internal
