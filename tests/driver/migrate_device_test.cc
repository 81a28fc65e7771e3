// Device-side eviction by pfn: migrate_device_range / migrate_device_pfns
// with migrate_device_pages / migrate_device_finalize, over a device laid
// out by hand.
// The checker runs whenever the world is quiescent: before setup and after
// finalize, never in between, where the migrating folios are legitimately
// locked.
#include "driver/migrate_vma_fixture.h"

namespace hmmsim::migrate_vma_test {
namespace {

using MigrateDevice = MigrateVmaFixture;

// ---------------------------------------------------------------------------
// Eviction by pfn

// migrate_device_range() over a pagemap holding a THP, small pages and
// free pages: compound slots with 511 empty slots after them, no write bit
// (no Vma is known); a compound source given small destinations cannot be
// split without a Vma and stays; migrate_device_pfns() then takes it.
TEST_F(MigrateDevice, EvictionByRangeAndPfns) {
  constexpr uint32_t kTagA = 0x0e000000, kTagS = 0x0e800000, kTagB = 0x0f000000;
  Vaddr ra = map_thp(kTagA);
  Vaddr rs = map(3 * kPageSize);
  fill(rs, 3, kTagS);
  Vaddr rb = map_thp(kTagB);
  // Lay the device out by hand: A at 0, small pages at 512, 513 and 515,
  // B at 1024; everything else free.
  auto place = [&](Vaddr at, uint64_t pages, uint32_t flags, std::vector<uint64_t> offsets,
                   Order order) {
    std::vector<MigratePfn> src(pages), dst(pages);
    ReadLock guard(mm_.mmap_lock);
    MigrateVma args = args_for(at, pages, flags, src, dst, tdev_.owner());
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    for (uint64_t i = 0; i < offsets.size(); i++) {
      uint64_t slot = order.v ? 0 : i;
      Folio f = tdev_.alloc(offsets[i], order);
      copy(f, src[slot].pfn, order.nr_pages());
      dst[slot] = MigratePfn::page(f.pfn(), order.v > 0);
    }
    migrate_vma_pages(world_, args);
    migrate_vma_finalize(world_, args);
  };
  place(ra, kNH, kSelectSystem | kSelectCompound, {0}, Order{9});
  place(rs, 3, kSelectSystem, {512, 513, 515}, Order{0});
  place(rb, kNH, kSelectSystem | kSelectCompound, {1024}, Order{9});
  Pfn base = tdev_.base();
  Folio a = folio_of(base), b = folio_of(base + 1024);
  ASSERT_EQ(pmd_at(ra).kind(), PmdKind::kDevicePrivate);
  ASSERT_EQ(pte_at(mm_, rs + 2 * kPageSize).pfn(), base + 515);
  EXPECT_EQ(tdev_.ref(), 512 + 3 + 512);
  expect_clean(world_);

  constexpr uint64_t kN = 4 * kNH;
  std::vector<MigratePfn> src(kN), dst(kN);
  ASSERT_TRUE(migrate_device_range(world_, src, base, kN).ok());
  auto want = [&](uint64_t i) {
    MigratePfn m{.pfn = base + i, .valid = true, .migrate = true};
    m.compound = i == 0 || i == 1024;
    return (i == 0 || i == 512 || i == 513 || i == 515 || i == 1024) ? m : kEmpty;
  };
  EXPECT_TRUE(slots_are(src, 0, kN, want));
  EXPECT_EQ(pmd_at(ra).kind(), PmdKind::kMigration);
  EXPECT_EQ(pmd_at(rb).kind(), PmdKind::kMigration);
  EXPECT_EQ(pte_at(mm_, rs).kind(), PteKind::kMigration);
  EXPECT_EQ(state(a), (FolioState{1, 0, 0, true, 9}));
  EXPECT_EQ(state(b), (FolioState{1, 0, 0, true, 9}));
  EXPECT_EQ(state(folio_of(base + 515)), (FolioState{1, 0, 0, true, 0}));

  Folio ra_new = ram_alloc(Order{9});
  copy(ra_new, base, kNH);
  dst[0] = MigratePfn::page(ra_new.pfn(), true);
  std::vector<Folio> rs_new;
  for (uint64_t off : {512, 513, 515}) {
    rs_new.push_back(ram_alloc(Order{0}));
    copy(rs_new.back(), base + off, 1);
    dst[off] = MigratePfn::page(rs_new.back().pfn());
  }
  for (uint64_t j = 0; j < kNH; j++) {
    Folio f = ram_alloc(Order{0});
    copy(f, base + 1024 + j, 1);
    dst[1024 + j] = MigratePfn::page(f.pfn());
  }
  migrate_device_pages(world_, src, dst);
  EXPECT_TRUE(slots_are(src, 1024, 1025, MigratePfn{.pfn = base + 1024, .valid = true}));
  EXPECT_TRUE(slots_are(src, 0, 1024, want));
  migrate_device_finalize(world_, src, dst);

  Pmd pmd = pmd_at(ra);
  EXPECT_EQ(pmd.kind(), PmdKind::kPresent);
  EXPECT_EQ(pmd.pfn(), ra_new.pfn());
  EXPECT_TRUE(pmd.write());
  EXPECT_EQ(state(ra_new), (FolioState{1, 1, 1, false, 9}));
  for (uint64_t i = 0; i < 3; i++) {
    Pte pte = pte_at(mm_, rs + i * kPageSize);
    EXPECT_EQ(pte.kind(), PteKind::kPresent);
    EXPECT_EQ(pte.pfn(), rs_new[i].pfn());
    EXPECT_EQ(state(rs_new[i]), (FolioState{1, 1, 0, false, 0}));
  }
  pmd = pmd_at(rb);
  EXPECT_EQ(pmd.kind(), PmdKind::kDevicePrivate);
  EXPECT_TRUE(pmd.write());
  EXPECT_EQ(state(b), (FolioState{1, 1, 1, false, 9}));
  EXPECT_EQ(tdev_.freed(), 512u + 3u);
  EXPECT_EQ(tdev_.ref(), 512);
  expect_clean(world_);
  for (uint64_t i = 0; i < kNH; i++) ASSERT_TRUE(frame_holds(b.page(i), word0(kTagB, i)));

  // migrate_device_pfns(): B's head, a free page and a tail page of nothing.
  std::vector<MigratePfn> src2(kNH + 2), dst2(kNH + 2);
  src2[0].pfn = base + 1024;
  src2[kNH].pfn = base + 514;
  src2[kNH + 1].pfn = base + 1;
  ASSERT_TRUE(migrate_device_pfns(world_, src2).ok());
  EXPECT_TRUE(
      slots_are(src2, 0, 1,
                MigratePfn{.pfn = base + 1024, .valid = true, .migrate = true, .compound = true}));
  EXPECT_TRUE(slots_are(src2, 1, kNH + 2, kEmpty));
  Folio rb_new = ram_alloc(Order{9});
  copy(rb_new, base + 1024, kNH);
  dst2[0] = MigratePfn::page(rb_new.pfn(), true);
  migrate_device_pages(world_, src2, dst2);
  migrate_device_finalize(world_, src2, dst2);
  EXPECT_EQ(pmd_at(rb).kind(), PmdKind::kPresent);
  EXPECT_EQ(state(rb_new), (FolioState{1, 1, 1, false, 9}));
  EXPECT_EQ(tdev_.ref(), 0);
  expect_clean(world_);
  expect_cpu(ra, kNH, kTagA);
  expect_cpu(rs, 3, kTagS);
  expect_cpu(rb, kNH, kTagB);
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim::migrate_vma_test
