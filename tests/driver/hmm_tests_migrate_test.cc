// Ports of the migration cases of tools/testing/selftests/mm/hmm-tests.c
// (hmm.hmm_device_private.*), with the values the kernel test asserts. The
// SNAPSHOT and pagemap checks of migrate_anon_huge_fault are expressed as
// checks of the page-table entries (a device-private PMD: not present).
#include <gtest/gtest.h>

#include "driver/dmirror.h"
#include "mm/internal.h"
#include "support/test_world.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

constexpr uint64_t kBufferSize = 1024 * kPageSize;  // HMM_BUFFER_SIZE
constexpr uint64_t kNB = kBufferSize / kPageSize;
constexpr uint64_t kNH = kPmdSize / kPageSize;

class HmmDevicePrivate : public ::testing::Test {
 protected:
  HmmDevicePrivate()
      : world_(small_config(256)), dev_(world_, 0, 4 * kDevmemChunkSize),
        mm_(world_.create_mm()), mirror_(dev_.open(mm_)) {}
  ~HmmDevicePrivate() override {
    // Fixture teardown: close() evicts the device, then the process exits.
    EXPECT_TRUE(dev_.close(mirror_).ok());
    expect_clean(world_);
    exit_all(world_);
  }

  Vaddr map(uint64_t size, uint32_t prot) {
    Result<Vaddr> a = do_mmap(mm_, Vaddr{0}, size, prot, MapFlags::kPrivate);
    EXPECT_TRUE(a.ok());
    return a.ok() ? *a : Vaddr{0};
  }

  // The THP recipe: a 2H mapping, the region rounded up to an H boundary.
  Vaddr map_huge_region(uint32_t prot, bool hugepage) {
    Vaddr map2h = map(2 * kPmdSize, prot);
    Vaddr region = map2h.pmd_up();
    if (hugepage) {
      EXPECT_TRUE(do_madvise(mm_, region, kPmdSize, Advice::kHugePage).ok());
    }
    return region;
  }

  void write_index(Vaddr a, uint64_t bytes) {
    std::vector<uint32_t> words(bytes / 4);
    for (uint64_t i = 0; i < words.size(); i++) words[i] = uint32_t(i);
    ASSERT_TRUE(cpu_write(mm_, a, std::as_bytes(std::span(words))).ok());
  }

  // Checks words [from, to) of the CPU view against pattern index.
  void expect_cpu_index(Vaddr a, uint64_t from_word, uint64_t to_word) {
    std::vector<uint32_t> words(to_word - from_word);
    ASSERT_TRUE(cpu_read(mm_, a + from_word * 4, std::as_writable_bytes(std::span(words))).ok());
    for (uint64_t i = 0; i < words.size(); i++) ASSERT_EQ(words[i], from_word + i);
  }

  static void expect_index(const std::vector<std::byte>& data) {
    for (uint64_t i = 0; i < data.size() / 4; i++) {
      uint32_t v;
      std::memcpy(&v, data.data() + 4 * i, 4);
      ASSERT_EQ(v, uint32_t(i)) << "word " << i;
    }
  }

  static void expect_zero(const std::vector<std::byte>& data) {
    for (std::byte b : data) ASSERT_EQ(b, std::byte{0});
  }

  Pmd pmd_at(Vaddr addr) NO_THREAD_SAFETY_ANALYSIS {
    PmdTable* t = mm_.pmd_table(addr, MmStruct::Alloc::kNo);
    if (!t) return Pmd::none();
    MutexLock guard(t->ptl);
    return t->slot(addr.pmd_index()).entry;
  }

  // MIGRATE_TO_DEV, expected to succeed.
  DmirrorCmd migrate_to_dev(Vaddr a, uint64_t npages) {
    DmirrorCmd cmd(a, npages);
    Status st = mirror_.migrate_to_dev(cmd);
    EXPECT_TRUE(st.ok()) << errno_name(st.error());
    return cmd;
  }

  void fail_alloc() {
    DmirrorCmd cmd(Vaddr{0x10000}, kDmirrorFlagFailAlloc);
    ASSERT_TRUE(mirror_.set_flags(cmd).ok());
  }

  World world_;
  DmirrorDevice dev_;
  MmStruct& mm_;
  Dmirror& mirror_;
};

// migrate: MIGRATE_TO_DEV N_B -> 0, cpages N_B, mirror = k.
TEST_F(HmmDevicePrivate, migrate) {
  Vaddr buf = map(kBufferSize, kProtRead | kProtWrite);
  write_index(buf, kBufferSize);
  DmirrorCmd cmd = migrate_to_dev(buf, kNB);
  EXPECT_EQ(cmd.cpages, kNB);
  expect_index(cmd.data);
  expect_clean(world_);
}

// migrate_fault: the CPU faults the first half back; migrating again
// still reads k everywhere (the second half kept its table entries).
TEST_F(HmmDevicePrivate, migrate_fault) {
  Vaddr buf = map(kBufferSize, kProtRead | kProtWrite);
  write_index(buf, kBufferSize);
  DmirrorCmd cmd = migrate_to_dev(buf, kNB);
  EXPECT_EQ(cmd.cpages, kNB);
  expect_index(cmd.data);
  expect_cpu_index(buf, 0, kBufferSize / 8);
  expect_clean(world_);
  cmd = migrate_to_dev(buf, kNB);
  EXPECT_EQ(cmd.cpages, kNB);
  expect_index(cmd.data);
  expect_clean(world_);
}

// migrate_release: RELEASE evicts the data to RAM; the CPU reads k.
TEST_F(HmmDevicePrivate, migrate_release) {
  Vaddr buf = map(kBufferSize, kProtRead | kProtWrite);
  write_index(buf, kBufferSize);
  DmirrorCmd cmd = migrate_to_dev(buf, kNB);
  EXPECT_EQ(cmd.cpages, kNB);
  expect_index(cmd.data);
  ASSERT_TRUE(dev_.release().ok());
  expect_clean(world_);
  expect_cpu_index(buf, 0, kBufferSize / 8);
}

// migrate_multiple: ten rounds of migrate, check, CPU read back, free.
TEST_F(HmmDevicePrivate, migrate_multiple) {
  for (int c = 0; c < 10; c++) {
    Vaddr buf = map(kBufferSize, kProtRead | kProtWrite);
    write_index(buf, kBufferSize);
    DmirrorCmd cmd = migrate_to_dev(buf, kNB);
    EXPECT_EQ(cmd.cpages, kNB);
    expect_index(cmd.data);
    expect_cpu_index(buf, 0, kBufferSize / 4);
    ASSERT_TRUE(do_munmap(mm_, buf, kBufferSize).ok());
    expect_clean(world_);
  }
}

// migrate_anon_huge_empty: untouched read-only THP range -> cpages N_H,
// mirror all 0.
TEST_F(HmmDevicePrivate, migrate_anon_huge_empty) {
  Vaddr buf = map_huge_region(kProtRead, true);
  DmirrorCmd cmd = migrate_to_dev(buf, kNH);
  EXPECT_EQ(cmd.cpages, kNH);
  expect_zero(cmd.data);
  EXPECT_EQ(pmd_at(buf).kind(), PmdKind::kDevicePrivate);
  expect_clean(world_);
}

// migrate_anon_huge_zero: the huge zero page migrates; device and CPU read 0.
TEST_F(HmmDevicePrivate, migrate_anon_huge_zero) {
  Vaddr buf = map_huge_region(kProtRead, true);
  EXPECT_EQ(must_read(mm_, buf), 0u);
  EXPECT_EQ(pmd_at(buf).kind(), PmdKind::kHugeZero);
  DmirrorCmd cmd = migrate_to_dev(buf, kNH);
  EXPECT_EQ(cmd.cpages, kNH);
  expect_zero(cmd.data);
  std::vector<std::byte> cpu(kPmdSize);
  ASSERT_TRUE(cpu_read(mm_, buf, cpu).ok());
  expect_zero(cpu);
  expect_clean(world_);
}

// migrate_anon_huge_free: migrate a THP, then MADV_FREE it -> 0.
TEST_F(HmmDevicePrivate, migrate_anon_huge_free) {
  Vaddr buf = map_huge_region(kProtRead | kProtWrite, true);
  write_index(buf, kPmdSize);
  DmirrorCmd cmd = migrate_to_dev(buf, kNH);
  EXPECT_EQ(cmd.cpages, kNH);
  expect_index(cmd.data);
  EXPECT_TRUE(do_madvise(mm_, buf, kPmdSize, Advice::kFree).ok());
  expect_clean(world_);
}

// migrate_anon_huge_fault: MADV_COLLAPSE makes a PMD THP; it migrates as
// one device-private PMD (not present: pagemap's PM_SWAP); the CPU reads
// it back.
TEST_F(HmmDevicePrivate, migrate_anon_huge_fault) {
  Vaddr buf = map_huge_region(kProtRead | kProtWrite, false);
  write_index(buf, kPmdSize);
  ASSERT_TRUE(do_madvise(mm_, buf, kPmdSize, Advice::kCollapse).ok());
  ASSERT_EQ(pmd_at(buf).kind(), PmdKind::kPresent);
  DmirrorCmd cmd = migrate_to_dev(buf, kNH);
  EXPECT_EQ(cmd.cpages, kNH);
  expect_index(cmd.data);
  Pmd pmd = pmd_at(buf);
  EXPECT_EQ(pmd.kind(), PmdKind::kDevicePrivate);
  EXPECT_TRUE(pmd.write());
  expect_clean(world_);
  expect_cpu_index(buf, 0, kPmdSize / 4);
  expect_clean(world_);
}

// migrate_anon_huge_err: FAIL_ALLOC both ways; data intact.
TEST_F(HmmDevicePrivate, migrate_anon_huge_err) {
  Vaddr buf = map_huge_region(kProtRead | kProtWrite, true);
  write_index(buf, kPmdSize);
  fail_alloc();
  DmirrorCmd cmd = migrate_to_dev(buf, kNH);
  EXPECT_EQ(cmd.cpages, kNH);
  expect_index(cmd.data);
  EXPECT_EQ(must_read(mm_, buf + 2048 * 4), 2048u);
  expect_clean(world_);
  ASSERT_TRUE(do_munmap(mm_, buf - kPmdSize, 3 * kPmdSize).ok());
  buf = map_huge_region(kProtRead | kProtWrite, true);
  write_index(buf, kPmdSize);
  cmd = migrate_to_dev(buf, kNH);
  EXPECT_EQ(cmd.cpages, kNH);
  EXPECT_EQ(pmd_at(buf).kind(), PmdKind::kDevicePrivate);
  fail_alloc();
  DmirrorCmd sys(buf, kNH);
  ASSERT_TRUE(mirror_.migrate_to_sys(sys).ok());
  EXPECT_EQ(must_read(mm_, buf + 2048 * 4), 2048u);
  expect_clean(world_);
  expect_cpu_index(buf, 0, kPmdSize / 4);
}

// migrate_anon_huge_zero_err: FAIL_ALLOC on an empty, then a huge-zero THP
// range; everything reads 0.
TEST_F(HmmDevicePrivate, migrate_anon_huge_zero_err) {
  Vaddr buf = map_huge_region(kProtRead, true);
  fail_alloc();
  DmirrorCmd cmd = migrate_to_dev(buf, kNH);
  EXPECT_EQ(cmd.cpages, kNH);
  expect_zero(cmd.data);
  EXPECT_EQ(must_read(mm_, buf + 2048 * 4), 0u);
  expect_clean(world_);
  ASSERT_TRUE(do_munmap(mm_, buf - kPmdSize, 3 * kPmdSize).ok());
  buf = map_huge_region(kProtRead, true);
  EXPECT_EQ(must_read(mm_, buf), 0u);
  fail_alloc();
  cmd = migrate_to_dev(buf, kNH);
  EXPECT_EQ(cmd.cpages, kNH);
  std::vector<std::byte> cpu(kPmdSize);
  ASSERT_TRUE(cpu_read(mm_, buf, cpu).ok());
  expect_zero(cpu);
  expect_clean(world_);
}

}  // namespace
}  // namespace hmmsim
