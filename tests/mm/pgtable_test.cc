// Tests of page-table entries and tables (src/mm/pgtable.cc): the closed set
// of PTE and PMD kinds, their predicates and printed form, and the entries
// the fault path actually installs.
//
// The value tests build no World: an entry is a plain value, and there is
// nothing for the invariant checker to look at.
#include "mm/pgtable.h"

#include <gtest/gtest.h>

#include "mm/internal.h"
#include "support/mm_fixture.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

constexpr EntryBits kWriteDirtyYoung{.write = true, .dirty = true, .young = true};

// The default and none() entries are empty: nothing present, no pfn.
TEST(Pte, NoneIsEmpty) {
  for (const Pte& pte : {Pte(), Pte::none()}) {
    EXPECT_EQ(pte.kind(), PteKind::kNone);
    EXPECT_TRUE(pte.is_none());
    EXPECT_FALSE(pte.is_present());
    EXPECT_FALSE(pte.is_migration());
    EXPECT_FALSE(pte.maps_folio());
    EXPECT_FALSE(pte.has_pfn());
    EXPECT_FALSE(pte.write());
    EXPECT_EQ(pte.describe(), "none");
  }
  EXPECT_TRUE(Pte() == Pte::none());
}

// The zero-page PTE is present for the CPU but maps no folio and names no pfn.
TEST(Pte, ZeroPageIsPresentWithoutFolio) {
  Pte pte = Pte::zero_page();
  EXPECT_EQ(pte.kind(), PteKind::kZero);
  EXPECT_TRUE(pte.is_present());
  EXPECT_FALSE(pte.is_none());
  EXPECT_FALSE(pte.maps_folio());
  EXPECT_FALSE(pte.has_pfn());
  EXPECT_FALSE(pte.write());
  EXPECT_EQ(pte.describe(), "zero-page");
}

// A present entry carries its pfn and its write/dirty/young bits.
TEST(Pte, PresentCarriesPfnAndBits) {
  Pte pte = Pte::present(Pfn{0x1234}, kWriteDirtyYoung);
  EXPECT_EQ(pte.kind(), PteKind::kPresent);
  EXPECT_TRUE(pte.is_present());
  EXPECT_TRUE(pte.maps_folio());
  EXPECT_TRUE(pte.has_pfn());
  EXPECT_FALSE(pte.is_migration());
  EXPECT_EQ(pte.pfn(), Pfn{0x1234});
  EXPECT_TRUE(pte.write());
  EXPECT_TRUE(pte.dirty());
  EXPECT_TRUE(pte.young());
  EXPECT_FALSE(pte.soft_dirty());
  EXPECT_EQ(pte.describe(), "present pfn=0x1234 wdy");
  EXPECT_EQ(Pte::present(Pfn{7}, {}).describe(), "present pfn=0x7 r");
}

// with_write/with_dirty/with_young change one bit and keep the rest.
TEST(Pte, WithBitsChangeOneBit) {
  Pte pte = Pte::present(Pfn{0x10}, kWriteDirtyYoung);
  Pte ro = pte.with_write(false);
  EXPECT_FALSE(ro.write());
  EXPECT_TRUE(ro.dirty());
  EXPECT_TRUE(ro.young());
  EXPECT_EQ(ro.pfn(), pte.pfn());
  EXPECT_FALSE(ro == pte);
  EXPECT_TRUE(ro.with_write(true) == pte);
  Pte old = pte.with_young(false);
  EXPECT_FALSE(old.young());
  EXPECT_TRUE(old.write());
  EXPECT_TRUE(old.dirty());
  Pte clean = pte.with_dirty(false);
  EXPECT_FALSE(clean.dirty());
  EXPECT_TRUE(clean.write());
  EXPECT_EQ(clean.describe(), "present pfn=0x10 wy");
}

// Migration entries name a pfn, map nothing, are never writable and keep their kind.
TEST(Pte, MigrationKinds) {
  Pte w = Pte::migration(Pfn{0x20}, MigrationKind::kWrite, kWriteDirtyYoung);
  EXPECT_EQ(w.kind(), PteKind::kMigration);
  EXPECT_TRUE(w.is_migration());
  EXPECT_FALSE(w.is_present());
  EXPECT_FALSE(w.maps_folio());
  EXPECT_TRUE(w.has_pfn());
  EXPECT_FALSE(w.write()) << "a migration entry is not a writable mapping";
  EXPECT_TRUE(w.dirty());
  EXPECT_TRUE(w.young());
  EXPECT_EQ(w.migration_kind(), MigrationKind::kWrite);
  EXPECT_EQ(w.describe(), "migration-write pfn=0x20");

  Pte rx = Pte::migration(Pfn{0x20}, MigrationKind::kReadExclusive);
  EXPECT_EQ(rx.migration_kind(), MigrationKind::kReadExclusive);
  EXPECT_EQ(rx.describe(), "migration-read-exclusive pfn=0x20");
  Pte r = Pte::migration(Pfn{0x20}, MigrationKind::kRead);
  EXPECT_EQ(r.migration_kind(), MigrationKind::kRead);
  EXPECT_EQ(r.describe(), "migration-read pfn=0x20");
  EXPECT_FALSE(r == rx) << "entries of different migration kinds differ";
  EXPECT_FALSE(rx == w.with_dirty(false).with_young(false));
}

// Device-private and device-exclusive PTEs map a folio without being present.
TEST(Pte, DeviceEntriesMapFolios) {
  Pte dw = Pte::device_private(Pfn{0x40}, true);
  EXPECT_EQ(dw.kind(), PteKind::kDevicePrivate);
  EXPECT_TRUE(dw.maps_folio());
  EXPECT_TRUE(dw.has_pfn());
  EXPECT_FALSE(dw.is_present());
  EXPECT_TRUE(dw.write());
  EXPECT_EQ(dw.describe(), "device-private-write pfn=0x40");
  Pte dr = dw.with_write(false);
  EXPECT_FALSE(dr.write());
  EXPECT_EQ(dr.describe(), "device-private-read pfn=0x40");
  EXPECT_TRUE(dr == Pte::device_private(Pfn{0x40}, false));

  Pte dx = Pte::device_exclusive(Pfn{0x41});
  EXPECT_EQ(dx.kind(), PteKind::kDeviceExclusive);
  EXPECT_TRUE(dx.maps_folio());
  EXPECT_FALSE(dx.is_present());
  EXPECT_FALSE(dx.write());
  EXPECT_EQ(dx.describe(), "device-exclusive pfn=0x41");
}

// with_write on an entry that maps no memory is a model bug and aborts.
TEST(Pte, WithWriteOnNonMappingEntryAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH((void)Pte::zero_page().with_write(true), "with_write on a zero pte");
  EXPECT_DEATH((void)Pte::migration(Pfn{1}, MigrationKind::kRead).with_write(true),
               "with_write on a migration pte");
}

// Every PTE kind has a name.
TEST(Pte, KindNames) {
  EXPECT_EQ(pte_kind_name(PteKind::kNone), "none");
  EXPECT_EQ(pte_kind_name(PteKind::kPresent), "present");
  EXPECT_EQ(pte_kind_name(PteKind::kZero), "zero");
  EXPECT_EQ(pte_kind_name(PteKind::kMigration), "migration");
  EXPECT_EQ(pte_kind_name(PteKind::kDevicePrivate), "device-private");
  EXPECT_EQ(pte_kind_name(PteKind::kDeviceExclusive), "device-exclusive");
}

// PMD kinds: none/table are not huge, leaves are; present and device-private map folios.
TEST(Pmd, KindsAndPredicates) {
  Pmd none = Pmd::none();
  EXPECT_TRUE(none.is_none());
  EXPECT_FALSE(none.is_huge());
  EXPECT_FALSE(none.has_pfn());
  EXPECT_EQ(none.describe(), "none");
  EXPECT_EQ(Pmd().kind(), PmdKind::kNone);

  Pmd table = Pmd::table();
  EXPECT_TRUE(table.is_table());
  EXPECT_FALSE(table.is_huge());
  EXPECT_FALSE(table.maps_folio());
  EXPECT_EQ(table.describe(), "table");

  Pmd zero = Pmd::huge_zero();
  EXPECT_TRUE(zero.is_huge());
  EXPECT_FALSE(zero.maps_folio());
  EXPECT_FALSE(zero.has_pfn());
  EXPECT_EQ(zero.describe(), "huge-zero");

  Pmd thp = Pmd::present(Pfn{0x200}, kWriteDirtyYoung);
  EXPECT_TRUE(thp.is_huge());
  EXPECT_TRUE(thp.maps_folio());
  EXPECT_TRUE(thp.has_pfn());
  EXPECT_TRUE(thp.write());
  EXPECT_EQ(thp.pfn(), Pfn{0x200});
  EXPECT_EQ(thp.describe(), "present-huge pfn=0x200 wdy");
  EXPECT_FALSE(thp.with_write(false).write());
  EXPECT_TRUE(thp.with_write(false).dirty());

  Pmd mig = Pmd::migration(Pfn{0x200}, MigrationKind::kReadExclusive, kWriteDirtyYoung);
  EXPECT_TRUE(mig.is_huge());
  EXPECT_FALSE(mig.maps_folio());
  EXPECT_TRUE(mig.has_pfn());
  EXPECT_FALSE(mig.write());
  EXPECT_EQ(mig.migration_kind(), MigrationKind::kReadExclusive);
  EXPECT_EQ(mig.describe(), "migration-read-exclusive pfn=0x200");

  Pmd dev = Pmd::device_private(Pfn{0x400}, true);
  EXPECT_TRUE(dev.is_huge());
  EXPECT_TRUE(dev.maps_folio());
  EXPECT_TRUE(dev.write());
  EXPECT_EQ(dev.describe(), "device-private-write pfn=0x400");
  EXPECT_EQ(dev.with_write(false).describe(), "device-private-read pfn=0x400");
}

// Every PMD kind has a name.
TEST(Pmd, KindNames) {
  EXPECT_EQ(pmd_kind_name(PmdKind::kNone), "none");
  EXPECT_EQ(pmd_kind_name(PmdKind::kTable), "table");
  EXPECT_EQ(pmd_kind_name(PmdKind::kPresent), "present");
  EXPECT_EQ(pmd_kind_name(PmdKind::kHugeZero), "huge-zero");
  EXPECT_EQ(pmd_kind_name(PmdKind::kMigration), "migration");
  EXPECT_EQ(pmd_kind_name(PmdKind::kDevicePrivate), "device-private");
}

// A PTE table starts empty, and is empty again once its entries are none.
TEST(PteTable, EmptyTracksEntries) {
  NativeScheduler sched;
  PteTable table(sched);
  EXPECT_TRUE(table.empty());
  {
    MutexLock guard(table.ptl);
    table.set(5, Pte::zero_page());
    EXPECT_EQ(table.get(5).kind(), PteKind::kZero);
    EXPECT_EQ(table.get(4).kind(), PteKind::kNone);
  }
  EXPECT_FALSE(table.empty());
  EXPECT_EQ(table.peek(5).kind(), PteKind::kZero);
  {
    MutexLock guard(table.ptl);
    table.set(5, Pte::none());
  }
  EXPECT_TRUE(table.empty());
}

class PageTable : public MmTest {};

// Faults install a zero-page PTE on read and a young, dirty, writable one on write.
TEST_F(PageTable, FaultsInstallExpectedEntries) {
  Vaddr addr = map(2);
  EXPECT_EQ(must_read(mm_, addr), 0u);
  Pte zero = pte_at(mm_, addr);
  EXPECT_EQ(zero.kind(), PteKind::kZero);
  must_write(mm_, addr + kPageSize, 5);
  Pte pte = pte_at(mm_, addr + kPageSize);
  EXPECT_EQ(pte.kind(), PteKind::kPresent);
  EXPECT_TRUE(pte.write());
  EXPECT_TRUE(pte.dirty());
  EXPECT_TRUE(pte.young());
  Folio folio = pte_folio(world_, pte);
  EXPECT_EQ(folio, folio_at(mm_, addr + kPageSize));
  EXPECT_EQ(folio.pfn(), pte.pfn());
  EXPECT_EQ(mm_.nr_ptes(), 1);
  PmdTable* pmdt = mm_.pmd_table(addr, MmStruct::Alloc::kNo);
  ASSERT_NE(pmdt, nullptr);
  EXPECT_EQ(pmdt->peek(addr.pmd_index()).entry.kind(), PmdKind::kTable);
  EXPECT_NE(pmdt->peek(addr.pmd_index()).table, nullptr);
  EXPECT_EQ(pmdt->peek(addr.pmd_index()).deposit, nullptr);
  expect_clean(world_);
}

// Addresses decompose into 9-bit table indexes above the 12-bit offset.
TEST(Vaddr, TableIndexes) {
  Vaddr a{(uint64_t{3} << kPgdShift) | (uint64_t{5} << kPudShift) | (uint64_t{7} << kPmdShift) |
          (uint64_t{11} << kPageShift) | 0x123};
  EXPECT_EQ(a.pgd_index(), 3u);
  EXPECT_EQ(a.pud_index(), 5u);
  EXPECT_EQ(a.pmd_index(), 7u);
  EXPECT_EQ(a.pte_index(), 11u);
  EXPECT_FALSE(a.page_aligned());
  EXPECT_EQ(a.page_down().v, a.v - 0x123);
  EXPECT_EQ(a.pmd_down().v % kPmdSize, 0u);
  EXPECT_EQ(a.pmd_up().v, a.pmd_down().v + kPmdSize);
}

}  // namespace
}  // namespace hmmsim
