#include "driver/device_table.h"

#include <algorithm>

namespace hmmsim {

const DptEntry* DeviceTable::find(uint64_t vpn) const {
  auto it = leaves_.find(vpn / kHPageNr);
  if (it == leaves_.end() || !it->second->present[vpn % kHPageNr]) return nullptr;
  return &it->second->entries[vpn % kHPageNr];
}

void DeviceTable::store(uint64_t vpn, DptEntry entry) {
  std::unique_ptr<Leaf>& leaf = leaves_[vpn / kHPageNr];
  if (!leaf) leaf = std::make_unique<Leaf>();
  uint64_t i = vpn % kHPageNr;
  if (!leaf->present[i]) size_++;
  leaf->present[i] = true;
  leaf->entries[i] = entry;
}

void DeviceTable::erase_range(uint64_t first, uint64_t last) {
  auto it = leaves_.lower_bound(first / kHPageNr);
  while (it != leaves_.end() && it->first * kHPageNr <= last) {
    uint64_t base = it->first * kHPageNr;
    Leaf& leaf = *it->second;
    uint64_t from = std::max(first, base) - base;
    uint64_t to = std::min(last, base + kHPageNr - 1) - base;
    for (uint64_t i = from; i <= to; i++) {
      if (leaf.present[i]) size_--;
      leaf.present[i] = false;
    }
    it = leaf.present.none() ? leaves_.erase(it) : std::next(it);
  }
}

}  // namespace hmmsim
