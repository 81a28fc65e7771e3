// DeviceTable: the dmirror device page table in 512-entry leaves.
#include "driver/device_table.h"

#include <gtest/gtest.h>

#include <vector>

namespace hmmsim {
namespace {

DptEntry entry(uint64_t pfn, bool write = true) { return DptEntry{Pfn{pfn}, write, false}; }

std::vector<uint64_t> vpns(const DeviceTable& t, uint64_t first, uint64_t end) {
  std::vector<uint64_t> out;
  t.for_each(first, end, [&](uint64_t vpn, const DptEntry&) {
    out.push_back(vpn);
    return true;
  });
  return out;
}

TEST(DeviceTable, StoreFindEraseOnePage) {
  DeviceTable t;
  EXPECT_EQ(t.find(5), nullptr);
  t.store(5, entry(100));
  ASSERT_NE(t.find(5), nullptr);
  EXPECT_EQ(t.find(5)->pfn, Pfn{100});
  t.store(5, entry(101, false));  // replacing does not count twice
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.find(5)->pfn, Pfn{101});
  EXPECT_FALSE(t.find(5)->write);
  EXPECT_EQ(t.find(4), nullptr);
  t.erase_range(5, 5);
  EXPECT_EQ(t.find(5), nullptr);
  EXPECT_EQ(t.size(), 0u);
  t.erase_range(5, 5);  // erasing nothing is fine
  EXPECT_EQ(t.size(), 0u);
}

// An inclusive range across three leaves erases exactly its pages.
TEST(DeviceTable, EraseRangeAcrossLeaves) {
  DeviceTable t;
  for (uint64_t v = 0; v < 3 * kHPageNr; v++) t.store(v, entry(v));
  t.erase_range(kHPageNr - 2, 2 * kHPageNr + 1);
  EXPECT_EQ(t.size(), 3 * kHPageNr - (kHPageNr + 4));
  EXPECT_NE(t.find(kHPageNr - 3), nullptr);
  EXPECT_EQ(t.find(kHPageNr - 2), nullptr);
  EXPECT_EQ(t.find(kHPageNr + 7), nullptr);
  EXPECT_EQ(t.find(2 * kHPageNr + 1), nullptr);
  EXPECT_NE(t.find(2 * kHPageNr + 2), nullptr);
  EXPECT_EQ(vpns(t, kHPageNr - 4, 2 * kHPageNr + 4),
            (std::vector<uint64_t>{kHPageNr - 4, kHPageNr - 3, 2 * kHPageNr + 2,
                                   2 * kHPageNr + 3}));
}

// for_each visits [first, end) in address order and stops when told to.
TEST(DeviceTable, ForEachInOrderAndStops) {
  DeviceTable t;
  for (uint64_t v : std::vector<uint64_t>{7 * kHPageNr + 3, 2, 600, 9}) t.store(v, entry(v));
  EXPECT_EQ(vpns(t, 0, UINT64_MAX), (std::vector<uint64_t>{2, 9, 600, 7 * kHPageNr + 3}));
  EXPECT_EQ(vpns(t, 3, 600), (std::vector<uint64_t>{9}));
  int seen = 0;
  bool finished = t.for_each(0, UINT64_MAX, [&](uint64_t vpn, const DptEntry&) {
    seen++;
    return vpn < 9;
  });
  EXPECT_FALSE(finished);
  EXPECT_EQ(seen, 2);
}

}  // namespace
}  // namespace hmmsim
