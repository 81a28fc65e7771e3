// Strong types and the page-size constants of the modelled machine.
//
// The model is an x86-64-like machine: 4 KiB base pages, four-level page
// tables of 512 entries, 2 MiB PMD leaves (order 9). Page frame numbers,
// virtual addresses and folio orders are distinct types so that a pfn can
// never be passed where an address is expected.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>

namespace hmmsim {

inline constexpr uint64_t kPageShift = 12;
inline constexpr uint64_t kPageSize = uint64_t{1} << kPageShift;
inline constexpr uint64_t kPtrsPerTable = 512;
inline constexpr uint64_t kPmdShift = kPageShift + 9;
inline constexpr uint64_t kPmdSize = uint64_t{1} << kPmdShift;
inline constexpr uint64_t kPudShift = kPmdShift + 9;
inline constexpr uint64_t kPudSize = uint64_t{1} << kPudShift;
inline constexpr uint64_t kPgdShift = kPudShift + 9;
inline constexpr uint64_t kPgdSize = uint64_t{1} << kPgdShift;
// User address space: [kUserMin, kUserMax), 47 bits as on x86-64.
inline constexpr uint64_t kUserMin = 0x10000;
inline constexpr uint64_t kUserMax = uint64_t{1} << 47;
inline constexpr uint32_t kHPageOrder = 9;  // HPAGE_PMD_ORDER
inline constexpr uint32_t kHPageNr = 1u << kHPageOrder;
inline constexpr uint32_t kMaxPageOrder = 10;  // MAX_PAGE_ORDER
static_assert(kPmdSize == kPageSize * kHPageNr);
static_assert(kPtrsPerTable == kHPageNr);

// Page frame number: index of a 4 KiB frame in the model's physical space.
struct Pfn {
  uint64_t v = 0;
  constexpr Pfn operator+(uint64_t n) const { return Pfn{v + n}; }
  constexpr uint64_t operator-(Pfn o) const { return v - o.v; }
  constexpr auto operator<=>(const Pfn&) const = default;
};

// A user virtual address.
struct Vaddr {
  uint64_t v = 0;
  constexpr Vaddr operator+(uint64_t n) const { return Vaddr{v + n}; }
  constexpr Vaddr operator-(uint64_t n) const { return Vaddr{v - n}; }
  constexpr uint64_t operator-(Vaddr o) const { return v - o.v; }
  constexpr auto operator<=>(const Vaddr&) const = default;
  constexpr bool page_aligned() const { return (v & (kPageSize - 1)) == 0; }
  constexpr bool pmd_aligned() const { return (v & (kPmdSize - 1)) == 0; }
  constexpr Vaddr page_down() const { return Vaddr{v & ~(kPageSize - 1)}; }
  constexpr Vaddr pmd_down() const { return Vaddr{v & ~(kPmdSize - 1)}; }
  constexpr Vaddr pmd_up() const { return Vaddr{(v + kPmdSize - 1) & ~(kPmdSize - 1)}; }
  constexpr uint64_t page_index() const { return v >> kPageShift; }
  constexpr unsigned pte_index() const { return (v >> kPageShift) & (kPtrsPerTable - 1); }
  constexpr unsigned pmd_index() const { return (v >> kPmdShift) & (kPtrsPerTable - 1); }
  constexpr unsigned pud_index() const { return (v >> kPudShift) & (kPtrsPerTable - 1); }
  constexpr unsigned pgd_index() const { return (v >> kPgdShift) & (kPtrsPerTable - 1); }
};

// Folio order: a folio spans 1 << order pages.
struct Order {
  uint32_t v = 0;
  constexpr uint64_t nr_pages() const { return uint64_t{1} << v; }
  constexpr auto operator<=>(const Order&) const = default;
};

constexpr uint64_t page_align_up(uint64_t len) { return (len + kPageSize - 1) & ~(kPageSize - 1); }

}  // namespace hmmsim

template <>
struct std::hash<hmmsim::Pfn> {
  size_t operator()(hmmsim::Pfn p) const noexcept { return std::hash<uint64_t>{}(p.v); }
};
