// migrate_vma_* over holes: empty PMD ranges, empty PTEs, zero pages and
// the huge zero page, with compound and small destinations (A1); the
// inserted device-private entries, write iff VM_WRITE, rss, nr_ptes and
// refcounts.
// The checker runs whenever the world is quiescent: before setup and after
// finalize, never in between, where the migrating folios are legitimately
// locked.
#include "driver/migrate_vma_fixture.h"

namespace hmmsim::migrate_vma_test {
namespace {

using MigrateVmaHoles = MigrateVmaFixture;

// ---------------------------------------------------------------------------
// Holes

// A1: an empty PMD-aligned 2 MiB range with kSelectCompound is one compound
// hole; an order-9 device folio is inserted as a device-private PMD
// (writable: VM_WRITE), with a deposit, rss +512 and refcount 2 until
// finalize drops the allocation reference.
TEST_F(MigrateVmaHoles, EmptyPmdRangeIsACompoundHole) {
  Vaddr buf = map(kPmdSize);
  EXPECT_EQ(mm_.nr_ptes(), 0);
  expect_clean(world_);
  std::vector<MigratePfn> src(kNH), dst(kNH);
  MigrateVma args = args_for(buf, kNH, kSelectSystem | kSelectCompound, src, dst);
  Folio d;
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.npages, kNH);
    EXPECT_EQ(args.cpages, 1u);
    EXPECT_TRUE(slots_are(src, 0, 1, kCompoundHole));
    EXPECT_TRUE(slots_are(src, 1, kNH, kEmpty));
    EXPECT_TRUE(pmd_at(buf).is_none());
    d = dev_alloc(Order{9});
    zero(d);
    dst[0] = MigratePfn::page(d.pfn(), true);
    migrate_vma_pages(world_, args);
    EXPECT_TRUE(slots_are(src, 0, 1, kCompoundHole));
    EXPECT_TRUE(slots_are(src, 1, kNH, kEmpty));
    Pmd pmd = pmd_at(buf);
    EXPECT_EQ(pmd.kind(), PmdKind::kDevicePrivate);
    EXPECT_EQ(pmd.pfn(), d.pfn());
    EXPECT_TRUE(pmd.write());
    EXPECT_EQ(state(d), (FolioState{2, 1, 1, true, 9}));
    EXPECT_TRUE(PageAnonExclusive(d.head()));
    EXPECT_EQ(mm_.anon_rss(), 512);
    EXPECT_EQ(mm_.nr_ptes(), 1);  // the deposit
    migrate_vma_finalize(world_, args);
    EXPECT_EQ(state(d), (FolioState{1, 1, 1, false, 9}));
  }
  expect_clean(world_);
  expect_cpu_zero(buf, kNH);
  expect_clean(world_);
}

// The same range without kSelectCompound: 512 holes; small device pages
// are inserted as device-private PTEs in a new PTE table.
TEST_F(MigrateVmaHoles, EmptyRangeWithoutCompoundIsSmallHoles) {
  Vaddr buf = map(kPmdSize);
  expect_clean(world_);
  std::vector<MigratePfn> src(kNH), dst(kNH);
  MigrateVma args = args_for(buf, kNH, kSelectSystem, src, dst);
  std::vector<Folio> dpages(kNH);
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.npages, kNH);
    EXPECT_EQ(args.cpages, kNH);
    EXPECT_TRUE(slots_are(src, 0, kNH, kHole));
    for (uint64_t i = 0; i < kNH; i++) {
      dpages[i] = dev_alloc(Order{0});
      zero(dpages[i]);
      dst[i] = MigratePfn::page(dpages[i].pfn());
    }
    migrate_vma_pages(world_, args);
    EXPECT_TRUE(slots_are(src, 0, kNH, kHole));
    auto dpfn = [&](uint64_t i) { return dpages[i].pfn(); };
    EXPECT_TRUE(folios_are(world_, 0, kNH, dpfn, FolioState{2, 1, 0, true, 0}));
    EXPECT_EQ(mm_.anon_rss(), 512);
    EXPECT_EQ(mm_.nr_ptes(), 1);
    migrate_vma_finalize(world_, args);
    EXPECT_TRUE(folios_are(world_, 0, kNH, dpfn, FolioState{1, 1, 0, false, 0}));
    for (uint64_t i = 0; i < kNH; i++) {
      Pte pte = pte_at(mm_, buf + i * kPageSize);
      ASSERT_EQ(pte.kind(), PteKind::kDevicePrivate);
      ASSERT_EQ(pte.pfn(), dpages[i].pfn());
      ASSERT_TRUE(pte.write());
      ASSERT_TRUE(PageAnonExclusive(dpages[i].head()));
    }
  }
  EXPECT_EQ(pmd_at(buf).kind(), PmdKind::kTable);
  expect_clean(world_);
  expect_cpu_zero(buf, kNH);
  expect_clean(world_);
}

// A compound hole given small destinations: the entry is expanded into 512
// small inserts (COMPOUND cleared, every slot {migrate}).
TEST_F(MigrateVmaHoles, CompoundHoleWithSmallDestinations) {
  Vaddr buf = map(kPmdSize);
  std::vector<MigratePfn> src(kNH), dst(kNH);
  MigrateVma args = args_for(buf, kNH, kSelectSystem | kSelectCompound, src, dst);
  std::vector<Folio> dpages(kNH);
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.cpages, 1u);
    EXPECT_TRUE(slots_are(src, 0, 1, kCompoundHole));
    for (uint64_t i = 0; i < kNH; i++) {
      dpages[i] = dev_alloc(Order{0});
      zero(dpages[i]);
      dst[i] = MigratePfn::page(dpages[i].pfn());
    }
    migrate_vma_pages(world_, args);
    EXPECT_TRUE(slots_are(src, 0, kNH, kHole));
    EXPECT_EQ(pmd_at(buf).kind(), PmdKind::kTable);
    EXPECT_EQ(mm_.anon_rss(), 512);
    EXPECT_EQ(mm_.nr_ptes(), 1);
    migrate_vma_finalize(world_, args);
    auto dpfn = [&](uint64_t i) { return dpages[i].pfn(); };
    EXPECT_TRUE(folios_are(world_, 0, kNH, dpfn, FolioState{1, 1, 0, false, 0}));
  }
  EXPECT_EQ(pte_at(mm_, buf + 511 * kPageSize).kind(), PteKind::kDevicePrivate);
  expect_clean(world_);
  expect_cpu_zero(buf, kNH);
}

// Small holes (collected without kSelectCompound) whose first slot gets an
// order-9 destination: that slot inserts one device-private PMD and keeps
// its {migrate} bits; the other slots have no destination and stop
// migrating (__migrate_device_pages steps one slot at a time here).
TEST_F(MigrateVmaHoles, SmallHolesWithCompoundDestinationInsertOnePmd) {
  Vaddr buf = map(kPmdSize);
  std::vector<MigratePfn> src(kNH), dst(kNH);
  MigrateVma args = args_for(buf, kNH, kSelectSystem, src, dst);
  Folio d;
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.cpages, kNH);
    EXPECT_TRUE(slots_are(src, 0, kNH, kHole));
    d = dev_alloc(Order{9});
    zero(d);
    dst[0] = MigratePfn::page(d.pfn(), true);
    migrate_vma_pages(world_, args);
    EXPECT_TRUE(slots_are(src, 0, 1, kHole));
    EXPECT_TRUE(slots_are(src, 1, kNH, kEmpty));
    Pmd pmd = pmd_at(buf);
    EXPECT_EQ(pmd.kind(), PmdKind::kDevicePrivate);
    EXPECT_EQ(pmd.pfn(), d.pfn());
    EXPECT_EQ(state(d), (FolioState{2, 1, 1, true, 9}));
    EXPECT_EQ(mm_.anon_rss(), 512);
    EXPECT_EQ(mm_.nr_ptes(), 1);
    migrate_vma_finalize(world_, args);
    EXPECT_EQ(state(d), (FolioState{1, 1, 1, false, 9}));
  }
  expect_clean(world_);
  expect_cpu_zero(buf, kNH);
}

// A zero-page PTE is a hole for kSelectSystem ({migrate}, no pfn) and is
// not selected otherwise; inserting replaces it and counts the page in rss.
TEST_F(MigrateVmaHoles, ZeroPagePteIsAHoleForSystem) {
  Vaddr buf = map(4 * kPageSize);
  EXPECT_EQ(must_read(mm_, buf), 0u);
  ASSERT_EQ(pte_at(mm_, buf).kind(), PteKind::kZero);
  EXPECT_EQ(mm_.anon_rss(), 0);
  expect_clean(world_);
  std::vector<MigratePfn> src(4), dst(4);
  {
    ReadLock guard(mm_.mmap_lock);
    MigrateVma dev_only = args_for(buf, 4, kSelectDevicePrivate, src, dst);
    ASSERT_TRUE(migrate_vma_setup(world_, dev_only).ok());
    EXPECT_EQ(dev_only.cpages, 3u);  // pte_none is a hole whatever the flags
    EXPECT_TRUE(slots_are(src, 0, 1, kEmpty));
    EXPECT_TRUE(slots_are(src, 1, 4, kHole));
    migrate_vma_pages(world_, dev_only);
    migrate_vma_finalize(world_, dev_only);
  }
  EXPECT_EQ(pte_at(mm_, buf).kind(), PteKind::kZero);
  expect_clean(world_);
  MigrateVma args = args_for(buf, 4, kSelectSystem, src, dst);
  std::vector<Folio> dpages(4);
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.cpages, 4u);
    EXPECT_TRUE(slots_are(src, 0, 4, kHole));
    EXPECT_EQ(pte_at(mm_, buf).kind(), PteKind::kZero);  // collect leaves it
    for (uint64_t i = 0; i < 4; i++) {
      dpages[i] = dev_alloc(Order{0});
      zero(dpages[i]);
      dst[i] = MigratePfn::page(dpages[i].pfn());
    }
    migrate_vma_pages(world_, args);
    EXPECT_TRUE(slots_are(src, 0, 4, kHole));
    EXPECT_EQ(mm_.anon_rss(), 4);
    migrate_vma_finalize(world_, args);
    auto dpfn = [&](uint64_t i) { return dpages[i].pfn(); };
    EXPECT_TRUE(folios_are(world_, 0, 4, dpfn, FolioState{1, 1, 0, false, 0}));
  }
  Pte pte = pte_at(mm_, buf);
  EXPECT_EQ(pte.kind(), PteKind::kDevicePrivate);
  EXPECT_EQ(pte.pfn(), dpages[0].pfn());
  expect_clean(world_);
  expect_cpu_zero(buf, 4);
}

// Holes of a read-only Vma get read-only device-private entries (write iff
// VM_WRITE), small and compound; a huge zero PMD is a compound hole whose
// deposit the inserted PMD reuses.
TEST_F(MigrateVmaHoles, HolesOfReadOnlyVmaGetReadOnlyEntries) {
  Vaddr small = map(2 * kPageSize, kProtRead);
  Vaddr huge = map(kPmdSize, kProtRead);
  ASSERT_TRUE(do_madvise(mm_, huge, kPmdSize, Advice::kHugePage).ok());
  EXPECT_EQ(must_read(mm_, huge), 0u);
  ASSERT_EQ(pmd_at(huge).kind(), PmdKind::kHugeZero);
  int64_t nr_ptes = mm_.nr_ptes();
  int64_t rss = mm_.anon_rss();
  expect_clean(world_);
  std::vector<MigratePfn> src(kNH), dst(kNH);
  Folio d;
  {
    ReadLock guard(mm_.mmap_lock);
    MigrateVma args = args_for(huge, kNH, kSelectSystem | kSelectCompound, src, dst);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.cpages, 1u);
    EXPECT_TRUE(slots_are(src, 0, 1, kCompoundHole));
    EXPECT_TRUE(slots_are(src, 1, kNH, kEmpty));
    EXPECT_EQ(pmd_at(huge).kind(), PmdKind::kHugeZero);
    d = dev_alloc(Order{9});
    zero(d);
    dst[0] = MigratePfn::page(d.pfn(), true);
    migrate_vma_pages(world_, args);
    Pmd pmd = pmd_at(huge);
    EXPECT_EQ(pmd.kind(), PmdKind::kDevicePrivate);
    EXPECT_FALSE(pmd.write());
    EXPECT_EQ(state(d), (FolioState{2, 1, 1, true, 9}));
    EXPECT_EQ(mm_.nr_ptes(), nr_ptes);  // the huge zero PMD's deposit is reused
    EXPECT_EQ(mm_.anon_rss(), rss + 512);
    migrate_vma_finalize(world_, args);
    EXPECT_EQ(state(d), (FolioState{1, 1, 1, false, 9}));
  }
  std::vector<Folio> dpages(2);
  {
    ReadLock guard(mm_.mmap_lock);
    MigrateVma args = args_for(small, 2, kSelectSystem | kSelectCompound, src, dst);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.cpages, 2u);
    EXPECT_TRUE(slots_are(src, 0, 2, kHole));
    for (uint64_t i = 0; i < 2; i++) {
      dpages[i] = dev_alloc(Order{0});
      zero(dpages[i]);
      dst[i] = MigratePfn::page(dpages[i].pfn());
    }
    migrate_vma_pages(world_, args);
    migrate_vma_finalize(world_, args);
  }
  for (uint64_t i = 0; i < 2; i++) {
    Pte pte = pte_at(mm_, small + i * kPageSize);
    EXPECT_EQ(pte.kind(), PteKind::kDevicePrivate);
    EXPECT_FALSE(pte.write());
    EXPECT_EQ(state(dpages[i]), (FolioState{1, 1, 0, false, 0}));
  }
  EXPECT_EQ(mm_.anon_rss(), rss + 514);
  expect_clean(world_);
  expect_cpu_zero(huge, kNH);
  expect_cpu_zero(small, 2);
  expect_clean(world_);
}

// Small holes over a huge zero PMD: inserting a small page splits the huge
// zero PMD (its deposit becomes the PTE table) and replaces one zero PTE.
TEST_F(MigrateVmaHoles, HugeZeroPmdWithSmallDestinationsIsSplit) {
  Vaddr buf = map(kPmdSize, kProtRead);
  ASSERT_TRUE(do_madvise(mm_, buf, kPmdSize, Advice::kHugePage).ok());
  EXPECT_EQ(must_read(mm_, buf), 0u);
  ASSERT_EQ(pmd_at(buf).kind(), PmdKind::kHugeZero);
  int64_t nr_ptes = mm_.nr_ptes();
  int64_t rss = mm_.anon_rss();
  expect_clean(world_);
  std::vector<MigratePfn> src(4), dst(4);
  MigrateVma args = args_for(buf, 4, kSelectSystem, src, dst);
  std::vector<Folio> dpages(4);
  {
    ReadLock guard(mm_.mmap_lock);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.cpages, 4u);
    EXPECT_TRUE(slots_are(src, 0, 4, kHole));
    EXPECT_EQ(pmd_at(buf).kind(), PmdKind::kHugeZero);
    for (uint64_t i = 0; i < 4; i++) {
      dpages[i] = dev_alloc(Order{0});
      zero(dpages[i]);
      dst[i] = MigratePfn::page(dpages[i].pfn());
    }
    migrate_vma_pages(world_, args);
    EXPECT_TRUE(slots_are(src, 0, 4, kHole));
    EXPECT_EQ(pmd_at(buf).kind(), PmdKind::kTable);
    EXPECT_EQ(mm_.nr_ptes(), nr_ptes);
    EXPECT_EQ(mm_.anon_rss(), rss + 4);
    auto dpfn = [&](uint64_t i) { return dpages[i].pfn(); };
    EXPECT_TRUE(folios_are(world_, 0, 4, dpfn, FolioState{2, 1, 0, true, 0}));
    migrate_vma_finalize(world_, args);
    EXPECT_TRUE(folios_are(world_, 0, 4, dpfn, FolioState{1, 1, 0, false, 0}));
  }
  for (uint64_t i = 0; i < 4; i++) {
    Pte pte = pte_at(mm_, buf + i * kPageSize);
    EXPECT_EQ(pte.kind(), PteKind::kDevicePrivate);
    EXPECT_FALSE(pte.write());
  }
  EXPECT_EQ(pte_at(mm_, buf + 4 * kPageSize).kind(), PteKind::kZero);
  expect_clean(world_);
  expect_cpu_zero(buf, kNH);
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim::migrate_vma_test
