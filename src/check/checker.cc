#include "check/checker.h"

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "check/checks.h"

namespace hmmsim {

bool CheckReport::has(const std::string& invariant) const {
  for (const Violation& v : violations_) {
    if (v.invariant == invariant) return true;
  }
  return false;
}

std::string CheckReport::to_string() const {
  std::string out;
  for (const Violation& v : violations_) {
    out += fmt::format("invariant {} violated ({}): {}\n", v.invariant, v.check, v.message);
    if (!v.dump.empty()) out += v.dump;
  }
  return out;
}

CheckReport check_world(World& world) {
  CheckReport report;
  check::Census census = check::take_census(world);
  check::Ctx ctx{world, census, report};
  check::check_vma_tree(ctx);
  check::check_anon_vma_links(ctx);
  check::check_entries_inside_vmas(ctx);
  check::check_entries_point_at_live_folios(ctx);
  check::check_no_present_entry_to_device_private(ctx);
  check::check_pmd_maps_thp_head(ctx);
  check::check_pmd_softleaf_valid(ctx);
  check::check_nr_ptes_and_deposits(ctx);
  check::check_anon_rss(ctx);
  check::check_mapcount_matches_mappings(ctx);
  check::check_refcount_covers_mappings(ctx);
  check::check_migration_entry_folio_locked(ctx);
  check::check_writable_implies_exclusive(ctx);
  check::check_exclusive_page_mapped_once(ctx);
  check::check_rmap_reaches_every_mapping(ctx);
  check::check_free_pages_clean(ctx);
  check::check_no_leaked_frames(ctx);
  check::check_deferred_split_queue(ctx);
  check::check_device_folios_off_lists(ctx);
  check::check_pgmap_refs(ctx);
  check::check_mirrors_coherent_with_cpu(ctx);
  check::check_no_lock_held(ctx);
  return report;
}

void check_world_or_die(World& world) {
  CheckReport report = check_world(world);
  if (report.ok()) return;
  std::fprintf(stderr, "hmmsim: model bug: invariant check failed\n%s", report.to_string().c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace hmmsim
