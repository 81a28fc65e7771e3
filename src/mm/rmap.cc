#include "mm/rmap.h"

#include <algorithm>
#include <tuple>

#include "base/assert.h"
#include "mm/deferred_split.h"
#include "mm/vmstat.h"
#include "mm/mm_struct.h"
#include "mm/world.h"

namespace hmmsim {

// ---------------------------------------------------------------------------
// anon_vma lifetime

namespace {

void anon_vma_link(AnonVma* av, Vma& vma) {
  av->vmas.insert(&vma);
  vma.mutable_chain().push_back(av);
}

}  // namespace

void anon_vma_lock_write(AnonVma* av) { av->root->rwsem.lock(); }
void anon_vma_unlock_write(AnonVma* av) { av->root->rwsem.unlock(); }

void get_anon_vma(AnonVma* av) {
  int32_t old = av->refcount.fetch_add(1);
  HMM_ASSERT(old > 0, "get_anon_vma on a dead anon_vma");
}

void put_anon_vma(World& world, AnonVma* av) {
  int32_t old = av->refcount.fetch_sub(1);
  HMM_ASSERT(old > 0, "put_anon_vma underflow");
  if (old != 1) return;
  HMM_ASSERT(av->vmas.empty(), "freeing an anon_vma that still has Vmas");
  AnonVma* root = av->root;
  world.anon_vma_free(av);
  if (root != av) put_anon_vma(world, root);
}

namespace {

// anon_vma_compatible(): `b` follows `a` directly, linearly, and the two
// differ at most in their access bits.
bool anon_vma_compatible(const Vma& a, const Vma& b) {
  return a.end() == b.start() && ((a.flags() ^ b.flags()) & ~kVmAccessFlags) == 0 &&
         b.pgoff() == a.pgoff() + a.nr_pages();
}

// reusable_anon_vma(): the anon_vma of `old` (one of `a`, `b`), if the two
// are compatible and it is the only anon_vma `old` is linked to.
AnonVma* reusable_anon_vma(const Vma& old, const Vma& a, const Vma& b) {
  if (!anon_vma_compatible(a, b) || old.anon_vma_chain().size() != 1) return nullptr;
  return old.anon_vma();
}

// find_mergeable_anon_vma(): the anon_vma of a neighbour (the next one
// first) that `vma` can share, so that mprotect can merge them later.
AnonVma* find_mergeable_anon_vma(MmStruct& mm, const Vma& vma) REQUIRES_SHARED(mm.mmap_lock) {
  if (Vma* next = mm.vma_lookup(vma.end())) {
    if (AnonVma* av = reusable_anon_vma(*next, vma, *next)) return av;
  }
  Vma* prev = mm.vma_prev(vma.start());
  return prev ? reusable_anon_vma(*prev, *prev, vma) : nullptr;
}

}  // namespace

void anon_vma_prepare(World& world, Vma& vma) {
  MmStruct& mm = vma.mm();
  mm.mmap_lock.assert_held();
  AnonVma* av = nullptr;
  {
    // page_table_lock also keeps a neighbour's racing prepare from changing
    // the anon_vma and chain we look at.
    MutexLock guard(mm.page_table_lock);
    if (vma.anon_vma()) return;
    av = find_mergeable_anon_vma(mm, vma);
  }
  bool shared = av != nullptr;
  if (!shared) {
    av = world.anon_vma_alloc();
    av->num_children++;  // a root is its own parent
  }
  bool used = false;
  anon_vma_lock_write(av);
  {
    // Racing faults of one mm agree under page_table_lock.
    MutexLock guard(mm.page_table_lock);
    if (!vma.anon_vma()) {
      anon_vma_link(av, vma);
      vma.set_anon_vma(av);
      av->num_active_vmas++;
      used = true;
    }
  }
  anon_vma_unlock_write(av);
  if (!used && !shared) put_anon_vma(world, av);
}

void anon_vma_clone(Vma& dst, const Vma& src) {
  for (AnonVma* av : src.anon_vma_chain()) {
    anon_vma_lock_write(av);
    anon_vma_link(av, dst);
    anon_vma_unlock_write(av);
  }
  if (src.anon_vma()) {
    dst.set_anon_vma(src.anon_vma());
    src.anon_vma()->num_active_vmas++;
  }
}

void anon_vma_fork(World& world, Vma& child, const Vma& parent) {
  if (!parent.anon_vma()) return;
  child.set_anon_vma(nullptr);
  for (AnonVma* av : parent.anon_vma_chain()) {
    anon_vma_lock_write(av);
    anon_vma_link(av, child);
    // anon_vma_clone(): an anon_vma that is no Vma's own any more and has
    // at most one child can take the child's new folios (never the root,
    // which counts itself among its children).
    if (!child.anon_vma() && av->num_children < 2 && av->num_active_vmas == 0) {
      child.set_anon_vma(av);
    }
    anon_vma_unlock_write(av);
  }
  if (child.anon_vma()) {
    child.anon_vma()->num_active_vmas++;
    return;
  }
  AnonVma* av = world.anon_vma_alloc();
  av->root = parent.anon_vma()->root;
  av->parent = parent.anon_vma();
  get_anon_vma(av->root);
  av->parent->num_children++;
  av->num_active_vmas++;
  anon_vma_lock_write(av);
  anon_vma_link(av, child);
  child.set_anon_vma(av);
  anon_vma_unlock_write(av);
}

void unlink_anon_vmas(World& world, Vma& vma) {
  std::vector<AnonVma*> emptied;
  for (AnonVma* av : vma.anon_vma_chain()) {
    anon_vma_lock_write(av);
    size_t erased = av->vmas.erase(&vma);
    HMM_ASSERT(erased == 1, "Vma not linked to its anon_vma");
    bool empty = av->vmas.empty();
    anon_vma_unlock_write(av);
    if (empty) {
      av->parent->num_children--;  // a root drops its count of itself
      emptied.push_back(av);
    }
  }
  if (vma.anon_vma()) vma.anon_vma()->num_active_vmas--;
  vma.mutable_chain().clear();
  vma.set_anon_vma(nullptr);
  for (AnonVma* av : emptied) put_anon_vma(world, av);
}

AnonVma* folio_get_anon_vma(Folio folio) {
  if (!folio_test_anon(folio) || !folio_mapped(folio)) return nullptr;
  AnonVma* av = folio.head().mapping;
  get_anon_vma(av);
  return av;
}

// ---------------------------------------------------------------------------
// rmap counters

namespace {

void set_exclusive(Page& page, RmapFlags flags) {
  if (flags == RmapFlags::kExclusive) page.set(kPgAnonExclusive);
}

// __folio_set_anon()
void folio_set_anon(Folio folio, Vma& vma, Vaddr addr, RmapFlags flags) {
  AnonVma* av = vma.anon_vma();
  HMM_ASSERT(av != nullptr, "anon folio mapped into a Vma without anon_vma");
  // A folio not exclusive to this Vma must use the oldest anon_vma.
  if (flags != RmapFlags::kExclusive) av = av->root;
  folio.head().mapping = av;
  folio.head().set(kPgAnon);
  folio.head().set(kPgSwapBacked);
  folio.head().index = vma.linear_page_index(addr);
}

void check_anon_rmap(Folio folio, Vma& vma, Vaddr addr) {
  HMM_ASSERT(folio_test_anon(folio), "anon rmap on non-anon folio {:#x}", folio.pfn().v);
  uint64_t idx = vma.linear_page_index(addr);
  HMM_ASSERT(idx >= folio.head().index && idx < folio.head().index + folio.nr_pages(),
             "folio {:#x} (index {}) does not map at {:#x} (index {})", folio.pfn().v,
             folio.head().index, addr.v, idx);
}

uint32_t mm_id_of(const Vma& vma) { return static_cast<uint32_t>(vma.mm().pid()); }

// folio_add_large_mapcount(): the large mapcount and the per-MM slots that
// tell whether more than one address space maps the folio.
void folio_add_large_mapcount(Folio folio, int32_t diff, const Vma& vma) {
  int32_t now = folio.head().large_mapcount.fetch_add(diff) + diff;
  uint32_t id = mm_id_of(vma);
  for (int i = 0; i < 2; i++) {
    MmIdSlot slot = folio_mm_id_slot(folio, i);
    if (slot.id == id) {
      folio_set_mm_id_slot(folio, i, MmIdSlot{id, slot.mapcount + diff});
      return;
    }
  }
  for (int i = 0; i < 2; i++) {
    if (folio_mm_id_slot(folio, i).id != 0) continue;
    folio_set_mm_id_slot(folio, i, MmIdSlot{id, diff - 1});
    // Slot 1 is taken only when slot 0 has mappings of another mm; a
    // newly used slot 0 may find mappings nobody could track.
    if (i == 1 || now != diff - 1) folio.head().set(kPgMaybeMappedShared);
    return;
  }
}

// folio_sub_large_mapcount()
void folio_sub_large_mapcount(Folio folio, int32_t diff, const Vma& vma) {
  int32_t now = folio.head().large_mapcount.fetch_sub(diff) - diff;
  HMM_ASSERT(now >= -1, "negative large mapcount on {:#x}", folio.pfn().v);
  uint32_t id = mm_id_of(vma);
  for (int i = 0; i < 2; i++) {
    MmIdSlot slot = folio_mm_id_slot(folio, i);
    if (slot.id != id) continue;
    slot.mapcount -= diff;
    // Mappings added while no slot was free may make this go negative.
    if (slot.mapcount < 0) slot = MmIdSlot{0, -1};
    folio_set_mm_id_slot(folio, i, slot);
    break;
  }
  // One slot owning every mapping means the folio is exclusive again.
  if (folio_mm_id_slot(folio, 0).mapcount == now || folio_mm_id_slot(folio, 1).mapcount == now)
    folio.head().clear(kPgMaybeMappedShared);
}

// The per-page part of adding PTE mappings; returns pages newly mapped.
int32_t add_page_mapcounts(Folio folio, uint64_t first, uint32_t nr) {
  int32_t newly_mapped = 0;
  for (uint64_t i = first; i < first + nr; i++) {
    if (folio.page(i).mapcount.fetch_add(1) == -1) newly_mapped++;
  }
  return newly_mapped;
}

// deferred_split_folio() from __folio_remove_rmap(): an anon folio that is
// now partially mapped goes on the queue (device-private ones never do).
void queue_if_partially_mapped(Folio folio, bool partially_mapped) {
  if (!partially_mapped || !folio_test_anon(folio) || folio.test(kPgPartiallyMapped)) return;
  DeferredSplitQueue* queue = folio.range().deferred_split();
  if (queue) queue->add(folio, true);
}

}  // namespace

void folio_add_new_anon_rmap(Folio folio, Vma& vma, Vaddr addr, RmapFlags flags) {
  HMM_ASSERT(!folio_mapped(folio), "new anon rmap on mapped folio {:#x}", folio.pfn().v);
  folio_set_anon(folio, vma, addr, flags);
  if (!folio.is_large()) {
    folio.head().mapcount.store(0);
    set_exclusive(folio.head(), flags);
    return;
  }
  HMM_ASSERT(folio.order().v == kHPageOrder, "only PMD-order large folios exist");
  HMM_ASSERT(flags == RmapFlags::kExclusive, "new PMD folio must be exclusive");
  folio.head().entire_mapcount.store(0);
  folio.head().nr_pages_mapped.store(kEntirelyMapped);
  folio_add_large_mapcount(folio, 1, vma);
  folio.head().set(kPgAnonExclusive);
}

void folio_add_anon_rmap_ptes(Folio folio, uint64_t first, uint32_t nr, Vma& vma, Vaddr addr,
                              RmapFlags flags) {
  check_anon_rmap(folio, vma, addr);
  HMM_ASSERT(first + nr <= folio.nr_pages(), "rmap range outside folio");
  int32_t newly_mapped = add_page_mapcounts(folio, first, nr);
  for (uint64_t i = first; i < first + nr; i++) set_exclusive(folio.page(i), flags);
  if (!folio.is_large()) return;
  folio.head().nr_pages_mapped.fetch_add(newly_mapped);
  folio_add_large_mapcount(folio, static_cast<int32_t>(nr), vma);
  HMM_ASSERT(!(folio_entire_mapcount(folio) > 1 && PageAnonExclusive(folio.page(first))),
             "exclusive page in a folio mapped by several PMDs");
}

void folio_add_anon_rmap_pmd(Folio folio, Vma& vma, Vaddr addr, RmapFlags flags) {
  check_anon_rmap(folio, vma, addr);
  HMM_ASSERT(folio.order().v == kHPageOrder, "PMD rmap on order {} folio", folio.order().v);
  if (folio.head().entire_mapcount.fetch_add(1) == -1)
    folio.head().nr_pages_mapped.fetch_add(kEntirelyMapped);
  folio_add_large_mapcount(folio, 1, vma);
  set_exclusive(folio.head(), flags);
  HMM_ASSERT(!(folio_entire_mapcount(folio) > 1 && PageAnonExclusive(folio.head())),
             "exclusive folio {:#x} mapped by {} PMDs", folio.pfn().v,
             folio_entire_mapcount(folio));
}

void folio_remove_rmap_ptes(Folio folio, uint64_t first, uint32_t nr, Vma& vma) {
  HMM_ASSERT(first + nr <= folio.nr_pages(), "rmap range outside folio");
  int32_t unmapped = 0;
  for (uint64_t i = first; i < first + nr; i++) {
    int32_t old = folio.page(i).mapcount.fetch_sub(1);
    HMM_ASSERT(old >= 0, "negative mapcount on page {:#x}", folio.page(i).pfn);
    if (old == 0) unmapped++;
  }
  if (!folio.is_large()) return;
  folio_sub_large_mapcount(folio, static_cast<int32_t>(nr), vma);
  int32_t mapped = folio.head().nr_pages_mapped.fetch_sub(unmapped) - unmapped;
  // Pages that became unmapped while no PMD maps the folio, with others
  // still mapped: partially mapped.
  bool counted = mapped < kEntirelyMapped;
  queue_if_partially_mapped(folio, counted && unmapped > 0 && mapped > 0);
}

void folio_remove_rmap_pmd(Folio folio, Vma& vma) {
  HMM_ASSERT(folio.order().v == kHPageOrder, "PMD rmap on order {} folio", folio.order().v);
  folio_sub_large_mapcount(folio, 1, vma);
  int32_t old = folio.head().entire_mapcount.fetch_sub(1);
  HMM_ASSERT(old >= 0, "negative entire mapcount on {:#x}", folio.pfn().v);
  if (old != 0) return;
  int32_t mapped = folio.head().nr_pages_mapped.fetch_sub(kEntirelyMapped) - kEntirelyMapped;
  int32_t now_unmapped = static_cast<int32_t>(folio.nr_pages()) - mapped;
  queue_if_partially_mapped(folio, now_unmapped > 0 && now_unmapped < int32_t(folio.nr_pages()));
}

Status folio_try_dup_anon_rmap_ptes(Folio folio, uint64_t first, uint32_t nr, Vma& dst_vma) {
  for (uint64_t i = first; i < first + nr; i++) folio.page(i).clear(kPgAnonExclusive);
  int32_t newly_mapped = add_page_mapcounts(folio, first, nr);
  if (folio.is_large()) {
    folio.head().nr_pages_mapped.fetch_add(newly_mapped);
    folio_add_large_mapcount(folio, static_cast<int32_t>(nr), dst_vma);
  }
  return Ok();
}

Status folio_try_dup_anon_rmap_pmd(Folio folio, Vma& dst_vma) {
  folio.head().clear(kPgAnonExclusive);
  folio.head().entire_mapcount.fetch_add(1);
  folio_add_large_mapcount(folio, 1, dst_vma);
  return Ok();
}

Status folio_try_share_anon_rmap_pte(Folio folio, uint64_t idx) {
  folio.page(idx).clear(kPgAnonExclusive);
  return Ok();
}

Status folio_try_share_anon_rmap_pmd(Folio folio) {
  folio.head().clear(kPgAnonExclusive);
  return Ok();
}

void folio_move_anon_rmap(Folio folio, Vma& vma) {
  HMM_ASSERT(folio_test_locked(folio), "folio_move_anon_rmap on unlocked folio");
  folio.head().mapping = vma.anon_vma();
}

// ---------------------------------------------------------------------------
// rmap walk

namespace {

// rmap_walk_anon() over the Vmas of `av` (whose root lock the caller holds)
// that may map [first, last] in page-index space.
void rmap_walk_anon_locked(AnonVma* av, uint64_t first, uint64_t last, const RmapOne& rmap_one) {
  // Copy the candidates so that the iteration does not depend on the set,
  // and visit them in the interval tree's order (by first page index), ties
  // broken by process and address: never by where the Vmas sit in host
  // memory, so that a seed replays the same walk in every build.
  std::vector<Vma*> vmas(av->vmas.begin(), av->vmas.end());
  std::sort(vmas.begin(), vmas.end(), [](const Vma* a, const Vma* b) {
    return std::tuple(a->pgoff(), a->mm().pid(), a->start().v) <
           std::tuple(b->pgoff(), b->mm().pid(), b->start().v);
  });
  for (Vma* vma : vmas) {
    uint64_t vfirst = vma->pgoff();
    uint64_t vlast = vfirst + vma->nr_pages() - 1;
    if (last < vfirst || first > vlast) continue;
    Vaddr addr = first >= vfirst ? vma->start() + ((first - vfirst) << kPageShift)
                                 : vma->start() - ((vfirst - first) << kPageShift);
    if (!rmap_one(*vma, addr)) break;
  }
}

}  // namespace

void rmap_walk(Folio folio, const RmapOne& rmap_one, RmapLocked locked) {
  HMM_ASSERT(folio_test_locked(folio), "rmap_walk of unlocked folio {:#x}", folio.pfn().v);
  AnonVma* av = folio.head().mapping;
  if (!folio_test_anon(folio) || av == nullptr) return;
  uint64_t first = folio.head().index;
  uint64_t last = first + folio.nr_pages() - 1;
  if (locked == RmapLocked::kYes) {
    av->root->rwsem.assert_held();
    rmap_walk_anon_locked(av, first, last, rmap_one);
    return;
  }
  ReadLock guard(av->root->rwsem);
  rmap_walk_anon_locked(av, first, last, rmap_one);
}

// ---------------------------------------------------------------------------
// page_vma_mapped_walk
//
// The walk hands its caller a locked entry between next() calls, which
// clang's analysis cannot follow; the lock and unlock pair up in
// unlock_current() and step_pmd()/next(), and every accessor asserts the
// lock is held.

PageVmaMappedWalk::PageVmaMappedWalk(Folio folio, Vma& vma, Vaddr addr, PvmwFlags flags)
    : folio_(folio), vma_(vma), flags_(flags) {
  Vaddr end = addr + folio.nr_pages() * kPageSize;
  address_ = addr < vma.start() ? vma.start() : addr;
  end_ = end > vma.end() ? vma.end() : end;
}

PageVmaMappedWalk::~PageVmaMappedWalk() { unlock_current(); }

void PageVmaMappedWalk::unlock_current() NO_THREAD_SAFETY_ANALYSIS {
  if (pte_table_) pte_table_->ptl.unlock();
  if (pmd_table_) pmd_table_->ptl.unlock();
  pte_table_ = nullptr;
  pmd_table_ = nullptr;
}

void PageVmaMappedWalk::done() { unlock_current(); }

void PageVmaMappedWalk::restart() {
  unlock_current();
  started_ = false;
}

PmdRef PageVmaMappedWalk::pmd_ref() const {
  HMM_ASSERT(pmd_table_ && pmd_table_->ptl.is_locked(), "pvmw is not at a PMD");
  return PmdRef{pmd_table_, address_.pmd_index(), address_.pmd_down()};
}

Pmd PageVmaMappedWalk::pmd() const NO_THREAD_SAFETY_ANALYSIS { return pmd_ref().slot().entry; }

void PageVmaMappedWalk::set_pmd(Pmd pmd) NO_THREAD_SAFETY_ANALYSIS {
  pmd_ref().slot().entry = pmd;
}

Pte PageVmaMappedWalk::pte() const NO_THREAD_SAFETY_ANALYSIS {
  HMM_ASSERT(pte_table_ && pte_table_->ptl.is_locked(), "pvmw has no current pte");
  return pte_table_->get(address_.pte_index());
}

void PageVmaMappedWalk::set_pte(Pte pte) NO_THREAD_SAFETY_ANALYSIS {
  HMM_ASSERT(pte_table_ && pte_table_->ptl.is_locked(), "pvmw has no current pte");
  pte_table_->set(address_.pte_index(), pte);
}

uint64_t PageVmaMappedWalk::subpage() const {
  if (pmd_level()) return 0;
  return pte().pfn() - folio_.pfn();
}

bool PageVmaMappedWalk::check_pte(const Pte& pte) const {
  if (flags_ == PvmwFlags::kMigration) {
    return pte.is_migration() && folio_.contains(pte.pfn());
  }
  return pte.maps_folio() && folio_.contains(pte.pfn());
}

// check_pmd(): a PMD leaf is a hit only if it names this folio's head.
bool PageVmaMappedWalk::check_pmd(const Pmd& pmd) const {
  if (!pmd.has_pfn() || pmd.pfn() != folio_.pfn()) return false;
  if (flags_ == PvmwFlags::kMigration) return pmd.kind() == PmdKind::kMigration;
  return pmd.maps_folio();
}

PageVmaMappedWalk::PmdStep PageVmaMappedWalk::step_pmd(PteTable** table)
    NO_THREAD_SAFETY_ANALYSIS {
  PmdTable* pmdt = vma_.mm().pmd_table(address_, MmStruct::Alloc::kNo);
  if (!pmdt) return PmdStep::kSkip;
  pmdt->ptl.lock();
  const PmdSlot& slot = pmdt->slot(address_.pmd_index());
  if (slot.entry.is_huge() && address_.pmd_aligned() && check_pmd(slot.entry)) {
    pmd_table_ = pmdt;  // keep the PMD lock for the caller
    return PmdStep::kHit;
  }
  *table = slot.entry.is_table() ? slot.table.get() : nullptr;
  pmdt->ptl.unlock();
  return *table ? PmdStep::kTable : PmdStep::kSkip;
}

bool PageVmaMappedWalk::next() NO_THREAD_SAFETY_ANALYSIS {
  if (started_) {
    address_ = pmd_table_ ? address_.pmd_down() + kPmdSize : address_ + kPageSize;
    if (pmd_table_) unlock_current();
  }
  started_ = true;
  while (address_ < end_) {
    PteTable* table = nullptr;
    if (pte_table_ == nullptr || address_.pte_index() == 0) {
      if (pte_table_) unlock_current();
      switch (step_pmd(&table)) {
        case PmdStep::kHit:
          return true;
        case PmdStep::kSkip:
          address_ = address_.pmd_down() + kPmdSize;
          continue;
        case PmdStep::kTable:
          table->ptl.lock();
          pte_table_ = table;
          break;
      }
    }
    if (check_pte(pte_table_->get(address_.pte_index()))) return true;
    address_ = address_ + kPageSize;
  }
  unlock_current();
  return false;
}

}  // namespace hmmsim
