// Line parsers for process steps: syscalls and CPU accesses
// (scenario-format.md, "Process steps").
#include <fmt/format.h>

#include "scenario/parse_internal.h"

namespace hmmsim::scenario::internal {
namespace {

const Keywords<Prot> kProtWords = {
    {"rw", Prot::kReadWrite}, {"r", Prot::kRead}, {"none", Prot::kNone}};

constexpr std::string_view kMmapOptions = "prot=rw|r|none shared align=SIZE hugepage nohugepage";
constexpr std::string_view kMremapOptions = "size=SIZE to=SPEC dontunmap";

// Options a step has seen, to refuse one given twice.
class SeenOptions {
 public:
  bool first(ParseCtx& ctx, const Token& t, std::string_view name) {
    for (const std::string& s : seen_) {
      if (s == name) {
        ctx.fail(t.loc, fmt::format("option '{}' is given twice", name));
        return false;
      }
    }
    seen_.emplace_back(name);
    return true;
  }

 private:
  std::vector<std::string> seen_;
};

std::nullopt_t unexpected_option(ParseCtx& ctx, const Token& t, std::string_view where,
                                 std::string_view options) {
  return ctx.fail(t.loc,
                  fmt::format("unexpected {} {} (options: {})", quote(t.text), where, options));
}

bool mmap_thp(ParseCtx& ctx, const Token& t, MmapStep& step) {
  if (step.thp != ThpHint::kNone) {
    ctx.fail(t.loc, fmt::format("'{}' conflicts with '{}'", t.text,
                                step.thp == ThpHint::kHugepage ? "hugepage" : "nohugepage"));
    return false;
  }
  step.thp = t.text == "hugepage" ? ThpHint::kHugepage : ThpHint::kNoHugepage;
  return true;
}

bool mmap_align(ParseCtx& ctx, const Token& t, const KeyValue& kv, MmapStep& step) {
  std::optional<uint64_t> align =
      eval_size(ctx, t, kv.value_offset, kv.value, "a size", "for 'align='");
  if (!align) return false;
  if (*align == 0 || (*align & (*align - 1)) != 0) {
    ctx.fail(shifted(t.loc, kv.value_offset),
             fmt::format("align={} is not a power of two", kv.value));
    return false;
  }
  step.align = *align;
  return true;
}

// One `[prot=] [shared] [align=] [hugepage|nohugepage]` option.
bool mmap_option(ParseCtx& ctx, const Token& t, std::string_view where, MmapStep& step,
                 SeenOptions& seen) {
  if (t.text == "shared") {
    step.sharing = Sharing::kShared;
    return seen.first(ctx, t, "shared");
  }
  if (t.text == "hugepage" || t.text == "nohugepage") return mmap_thp(ctx, t, step);
  std::optional<KeyValue> kv = split_key(t);
  if (kv && kv->key == "prot") {
    std::optional<Prot> prot =
        eval_keyword(ctx, shifted(t.loc, kv->value_offset), kv->value, kProtWords, "for 'prot='");
    if (!prot) return false;
    step.prot = *prot;
    return seen.first(ctx, t, "prot");
  }
  if (kv && kv->key == "align") return mmap_align(ctx, t, *kv, step) && seen.first(ctx, t, "align");
  unexpected_option(ctx, t, where, kMmapOptions);
  return false;
}

// One `[size=SIZE] [to=SPEC] [dontunmap]` option.
bool mremap_option(ParseCtx& ctx, const Token& t, std::string_view where, MremapStep& step,
                   SeenOptions& seen) {
  if (t.text == "dontunmap") {
    step.unmap = RemapUnmap::kDontUnmap;
    return seen.first(ctx, t, "dontunmap");
  }
  std::optional<KeyValue> kv = split_key(t);
  if (kv && kv->key == "size") {
    std::optional<uint64_t> size =
        eval_size(ctx, t, kv->value_offset, kv->value, "a size", "for 'size='");
    if (!size) return false;
    step.new_size = *size;
    return seen.first(ctx, t, "size");
  }
  if (kv && kv->key == "to") {
    step.to = eval_spec(ctx, t, kv->value_offset, kv->value, "for 'to='");
    return step.to && seen.first(ctx, t, "to");
  }
  unexpected_option(ctx, t, where, kMremapOptions);
  return false;
}

// The `P SPEC` that most process steps start with.
std::optional<std::pair<std::string, RegionSpec>> process_and_spec(ParseCtx& ctx, LineCursor& cur) {
  std::optional<std::string> p = take_process(ctx, cur);
  if (!p) return std::nullopt;
  std::optional<RegionSpec> spec = take_spec(ctx, cur);
  if (!spec) return std::nullopt;
  return std::pair{std::move(*p), std::move(*spec)};
}

}  // namespace

std::optional<StepKind> parse_process(ParseCtx& ctx, LineCursor& cur) {
  std::optional<std::string> name = take_new_process(ctx, cur);
  if (!name) return std::nullopt;
  ctx.names.processes.emplace(*name, cur.verb().loc.line);
  return ProcessStep{*name};
}

std::optional<StepKind> parse_mmap(ParseCtx& ctx, LineCursor& cur) {
  MmapStep step;
  std::optional<std::string> p = take_process(ctx, cur);
  if (!p) return std::nullopt;
  std::optional<std::string> region = take_name(ctx, cur, "a region name");
  if (!region) return std::nullopt;
  std::optional<uint64_t> size = take_size(ctx, cur, "a size");
  if (!size) return std::nullopt;
  step.process = *p;
  step.region = *region;
  step.size = *size;
  SeenOptions seen;
  while (!cur.at_end()) {
    const std::string where = cur.where();
    if (!mmap_option(ctx, cur.take(), where, step, seen)) return std::nullopt;
  }
  define_region(ctx, step.region, RegionInfo{step.size, 0, cur.verb().loc.line});
  return step;
}

std::optional<StepKind> parse_munmap(ParseCtx& ctx, LineCursor& cur) {
  auto ps = process_and_spec(ctx, cur);
  if (!ps) return std::nullopt;
  return MunmapStep{ps->first, ps->second};
}

std::optional<StepKind> parse_mprotect(ParseCtx& ctx, LineCursor& cur) {
  auto ps = process_and_spec(ctx, cur);
  if (!ps) return std::nullopt;
  std::optional<Prot> prot = take_keyword(ctx, cur, kProtWords);
  if (!prot) return std::nullopt;
  return MprotectStep{ps->first, ps->second, *prot};
}

std::optional<StepKind> parse_madvise(ParseCtx& ctx, LineCursor& cur) {
  auto ps = process_and_spec(ctx, cur);
  if (!ps) return std::nullopt;
  std::optional<Advice> advice = take_keyword<Advice>(ctx, cur,
                                                      {{"hugepage", Advice::kHugepage},
                                                       {"nohugepage", Advice::kNoHugepage},
                                                       {"dontneed", Advice::kDontneed},
                                                       {"free", Advice::kFree},
                                                       {"collapse", Advice::kCollapse}});
  if (!advice) return std::nullopt;
  return MadviseStep{ps->first, ps->second, *advice};
}

std::optional<StepKind> parse_mremap(ParseCtx& ctx, LineCursor& cur) {
  auto ps = process_and_spec(ctx, cur);
  if (!ps) return std::nullopt;
  std::optional<std::string> name = take_name(ctx, cur, "a new region name");
  if (!name) return std::nullopt;
  MremapStep step{ps->first,         ps->second,   *name,
                  ps->second.length, std::nullopt, RemapUnmap::kUnmap};
  SeenOptions seen;
  while (!cur.at_end()) {
    const std::string where = cur.where();
    if (!mremap_option(ctx, cur.take(), where, step, seen)) return std::nullopt;
  }
  const uint64_t page_offset = step.to ? spec_page_offset(ctx, *step.to) : 0;
  define_region(ctx, step.new_region, RegionInfo{step.new_size, page_offset, cur.verb().loc.line});
  return step;
}

std::optional<StepKind> parse_region(ParseCtx& ctx, LineCursor& cur) {
  std::optional<std::string> name = take_name(ctx, cur, "a region name");
  if (!name) return std::nullopt;
  const std::string where = cur.where();
  const Token* eq = need(ctx, cur, "'='");
  if (!eq) return std::nullopt;
  if (eq->text != "=") return wrong(ctx, eq->loc, "'='", where, eq->text);
  std::optional<RegionSpec> spec = take_spec(ctx, cur);
  if (!spec) return std::nullopt;
  define_region(ctx, *name,
                RegionInfo{spec->length, spec_page_offset(ctx, *spec), cur.verb().loc.line});
  return RegionStep{*name, *spec};
}

std::optional<StepKind> parse_fork(ParseCtx& ctx, LineCursor& cur) {
  std::optional<std::string> parent = take_process(ctx, cur);
  if (!parent) return std::nullopt;
  std::optional<std::string> child = take_new_process(ctx, cur);
  if (!child) return std::nullopt;
  ctx.names.processes.emplace(*child, cur.verb().loc.line);
  return ForkStep{*parent, *child};
}

std::optional<StepKind> parse_exit(ParseCtx& ctx, LineCursor& cur) {
  std::optional<std::string> p = take_process(ctx, cur);
  if (!p) return std::nullopt;
  return ExitStep{*p};
}

std::optional<StepKind> parse_write(ParseCtx& ctx, LineCursor& cur) {
  auto ps = process_and_spec(ctx, cur);
  if (!ps) return std::nullopt;
  std::optional<Pattern> pattern = take_pattern(ctx, cur);
  if (!pattern) return std::nullopt;
  return WriteStep{ps->first, ps->second, *pattern};
}

std::optional<StepKind> parse_read(ParseCtx& ctx, LineCursor& cur) {
  auto ps = process_and_spec(ctx, cur);
  if (!ps) return std::nullopt;
  return ReadStep{ps->first, ps->second};
}

std::optional<StepKind> parse_inc(ParseCtx& ctx, LineCursor& cur) {
  auto ps = process_and_spec(ctx, cur);
  if (!ps) return std::nullopt;
  return IncStep{ps->first, ps->second};
}

}  // namespace hmmsim::scenario::internal
