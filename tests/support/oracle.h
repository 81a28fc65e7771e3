// OracleMm: the reference model that model-based tests compare hmmsim with.
//
// It knows nothing of folios, page tables, rmap or copy-on-write. For one
// process it keeps only what a user can observe through the system-call
// interface: which pages are mapped, with which protection and THP advice,
// and the bytes every page holds. An untouched page, or one zapped by
// MADV_DONTNEED, reads as zeros; fork copies the whole view, and from then on
// the two views are independent (this is what COW must look like from
// outside). Its system-call functions return what Linux 6.19 returns for the
// same call and apply the same partial effects (mprotect stops at the first
// hole, madvise skips holes, a CPU access stops at the first page it cannot
// touch), written from the syscall documentation, not from the model.
//
// The oracle also tracks which pages hold a private anonymous page (a folio
// in the model): those written since they were mapped or zapped. That is
// MM_ANONPAGES, and it is what move_pages() can migrate.
//
// Thread safety: none; one test thread owns an oracle.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "base/result.h"
#include "base/types.h"
#include "mm/mm.h"

namespace hmmsim::testing {

// What a user sees of a mapped page besides its bytes.
struct OracleAttrs {
  uint32_t prot = kProtNone;  // kProtRead | kProtWrite
  uint32_t thp = 0;           // kVmHugepage, kVmNoHugepage or 0
  bool operator==(const OracleAttrs&) const = default;
};

// [start, end) mapped with one set of attributes.
struct OracleRange {
  Vaddr start;
  Vaddr end;
  OracleAttrs attrs;
};

enum class AccessKind : uint8_t { kRead, kWrite };

// How much of a CPU access Linux performs, and what it returns.
struct AccessPlan {
  uint64_t done = 0;  // bytes transferred before the first faulting page
  Status status;      // Ok, or -EFAULT
};

using PageBytes = std::array<std::byte, kPageSize>;

// What an mremap() that passed its checks does (OracleMm::plan_mremap).
struct MremapPlan {
  enum Kind : uint8_t {
    kShrink,  // in place: the tail past new_len is unmapped
    kGrow,    // in place: the Vma grows into the free range after it
    kMove,    // to new_addr (kMremapFixed) or to where the kernel chooses
  };
  Kind kind = kShrink;
  Vaddr old_addr;
  uint64_t old_len = 0;  // page aligned
  uint64_t new_len = 0;  // page aligned
  uint32_t flags = 0;
  Vaddr new_addr;  // kMove with kMremapFixed
};

class OracleMm {
 public:
  // --- queries ---
  // The attributes of the page holding `addr`, or nullptr when unmapped.
  const OracleAttrs* attrs_at(Vaddr addr) const;
  // No page of [start, end) is mapped.
  bool range_free(Vaddr start, Vaddr end) const;
  uint64_t mapped_bytes() const;
  // Bytes of [start, end) that are mapped.
  uint64_t mapped_bytes_in(Vaddr start, Vaddr end) const;
  // The mapped ranges, lowest first, neighbours with equal attributes merged.
  std::vector<OracleRange> ranges() const;
  // Pages that hold private anonymous memory (MM_ANONPAGES).
  uint64_t nr_populated() const { return pages_.size(); }
  bool populated(Vaddr addr) const { return pages_.count(addr.page_index()) != 0; }
  // The n-th populated page, lowest first; n < nr_populated().
  Vaddr populated_page(uint64_t n) const;
  // The bytes at [addr, addr + out.size()) as the oracle knows them;
  // unmapped bytes read as zero (callers check access first).
  void peek(Vaddr addr, std::span<std::byte> out) const;

  // --- system calls, with Linux's result and partial effect ---
  // mmap at a place already chosen (MAP_FIXED, or where the model put it).
  void map(Vaddr start, Vaddr end, uint32_t prot);
  Status munmap(Vaddr addr, uint64_t len);
  Status mprotect(Vaddr addr, uint64_t len, uint32_t prot);
  Status madvise(Vaddr addr, uint64_t len, Advice advice);
  // mremap(): Linux's errno, or what the call does. The checks and their
  // order are do_mremap()'s (check_mremap_params, then the Vma at old_addr:
  // -EFAULT without one, -EINVAL for old_len 0, -EFAULT when the old range
  // runs past the Vma; then shrink, grow in place, or -ENOMEM without
  // MREMAP_MAYMOVE). `vma_end` is the end of the Vma that holds old_addr:
  // the oracle merges neighbours with equal attributes, but Linux keeps two
  // Vmas apart when their anon_vmas differ, and where they part is not a
  // thing a user observes through this interface, so the caller passes it.
  Result<MremapPlan> plan_mremap(Vaddr old_addr, uint64_t old_len, uint64_t new_len,
                                 uint32_t flags, Vaddr new_addr, Vaddr vma_end) const;
  // Carries out a plan; `dest` is where a kMove without kMremapFixed went
  // (free before the call: get_unmapped_area). The moved bytes go with the
  // range, grown pages read as zero, and with MREMAP_DONTUNMAP the old range
  // stays mapped and reads as zero. Returns the resulting address.
  Vaddr mremap(const MremapPlan& plan, Vaddr dest);
  // A CPU load or store of [addr, addr + len): where it stops and why.
  AccessPlan plan_access(Vaddr addr, uint64_t len, AccessKind kind) const;
  // Stores bytes that plan_access allowed.
  void write(Vaddr addr, std::span<const std::byte> in);

 private:
  // Splits the area holding `addr` so that an area starts there.
  void split_at(Vaddr addr);
  // Merges the areas around [start, end) with equal-attribute neighbours.
  void coalesce(Vaddr start, Vaddr end);
  // Forgets the bytes of [start, end): they read as zero again.
  void zap(Vaddr start, Vaddr end);
  void unmap_range(Vaddr start, Vaddr end);
  // Calls fn(area) for each area piece inside [start, end), after splitting
  // at both ends; returns whether some page of the range is unmapped.
  template <typename Fn>
  bool for_each_piece(Vaddr start, Vaddr end, Fn fn);

  std::map<uint64_t, OracleRange> areas_;  // by start; never overlapping
  // Page index -> bytes, for populated pages. Bytes are shared between a
  // parent's and a child's oracle and copied on write.
  std::map<uint64_t, std::shared_ptr<const PageBytes>> pages_;
};

}  // namespace hmmsim::testing
