// Page: the descriptor of one 4 KiB frame (Linux `struct page`), and the
// folio fields that live in a head page.
//
// Every frame of every memory range has one Page, kept in a flat array per
// range and indexed by pfn, as in Linux's memmap. A folio is a power-of-two
// run of pages whose first page (the head) carries the folio-wide state:
// refcount, order, large and entire mapcount, nr_pages_mapped and the
// anon_vma pointer. Tail pages carry only their per-page mapcount, their
// PageAnonExclusive bit and their offset to the head.
//
// Counting follows Linux 6.19 (CONFIG_PAGE_MAPCOUNT): `mapcount`,
// `large_mapcount` and `entire_mapcount` are stored -1-based like the kernel's
// `_mapcount` fields, so a fresh page holds -1 and "mapped once" is 0. The
// accessors in folio.h hide the bias.
//
// Thread safety: the counters and flags are atomics. `mapping`, `index`,
// `order` and `head_offset` change only while the folio is locked, frozen
// (refcount 0) or free, as in Linux.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/types.h"

namespace hmmsim {

class AnonVma;

// Page flags (a subset of Linux's `enum pageflags`).
enum PageFlag : uint32_t {
  kPgLocked = 1u << 0,          // PG_locked (head): the folio lock
  kPgAnon = 1u << 1,            // mapping is an anon_vma (FOLIO_MAPPING_ANON)
  kPgLargeRmappable = 1u << 2,  // PG_large_rmappable (head)
  kPgDirty = 1u << 3,           // PG_dirty (head)
  kPgAnonExclusive = 1u << 4,   // PG_anon_exclusive (per page)
  kPgHead = 1u << 5,            // PG_head: first page of a large folio
  kPgTail = 1u << 6,            // a tail page of a large folio
  kPgBuddy = 1u << 7,           // PageBuddy: head of a free buddy block
  kPgLru = 1u << 8,             // PG_lru: on an LRU list (system anon folios)
  kPgPartiallyMapped = 1u << 9, // PG_partially_mapped (deferred split)
  kPgSwapBacked = 1u << 10,     // PG_swapbacked (anon)
  kPgReserved = 1u << 11,       // PG_reserved: the shared zero page
  kPgDeferredQueued = 1u << 12, // head is on the deferred split queue
  kPgMaybeMappedShared = 1u << 13, // FOLIO_MM_IDS_SHARED_BIT (large folios)
  kPgHasData = 1u << 14,        // the frame holds bytes (else it reads as zeros)
};

struct Page {
  std::atomic<uint32_t> flags{0};
  std::atomic<int32_t> refcount{0};         // head: _refcount
  std::atomic<int32_t> mapcount{-1};        // per page: _mapcount
  std::atomic<int32_t> large_mapcount{-1};  // head: _large_mapcount
  std::atomic<int32_t> entire_mapcount{-1}; // head: _entire_mapcount
  std::atomic<int32_t> nr_pages_mapped{0};  // head: _nr_pages_mapped
  uint32_t pfn = 0;                         // this frame's pfn
  uint16_t head_offset = 0;                 // tail: distance to the head page
  uint8_t order = 0;                        // head: folio order / buddy order
  uint8_t unused = 0;
  AnonVma* mapping = nullptr;               // head: anon_vma (anon folios)
  uint64_t index = 0;                       // head: linear page index
  std::byte* bytes = nullptr;               // this frame's slot (FrameBytes)
  uint32_t list_prev = 0;                   // buddy free list / deferred list
  uint32_t list_next = 0;

  bool test(PageFlag f) const { return flags.load(std::memory_order_acquire) & f; }
  void set(PageFlag f) { flags.fetch_or(f, std::memory_order_acq_rel); }
  void clear(PageFlag f) { flags.fetch_and(~static_cast<uint32_t>(f), std::memory_order_acq_rel); }
  Pfn page_pfn() const { return Pfn{pfn}; }
  bool has_data() const { return test(kPgHasData); }
};

static_assert(sizeof(Page) <= 64, "page descriptors must stay compact");

// Byte access to a frame. A frame without data (kPgHasData clear) reads as
// zeros; its first write zero-fills the rest of it.
void page_read(const Page& page, uint64_t offset, void* dst, uint64_t len);
void page_write(Page& page, uint64_t offset, const void* src, uint64_t len);
void page_copy(Page& dst, const Page& src);
// The bytes of `nr` frames of one range with consecutive pfns, `first`
// being the lowest, into `dst` (nr * 4 KiB): one memcpy per run of frames
// that hold data.
void pages_read(const Page& first, uint64_t nr, std::byte* dst);
void page_zero(Page& page);
bool page_is_zero_filled(const Page& page);

}  // namespace hmmsim
