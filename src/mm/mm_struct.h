// MmStruct: one process address space (`struct mm_struct`).
//
// Linux counterpart: `include/linux/mm_types.h`. It owns the VMAs (kept in
// an ordered map instead of a maple tree), the top of the page-table tree,
// and the counters that the checker verifies: nr_ptes (PTE tables in use,
// deposited ones included) and MM_ANONPAGES.
//
// Thread safety:
//   mmap_lock        guards the VMA set and every Vma's fields;
//   page_table_lock  guards the upper page-table levels (PGD, PUD entries and
//                    the allocation of PMD tables); lower levels have their
//                    own split locks (pgtable.h).
//   The mmu notifier state (notifier_subscriptions()) has its own lock
//   (mmu_notifier.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>

#include "base/thread_annotations.h"
#include "base/types.h"
#include "mm/pgtable.h"
#include "mm/vma.h"
#include "sync/lock.h"

namespace hmmsim {

class World;
class MmuNotifierSubscriptions;

class MmStruct {
 public:
  MmStruct(World& world, int pid);
  ~MmStruct();
  MmStruct(const MmStruct&) = delete;
  MmStruct& operator=(const MmStruct&) = delete;

  World& world() const { return *world_; }
  int pid() const { return pid_; }

  // find_vma(): the first Vma whose end is above `addr`, or nullptr.
  Vma* find_vma(Vaddr addr) const REQUIRES_SHARED(mmap_lock);
  // vma_lookup(): the Vma containing `addr`, or nullptr.
  Vma* vma_lookup(Vaddr addr) const REQUIRES_SHARED(mmap_lock);
  // The Vma ending exactly at or before `addr` (find_vma_prev's prev).
  Vma* vma_prev(Vaddr addr) const REQUIRES_SHARED(mmap_lock);
  Vma* insert_vma(std::unique_ptr<Vma> vma) REQUIRES(mmap_lock);
  std::unique_ptr<Vma> remove_vma(Vma* vma) REQUIRES(mmap_lock);
  // Re-keys a Vma whose start changed.
  void rekey_vma(Vma* vma, Vaddr old_start) REQUIRES(mmap_lock);
  const std::map<uint64_t, std::unique_ptr<Vma>>& vmas() const REQUIRES_SHARED(mmap_lock) {
    return vmas_;
  }
  // For readers that run with the world quiesced (checker, dumps).
  const std::map<uint64_t, std::unique_ptr<Vma>>& vmas_quiesced() const
      NO_THREAD_SAFETY_ANALYSIS {
    return vmas_;
  }

  // Page-table tree. pmd_table() returns the PMD table covering `addr`,
  // allocating the upper levels when `alloc` is set (pud_alloc/pmd_alloc).
  enum class Alloc : bool { kNo, kYes };
  PmdTable* pmd_table(Vaddr addr, Alloc alloc) EXCLUDES(page_table_lock);
  // The PMD tables that exist over [start, end), each with the address its
  // first slot maps; absent upper levels are skipped, not stepped through.
  std::vector<std::pair<Vaddr, PmdTable*>> pmd_tables_in(Vaddr start, Vaddr end)
      EXCLUDES(page_table_lock);
  PgdTable& pgd_quiesced() NO_THREAD_SAFETY_ANALYSIS { return pgd_; }
  const PgdTable& pgd_quiesced() const NO_THREAD_SAFETY_ANALYSIS { return pgd_; }
  // free_pgd_range() for the upper levels: drops PMD and PUD tables that no
  // longer hold anything.
  void free_empty_upper_tables() EXCLUDES(page_table_lock);

  // Counters (mm_inc_nr_ptes, add_mm_counter(MM_ANONPAGES)).
  int64_t nr_ptes() const { return nr_ptes_.load(); }
  void add_nr_ptes(int64_t n) { nr_ptes_.fetch_add(n); }
  int64_t anon_rss() const { return anon_rss_.load(); }
  void add_anon_rss(int64_t n) { anon_rss_.fetch_add(n); }

  // mm->notifier_subscriptions: the interval notifiers of this address
  // space and their invalidation sequence (always allocated here, where
  // Linux allocates it on the first subscription). A subscriber grabs a
  // reference that outlives the address space (mmgrab).
  MmuNotifierSubscriptions& notifier_subscriptions() const { return *notifier_subscriptions_; }
  std::shared_ptr<MmuNotifierSubscriptions> notifier_subscriptions_grab() const {
    return notifier_subscriptions_;
  }

  // The next address get_unmapped_area() tries top-down from.
  static constexpr uint64_t kMmapBase = 0x7f0000000000ULL;

  mutable RwSem mmap_lock;
  mutable Mutex page_table_lock ACQUIRED_AFTER(mmap_lock);

 private:
  World* world_;
  int pid_;
  std::map<uint64_t, std::unique_ptr<Vma>> vmas_ GUARDED_BY(mmap_lock);
  PgdTable pgd_ GUARDED_BY(page_table_lock);
  std::atomic<int64_t> nr_ptes_{0};
  std::atomic<int64_t> anon_rss_{0};
  std::shared_ptr<MmuNotifierSubscriptions> notifier_subscriptions_;
};

}  // namespace hmmsim
