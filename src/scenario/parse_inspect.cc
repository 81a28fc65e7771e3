// Line parsers for `config` and the inspection steps
// (scenario-format.md, "Declarations" and "Inspection steps").
#include <fmt/format.h>

#include "base/types.h"
#include "scenario/parse_internal.h"

namespace hmmsim::scenario::internal {
namespace {

constexpr std::string_view kFolioKeys = "order= where= mapped= mapcount= refcount=";

bool first_key(ParseCtx& ctx, const Token& t, std::string_view key,
               std::vector<std::string>& seen) {
  for (const std::string& s : seen) {
    if (s == key) {
      ctx.fail(t.loc, fmt::format("key '{}' is given twice", key));
      return false;
    }
  }
  seen.emplace_back(key);
  return true;
}

std::optional<FolioWhere> folio_where(ParseCtx& ctx, const Token& t, const KeyValue& kv) {
  const SourceLoc loc = shifted(t.loc, kv.value_offset);
  if (kv.value == "system") return FolioWhere{FolioWhere::Kind::kSystem, ""};
  constexpr std::string_view kDevice = "device:";
  if (kv.value.substr(0, kDevice.size()) != kDevice) {
    return wrong(ctx, loc, "system or device:NAME", "for 'where='", kv.value);
  }
  const std::string_view name = kv.value.substr(kDevice.size());
  const SourceLoc name_loc = shifted(loc, kDevice.size());
  if (!is_name(name)) return wrong(ctx, name_loc, "a device name", "after 'where=device:'", name);
  if (!device_declared(ctx, name_loc, name)) return std::nullopt;
  return FolioWhere{FolioWhere::Kind::kDevice, std::string(name)};
}

std::optional<uint32_t> folio_order(ParseCtx& ctx, const Token& t, const KeyValue& kv) {
  std::optional<uint64_t> order =
      eval_size(ctx, t, kv.value_offset, kv.value, "an order", "for 'order='");
  if (!order) return std::nullopt;
  if (*order > kMaxPageOrder) {
    return ctx.fail(
        shifted(t.loc, kv.value_offset),
        fmt::format("order={} is above the largest folio order ({})", kv.value, kMaxPageOrder));
  }
  return static_cast<uint32_t>(*order);
}

// One `key=value` of expect_folio.
bool folio_key(ParseCtx& ctx, const Token& t, std::string_view where, ExpectFolioStep& step,
               std::vector<std::string>& seen) {
  std::optional<KeyValue> kv = split_key(t);
  if (!kv) {
    ctx.fail(t.loc, fmt::format("expected key=value {}, got {} (keys: {})", where, quote(t.text),
                                kFolioKeys));
    return false;
  }
  const std::string for_key = fmt::format("for '{}='", kv->key);
  if (kv->key == "order") {
    step.order = folio_order(ctx, t, *kv);
  } else if (kv->key == "where") {
    step.where = folio_where(ctx, t, *kv);
  } else if (kv->key == "mapped") {
    step.mapped = eval_keyword<MappedAs>(
        ctx, shifted(t.loc, kv->value_offset), kv->value,
        {{"pmd", MappedAs::kPmd}, {"pte", MappedAs::kPte}, {"none", MappedAs::kNone}}, for_key);
  } else if (kv->key == "mapcount" || kv->key == "refcount") {
    std::optional<uint64_t> n = eval_size(ctx, t, kv->value_offset, kv->value, "a count", for_key);
    (kv->key == "mapcount" ? step.mapcount : step.refcount) = n;
  } else {
    ctx.fail(t.loc,
             fmt::format("unknown key '{}' for 'expect_folio' (keys: {})", kv->key, kFolioKeys));
    return false;
  }
  return !ctx.diag.failed() && first_key(ctx, t, kv->key, seen);
}

// One `KEY=VALUE` of config.
bool config_key(ParseCtx& ctx, const Token& t, const KeyValue& kv, Config& config) {
  const std::string for_key = fmt::format("for '{}='", kv.key);
  const SourceLoc loc = shifted(t.loc, kv.value_offset);
  if (kv.key == "sysmem") {
    std::optional<uint64_t> v = memory_size(ctx, t, kv, kMinSysmem, kMaxSysmem);
    if (v) config.sysmem = *v;
  } else if (kv.key == "thp") {
    std::optional<ThpMode> v = eval_keyword<ThpMode>(
        ctx, loc, kv.value,
        {{"always", ThpMode::kAlways}, {"madvise", ThpMode::kMadvise}, {"never", ThpMode::kNever}},
        for_key);
    if (v) config.thp = *v;
  } else if (kv.key == "seed") {
    std::optional<uint64_t> v = eval_size(ctx, t, kv.value_offset, kv.value, "a seed", for_key);
    if (v) config.seed = *v;
  } else if (kv.key == "check") {
    std::optional<CheckMode> v = eval_keyword<CheckMode>(
        ctx, loc, kv.value,
        {{"step", CheckMode::kStep}, {"end", CheckMode::kEnd}, {"off", CheckMode::kOff}}, for_key);
    if (v) config.check = *v;
  } else {
    ctx.fail(t.loc,
             fmt::format("unknown config key '{}' (keys: sysmem, thp, seed, check)", kv.key));
  }
  return !ctx.diag.failed();
}

}  // namespace

std::optional<StepKind> parse_check(ParseCtx&, LineCursor&) {
  return CheckStep{};
}

std::optional<StepKind> parse_shrink(ParseCtx&, LineCursor&) {
  return ShrinkStep{};
}

std::optional<StepKind> parse_expect_folio(ParseCtx& ctx, LineCursor& cur) {
  std::optional<std::string> p = take_process(ctx, cur);
  if (!p) return std::nullopt;
  std::optional<RegionSpec> spec = take_spec(ctx, cur);
  if (!spec) return std::nullopt;
  ExpectFolioStep step{*p, *spec, {}, {}, {}, {}, {}};
  std::vector<std::string> seen;
  while (!cur.at_end()) {
    const std::string where = cur.where();
    if (!folio_key(ctx, cur.take(), where, step, seen)) return std::nullopt;
  }
  return step;
}

bool parse_config(ParseCtx& ctx, LineCursor& cur, Config& config,
                  std::map<std::string, int, std::less<>>& seen) {
  if (cur.at_end()) {
    ctx.fail(cur.end_loc(), "expected KEY=VALUE after 'config'");
    return false;
  }
  while (!cur.at_end()) {
    const std::string where = cur.where();
    const Token& t = cur.take();
    std::optional<KeyValue> kv = split_key(t);
    if (!kv) {
      wrong(ctx, t.loc, "KEY=VALUE", where, t.text);
      return false;
    }
    if (!config_key(ctx, t, *kv, config)) return false;
    auto [it, fresh] = seen.emplace(std::string(kv->key), t.loc.line);
    if (!fresh) {
      ctx.fail(t.loc,
               fmt::format("config key '{}' is already set at line {}", kv->key, it->second));
      return false;
    }
  }
  return true;
}

}  // namespace hmmsim::scenario::internal
