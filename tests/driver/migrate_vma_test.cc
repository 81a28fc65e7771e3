// migrate_vma_setup / migrate_vma_pages / migrate_vma_finalize driven
// directly, phase by phase, with the exact src[]/dst[] slots, cpages/npages
// and folio refcount/mapcount/lock state after each phase
// (kernel-semantics.md §2 and Appendix A): THPs collected whole or split
// during collect, compound sources split mid-migration, and the folio
// state pages carries over. Holes, CPU faults, skipped entries and
// eviction have files of their own (migrate_vma_*_test.cc,
// migrate_device_test.cc).
// The checker runs whenever the world is quiescent: before setup and after
// finalize, never in between, where the migrating folios are legitimately
// locked.
#include "driver/migrate_vma_fixture.h"

namespace hmmsim::migrate_vma_test {
namespace {

using MigrateVmaPhases = MigrateVmaFixture;

// ---------------------------------------------------------------------------
// THP collect

// A PMD-mapped THP collected whole: one compound slot, the PMD becomes a
// PMD migration entry, the folio is locked and holds only the migration
// reference; it moves to an order-9 device folio and the PMD comes back as
// a writable device-private PMD (A2 without a fault).
TEST_F(MigrateVmaPhases, ThpCollectedWholeMovesToDeviceThp) {
  constexpr uint32_t kTag = 0x10000000;
  Vaddr buf = map_thp(kTag);
  Folio thp = pmd_folio(buf);
  EXPECT_EQ(state(thp), (FolioState{1, 1, 1, false, 9}));
  int64_t nr_ptes = mm_.nr_ptes();
  EXPECT_EQ(mm_.anon_rss(), 512);
  expect_clean(world_);

  std::vector<MigratePfn> src(kNH), dst(kNH);
  MigrateVma args = args_for(buf, kNH, kSelectSystem | kSelectCompound, src, dst);
  Folio dthp;
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.npages, kNH);
    EXPECT_EQ(args.cpages, 1u);
    EXPECT_TRUE(slots_are(src, 0, 1, page_slot(thp.pfn(), true, true)));
    EXPECT_TRUE(slots_are(src, 1, kNH, kEmpty));
    EXPECT_TRUE(slots_are(dst, 0, kNH, kEmpty));
    Pmd pmd = pmd_at(buf);
    EXPECT_EQ(pmd.kind(), PmdKind::kMigration);
    EXPECT_EQ(pmd.pfn(), thp.pfn());
    EXPECT_EQ(pmd.migration_kind(), MigrationKind::kWrite);
    EXPECT_EQ(state(thp), (FolioState{1, 0, 0, true, 9}));
    EXPECT_FALSE(thp.test(kPgLru));   // isolated
    EXPECT_TRUE(thp.test(kPgDirty));  // from the dirty PMD
    EXPECT_EQ(mm_.anon_rss(), 512);

    // B4: another collect meets the PMD migration entry and skips it.
    std::vector<MigratePfn> src2(kNH), dst2(kNH);
    MigrateVma again = args_for(buf, kNH, kSelectSystem | kSelectCompound, src2, dst2);
    ASSERT_TRUE(migrate_vma_setup(world_, again).ok());
    EXPECT_EQ(again.npages, kNH);
    EXPECT_EQ(again.cpages, 0u);
    EXPECT_TRUE(slots_are(src2, 0, kNH, kEmpty));
    EXPECT_EQ(state(thp), (FolioState{1, 0, 0, true, 9}));

    dthp = dev_alloc(Order{9});
    EXPECT_EQ(state(dthp), (FolioState{1, 0, 0, true, 9}));
    copy(dthp, thp.pfn(), kNH);
    dst[0] = MigratePfn::page(dthp.pfn(), true);
    migrate_vma_pages(world_, args);
    EXPECT_TRUE(slots_are(src, 0, 1, page_slot(thp.pfn(), true, true)));
    EXPECT_TRUE(slots_are(src, 1, kNH, kEmpty));
    EXPECT_EQ(state(thp), (FolioState{1, 0, 0, true, 9}));
    EXPECT_EQ(state(dthp), (FolioState{1, 0, 0, true, 9}));
    EXPECT_EQ(pmd_at(buf).kind(), PmdKind::kMigration);

    migrate_vma_finalize(world_, args);
    pmd = pmd_at(buf);
    EXPECT_EQ(pmd.kind(), PmdKind::kDevicePrivate);
    EXPECT_EQ(pmd.pfn(), dthp.pfn());
    EXPECT_TRUE(pmd.write());
    EXPECT_EQ(state(dthp), (FolioState{1, 1, 1, false, 9}));
    EXPECT_TRUE(PageAnonExclusive(dthp.head()));
    EXPECT_EQ(folio_ref_count(thp), 0);  // freed
  }
  EXPECT_EQ(mm_.anon_rss(), 512);
  EXPECT_EQ(mm_.nr_ptes(), nr_ptes);
  expect_clean(world_);
  for (uint64_t i = 0; i < kNH; i++) ASSERT_TRUE(frame_holds(dthp.page(i), word0(kTag, i)));
  expect_cpu(buf, kNH, kTag);
  expect_clean(world_);
}

// Without kSelectCompound the THP is split during collect (split_folio)
// and its pages are collected one by one; a page holding only zeros comes
// back from the split as the shared zero page and is collected as a hole.
TEST_F(MigrateVmaPhases, ThpWithoutCompoundIsSplitDuringCollect) {
  constexpr uint32_t kTag = 0x20000000;
  constexpr uint64_t kZeroPage = 7;
  Vaddr buf = map_thp(kTag);
  std::vector<std::byte> zeros(kPageSize);
  ASSERT_TRUE(cpu_write(mm_, buf + kZeroPage * kPageSize, zeros).ok());
  Folio thp = pmd_folio(buf);
  Pfn base = thp.pfn();
  int64_t nr_ptes = mm_.nr_ptes();
  uint64_t splits = stat(VmEvent::kThpSplitPage);
  expect_clean(world_);

  std::vector<MigratePfn> src(kNH), dst(kNH);
  MigrateVma args = args_for(buf, kNH, kSelectSystem, src, dst);
  std::vector<Folio> dpages(kNH);
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(stat(VmEvent::kThpSplitPage), splits + 1);
    EXPECT_EQ(args.npages, kNH);
    EXPECT_EQ(args.cpages, kNH);
    auto want = [&](uint64_t i) { return i == kZeroPage ? kHole : page_slot(base + i, true); };
    EXPECT_TRUE(slots_are(src, 0, kNH, want));
    EXPECT_EQ(pmd_at(buf).kind(), PmdKind::kTable);
    EXPECT_EQ(pte_at(mm_, buf + kZeroPage * kPageSize).kind(), PteKind::kZero);
    EXPECT_EQ(mm_.anon_rss(), 511);  // the zero page is not counted
    for (uint64_t i = 0; i < kNH; i++) {
      if (i == kZeroPage) continue;
      Pte pte = pte_at(mm_, buf + i * kPageSize);
      ASSERT_EQ(pte.kind(), PteKind::kMigration) << i;
      ASSERT_EQ(pte.pfn(), base + i) << i;
      ASSERT_EQ(pte.migration_kind(), MigrationKind::kWrite) << i;
    }
    auto pfn = [&](uint64_t i) { return base + i; };
    EXPECT_TRUE(folios_are(world_, 0, kZeroPage, pfn, FolioState{1, 0, 0, true, 0}));
    EXPECT_TRUE(folios_are(world_, kZeroPage + 1, kNH, pfn, FolioState{1, 0, 0, true, 0}));
    EXPECT_EQ(folio_ref_count(folio_of(base + kZeroPage)), 0);  // freed by the split
    EXPECT_TRUE(folio_of(base + 1).test(kPgDirty));

    for (uint64_t i = 0; i < kNH; i++) {
      dpages[i] = dev_alloc(Order{0});
      if (i == kZeroPage)
        zero(dpages[i]);
      else
        copy(dpages[i], base + i, 1);
      dst[i] = MigratePfn::page(dpages[i].pfn());
    }
    migrate_vma_pages(world_, args);
    EXPECT_TRUE(slots_are(src, 0, kNH, want));  // the hole was inserted: {migrate}
    EXPECT_EQ(state(dpages[kZeroPage]), (FolioState{2, 1, 0, true, 0}));
    EXPECT_EQ(mm_.anon_rss(), 512);
    migrate_vma_finalize(world_, args);
    auto dpfn = [&](uint64_t i) { return dpages[i].pfn(); };
    EXPECT_TRUE(folios_are(world_, 0, kNH, dpfn, FolioState{1, 1, 0, false, 0}));
    for (uint64_t i = 0; i < kNH; i++) {
      Pte pte = pte_at(mm_, buf + i * kPageSize);
      ASSERT_EQ(pte.kind(), PteKind::kDevicePrivate) << i;
      ASSERT_EQ(pte.pfn(), dpages[i].pfn()) << i;
      ASSERT_TRUE(pte.write()) << i;
      if (i == kZeroPage) continue;
      ASSERT_EQ(folio_ref_count(folio_of(base + i)), 0) << i;
    }
  }
  EXPECT_EQ(mm_.anon_rss(), 512);
  EXPECT_EQ(mm_.nr_ptes(), nr_ptes);  // the deposit became the PTE table
  expect_clean(world_);
  for (uint64_t i = 0; i < kNH; i++) {
    if (i == kZeroPage) continue;
    ASSERT_TRUE(frame_holds(dpages[i].head(), word0(kTag, i)));
  }
  expect_cpu(buf, kZeroPage, kTag);
  expect_cpu_zero(buf + kZeroPage * kPageSize, 1);
  expect_cpu(buf + (kZeroPage + 1) * kPageSize, kNH - kZeroPage - 1, kTag, kZeroPage + 1);
  expect_clean(world_);
}

// kSelectCompound but a window that is not the whole PMD: the THP is split
// during collect; the pages outside the window stay mapped as small folios.
TEST_F(MigrateVmaPhases, ThpInUnalignedWindowIsSplitDuringCollect) {
  constexpr uint32_t kTag = 0x30000000;
  constexpr uint64_t kFirst = 256;
  Vaddr buf = map_thp(kTag);
  Pfn base = pmd_folio(buf).pfn();
  expect_clean(world_);

  std::vector<MigratePfn> src(kNH - kFirst), dst(kNH - kFirst);
  MigrateVma args =
      args_for(buf + kFirst * kPageSize, kNH - kFirst, kSelectSystem | kSelectCompound, src, dst);
  std::vector<Folio> dpages(kNH - kFirst);
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.npages, kNH - kFirst);
    EXPECT_EQ(args.cpages, kNH - kFirst);
    EXPECT_TRUE(slots_are(src, 0, kNH - kFirst,
                          [&](uint64_t i) { return page_slot(base + kFirst + i, true); }));
    EXPECT_EQ(pmd_at(buf).kind(), PmdKind::kTable);
    auto pfn = [&](uint64_t i) { return base + i; };
    EXPECT_TRUE(folios_are(world_, 0, kFirst, pfn, FolioState{1, 1, 0, false, 0}));
    EXPECT_TRUE(folios_are(world_, kFirst, kNH, pfn, FolioState{1, 0, 0, true, 0}));
    for (uint64_t i = 0; i < kFirst; i++) {
      Pte pte = pte_at(mm_, buf + i * kPageSize);
      ASSERT_EQ(pte.kind(), PteKind::kPresent) << i;
      ASSERT_EQ(pte.pfn(), base + i) << i;
      ASSERT_TRUE(pte.write()) << i;
    }
    for (uint64_t i = 0; i < dpages.size(); i++) {
      dpages[i] = dev_alloc(Order{0});
      copy(dpages[i], base + kFirst + i, 1);
      dst[i] = MigratePfn::page(dpages[i].pfn());
    }
    migrate_vma_pages(world_, args);
    migrate_vma_finalize(world_, args);
    auto dpfn = [&](uint64_t i) { return dpages[i].pfn(); };
    EXPECT_TRUE(folios_are(world_, 0, dpages.size(), dpfn, FolioState{1, 1, 0, false, 0}));
    EXPECT_TRUE(folios_are(world_, 0, kFirst, pfn, FolioState{1, 1, 0, false, 0}));
  }
  EXPECT_EQ(pte_at(mm_, buf + (kFirst - 1) * kPageSize).kind(), PteKind::kPresent);
  EXPECT_EQ(pte_at(mm_, buf + kFirst * kPageSize).kind(), PteKind::kDevicePrivate);
  EXPECT_EQ(mm_.anon_rss(), 512);
  expect_clean(world_);
  expect_cpu(buf, kNH, kTag);
  expect_clean(world_);
}

// ---------------------------------------------------------------------------
// Compound source, small destinations (§2.5)

// A RAM THP collected whole, given 512 small device pages: pages splits the
// PMD migration entry and the folio (A3 without a fault reference), fills
// slots 1..511 with the head's flags, and finalize maps every page.
TEST_F(MigrateVmaPhases, CompoundSourceSmallDestinationsSplitsMidMigration) {
  constexpr uint32_t kTag = 0x40000000;
  Vaddr buf = map_thp(kTag);
  Folio thp = pmd_folio(buf);
  Pfn base = thp.pfn();
  int64_t nr_ptes = mm_.nr_ptes();
  uint64_t splits = stat(VmEvent::kThpSplitPage);
  expect_clean(world_);
  std::vector<MigratePfn> src(kNH), dst(kNH);
  MigrateVma args = args_for(buf, kNH, kSelectSystem | kSelectCompound, src, dst);
  std::vector<Folio> dpages(kNH);
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.cpages, 1u);
    EXPECT_EQ(state(thp), (FolioState{1, 0, 0, true, 9}));
    for (uint64_t i = 0; i < kNH; i++) {
      dpages[i] = dev_alloc(Order{0});
      copy(dpages[i], base + i, 1);
      dst[i] = MigratePfn::page(dpages[i].pfn());
    }
    migrate_vma_pages(world_, args);
    EXPECT_EQ(stat(VmEvent::kThpSplitPage), splits + 1);
    EXPECT_TRUE(slots_are(src, 0, kNH, [&](uint64_t i) { return page_slot(base + i, true); }));
    auto pfn = [&](uint64_t i) { return base + i; };
    EXPECT_TRUE(folios_are(world_, 0, kNH, pfn, FolioState{1, 0, 0, true, 0}));
    EXPECT_EQ(pmd_at(buf).kind(), PmdKind::kTable);
    for (uint64_t i = 0; i < kNH; i++) {
      Pte pte = pte_at(mm_, buf + i * kPageSize);
      ASSERT_EQ(pte.kind(), PteKind::kMigration) << i;
      ASSERT_EQ(pte.pfn(), base + i) << i;
      ASSERT_EQ(pte.migration_kind(), MigrationKind::kWrite) << i;
    }
    auto dpfn = [&](uint64_t i) { return dpages[i].pfn(); };
    EXPECT_TRUE(folios_are(world_, 0, kNH, dpfn, FolioState{1, 0, 0, true, 0}));
    migrate_vma_finalize(world_, args);
    EXPECT_TRUE(folios_are(world_, 0, kNH, dpfn, FolioState{1, 1, 0, false, 0}));
    for (uint64_t i = 0; i < kNH; i++) {
      Pte pte = pte_at(mm_, buf + i * kPageSize);
      ASSERT_EQ(pte.kind(), PteKind::kDevicePrivate) << i;
      ASSERT_EQ(pte.pfn(), dpages[i].pfn()) << i;
      ASSERT_TRUE(pte.write()) << i;
      ASSERT_EQ(folio_ref_count(folio_of(base + i)), 0) << i;
    }
  }
  EXPECT_EQ(mm_.anon_rss(), 512);
  EXPECT_EQ(mm_.nr_ptes(), nr_ptes);
  expect_clean(world_);
  for (uint64_t i = 0; i < kNH; i++) ASSERT_TRUE(frame_holds(dpages[i].head(), word0(kTag, i)));
  expect_cpu(buf, kNH, kTag);
  expect_clean(world_);
}

// The other direction: a device THP sent back to 512 small RAM pages with
// no fault reference; the device folio is split (the pagemap hears of
// every new folio) and its pages are freed one by one.
TEST_F(MigrateVmaPhases, DeviceThpToSmallRamPagesSplitsWithoutFaultReference) {
  constexpr uint32_t kTag = 0x50000000;
  Vaddr buf = map_thp(kTag);
  to_dev(buf, kNH);
  Folio d = pmd_folio(buf);
  ASSERT_EQ(pmd_at(buf).kind(), PmdKind::kDevicePrivate);
  EXPECT_EQ(state(d), (FolioState{1, 1, 1, false, 9}));
  DevPagemap* pgmap = folio_pgmap(d);
  int64_t pgref = pgmap->ref();
  uint64_t cfree = dev_.cfree();
  expect_clean(world_);
  std::vector<MigratePfn> src(kNH), dst(kNH);
  MigrateVma args = args_for(buf, kNH, kSelectDevicePrivate | kSelectCompound, src, dst);
  std::vector<Folio> rpages(kNH);
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.cpages, 1u);
    EXPECT_TRUE(slots_are(src, 0, 1, page_slot(d.pfn(), true, true)));
    EXPECT_TRUE(slots_are(src, 1, kNH, kEmpty));
    EXPECT_EQ(pmd_at(buf).kind(), PmdKind::kMigration);
    EXPECT_EQ(state(d), (FolioState{1, 0, 0, true, 9}));
    for (uint64_t i = 0; i < kNH; i++) {
      rpages[i] = ram_alloc(Order{0});
      copy(rpages[i], d.pfn() + i, 1);
      dst[i] = MigratePfn::page(rpages[i].pfn());
    }
    migrate_vma_pages(world_, args);
    EXPECT_TRUE(slots_are(src, 0, kNH, [&](uint64_t i) { return page_slot(d.pfn() + i, true); }));
    auto pfn = [&](uint64_t i) { return d.pfn() + i; };
    EXPECT_TRUE(folios_are(world_, 0, kNH, pfn, FolioState{1, 0, 0, true, 0}));
    EXPECT_EQ(pgmap->ref(), pgref);
    migrate_vma_finalize(world_, args);
    auto rpfn = [&](uint64_t i) { return rpages[i].pfn(); };
    EXPECT_TRUE(folios_are(world_, 0, kNH, rpfn, FolioState{1, 1, 0, false, 0}));
    EXPECT_TRUE(folios_are(world_, 0, kNH, pfn, FolioState{0, 0, 0, false, 0}));
  }
  EXPECT_EQ(dev_.cfree(), cfree + kNH);
  EXPECT_EQ(pgmap->ref(), pgref - int64_t(kNH));
  Pte pte = pte_at(mm_, buf + 3 * kPageSize);
  EXPECT_EQ(pte.kind(), PteKind::kPresent);
  EXPECT_TRUE(pte.write());
  EXPECT_EQ(mm_.anon_rss(), 512);
  expect_clean(world_);
  expect_cpu(buf, kNH, kTag);
}

// A device THP collected without kSelectCompound (and no fault): collect
// splits it with split_folio() (the pagemap hears of each of the 512 new
// folios, then once more) and collects the pages one by one. An all-zero
// device page is not replaced by the shared zero page.
TEST_F(MigrateVmaPhases, DeviceThpWithoutCompoundIsSplitDuringCollect) {
  constexpr uint32_t kTag = 0x58000000;
  constexpr uint64_t kZeroPage = 3;
  Vaddr buf = map_thp(kTag);
  Folio d = tdev_.alloc(0, Order{9});
  {
    std::vector<MigratePfn> src(kNH), dst(kNH);
    ReadLock guard(mm_.mmap_lock);
    MigrateVma args = args_for(buf, kNH, kSelectSystem | kSelectCompound, src, dst, tdev_.owner());
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    copy(d, src[0].pfn, kNH);
    page_zero(d.page(kZeroPage));
    dst[0] = MigratePfn::page(d.pfn(), true);
    migrate_vma_pages(world_, args);
    migrate_vma_finalize(world_, args);
  }
  ASSERT_EQ(pmd_at(buf).kind(), PmdKind::kDevicePrivate);
  uint64_t splits = stat(VmEvent::kThpSplitPage);
  expect_clean(world_);
  std::vector<MigratePfn> src(kNH), dst(kNH);
  MigrateVma args = args_for(buf, kNH, kSelectDevicePrivate, src, dst, tdev_.owner());
  std::vector<Folio> rpages(kNH);
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(stat(VmEvent::kThpSplitPage), splits + 1);
    EXPECT_EQ(tdev_.split_calls(), kNH);
    EXPECT_EQ(args.cpages, kNH);
    EXPECT_TRUE(slots_are(src, 0, kNH, [&](uint64_t i) { return page_slot(d.pfn() + i, true); }));
    auto pfn = [&](uint64_t i) { return d.pfn() + i; };
    EXPECT_TRUE(folios_are(world_, 0, kNH, pfn, FolioState{1, 0, 0, true, 0}));
    Pte pte = pte_at(mm_, buf + kZeroPage * kPageSize);
    EXPECT_EQ(pte.kind(), PteKind::kMigration);
    EXPECT_EQ(pte.pfn(), d.pfn() + kZeroPage);
    EXPECT_EQ(tdev_.ref(), 512);
    for (uint64_t i = 0; i < kNH; i++) {
      rpages[i] = ram_alloc(Order{0});
      copy(rpages[i], d.pfn() + i, 1);
      dst[i] = MigratePfn::page(rpages[i].pfn());
    }
    migrate_vma_pages(world_, args);
    migrate_vma_finalize(world_, args);
    auto rpfn = [&](uint64_t i) { return rpages[i].pfn(); };
    EXPECT_TRUE(folios_are(world_, 0, kNH, rpfn, FolioState{1, 1, 0, false, 0}));
  }
  EXPECT_EQ(tdev_.freed(), kNH);
  EXPECT_EQ(tdev_.ref(), 0);
  EXPECT_EQ(pte_at(mm_, buf + kZeroPage * kPageSize).kind(), PteKind::kPresent);
  expect_clean(world_);
  expect_cpu(buf, kZeroPage, kTag);
  expect_cpu_zero(buf + kZeroPage * kPageSize, 1);
  expect_cpu(buf + (kZeroPage + 1) * kPageSize, kNH - kZeroPage - 1, kTag, kZeroPage + 1);
}

// B15: collecting a THP that fork shares migrates it for both processes:
// migrate_device_unmap() turns the child's PMD into a migration entry too,
// and finalize maps the device THP read-only, not exclusive, in both.
TEST_F(MigrateVmaPhases, SharedThpIsUnmappedInEveryProcess) {
  constexpr uint32_t kTag = 0x5c000000;
  Vaddr buf = map_thp(kTag);
  Folio thp = pmd_folio(buf);
  MmStruct& child = dup_mm(mm_);
  EXPECT_EQ(state(thp), (FolioState{2, 2, 2, false, 9}));
  expect_clean(world_);
  std::vector<MigratePfn> src(kNH), dst(kNH);
  MigrateVma args = args_for(buf, kNH, kSelectSystem | kSelectCompound, src, dst);
  Folio d;
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.cpages, 1u);
    EXPECT_TRUE(slots_are(src, 0, 1, page_slot(thp.pfn(), false, true)));
    EXPECT_EQ(pmd_at(buf).migration_kind(), MigrationKind::kRead);
    PmdTable* t = child.pmd_table(buf, MmStruct::Alloc::kNo);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->peek(buf.pmd_index()).entry.kind(), PmdKind::kMigration);
    EXPECT_EQ(state(thp), (FolioState{1, 0, 0, true, 9}));
    d = dev_alloc(Order{9});
    copy(d, thp.pfn(), kNH);
    dst[0] = MigratePfn::page(d.pfn(), true);
    migrate_vma_pages(world_, args);
    migrate_vma_finalize(world_, args);
    EXPECT_EQ(state(d), (FolioState{2, 2, 2, false, 9}));
    EXPECT_FALSE(PageAnonExclusive(d.head()));
    EXPECT_EQ(folio_ref_count(thp), 0);
  }
  for (MmStruct* m : {&mm_, &child}) {
    PmdTable* t = m->pmd_table(buf, MmStruct::Alloc::kNo);
    ASSERT_NE(t, nullptr);
    Pmd pmd = t->peek(buf.pmd_index()).entry;
    EXPECT_EQ(pmd.kind(), PmdKind::kDevicePrivate);
    EXPECT_EQ(pmd.pfn(), d.pfn());
    EXPECT_FALSE(pmd.write());
    EXPECT_EQ(m->anon_rss(), 512);
  }
  expect_clean(world_);
  std::vector<uint32_t> words(kNH * kWordsPerPage);
  ASSERT_TRUE(cpu_read(child, buf, std::as_writable_bytes(std::span(words))).ok());
  for (uint64_t k = 0; k < words.size(); k++) ASSERT_EQ(words[k], kTag + k) << k;
  expect_clean(world_);
  expect_cpu(buf, kNH, kTag);
  expect_clean(world_);
}

// ---------------------------------------------------------------------------
// Folio state carried over

// Collect moves a dirty PTE's dirty bit to the folio (folio_mark_dirty),
// and pages moves the folio state to the destination as
// folio_migrate_mapping()/folio_migrate_flags() do: dirty, and swap-backed
// only if the source was (a MADV_FREE page stays lazily freeable).
TEST_F(MigrateVmaPhases, CollectAndPagesCarryDirtyAndSwapBacked) {
  constexpr uint32_t kTag = 0x0a800000;
  Vaddr buf = map(2 * kPageSize);
  fill(buf, 2, kTag);
  ASSERT_TRUE(do_madvise(mm_, buf + kPageSize, kPageSize, Advice::kFree).ok());
  expect_cpu(buf, 2, kTag);
  Folio dirty = folio_at(mm_, buf);
  Folio lazy = folio_at(mm_, buf + kPageSize);
  ASSERT_TRUE(pte_at(mm_, buf).dirty());
  ASSERT_FALSE(pte_at(mm_, buf + kPageSize).dirty());
  EXPECT_TRUE(dirty.test(kPgSwapBacked));
  EXPECT_FALSE(lazy.test(kPgDirty));
  EXPECT_FALSE(lazy.test(kPgSwapBacked));
  expect_clean(world_);
  std::vector<MigratePfn> src(2), dst(2);
  MigrateVma args = args_for(buf, 2, kSelectSystem, src, dst);
  std::vector<Folio> dpages(2);
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.cpages, 2u);
    EXPECT_TRUE(dirty.test(kPgDirty));
    EXPECT_FALSE(lazy.test(kPgDirty));
    EXPECT_TRUE(pte_at(mm_, buf).dirty());  // the migration entry keeps it too
    for (uint64_t i = 0; i < 2; i++) {
      dpages[i] = dev_alloc(Order{0});
      copy(dpages[i], src[i].pfn, 1);
      dst[i] = MigratePfn::page(dpages[i].pfn());
    }
    migrate_vma_pages(world_, args);
    EXPECT_TRUE(dpages[0].test(kPgDirty));
    EXPECT_TRUE(dpages[0].test(kPgSwapBacked));
    EXPECT_FALSE(dpages[1].test(kPgDirty));
    EXPECT_FALSE(dpages[1].test(kPgSwapBacked));
    migrate_vma_finalize(world_, args);
  }
  expect_clean(world_);
  expect_cpu(buf, 2, kTag);
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim::migrate_vma_test
