// Reverse mapping for anonymous memory: anon_vma, the rmap counters of a
// folio, and the walk from a folio to every page-table entry that maps it.
//
// Linux counterpart: `mm/rmap.c`, `include/linux/rmap.h`.
//
// An AnonVma groups the Vmas that may map the same anonymous folios. A new
// anonymous Vma gets one on its first fault (anon_vma_prepare): that of an
// adjacent Vma differing only in protection and without fork ancestry, so
// that the two can merge later, else its own. Fork links the child Vma to
// all of the parent's anon_vmas and gives it a new one whose parent and root
// are the parent's (anon_vma_fork; or reuses one that no Vma owns any more
// and that has a single child), so that a folio created before fork is
// found in both processes and one created after fork only in the process
// that created it. A folio's `mapping` names the anon_vma its rmap walk
// starts from; `index` with each Vma's pgoff gives the address.
//
// Counters move only through folio_add_*_rmap_* and folio_remove_rmap_*, with
// Linux 6.19's bookkeeping (CONFIG_PAGE_MAPCOUNT): per-page mapcount for PTE
// mappings, entire mapcount for PMD mappings, large mapcount for both, and
// nr_pages_mapped (with kEntirelyMapped while a PMD maps the folio).
//
// Thread safety: an anon_vma's Vma set is guarded by its root's `rwsem`
// (anon_vma_lock_write/read). The refcount is atomic. Lock order:
// mmap_lock -> folio lock -> anon_vma rwsem -> page-table locks.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <set>

#include "base/result.h"
#include "base/thread_annotations.h"
#include "base/types.h"
#include "mm/folio.h"
#include "mm/huge_memory.h"
#include "mm/pgtable.h"
#include "mm/vma.h"
#include "sync/lock.h"

namespace hmmsim {

class World;

class AnonVma {
 public:
  explicit AnonVma(Scheduler& sched) : rwsem(sched) {}

  AnonVma* root = this;
  AnonVma* parent = this;
  std::atomic<int32_t> refcount{1};
  int32_t num_children = 0;    // anon_vmas whose parent is this one (a root: itself too)
  int32_t num_active_vmas = 0; // Vmas whose own anon_vma is this one
  RwSem rwsem;                 // used on the root only
  // The interval tree of anon_vma_chains: Vmas linked to this anon_vma.
  // Guarded by root->rwsem (not expressible to the analysis).
  std::set<Vma*> vmas;
};

enum class RmapFlags : uint8_t { kNone, kExclusive };

// --- anon_vma lifetime ---
// anon_vma_prepare(): give `vma` an anon_vma before its first anon folio:
// the one of a compatible neighbour if it can share it, else a new one.
// Requires: mmap_lock of vma.mm() held.
void anon_vma_prepare(World& world, Vma& vma);
// anon_vma_clone(): link `dst` to every anon_vma `src` is linked to (VMA split).
void anon_vma_clone(Vma& dst, const Vma& src);
// anon_vma_fork(): clone, then attach a fresh anon_vma below the parent's,
// or reuse one of the parent's that no Vma owns and that has one child.
void anon_vma_fork(World& world, Vma& child, const Vma& parent);
// unlink_anon_vmas(): drop every link of `vma`; free anon_vmas left empty.
void unlink_anon_vmas(World& world, Vma& vma);
void get_anon_vma(AnonVma* av);
void put_anon_vma(World& world, AnonVma* av);
// folio_get_anon_vma(): pin the anon_vma of a mapped anon folio.
AnonVma* folio_get_anon_vma(Folio folio);
void anon_vma_lock_write(AnonVma* av) ACQUIRE(av->root->rwsem);
void anon_vma_unlock_write(AnonVma* av) RELEASE(av->root->rwsem);

// --- rmap counters ---
void folio_add_new_anon_rmap(Folio folio, Vma& vma, Vaddr addr, RmapFlags flags);
void folio_add_anon_rmap_ptes(Folio folio, uint64_t first, uint32_t nr, Vma& vma, Vaddr addr,
                              RmapFlags flags);
void folio_add_anon_rmap_pmd(Folio folio, Vma& vma, Vaddr addr, RmapFlags flags);
void folio_remove_rmap_ptes(Folio folio, uint64_t first, uint32_t nr, Vma& vma);
void folio_remove_rmap_pmd(Folio folio, Vma& vma);
// folio_try_dup_anon_rmap_ptes(): fork's duplication of PTE mappings; clears
// PageAnonExclusive. Fails with -EBUSY only for a possibly pinned exclusive
// page (the model has no GUP pins yet, so it always succeeds).
Status folio_try_dup_anon_rmap_ptes(Folio folio, uint64_t first, uint32_t nr, Vma& dst_vma);
Status folio_try_dup_anon_rmap_pmd(Folio folio, Vma& dst_vma);
// folio_try_share_anon_rmap_pte(): clear PageAnonExclusive before a
// non-writable migration entry is installed.
Status folio_try_share_anon_rmap_pte(Folio folio, uint64_t idx);
Status folio_try_share_anon_rmap_pmd(Folio folio);
// folio_move_anon_rmap(): an exclusively owned folio now belongs to `vma`.
void folio_move_anon_rmap(Folio folio, Vma& vma);

// --- rmap walk ---
// Called once per Vma that may map the folio, with the address of the
// folio's first page in that Vma (which may lie outside the Vma for a large
// folio only partly covered). Return false to stop the walk.
using RmapOne = std::function<bool(Vma& vma, Vaddr addr)>;
enum class RmapLocked : bool { kNo, kYes };
// rmap_walk(): the caller holds the folio lock.
void rmap_walk(Folio folio, const RmapOne& rmap_one, RmapLocked locked);

// page_vma_mapped_walk(): iterates the entries in `vma` that map `folio`
// (or, with kMigration, the migration entries that name it), each returned
// with its page-table lock held: a PMD leaf with its PMD lock, a PTE with
// its PTE table's lock.
enum class PvmwFlags : uint8_t { kNone = 0, kMigration = 1 };

class PageVmaMappedWalk {
 public:
  PageVmaMappedWalk(Folio folio, Vma& vma, Vaddr addr, PvmwFlags flags);
  ~PageVmaMappedWalk();
  PageVmaMappedWalk(const PageVmaMappedWalk&) = delete;
  PageVmaMappedWalk& operator=(const PageVmaMappedWalk&) = delete;

  // Advances to the next mapping; false when done (no lock held then).
  bool next();
  Vma& vma() const { return vma_; }
  Vaddr address() const { return address_; }
  // The current entry is a PMD leaf (else a PTE).
  bool pmd_level() const { return pmd_table_ != nullptr; }
  PmdRef pmd_ref() const;
  Pmd pmd() const;
  void set_pmd(Pmd pmd);
  // The current PTE, read and written under the ptl the walk holds.
  Pte pte() const;
  void set_pte(Pte pte);
  // The page of the folio the current entry maps.
  uint64_t subpage() const;
  // Stops early, releasing the lock held on the current entry.
  void done();
  // page_vma_mapped_walk_restart(): drop the lock and look at the current
  // address again on the next call (after the entry was split in place).
  void restart();

 private:
  bool check_pte(const Pte& pte) const;
  bool check_pmd(const Pmd& pmd) const;
  void unlock_current();
  // Looks at the PMD of address_: true if it is a matching leaf (locked).
  enum class PmdStep : uint8_t { kHit, kTable, kSkip };
  PmdStep step_pmd(PteTable** table);

  Folio folio_;
  Vma& vma_;
  PvmwFlags flags_;
  Vaddr address_;
  Vaddr end_;
  bool started_ = false;
  PteTable* pte_table_ = nullptr;
  PmdTable* pmd_table_ = nullptr;
};

}  // namespace hmmsim
