#include "scenario/format.h"

#include <fmt/format.h>

#include <array>

namespace hmmsim::scenario {
namespace {

constexpr std::array<std::string_view, 29> kVerbNames = {
    "device",    "process",         "mmap",         "munmap",         "mprotect",       "madvise",
    "mremap",    "region",          "fork",         "exit",           "write",          "read",
    "inc",       "dev_read",        "dev_write",    "migrate_to_dev", "migrate_to_sys", "snapshot",
    "exclusive", "check_exclusive", "release",      "fail_alloc",     "open",           "close",
    "check",     "shrink",          "expect_folio", "concurrent",     "repeat"};
static_assert(kVerbNames.size() == std::variant_size_v<StepKind>);

std::string_view prot_name(Prot p) {
  switch (p) {
    case Prot::kReadWrite: return "rw";
    case Prot::kRead: return "r";
    case Prot::kNone: return "none";
  }
  return "?";
}

std::string_view advice_name(Advice a) {
  switch (a) {
    case Advice::kHugepage: return "hugepage";
    case Advice::kNoHugepage: return "nohugepage";
    case Advice::kDontneed: return "dontneed";
    case Advice::kFree: return "free";
    case Advice::kCollapse: return "collapse";
  }
  return "?";
}

std::string_view mapped_name(MappedAs m) {
  switch (m) {
    case MappedAs::kPmd: return "pmd";
    case MappedAs::kPte: return "pte";
    case MappedAs::kNone: return "none";
  }
  return "?";
}

std::string range(const DeviceRange& r) {
  return fmt::format("{} {} {}", r.device, r.process, format_spec(r.spec));
}

std::string mmap_operands(const MmapStep& s) {
  std::string out = fmt::format("{} {} {} prot={} align={}", s.process, s.region, s.size,
                                prot_name(s.prot), s.align);
  if (s.sharing == Sharing::kShared) out += " shared";
  if (s.thp == ThpHint::kHugepage) out += " hugepage";
  if (s.thp == ThpHint::kNoHugepage) out += " nohugepage";
  return out;
}

std::string mremap_operands(const MremapStep& s) {
  std::string out =
      fmt::format("{} {} {} size={}", s.process, format_spec(s.spec), s.new_region, s.new_size);
  if (s.to) out += " to=" + format_spec(*s.to);
  if (s.unmap == RemapUnmap::kDontUnmap) out += " dontunmap";
  return out;
}

std::string folio_operands(const ExpectFolioStep& s) {
  std::string out = fmt::format("{} {}", s.process, format_spec(s.spec));
  if (s.order) out += fmt::format(" order={}", *s.order);
  if (s.where) {
    out += s.where->kind == FolioWhere::Kind::kSystem ? " where=system"
                                                      : " where=device:" + s.where->device;
  }
  if (s.mapped) out += fmt::format(" mapped={}", mapped_name(*s.mapped));
  if (s.mapcount) out += fmt::format(" mapcount={}", *s.mapcount);
  if (s.refcount) out += fmt::format(" refcount={}", *s.refcount);
  return out;
}

// The operands of a one-line step, after its verb.
struct Operands {
  std::string operator()(const DeviceStep& s) const {
    return fmt::format("{} {} mem={}", s.name,
                       s.kind == DeviceKind::kPrivate ? "private" : "coherent", s.mem);
  }
  std::string operator()(const ProcessStep& s) const { return s.name; }
  std::string operator()(const MmapStep& s) const { return mmap_operands(s); }
  std::string operator()(const MunmapStep& s) const {
    return s.process + " " + format_spec(s.spec);
  }
  std::string operator()(const MprotectStep& s) const {
    return fmt::format("{} {} {}", s.process, format_spec(s.spec), prot_name(s.prot));
  }
  std::string operator()(const MadviseStep& s) const {
    return fmt::format("{} {} {}", s.process, format_spec(s.spec), advice_name(s.advice));
  }
  std::string operator()(const MremapStep& s) const { return mremap_operands(s); }
  std::string operator()(const RegionStep& s) const { return s.name + " = " + format_spec(s.spec); }
  std::string operator()(const ForkStep& s) const { return s.parent + " " + s.child; }
  std::string operator()(const ExitStep& s) const { return s.process; }
  std::string operator()(const WriteStep& s) const {
    return fmt::format("{} {} {}", s.process, format_spec(s.spec), format_pattern(s.pattern));
  }
  std::string operator()(const ReadStep& s) const { return s.process + " " + format_spec(s.spec); }
  std::string operator()(const IncStep& s) const { return s.process + " " + format_spec(s.spec); }
  std::string operator()(const DevWriteStep& s) const {
    return range(s) + " " + format_pattern(s.pattern);
  }
  std::string operator()(const DeviceRange& s) const { return range(s); }
  std::string operator()(const ReleaseStep& s) const { return s.device; }
  std::string operator()(const DeviceProcess& s) const { return s.device + " " + s.process; }
  std::string operator()(const CheckStep&) const { return ""; }
  std::string operator()(const ShrinkStep&) const { return ""; }
  std::string operator()(const ExpectFolioStep& s) const { return folio_operands(s); }
  std::string operator()(const ConcurrentStep&) const { return ""; }
  std::string operator()(const RepeatStep& s) const { return fmt::format("{}", s.count); }
};

std::string ret_text(const RetValue& v) {
  switch (v.kind) {
    case RetValue::Kind::kZero: return "0";
    case RetValue::Kind::kSegv: return "segv";
    case RetValue::Kind::kErrno: return "-" + std::string(errno_name(v.err));
  }
  return "?";
}

std::string ret_expect(const RetExpect& r) {
  if (r.any) return "ret=any";
  if (r.allowed.size() == 1) return "ret=" + ret_text(r.allowed[0]);
  std::string out = "ret=(";
  for (size_t i = 0; i < r.allowed.size(); ++i) out += (i ? "," : "") + ret_text(r.allowed[i]);
  return out + ")";
}

std::string prot_expect(const ProtExpect& p) {
  if (!p.end) return fmt::format("prot=0x{:02x}", p.value);
  return fmt::format("prot[{}..{}]=0x{:02x}", p.first, *p.end, p.value);
}

std::string block_lines(const Step& step, int indent) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  std::string out;
  if (const auto* c = std::get_if<ConcurrentStep>(&step.kind)) {
    out += pad + "concurrent\n";
    for (const ThreadBlock& t : c->threads) {
      out += pad + "thread " + t.name + "\n";
      for (const Step& s : t.steps) out += format_step(s, indent + 2);
    }
  } else {
    const auto& r = std::get<RepeatStep>(step.kind);
    out += fmt::format("{}repeat {}\n", pad, r.count);
    for (const Step& s : r.body) out += format_step(s, indent + 2);
  }
  return out + pad + "end\n";
}

}  // namespace

std::string_view step_verb(const StepKind& kind) {
  return kVerbNames[kind.index()];
}

std::string format_spec(const RegionSpec& spec) {
  return fmt::format("{}+{}:{}", spec.region, spec.offset, spec.length);
}

std::string format_expectations(const Expectations& e) {
  std::vector<std::string> keys;
  if (e.ret) keys.push_back(ret_expect(*e.ret));
  if (e.cpages) keys.push_back(fmt::format("cpages={}", e.cpages->value));
  if (e.faults) keys.push_back(fmt::format("faults={}", e.faults->value));
  if (e.data) keys.push_back("data=" + format_pattern(e.data->pattern));
  for (const ProtExpect& p : e.prot) keys.push_back(prot_expect(p));
  if (keys.empty()) return "";
  return fmt::format(" => {}", fmt::join(keys, " "));
}

std::string format_step(const Step& step, int indent) {
  if (std::holds_alternative<ConcurrentStep>(step.kind) ||
      std::holds_alternative<RepeatStep>(step.kind)) {
    return block_lines(step, indent);
  }
  std::string operands = std::visit(Operands{}, step.kind);
  return fmt::format("{}{}{}{}{}\n", std::string(static_cast<size_t>(indent), ' '),
                     step_verb(step.kind), operands.empty() ? "" : " ", operands,
                     format_expectations(step.expect));
}

std::string format_scenario(const Scenario& s) {
  constexpr std::string_view kThp[] = {"always", "madvise", "never"};
  constexpr std::string_view kCheck[] = {"step", "end", "off"};
  std::string out;
  for (const VaryBinding& b : s.vary) out += fmt::format("# vary {} = {}\n", b.name, b.value);
  out += fmt::format("config sysmem={} thp={} seed={} check={}\n", s.config.sysmem,
                     kThp[static_cast<int>(s.config.thp)], s.config.seed,
                     kCheck[static_cast<int>(s.config.check)]);
  for (const Step& step : s.steps) out += format_step(step, 0);
  return out;
}

}  // namespace hmmsim::scenario
