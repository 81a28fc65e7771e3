// Shared helpers of the migrate_vma_* / migrate_device_* tests: exact
// src[]/dst[] slot and folio-state comparisons, byte patterns, a bare test
// device (TestDevice) and the fixture (a world, the dmirror device and its
// mirror of one process, and a TestDevice).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <numeric>
#include <sstream>

#include "driver/dmirror.h"
#include "mm/internal.h"
#include "mm/memory.h"
#include "mm/memremap.h"
#include "mm/migrate_device.h"
#include "mm/vmstat.h"
#include "support/test_world.h"

namespace hmmsim::migrate_vma_test {

using namespace hmmsim::testing;

inline constexpr uint64_t kNH = kHPageNr;  // pages per PMD
inline constexpr uint64_t kWordsPerPage = kPageSize / 4;

// --- slots ---

inline MigratePfn page_slot(Pfn pfn, bool write, bool compound = false) {
  return MigratePfn{
      .pfn = pfn, .valid = true, .migrate = true, .write = write, .compound = compound};
}
inline constexpr MigratePfn kHole{.migrate = true};
inline constexpr MigratePfn kCompoundHole{.migrate = true, .compound = true};
inline constexpr MigratePfn kEmpty{};

inline std::string slot_str(const MigratePfn& m) {
  std::ostringstream os;
  os << "{pfn " << std::hex << m.pfn.v << (m.valid ? " valid" : "") << (m.migrate ? " migrate" : "")
     << (m.write ? " write" : "") << (m.compound ? " compound" : "") << "}";
  return os.str();
}

inline bool same_slot(const MigratePfn& a, const MigratePfn& b) {
  return a.pfn == b.pfn && a.valid == b.valid && a.migrate == b.migrate && a.write == b.write &&
         a.compound == b.compound;
}

// Slots [from, to) of `s` equal want(i); reports the first difference.
inline ::testing::AssertionResult slots_are(std::span<const MigratePfn> s, uint64_t from,
                                            uint64_t to,
                                            const std::function<MigratePfn(uint64_t)>& want) {
  for (uint64_t i = from; i < to; i++) {
    if (!same_slot(s[i], want(i))) {
      return ::testing::AssertionFailure()
             << "slot " << i << " is " << slot_str(s[i]) << ", want " << slot_str(want(i));
    }
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult slots_are(std::span<const MigratePfn> s, uint64_t from,
                                            uint64_t to, MigratePfn want) {
  return slots_are(s, from, to, [&](uint64_t) { return want; });
}

// --- folio state ---

struct FolioState {
  int32_t ref;
  int32_t mapcount;
  int32_t entire;
  bool locked;
  uint32_t order;
  bool operator==(const FolioState&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const FolioState& s) {
  return os << "{ref " << s.ref << ", mapcount " << s.mapcount << ", entire " << s.entire
            << (s.locked ? ", locked" : ", unlocked") << ", order " << s.order << "}";
}

inline FolioState state(Folio f) {
  return FolioState{folio_ref_count(f), folio_mapcount(f), folio_entire_mapcount(f),
                    folio_test_locked(f), f.order().v};
}

// The folios of pfn(i), i in [from, to), are all in state `want`.
inline ::testing::AssertionResult folios_are(World& world, uint64_t from, uint64_t to,
                                             const std::function<Pfn(uint64_t)>& pfn,
                                             FolioState want) {
  for (uint64_t i = from; i < to; i++) {
    FolioState s = state(pfn_folio(world.mem(), pfn(i)));
    if (!(s == want)) {
      std::ostringstream os;
      os << "folio " << i << " (pfn " << std::hex << pfn(i).v << ") is " << s << ", want " << want;
      return ::testing::AssertionFailure() << os.str();
    }
  }
  return ::testing::AssertionSuccess();
}

// Word k of a filled region holds tag + k; page p starts with word0(tag, p).
inline uint32_t word0(uint32_t tag, uint64_t page) {
  return tag + uint32_t(page * kWordsPerPage);
}

// The bytes of one frame are page `first` of the pattern.
inline ::testing::AssertionResult frame_holds(const Page& frame, uint32_t first) {
  std::vector<uint32_t> words(kWordsPerPage);
  page_read(frame, 0, words.data(), kPageSize);
  for (uint64_t k = 0; k < kWordsPerPage; k++) {
    if (words[k] != first + uint32_t(k)) {
      return ::testing::AssertionFailure()
             << "frame " << std::hex << frame.pfn << " word " << std::dec << k << " is " << words[k]
             << ", want " << first + k;
    }
  }
  return ::testing::AssertionSuccess();
}

// --- a bare device ---

// A device for tests that need device memory laid out by hand or a fault
// handler of their own: one pagemap, folios placed at chosen offsets, and
// migrate_to_ram() delegated to `on_fault`.
class TestDevice final : public DevPagemapOps {
 public:
  TestDevice(World& world, uint64_t nr_pages)
      : world_(world), pgmap_(world, nr_pages, this, *this) {}
  ~TestDevice() override {
    if (pgmap_.ref() != 0) {
      ADD_FAILURE() << "test device still holds " << pgmap_.ref() << " pages";
      return;
    }
    world_.mem().remove_range(pgmap_.range());
  }

  const void* owner() const { return this; }
  Pfn base() const { return pgmap_.range().base(); }
  int64_t ref() const { return pgmap_.ref(); }
  uint64_t freed() const { return freed_; }
  uint64_t split_calls() const { return split_calls_; }
  // zone_device_folio_init() at base() + offset: locked, refcount 1.
  Folio alloc(uint64_t offset, Order order) {
    return pgmap_.zone_device_folio_init(base() + offset, order);
  }

  void folio_free(Folio folio) override { freed_ += folio.nr_pages(); }
  VmFault migrate_to_ram(const DeviceFault& vmf) override {
    if (!on_fault) {
      ADD_FAILURE() << "unexpected fault on test device page " << std::hex << vmf.page.v;
      return VmFault::kSigbus;
    }
    return on_fault(vmf);
  }
  void folio_split(Folio, Folio) override { split_calls_++; }

  std::function<VmFault(const DeviceFault&)> on_fault;

 private:
  World& world_;
  DevPagemap pgmap_;
  uint64_t freed_ = 0;
  uint64_t split_calls_ = 0;
};

class MigrateVmaFixture : public ::testing::Test {
 protected:
  MigrateVmaFixture()
      : world_(small_config(128)),
        dev_(world_, 0, 4 * kDevmemChunkSize),
        tdev_(world_, 4 * kNH),
        mm_(world_.create_mm()),
        mirror_(dev_.open(mm_)) {}
  ~MigrateVmaFixture() override {
    EXPECT_TRUE(dev_.close(mirror_).ok());
    expect_clean(world_);
    exit_all(world_);
  }

  Vaddr map(uint64_t size, uint32_t prot = kProtRead | kProtWrite) {
    Result<Vaddr> a = do_mmap(mm_, Vaddr{0}, size, prot, MapFlags::kPrivate, kPmdSize);
    EXPECT_TRUE(a.ok());
    return a.ok() ? *a : Vaddr{0};
  }

  void fill(Vaddr a, uint64_t pages, uint32_t tag) {
    std::vector<uint32_t> words(pages * kWordsPerPage);
    std::iota(words.begin(), words.end(), tag);
    ASSERT_TRUE(cpu_write(mm_, a, std::as_bytes(std::span(words))).ok());
  }

  // Reads `pages` pages at `a` through the CPU (faulting them back from
  // the device as needed) and checks that they start at pattern page
  // `first_page` of `tag`.
  void expect_cpu(Vaddr a, uint64_t pages, uint32_t tag, uint64_t first_page = 0) {
    std::vector<uint32_t> words(pages * kWordsPerPage);
    ASSERT_TRUE(cpu_read(mm_, a, std::as_writable_bytes(std::span(words))).ok());
    for (uint64_t k = 0; k < words.size(); k++) {
      ASSERT_EQ(words[k], word0(tag, first_page) + uint32_t(k)) << "word " << k;
    }
  }

  void expect_cpu_zero(Vaddr a, uint64_t pages) {
    std::vector<std::byte> bytes(pages * kPageSize);
    ASSERT_TRUE(cpu_read(mm_, a, bytes).ok());
    for (uint64_t i = 0; i < bytes.size(); i++) ASSERT_EQ(bytes[i], std::byte{0}) << "byte " << i;
  }

  // A 2 MiB PMD-mapped THP filled with pattern `tag`.
  Vaddr map_thp(uint32_t tag) {
    Vaddr a = map(kPmdSize);
    EXPECT_TRUE(do_madvise(mm_, a, kPmdSize, Advice::kHugePage).ok());
    fill(a, kNH, tag);
    EXPECT_EQ(pmd_at(a).kind(), PmdKind::kPresent);
    return a;
  }

  Pmd pmd_at(Vaddr addr) { return testing::pmd_at(mm_, addr); }
  Folio pmd_folio(Vaddr addr) { return pfn_folio(world_.mem(), pmd_at(addr).pfn()); }
  Folio folio_of(Pfn pfn) { return pfn_folio(world_.mem(), pfn); }
  Page& frame(Pfn pfn) { return world_.mem().page(pfn); }

  MigrateVma args_for(Vaddr start, uint64_t npages, uint32_t flags, std::vector<MigratePfn>& src,
                      std::vector<MigratePfn>& dst, const void* owner = nullptr) {
    return MigrateVma{.vma = vma_at(mm_, start),
                      .start = start,
                      .end = start + npages * kPageSize,
                      .src = src,
                      .dst = dst,
                      .pgmap_owner = owner ? owner : dev_.owner(),
                      .flags = flags,
                      .fault_page = std::nullopt};
  }

  // A fresh device page of the dmirror device (locked, refcount 1).
  Folio dev_alloc(Order order) {
    std::optional<Folio> f = dev_.devmem_alloc(order, &mirror_);
    EXPECT_TRUE(f.has_value());
    return *f;
  }
  // A fresh RAM folio, locked as a driver locks its destinations.
  Folio ram_alloc(Order order) {
    std::optional<Folio> f = folio_alloc(world_.mem(), order);
    EXPECT_TRUE(f.has_value());
    EXPECT_TRUE(folio_trylock(*f));
    return *f;
  }
  void copy(Folio dst, Pfn src, uint64_t nr) {
    for (uint64_t j = 0; j < nr; j++) page_copy(dst.page(j), frame(src + j));
  }
  void zero(Folio f) {
    for (uint64_t j = 0; j < f.nr_pages(); j++) page_zero(f.page(j));
  }

  // One CPU fault at `addr`, as the fault handler sees it.
  VmFault fault(Vaddr addr, uint32_t flags = kFaultRead) {
    ReadLock guard(mm_.mmap_lock);
    Vma* vma = mm_.vma_lookup(addr);
    EXPECT_NE(vma, nullptr);
    return handle_mm_fault(*vma, addr, flags);
  }

  void to_dev(Vaddr a, uint64_t npages) {
    DmirrorCmd cmd(a, npages);
    ASSERT_TRUE(mirror_.migrate_to_dev(cmd).ok());
  }

  void fail_alloc() {
    DmirrorCmd cmd(Vaddr{0x10000}, kDmirrorFlagFailAlloc);
    ASSERT_TRUE(mirror_.set_flags(cmd).ok());
  }

  uint64_t stat(VmEvent e) { return world_.stats().get(e); }

  World world_;
  DmirrorDevice dev_;
  TestDevice tdev_;
  MmStruct& mm_;
  Dmirror& mirror_;
};

}  // namespace hmmsim::migrate_vma_test
