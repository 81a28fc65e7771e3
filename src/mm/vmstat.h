// VmStat: event counters named after Linux's /proc/vmstat THP events.
//
// Tests and scenarios read them to see which path ran (a PMD split, a
// fallback to small pages, a deferred split). Counters only count; nothing
// in the model depends on their values.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace hmmsim {

enum class VmEvent : uint8_t {
  kThpFaultAlloc,          // THP_FAULT_ALLOC
  kThpFaultFallback,       // THP_FAULT_FALLBACK
  kThpSplitPmd,            // THP_SPLIT_PMD
  kThpSplitPage,           // THP_SPLIT_PAGE
  kThpSplitPageFailed,     // THP_SPLIT_PAGE_FAILED
  kThpDeferredSplitPage,   // THP_DEFERRED_SPLIT_PAGE
  kThpCollapseAlloc,       // THP_COLLAPSE_ALLOC
  kThpMigrationSuccess,    // THP_MIGRATION_SUCCESS
  kThpMigrationFail,       // THP_MIGRATION_FAIL
  kThpMigrationSplit,      // THP_MIGRATION_SPLIT
  kPgMigrateSuccess,       // PGMIGRATE_SUCCESS (pages)
  kPgMigrateFail,          // PGMIGRATE_FAIL (pages)
  kCount,
};

std::string_view vm_event_name(VmEvent e);

class VmStat {
 public:
  void count(VmEvent e, uint64_t n = 1) {
    v_[static_cast<size_t>(e)].fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t get(VmEvent e) const { return v_[static_cast<size_t>(e)].load(); }

 private:
  std::array<std::atomic<uint64_t>, static_cast<size_t>(VmEvent::kCount)> v_{};
};

}  // namespace hmmsim
