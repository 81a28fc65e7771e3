// DeviceTable: the dmirror device's page table (lib/test_hmm.c keeps it in
// an xarray indexed by virtual page number).
//
// Entries are grouped in leaves of 512 consecutive pages, one per PMD of
// the address space, like the xarray's nodes: finding, storing and erasing
// one page is O(1) inside its leaf, a huge page's 512 entries fill one
// leaf, and walking a range visits its leaves in address order.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <map>
#include <memory>

#include "base/types.h"

namespace hmmsim {

// One device page-table entry: the page and the xarray's tags.
struct DptEntry {
  Pfn pfn;             // the page holding the data (device or RAM)
  bool write = false;  // DPT_XA_TAG_WRITE
  bool atomic = false; // DPT_XA_TAG_ATOMIC
};

class DeviceTable {
 public:
  // The entry of virtual page `vpn`, or nullptr.
  const DptEntry* find(uint64_t vpn) const;
  void store(uint64_t vpn, DptEntry entry);
  // Erases the pages [first, last], both included.
  void erase_range(uint64_t first, uint64_t last);
  uint64_t size() const { return size_; }

  // Calls fn(vpn, entry) for every entry with first <= vpn < end, in order;
  // stops early and returns false when fn does.
  template <typename Fn>
  bool for_each(uint64_t first, uint64_t end, Fn&& fn) const {
    for (auto it = leaves_.lower_bound(first / kHPageNr); it != leaves_.end(); ++it) {
      uint64_t base = it->first * kHPageNr;
      if (base >= end) break;
      const Leaf& leaf = *it->second;
      for (uint64_t i = first > base ? first - base : 0; i < kHPageNr && base + i < end; i++) {
        if (leaf.present[i] && !fn(base + i, leaf.entries[i])) return false;
      }
    }
    return true;
  }

 private:
  struct Leaf {
    std::array<DptEntry, kHPageNr> entries;
    std::bitset<kHPageNr> present;
  };

  std::map<uint64_t, std::unique_ptr<Leaf>> leaves_;  // by vpn / 512
  uint64_t size_ = 0;
};

}  // namespace hmmsim
