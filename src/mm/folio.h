// Folio: a handle on a head page and the folio API of Linux 6.19.
//
// Linux counterpart: `include/linux/mm.h`, `include/linux/page_ref.h`,
// `include/linux/rmap.h` (mapcount readers), `mm/filemap.c` (folio lock).
// A Folio is a cheap value (range + head page), like a `struct folio *`.
// Its state lives in the Page descriptors of its range and changes only
// through the functions below, named after their kernel counterparts:
//
//   refcount   folio_get / folio_try_get / folio_put / folio_ref_add /
//              folio_ref_freeze / folio_ref_unfreeze
//   lock       folio_lock / folio_trylock / folio_unlock (PG_locked)
//   mapcount   folio_mapcount / folio_entire_mapcount / folio_mapped,
//              changed only by the rmap functions in rmap.h
//
// When the refcount reaches zero the folio goes back to its range's
// FolioOwner (the buddy allocator for RAM, the device's pgmap later).
//
// Thread safety: refcount and flags are atomics; the folio lock is a flag bit
// whose waiters block through the range's Scheduler.
#pragma once

#include <cstdint>

#include "base/types.h"
#include "mm/page.h"
#include "mm/page_alloc.h"

namespace hmmsim {

// ENTIRELY_MAPPED: added to nr_pages_mapped while any PMD maps the folio.
inline constexpr int32_t kEntirelyMapped = 0x800000;

class Folio {
 public:
  Folio() = default;
  Folio(MemRange* range, Page* head) : range_(range), head_(head) {}

  explicit operator bool() const { return head_ != nullptr; }
  bool operator==(const Folio& o) const { return head_ == o.head_; }

  Page& head() const { return *head_; }
  Page& page(uint64_t i) const { return head_[i]; }
  MemRange& range() const { return *range_; }
  Pfn pfn() const { return head_->page_pfn(); }
  Order order() const { return Order{head_->order}; }
  uint64_t nr_pages() const { return order().nr_pages(); }
  bool is_large() const { return head_->order > 0; }
  bool is_device_private() const { return range_->kind() == MemKind::kDevicePrivate; }
  bool test(PageFlag f) const { return head_->test(f); }
  // Index of page `p` (which must belong to this folio) within the folio.
  uint64_t page_index(const Page& p) const { return static_cast<uint64_t>(&p - head_); }
  bool contains(Pfn pfn) const { return pfn >= this->pfn() && pfn < this->pfn() + nr_pages(); }

 private:
  MemRange* range_ = nullptr;
  Page* head_ = nullptr;
};

// page_folio(): the folio containing `pfn` in `range`.
Folio page_folio(MemRange& range, Pfn pfn);
// pfn_folio() over the whole physical memory; the pfn must exist.
Folio pfn_folio(PhysMem& mem, Pfn pfn);

// Allocates an order-`order` folio from RAM with refcount 1 and no mappings
// (folio_alloc / vma_alloc_folio minus NUMA policy and memcg). Large anon
// folios are marked large_rmappable. Empty when the buddy allocator fails.
std::optional<Folio> folio_alloc(PhysMem& mem, Order order);

// Prepares pages [pfn, pfn + 2^order) of `range` as a fresh folio with
// refcount 1 (prep_new_page + prep_compound_page).
Folio folio_prep_new(MemRange& range, Pfn pfn, Order order);

// folio_copy: the bytes of every page of `src` into the page of the same
// index of `dst` (same order). A folio's frames are consecutive in their
// range's FrameBytes, so a folio whose pages all hold data moves with one
// memcpy.
void folio_copy(Folio dst, Folio src);

// --- refcount ---
int32_t folio_ref_count(Folio folio);
void folio_get(Folio folio);
bool folio_try_get(Folio folio);  // fails on a frozen (refcount 0) folio
void folio_ref_add(Folio folio, int32_t nr);
void folio_ref_sub(Folio folio, int32_t nr);
// Drops a reference; at zero the folio is freed to its owner.
void folio_put(Folio folio);
void folio_put_refs(Folio folio, int32_t nr);
// folio_ref_freeze: refcount must be exactly `count`; it becomes 0.
bool folio_ref_freeze(Folio folio, int32_t count);
void folio_ref_unfreeze(Folio folio, int32_t count);

// --- lock ---
bool folio_trylock(Folio folio);
void folio_lock(Folio folio);
void folio_unlock(Folio folio);
inline bool folio_test_locked(Folio folio) { return folio.test(kPgLocked); }

// --- mapcount (bias hidden) ---
int32_t folio_mapcount(Folio folio);
int32_t folio_entire_mapcount(Folio folio);
int32_t folio_large_mapcount(Folio folio);
int32_t folio_nr_pages_mapped(Folio folio);
inline bool folio_mapped(Folio folio) { return folio_mapcount(folio) > 0; }
// PTE mappings of one page (its _mapcount + 1), not counting PMD mappings.
int32_t page_pte_mapcount(const Page& page);
// page_mapcount(): PTE mappings of the page plus PMD mappings of its folio.
int32_t page_mapcount(Folio folio, const Page& page);
bool folio_test_anon(Folio folio);
// folio_maybe_mapped_shared(): mapped by more than one address space (for a
// large folio: as tracked by its two MM-id slots, as in Linux 6.19).
bool folio_maybe_mapped_shared(Folio folio);

// The MM-id slots of a large folio (Linux `_mm_id[2]`, `_mm_id_mapcount[2]`,
// kept in the first tail page). Id 0 is MM_ID_DUMMY (free slot); counts
// are -1-based like every mapcount.
struct MmIdSlot {
  uint32_t id;
  int32_t mapcount;
};
MmIdSlot folio_mm_id_slot(Folio folio, int slot);
void folio_set_mm_id_slot(Folio folio, int slot, MmIdSlot value);
bool PageAnonExclusive(const Page& page);

// folio_expected_ref_count(): references explained by mappings (and, later,
// by caches). Callers add their own references.
int32_t folio_expected_ref_count(Folio folio);

}  // namespace hmmsim
