// The migration cases of hmm-tests.c against the dmirror device, with the
// exact values the kernel test asserts, plus the model's own counts.
#include <gtest/gtest.h>

#include "driver/dmirror.h"
#include "mm/huge_memory.h"
#include "mm/internal.h"
#include "support/test_world.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

class Dmirror0 : public ::testing::Test {
 protected:
  Dmirror0() : world_(small_config(128)), dev_(world_, 0, 4 * kDevmemChunkSize) {}
  ~Dmirror0() override {
    exit_all(world_);
  }

  Vaddr map(MmStruct& mm, uint64_t size, uint32_t prot = kProtRead | kProtWrite,
            bool huge = false) {
    Result<Vaddr> a = do_mmap(mm, Vaddr{0}, size, prot, MapFlags::kPrivate, kPmdSize);
    EXPECT_TRUE(a.ok());
    if (huge) {
      EXPECT_TRUE(do_madvise(mm, *a, size, Advice::kHugePage).ok());
    }
    return *a;
  }

  // Word k of [a, a + bytes) holds k + base (the "index" pattern).
  void fill(MmStruct& mm, Vaddr a, uint64_t bytes, uint32_t base = 0) {
    std::vector<uint32_t> words(bytes / 4);
    for (uint64_t i = 0; i < words.size(); i++) words[i] = uint32_t(i) + base;
    ASSERT_TRUE(cpu_write(mm, a, std::as_bytes(std::span(words))).ok());
  }

  // Reads [a, a + bytes) through the CPU and checks the pattern.
  void expect_fill(MmStruct& mm, Vaddr a, uint64_t bytes, uint32_t base = 0) {
    std::vector<std::byte> data(bytes);
    ASSERT_TRUE(cpu_read(mm, a, data).ok());
    expect_words(data, base);
  }

  void expect_words(const std::vector<std::byte>& data, uint32_t base = 0) {
    for (uint64_t i = 0; i < data.size() / 4; i++) {
      uint32_t v;
      std::memcpy(&v, data.data() + i * 4, 4);
      ASSERT_EQ(v, uint32_t(i) + base) << "word " << i;
    }
  }

  Status to_dev(Dmirror& m, Vaddr a, uint64_t npages, DmirrorCmd* out = nullptr) {
    DmirrorCmd cmd(a, npages);
    Status st = m.migrate_to_dev(cmd);
    if (out) *out = cmd;
    return st;
  }

  World world_;
  DmirrorDevice dev_;
};

// hmm.migrate: 2 MiB of small pages go to the device; the device reads
// them back; cpages = npages; every page is a device-private PTE.
TEST_F(Dmirror0, Migrate) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map(mm, kPmdSize);
  fill(mm, buf, kPmdSize);
  DmirrorCmd cmd;
  ASSERT_TRUE(to_dev(dev_.open(mm), buf, 512, &cmd).ok());
  EXPECT_EQ(cmd.cpages, 512u);
  expect_words(cmd.data);
  EXPECT_EQ(pte_at(mm, buf).kind(), PteKind::kDevicePrivate);
  EXPECT_TRUE(pte_at(mm, buf).write());
  Folio f = folio_at(mm, buf);
  EXPECT_TRUE(f.is_device_private());
  EXPECT_EQ(folio_ref_count(f), 1);
  EXPECT_EQ(folio_mapcount(f), 1);
  EXPECT_EQ(mm.anon_rss(), 512);
  expect_clean(world_);
}

// hmm.migrate_fault: after migrating, CPU reads fault every page back.
TEST_F(Dmirror0, MigrateFault) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map(mm, kPmdSize);
  fill(mm, buf, kPmdSize);
  Dmirror& m = dev_.open(mm);
  ASSERT_TRUE(to_dev(m, buf, 512).ok());
  expect_fill(mm, buf, kPmdSize);
  EXPECT_EQ(pte_at(mm, buf).kind(), PteKind::kPresent);
  EXPECT_EQ(m.pt_size(), 0u);
  expect_clean(world_);
  // Migrate again: the device still works.
  DmirrorCmd cmd;
  ASSERT_TRUE(to_dev(m, buf, 512, &cmd).ok());
  expect_words(cmd.data);
  expect_clean(world_);
}

// A THP goes to the device as one compound folio (one device-private PMD,
// entire mapcount 1) and comes back as one THP on a CPU fault.
TEST_F(Dmirror0, ThpRoundTrip) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map(mm, kPmdSize, kProtRead | kProtWrite, true);
  fill(mm, buf, kPmdSize);
  ASSERT_EQ(pmd_at(mm, buf).kind(), PmdKind::kPresent);
  DmirrorCmd cmd;
  ASSERT_TRUE(to_dev(dev_.open(mm), buf, 512, &cmd).ok());
  expect_words(cmd.data);
  Pmd pmd = pmd_at(mm, buf);
  ASSERT_EQ(pmd.kind(), PmdKind::kDevicePrivate);
  EXPECT_TRUE(pmd.write());
  Folio df = pfn_folio(world_.mem(), pmd.pfn());
  EXPECT_EQ(df.order().v, 9u);
  EXPECT_EQ(folio_entire_mapcount(df), 1);
  EXPECT_EQ(folio_mapcount(df), 1);
  EXPECT_EQ(folio_ref_count(df), 1);
  EXPECT_EQ(mm.anon_rss(), 512);
  expect_clean(world_);
  EXPECT_EQ(must_read(mm, buf + 4 * 1000), 1000u);
  Pmd back = pmd_at(mm, buf);
  EXPECT_EQ(back.kind(), PmdKind::kPresent);
  EXPECT_EQ(pfn_folio(world_.mem(), back.pfn()).order().v, 9u);
  expect_clean(world_);
  expect_fill(mm, buf, kPmdSize);
}

// hmm.migrate_anon_huge_err: with FAIL_ALLOC the THP goes as 512 small
// device pages, comes back with FAIL_ALLOC as small pages again, and the
// data survives both ways.
TEST_F(Dmirror0, ThpFailAllocBothWays) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map(mm, kPmdSize, kProtRead | kProtWrite, true);
  fill(mm, buf, kPmdSize);
  Dmirror& m = dev_.open(mm);
  DmirrorCmd flags(buf, kDmirrorFlagFailAlloc);
  ASSERT_TRUE(m.set_flags(flags).ok());
  DmirrorCmd cmd;
  ASSERT_TRUE(to_dev(m, buf, 512, &cmd).ok());
  expect_words(cmd.data);
  EXPECT_EQ(pmd_at(mm, buf).kind(), PmdKind::kTable);
  EXPECT_EQ(pte_at(mm, buf).kind(), PteKind::kDevicePrivate);
  EXPECT_EQ(folio_at(mm, buf).order().v, 0u);
  expect_clean(world_);
  // Back to RAM through MIGRATE_TO_SYS, normally.
  DmirrorCmd sys(buf, 512);
  ASSERT_TRUE(m.migrate_to_sys(sys).ok());
  EXPECT_EQ(sys.cpages, 512u);
  EXPECT_EQ(pte_at(mm, buf).kind(), PteKind::kPresent);
  expect_clean(world_);
  // Again to the device as a THP? The RAM pages are small now: small again.
  expect_fill(mm, buf, kPmdSize);
}

// A device THP whose way back gets FAIL_ALLOC is split mid-migration into
// small RAM pages; the data survives.
TEST_F(Dmirror0, ThpBackWithFailAllocSplits) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map(mm, kPmdSize, kProtRead | kProtWrite, true);
  fill(mm, buf, kPmdSize);
  Dmirror& m = dev_.open(mm);
  ASSERT_TRUE(to_dev(m, buf, 512).ok());
  ASSERT_EQ(pmd_at(mm, buf).kind(), PmdKind::kDevicePrivate);
  DmirrorCmd flags(buf, kDmirrorFlagFailAlloc);
  ASSERT_TRUE(m.set_flags(flags).ok());
  DmirrorCmd sys(buf, 512);
  ASSERT_TRUE(m.migrate_to_sys(sys).ok());
  EXPECT_EQ(pmd_at(mm, buf).kind(), PmdKind::kTable);
  EXPECT_EQ(pte_at(mm, buf).kind(), PteKind::kPresent);
  EXPECT_EQ(folio_at(mm, buf).order().v, 0u);
  expect_clean(world_);
  expect_fill(mm, buf, kPmdSize);
}

// hmm.migrate_release / close: RELEASE evicts everything to RAM and removes
// the chunks; the next allocation makes a new chunk.
TEST_F(Dmirror0, ReleaseEvicts) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map(mm, 2 * kPmdSize, kProtRead | kProtWrite, true);
  fill(mm, buf, 2 * kPmdSize);
  Dmirror& m = dev_.open(mm);
  ASSERT_TRUE(to_dev(m, buf, 1024).ok());
  ASSERT_TRUE(dev_.release().ok());
  EXPECT_EQ(dev_.nr_chunks(), 0u);
  EXPECT_EQ(pmd_at(mm, buf).kind(), PmdKind::kPresent);
  expect_clean(world_);
  expect_fill(mm, buf, 2 * kPmdSize);
  ASSERT_TRUE(to_dev(m, buf, 1024).ok());
  EXPECT_EQ(dev_.nr_chunks(), 1u);
  ASSERT_TRUE(dev_.close(m).ok());
  EXPECT_EQ(pmd_at(mm, buf).kind(), PmdKind::kPresent);
  expect_clean(world_);
}

// Empty and zero-page THP ranges migrate as compound holes
// (migrate_anon_huge_empty / _zero): the device reads zeros.
TEST_F(Dmirror0, HugeEmptyAndZero) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map(mm, 2 * kPmdSize, kProtRead, true);
  EXPECT_EQ(must_read(mm, buf + kPmdSize), 0u);  // huge zero page in the second PMD
  ASSERT_EQ(pmd_at(mm, buf + kPmdSize).kind(), PmdKind::kHugeZero);
  DmirrorCmd cmd;
  ASSERT_TRUE(to_dev(dev_.open(mm), buf, 1024, &cmd).ok());
  EXPECT_EQ(cmd.cpages, 1024u);
  for (std::byte b : cmd.data) ASSERT_EQ(b, std::byte{0});
  EXPECT_EQ(pmd_at(mm, buf).kind(), PmdKind::kDevicePrivate);
  EXPECT_FALSE(pmd_at(mm, buf).write());
  EXPECT_EQ(pmd_at(mm, buf + kPmdSize).kind(), PmdKind::kDevicePrivate);
  expect_clean(world_);
  EXPECT_EQ(must_read(mm, buf + 12), 0u);
  expect_clean(world_);
}

// fork after migrating a THP: both sides share the device PMD read-only
// (entire mapcount 2); a write by the child brings it back and COWs.
TEST_F(Dmirror0, ForkSharesDevicePmd) {
  MmStruct& parent = world_.create_mm();
  Vaddr buf = map(parent, kPmdSize, kProtRead | kProtWrite, true);
  fill(parent, buf, kPmdSize);
  ASSERT_TRUE(to_dev(dev_.open(parent), buf, 512).ok());
  MmStruct& child = dup_mm(parent);
  Folio df = pfn_folio(world_.mem(), pmd_at(parent, buf).pfn());
  EXPECT_EQ(folio_entire_mapcount(df), 2);
  EXPECT_EQ(folio_ref_count(df), 2);
  EXPECT_FALSE(pmd_at(parent, buf).write());
  EXPECT_FALSE(pmd_at(child, buf).write());
  expect_clean(world_);
  must_write(child, buf + 8, 77);
  expect_clean(world_);
  EXPECT_EQ(must_read(parent, buf + 8), 2u);
  EXPECT_EQ(must_read(child, buf + 8), 77u);
  EXPECT_EQ(must_read(child, buf + 12), 3u);
  expect_clean(world_);
}

// The mirror's table follows the CPU side: munmap and mprotect drop the
// entries of their range (and, as test_hmm.c does, one page past it); the
// device's own migrations do not. Cutting a Vma inside a PMD range that the
// Vma covers whole also invalidates that whole 2 MiB (__split_huge_pmd
// announces the range before it looks for a huge entry), as Linux does.
TEST_F(Dmirror0, MirrorInvalidatedByCpuChanges) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map(mm, kPmdSize);
  fill(mm, buf, kPmdSize);
  Dmirror& m = dev_.open(mm);
  ASSERT_TRUE(to_dev(m, buf, 512).ok());
  EXPECT_EQ(m.pt_size(), 512u);
  ASSERT_TRUE(do_munmap(mm, buf + 10 * kPageSize, 2 * kPageSize).ok());
  EXPECT_EQ(m.pt_size(), 0u);
  // The pages still on the device are no longer in its table: migrating
  // them again finds nothing to read back, exactly as in test_hmm.c.
  EXPECT_EQ(to_dev(m, buf + 12 * kPageSize, 500).error(), Errno::kNoEnt);
  // Fault them back, then migrate [12, 512): a Vma of its own that covers
  // no whole PMD.
  expect_fill(mm, buf + 12 * kPageSize, 500 * kPageSize, 12 * 1024);
  ASSERT_TRUE(to_dev(m, buf + 12 * kPageSize, 500).ok());
  EXPECT_EQ(m.pt_size(), 500u);
  ASSERT_TRUE(do_munmap(mm, buf + 100 * kPageSize, 2 * kPageSize).ok());
  EXPECT_EQ(m.pt_size(), 497u);  // pages 100, 101 and 102
  EXPECT_FALSE(m.pt_lookup(buf + 102 * kPageSize).has_value());
  EXPECT_TRUE(m.pt_lookup(buf + 103 * kPageSize).has_value());
  ASSERT_TRUE(do_mprotect(mm, buf + 12 * kPageSize, 4 * kPageSize, kProtRead).ok());
  EXPECT_FALSE(m.pt_lookup(buf + 16 * kPageSize).has_value());
  EXPECT_TRUE(m.pt_lookup(buf + 17 * kPageSize).has_value());
  expect_clean(world_);
}

// A THP shared by fork goes to the device with FAIL_ALLOC: the collect
// takes it whole, unmapping it from both processes into PMD migration
// entries (B15); the small destinations force a split, and every PMD
// migration entry must become PTE migration entries before the folio is
// split, the child's as well as the caller's. Both processes keep their
// data and the parent's pages are now on the device.
TEST_F(Dmirror0, SharedThpFailAllocSplitsEveryMapping) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map(mm, kPmdSize, kProtRead | kProtWrite, true);
  fill(mm, buf, kPmdSize);
  ASSERT_EQ(pmd_at(mm, buf).kind(), PmdKind::kPresent);
  MmStruct& child = dup_mm(mm);
  ASSERT_EQ(pmd_at(child, buf).kind(), PmdKind::kPresent);
  expect_clean(world_);
  Dmirror& m = dev_.open(mm);
  DmirrorCmd flags(buf, kDmirrorFlagFailAlloc);
  ASSERT_TRUE(m.set_flags(flags).ok());
  DmirrorCmd cmd;
  ASSERT_TRUE(to_dev(m, buf, 512, &cmd).ok());
  expect_words(cmd.data);
  expect_clean(world_);
  EXPECT_EQ(pte_at(mm, buf).kind(), PteKind::kDevicePrivate);
  EXPECT_EQ(pte_at(child, buf).kind(), PteKind::kDevicePrivate);
  expect_fill(child, buf, kPmdSize);
  expect_clean(world_);
  expect_fill(mm, buf, kPmdSize);
  expect_clean(world_);
}

// The way back: a device THP shared by fork (a read-only device-private
// PMD in both processes) returns with FAIL_ALLOC as small RAM pages; the
// child's PMD migration entry is split with the parent's.
TEST_F(Dmirror0, SharedDeviceThpFailAllocBackSplitsEveryMapping) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map(mm, kPmdSize, kProtRead | kProtWrite, true);
  fill(mm, buf, kPmdSize);
  Dmirror& m = dev_.open(mm);
  ASSERT_TRUE(to_dev(m, buf, 512).ok());
  ASSERT_EQ(pmd_at(mm, buf).kind(), PmdKind::kDevicePrivate);
  MmStruct& child = dup_mm(mm);
  ASSERT_EQ(pmd_at(child, buf).kind(), PmdKind::kDevicePrivate);
  EXPECT_FALSE(pmd_at(child, buf).write());
  expect_clean(world_);
  DmirrorCmd flags(buf, kDmirrorFlagFailAlloc);
  ASSERT_TRUE(m.set_flags(flags).ok());
  DmirrorCmd sys(buf, 512);
  ASSERT_TRUE(m.migrate_to_sys(sys).ok());
  EXPECT_EQ(sys.cpages, 512u);
  expect_clean(world_);
  EXPECT_EQ(pte_at(mm, buf).kind(), PteKind::kPresent);
  EXPECT_EQ(pte_at(child, buf).kind(), PteKind::kPresent);
  EXPECT_EQ(folio_at(child, buf).order().v, 0u);
  expect_fill(child, buf, kPmdSize);
  expect_fill(mm, buf, kPmdSize);
  expect_clean(world_);
}

// Bad input: unaligned address, zero pages, a hole -> the driver's errno.
TEST_F(Dmirror0, BadInput) {
  MmStruct& mm = world_.create_mm();
  Vaddr buf = map(mm, kPmdSize);
  Dmirror& m = dev_.open(mm);
  EXPECT_EQ(to_dev(m, buf + 1, 1).error(), Errno::kInval);
  EXPECT_EQ(to_dev(m, buf, 0).error(), Errno::kInval);
  EXPECT_EQ(to_dev(m, buf + kPmdSize, 1).error(), Errno::kInval);
  Vaddr ro = map(mm, kPageSize, kProtNone);
  EXPECT_EQ(to_dev(m, ro, 1).error(), Errno::kInval);
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim
