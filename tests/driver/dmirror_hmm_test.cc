// The mirror commands of the dmirror device: READ, WRITE, SNAPSHOT,
// EXCLUSIVE and CHECK_EXCLUSIVE, with the counts and bytes the catalogue
// gives (hmm-tests-catalogue §1.5-§1.7, §1.11, §1.12).
#include <gtest/gtest.h>

#include "mm/device_exclusive.h"
#include "migrate_vma_fixture.h"

namespace hmmsim::migrate_vma_test {
namespace {

constexpr uint64_t kN = 64;  // two 32-page fault rounds' worth

class DmirrorHmm : public MigrateVmaFixture {
 protected:
  // The words of `pages` pages of pattern `tag` as bytes.
  static std::vector<std::byte> pattern(uint64_t pages, uint32_t tag) {
    std::vector<uint32_t> words(pages * kWordsPerPage);
    std::iota(words.begin(), words.end(), tag);
    auto bytes = std::as_bytes(std::span(words));
    return std::vector<std::byte>(bytes.begin(), bytes.end());
  }
  static bool holds(const std::vector<std::byte>& data, uint64_t page, uint32_t first) {
    uint32_t w = 0;
    std::memcpy(&w, data.data() + page * kPageSize, 4);
    return w == first;
  }
  static std::vector<uint8_t> bytes_of(const DmirrorCmd& cmd) {
    std::vector<uint8_t> out;
    for (std::byte b : cmd.data) out.push_back(std::to_integer<uint8_t>(b));
    return out;
  }
  std::vector<uint8_t> snapshot(Dmirror& m, Vaddr a, uint64_t npages) {
    DmirrorCmd cmd(a, npages);
    Status st = m.snapshot(cmd);
    EXPECT_TRUE(st.ok());
    EXPECT_EQ(cmd.cpages, npages);
    return bytes_of(cmd);
  }
  // A CPU increment of the first word of every page, which must hold `old`
  // + page * kWordsPerPage before.
  void increment(MmStruct& mm, Vaddr a, uint64_t pages, uint32_t tag) {
    for (uint64_t p = 0; p < pages; p++) {
      Vaddr w = a + p * kPageSize;
      ASSERT_EQ(must_read(mm, w), word0(tag, p));
      must_write(mm, w, word0(tag, p) + 1);
    }
  }
};

// anon_read: untouched pages read as zeros, the rest as written; one fault
// round covers all 64 pages, and the table then maps them read-only.
TEST_F(DmirrorHmm, ReadFaultsOnceAndCopies) {
  Vaddr a = map(kN * kPageSize);
  fill(a + 2 * kPageSize, kN - 2, 100);
  ASSERT_TRUE(do_mprotect(mm_, a, kN * kPageSize, kProtRead).ok());
  EXPECT_EQ(must_read(mm_, a + kPageSize), 0u);
  DmirrorCmd cmd(a, kN);
  ASSERT_TRUE(mirror_.read(cmd).ok());
  EXPECT_EQ(cmd.cpages, kN);
  EXPECT_EQ(cmd.faults, 1u);
  ASSERT_EQ(cmd.data.size(), kN * kPageSize);
  EXPECT_TRUE(holds(cmd.data, 0, 0));
  EXPECT_TRUE(holds(cmd.data, 1, 0));
  EXPECT_TRUE(holds(cmd.data, 2, 100));
  EXPECT_TRUE(holds(cmd.data, kN - 1, word0(100, kN - 3)));
  EXPECT_EQ(mirror_.pt_size(), kN);
  std::optional<DptEntry> e0 = mirror_.pt_lookup(a);
  ASSERT_TRUE(e0);
  EXPECT_EQ(e0->pfn, world_.mem().zero_pfn());
  EXPECT_FALSE(e0->write);
  std::optional<DptEntry> e2 = mirror_.pt_lookup(a + 2 * kPageSize);
  ASSERT_TRUE(e2);
  EXPECT_EQ(e2->pfn, pte_at(mm_, a + 2 * kPageSize).pfn());
  EXPECT_FALSE(e2->write);
  // Everything is in the table now: no fault round.
  DmirrorCmd again(a, kN);
  ASSERT_TRUE(mirror_.read(again).ok());
  EXPECT_EQ(again.faults, 0u);
  EXPECT_EQ(again.cpages, kN);
}

// anon_read_prot: -EFAULT on PROT_NONE, and the caller's block untouched.
TEST_F(DmirrorHmm, ReadOfProtNoneIsEfaultAndCopiesNothing) {
  Vaddr a = map(4 * kPageSize);
  fill(a, 4, 7);
  ASSERT_TRUE(do_mprotect(mm_, a, 4 * kPageSize, kProtNone).ok());
  DmirrorCmd cmd(a, 4);
  cmd.data = pattern(4, 0xdead);
  cmd.cpages = 77;
  Status st = mirror_.read(cmd);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), Errno::kFault);
  EXPECT_EQ(cmd.cpages, 77u);
  EXPECT_EQ(cmd.data, pattern(4, 0xdead));
}

// anon_write: the device's bytes land in anonymous memory.
TEST_F(DmirrorHmm, WriteFaultsOnceAndLandsInMemory) {
  Vaddr a = map(kN * kPageSize);
  DmirrorCmd cmd(a, kN);
  cmd.data = pattern(kN, 40);
  ASSERT_TRUE(mirror_.write(cmd).ok());
  EXPECT_EQ(cmd.cpages, kN);
  EXPECT_EQ(cmd.faults, 1u);
  expect_cpu(a, kN, 40);
  EXPECT_TRUE(mirror_.pt_lookup(a + 5 * kPageSize)->write);
}

// anon_write_prot: READ one page works; WRITE on a read-only Vma is
// -EPERM and writes nothing; after mprotect(RW) it works with one round.
TEST_F(DmirrorHmm, WriteOnReadOnlyIsEpermUntilMprotect) {
  Vaddr a = map(kN * kPageSize, kProtRead);
  DmirrorCmd one(a, 1);
  ASSERT_TRUE(mirror_.read(one).ok());
  EXPECT_EQ(one.cpages, 1u);
  EXPECT_EQ(one.faults, 1u);
  DmirrorCmd cmd(a, kN);
  cmd.data = pattern(kN, 3);
  Status st = mirror_.write(cmd);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), Errno::kPerm);
  expect_cpu_zero(a, kN);
  ASSERT_TRUE(do_mprotect(mm_, a, kN * kPageSize, kProtRead | kProtWrite).ok());
  ASSERT_TRUE(mirror_.write(cmd).ok());
  EXPECT_EQ(cmd.cpages, kN);
  EXPECT_EQ(cmd.faults, 1u);
  expect_cpu(a, kN, 3);
}

// anon_write_huge: one fault round maps a THP; the device writes into it.
TEST_F(DmirrorHmm, WriteIntoThp) {
  Vaddr a = map(kPmdSize);
  ASSERT_TRUE(do_madvise(mm_, a, kPmdSize, Advice::kHugePage).ok());
  DmirrorCmd cmd(a, kNH);
  cmd.data = pattern(kNH, 11);
  ASSERT_TRUE(mirror_.write(cmd).ok());
  EXPECT_EQ(cmd.cpages, kNH);
  EXPECT_EQ(cmd.faults, 1u);
  EXPECT_EQ(pmd_at(a).kind(), PmdKind::kPresent);
  expect_cpu(a, kNH, 11);
}

// The device's own pages are mapped as they are (no migration back).
TEST_F(DmirrorHmm, ReadOfOwnDevicePagesKeepsThemOnTheDevice) {
  Vaddr a = map(4 * kPageSize);
  fill(a, 4, 21);
  to_dev(a, 4);
  for (uint64_t i = 0; i < 4; i++) mirror_.pt_erase(a + i * kPageSize);
  DmirrorCmd cmd(a, 4);
  ASSERT_TRUE(mirror_.read(cmd).ok());
  EXPECT_EQ(cmd.faults, 1u);
  EXPECT_TRUE(holds(cmd.data, 3, word0(21, 3)));
  Pte pte = pte_at(mm_, a + 3 * kPageSize);
  ASSERT_EQ(pte.kind(), PteKind::kDevicePrivate);
  EXPECT_EQ(mirror_.pt_lookup(a + 3 * kPageSize)->pfn, pte.pfn());
}

// An invalidation drops its pages and, a test_hmm.c quirk, one more.
TEST_F(DmirrorHmm, InvalidationDropsOnePagePastTheEnd) {
  Vaddr a = map(4 * kPageSize);
  fill(a, 4, 1);
  DmirrorCmd cmd(a, 4);
  ASSERT_TRUE(mirror_.read(cmd).ok());
  ASSERT_EQ(mirror_.pt_size(), 4u);
  ASSERT_TRUE(do_madvise(mm_, a + kPageSize, kPageSize, Advice::kDontNeed).ok());
  EXPECT_TRUE(mirror_.pt_lookup(a).has_value());
  EXPECT_FALSE(mirror_.pt_lookup(a + kPageSize).has_value());
  EXPECT_FALSE(mirror_.pt_lookup(a + 2 * kPageSize).has_value());
  EXPECT_TRUE(mirror_.pt_lookup(a + 3 * kPageSize).has_value());
}

// snapshot (hmm2): FF FF 11 01 02 22 00 for the seven pages.
TEST_F(DmirrorHmm, SnapshotOfEveryKind) {
  DmirrorDevice dev1(world_, 1, kDevmemChunkSize);
  Dmirror& mirror1 = dev1.open(mm_);
  Vaddr p = map(7 * kPageSize, kProtNone);
  ASSERT_TRUE(do_munmap(mm_, p + kPageSize, kPageSize).ok());
  ASSERT_TRUE(do_mprotect(mm_, p + 2 * kPageSize, kPageSize, kProtRead).ok());
  EXPECT_EQ(must_read(mm_, p + 2 * kPageSize), 0u);
  ASSERT_TRUE(do_mprotect(mm_, p + 3 * kPageSize, 4 * kPageSize, kProtRead | kProtWrite).ok());
  must_write(mm_, p + 3 * kPageSize, 5);
  ASSERT_TRUE(do_mprotect(mm_, p + 3 * kPageSize, kPageSize, kProtRead).ok());
  must_write(mm_, p + 4 * kPageSize, 6);
  to_dev(p + 5 * kPageSize, 1);
  DmirrorCmd cmd(p + 6 * kPageSize, 1);
  ASSERT_TRUE(mirror1.migrate_to_dev(cmd).ok());
  EXPECT_EQ(cmd.cpages, 1u);
  EXPECT_EQ(snapshot(mirror_, p, 7),
            (std::vector<uint8_t>{0xFF, 0xFF, 0x11, 0x01, 0x02, 0x22, 0x00}));
  ASSERT_TRUE(dev1.close(mirror1).ok());
}

// THP snapshots: 0x06 for a writable THP, 0x05 for the huge zero page,
// 0x26 for the device's own PMD and 0xFF for another device's.
TEST_F(DmirrorHmm, SnapshotOfPmdLeaves) {
  DmirrorDevice dev1(world_, 1, 4 * kDevmemChunkSize);
  Dmirror& mirror1 = dev1.open(mm_);
  Vaddr thp = map_thp(2);
  EXPECT_EQ(snapshot(mirror_, thp, 40), std::vector<uint8_t>(40, 0x06));
  Vaddr zero = map(kPmdSize);
  ASSERT_TRUE(do_madvise(mm_, zero, kPmdSize, Advice::kHugePage).ok());
  EXPECT_EQ(must_read(mm_, zero), 0u);
  EXPECT_EQ(snapshot(mirror_, zero, 2), std::vector<uint8_t>(2, 0x05));
  to_dev(thp, kNH);
  EXPECT_EQ(snapshot(mirror_, thp, kNH), std::vector<uint8_t>(kNH, 0x26));
  EXPECT_EQ(snapshot(mirror1, thp, 3), std::vector<uint8_t>(3, 0xFF));
  ASSERT_TRUE(dev1.close(mirror1).ok());
}

// double_map (hmm2): both devices read read-only data; after dev1 takes
// the pages, dev0's READ pulls them back with one fault round.
TEST_F(DmirrorHmm, DoubleMap) {
  DmirrorDevice dev1(world_, 1, kDevmemChunkSize);
  Dmirror& mirror1 = dev1.open(mm_);
  Vaddr a = map(6 * kPageSize);
  fill(a, 6, 33);
  ASSERT_TRUE(do_mprotect(mm_, a, 6 * kPageSize, kProtRead).ok());
  for (Dmirror* m : {&mirror_, &mirror1}) {
    DmirrorCmd cmd(a, 6);
    ASSERT_TRUE(m->read(cmd).ok());
    EXPECT_EQ(cmd.cpages, 6u);
    EXPECT_EQ(cmd.faults, 1u);
    EXPECT_TRUE(holds(cmd.data, 5, word0(33, 5)));
  }
  DmirrorCmd mig(a, 6);
  ASSERT_TRUE(mirror1.migrate_to_dev(mig).ok());
  EXPECT_EQ(mig.cpages, 6u);
  EXPECT_EQ(pte_at(mm_, a).kind(), PteKind::kDevicePrivate);
  DmirrorCmd cmd(a, 6);
  ASSERT_TRUE(mirror_.read(cmd).ok());
  EXPECT_EQ(cmd.cpages, 6u);
  EXPECT_EQ(cmd.faults, 1u);
  EXPECT_TRUE(holds(cmd.data, 5, word0(33, 5)));
  EXPECT_EQ(pte_at(mm_, a).kind(), PteKind::kPresent);
  ASSERT_TRUE(dev1.close(mirror1).ok());
}

// exclusive: EXCLUSIVE reads the data back through atomic entries; CPU
// accesses take every page back and CHECK_EXCLUSIVE then says 0.
TEST_F(DmirrorHmm, ExclusiveLifecycle) {
  Vaddr a = map(kN * kPageSize);
  fill(a, kN, 50);
  Folio f0 = folio_at(mm_, a);
  DmirrorCmd cmd(a, kN);
  ASSERT_TRUE(mirror_.exclusive(cmd).ok());
  EXPECT_EQ(cmd.cpages, kN);
  EXPECT_TRUE(holds(cmd.data, kN - 1, word0(50, kN - 1)));
  Pte pte = pte_at(mm_, a);
  ASSERT_EQ(pte.kind(), PteKind::kDeviceExclusive);
  EXPECT_EQ(pte.pfn(), f0.pfn());
  EXPECT_EQ(state(f0), (FolioState{1, 1, 0, false, 0}));
  EXPECT_TRUE(mirror_.pt_lookup(a)->atomic);
  DmirrorCmd check(a, kN);
  Status busy = mirror_.check_exclusive(check);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error(), Errno::kPerm);
  expect_clean(world_);
  increment(mm_, a, kN, 50);
  pte = pte_at(mm_, a);
  EXPECT_EQ(pte.kind(), PteKind::kPresent);
  EXPECT_TRUE(pte.write());
  EXPECT_FALSE(mirror_.pt_lookup(a).has_value());
  ASSERT_TRUE(mirror_.check_exclusive(check).ok());
  EXPECT_EQ(check.cpages, 0u);
}

// exclusive_mprotect: after mprotect(RO) a device WRITE is -EPERM, and the
// restored PTE is read-only.
TEST_F(DmirrorHmm, ExclusiveThenMprotectReadOnly) {
  Vaddr a = map(4 * kPageSize);
  fill(a, 4, 60);
  DmirrorCmd cmd(a, 4);
  ASSERT_TRUE(mirror_.exclusive(cmd).ok());
  ASSERT_TRUE(do_mprotect(mm_, a, 4 * kPageSize, kProtRead).ok());
  EXPECT_EQ(pte_at(mm_, a).kind(), PteKind::kDeviceExclusive);
  EXPECT_EQ(mirror_.pt_size(), 0u);
  DmirrorCmd w(a, 4);
  w.data = pattern(4, 1);
  Status st = mirror_.write(w);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), Errno::kPerm);
  EXPECT_EQ(must_read(mm_, a), 60u);
  Pte pte = pte_at(mm_, a);
  EXPECT_EQ(pte.kind(), PteKind::kPresent);
  EXPECT_FALSE(pte.write());
}

// exclusive_cow: fork restores the parent's PTEs and shares them
// read-only; each side then increments its own copy.
TEST_F(DmirrorHmm, ExclusiveThenFork) {
  Vaddr a = map(4 * kPageSize);
  fill(a, 4, 70);
  DmirrorCmd cmd(a, 4);
  ASSERT_TRUE(mirror_.exclusive(cmd).ok());
  MmStruct& child = dup_mm(mm_);
  Pte parent_pte = pte_at(mm_, a);
  EXPECT_EQ(parent_pte.kind(), PteKind::kPresent);
  EXPECT_FALSE(parent_pte.write());
  EXPECT_EQ(pte_at(child, a), pte_at(mm_, a).with_young(false));
  EXPECT_EQ(state(folio_at(mm_, a)), (FolioState{2, 2, 0, false, 0}));
  EXPECT_EQ(mirror_.pt_size(), 0u);
  expect_clean(world_);
  increment(child, a, 4, 70);
  increment(mm_, a, 4, 70);
  EXPECT_EQ(must_read(child, a), 71u);
  EXPECT_EQ(must_read(mm_, a), 71u);
  EXPECT_NE(pte_at(child, a).pfn(), pte_at(mm_, a).pfn());
  exit_mmap(child);
}

// A mirror outlives its process: after exit every command fails with the
// errno the driver gives when mmget_not_zero() fails (-EFAULT for the
// faulting READ/WRITE, -EINVAL for the others), and close still works.
// The mirror keeps no pointer to the dead address space (ASan checks).
TEST_F(DmirrorHmm, CommandsAfterTheProcessExited) {
  MmStruct& child = dup_mm(mm_);
  Dmirror& m = dev_.open(child);
  EXPECT_EQ(m.pid(), child.pid());
  Vaddr a = map(4 * kPageSize);
  exit_mmap(child);
  auto err = [&](auto cmd_fn) {
    DmirrorCmd cmd(a, 4);
    Status st = (m.*cmd_fn)(cmd);
    return st.ok() ? Errno{} : st.error();
  };
  EXPECT_EQ(err(&Dmirror::read), Errno::kFault);
  EXPECT_EQ(err(&Dmirror::write), Errno::kFault);
  EXPECT_EQ(err(&Dmirror::snapshot), Errno::kInval);
  EXPECT_EQ(err(&Dmirror::exclusive), Errno::kInval);
  EXPECT_EQ(err(&Dmirror::migrate_to_dev), Errno::kInval);
  EXPECT_EQ(err(&Dmirror::migrate_to_sys), Errno::kInval);
  EXPECT_TRUE(dev_.close(m).ok());
  expect_clean(world_);
}

// A PMD-mapped THP is split to PTEs first; the folio stays whole.
TEST_F(DmirrorHmm, ExclusiveSplitsThePmdNotTheFolio) {
  Vaddr a = map_thp(80);
  Folio thp = pmd_folio(a);
  DmirrorCmd cmd(a + 3 * kPageSize, 2);
  ASSERT_TRUE(mirror_.exclusive(cmd).ok());
  EXPECT_EQ(pmd_at(a).kind(), PmdKind::kTable);
  EXPECT_EQ(pte_at(mm_, a + 3 * kPageSize).kind(), PteKind::kDeviceExclusive);
  EXPECT_EQ(pte_at(mm_, a + 5 * kPageSize).kind(), PteKind::kPresent);
  EXPECT_EQ(thp.order().v, 9u);
  EXPECT_EQ(state(thp), (FolioState{512, 512, 0, false, 9}));
  expect_clean(world_);
  EXPECT_EQ(must_read(mm_, a + 4 * kPageSize), word0(80, 4));
  EXPECT_EQ(pte_at(mm_, a + 4 * kPageSize).kind(), PteKind::kPresent);
}

// A CPU read alone takes an exclusive page back, writable again (the
// page is still anon-exclusive and the Vma writable). Its invalidation
// also drops the next page's atomic entry (the one-page-past-the-end
// quirk), although that page stays device-exclusive.
TEST_F(DmirrorHmm, CpuReadRestoresAWritablePte) {
  Vaddr a = map(2 * kPageSize);
  fill(a, 2, 85);
  DmirrorCmd cmd(a, 2);
  ASSERT_TRUE(mirror_.exclusive(cmd).ok());
  EXPECT_EQ(must_read(mm_, a), 85u);
  Pte pte = pte_at(mm_, a);
  EXPECT_EQ(pte.kind(), PteKind::kPresent);
  EXPECT_TRUE(pte.write());
  EXPECT_FALSE(mirror_.pt_lookup(a).has_value());
  EXPECT_FALSE(mirror_.pt_lookup(a + kPageSize).has_value());
  EXPECT_EQ(pte_at(mm_, a + kPageSize).kind(), PteKind::kDeviceExclusive);
  DmirrorCmd check(a, 2);
  EXPECT_TRUE(mirror_.check_exclusive(check).ok());
}

// Migrating a neighbour in the same (PTE-mapped) THP splits the folio:
// try_to_migrate turns the device-exclusive entry into a writable
// migration entry like the PTE it stands for, and it comes back present.
// The exclusive page itself is not collected, so it stays in RAM.
TEST_F(DmirrorHmm, SplittingAFolioWithAnExclusivePage) {
  Vaddr a = map_thp(95);
  DmirrorCmd excl(a, 1);
  ASSERT_TRUE(mirror_.exclusive(excl).ok());
  to_dev(a + kPageSize, 2);
  EXPECT_EQ(pte_at(mm_, a + kPageSize).kind(), PteKind::kDevicePrivate);
  Pte pte = pte_at(mm_, a);
  EXPECT_EQ(pte.kind(), PteKind::kPresent);
  EXPECT_TRUE(pte.write());
  EXPECT_EQ(folio_at(mm_, a).order().v, 0u);
  expect_clean(world_);
  expect_cpu(a, 4, 95);
}

// EXCLUSIVE in a read-only Vma: GUP for write fails with -EFAULT.
TEST_F(DmirrorHmm, ExclusiveOnReadOnlyIsEfault) {
  Vaddr a = map(2 * kPageSize, kProtRead);
  DmirrorCmd cmd(a, 2);
  Status st = mirror_.exclusive(cmd);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), Errno::kFault);
}

// make_device_exclusive() gives the page locked and referenced, and the
// MMU_NOTIFY_EXCLUSIVE carries the owner.
TEST_F(DmirrorHmm, MakeDeviceExclusiveReturnsLockedReferencedFolio) {
  Vaddr a = map(kPageSize);
  fill(a, 1, 90);
  Folio f = folio_at(mm_, a);
  {
    ReadLock guard(mm_.mmap_lock);
    Result<Pfn> page = make_device_exclusive(mm_, a, dev_.owner());
    ASSERT_TRUE(page.ok());
    EXPECT_EQ(*page, f.pfn());
  }
  EXPECT_EQ(state(f), (FolioState{2, 1, 0, true, 0}));
  folio_unlock(f);
  folio_put(f);
  EXPECT_EQ(state(f), (FolioState{1, 1, 0, false, 0}));
  ASSERT_TRUE(do_munmap(mm_, a, kPageSize).ok());
}

}  // namespace
}  // namespace hmmsim::migrate_vma_test
