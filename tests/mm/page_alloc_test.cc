// Tests of the buddy allocator (src/mm/page_alloc.cc, Linux mm/page_alloc.c).
//
// The fixture's world has 64 MiB of RAM: 16384 frames. The allocator hands
// them out as fifteen order-10 blocks plus the frames left after the shared
// zero page (the last frame, 16383) was taken out of service:
//
//   [0, 15360)          15 blocks of order 10
//   15360 o9 | 15872 o8 | 16128 o7 | 16256 o6 | 16320 o5 | 16352 o4 |
//   16368 o3 | 16376 o2 | 16380 o1 | 16382 o0 | 16383 zero page
#include "mm/page_alloc.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "mm/folio.h"
#include "support/mm_fixture.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

constexpr uint64_t kFrames = 16384;
constexpr Pfn kZeroPfn{kFrames - 1};

class Buddy : public MmTest {
 protected:
  BuddyAllocator& buddy() { return world_.mem().buddy(); }
  // Free blocks per order, 0..kMaxPageOrder.
  std::array<uint64_t, kMaxPageOrder + 1> blocks() {
    std::array<uint64_t, kMaxPageOrder + 1> out{};
    for (uint32_t o = 0; o <= kMaxPageOrder; o++) out[o] = buddy().nr_free_blocks(Order{o});
    return out;
  }
  static std::array<uint64_t, kMaxPageOrder + 1> initial_blocks() {
    return {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 15};
  }
};

// A fresh world's free lists: 15 order-10 blocks and one of each smaller order.
TEST_F(Buddy, InitialFreeBlocks) {
  EXPECT_EQ(buddy().nr_free_pages(), kFrames - 1);
  EXPECT_EQ(blocks(), initial_blocks());
  EXPECT_EQ(initial_free_pages_, kFrames - 1);
  expect_clean(world_);
}

// The zero page (last frame) is reserved: never handed out, never merged with its buddy.
TEST_F(Buddy, ZeroPageIsReserved) {
  EXPECT_EQ(world_.mem().zero_pfn(), kZeroPfn);
  const Page& zero = world_.mem().page(kZeroPfn);
  EXPECT_TRUE(zero.test(kPgReserved));
  EXPECT_FALSE(zero.test(kPgBuddy));
  EXPECT_EQ(zero.refcount.load(), 0);
  // The only order-0 block is the zero page's buddy; freeing it after an
  // allocation leaves it an order-0 block.
  std::optional<Pfn> pfn = buddy().alloc_pages(Order{0});
  ASSERT_TRUE(pfn.has_value());
  EXPECT_EQ(*pfn, Pfn{kFrames - 2});
  buddy().free_pages(*pfn, Order{0});
  EXPECT_EQ(blocks(), initial_blocks());
  EXPECT_TRUE(world_.mem().page(Pfn{kFrames - 2}).test(kPgBuddy));
  EXPECT_EQ(world_.mem().page(Pfn{kFrames - 2}).order, 0);
  expect_clean(world_);
}

// Order 0 takes the order-0 block, then splits the order-1 one; frees merge back.
TEST_F(Buddy, Order0SplitsAndMerges) {
  std::optional<Pfn> a = buddy().alloc_pages(Order{0});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(*a, Pfn{16382});
  EXPECT_EQ(buddy().nr_free_blocks(Order{0}), 0u);
  EXPECT_EQ(buddy().nr_free_blocks(Order{1}), 1u);

  // No order-0 block left: the order-1 block at 16380 is split, its lower
  // half is handed out and the upper half goes to the order-0 list.
  std::optional<Pfn> b = buddy().alloc_pages(Order{0});
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(*b, Pfn{16380});
  EXPECT_EQ(buddy().nr_free_blocks(Order{0}), 1u);
  EXPECT_EQ(buddy().nr_free_blocks(Order{1}), 0u);
  EXPECT_TRUE(world_.mem().page(Pfn{16381}).test(kPgBuddy));
  EXPECT_EQ(buddy().nr_free_pages(), kFrames - 3);

  // Freeing 16380 merges it with 16381 into an order-1 block again.
  buddy().free_pages(*b, Order{0});
  EXPECT_EQ(buddy().nr_free_blocks(Order{0}), 0u);
  EXPECT_EQ(buddy().nr_free_blocks(Order{1}), 1u);
  EXPECT_FALSE(world_.mem().page(Pfn{16381}).test(kPgBuddy));
  buddy().free_pages(*a, Order{0});
  EXPECT_EQ(blocks(), initial_blocks());
  EXPECT_EQ(buddy().nr_free_pages(), kFrames - 1);
  expect_clean(world_);
}

// Order 9 takes the order-9 block, then splits an order-10 one; frees merge back.
TEST_F(Buddy, Order9SplitsAndMerges) {
  std::optional<Pfn> a = buddy().alloc_pages(Order{9});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(*a, Pfn{15360});
  EXPECT_EQ(buddy().nr_free_blocks(Order{9}), 0u);
  EXPECT_EQ(buddy().nr_free_blocks(Order{10}), 15u);

  std::optional<Pfn> b = buddy().alloc_pages(Order{9});
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->v % 1024, 0u) << "the lower half of an order-10 block";
  EXPECT_LT(b->v, 15360u);
  EXPECT_EQ(buddy().nr_free_blocks(Order{10}), 14u);
  EXPECT_EQ(buddy().nr_free_blocks(Order{9}), 1u);
  const Page& upper = world_.mem().page(*b + 512);
  EXPECT_TRUE(upper.test(kPgBuddy));
  EXPECT_EQ(upper.order, 9);
  EXPECT_EQ(buddy().nr_free_pages(), kFrames - 1 - 1024);

  buddy().free_pages(*b, Order{9});
  EXPECT_EQ(buddy().nr_free_blocks(Order{10}), 15u);
  EXPECT_EQ(buddy().nr_free_blocks(Order{9}), 0u);
  buddy().free_pages(*a, Order{9});
  EXPECT_EQ(blocks(), initial_blocks());
  expect_clean(world_);
}

// nr_free_pages() moves by exactly the size of each allocation and free.
TEST_F(Buddy, NrFreePagesAccounting) {
  std::vector<std::pair<Pfn, Order>> held;
  uint64_t expect = kFrames - 1;
  for (uint32_t o : {0u, 3u, 9u, 10u, 1u, 0u}) {
    std::optional<Pfn> pfn = buddy().alloc_pages(Order{o});
    ASSERT_TRUE(pfn.has_value()) << "order " << o;
    EXPECT_EQ(pfn->v % (uint64_t{1} << o), 0u) << "blocks are naturally aligned";
    expect -= uint64_t{1} << o;
    EXPECT_EQ(buddy().nr_free_pages(), expect);
    held.emplace_back(*pfn, Order{o});
  }
  for (auto [pfn, order] : held) {
    buddy().free_pages(pfn, order);
    expect += order.nr_pages();
    EXPECT_EQ(buddy().nr_free_pages(), expect);
  }
  EXPECT_EQ(blocks(), initial_blocks());
  expect_clean(world_);
}

// Every other frame allocated: half of memory is free, yet orders 1 and 9 fail.
TEST_F(Buddy, FragmentationDefeatsLargeAllocations) {
  std::vector<Folio> folios;
  while (std::optional<Folio> f = folio_alloc(world_.mem(), Order{0})) {
    EXPECT_NE(f->pfn(), kZeroPfn);
    folios.push_back(*f);
  }
  ASSERT_EQ(folios.size(), kFrames - 1);
  EXPECT_EQ(buddy().nr_free_pages(), 0u);
  EXPECT_FALSE(buddy().alloc_pages(Order{0}).has_value());
  expect_clean(world_);

  std::vector<Folio> odd;
  for (Folio f : folios) {
    if (f.pfn().v % 2 == 0) {
      folio_put(f);
    } else {
      odd.push_back(f);
    }
  }
  EXPECT_EQ(buddy().nr_free_pages(), kFrames / 2);
  EXPECT_EQ(buddy().nr_free_blocks(Order{0}), kFrames / 2);
  EXPECT_GT(buddy().nr_free_pages(), uint64_t{kHPageNr});
  EXPECT_FALSE(buddy().alloc_pages(Order{9}).has_value());
  EXPECT_FALSE(folio_alloc(world_.mem(), Order{9}).has_value());
  EXPECT_FALSE(buddy().alloc_pages(Order{1}).has_value());
  expect_clean(world_);

  std::optional<Folio> small = folio_alloc(world_.mem(), Order{0});
  ASSERT_TRUE(small.has_value());
  EXPECT_EQ(small->pfn().v % 2, 0u);
  folio_put(*small);

  for (Folio f : odd) folio_put(f);
  EXPECT_EQ(blocks(), initial_blocks());
  EXPECT_EQ(buddy().nr_free_pages(), kFrames - 1);
  expect_clean(world_);
}

// folio_alloc and the last folio_put move nr_free_pages by the folio size.
TEST_F(Buddy, FoliosComeFromAndReturnToTheBuddy) {
  std::optional<Folio> thp = folio_alloc(world_.mem(), Order{9});
  ASSERT_TRUE(thp.has_value());
  EXPECT_EQ(buddy().nr_free_pages(), kFrames - 1 - 512);
  EXPECT_FALSE(thp->head().test(kPgBuddy));
  expect_clean(world_);
  folio_put(*thp);
  EXPECT_EQ(buddy().nr_free_pages(), kFrames - 1);
  EXPECT_EQ(blocks(), initial_blocks());
  expect_clean(world_);
}

// Freeing a frame twice is a model bug: the allocator aborts with a message.
TEST_F(Buddy, DoubleFreeAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::optional<Pfn> pfn = buddy().alloc_pages(Order{0});
  ASSERT_TRUE(pfn.has_value());
  buddy().free_pages(*pfn, Order{0});
  EXPECT_DEATH(buddy().free_pages(*pfn, Order{0}), "double free");
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim
