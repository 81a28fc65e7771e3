// CPU faults on device-private PMDs driven through migrate_vma_* (A2, A3,
// B14 of kernel-semantics.md), and A4: a partly unmapped device THP
// migrated back, with exact counts at each step.
// The checker runs whenever the world is quiescent: before setup and after
// finalize, never in between, where the migrating folios are legitimately
// locked.
#include "driver/migrate_vma_fixture.h"

namespace hmmsim::migrate_vma_test {
namespace {

using MigrateVmaFault = MigrateVmaFixture;

// ---------------------------------------------------------------------------
// CPU faults on device-private PMDs (A2, A3, B14)

// A2: the PMD fault path seen from inside migrate_to_ram(): the core holds
// the lock and one reference; collect takes one and drops the mapping's;
// finalize maps the RAM THP and leaves the fault folio to the handler,
// whose put frees it.
TEST_F(MigrateVmaFault, PmdFaultMigratesDeviceThpToRamThp) {
  constexpr uint32_t kTag = 0x60000000;
  Vaddr buf = map_thp(kTag);
  Folio d = tdev_.alloc(0, Order{9});
  {
    std::vector<MigratePfn> src(kNH), dst(kNH);
    ReadLock guard(mm_.mmap_lock);
    MigrateVma args = args_for(buf, kNH, kSelectSystem | kSelectCompound, src, dst, tdev_.owner());
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    copy(d, src[0].pfn, kNH);
    dst[0] = MigratePfn::page(d.pfn(), true);
    migrate_vma_pages(world_, args);
    migrate_vma_finalize(world_, args);
  }
  ASSERT_EQ(pmd_at(buf).kind(), PmdKind::kDevicePrivate);
  EXPECT_EQ(state(d), (FolioState{1, 1, 1, false, 9}));
  EXPECT_EQ(tdev_.ref(), 512);
  expect_clean(world_);

  Folio ram;
  int faults = 0;
  tdev_.on_fault = [&](const DeviceFault& vmf) {
    faults++;
    EXPECT_TRUE(vmf.pmd);
    EXPECT_EQ(vmf.page, d.pfn());
    EXPECT_EQ(vmf.address, buf);
    EXPECT_EQ(state(d), (FolioState{2, 1, 1, true, 9}));  // mapping + fault
    std::vector<MigratePfn> src(kNH), dst(kNH);
    MigrateVma args{.vma = vmf.vma,
                    .start = buf,
                    .end = buf + kPmdSize,
                    .src = src,
                    .dst = dst,
                    .pgmap_owner = tdev_.owner(),
                    .flags = kSelectDevicePrivate | kSelectCompound,
                    .fault_page = vmf.page};
    EXPECT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.cpages, 1u);
    EXPECT_TRUE(slots_are(src, 0, 1, page_slot(d.pfn(), true, true)));
    EXPECT_TRUE(slots_are(src, 1, kNH, kEmpty));
    EXPECT_EQ(pmd_at(buf).kind(), PmdKind::kMigration);
    EXPECT_EQ(state(d), (FolioState{2, 0, 0, true, 9}));  // fault + collect
    ram = ram_alloc(Order{9});
    copy(ram, d.pfn(), kNH);
    dst[0] = MigratePfn::page(ram.pfn(), true);
    migrate_vma_pages(world_, args);
    EXPECT_TRUE(slots_are(src, 0, 1, page_slot(d.pfn(), true, true)));
    EXPECT_EQ(state(d), (FolioState{2, 0, 0, true, 9}));
    EXPECT_EQ(state(ram), (FolioState{1, 0, 0, true, 9}));
    migrate_vma_finalize(world_, args);
    EXPECT_EQ(state(d), (FolioState{1, 0, 0, true, 9}));  // the handler's
    EXPECT_EQ(state(ram), (FolioState{1, 1, 1, false, 9}));
    return VmFault::kDone;
  };
  EXPECT_EQ(fault(buf), VmFault::kDone);
  EXPECT_EQ(faults, 1);
  tdev_.on_fault = nullptr;
  EXPECT_EQ(tdev_.freed(), kNH);
  EXPECT_EQ(tdev_.ref(), 0);
  Pmd pmd = pmd_at(buf);
  EXPECT_EQ(pmd.kind(), PmdKind::kPresent);
  EXPECT_EQ(pmd.pfn(), ram.pfn());
  EXPECT_TRUE(pmd.write());
  EXPECT_EQ(state(ram), (FolioState{1, 1, 1, false, 9}));
  expect_clean(world_);
  expect_cpu(buf, kNH, kTag);
}

// B14: a PMD fault whose driver collects without kSelectCompound cannot make
// progress: the collect-time split_folio() fails on the fault reference,
// the range is skipped, and the device-private PMD stays as it was.
TEST_F(MigrateVmaFault, PmdFaultWithoutCompoundMakesNoProgress) {
  Vaddr buf = map(kPmdSize);
  Folio d = tdev_.alloc(0, Order{9});
  zero(d);
  {
    std::vector<MigratePfn> src(kNH), dst(kNH);
    ReadLock guard(mm_.mmap_lock);
    MigrateVma args = args_for(buf, kNH, kSelectSystem | kSelectCompound, src, dst, tdev_.owner());
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    dst[0] = MigratePfn::page(d.pfn(), true);
    migrate_vma_pages(world_, args);
    migrate_vma_finalize(world_, args);
  }
  ASSERT_EQ(pmd_at(buf).kind(), PmdKind::kDevicePrivate);
  uint64_t failed = stat(VmEvent::kThpSplitPageFailed);
  expect_clean(world_);
  tdev_.on_fault = [&](const DeviceFault& vmf) {
    std::vector<MigratePfn> src(kNH), dst(kNH);
    MigrateVma args{.vma = vmf.vma,
                    .start = buf,
                    .end = buf + kPmdSize,
                    .src = src,
                    .dst = dst,
                    .pgmap_owner = tdev_.owner(),
                    .flags = kSelectDevicePrivate,
                    .fault_page = vmf.page};
    EXPECT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.npages, kNH);
    EXPECT_EQ(args.cpages, 0u);
    EXPECT_TRUE(slots_are(src, 0, kNH, kEmpty));
    EXPECT_EQ(pmd_at(buf).kind(), PmdKind::kDevicePrivate);
    EXPECT_EQ(state(d), (FolioState{2, 1, 1, true, 9}));
    migrate_vma_pages(world_, args);
    migrate_vma_finalize(world_, args);
    return VmFault::kDone;
  };
  EXPECT_EQ(fault(buf), VmFault::kDone);
  EXPECT_EQ(stat(VmEvent::kThpSplitPageFailed), failed + 1);
  Pmd pmd = pmd_at(buf);
  EXPECT_EQ(pmd.kind(), PmdKind::kDevicePrivate);
  EXPECT_EQ(pmd.pfn(), d.pfn());
  EXPECT_EQ(state(d), (FolioState{1, 1, 1, false, 9}));
  expect_clean(world_);
  // Give the range back through a full unmap: exit frees the device folio.
  tdev_.on_fault = nullptr;
  ASSERT_TRUE(do_munmap(mm_, buf, kPmdSize).ok());
  EXPECT_EQ(tdev_.ref(), 0);
  expect_clean(world_);
}

// A3 with the fault reference: the dmirror driver can only get small RAM
// pages (FAIL_ALLOC), so migrate_vma_pages must split the device THP; the
// split fails on the fault handler's reference and the PMD comes back as
// 512 device-private PTEs of the still order-9 folio. The next fault (at
// the head page) splits the folio during collect and migrates that page.
TEST_F(MigrateVmaFault, PmdFaultWithSmallDestinationsKeepsFolioThenSplitsOnNextFault) {
  constexpr uint32_t kTag = 0x70000000;
  Vaddr buf = map_thp(kTag);
  to_dev(buf, kNH);
  Folio d = pmd_folio(buf);
  ASSERT_EQ(pmd_at(buf).kind(), PmdKind::kDevicePrivate);
  EXPECT_EQ(state(d), (FolioState{1, 1, 1, false, 9}));
  DevPagemap* pgmap = folio_pgmap(d);
  int64_t pgref = pgmap->ref();
  uint64_t cfree = dev_.cfree();
  int64_t nr_ptes = mm_.nr_ptes();
  fail_alloc();
  expect_clean(world_);

  EXPECT_EQ(fault(buf), VmFault::kDone);
  EXPECT_EQ(pmd_at(buf).kind(), PmdKind::kTable);
  EXPECT_EQ(state(d), (FolioState{512, 512, 0, false, 9}));
  EXPECT_FALSE(d.test(kPgDeferredQueued));
  for (uint64_t i = 0; i < kNH; i++) {
    Pte pte = pte_at(mm_, buf + i * kPageSize);
    ASSERT_EQ(pte.kind(), PteKind::kDevicePrivate) << i;
    ASSERT_EQ(pte.pfn(), d.pfn() + i) << i;
    ASSERT_TRUE(pte.write()) << i;
    ASSERT_TRUE(PageAnonExclusive(d.page(i))) << i;
    ASSERT_EQ(page_pte_mapcount(d.page(i)), 1) << i;
  }
  EXPECT_EQ(mm_.anon_rss(), 512);
  EXPECT_EQ(mm_.nr_ptes(), nr_ptes);
  EXPECT_EQ(dev_.cfree(), cfree);
  expect_clean(world_);

  EXPECT_EQ(fault(buf), VmFault::kDone);
  Pte pte = pte_at(mm_, buf);
  ASSERT_EQ(pte.kind(), PteKind::kPresent);
  EXPECT_TRUE(pte.write());
  Folio r = folio_of(pte.pfn());
  EXPECT_EQ(state(r), (FolioState{1, 1, 0, false, 0}));
  EXPECT_TRUE(frame_holds(r.head(), word0(kTag, 0)));
  EXPECT_EQ(folio_ref_count(d), 0);  // the old head, now order 0, is freed
  auto pfn = [&](uint64_t i) { return d.pfn() + i; };
  EXPECT_TRUE(folios_are(world_, 1, kNH, pfn, FolioState{1, 1, 0, false, 0}));
  for (uint64_t i = 1; i < kNH; i++) {
    ASSERT_EQ(pte_at(mm_, buf + i * kPageSize).kind(), PteKind::kDevicePrivate) << i;
  }
  EXPECT_EQ(dev_.cfree(), cfree + 1);
  EXPECT_EQ(pgmap->ref(), pgref - 1);
  EXPECT_EQ(mm_.anon_rss(), 512);
  expect_clean(world_);
  expect_cpu(buf, kNH, kTag);
  expect_clean(world_);

  // The same two faults from one CPU load: it reads the head page back and
  // leaves the other 511 pages on the device as small folios.
  Vaddr buf2 = map_thp(kTag);
  to_dev(buf2, kNH);
  Folio d2 = pmd_folio(buf2);
  fail_alloc();
  EXPECT_EQ(must_read(mm_, buf2 + 8), kTag + 2);
  EXPECT_EQ(pte_at(mm_, buf2).kind(), PteKind::kPresent);
  EXPECT_EQ(folio_ref_count(d2), 0);
  auto pfn2 = [&](uint64_t i) { return d2.pfn() + i; };
  EXPECT_TRUE(folios_are(world_, 1, kNH, pfn2, FolioState{1, 1, 0, false, 0}));
  EXPECT_EQ(pte_at(mm_, buf2 + kPageSize).kind(), PteKind::kDevicePrivate);
  expect_clean(world_);
  expect_cpu(buf2, kNH, kTag);
  expect_clean(world_);
}

// The same through a tail page: after the first (failed) fault, a PTE fault
// at page 5 splits the folio during collect and moves the fault handler's
// lock and reference to page 5's new folio, which collect then cannot lock
// (the walk's fault folio is still the old head, as in 6.19), so nothing
// moves; the next fault migrates page 5. cpu_read converges.
TEST_F(MigrateVmaFault, TailFaultOnPartlySplitDeviceThpTakesOneMoreFault) {
  constexpr uint32_t kTag = 0x08000000;
  constexpr uint64_t kPage = 5;
  Vaddr buf = map_thp(kTag);
  to_dev(buf, kNH);
  Folio d = pmd_folio(buf);
  uint64_t cfree = dev_.cfree();
  fail_alloc();
  EXPECT_EQ(fault(buf + kPage * kPageSize), VmFault::kDone);
  EXPECT_EQ(state(d), (FolioState{512, 512, 0, false, 9}));
  expect_clean(world_);

  EXPECT_EQ(fault(buf + kPage * kPageSize), VmFault::kDone);
  auto pfn = [&](uint64_t i) { return d.pfn() + i; };
  EXPECT_TRUE(folios_are(world_, 0, kNH, pfn, FolioState{1, 1, 0, false, 0}));
  EXPECT_EQ(pte_at(mm_, buf + kPage * kPageSize).kind(), PteKind::kDevicePrivate);
  EXPECT_EQ(dev_.cfree(), cfree);
  expect_clean(world_);

  EXPECT_EQ(fault(buf + kPage * kPageSize), VmFault::kDone);
  EXPECT_EQ(pte_at(mm_, buf + kPage * kPageSize).kind(), PteKind::kPresent);
  EXPECT_EQ(dev_.cfree(), cfree + 1);
  expect_clean(world_);
  expect_cpu(buf, kNH, kTag);
  expect_clean(world_);
}

// ---------------------------------------------------------------------------
// A4: partial munmap of a device-private PMD, then migrate the rest back

TEST_F(MigrateVmaFault, PartialMunmapOfDevicePmdThenMigrateRestBack) {
  constexpr uint32_t kTag = 0x09000000;
  constexpr uint64_t kFirst = 100;   // the window starts inside the folio
  constexpr uint64_t kMapped = 256;  // pages left after the munmap
  Vaddr buf = map_thp(kTag);
  to_dev(buf, kNH);
  Folio d = pmd_folio(buf);
  Pfn base = d.pfn();
  DevPagemap* pgmap = folio_pgmap(d);
  int64_t pgref = pgmap->ref();
  uint64_t cfree = dev_.cfree();
  int64_t nr_ptes = mm_.nr_ptes();

  ASSERT_TRUE(do_munmap(mm_, buf + kMapped * kPageSize, kPmdSize - kMapped * kPageSize).ok());
  EXPECT_EQ(pmd_at(buf).kind(), PmdKind::kTable);
  EXPECT_EQ(state(d), (FolioState{256, 256, 0, false, 9}));
  EXPECT_FALSE(d.test(kPgDeferredQueued));
  EXPECT_FALSE(d.test(kPgPartiallyMapped));
  for (uint64_t i = 0; i < kNH; i++) {
    ASSERT_EQ(page_pte_mapcount(d.page(i)), i < kMapped ? 1 : 0) << i;
  }
  EXPECT_EQ(mm_.anon_rss(), 256);
  EXPECT_EQ(mm_.nr_ptes(), nr_ptes);
  EXPECT_EQ(dev_.cfree(), cfree);
  expect_clean(world_);

  constexpr uint64_t kN = kMapped - kFirst;
  std::vector<MigratePfn> src(kN), dst(kN);
  MigrateVma args =
      args_for(buf + kFirst * kPageSize, kN, kSelectDevicePrivate | kSelectCompound, src, dst);
  std::vector<Folio> rpages(kN);
  uint64_t splits = stat(VmEvent::kThpSplitPage);
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(stat(VmEvent::kThpSplitPage), splits + 1);
    EXPECT_EQ(args.npages, kN);
    EXPECT_EQ(args.cpages, kN);
    EXPECT_TRUE(
        slots_are(src, 0, kN, [&](uint64_t i) { return page_slot(base + kFirst + i, true); }));
    auto pfn = [&](uint64_t i) { return base + i; };
    EXPECT_TRUE(folios_are(world_, 0, kFirst, pfn, FolioState{1, 1, 0, false, 0}));
    EXPECT_TRUE(folios_are(world_, kFirst, kMapped, pfn, FolioState{1, 0, 0, true, 0}));
    EXPECT_TRUE(folios_are(world_, kMapped, kNH, pfn, FolioState{0, 0, 0, false, 0}));
    EXPECT_EQ(dev_.cfree(), cfree + (kNH - kMapped));  // freed one by one
    EXPECT_EQ(pgmap->ref(), pgref - int64_t(kNH - kMapped));
    for (uint64_t i = 0; i < kMapped; i++) {
      Pte pte = pte_at(mm_, buf + i * kPageSize);
      ASSERT_EQ(pte.kind(), i < kFirst ? PteKind::kDevicePrivate : PteKind::kMigration) << i;
      ASSERT_EQ(pte.pfn(), base + i) << i;
    }
    for (uint64_t i = 0; i < kN; i++) {
      rpages[i] = ram_alloc(Order{0});
      copy(rpages[i], base + kFirst + i, 1);
      dst[i] = MigratePfn::page(rpages[i].pfn());
    }
    migrate_vma_pages(world_, args);
    EXPECT_TRUE(
        slots_are(src, 0, kN, [&](uint64_t i) { return page_slot(base + kFirst + i, true); }));
    migrate_vma_finalize(world_, args);
    auto rpfn = [&](uint64_t i) { return rpages[i].pfn(); };
    EXPECT_TRUE(folios_are(world_, 0, kN, rpfn, FolioState{1, 1, 0, false, 0}));
  }
  EXPECT_EQ(dev_.cfree(), cfree + (kNH - kMapped) + kN);
  EXPECT_EQ(pgmap->ref(), pgref - int64_t(kNH - kMapped + kN));
  EXPECT_EQ(mm_.anon_rss(), 256);
  expect_clean(world_);
  expect_cpu(buf, kMapped, kTag);
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim::migrate_vma_test
