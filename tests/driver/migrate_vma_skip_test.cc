// What migrate_vma_setup() does not migrate: folios locked or isolated by
// somebody else, folios with unexplained references, device pages of
// another owner or without kSelectDevicePrivate; and the bad input it
// refuses with -EINVAL before touching anything.
// The checker runs whenever the world is quiescent: before setup and after
// finalize, never in between, where the migrating folios are legitimately
// locked.
#include "driver/migrate_vma_fixture.h"

namespace hmmsim::migrate_vma_test {
namespace {

using MigrateVmaSkip = MigrateVmaFixture;

// ---------------------------------------------------------------------------
// Entries that are not migrated

// A folio locked by somebody else is skipped by collect (folio_trylock) and
// left intact: one small page, then a whole THP.
TEST_F(MigrateVmaSkip, FolioLockedBySomebodyElseIsSkipped) {
  constexpr uint32_t kTag = 0x0a000000;
  Vaddr buf = map(8 * kPageSize);
  fill(buf, 8, kTag);
  Folio locked = folio_at(mm_, buf + 3 * kPageSize);
  expect_clean(world_);
  ASSERT_TRUE(folio_trylock(locked));
  std::vector<MigratePfn> src(kNH), dst(kNH);
  {
    ReadLock guard(mm_.mmap_lock);
    MigrateVma args = args_for(buf, 8, kSelectSystem, src, dst);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.npages, 8u);
    EXPECT_EQ(args.cpages, 7u);
    EXPECT_TRUE(slots_are(src, 3, 4, kEmpty));
    for (uint64_t i = 0; i < 8; i++) {
      if (i == 3) continue;
      ASSERT_TRUE(
          slots_are(src, i, i + 1, page_slot(folio_at(mm_, buf + i * kPageSize).pfn(), true)));
      Folio dp = dev_alloc(Order{0});
      copy(dp, src[i].pfn, 1);
      dst[i] = MigratePfn::page(dp.pfn());
    }
    Pte pte = pte_at(mm_, buf + 3 * kPageSize);
    EXPECT_EQ(pte.kind(), PteKind::kPresent);
    EXPECT_EQ(pte.pfn(), locked.pfn());
    EXPECT_EQ(state(locked), (FolioState{1, 1, 0, true, 0}));
    migrate_vma_pages(world_, args);
    migrate_vma_finalize(world_, args);
    EXPECT_EQ(state(locked), (FolioState{1, 1, 0, true, 0}));
  }
  folio_unlock(locked);
  EXPECT_EQ(pte_at(mm_, buf + 3 * kPageSize).kind(), PteKind::kPresent);
  EXPECT_EQ(pte_at(mm_, buf + 4 * kPageSize).kind(), PteKind::kDevicePrivate);
  expect_clean(world_);
  expect_cpu(buf, 8, kTag);

  Vaddr thp_buf = map_thp(kTag);
  Folio thp = pmd_folio(thp_buf);
  expect_clean(world_);
  ASSERT_TRUE(folio_trylock(thp));
  {
    ReadLock guard(mm_.mmap_lock);
    MigrateVma args = args_for(thp_buf, kNH, kSelectSystem | kSelectCompound, src, dst);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.npages, kNH);
    EXPECT_EQ(args.cpages, 0u);
    EXPECT_TRUE(slots_are(src, 0, kNH, kEmpty));
    EXPECT_EQ(pmd_at(thp_buf).kind(), PmdKind::kPresent);
    EXPECT_EQ(state(thp), (FolioState{1, 1, 1, true, 9}));
    migrate_vma_pages(world_, args);
    migrate_vma_finalize(world_, args);
  }
  folio_unlock(thp);
  expect_clean(world_);
  expect_cpu(thp_buf, kNH, kTag);
}

// A folio with a reference nobody explains is collected, then restored by
// migrate_device_unmap(): the slot is cleared, the entry is back, the
// folio unlocked and back on the LRU with only the extra reference more.
// A folio somebody else has isolated from the LRU is restored the same way
// (folio_isolate_lru fails) and left off the LRU.
TEST_F(MigrateVmaSkip, FolioWithExtraReferenceIsRestoredByUnmap) {
  constexpr uint32_t kTag = 0x0b000000;
  Vaddr buf = map(8 * kPageSize);
  fill(buf, 8, kTag);
  Folio pinned = folio_at(mm_, buf + 2 * kPageSize);
  Folio isolated = folio_at(mm_, buf + 5 * kPageSize);
  expect_clean(world_);
  folio_get(pinned);
  folio_get(isolated);  // folio_isolate_lru() by somebody else
  isolated.head().clear(kPgLru);
  std::vector<MigratePfn> src(kNH), dst(kNH);
  {
    ReadLock guard(mm_.mmap_lock);
    MigrateVma args = args_for(buf, 8, kSelectSystem, src, dst);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.npages, 8u);
    EXPECT_EQ(args.cpages, 6u);
    EXPECT_TRUE(slots_are(src, 2, 3, kEmpty));
    EXPECT_TRUE(slots_are(src, 5, 6, kEmpty));
    Pte pte = pte_at(mm_, buf + 2 * kPageSize);
    EXPECT_EQ(pte.kind(), PteKind::kPresent);
    EXPECT_EQ(pte.pfn(), pinned.pfn());
    EXPECT_TRUE(pte.write());
    EXPECT_EQ(state(pinned), (FolioState{2, 1, 0, false, 0}));
    EXPECT_TRUE(pinned.test(kPgLru));
    EXPECT_TRUE(PageAnonExclusive(pinned.head()));
    pte = pte_at(mm_, buf + 5 * kPageSize);
    EXPECT_EQ(pte.kind(), PteKind::kPresent);
    EXPECT_EQ(pte.pfn(), isolated.pfn());
    EXPECT_TRUE(pte.write());
    EXPECT_EQ(state(isolated), (FolioState{2, 1, 0, false, 0}));
    EXPECT_FALSE(isolated.test(kPgLru));
    for (uint64_t i = 0; i < 8; i++) {
      if (i == 2 || i == 5) continue;
      EXPECT_TRUE(src[i].migrate && src[i].valid) << i;
      Folio dp = dev_alloc(Order{0});
      copy(dp, src[i].pfn, 1);
      dst[i] = MigratePfn::page(dp.pfn());
    }
    migrate_vma_pages(world_, args);
    migrate_vma_finalize(world_, args);
  }
  folio_put(pinned);
  EXPECT_EQ(state(pinned), (FolioState{1, 1, 0, false, 0}));
  isolated.head().set(kPgLru);  // folio_putback_lru()
  folio_put(isolated);
  EXPECT_EQ(pte_at(mm_, buf + 3 * kPageSize).kind(), PteKind::kDevicePrivate);
  expect_clean(world_);
  expect_cpu(buf, 8, kTag);

  Vaddr thp_buf = map_thp(kTag);
  Folio thp = pmd_folio(thp_buf);
  expect_clean(world_);
  folio_get(thp);
  {
    ReadLock guard(mm_.mmap_lock);
    MigrateVma args = args_for(thp_buf, kNH, kSelectSystem | kSelectCompound, src, dst);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.npages, kNH);
    EXPECT_EQ(args.cpages, 0u);
    EXPECT_TRUE(slots_are(src, 0, kNH, kEmpty));
    Pmd pmd = pmd_at(thp_buf);
    EXPECT_EQ(pmd.kind(), PmdKind::kPresent);
    EXPECT_EQ(pmd.pfn(), thp.pfn());
    EXPECT_TRUE(pmd.write());
    EXPECT_EQ(state(thp), (FolioState{2, 1, 1, false, 9}));
    EXPECT_TRUE(thp.test(kPgLru));
    EXPECT_TRUE(PageAnonExclusive(thp.head()));
    migrate_vma_pages(world_, args);
    migrate_vma_finalize(world_, args);
  }
  folio_put(thp);
  expect_clean(world_);
  expect_cpu(thp_buf, kNH, kTag);
}

// A device page with one unexplained reference passes the unmap check (the
// ZONE_DEVICE slack) but not folio_migrate_mapping(): pages clears MIGRATE
// and finalize restores the device-private entry.
TEST_F(MigrateVmaSkip, DevicePageWithExtraReferenceFailsInPages) {
  constexpr uint32_t kTag = 0x0c000000;
  Vaddr buf = map(2 * kPageSize);
  fill(buf, 2, kTag);
  to_dev(buf, 2);
  Folio d0 = folio_at(mm_, buf);
  Folio d1 = folio_at(mm_, buf + kPageSize);
  ASSERT_TRUE(d0.is_device_private());
  expect_clean(world_);
  folio_get(d0);
  std::vector<MigratePfn> src(2), dst(2);
  std::vector<Folio> rpages(2);
  {
    ReadLock guard(mm_.mmap_lock);
    MigrateVma args = args_for(buf, 2, kSelectDevicePrivate, src, dst);
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.cpages, 2u);
    EXPECT_TRUE(slots_are(src, 0, 1, page_slot(d0.pfn(), true)));
    EXPECT_TRUE(slots_are(src, 1, 2, page_slot(d1.pfn(), true)));
    EXPECT_EQ(state(d0), (FolioState{2, 0, 0, true, 0}));
    for (uint64_t i = 0; i < 2; i++) {
      rpages[i] = ram_alloc(Order{0});
      copy(rpages[i], src[i].pfn, 1);
      dst[i] = MigratePfn::page(rpages[i].pfn());
      // The device forgets what it gives back, as its fault path does
      // (its own MMU_NOTIFY_MIGRATE does not reach its table).
      mirror_.pt_erase(buf + i * kPageSize);
    }
    migrate_vma_pages(world_, args);
    MigratePfn kept = page_slot(d0.pfn(), true);
    kept.migrate = false;
    EXPECT_TRUE(slots_are(src, 0, 1, kept));
    EXPECT_TRUE(slots_are(src, 1, 2, page_slot(d1.pfn(), true)));
    migrate_vma_finalize(world_, args);
    EXPECT_EQ(folio_ref_count(rpages[0]), 0);  // the unused destination is released
    EXPECT_EQ(state(rpages[1]), (FolioState{1, 1, 0, false, 0}));
  }
  Pte pte = pte_at(mm_, buf);
  EXPECT_EQ(pte.kind(), PteKind::kDevicePrivate);
  EXPECT_EQ(pte.pfn(), d0.pfn());
  EXPECT_TRUE(pte.write());
  EXPECT_EQ(state(d0), (FolioState{2, 1, 0, false, 0}));
  folio_put(d0);
  EXPECT_EQ(pte_at(mm_, buf + kPageSize).kind(), PteKind::kPresent);
  expect_clean(world_);
  expect_cpu(buf, 2, kTag);
}

// Device pages are selected only with kSelectDevicePrivate and a matching
// owner; otherwise their slots stay empty and nothing changes.
TEST_F(MigrateVmaSkip, DevicePagesNeedDevicePrivateAndOwner) {
  constexpr uint32_t kTag = 0x0d000000;
  Vaddr small = map(4 * kPageSize);
  fill(small, 4, kTag);
  to_dev(small, 4);
  Vaddr huge = map_thp(kTag);
  to_dev(huge, kNH);
  Folio dthp = pmd_folio(huge);
  Folio dsmall = folio_at(mm_, small);
  ASSERT_TRUE(dsmall.is_device_private());
  expect_clean(world_);
  int other_owner = 0;
  struct Case {
    uint32_t flags;
    const void* owner;
  };
  for (Case c : {Case{kSelectSystem | kSelectCompound, dev_.owner()},
                 Case{kSelectDevicePrivate | kSelectCompound, &other_owner}}) {
    std::vector<MigratePfn> src(kNH), dst(kNH);
    {
      ReadLock guard(mm_.mmap_lock);
      MigrateVma args = args_for(small, 4, c.flags, src, dst, c.owner);
      ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
      EXPECT_EQ(args.npages, 4u);
      EXPECT_EQ(args.cpages, 0u);
      EXPECT_TRUE(slots_are(src, 0, 4, kEmpty));
      EXPECT_EQ(state(dsmall), (FolioState{1, 1, 0, false, 0}));
      migrate_vma_finalize(world_, args);
      args = args_for(huge, kNH, c.flags, src, dst, c.owner);
      ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
      EXPECT_EQ(args.npages, kNH);
      EXPECT_EQ(args.cpages, 0u);
      EXPECT_TRUE(slots_are(src, 0, kNH, kEmpty));
      EXPECT_EQ(pmd_at(huge).kind(), PmdKind::kDevicePrivate);
      EXPECT_EQ(state(dthp), (FolioState{1, 1, 1, false, 9}));
      migrate_vma_finalize(world_, args);
    }
    EXPECT_EQ(pte_at(mm_, small).kind(), PteKind::kDevicePrivate);
    expect_clean(world_);
  }
  expect_cpu(small, 4, kTag);
  expect_cpu(huge, kNH, kTag);
}

// ---------------------------------------------------------------------------
// Bad input

// migrate_vma_setup() refuses bad arguments with -EINVAL before touching
// anything: src/dst, cpages/npages, entries and data stay as they were.
TEST_F(MigrateVmaSkip, SetupRejectsBadInput) {
  constexpr uint32_t kTag = 0x0f800000;
  Vaddr buf = map(4 * kPageSize);
  fill(buf, 4, kTag);
  Folio ram = folio_at(mm_, buf);
  Folio unlocked_dev = dev_alloc(Order{0});
  folio_unlock(unlocked_dev);
  expect_clean(world_);
  const MigratePfn marker{.pfn = Pfn{0x77}, .valid = true, .migrate = true, .write = true};
  std::vector<MigratePfn> src(4, marker), dst(4, marker), small(3, marker);
  auto base_args = [&] {
    MigrateVma a = args_for(buf, 4, kSelectSystem, src, dst);
    a.cpages = 99;
    a.npages = 98;
    return a;
  };
  std::vector<std::function<void(MigrateVma&)>> cases = {
      [](MigrateVma& a) { a.vma = nullptr; },
      [](MigrateVma& a) { a.end = a.start + kPageSize - 1; },  // rounds down to empty
      [](MigrateVma& a) { a.end = a.start + 1; a.start = a.start + 1; },  // empty once rounded
      [](MigrateVma& a) { a.end = a.start; },
      [](MigrateVma& a) { std::swap(a.start, a.end); },
      [](MigrateVma& a) { a.start = a.start - kPageSize; },
      [](MigrateVma& a) { a.end = a.end + kPageSize; },
      [&](MigrateVma& a) { a.src = small; },
      [&](MigrateVma& a) { a.dst = small; },
      [&](MigrateVma& a) { a.fault_page = ram.pfn(); },
      [&](MigrateVma& a) { a.fault_page = unlocked_dev.pfn(); },
      [](MigrateVma& a) { a.fault_page = Pfn{uint64_t{1} << 40}; },
  };
  for (size_t c = 0; c < cases.size(); c++) {
    MigrateVma args = base_args();
    cases[c](args);
    {
      ReadLock guard(mm_.mmap_lock);
      Status st = migrate_vma_setup(world_, args);
      ASSERT_FALSE(st.ok()) << "case " << c;
      EXPECT_EQ(st.error(), Errno::kInval) << "case " << c;
    }
    EXPECT_EQ(args.cpages, 99u) << "case " << c;
    EXPECT_EQ(args.npages, 98u) << "case " << c;
    EXPECT_TRUE(slots_are(src, 0, 4, marker)) << "case " << c;
    EXPECT_TRUE(slots_are(small, 0, 3, marker)) << "case " << c;
  }
  folio_put(unlocked_dev);
  Pte pte = pte_at(mm_, buf);
  EXPECT_EQ(pte.kind(), PteKind::kPresent);
  EXPECT_EQ(pte.pfn(), ram.pfn());
  EXPECT_EQ(state(ram), (FolioState{1, 1, 0, false, 0}));
  expect_clean(world_);
  expect_cpu(buf, 4, kTag);
}

}  // namespace
}  // namespace hmmsim::migrate_vma_test

namespace hmmsim::migrate_vma_test {
namespace {

// Like Linux, migrate_vma_setup rounds an unaligned start and end down to
// whole pages instead of refusing them.
TEST_F(MigrateVmaSkip, SetupRoundsUnalignedRangeDown) {
  Vaddr buf = map(8 * kPageSize);
  fill(buf, 8, 0x0b000000);
  expect_clean(world_);
  std::vector<MigratePfn> src(8), dst(8);
  {
    ReadLock guard(mm_.mmap_lock);
    MigrateVma args = args_for(buf, 4, kSelectSystem, src, dst);
    args.start = buf + 100;
    args.end = buf + 4 * kPageSize + 100;
    ASSERT_TRUE(migrate_vma_setup(world_, args).ok());
    EXPECT_EQ(args.start, buf);
    EXPECT_EQ(args.end, buf + 4 * kPageSize);
    EXPECT_EQ(args.npages, 4u);
    EXPECT_EQ(args.cpages, 4u);
    migrate_vma_finalize(world_, args);  // nothing moves: no destinations
  }
  expect_clean(world_);
  expect_cpu(buf, 8, 0x0b000000);
}

}  // namespace
}  // namespace hmmsim::migrate_vma_test
