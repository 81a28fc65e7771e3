// Vma: one virtual memory area of an address space (`struct vm_area_struct`).
//
// Linux counterpart: `include/linux/mm_types.h` (vm_area_struct),
// `mm/vma.c` (split and merge). A Vma covers [start, end) with one set of
// flags; private anonymous Vmas get an anon_vma on their first fault and are
// linked, through their anon_vma chain, to every anon_vma whose folios they
// may map (their own and their fork ancestors').
//
// Thread safety: a Vma is created, changed and destroyed only with its mm's
// mmap_lock held for write, and read with it held for read.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/types.h"

namespace hmmsim {

class AnonVma;
class MmStruct;

enum VmFlag : uint32_t {
  kVmRead = 1u << 0,
  kVmWrite = 1u << 1,
  kVmExec = 1u << 2,
  kVmShared = 1u << 3,
  kVmMayRead = 1u << 4,
  kVmMayWrite = 1u << 5,
  kVmMayExec = 1u << 6,
  kVmMayShare = 1u << 7,
  kVmHugepage = 1u << 8,    // VM_HUGEPAGE (MADV_HUGEPAGE)
  kVmNoHugepage = 1u << 9,  // VM_NOHUGEPAGE (MADV_NOHUGEPAGE)
};

inline constexpr uint32_t kVmAccessFlags = kVmRead | kVmWrite | kVmExec;

class Vma {
 public:
  Vma(MmStruct& mm, Vaddr start, Vaddr end, uint32_t flags, uint64_t pgoff)
      : mm_(&mm), start_(start), end_(end), flags_(flags), pgoff_(pgoff) {}

  MmStruct& mm() const { return *mm_; }
  Vaddr start() const { return start_; }
  Vaddr end() const { return end_; }
  uint64_t size() const { return end_ - start_; }
  uint64_t nr_pages() const { return size() >> kPageShift; }
  uint32_t flags() const { return flags_; }
  bool has(VmFlag f) const { return (flags_ & f) != 0; }
  uint64_t pgoff() const { return pgoff_; }
  AnonVma* anon_vma() const { return anon_vma_; }
  const std::vector<AnonVma*>& anon_vma_chain() const { return chain_; }
  bool contains(Vaddr a) const { return a >= start_ && a < end_; }

  // is_cow_mapping(): private and may become writable.
  bool is_cow_mapping() const { return !has(kVmShared) && has(kVmMayWrite); }
  bool is_anonymous() const { return true; }  // the model maps only anonymous memory
  // linear_page_index(): the folio index that address `a` maps in this Vma.
  uint64_t linear_page_index(Vaddr a) const { return pgoff_ + ((a - start_) >> kPageShift); }
  // vma_address(): where index `idx` is mapped, if inside this Vma.
  std::optional<Vaddr> address_of(uint64_t idx) const {
    if (idx < pgoff_ || idx >= pgoff_ + nr_pages()) return std::nullopt;
    return start_ + ((idx - pgoff_) << kPageShift);
  }

  // Mutators: callers hold mmap_lock for write (checked by the callers).
  void set_range(Vaddr start, Vaddr end, uint64_t pgoff) {
    start_ = start;
    end_ = end;
    pgoff_ = pgoff;
  }
  void set_flags(uint32_t flags) { flags_ = flags; }
  void set_anon_vma(AnonVma* av) { anon_vma_ = av; }
  std::vector<AnonVma*>& mutable_chain() { return chain_; }

 private:
  MmStruct* mm_;
  Vaddr start_;
  Vaddr end_;
  uint32_t flags_;
  uint64_t pgoff_;
  AnonVma* anon_vma_ = nullptr;
  // anon_vma_chain: every anon_vma this Vma is linked into (own one included).
  std::vector<AnonVma*> chain_;
};

}  // namespace hmmsim
