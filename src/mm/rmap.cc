#include "mm/rmap.h"

#include "base/assert.h"
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

void anon_vma_prepare(World& world, Vma& vma) {
  if (vma.anon_vma()) return;
  AnonVma* av = world.anon_vma_alloc();
  anon_vma_lock_write(av);
  anon_vma_link(av, vma);
  vma.set_anon_vma(av);
  av->num_active_vmas++;
  anon_vma_unlock_write(av);
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
    anon_vma_unlock_write(av);
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
      if (av->parent != av) av->parent->num_children--;
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
  folio.head().large_mapcount.store(0);
  folio.head().entire_mapcount.store(0);
  folio.head().nr_pages_mapped.store(kEntirelyMapped);
  folio.head().set(kPgAnonExclusive);
}

void folio_add_anon_rmap_ptes(Folio folio, uint64_t first, uint32_t nr, Vma& vma, Vaddr addr,
                              RmapFlags flags) {
  check_anon_rmap(folio, vma, addr);
  HMM_ASSERT(first + nr <= folio.nr_pages(), "rmap range outside folio");
  int32_t newly_mapped = 0;
  for (uint64_t i = first; i < first + nr; i++) {
    Page& page = folio.page(i);
    if (page.mapcount.fetch_add(1) == -1) newly_mapped++;
    set_exclusive(page, flags);
  }
  if (folio.is_large()) {
    folio.head().nr_pages_mapped.fetch_add(newly_mapped);
    folio.head().large_mapcount.fetch_add(static_cast<int32_t>(nr));
    HMM_ASSERT(!(folio_entire_mapcount(folio) > 1 && PageAnonExclusive(folio.page(first))),
               "exclusive page in a folio mapped by several PMDs");
  }
}

void folio_add_anon_rmap_pmd(Folio folio, Vma& vma, Vaddr addr, RmapFlags flags) {
  check_anon_rmap(folio, vma, addr);
  HMM_ASSERT(folio.order().v == kHPageOrder, "PMD rmap on order {} folio", folio.order().v);
  folio.head().large_mapcount.fetch_add(1);
  if (folio.head().entire_mapcount.fetch_add(1) == -1)
    folio.head().nr_pages_mapped.fetch_add(kEntirelyMapped);
  set_exclusive(folio.head(), flags);
  HMM_ASSERT(!(folio_entire_mapcount(folio) > 1 && PageAnonExclusive(folio.head())),
             "exclusive folio {:#x} mapped by {} PMDs", folio.pfn().v,
             folio_entire_mapcount(folio));
}

void folio_remove_rmap_ptes(Folio folio, uint64_t first, uint32_t nr, Vma& vma) {
  (void)vma;
  HMM_ASSERT(first + nr <= folio.nr_pages(), "rmap range outside folio");
  int32_t unmapped = 0;
  for (uint64_t i = first; i < first + nr; i++) {
    int32_t old = folio.page(i).mapcount.fetch_sub(1);
    HMM_ASSERT(old >= 0, "negative mapcount on page {:#x}", folio.page(i).pfn);
    if (old == 0) unmapped++;
  }
  if (folio.is_large()) {
    folio.head().nr_pages_mapped.fetch_sub(unmapped);
    int32_t old = folio.head().large_mapcount.fetch_sub(static_cast<int32_t>(nr));
    HMM_ASSERT(old - static_cast<int32_t>(nr) >= -1, "negative large mapcount on {:#x}",
               folio.pfn().v);
  }
}

void folio_remove_rmap_pmd(Folio folio, Vma& vma) {
  (void)vma;
  HMM_ASSERT(folio.order().v == kHPageOrder, "PMD rmap on order {} folio", folio.order().v);
  folio.head().large_mapcount.fetch_sub(1);
  int32_t old = folio.head().entire_mapcount.fetch_sub(1);
  HMM_ASSERT(old >= 0, "negative entire mapcount on {:#x}", folio.pfn().v);
  if (old == 0) folio.head().nr_pages_mapped.fetch_sub(kEntirelyMapped);
}

Status folio_try_dup_anon_rmap_ptes(Folio folio, uint64_t first, uint32_t nr) {
  for (uint64_t i = first; i < first + nr; i++) {
    Page& page = folio.page(i);
    page.clear(kPgAnonExclusive);
    if (page.mapcount.fetch_add(1) == -1 && folio.is_large())
      folio.head().nr_pages_mapped.fetch_add(1);
  }
  if (folio.is_large()) folio.head().large_mapcount.fetch_add(static_cast<int32_t>(nr));
  return Ok();
}

Status folio_try_dup_anon_rmap_pmd(Folio folio) {
  folio.head().clear(kPgAnonExclusive);
  folio.head().entire_mapcount.fetch_add(1);
  folio.head().large_mapcount.fetch_add(1);
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
  // Copy the candidates so that the iteration does not depend on the set.
  std::vector<Vma*> vmas(av->vmas.begin(), av->vmas.end());
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

PageVmaMappedWalk::PageVmaMappedWalk(Folio folio, Vma& vma, Vaddr addr, PvmwFlags flags)
    : folio_(folio), vma_(vma), flags_(flags) {
  Vaddr end = addr + folio.nr_pages() * kPageSize;
  address_ = addr < vma.start() ? vma.start() : addr;
  end_ = end > vma.end() ? vma.end() : end;
}

PageVmaMappedWalk::~PageVmaMappedWalk() { unlock_current(); }

void PageVmaMappedWalk::unlock_current() NO_THREAD_SAFETY_ANALYSIS {
  // The walk hands its caller a locked entry between next() calls, which the
  // analysis cannot follow; lock and unlock pair up here and in next().
  if (pte_table_) pte_table_->ptl.unlock();
  pte_table_ = nullptr;
}

void PageVmaMappedWalk::done() { unlock_current(); }

Pte PageVmaMappedWalk::pte() const NO_THREAD_SAFETY_ANALYSIS {
  HMM_ASSERT(pte_table_ && pte_table_->ptl.is_locked(), "pvmw has no current pte");
  return pte_table_->get(address_.pte_index());
}

void PageVmaMappedWalk::set_pte(Pte pte) NO_THREAD_SAFETY_ANALYSIS {
  HMM_ASSERT(pte_table_ && pte_table_->ptl.is_locked(), "pvmw has no current pte");
  pte_table_->set(address_.pte_index(), pte);
}

uint64_t PageVmaMappedWalk::subpage() const { return pte().pfn() - folio_.pfn(); }

bool PageVmaMappedWalk::check_pte(const Pte& pte) const {
  if (flags_ == PvmwFlags::kMigration) {
    return pte.is_migration() && folio_.contains(pte.pfn());
  }
  return pte.maps_folio() && folio_.contains(pte.pfn());
}

bool PageVmaMappedWalk::next() NO_THREAD_SAFETY_ANALYSIS {
  // See unlock_current(): the ptl is held across calls.
  if (started_) {
    address_ = address_ + kPageSize;
  }
  started_ = true;
  MmStruct& mm = vma_.mm();
  while (address_ < end_) {
    PmdTable* pmdt = mm.pmd_table(address_, MmStruct::Alloc::kNo);
    if (!pmdt) {
      unlock_current();
      address_ = Vaddr{(address_.v | (kPudSize - 1)) + 1};
      continue;
    }
    PteTable* table = nullptr;
    {
      MutexLock guard(pmdt->ptl);
      PmdSlot& slot = pmdt->slot(address_.pmd_index());
      if (slot.entry.is_table()) table = slot.table.get();
    }
    if (!table) {
      unlock_current();
      address_ = address_.pmd_down() + kPmdSize;
      continue;
    }
    if (table != pte_table_) {
      unlock_current();
      table->ptl.lock();
      pte_table_ = table;
    }
    if (check_pte(table->get(address_.pte_index()))) return true;
    address_ = address_ + kPageSize;
  }
  unlock_current();
  return false;
}

}  // namespace hmmsim
