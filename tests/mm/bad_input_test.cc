// Bad arguments to every public operation of src/mm/mm.h: each returns the
// errno Linux 6.19 (x86-64) returns for it, never crashes, and leaves the
// world consistent with the existing data intact.
//
// Sources: mm/mmap.c do_mmap and __get_unmapped_area, security_mmap_addr
// (mmap_min_addr), arch/x86/kernel/sys_x86_64.c; mm/vma.c do_vmi_munmap;
// mm/mprotect.c do_mprotect_pkey; mm/madvise.c is_valid_madvise and
// madvise_walk_vmas; arch/x86/mm/fault.c access_error.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "support/mm_fixture.h"

namespace hmmsim {
namespace {

using namespace hmmsim::testing;

constexpr uint64_t kP = kPageSize;
constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();
constexpr Vaddr kTopPage{kMax64 & ~(kP - 1)};  // the last page below 2^64

// Each test starts with 8 written pages at a known address, and checks
// after every rejected call that nothing changed.
class BadInput : public MmTest {
 protected:
  static constexpr Vaddr kData{0x600000000000};
  static constexpr uint64_t kPages = 8;

  void SetUp() override {
    map_fixed(kData, kPages);
    write_pattern(mm_, kData, kPages, 1000);
    free_after_setup_ = nr_free_pages();
  }
  // The checker passes, the data is unchanged and no frame moved.
  void expect_intact() {
    expect_clean(world_);
    EXPECT_EQ(nr_free_pages(), free_after_setup_);
    expect_pattern(mm_, kData, kPages, 1000);
    EXPECT_EQ(mm_.anon_rss(), int64_t(kPages));
    ASSERT_EQ(nr_vmas(mm_), 1u);
    EXPECT_EQ(vma_at(mm_, kData)->end(), kData + kPages * kP);
    EXPECT_TRUE(vma_at(mm_, kData)->has(kVmWrite));
  }
  // `r` is the result of a call described by `what`: it failed with `want`
  // and left everything intact.
  template <typename R>
  void expect_error(Errno want, const R& r, const char* what) {
    SCOPED_TRACE(what);
    ASSERT_FALSE(r.ok()) << what << " succeeded";
    EXPECT_EQ(errno_name(r.error()), errno_name(want)) << what;
    expect_intact();
  }
  // The call succeeded without doing anything.
  template <typename R>
  void expect_noop(const R& r, const char* what) {
    SCOPED_TRACE(what);
    EXPECT_TRUE(r.ok()) << what << ": " << (r.ok() ? "" : errno_name(r.error()));
    expect_intact();
  }
  Result<Vaddr> mmap(Vaddr addr, uint64_t len, MapFlags flags, uint64_t align = kPageSize) {
    return do_mmap(mm_, addr, len, kProtRw, flags, align);
  }

  uint64_t free_after_setup_ = 0;
};

constexpr MapFlags kHint = MapFlags::kPrivate;
constexpr MapFlags kFixed = MapFlags::kFixed;

// mmap: a zero length is -EINVAL, with or without MAP_FIXED.
TEST_F(BadInput, MmapZeroLength) {
  expect_error(Errno::kInval, mmap(Vaddr{0}, 0, kHint), "mmap(0, 0)");
  expect_error(Errno::kInval, mmap(Vaddr{0x700000000000}, 0, kFixed), "mmap fixed len 0");
}

// mmap: a length beyond the address space or overflowing when rounded is -ENOMEM.
TEST_F(BadInput, MmapHugeLength) {
  expect_error(Errno::kNoMem, mmap(Vaddr{0}, kUserMax + kP, kHint), "len > TASK_SIZE");
  expect_error(Errno::kNoMem, mmap(Vaddr{0}, kMax64, kHint), "len 2^64-1");
  expect_error(Errno::kNoMem, mmap(Vaddr{0}, kMax64 - kP + 2, kHint), "len rounds to 0");
  expect_error(Errno::kNoMem, mmap(Vaddr{0x10000}, kMax64, kFixed), "fixed len 2^64-1");
  // Fits in the address space but in no gap below the mmap base.
  expect_error(Errno::kNoMem, mmap(Vaddr{0}, kUserMax - kP, kHint), "no gap");
}

// mmap does not validate the protection bits: unknown ones are ignored.
TEST_F(BadInput, MmapIgnoresUnknownProtBits) {
  Result<Vaddr> r = do_mmap(mm_, Vaddr{0}, kP, kProtRead | 0x100, MapFlags::kPrivate);
  ASSERT_TRUE(r.ok());
  Vma* vma = vma_at(mm_, *r);
  ASSERT_NE(vma, nullptr);
  EXPECT_EQ(vma->flags() & kVmAccessFlags, uint32_t{kVmRead});
  EXPECT_EQ(cpu_write_u32(mm_, *r, 1).error(), Errno::kFault);
  ASSERT_TRUE(do_munmap(mm_, *r, kP).ok());
  expect_intact();
}

// mmap: an alignment that is not a power of two of at least a page is -EINVAL.
TEST_F(BadInput, MmapBadAlignment) {
  expect_error(Errno::kInval, mmap(Vaddr{0}, kP, kHint, 0), "align 0");
  expect_error(Errno::kInval, mmap(Vaddr{0}, kP, kHint, 512), "align 512");
  expect_error(Errno::kInval, mmap(Vaddr{0}, kP, kHint, 3 * kP), "align 3 pages");
}

// MAP_FIXED: past the top -ENOMEM, unaligned -EINVAL, below mmap_min_addr -EPERM.
TEST_F(BadInput, MmapFixedBadAddress) {
  expect_error(Errno::kInval, mmap(Vaddr{0x700000000123}, kP, kFixed), "unaligned");
  expect_error(Errno::kInval, mmap(kData + 1, kP, kFixed), "unaligned over data");
  expect_error(Errno::kNoMem, mmap(Vaddr{kUserMax - kP}, 2 * kP, kFixed), "past the top");
  expect_error(Errno::kNoMem, mmap(Vaddr{kUserMax}, kP, kFixed), "at the top");
  expect_error(Errno::kNoMem, mmap(kTopPage, kP, kFixed), "last page below 2^64");
  expect_error(Errno::kNoMem, mmap(Vaddr{kMax64 - 10}, kP, kFixed), "unaligned near 2^64");
  expect_error(Errno::kPerm, mmap(Vaddr{0}, kP, kFixed), "page 0");
  expect_error(Errno::kPerm, mmap(Vaddr{kUserMin - kP}, kP, kFixed), "below mmap_min_addr");
  // mmap_min_addr itself is allowed.
  map_fixed(Vaddr{kUserMin}, 1);
  must_write(mm_, Vaddr{kUserMin}, 1);
  ASSERT_TRUE(do_munmap(mm_, Vaddr{kUserMin}, kP).ok());
  expect_intact();
}

// A hint near 2^64 is only a hint: the mapping is placed top-down.
TEST_F(BadInput, MmapHintNearTopIsIgnored) {
  for (Vaddr hint : {kTopPage, Vaddr{kMax64}, Vaddr{kUserMax}}) {
    Result<Vaddr> r = mmap(hint, kP, kHint);
    ASSERT_TRUE(r.ok());
    EXPECT_LT(r->v, MmStruct::kMmapBase);
    ASSERT_TRUE(do_munmap(mm_, *r, kP).ok());
    expect_intact();
  }
}

// munmap: unaligned, empty or past-the-top ranges are -EINVAL; unmapped ones are fine.
TEST_F(BadInput, MunmapBadRange) {
  expect_error(Errno::kInval, do_munmap(mm_, kData + 1, kP), "unaligned");
  expect_error(Errno::kInval, do_munmap(mm_, kData + 0x800, 2 * kP), "unaligned, 2 pages");
  expect_error(Errno::kInval, do_munmap(mm_, kData, 0), "len 0");
  expect_error(Errno::kInval, do_munmap(mm_, kData, kMax64), "len 2^64-1");
  expect_error(Errno::kInval, do_munmap(mm_, kData, kUserMax), "past the top");
  expect_error(Errno::kInval, do_munmap(mm_, Vaddr{kUserMax}, kP), "at the top");
  expect_error(Errno::kInval, do_munmap(mm_, kTopPage, kP), "last page below 2^64");
  expect_error(Errno::kInval, do_munmap(mm_, Vaddr{kUserMax - kP}, 2 * kP), "straddles top");
  expect_noop(do_munmap(mm_, Vaddr{0x100000000}, kP), "nothing mapped");
  expect_noop(do_munmap(mm_, Vaddr{0}, kP), "page 0");
}

// mprotect: unaligned -EINVAL, empty ok, wrap -ENOMEM, bad prot -EINVAL, hole -ENOMEM.
TEST_F(BadInput, MprotectBadArguments) {
  expect_error(Errno::kInval, do_mprotect(mm_, kData + 1, kP, kProtRead), "unaligned");
  expect_noop(do_mprotect(mm_, kData, 0, kProtRead), "len 0");
  expect_noop(do_mprotect(mm_, kData, 0, 0x100), "len 0, bad prot");
  expect_noop(do_mprotect(mm_, kTopPage, 0, kProtRead), "len 0 near 2^64");
  expect_error(Errno::kNoMem, do_mprotect(mm_, kData, kMax64, kProtRead), "len rounds to 0");
  expect_error(Errno::kNoMem, do_mprotect(mm_, kTopPage, kP, kProtRead), "wraps");
  expect_error(Errno::kNoMem, do_mprotect(mm_, kTopPage, kP, 0x100), "wraps, bad prot");
  expect_error(Errno::kInval, do_mprotect(mm_, kData, kP, 0x100), "bad prot");
  expect_error(Errno::kInval, do_mprotect(mm_, kData, kP, kProtRead | 0x100), "extra prot bit");
  expect_error(Errno::kInval, do_mprotect(mm_, Vaddr{kUserMax}, kP, 0x100), "top, bad prot");
  expect_error(Errno::kNoMem, do_mprotect(mm_, Vaddr{kUserMax}, kP, kProtRead), "at the top");
  expect_error(Errno::kNoMem, do_mprotect(mm_, Vaddr{0x100000000}, kP, kProtRead), "unmapped");
}

// madvise: unaligned or wrapping -EINVAL, empty ok, above the address space -ENOMEM.
TEST_F(BadInput, MadviseBadArguments) {
  for (Advice advice : {Advice::kDontNeed, Advice::kHugePage, Advice::kNoHugePage}) {
    SCOPED_TRACE(static_cast<int>(advice));
    expect_error(Errno::kInval, do_madvise(mm_, kData + 1, kP, advice), "unaligned");
    expect_error(Errno::kInval, do_madvise(mm_, kData, kMax64, advice), "len rounds to 0");
    expect_error(Errno::kInval, do_madvise(mm_, kTopPage, kP, advice), "ends at 2^64");
    expect_error(Errno::kInval, do_madvise(mm_, kTopPage, 2 * kP, advice), "wraps");
    expect_noop(do_madvise(mm_, kData, 0, advice), "len 0");
    expect_noop(do_madvise(mm_, kTopPage, 0, advice), "len 0 near 2^64");
    expect_noop(do_madvise(mm_, Vaddr{kUserMax}, 0, advice), "len 0 at the top");
    expect_error(Errno::kNoMem, do_madvise(mm_, Vaddr{kUserMax}, kP, advice), "at the top");
    expect_error(Errno::kNoMem, do_madvise(mm_, Vaddr{uint64_t{1} << 60}, 4 * kP, advice),
                 "far above the top");
    expect_error(Errno::kNoMem, do_madvise(mm_, Vaddr{0x100000000}, kP, advice), "unmapped");
  }
}

// CPU accesses outside every Vma or wrapping past 2^64 fault (-EFAULT).
TEST_F(BadInput, CpuAccessOutsideVmas) {
  expect_error(Errno::kFault, cpu_read_u32(mm_, Vaddr{0x100000000}), "read unmapped");
  expect_error(Errno::kFault, cpu_write_u32(mm_, Vaddr{0x100000000}, 1), "write unmapped");
  expect_error(Errno::kFault, cpu_read_u32(mm_, Vaddr{0}), "read page 0");
  for (uint64_t addr : {kUserMax - 2, kUserMax, kTopPage.v, kMax64 - 3, kMax64 - 1, kMax64}) {
    SCOPED_TRACE(addr);
    expect_error(Errno::kFault, cpu_read_u32(mm_, Vaddr{addr}), "read high");
    expect_error(Errno::kFault, cpu_write_u32(mm_, Vaddr{addr}, 1), "write high");
  }
  std::byte buf[64] = {};
  expect_error(Errno::kFault, cpu_read(mm_, Vaddr{kMax64 - 8}, buf), "read wraps");
  expect_error(Errno::kFault, cpu_write(mm_, Vaddr{kTopPage.v + kP - 32}, buf), "write wraps");
  // Straddling the end of the data: the first 2 bytes land, then SIGSEGV.
  Vaddr end = kData + kPages * kP;
  EXPECT_EQ(cpu_write_u32(mm_, end - 2, 0xffffffff).error(), Errno::kFault);
  EXPECT_EQ(must_read(mm_, end - 4), 0xffff0000u);
  must_write(mm_, end - 4, 0);
  expect_error(Errno::kFault, cpu_read(mm_, end - 32, buf), "read straddles the end");
}

// migrate_page of an address outside every Vma, or near 2^64, is -EFAULT.
TEST_F(BadInput, MigrateOutsideVmas) {
  for (uint64_t addr :
       {uint64_t{0}, uint64_t{0x100000000}, kUserMax - kP, kUserMax, kTopPage.v, kMax64}) {
    SCOPED_TRACE(addr);
    expect_error(Errno::kFault, migrate_page(mm_, Vaddr{addr}), "migrate unmapped");
  }
}

}  // namespace
}  // namespace hmmsim
