// Inspection steps: check, shrink and expect_folio.
#include <fmt/format.h>

#include "check/checker.h"
#include "mm/deferred_split.h"
#include "mm/folio.h"
#include "scenario/runner_internal.h"

namespace hmmsim::scenario::run {
namespace {

// What maps one address in a page table: the level of the entry and the
// folio it names (present, migration, device-private or device-exclusive
// entry), or the zero page, or nothing.
struct Mapping {
  MappedAs level = MappedAs::kNone;
  Folio folio;
  bool zero = false;
  Order zero_order;
};

Mapping pmd_mapping(PhysMem& mem, const Pmd& pmd) {
  Mapping m{MappedAs::kPmd, Folio(), false, Order{0}};
  if (pmd.kind() == PmdKind::kHugeZero) {
    m.zero = true;
    m.zero_order = Order{kHPageOrder};
  } else if (pmd.has_pfn()) {
    m.folio = pfn_folio(mem, pmd.pfn());
  }
  return m;
}

Mapping pte_mapping(PhysMem& mem, const Pte& pte) {
  if (pte.is_none()) return Mapping{};
  Mapping m{MappedAs::kPte, Folio(), false, Order{0}};
  if (pte.kind() == PteKind::kZero) {
    m.zero = true;
  } else if (pte.has_pfn()) {
    m.folio = pfn_folio(mem, pte.pfn());
  }
  return m;
}

// The entry that maps `addr` in `mm`. The world is quiesced (one runner
// thread), so the PTE table found under the PMD lock stays while its own
// lock is taken.
Mapping mapping_at(MmStruct& mm, Vaddr addr) {
  PhysMem& mem = mm.world().mem();
  PmdTable* pmds = mm.pmd_table(addr, MmStruct::Alloc::kNo);
  if (!pmds) return Mapping{};
  PteTable* ptes = nullptr;
  {
    MutexLock guard(pmds->ptl);
    const PmdSlot& slot = pmds->slot(addr.pmd_index());
    if (slot.entry.is_huge()) return pmd_mapping(mem, slot.entry);
    if (!slot.entry.is_table()) return Mapping{};
    ptes = slot.table.get();
  }
  MutexLock guard(ptes->ptl);
  return pte_mapping(mem, ptes->get(addr.pte_index()));
}

std::string_view level_name(MappedAs m) {
  switch (m) {
    case MappedAs::kPmd: return "pmd";
    case MappedAs::kPte: return "pte";
    case MappedAs::kNone: return "none";
  }
  return "?";
}

std::string where_name(const RunState& st, const Folio& folio) {
  if (!folio.is_device_private()) return "system";
  const DevPagemap* pgmap = folio.range().pgmap();
  return "device:" + (pgmap ? st.device_name(pgmap->owner()) : std::string("?"));
}

std::string want_name(const FolioWhere& w) {
  return w.kind == FolioWhere::Kind::kSystem ? "system" : "device:" + w.device;
}

template <typename T>
std::optional<std::string> mismatch(std::string_view key, const T& want, const T& got) {
  if (want == got) return std::nullopt;
  return fmt::format("expect_folio: {}: expected {}, got {}", key, want, got);
}

// The keys that need a folio, compared against the zero page.
std::optional<std::string> compare_zero(const ExpectFolioStep& s, const Mapping& m) {
  if (s.order) {
    if (auto bad = mismatch("order", *s.order, m.zero_order.v)) return bad;
  }
  if (s.where) {
    if (auto bad = mismatch("where", want_name(*s.where), std::string("system"))) return bad;
  }
  if (s.mapcount || s.refcount) {
    return fmt::format("expect_folio: {} maps the {}zero page, which has no {}", s.spec.text,
                       m.zero_order.v ? "huge " : "", s.mapcount ? "mapcount" : "refcount");
  }
  return std::nullopt;
}

std::optional<std::string> compare_folio(const RunState& st, const ExpectFolioStep& s,
                                         const Folio& folio) {
  if (s.order) {
    if (auto bad = mismatch("order", *s.order, folio.order().v)) return bad;
  }
  if (s.where) {
    if (auto bad = mismatch("where", want_name(*s.where), where_name(st, folio))) return bad;
  }
  if (s.mapcount) {
    const int64_t got = folio_mapcount(folio);
    if (auto bad = mismatch("mapcount", static_cast<int64_t>(*s.mapcount), got)) return bad;
  }
  if (s.refcount) {
    const int64_t got = folio_ref_count(folio);
    if (auto bad = mismatch("refcount", static_cast<int64_t>(*s.refcount), got)) return bad;
  }
  return std::nullopt;
}

std::optional<std::string> compare_mapping(const RunState& st, const ExpectFolioStep& s,
                                           const Mapping& m) {
  if (s.mapped) {
    if (auto bad = mismatch("mapped", level_name(*s.mapped), level_name(m.level))) return bad;
  }
  const bool wants_folio = s.order || s.where || s.mapcount || s.refcount;
  if (!wants_folio) return std::nullopt;
  if (m.zero) return compare_zero(s, m);
  if (!m.folio) return fmt::format("expect_folio: no folio maps {}", s.spec.text);
  return compare_folio(st, s, m.folio);
}

}  // namespace

std::optional<std::string> check_now(RunState& st) {
  CheckReport report = check_world(st.world());
  if (report.ok()) return std::nullopt;
  st.log(report.to_string());
  const Violation& v = report.violations().front();
  std::string message =
      fmt::format("check: invariant {} violated ({}): {}", v.invariant, v.check, v.message);
  const size_t more = report.violations().size() - 1;
  if (more > 0) message += fmt::format(" (and {} more)", more);
  return message;
}

StepResult execute(RunState& st, const CheckStep&) {
  std::optional<std::string> bad = check_now(st);
  return bad ? failed(*bad) : StepResult{};
}

// The shrinker once over every queued folio.
StepResult execute(RunState& st, const ShrinkStep&) {
  const uint64_t queued = st.world().mem().deferred_split().size();
  const uint64_t split = deferred_split_scan(st.world(), queued);
  StepResult out;
  out.note = fmt::format("{} queued, {} split", queued, split);
  return out;
}

StepResult execute(RunState& st, const ExpectFolioStep& s) {
  Checked<Target> t = st.target(s.process, s.spec);
  if (!t.ok()) return failed(t.why());
  const auto& [mm, r] = *t;
  const Mapping m = mapping_at(*mm, r.addr);
  std::optional<std::string> bad = compare_mapping(st, s, m);
  if (bad) return failed(*bad);
  StepResult out;
  if (m.folio) {
    out.note = fmt::format("order={} where={} mapped={} mapcount={} refcount={}", m.folio.order().v,
                           where_name(st, m.folio), level_name(m.level), folio_mapcount(m.folio),
                           folio_ref_count(m.folio));
  } else {
    out.note = fmt::format("mapped={}{}", level_name(m.level), m.zero ? " (zero page)" : "");
  }
  return out;
}

}  // namespace hmmsim::scenario::run
