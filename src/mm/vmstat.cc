#include "mm/vmstat.h"

namespace hmmsim {

std::string_view vm_event_name(VmEvent e) {
  switch (e) {
    case VmEvent::kThpFaultAlloc: return "thp_fault_alloc";
    case VmEvent::kThpFaultFallback: return "thp_fault_fallback";
    case VmEvent::kThpSplitPmd: return "thp_split_pmd";
    case VmEvent::kThpSplitPage: return "thp_split_page";
    case VmEvent::kThpSplitPageFailed: return "thp_split_page_failed";
    case VmEvent::kThpDeferredSplitPage: return "thp_deferred_split_page";
    case VmEvent::kThpCollapseAlloc: return "thp_collapse_alloc";
    case VmEvent::kThpMigrationSuccess: return "thp_migration_success";
    case VmEvent::kThpMigrationFail: return "thp_migration_fail";
    case VmEvent::kThpMigrationSplit: return "thp_migration_split";
    case VmEvent::kPgMigrateSuccess: return "pgmigrate_success";
    case VmEvent::kPgMigrateFail: return "pgmigrate_fail";
    case VmEvent::kCount: break;
  }
  return "?";
}

}  // namespace hmmsim
