// The census: every page-table entry of every address space, gathered once
// per check run so that each invariant can compare the model's counters
// with what the page tables actually hold.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "mm/folio.h"
#include "mm/mm_struct.h"
#include "mm/pgtable.h"
#include "mm/vma.h"
#include "mm/world.h"

namespace hmmsim::check {

// One leaf entry somewhere in some address space.
struct EntryRef {
  MmStruct* mm = nullptr;
  Vma* vma = nullptr;  // the Vma containing addr (nullptr: outside every Vma)
  Vaddr addr;
  bool pmd_level = false;
  Pte pte;  // valid when !pmd_level
  Pmd pmd;  // valid when pmd_level
  std::string describe() const;
};

struct MmCensus {
  int64_t anon_entries = 0;  // pages mapped by rss-counted entries
  int64_t pte_tables = 0;    // PTE tables, deposited ones included
};

struct Census {
  std::vector<EntryRef> entries;                           // every non-none leaf
  std::unordered_map<uint64_t, int32_t> page_pte_maps;     // pfn -> PTE mappings
  std::unordered_map<uint64_t, int32_t> folio_pmd_maps;    // head pfn -> PMD mappings
  std::unordered_map<uint64_t, std::vector<size_t>> folio_entries;  // head pfn -> entries
  std::unordered_map<const MmStruct*, MmCensus> mms;
};

Census take_census(World& world);

// Calls fn(base, table, slot) for every PMD slot of every PMD table of `mm`,
// with `base` the first address the slot covers (world quiesced).
void for_each_pmd_slot(const MmStruct& mm,
                       const std::function<void(Vaddr, const PmdTable&, const PmdSlot&)>& fn);

// A readable description of a folio: counters, flags and its mappings.
std::string folio_dump(World& world, const Census& census, Folio folio);
// A readable description of an address space: its counters, what the census
// found, and its Vmas with their anon_vmas.
std::string mm_dump(const Census& census, const MmStruct& mm);
// One frame's descriptor, raw.
std::string page_dump(const Page& page);

}  // namespace hmmsim::check
